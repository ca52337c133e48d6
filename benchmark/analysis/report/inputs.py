"""Report inputs: results files of one suite -> one per-case table with each model's role (aggregated / specific)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import pandas as pd

from benchmark.errors import CordbenchError
from benchmark.evaluation.metrics import METRIC_NAMES
from benchmark.evaluation.results import ResultsFile, cases_frame



ModelRole = Literal["aggregated", "specific", "other"]
ROLE_ORDER: dict[str, int] = {"aggregated": 0, "specific": 1, "other": 2}
SUITE_ROLE_ORDER: dict[str, int] = {"in-domain": 0, "ood": 1}
ALPHA = 0.05
AGGREGATED_COLOUR = "#d62728"
SPECIFIC_COLOURS = ("#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b")
OTHER_COLOUR = "#969696"
VERDICT_AGGREGATED = "aggregated better"
VERDICT_SPECIFIC = "specific better"
VERDICT_NONE = "no significant difference"
VERDICT_NO_CASES = "no paired cases"
SPECIALIST_RULE = "specialist (trained on this dataset)"
BEST_SPECIFIC_RULE = "best specific (highest mean here)"


class ReportError(CordbenchError, ValueError):
    """The results cannot make a report (none for the suite, mixed versions, duplicate names)."""


def model_role(declared_training_datasets: Sequence[str], in_domain: Sequence[str]) -> ModelRole:
    """aggregated / specific / other from a model's declared training datasets (see module doc)."""
    declared = set(declared_training_datasets)
    if len(declared) > 1 and set(in_domain) <= declared:
        return "aggregated"
    if len(declared) == 1:
        return "specific"
    return "other"


def select_results(results: Sequence[ResultsFile], suite: str) -> list[ResultsFile]:
    """The results of ``suite``, checked: one benchmark version, one file per submission; sorted by name."""
    chosen = [result for result in results if result.suite == suite]
    if not chosen:
        found = sorted({result.suite for result in results})
        raise ReportError(f"no results for suite {suite!r} (results are for: {', '.join(found) or 'nothing'})")
    versions = sorted({result.benchmark_version for result in chosen})
    if len(versions) > 1:
        by_version = {version: sorted(r.submission for r in chosen if r.benchmark_version == version)
                      for version in versions}
        raise ReportError(f"results of suite {suite!r} mix benchmark versions {by_version}; "
                          "a report compares models on one version: pass the results of one version only")
    names = [result.submission for result in chosen]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ReportError(f"several results files for submission(s) {duplicates} on {suite} {versions[0]}")
    return sorted(chosen, key=lambda result: result.submission)


def report_cases(results: Sequence[ResultsFile], in_domain: Sequence[str], *, exclude_leaked: bool = True) -> pd.DataFrame:
    """Per-case rows of every results file plus ``model_role``, ``trained_on`` and ``declared``.

    ``trained_on`` is the one training dataset of a specific model (None otherwise). Rows whose
    subject is in the model's declared training data (``subject_in_training``) are dropped unless
    ``exclude_leaked`` is False: such a score says nothing about generalization.
    """
    frame = cases_frame(list(results))
    roles = {r.submission: model_role(r.declared_training_datasets, in_domain) for r in results}
    declared = {r.submission: ", ".join(sorted(r.declared_training_datasets)) for r in results}
    single = {r.submission: r.declared_training_datasets[0] if len(set(r.declared_training_datasets)) == 1 else None
              for r in results}
    frame["model_role"] = frame["submission"].map(roles)
    frame["trained_on"] = frame["submission"].map(single)
    frame["declared"] = frame["submission"].map(declared)
    if exclude_leaked and not frame.empty:
        frame = frame[~frame["subject_in_training"].astype(bool)].reset_index(drop=True)
    return frame


def leaked_counts(cases: pd.DataFrame) -> dict[str, int]:
    """Per submission, how many rows score a subject the model declared it was trained on."""
    if cases.empty:
        return {}
    leaked = cases[cases["subject_in_training"].astype(bool)]
    return {name: int(count) for name, count in leaked.groupby("submission").size().items()}


def model_order(cases: pd.DataFrame) -> list[str]:
    """Submissions ordered aggregated first, then specific (by training dataset), then other."""
    models = cases[["submission", "model_role", "trained_on"]].drop_duplicates("submission")
    keyed = sorted(models.itertuples(index=False),
                   key=lambda row: (ROLE_ORDER[row.model_role], row.trained_on or "", row.submission))
    return [row.submission for row in keyed]


def _dataset_order(cases: pd.DataFrame) -> list[tuple[str, str]]:
    pairs = cases[["dataset", "suite_role"]].drop_duplicates()
    return sorted(((row.dataset, row.suite_role) for row in pairs.itertuples(index=False)),
                  key=lambda item: (SUITE_ROLE_ORDER.get(item[1], 9), item[0]))


def _check_metric(metric: str) -> None:
    if metric not in METRIC_NAMES:
        raise ReportError(f"unknown metric {metric!r}; one of {', '.join(METRIC_NAMES)}")
