"""The ONLY place that turns per-case rows into summaries: every number shown by `score`, the demo, the report,
the notebook, the leaderboard and the gate comes from here, so the same rows give the same digits everywhere.

- :func:`mean_ci`: mean with a percentile-bootstrap 95 % CI of one dataset's per-case values;
- :func:`paired_comparison`: mean paired difference with its bootstrap CI and the Wilcoxon p-value;
- :func:`holm_adjust`: Holm's step-down adjustment over a family of comparisons;
- :func:`dataset_summaries`: per dataset of a results file: role, zero-shot, n, failures, mean [CI].

One seed rule: the bootstrap of dataset ``D`` draws from ``default_rng(dataset_seed(seed, D))``. Draws are then
independent across datasets and do not change when other datasets are filtered in or out (the leaderboard),
and a CI printed by ``cordbench score`` equals the one on the leaderboard and in the report.

>>> ci = mean_ci([0.9, 0.8, 0.85, 0.95], dataset="synth-ms")
>>> round(ci.mean, 3), ci.n
(0.875, 4)
>>> ci.low <= ci.mean <= ci.high
True
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from benchmark.analysis.stats import (Alternative, MeanCI, bootstrap_mean_ci, holm_adjust, paired_difference_ci,
                                      paired_wilcoxon)

if TYPE_CHECKING:
    from benchmark.evaluation.results import ResultsFile

#: Bootstrap resamples of every CI cordbench shows.
N_RESAMPLES = 5000
CONFIDENCE = 0.95
ALPHA = 0.05
SEED = 0


def dataset_seed(seed: int, dataset: str) -> int:
    """Seed of a dataset's bootstrap draws: independent across datasets, stable under other filters."""
    return zlib.crc32(f"{seed}:{dataset}".encode())


def mean_ci(values: Sequence[float], *, dataset: str, seed: int = SEED, confidence: float = CONFIDENCE,
            n_resamples: int = N_RESAMPLES) -> MeanCI:
    """Mean and percentile-bootstrap CI of one dataset's (or group's) per-case values."""
    return bootstrap_mean_ci(values, confidence=confidence, n_resamples=n_resamples,
                             seed=dataset_seed(seed, dataset))


@dataclass(frozen=True)
class PairedComparison:
    """``a - b`` on the same cases: the mean difference with its CI, and the Wilcoxon signed-rank p-value."""

    difference: MeanCI
    p_value: float


def paired_comparison(a: Sequence[float], b: Sequence[float], *, dataset: str, seed: int = SEED,
                      alternative: Alternative = "two-sided", confidence: float = CONFIDENCE,
                      n_resamples: int = N_RESAMPLES) -> PairedComparison:
    """Paired bootstrap CI of ``mean(a - b)`` and the paired Wilcoxon p-value (NaN when there are no pairs)."""
    difference = paired_difference_ci(a, b, confidence=confidence, n_resamples=n_resamples,
                                      seed=dataset_seed(seed, dataset))
    p_value = paired_wilcoxon(a, b, alternative=alternative) if difference.n else float("nan")
    return PairedComparison(difference, p_value)


def significant_direction(difference: float, p_holm: float, *, higher_is_better: bool, alpha: float = ALPHA) -> int:
    """+1 when A (the first of a paired comparison) is significantly better, -1 when B is, 0 otherwise.

    The one significance rule of every single-draw verdict (the report's and demo's comparison tables, the seed
    table when a family has one seed): Holm-adjusted two-sided paired Wilcoxon p <= ``alpha`` and a non-zero
    difference; the direction follows the metric's better side.
    """
    if not math.isfinite(p_holm) or p_holm > alpha or difference == 0:
        return 0
    a_better = difference > 0 if higher_is_better else difference < 0
    return 1 if a_better else -1


def results_role_order(results: "ResultsFile", dataset_id: str) -> int:
    """Sort key of a dataset in a results file: in-domain first, then OOD."""
    for case in results.cases:
        if case.dataset == dataset_id:
            return 0 if case.suite_role == "in-domain" else 1
    return 2


def dataset_summaries(results: "ResultsFile", metric: str = "dice", seed: int = SEED) -> list[dict]:
    """Per dataset: role, seen in training, n, failures, leaked, mean with bootstrap 95 % CI.

    Every case counts (a failed one with its worst value) except the leaked ones: a case whose person is in the
    model's declared training data says nothing about generalization, so it is left out of the mean here as in
    the report and on the leaderboard, and counted in ``leaked``.
    """
    rows = []
    datasets = sorted({case.dataset for case in results.cases},
                      key=lambda dataset_id: (results_role_order(results, dataset_id), dataset_id))
    for dataset_id in datasets:
        cases = [case for case in results.cases if case.dataset == dataset_id]
        counted = [case for case in cases if not case.subject_in_training]
        ci = mean_ci([getattr(case, metric) for case in counted], dataset=dataset_id, seed=seed)
        rows.append({"dataset": dataset_id, "role": cases[0].suite_role,
                     "zero_shot": not cases[0].dataset_in_training, "n": len(counted),
                     "failures": sum(case.failure is not None for case in counted),
                     "leaked": len(cases) - len(counted),
                     "mean": ci.mean, "low": ci.low, "high": ci.high})
    return rows


__all__ = ["ALPHA", "CONFIDENCE", "N_RESAMPLES", "SEED", "MeanCI", "PairedComparison", "dataset_seed",
           "dataset_summaries", "holm_adjust", "mean_ci", "paired_comparison", "significant_direction"]
