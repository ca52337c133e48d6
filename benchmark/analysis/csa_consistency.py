"""CSA consistency across contrasts: does a model measure the same cord area on every contrast of one person?

Needs no ground truth: the per-case ``csa_mm2`` of the results files (benchmark.evaluation.csa) is the mean
angle-corrected CSA over the scanner-z range that all images of the person (in that session) cover. For every
person with >= 2 images in a dataset:

    SD_p = std over the person's images of csa_mm2 (ddof=1),   CV_p = SD_p / mean_p

and per dataset the mean of SD_p and of CV_p over people with a percentile-bootstrap 95 % CI resampling people
(:func:`benchmark.analysis.summary.mean_ci`: a person scanned in two sessions has two SDs, averaged first; with
fewer than ``MIN_PEOPLE`` people the interval is withheld). The same numbers on ``csa_reference_mm2`` are the floor:
the reference masks' own disagreement across contrasts (raters, partial volume, slice thickness), which a model
cannot be expected to beat.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from benchmark.evaluation.results import ResultsFile
from benchmark.analysis.summary import mean_ci

REFERENCE = "reference masks"
PERSON_COLUMNS = ["submission", "dataset", "subject", "session", "person", "images", "contrasts", "mean_mm2", "sd_mm2",
                  "cv"]
DATASET_COLUMNS = ["submission", "dataset", "persons", "images", "sd_mm2", "sd_low", "sd_high", "cv", "cv_low",
                   "cv_high"]


def _person_rows(name: str, frame: pd.DataFrame, column: str) -> list[dict]:
    rows = []
    usable = frame[frame[column].notna()]
    for (dataset, subject, session), here in usable.groupby(["dataset", "subject", "session"], dropna=False,
                                                            sort=True):
        if len(here) < 2:
            continue
        values = here[column].to_numpy(float)
        mean = float(values.mean())
        sd = float(np.std(values, ddof=1))
        person = here["person"].iloc[0] if "person" in here else subject
        rows.append({"submission": name, "dataset": dataset, "subject": subject,
                     "session": None if pd.isna(session) else session, "person": person, "images": int(len(here)),
                     "contrasts": ", ".join(here["contrast"].astype(str)), "mean_mm2": mean, "sd_mm2": sd,
                     "cv": sd / mean if mean > 0 else math.nan})
    return rows


def person_consistency(results: Sequence[ResultsFile], *, with_reference: bool = True) -> pd.DataFrame:
    """One row per (model, person with >= 2 images): CSA mean, SD and CV across the person's images.

    ``with_reference`` adds the rows of the reference masks (submission :data:`REFERENCE`), taken once per case.
    """
    rows: list[dict] = []
    reference_cases: dict[str, dict] = {}
    for result in results:
        frame = pd.DataFrame([case.model_dump() for case in result.cases])
        if frame.empty:
            continue
        rows += _person_rows(result.submission, frame, "csa_mm2")
        for case in frame.to_dict("records"):
            reference_cases.setdefault(case["case_id"], case)
    if with_reference and reference_cases:
        rows += _person_rows(REFERENCE, pd.DataFrame(list(reference_cases.values())), "csa_reference_mm2")
    return pd.DataFrame(rows, columns=PERSON_COLUMNS)


def dataset_consistency(persons: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """Per (model, dataset): mean across people of SD and CV, each with a bootstrap 95 % CI resampling people
    (``persons`` counts people)."""
    rows = []
    for (submission, dataset), here in persons.groupby(["submission", "dataset"], sort=True):
        sd = mean_ci(here["sd_mm2"].to_numpy(float), dataset=dataset, seed=seed, persons=here["person"].tolist())
        with_cv = here[here["cv"].notna()]
        cv = mean_ci(with_cv["cv"].to_numpy(float), dataset=dataset, seed=seed, persons=with_cv["person"].tolist())
        rows.append({"submission": submission, "dataset": dataset, "persons": sd.n,
                     "images": int(here["images"].sum()), "sd_mm2": sd.mean, "sd_low": sd.low, "sd_high": sd.high,
                     "cv": cv.mean, "cv_low": cv.low, "cv_high": cv.high})
    table = pd.DataFrame(rows, columns=DATASET_COLUMNS)
    # the floor first, then models by increasing spread
    order = (table["submission"] != REFERENCE).astype(int)
    return table.assign(_order=order).sort_values(["dataset", "_order", "sd_mm2"]).drop(columns="_order") \
        .reset_index(drop=True)


__all__ = ["REFERENCE", "person_consistency", "dataset_consistency"]
