"""The ONLY place that turns per-case rows into summaries: every number shown by `score`, the demo, the report,
the notebook, the leaderboard and the gate comes from here, so the same rows give the same digits everywhere.

**The unit of analysis is the person** (docs/metrics.md, "Statistics"). A results row is one scan; several scans
of one person (contrasts, sessions, rescans: ``CaseResult.person``) are not independent, so every summary first
averages each person's scans and then works on people:

- :func:`person_means`: per person, the mean of the person's scans (the one aggregation step);
- :func:`mean_ci`: mean over people with a percentile-bootstrap 95 % CI that resamples people (a cluster bootstrap:
  a person's scans move together);
- :func:`paired_comparison`: mean paired difference over people with its bootstrap CI and the Wilcoxon signed-rank
  p-value of the per-person mean differences;
- :func:`holm_adjust`: Holm's step-down adjustment over a family of comparisons
  (:func:`benchmark.analysis.family.compare_family` defines the family);
- :func:`dataset_summaries`: per dataset of a results file: role, zero-shot, people (scans), failures, mean [CI].

With fewer than :data:`MIN_PEOPLE` people an interval is not given (NaN bounds, shown as "too few people") and no
test is made (NaN p-value): below that no two-sided paired test at 0.05 can reject and a percentile bootstrap
interval covers far less than its nominal 95 %.

One seed rule: the bootstrap of dataset ``D`` draws from ``default_rng(dataset_seed(seed, D))``. Draws are then
independent across datasets and do not change when other datasets are filtered in or out (the leaderboard),
and a CI printed by ``cordbench score`` equals the one on the leaderboard and in the report.

>>> ci = mean_ci([0.9, 0.8, 0.85, 0.95, 0.7, 0.75, 0.8, 0.9], dataset="synth-ms",
...              persons=["a", "a", "b", "b", "c", "d", "e", "f"])
>>> round(ci.mean, 4), ci.n, ci.scans
(0.8167, 6, 8)
>>> ci.low <= ci.mean <= ci.high
True
>>> mean_ci([0.9, 0.8], dataset="synth-ms", persons=["a", "a"]).interval_withheld
True
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Hashable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Sequence

import numpy as np

from benchmark.analysis.labels import TOO_FEW_PEOPLE
from benchmark.analysis.stats import Alternative, MeanCI, bootstrap_mean_ci, holm_adjust, paired_wilcoxon

if TYPE_CHECKING:
    from benchmark.evaluation.results import ResultsFile

#: Bootstrap resamples of every CI cordbench shows.
N_RESAMPLES = 5000
CONFIDENCE = 0.95
ALPHA = 0.05
SEED = 0
#: The fewest people an interval or a test is given for: with 5 people the smallest two-sided exact signed-rank
#: p-value is 2/2^5 = 0.0625 > 0.05 (no verdict is possible), and the percentile bootstrap of a mean over 5
#: people covers about 83 % instead of 95 % (docs/metrics.md; tools/bootstrap_coverage.py).
MIN_PEOPLE = 6


def dataset_seed(seed: int, dataset: str) -> int:
    """Seed of a dataset's bootstrap draws: independent across datasets, stable under other filters."""
    return zlib.crc32(f"{seed}:{dataset}".encode())


def person_means(values: Sequence[float], persons: Sequence[Hashable] | None) -> tuple[list, np.ndarray, np.ndarray]:
    """(person ids, per-person mean of the values, scans per person); people in sorted id order.

    ``persons=None``: every value is a person of its own (kept in the given order). Each person's sum is
    ``math.fsum`` (correctly rounded), so a person whose every scan appears twice has bit-identically the same mean.
    """
    array = np.asarray(values, dtype=np.float64).ravel()
    if persons is None:
        return list(range(array.size)), array, np.ones(array.size, dtype=np.int64)
    ids = np.asarray([str(person) for person in persons], dtype=object)
    if ids.size != array.size:
        raise ValueError(f"one person per value: got {array.size} values and {ids.size} persons")
    if array.size == 0:
        return [], np.empty(0), np.empty(0, dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_ids[1:] != sorted_ids[:-1])))
    stops = np.append(starts[1:], sorted_ids.size)
    sorted_values = array[order]
    means = np.array([math.fsum(sorted_values[a:b]) / (b - a) for a, b in zip(starts, stops)])
    return [str(person) for person in sorted_ids[starts]], means, (stops - starts).astype(np.int64)


def _withheld(ci: MeanCI, min_people: int) -> MeanCI:
    return replace(ci, low=math.nan, high=math.nan) if 0 < ci.n < min_people else ci


def mean_ci(values: Sequence[float], *, dataset: str, persons: Sequence[Hashable] | None = None, seed: int = SEED,
            confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES, min_people: int = MIN_PEOPLE) -> MeanCI:
    """Mean over people and the percentile-bootstrap CI resampling people, of one dataset's (or group's) per-scan
    values; ``n`` = people, ``scans`` = values. Fewer than ``min_people`` people: NaN bounds."""
    _, means, _ = person_means(values, persons)
    ci = bootstrap_mean_ci(means, confidence=confidence, n_resamples=n_resamples, seed=dataset_seed(seed, dataset))
    return _withheld(replace(ci, scans=int(np.asarray(values).size)), min_people)


@dataclass(frozen=True)
class PairedComparison:
    """``a - b`` on the same scans, over people: the mean difference with its CI, and the Wilcoxon signed-rank
    p-value of the per-person mean differences (NaN: not tested, too few people or no pairs)."""

    difference: MeanCI
    p_value: float

    @property
    def tested(self) -> bool:
        return math.isfinite(self.p_value)


def paired_comparison(a: Sequence[float], b: Sequence[float], *, dataset: str,
                      persons: Sequence[Hashable] | None = None, seed: int = SEED,
                      alternative: Alternative = "two-sided", confidence: float = CONFIDENCE,
                      n_resamples: int = N_RESAMPLES, min_people: int = MIN_PEOPLE) -> PairedComparison:
    """Paired bootstrap CI (resampling people) of the mean over people of ``a - b``, and the paired Wilcoxon
    signed-rank p-value on the per-person mean differences (NaN with fewer than ``min_people`` people or no pair)."""
    first = np.asarray(a, dtype=np.float64)
    second = np.asarray(b, dtype=np.float64)
    if first.shape != second.shape:
        raise ValueError(f"paired samples must have equal lengths, got {first.size} and {second.size}")
    difference = mean_ci(first - second, dataset=dataset, persons=persons, seed=seed, confidence=confidence,
                         n_resamples=n_resamples, min_people=min_people)
    if difference.n == 0 or difference.n < min_people:
        return PairedComparison(difference, math.nan)
    _, person_differences, _ = person_means(first - second, persons)
    p_value = paired_wilcoxon(person_differences, np.zeros_like(person_differences), alternative=alternative)
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
    """Per dataset: role, seen in training, people and scans, failures, leaked, mean over people with its
    bootstrap 95 % CI (resampling people; NaN bounds below :data:`MIN_PEOPLE`).

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
        ci = mean_ci([getattr(case, metric) for case in counted], dataset=dataset_id, seed=seed,
                     persons=[case.person for case in counted])
        rows.append({"dataset": dataset_id, "role": cases[0].suite_role,
                     "zero_shot": not cases[0].dataset_in_training, "people": ci.n, "scans": len(counted),
                     "failures": sum(case.failure is not None for case in counted),
                     "leaked": len(cases) - len(counted),
                     "mean": ci.mean, "low": ci.low, "high": ci.high})
    return rows


__all__ = ["ALPHA", "CONFIDENCE", "MIN_PEOPLE", "N_RESAMPLES", "SEED", "TOO_FEW_PEOPLE", "MeanCI", "PairedComparison",
           "dataset_seed", "dataset_summaries", "holm_adjust", "mean_ci", "paired_comparison", "person_means",
           "significant_direction"]
