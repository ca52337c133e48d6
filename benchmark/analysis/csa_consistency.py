"""CSA consistency across contrasts: does a model measure the same cord area on every contrast of one person?

Needs no ground truth: the per-case ``csa_mm2`` of the results files (benchmark.evaluation.csa) is the mean
angle-corrected CSA over the scanner-z range that all images of the person (in that session) cover. For every
person with >= 2 images in a dataset:

    SD_p = std over the person's images of csa_mm2 (ddof=1),   CV_p = SD_p / mean_p

and per dataset the mean of SD_p and of CV_p over persons with a percentile-bootstrap 95 % CI
(:func:`benchmark.analysis.summary.mean_ci`; with one person the CI is that person's value). The same numbers on
``csa_reference_mm2`` are the floor: the reference masks' own disagreement across contrasts (raters, partial
volume, slice thickness), which a model cannot be expected to beat.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from benchmark.evaluation.results import ResultsFile
from benchmark.analysis.summary import mean_ci

REFERENCE = "reference masks"
PERSON_COLUMNS = ["submission", "dataset", "subject", "session", "images", "contrasts", "mean_mm2", "sd_mm2", "cv"]
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
        rows.append({"submission": name, "dataset": dataset, "subject": subject,
                     "session": None if pd.isna(session) else session, "images": int(len(here)),
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
    """Per (model, dataset): mean across persons of SD and CV, each with a bootstrap 95 % CI."""
    rows = []
    for (submission, dataset), here in persons.groupby(["submission", "dataset"], sort=True):
        sd = mean_ci(here["sd_mm2"].to_numpy(float), dataset=dataset, seed=seed)
        cv = mean_ci(here["cv"].dropna().to_numpy(float), dataset=dataset, seed=seed)
        rows.append({"submission": submission, "dataset": dataset, "persons": int(len(here)),
                     "images": int(here["images"].sum()), "sd_mm2": sd.mean, "sd_low": sd.low, "sd_high": sd.high,
                     "cv": cv.mean, "cv_low": cv.low, "cv_high": cv.high})
    table = pd.DataFrame(rows, columns=DATASET_COLUMNS)
    # the floor first, then models by increasing spread
    order = (table["submission"] != REFERENCE).astype(int)
    return table.assign(_order=order).sort_values(["dataset", "_order", "sd_mm2"]).drop(columns="_order") \
        .reset_index(drop=True)


__all__ = ["REFERENCE", "person_consistency", "dataset_consistency"]
