"""The leaderboard's statistics, vectorised over submissions on dense (submission x scan) arrays of one dataset.

The numbers are those of the scalar path (:mod:`benchmark.analysis.summary`, :func:`benchmark.analysis.stats.
rank_with_ties`, :mod:`benchmark.analysis.csa_consistency`), computed for every submission at once:

* **people first**: each submission's counted scans are averaged per person (``person_index``: the registry's person,
  across sessions and rescans); a dataset mean is the mean over people;
* **CIs**: percentile bootstrap resampling people, the draws of ``bootstrap_mean_ci(person means,
  seed=dataset_seed(seed, dataset))`` (one count matrix of draws per number of people, one matrix product for all
  submissions); withheld (NaN) below ``min_people`` people; the CI of a mean over datasets is a stratified bootstrap
  (each dataset's resampled means averaged), withheld when any of its datasets has too few people;
* **ranks**: :func:`benchmark.analysis.stats.rank_with_ties` on the per-person means of the scans every ranked
  submission has; above 50 people the same procedure with all pairwise tests at once (:func:`rank_paired`);
* **CSA consistency**: per (subject, session) unit the SD of ``csa_mm2`` across its images, averaged per person,
  mean over people with the same bootstrap.

A block is any object with the attributes of ``leaderboard.data.DatasetBlock`` that are read here (``name``,
``values``, ``present``, ``leaked``, ``failed``, ``in_training``, ``person_index``; for CSA also ``csa``,
``csa_reference``, ``person`` and ``multi_contrast``): the leaderboard loads and caches, this module computes.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from benchmark.analysis import stats
from benchmark.analysis.summary import ALPHA, CONFIDENCE, MIN_PEOPLE, N_RESAMPLES, SEED, dataset_seed
from benchmark.evaluation.metrics import HIGHER_IS_BETTER, METRIC_NAMES

try:  # installed with nnunetv2 (scikit-learn); without it BLAS keeps its default thread count
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - depends on the environment
    threadpool_limits = None

#: the status of a cell (dataset x submission) besides "ok"
INCOMPLETE = "incomplete"
LEAK_EXCLUDED = "excluded (leak)"
HIDDEN = "hidden"
#: benchmark.analysis.stats.paired_wilcoxon uses exact / permutation null distributions up to 50 pairs and the
#: normal approximation above; the vectorised ranking only covers the latter regime.
_EXACT_WILCOXON_MAX_N = stats.EXACT_MAX_N
#: pairs per block in the vectorised Wilcoxon (bounds memory to ~ block * n_people doubles).
_PAIR_BLOCK_VALUES = 1 << 21


def single_thread_blas():
    """BLAS limited to one thread: these products are small, and a threaded BLAS on shared cores was
    4x slower than one thread in measurements (oversubscription)."""
    if threadpool_limits is None:  # pragma: no cover - depends on the environment
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


class PersonGroups:
    """Scans grouped by person: ``person`` holds each scan's person code (codes sorted like the person ids), and
    :meth:`sums` adds the columns of a (rows x scans) matrix per person, people in code order."""

    def __init__(self, person: np.ndarray):
        codes, inverse = np.unique(np.asarray(person, dtype=np.int64), return_inverse=True)
        self.codes = codes
        self.order = np.argsort(inverse, kind="stable")
        counts = np.bincount(inverse, minlength=len(codes))
        self.starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
        self.one_each = bool(len(codes) == len(inverse))

    @property
    def size(self) -> int:
        return len(self.codes)

    def sums(self, matrix: np.ndarray) -> np.ndarray:
        ordered = np.asarray(matrix, dtype=np.float64)[:, self.order]
        if self.one_each or ordered.shape[1] == 0:
            return ordered
        return np.add.reduceat(ordered, self.starts, axis=1)

    def means(self, values: np.ndarray, used: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(per-row mean of each person's used scans, NaN where none; used scans per person)."""
        counts = self.sums(used)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = self.sums(np.where(used, values, 0.0)) / counts
        return np.where(counts > 0, means, np.nan), counts


def rank_paired(names: Sequence[str], values: np.ndarray, *, higher_is_better: bool, alpha: float = ALPHA) -> dict[str, int]:
    """:func:`benchmark.analysis.stats.rank_with_ties` on ``{names[i]: values[i]}`` (rows paired by person).

    Up to 50 people (exact / permutation Wilcoxon) or with fewer than 3 models it calls
    ``stats.rank_with_ties``; above, all pairwise tests are computed at once with the same formulas.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.shape[1] <= _EXACT_WILCOXON_MAX_N or len(names) < 3:
        return stats.rank_with_ties({name: values[i] for i, name in enumerate(names)}, higher_is_better=higher_is_better, alpha=alpha)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not np.all(np.isfinite(values)):
        raise ValueError("scores must be finite (a missing case is scored worst, never NaN/inf)")
    order = sorted(range(len(names)), key=lambda i: names[i])
    names = [names[i] for i in order]
    values = values[order]
    direction = 1.0 if higher_is_better else -1.0
    means = np.array([float(np.mean(row)) for row in values])
    first, second = np.triu_indices(len(names), 1)  # the order of itertools.combinations(sorted names, 2)
    p_values = np.empty(len(first))
    block = max(1, _PAIR_BLOCK_VALUES // values.shape[1])
    for lo in range(0, len(first), block):
        hi = min(len(first), lo + block)
        p_values[lo:hi] = stats.wilcoxon_normal_p_rows(values[first[lo:hi]] - values[second[lo:hi]])
    adjusted = np.asarray(stats.holm_adjust(p_values))
    separated = (adjusted <= alpha) & (means[first] != means[second])
    worse = np.where(direction * (means[second] - means[first]) > 0, first, second)[separated]
    ranks = 1 + np.bincount(worse, minlength=len(names))
    ranked = sorted(range(len(names)), key=lambda i: (ranks[i], -direction * means[i], names[i]))
    return {names[i]: int(ranks[i]) for i in ranked}


def _resample_rows(person_means: np.ndarray, counted: np.ndarray, *, n_resamples: int, seed: int) -> np.ndarray:
    """Resampled means over people per row: rows counting every person share one set of draws (paired); a row
    that lost people (leaked scans excluded) is resampled over its own people, rows with as many people sharing
    one count matrix (the draws depend only on the seed and the number of people)."""
    rows = person_means.shape[0]
    resamples = np.empty((rows, n_resamples))
    full = counted.all(axis=1)
    if full.any():
        resamples[full] = stats.bootstrap_resample_means(person_means[full], n_resamples=n_resamples, seed=seed)
    partial = np.flatnonzero(~full)
    people = counted.sum(axis=1)
    for n_own in np.unique(people[partial]):
        same = partial[people[partial] == n_own]
        own = np.stack([person_means[r, counted[r]] for r in same])
        resamples[same] = stats.bootstrap_resample_means(own, n_resamples=n_resamples, seed=seed)
    return resamples


# --------------------------------------------------------------------------------------------
# one dataset: means over people, CIs, completeness, ranks
# --------------------------------------------------------------------------------------------


@dataclass
class BlockStats:
    block: Any
    mask: np.ndarray  # (n,) cases passing the filters
    used: np.ndarray  # (S, n_masked) case counted for the submission
    values: np.ndarray  # (S, n_masked) metric values (NaN where absent)
    n_used: np.ndarray  # (S,) scans counted
    n_expected: np.ndarray  # (S,) scans expected
    n_leaked: np.ndarray  # (S,) leaked rows among the filtered cases
    n_failed: np.ndarray  # (S,) failure rows counted
    complete: np.ndarray  # (S,)
    shown: np.ndarray  # (S,) not hidden by the zero-shot toggle
    mean: np.ndarray  # (S,) mean over people; NaN unless complete and shown
    low: np.ndarray  # NaN also where the interval is withheld (too few people)
    high: np.ndarray
    rank: np.ndarray  # (S,) NaN unless ranked
    rows: np.ndarray  # submissions with a resampled mean (complete and shown)
    resamples: np.ndarray  # (len(rows), B)
    people: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (S,) people counted
    min_people: int = MIN_PEOPLE

    @property
    def status(self) -> np.ndarray:
        out = np.full(len(self.complete), "ok", dtype=object)
        out[~self.complete] = INCOMPLETE
        out[(self.n_expected == 0) & (self.n_leaked > 0)] = LEAK_EXCLUDED
        out[~self.shown] = HIDDEN
        return out

    @property
    def enough_people(self) -> np.ndarray:
        """(S,) an interval is given (at least ``min_people`` people counted)."""
        return self.people >= self.min_people


def block_stats(block, *, metric: str, zero_shot_only: bool, exclude_leaked: bool, mask: np.ndarray,
                n_resamples: int = N_RESAMPLES, seed: int = SEED, confidence: float = CONFIDENCE, alpha: float = ALPHA,
                min_people: int = MIN_PEOPLE) -> BlockStats | None:
    """Means over people, CIs, completeness and ranks of every submission on one dataset's scans passing ``mask``
    (None: no scan passes)."""
    if metric not in METRIC_NAMES:
        raise ValueError(f"unknown metric {metric!r}; one of {METRIC_NAMES}")
    n = int(mask.sum())
    if n == 0:
        return None
    values = block.values[metric][:, mask]
    present = block.present[:, mask]
    leaked = block.leaked[:, mask] & present
    usable = present & np.isfinite(values)
    if exclude_leaked:
        used = usable & ~leaked
        n_expected = (~leaked).sum(axis=1)
    else:
        used = usable
        n_expected = np.full(values.shape[0], n)
    n_used = used.sum(axis=1)
    complete = (n_used == n_expected) & (n_expected > 0)
    shown = ~block.in_training if zero_shot_only else np.ones(values.shape[0], dtype=bool)
    rows = np.flatnonzero(complete & shown)
    groups = PersonGroups(block.person_index[mask])
    person_means, per_person = groups.means(values, used)
    counted = per_person > 0
    people = counted.sum(axis=1)
    mean, low, high, rank = (np.full(values.shape[0], np.nan) for _ in range(4))
    resamples = np.empty((0, n_resamples))
    if len(rows):
        sub_means = np.where(counted[rows], person_means[rows], 0.0)
        mean[rows] = sub_means.sum(axis=1) / people[rows]
        resamples = _resample_rows(sub_means, counted[rows], n_resamples=n_resamples,
                                   seed=dataset_seed(seed, block.name))
        low[rows], high[rows] = stats.percentile_ci(resamples, mean[rows], confidence)
        withheld = rows[people[rows] < min_people]
        low[withheld], high[withheld] = np.nan, np.nan
        paired = used[rows].all(axis=0)
        if paired.any():
            paired_groups = PersonGroups(block.person_index[mask][paired])
            on_people, _ = paired_groups.means(values[rows][:, paired], np.ones((len(rows), int(paired.sum())), bool))
            names = [str(i) for i in rows]
            ranked = rank_paired(names, on_people, higher_is_better=HIGHER_IS_BETTER[metric], alpha=alpha)
            for name, value in ranked.items():
                rank[int(name)] = value
    return BlockStats(block=block, mask=mask, used=used, values=values, n_used=n_used, n_expected=n_expected,
                      n_leaked=leaked.sum(axis=1), n_failed=(block.failed[:, mask] & used).sum(axis=1),
                      complete=complete, shown=shown, mean=mean, low=low, high=high, rank=rank, rows=rows,
                      resamples=resamples, people=people, min_people=min_people)


# --------------------------------------------------------------------------------------------
# CSA consistency across contrasts (label-free)
# --------------------------------------------------------------------------------------------


@dataclass
class CsaStats:
    """CSA consistency across contrasts of one dataset: per submission the mean over people of the SD (mm²) of
    csa_mm2 across the images of each (subject, session) with >= 2 images (averaged per person first), with its
    bootstrap CI resampling people; and the same on the reference masks (the floor). NaN / 0 people where no
    person has two measured images; NaN bounds below ``min_people`` people."""

    sd: np.ndarray  # (S,)
    low: np.ndarray
    high: np.ndarray
    persons: np.ndarray  # (S,) people counted
    measured: np.ndarray  # (S,) the submission has a csa_mm2 on some filtered case (older results files have none)
    floor: tuple[float, float, float, int]  # reference masks: (mean, low, high, people)


def person_sds(values: np.ndarray, usable: np.ndarray, person: np.ndarray, n_persons: int) -> tuple[np.ndarray, np.ndarray]:
    """(SD with ddof=1 per row and unit, images per row and unit) of ``values`` (rows x cases) over the usable
    cases, ``person`` the unit (subject, session) of each case; the SD is NaN where a unit has fewer than 2 usable
    images."""
    member = np.zeros((len(person), n_persons))
    member[np.arange(len(person)), person] = 1.0
    counts = usable.astype(np.float64) @ member
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(usable, values, 0.0) @ member / counts
        squares = np.where(usable, values - means[:, person], 0.0) ** 2 @ member
        sds = np.sqrt(squares / (counts - 1))
    return np.where(counts >= 2, sds, np.nan), counts


def _mean_over_people(person_means: np.ndarray, counted: np.ndarray, *, dataset: str, n_resamples: int, seed: int,
                      confidence: float, min_people: int) -> tuple[np.ndarray, ...]:
    """Per row: mean over the counted people with the percentile-bootstrap CI of
    :func:`benchmark.analysis.summary.mean_ci` (rows with as many people share one set of draws)."""
    rows = person_means.shape[0]
    mean, low, high = (np.full(rows, np.nan) for _ in range(3))
    people = counted.sum(axis=1)
    for count in np.unique(people[people > 0]):
        same = np.flatnonzero(people == count)
        own = np.stack([person_means[r, counted[r]] for r in same])
        if len(same) == 1:  # one row: mean_ci's own function is cheaper than a count matrix
            ci = stats.bootstrap_mean_ci(own[0], confidence=confidence, n_resamples=n_resamples,
                                         seed=dataset_seed(seed, dataset))
            mean[same], low[same], high[same] = ci.mean, ci.low, ci.high
        else:
            mean[same] = own.mean(axis=1)
            resamples = stats.bootstrap_resample_means(own, n_resamples=n_resamples, seed=dataset_seed(seed, dataset))
            low[same], high[same] = stats.percentile_ci(resamples, mean[same], confidence)
        if count < min_people:
            low[same], high[same] = np.nan, np.nan
    return mean, low, high, people


def csa_stats(block, *, exclude_leaked: bool, mask: np.ndarray, n_resamples: int = N_RESAMPLES, seed: int = SEED,
              confidence: float = CONFIDENCE, min_people: int = MIN_PEOPLE) -> CsaStats | None:
    """:func:`benchmark.analysis.csa_consistency.dataset_consistency` of the block's scans passing ``mask`` (None:
    the dataset has no person with two measured images), vectorised over submissions.

    A submission's images are its counted cases (present, CSA measured, and not leaked when leaked cases are
    excluded); the floor uses every filtered case's reference CSA. Same units, people, order, SDs and bootstrap
    draws as ``dataset_consistency(person_consistency(results), seed=seed)`` (tests/test_leaderboard_tables.py).
    """
    if not block.multi_contrast or block.csa is None:
        return None
    unit = block.person[mask]
    n_units = int(block.person.max()) + 1
    values = block.csa[:, mask]
    usable = block.present[:, mask] & np.isfinite(values)
    measured = usable.any(axis=1)
    if exclude_leaked:
        usable &= ~block.leaked[:, mask]
    # the reference masks as one more row: the floor shares the draws of the models with as many people
    values = np.vstack([values, block.csa_reference[mask]])
    usable = np.vstack([usable, np.isfinite(values[-1])])
    sds, _ = person_sds(values, usable, unit, n_units)
    unit_person = np.zeros(n_units, dtype=np.int64)
    unit_person[unit] = block.person_index[mask]
    present_units = np.unique(unit)
    groups = PersonGroups(unit_person[present_units])
    valid = np.isfinite(sds[:, present_units])
    person_means, per_person = groups.means(sds[:, present_units], valid)
    mean, low, high, people = _mean_over_people(person_means, per_person > 0, dataset=block.name,
                                                n_resamples=n_resamples, seed=seed, confidence=confidence,
                                                min_people=min_people)
    return CsaStats(sd=mean[:-1], low=low[:-1], high=high[:-1], persons=people[:-1], measured=measured,
                    floor=(float(mean[-1]), float(low[-1]), float(high[-1]), int(people[-1])))


# --------------------------------------------------------------------------------------------
# the main table: every dataset, the means over datasets, the mean rank
# --------------------------------------------------------------------------------------------


@dataclass
class MainTableData:
    """Numbers behind the main table (index: submission; dataset columns in display order)."""

    metric: str
    zero_shot_only: bool
    exclude_leaked: bool
    datasets: list[str]
    suite_roles: dict[str, str]
    meta: pd.DataFrame
    mean: pd.DataFrame
    low: pd.DataFrame
    high: pd.DataFrame
    status: pd.DataFrame  # ok / incomplete / hidden / excluded (leak)
    n_used: pd.DataFrame
    n_expected: pd.DataFrame
    n_leaked: pd.DataFrame
    n_failed: pd.DataFrame
    rank: pd.DataFrame
    trained: pd.DataFrame  # dataset_in_training
    summary: pd.DataFrame  # in_/ood_ mean, low, high, status, n; mean_rank, rank_status, n_ranked
    #: people counted per (submission, dataset)
    people: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: datasets shown that have a person with >= 2 measured images (a CSA-consistency column each)
    csa_datasets: list[str] = field(default_factory=list)
    csa_sd: pd.DataFrame = field(default_factory=pd.DataFrame)  # mean over people of the CSA SD (mm²)
    csa_low: pd.DataFrame = field(default_factory=pd.DataFrame)
    csa_high: pd.DataFrame = field(default_factory=pd.DataFrame)
    csa_persons: pd.DataFrame = field(default_factory=pd.DataFrame)
    csa_measured: pd.DataFrame = field(default_factory=pd.DataFrame)  # 1.0 where the model has a csa_mm2 there
    #: dataset -> the reference masks' (mean SD, CI low, CI high, people): the floor
    csa_floor: dict[str, tuple[float, float, float, int]] = field(default_factory=dict)


def group_summary(n_subs: int, stats_list: list[BlockStats], member: np.ndarray,
                  confidence: float) -> tuple[np.ndarray, ...]:
    """Mean over member datasets of the dataset means (+ stratified bootstrap CI) per submission; the CI is withheld
    when a member dataset has too few people (its resampled mean would carry no sampling variance)."""
    means, lows, highs = (np.full(n_subs, np.nan) for _ in range(3))
    status = np.full(n_subs, "", dtype=object)
    count = member.sum(axis=1)
    if not stats_list:
        return means, lows, highs, status, count
    complete = np.stack([s.complete for s in stats_list], axis=1)
    incomplete = (member & ~complete).any(axis=1)
    status[count > 0] = "ok"
    status[incomplete] = INCOMPLETE
    ok = np.flatnonzero(status == "ok")
    if len(ok) == 0:
        return means, lows, highs, status, count
    n_resamples = stats_list[0].resamples.shape[1]
    acc = np.zeros((n_subs, n_resamples))
    cell_means = np.stack([s.mean for s in stats_list], axis=1)
    too_few = np.zeros(n_subs, dtype=bool)
    for j, bs in enumerate(stats_list):
        take = member[bs.rows, j] & np.isin(bs.rows, ok)
        acc[bs.rows[take]] += bs.resamples[take]
        too_few |= member[:, j] & ~bs.enough_people
    means[ok] = np.where(member[ok], cell_means[ok], 0.0).sum(axis=1) / count[ok]
    lows[ok], highs[ok] = stats.percentile_ci(acc[ok] / count[ok][:, None], means[ok], confidence)
    lows[too_few], highs[too_few] = np.nan, np.nan
    return means, lows, highs, status, count


def summarise(submissions: list[str], meta: pd.DataFrame, stats_list: list[BlockStats],
              csa_by_dataset: dict[str, CsaStats], *, metric: str, zero_shot_only: bool, exclude_leaked: bool,
              confidence: float = CONFIDENCE) -> MainTableData:
    """The main table's numbers from the per-dataset statistics (datasets with a shown submission, in order)."""
    stats_list = [bs for bs in stats_list if bs.shown.any()]
    names = [bs.block.name for bs in stats_list]
    n_subs = len(submissions)
    index = pd.Index(submissions, name="submission")

    def frame(arrays: list[np.ndarray]) -> pd.DataFrame:
        data = np.stack(arrays, axis=1) if arrays else np.empty((n_subs, 0))
        return pd.DataFrame(data, index=index, columns=names)

    def stacked(attribute: str, dtype=bool) -> np.ndarray:
        if not stats_list:
            return np.zeros((n_subs, 0), dtype)
        return np.stack([attribute(bs) if callable(attribute) else getattr(bs, attribute) for bs in stats_list], axis=1)

    trained = stacked(lambda bs: bs.block.in_training)
    shown = stacked("shown")
    counted = stacked(lambda bs: bs.n_expected > 0)
    summary = pd.DataFrame(index=index)
    for prefix, member in (("in", shown & counted & trained), ("ood", shown & counted & ~trained)):
        mean, low, high, status, count = group_summary(n_subs, stats_list, member, confidence)
        summary[f"{prefix}_mean"], summary[f"{prefix}_low"], summary[f"{prefix}_high"] = mean, low, high
        summary[f"{prefix}_status"], summary[f"{prefix}_n"] = status, count
    ranks = stacked("rank", float) if stats_list else np.empty((n_subs, 0))
    complete = stacked("complete")
    ranked = shown & counted
    n_ranked = ranked.sum(axis=1)
    rank_incomplete = (ranked & ~complete).any(axis=1)
    with np.errstate(invalid="ignore"):
        mean_rank = np.where(ranked, np.nan_to_num(ranks), 0.0).sum(axis=1) / n_ranked
    missing_rank = (ranked & np.isnan(ranks)).any(axis=1)
    mean_rank[rank_incomplete | (n_ranked == 0) | missing_rank] = np.nan
    summary["mean_rank"] = mean_rank
    summary["rank_status"] = np.where(rank_incomplete, INCOMPLETE, np.where((n_ranked == 0) | missing_rank, "", "ok"))
    summary["n_ranked"] = n_ranked
    csa_names = [name for name in names if name in csa_by_dataset]

    def csa_frame(part: str) -> pd.DataFrame:
        return pd.DataFrame({name: getattr(csa_by_dataset[name], part) for name in csa_names}, index=index,
                            columns=csa_names, dtype=float)

    return MainTableData(
        metric=metric, zero_shot_only=zero_shot_only, exclude_leaked=exclude_leaked, datasets=names,
        suite_roles={bs.block.name: bs.block.suite_role for bs in stats_list}, meta=meta,
        mean=frame([bs.mean for bs in stats_list]), low=frame([bs.low for bs in stats_list]),
        high=frame([bs.high for bs in stats_list]), status=frame([bs.status for bs in stats_list]),
        n_used=frame([bs.n_used for bs in stats_list]), n_expected=frame([bs.n_expected for bs in stats_list]),
        n_leaked=frame([bs.n_leaked for bs in stats_list]), n_failed=frame([bs.n_failed for bs in stats_list]),
        rank=frame([bs.rank for bs in stats_list]), trained=frame([bs.block.in_training for bs in stats_list]),
        summary=summary, people=frame([bs.people for bs in stats_list]), csa_datasets=csa_names,
        csa_sd=csa_frame("sd"), csa_low=csa_frame("low"), csa_high=csa_frame("high"),
        csa_persons=csa_frame("persons"), csa_measured=csa_frame("measured"),
        csa_floor={name: csa_by_dataset[name].floor for name in csa_names},
    )


def interval_withheld(mean: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Where a mean is given without an interval (too few people)."""
    return np.isfinite(mean) & ~np.isfinite(low)


__all__ = ["HIDDEN", "INCOMPLETE", "LEAK_EXCLUDED", "BlockStats", "CsaStats", "MainTableData", "PersonGroups",
           "block_stats", "csa_stats", "group_summary", "interval_withheld", "person_sds", "rank_paired",
           "single_thread_blas", "summarise"]
