"""One paired comparison of two models over a family of datasets: every caller (the report's comparison table, the
seed table, the regression gate, the CSA drift gate, the leaderboard's compare view) computes its rows here.

A *family* is the list of :class:`Pairs` one table or one gate shows: per row, one dataset's scans scored by both
models (``a`` and ``b``, paired by case id) with each scan's person. For every row, over people
(:mod:`benchmark.analysis.summary`):

* each side's mean over people with its bootstrap CI, and the mean over people of the per-person mean difference
  ``a - b`` with its paired bootstrap CI (people resampled; a person's scans move together);
* the Wilcoxon signed-rank p-value of the per-person mean differences (``alternative`` as the caller asks:
  two-sided for a comparison, one-sided for the regression gate);
* Holm's adjustment over the family: the rows that were tested.

Two rules every caller shares:

* **Leaked scans** (the person is in either model's declared training data, ``subject_in_training``) are left out
  of the pair: such a scan says nothing about generalization. Only the leaderboard's "exclude leaked cases"
  toggle turns this off (``exclude_leaked=False``). How many were left out is in ``leaked``.
* **A row without a test** is not in the Holm family: no pair left (``no paired cases``) or fewer than
  :data:`benchmark.analysis.summary.MIN_PEOPLE` people (``too few people``, the intervals are withheld too). Its
  ``p`` and ``p_holm`` are NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmark.analysis.stats import Alternative, MeanCI
from benchmark.analysis.summary import (CONFIDENCE, MIN_PEOPLE, N_RESAMPLES, SEED, TOO_FEW_PEOPLE, holm_adjust,
                                        mean_ci, paired_comparison)

TESTED = "tested"
NO_PAIRS = "no paired cases"

FAMILY_COLUMNS = ["dataset", "people", "scans", "leaked", "a_mean", "a_low", "a_high", "b_mean", "b_low", "b_high",
                  "difference", "difference_low", "difference_high", "p", "p_holm", "status"]


@dataclass(frozen=True)
class Pairs:
    """One row of a family: a dataset's paired scans (``a[i]``, ``b[i]`` the same scan) and each scan's person."""

    dataset: str
    persons: Sequence[Hashable]
    a: Sequence[float]
    b: Sequence[float]
    #: per scan: its person is in either model's training data (left out unless exclude_leaked=False)
    leaked: Sequence[bool] | None = None


@dataclass(frozen=True)
class FamilyRow:
    """The comparison of one row: people and scans compared, each side's mean and the difference a - b (CIs over
    people), the p-value and its Holm adjustment over the family, and whether it was tested."""

    dataset: str
    people: int
    scans: int
    leaked: int
    a: MeanCI
    b: MeanCI
    difference: MeanCI
    p: float
    p_holm: float
    status: str

    @property
    def tested(self) -> bool:
        return self.status == TESTED


def pairs_from_cases(dataset: str, pairs: Sequence[tuple], value: Callable[[object], float | None]) -> Pairs:
    """A :class:`Pairs` from ``(case of a, case of b)`` results rows (:class:`benchmark.evaluation.results.CaseResult`)
    of one dataset, with ``value(case)`` the number compared; a pair where either value is None is not a pair."""
    kept = [(first, second, value(first), value(second)) for first, second in pairs]
    kept = [item for item in kept if item[2] is not None and item[3] is not None]
    return Pairs(dataset, [first.person for first, *_ in kept], [float(x) for _, _, x, _ in kept],
                 [float(y) for *_, y in kept], [bool(first.subject_in_training or second.subject_in_training)
                                                for first, second, *_ in kept])


def _row(pairs: Pairs, *, alternative: Alternative, seed: int, exclude_leaked: bool, confidence: float,
         n_resamples: int, min_people: int) -> FamilyRow:
    a = np.asarray(pairs.a, dtype=np.float64)
    b = np.asarray(pairs.b, dtype=np.float64)
    persons = np.asarray([str(person) for person in pairs.persons], dtype=object)
    if not (a.size == b.size == persons.size):
        raise ValueError(f"{pairs.dataset}: a, b and persons must have one entry per scan "
                         f"({a.size}, {b.size}, {persons.size})")
    leaked = np.zeros(a.size, bool) if pairs.leaked is None else np.asarray(pairs.leaked, dtype=bool)
    keep = ~leaked if exclude_leaked else np.ones(a.size, bool)
    a, b, persons = a[keep], b[keep], persons[keep]
    options = {"dataset": pairs.dataset, "persons": persons, "seed": seed, "confidence": confidence,
               "n_resamples": n_resamples, "min_people": min_people}
    ci_a, ci_b = mean_ci(a, **options), mean_ci(b, **options)
    compared = paired_comparison(a, b, alternative=alternative, **options)
    difference = compared.difference
    if difference.n == 0:
        status = NO_PAIRS
    elif difference.n < min_people:
        status = TOO_FEW_PEOPLE
    else:
        status = TESTED
    return FamilyRow(pairs.dataset, difference.n, int(a.size), int(leaked.sum()) if exclude_leaked else 0, ci_a, ci_b,
                     difference, compared.p_value, math.nan, status)


def compare_family(family: Sequence[Pairs], *, alternative: Alternative = "two-sided", seed: int = SEED,
                   exclude_leaked: bool = True, confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES,
                   min_people: int = MIN_PEOPLE) -> list[FamilyRow]:
    """Every row of ``family`` compared (see the module docstring), in the given order; Holm over the tested rows."""
    rows = [_row(pairs, alternative=alternative, seed=seed, exclude_leaked=exclude_leaked, confidence=confidence,
                 n_resamples=n_resamples, min_people=min_people) for pairs in family]
    tested = [i for i, row in enumerate(rows) if row.tested]
    adjusted = holm_adjust([rows[i].p for i in tested]) if tested else []
    for i, p_holm in zip(tested, adjusted):
        rows[i] = FamilyRow(**{**rows[i].__dict__, "p_holm": p_holm})
    return rows


def family_frame(rows: Sequence[FamilyRow]) -> pd.DataFrame:
    """The rows as a table (columns :data:`FAMILY_COLUMNS`)."""
    return pd.DataFrame([{
        "dataset": row.dataset, "people": row.people, "scans": row.scans, "leaked": row.leaked,
        "a_mean": row.a.mean, "a_low": row.a.low, "a_high": row.a.high,
        "b_mean": row.b.mean, "b_low": row.b.low, "b_high": row.b.high,
        "difference": row.difference.mean, "difference_low": row.difference.low,
        "difference_high": row.difference.high, "p": row.p, "p_holm": row.p_holm, "status": row.status,
    } for row in rows], columns=FAMILY_COLUMNS)


__all__ = ["FAMILY_COLUMNS", "NO_PAIRS", "TESTED", "FamilyRow", "Pairs", "compare_family", "family_frame",
           "pairs_from_cases"]
