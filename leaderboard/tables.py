"""Leaderboard tables: the statistics and views behind ``leaderboard/app.py`` (no Streamlit here), computed on the
blocks of :mod:`leaderboard.data` with :mod:`benchmark.analysis`.

Input is the per-case table of results files (:func:`load_results_dirs` / :func:`cases_from_results`:
``benchmark.evaluation.results`` rows plus the header fields licence, parameters, declared training datasets and
the results file path). Everything here reads; nothing writes results.

Definitions (also on the app's methodology page and in ``docs/leaderboard.md``):

* **Benchmark version** = the suite's split hash. Tables are built for ONE version at a time; cases of
  different versions are never mixed.
* **Expected cases** of a dataset = the union of case ids any submission reported for it in that
  version (after the case filters). A submission without a row for an expected case is
  **incomplete** on that dataset: the cell says ``incomplete`` and no mean (dataset, in-domain, OOD,
  rank) is computed from it. A ``failure`` row is a case that IS scored (worst values), so it never
  makes a submission incomplete. A row whose metric value is not finite counts as missing.
* **In-domain / OOD per model**: a dataset is OOD (zero-shot) for a model only if
  ``dataset_in_training`` is False in its rows (suite labels are only used to order columns). With
  ``zero_shot_only`` a model's trained-on datasets are hidden for that model.
* **Leakage**: rows with ``subject_in_training`` True. With ``Filters.exclude_leaked`` (default) they
  are dropped for that model and are not expected from it (so they don't make it incomplete); the
  notes column says how many. Otherwise they are kept and the cell is marked ``⚠``.
* **Means and CIs**: a dataset mean is the mean over its cases; mean in-domain / mean OOD is the
  unweighted mean of the model's dataset means. 95 % CIs are percentile bootstraps over cases, the
  resamples drawn per dataset with ``numpy.random.default_rng(dataset_seed(seed, dataset))`` exactly as
  :func:`benchmark.analysis.stats.bootstrap_mean_ci` draws them (same calls, same quantile rule), so every cell
  equals ``bootstrap_mean_ci(values, seed=dataset_seed(seed, dataset))``. Submissions with all cases of
  a dataset share one set of resamples (a paired bootstrap, one matrix product); a submission whose
  leaked cases are excluded is resampled over its own cases. The CI of a mean over datasets resamples every
  dataset independently (stratified bootstrap) and averages the resampled dataset means.
* **Ranks**: per dataset, :func:`benchmark.analysis.stats.rank_with_ties` over the complete, shown submissions on
  the cases all of them have (paired); a vectorised implementation of the same procedure is used when
  there are more than 50 cases (where every Wilcoxon test is the normal approximation), identical to
  it by construction and by test. Mean rank = mean over the datasets shown for that model.
* **CSA consistency across contrasts** (label-free): a column per dataset shown that has a person with two measured
  images: :func:`benchmark.analysis.csa_consistency.dataset_consistency` (mean over persons of the SD of ``csa_mm2``
  across the person's images, bootstrap CI over persons) of each model's counted cases, vectorised over models
  (:func:`csa_stats`; equal to it by test). The header gives the reference masks' floor. Hidden, incomplete and
  leak-excluded cells follow the dataset's cell; blank: no person with two counted images.
* **One-voxel ceiling**: with a :class:`benchmark.evaluation.ceilings.CeilingsFile` for the version and the metric
  Dice, each dataset's header carries its 1-voxel Dice (:func:`main_table_headers`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from benchmark.analysis import stats
from benchmark.environment import available_cores
from benchmark.analysis.labels import DECIMALS
from benchmark.analysis.summary import (ALPHA, CONFIDENCE, N_RESAMPLES, SEED, dataset_seed, holm_adjust, mean_ci,
                                        paired_comparison)

try:  # installed with nnunetv2 (scikit-learn); without it BLAS keeps its default thread count
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - depends on the environment
    threadpool_limits = None
from benchmark.evaluation.metrics import HIGHER_IS_BETTER, METRIC_NAMES
from benchmark.evaluation.results import load_cases_index
from benchmark.data.submissions import PREDICTIONS_NOTE
from leaderboard.data import (
    KEY_COLUMN, INCOMPLETE, LEAK_EXCLUDED, TRAINED_MARK, LEAK_MARK, ROLE_LABELS, META_COLUMNS, MEAN_IN_COLUMN,
    MEAN_OOD_COLUMN, MEAN_RANK_COLUMN, NOTES_COLUMN, LEAK_NOTE, Filters, DatasetBlock, Prepared, _prepared,
    case_mask,
)

if TYPE_CHECKING:  # the app loads the file; tables only reads its per-dataset numbers
    from benchmark.evaluation.ceilings import CeilingsFile

#: decimals of the CSA columns (mm²; MS atrophy is ~1.4 mm² a year on an ~80 mm² cord)
CSA_DECIMALS = 2
#: a CSA cell of a model whose results carry no csa_mm2 on the dataset (scored before CSA was measured)
CSA_NOT_MEASURED = "not measured"

#: benchmark.analysis.stats.paired_wilcoxon uses exact / permutation null distributions up to 50 pairs and the
#: normal approximation above; the vectorised ranking only covers the latter regime.
_EXACT_WILCOXON_MAX_N = stats.EXACT_MAX_N
#: threads computing datasets in parallel (one per core, at most 4)
_WORKERS = min(4, available_cores())
#: pairs per block in the vectorised Wilcoxon (bounds memory to ~ block * n_cases doubles).
_PAIR_BLOCK_VALUES = 1 << 21


# --------------------------------------------------------------------------------------------
# statistics (vectorised; equal to benchmark.analysis.stats)
# --------------------------------------------------------------------------------------------


def _single_thread_blas():
    """BLAS limited to one thread: these products are small, and a threaded BLAS on shared cores was
    4x slower than one thread in measurements (oversubscription)."""
    if threadpool_limits is None:  # pragma: no cover - depends on the environment
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def rank_paired(names: Sequence[str], values: np.ndarray, *, higher_is_better: bool, alpha: float = ALPHA) -> dict[str, int]:
    """:func:`benchmark.analysis.stats.rank_with_ties` on ``{names[i]: values[i]}`` (rows paired by case).

    Up to 50 cases (exact / permutation Wilcoxon) or with fewer than 3 models it calls
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


# --------------------------------------------------------------------------------------------
# per-dataset statistics
# --------------------------------------------------------------------------------------------


@dataclass
class BlockStats:
    block: DatasetBlock
    mask: np.ndarray  # (n,) cases passing the filters
    used: np.ndarray  # (S, n_masked) case counted for the submission
    values: np.ndarray  # (S, n_masked) metric values (NaN where absent)
    n_used: np.ndarray  # (S,)
    n_expected: np.ndarray  # (S,)
    n_leaked: np.ndarray  # (S,) leaked rows among the filtered cases
    n_failed: np.ndarray  # (S,) failure rows counted
    complete: np.ndarray  # (S,)
    shown: np.ndarray  # (S,) not hidden by the zero-shot toggle
    mean: np.ndarray  # (S,) NaN unless complete and shown
    low: np.ndarray
    high: np.ndarray
    rank: np.ndarray  # (S,) NaN unless ranked
    rows: np.ndarray  # submissions with a resampled mean (complete and shown)
    resamples: np.ndarray  # (len(rows), B)

    @property
    def status(self) -> np.ndarray:
        out = np.full(len(self.complete), "ok", dtype=object)
        out[~self.complete] = INCOMPLETE
        out[(self.n_expected == 0) & (self.n_leaked > 0)] = LEAK_EXCLUDED
        out[~self.shown] = "hidden"
        return out


def block_stats(
    block: DatasetBlock,
    *,
    metric: str,
    zero_shot_only: bool,
    filters: Filters,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
    confidence: float = CONFIDENCE,
    alpha: float = ALPHA,
    mask: np.ndarray | None = None,
) -> BlockStats | None:
    """Means, CIs, completeness and ranks of every submission on one dataset (None: no case passes)."""
    if metric not in METRIC_NAMES:
        raise ValueError(f"unknown metric {metric!r}; one of {METRIC_NAMES}")
    if mask is None:
        mask = case_mask(block, filters)
    n = int(mask.sum())
    if n == 0:
        return None
    values = block.values[metric][:, mask]
    present = block.present[:, mask]
    leaked = block.leaked[:, mask] & present
    usable = present & np.isfinite(values)
    if filters.exclude_leaked:
        used = usable & ~leaked
        n_expected = (~leaked).sum(axis=1)
    else:
        used = usable
        n_expected = np.full(values.shape[0], n)
    n_used = used.sum(axis=1)
    complete = (n_used == n_expected) & (n_expected > 0)
    shown = ~block.in_training if zero_shot_only else np.ones(values.shape[0], dtype=bool)
    rows = np.flatnonzero(complete & shown)
    mean = np.full(values.shape[0], np.nan)
    low = np.full(values.shape[0], np.nan)
    high = np.full(values.shape[0], np.nan)
    rank = np.full(values.shape[0], np.nan)
    resamples = np.empty((0, n_resamples))
    if len(rows):
        sub_values = np.where(used[rows], values[rows], 0.0)
        mean[rows] = sub_values.sum(axis=1) / n_used[rows]
        block_seed = dataset_seed(seed, block.name)
        full = used[rows].all(axis=1)
        resamples = np.empty((len(rows), n_resamples))
        if full.any():  # one set of resamples for every submission that has all cases (paired)
            resamples[full] = stats.bootstrap_resample_means(sub_values[full], n_resamples=n_resamples, seed=block_seed)
        # leaked cases excluded: resample each submission's own cases; the draws depend only on
        # (seed, number of cases), so submissions with as many cases share one count matrix
        partial = np.flatnonzero(~full)
        for n_own in np.unique(n_used[rows[partial]]):
            same = partial[n_used[rows[partial]] == n_own]
            own = np.stack([values[rows[i], used[rows[i]]] for i in same])
            resamples[same] = stats.bootstrap_resample_means(own, n_resamples=n_resamples, seed=block_seed)
        low[rows], high[rows] = stats.percentile_ci(resamples, mean[rows], confidence)
        paired = used[rows].all(axis=0)
        if paired.any():
            names = [str(i) for i in rows]
            ranked = rank_paired(names, values[rows][:, paired], higher_is_better=HIGHER_IS_BETTER[metric], alpha=alpha)
            for name, value in ranked.items():
                rank[int(name)] = value
    return BlockStats(
        block=block,
        mask=mask,
        used=used,
        values=values,
        n_used=n_used,
        n_expected=n_expected,
        n_leaked=leaked.sum(axis=1),
        n_failed=(block.failed[:, mask] & used).sum(axis=1),
        complete=complete,
        shown=shown,
        mean=mean,
        low=low,
        high=high,
        rank=rank,
        rows=rows,
        resamples=resamples,
    )


def cached_block_stats(prep: Prepared, block: DatasetBlock, **kwargs: Any) -> BlockStats | None:
    """block_stats memoised on the prepared data (filter changes that keep a dataset's cases reuse its statistics)."""
    filters: Filters = kwargs["filters"]
    mask = case_mask(block, filters)
    key = (
        block.name, mask.tobytes(), filters.exclude_leaked,
        *(kwargs[name] for name in ("metric", "zero_shot_only", "n_resamples", "seed", "confidence", "alpha")),
    )
    return memoised(prep, key, lambda: block_stats(block, mask=mask, **kwargs))


def memoised(prep: Prepared, key: tuple, compute):
    """``compute()``, remembered on the prepared data under ``key`` (least recently used dropped first)."""
    with prep._lock:
        if key in prep._memo:
            prep._memo.move_to_end(key)
            return prep._memo[key]
    result = compute()
    with prep._lock:
        prep._memo[key] = result
        while len(prep._memo) > prep.memo_size:
            prep._memo.popitem(last=False)
    return result


# --------------------------------------------------------------------------------------------
# CSA consistency across contrasts (label-free)
# --------------------------------------------------------------------------------------------


@dataclass
class CsaStats:
    """CSA consistency across contrasts of one dataset: per submission the mean over persons with >= 2 images of
    the SD (mm²) of csa_mm2 across the person's images, with its bootstrap CI over persons; and the same on the
    reference masks (the floor). NaN / 0 persons where no person has two measured images."""

    sd: np.ndarray  # (S,)
    low: np.ndarray
    high: np.ndarray
    persons: np.ndarray  # (S,) persons counted
    measured: np.ndarray  # (S,) the submission has a csa_mm2 on some filtered case (older results files have none)
    floor: tuple[float, float, float, int]  # reference masks: (mean, low, high, persons)


def person_sds(values: np.ndarray, usable: np.ndarray, person: np.ndarray, n_persons: int) -> tuple[np.ndarray, np.ndarray]:
    """(SD with ddof=1 per row and person, images per row and person) of ``values`` (rows x cases) over the usable
    cases; the SD is NaN where a person has fewer than 2 usable images."""
    member = np.zeros((len(person), n_persons))
    member[np.arange(len(person)), person] = 1.0
    counts = usable.astype(np.float64) @ member
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(usable, values, 0.0) @ member / counts
        squares = np.where(usable, values - means[:, person], 0.0) ** 2 @ member
        sds = np.sqrt(squares / (counts - 1))
    return np.where(counts >= 2, sds, np.nan), counts


def _mean_sd_ci(sds: np.ndarray, *, dataset: str, n_resamples: int, seed: int,
                confidence: float) -> tuple[np.ndarray, ...]:
    """Per row: mean over persons (those with an SD, in person order) with the percentile-bootstrap CI of
    :func:`benchmark.analysis.summary.mean_ci` (``dataset_consistency``): rows with as many persons share one set
    of resamples, drawn as ``bootstrap_mean_ci`` draws them."""
    rows = sds.shape[0]
    mean, low, high = (np.full(rows, np.nan) for _ in range(3))
    valid = np.isfinite(sds)
    persons = valid.sum(axis=1)
    for count in np.unique(persons[persons > 0]):
        same = np.flatnonzero(persons == count)
        own = np.stack([sds[r, valid[r]] for r in same])
        if len(same) == 1:  # one row: mean_ci's own function is cheaper than a count matrix
            ci = stats.bootstrap_mean_ci(own[0], confidence=confidence, n_resamples=n_resamples,
                                         seed=dataset_seed(seed, dataset))
            mean[same], low[same], high[same] = ci.mean, ci.low, ci.high
            continue
        mean[same] = own.mean(axis=1)
        resamples = stats.bootstrap_resample_means(own, n_resamples=n_resamples, seed=dataset_seed(seed, dataset))
        low[same], high[same] = stats.percentile_ci(resamples, mean[same], confidence)
    return mean, low, high, persons


def csa_stats(block: DatasetBlock, *, filters: Filters, n_resamples: int = N_RESAMPLES, seed: int = SEED,
              confidence: float = CONFIDENCE, mask: np.ndarray | None = None) -> CsaStats | None:
    """:func:`benchmark.analysis.csa_consistency.dataset_consistency` of the block's cases passing the filters
    (None: the dataset has no person with two measured images), vectorised over submissions.

    A submission's images are its counted cases (present, CSA measured, and not leaked when leaked cases are
    excluded); the floor uses every filtered case's reference CSA. Same persons, order, SD and bootstrap draws as
    ``dataset_consistency(person_consistency(results), seed=seed)`` (tests/test_leaderboard_tables.py checks it).
    """
    if not block.multi_contrast or block.csa is None:
        return None
    if mask is None:
        mask = case_mask(block, filters)
    person = block.person[mask]
    n_persons = int(block.person.max()) + 1
    values = block.csa[:, mask]
    usable = block.present[:, mask] & np.isfinite(values)
    measured = usable.any(axis=1)
    if filters.exclude_leaked:
        usable &= ~block.leaked[:, mask]
    # the reference masks as one more row: the floor shares the draws of the models with as many persons
    values = np.vstack([values, block.csa_reference[mask]])
    usable = np.vstack([usable, np.isfinite(values[-1])])
    sds, _ = person_sds(values, usable, person, n_persons)
    mean, low, high, persons = _mean_sd_ci(sds, dataset=block.name, n_resamples=n_resamples, seed=seed,
                                           confidence=confidence)
    return CsaStats(sd=mean[:-1], low=low[:-1], high=high[:-1], persons=persons[:-1], measured=measured,
                    floor=(float(mean[-1]), float(low[-1]), float(high[-1]), int(persons[-1])))


def cached_csa_stats(prep: Prepared, block: DatasetBlock, *, filters: Filters, n_resamples: int, seed: int,
                     confidence: float) -> CsaStats | None:
    """csa_stats memoised on the prepared data, like :func:`cached_block_stats` (independent of the metric)."""
    mask = case_mask(block, filters)
    key = ("csa", block.name, mask.tobytes(), filters.exclude_leaked, n_resamples, seed, confidence)
    return memoised(prep, key, lambda: csa_stats(block, filters=filters, n_resamples=n_resamples, seed=seed,
                                                 confidence=confidence, mask=mask))


# --------------------------------------------------------------------------------------------
# main table
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
    #: datasets shown that have a person with >= 2 measured images (a CSA-consistency column each)
    csa_datasets: list[str] = field(default_factory=list)
    csa_sd: pd.DataFrame = field(default_factory=pd.DataFrame)  # mean over persons of the CSA SD (mm²)
    csa_low: pd.DataFrame = field(default_factory=pd.DataFrame)
    csa_high: pd.DataFrame = field(default_factory=pd.DataFrame)
    csa_persons: pd.DataFrame = field(default_factory=pd.DataFrame)
    csa_measured: pd.DataFrame = field(default_factory=pd.DataFrame)  # 1.0 where the model has a csa_mm2 there
    #: dataset -> the reference masks' (mean SD, CI low, CI high, persons): the floor
    csa_floor: dict[str, tuple[float, float, float, int]] = field(default_factory=dict)


def _group_summary(
    submissions: list[str], stats_list: list[BlockStats], member: np.ndarray, confidence: float
) -> tuple[np.ndarray, ...]:
    """Mean over member datasets of the dataset means (+ stratified bootstrap CI) per submission."""
    n_subs = len(submissions)
    n_blocks = len(stats_list)
    means = np.full(n_subs, np.nan)
    lows = np.full(n_subs, np.nan)
    highs = np.full(n_subs, np.nan)
    status = np.full(n_subs, "", dtype=object)
    count = member.sum(axis=1)
    if n_blocks == 0:
        return means, lows, highs, status, count
    complete = np.stack([s.complete for s in stats_list], axis=1)
    incomplete = (member & ~complete).any(axis=1)
    status[count > 0] = "ok"
    status[incomplete] = INCOMPLETE
    ok = np.flatnonzero(status == "ok")
    if len(ok) == 0:
        return means, lows, highs, status, count
    n_resamples = stats_list[0].resamples.shape[1] if stats_list else 0
    acc = np.zeros((n_subs, n_resamples))
    cell_means = np.stack([s.mean for s in stats_list], axis=1)
    for j, bs in enumerate(stats_list):
        take = member[bs.rows, j] & np.isin(bs.rows, ok)
        acc[bs.rows[take]] += bs.resamples[take]
    means[ok] = np.where(member[ok], cell_means[ok], 0.0).sum(axis=1) / count[ok]
    lows[ok], highs[ok] = stats.percentile_ci(acc[ok] / count[ok][:, None], means[ok], confidence)
    return means, lows, highs, status, count


def main_table_data(
    source: pd.DataFrame | Prepared,
    *,
    metric: str = "dice",
    zero_shot_only: bool = False,
    filters: Filters | None = None,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
    confidence: float = CONFIDENCE,
    alpha: float = ALPHA,
) -> MainTableData:
    filters = filters or Filters()
    prep = _prepared(source, filters)
    subs = prep.submissions
    def compute(task: tuple[str, DatasetBlock]) -> BlockStats | CsaStats | None:
        kind, block = task
        if kind == "csa":
            return cached_csa_stats(prep, block, filters=filters, n_resamples=n_resamples, seed=seed,
                                    confidence=confidence)
        return cached_block_stats(prep, block, metric=metric, zero_shot_only=zero_shot_only, filters=filters,
                                  n_resamples=n_resamples, seed=seed, confidence=confidence, alpha=alpha)

    # the CSA columns are tasks of their own: the workers balance them with the datasets' statistics
    tasks = [("stats", block) for block in prep.blocks] + [("csa", block) for block in prep.blocks if block.multi_contrast]
    with _single_thread_blas():
        if len(tasks) > 1 and _WORKERS > 1:  # numpy releases the GIL in sorts and BLAS
            with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
                computed = list(pool.map(compute, tasks))
        else:
            computed = [compute(task) for task in tasks]
    csa_by_dataset = {block.name: result for (kind, block), result in zip(tasks, computed)
                      if kind == "csa" and result is not None}
    stats_list = [bs for (kind, _), bs in zip(tasks, computed) if kind == "stats" and bs is not None and bs.shown.any()]
    names = [bs.block.name for bs in stats_list]

    def frame(arrays: list[np.ndarray]) -> pd.DataFrame:
        data = np.stack(arrays, axis=1) if arrays else np.empty((len(subs), 0))
        return pd.DataFrame(data, index=pd.Index(subs, name=KEY_COLUMN), columns=names)

    trained = np.stack([bs.block.in_training for bs in stats_list], axis=1) if stats_list else np.zeros((len(subs), 0), bool)
    shown = np.stack([bs.shown for bs in stats_list], axis=1) if stats_list else np.zeros((len(subs), 0), bool)
    counted = np.stack([bs.n_expected > 0 for bs in stats_list], axis=1) if stats_list else np.zeros((len(subs), 0), bool)
    summary = pd.DataFrame(index=pd.Index(subs, name=KEY_COLUMN))
    for prefix, member in (("in", shown & counted & trained), ("ood", shown & counted & ~trained)):
        mean, low, high, status, count = _group_summary(subs, stats_list, member, confidence)
        summary[f"{prefix}_mean"], summary[f"{prefix}_low"], summary[f"{prefix}_high"] = mean, low, high
        summary[f"{prefix}_status"], summary[f"{prefix}_n"] = status, count

    ranks = np.stack([bs.rank for bs in stats_list], axis=1) if stats_list else np.empty((len(subs), 0))
    complete = np.stack([bs.complete for bs in stats_list], axis=1) if stats_list else np.zeros((len(subs), 0), bool)
    ranked = shown & counted
    n_ranked = ranked.sum(axis=1)
    rank_incomplete = (ranked & ~complete).any(axis=1)
    with np.errstate(invalid="ignore"):
        mean_rank = np.where(ranked, np.nan_to_num(ranks), 0.0).sum(axis=1) / n_ranked
    missing_rank = (ranked & np.isnan(ranks)).any(axis=1)
    mean_rank[rank_incomplete | (n_ranked == 0) | missing_rank] = np.nan
    summary["mean_rank"] = mean_rank
    summary["rank_status"] = np.where(
        rank_incomplete, INCOMPLETE, np.where((n_ranked == 0) | missing_rank, "", "ok")
    )
    summary["n_ranked"] = n_ranked
    csa_names = [name for name in names if name in csa_by_dataset]

    def csa_frame(part: str) -> pd.DataFrame:
        return pd.DataFrame({name: getattr(csa_by_dataset[name], part) for name in csa_names},
                            index=pd.Index(subs, name=KEY_COLUMN), columns=csa_names, dtype=float)

    return MainTableData(
        metric=metric,
        zero_shot_only=zero_shot_only,
        exclude_leaked=filters.exclude_leaked,
        datasets=names,
        suite_roles={bs.block.name: bs.block.suite_role for bs in stats_list},
        meta=prep.meta,
        mean=frame([bs.mean for bs in stats_list]),
        low=frame([bs.low for bs in stats_list]),
        high=frame([bs.high for bs in stats_list]),
        status=frame([bs.status for bs in stats_list]),
        n_used=frame([bs.n_used for bs in stats_list]),
        n_expected=frame([bs.n_expected for bs in stats_list]),
        n_leaked=frame([bs.n_leaked for bs in stats_list]),
        n_failed=frame([bs.n_failed for bs in stats_list]),
        rank=frame([bs.rank for bs in stats_list]),
        trained=frame([bs.block.in_training for bs in stats_list]),
        summary=summary,
        csa_datasets=csa_names,
        csa_sd=csa_frame("sd"),
        csa_low=csa_frame("low"),
        csa_high=csa_frame("high"),
        csa_persons=csa_frame("persons"),
        csa_measured=csa_frame("measured"),
        csa_floor={name: csa_by_dataset[name].floor for name in csa_names},
    )


def format_parameters(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return ""
    value = float(value)
    if value >= 1e9:
        return f"{value / 1e9:.2f} B"
    if value >= 1e6:
        return f"{value / 1e6:.1f} M"
    if value >= 1e3:
        return f"{value / 1e3:.1f} k"
    return f"{int(value)}"


def dataset_column(dataset: str, suite_role: str) -> str:
    """Display name of a dataset column: prefixed with the suite's role (column groups)."""
    return f"{ROLE_LABELS.get(suite_role, suite_role)}/{dataset}"


def csa_column(dataset: str) -> str:
    """Name of a dataset's CSA-consistency column (before :func:`main_table_headers` adds the floor)."""
    return f"CSA SD across contrasts, mm² ({dataset})"


def _format_ci_array(mean: np.ndarray, low: np.ndarray, high: np.ndarray, decimals: int) -> np.ndarray:
    pattern = f"{{:.{decimals}f}} [{{:.{decimals}f}}, {{:.{decimals}f}}]"
    flat = [pattern.format(a, b, c) for a, b, c in zip(mean.ravel().tolist(), low.ravel().tolist(), high.ravel().tolist())]
    return np.asarray(flat, dtype=object).reshape(mean.shape)


def format_main_table(data: MainTableData) -> pd.DataFrame:
    """The main table as shown (strings), sorted by mean rank; ``submission`` is the first column.

    Columns: submission, model type, mean rank, mean in-domain (not in zero-shot mode), mean OOD
    (zero-shot), ``<suite role>/<dataset>`` per dataset, ``CSA SD across contrasts, mm² (<dataset>)`` per
    multi-contrast dataset, training datasets, parameters, licence, notes. Plain names: the headers shown add
    the ceilings and floors (:func:`main_table_headers`).
    """
    decimals = DECIMALS[data.metric]
    subs = data.mean.index.to_numpy(dtype=object)
    table = pd.DataFrame({KEY_COLUMN: subs})
    meta = {}
    for column, label in META_COLUMNS.items():
        values = data.meta[column].reindex(subs).tolist()
        if column == "parameters":
            meta[label] = [format_parameters(v) for v in values]
        else:
            meta[label] = ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in values]
    table[META_COLUMNS["model_type"]] = meta.pop(META_COLUMNS["model_type"])
    summary = data.summary.reindex(subs)
    table[MEAN_RANK_COLUMN] = np.where(
        summary["rank_status"] == "ok",
        [f"{v:.2f}" for v in summary["mean_rank"].tolist()],
        summary["rank_status"].to_numpy(dtype=object),
    )
    for prefix, label in (("in", MEAN_IN_COLUMN), ("ood", MEAN_OOD_COLUMN)):
        if data.zero_shot_only and prefix == "in":
            continue  # every trained-on dataset is hidden
        text = _format_ci_array(*(summary[f"{prefix}_{part}"].to_numpy(dtype=float) for part in ("mean", "low", "high")), decimals)
        status = summary[f"{prefix}_status"].to_numpy(dtype=object)
        table[label] = np.where(status == "ok", text, status)

    status = data.status.to_numpy(dtype=object)
    cells = _format_ci_array(data.mean.to_numpy(float), data.low.to_numpy(float), data.high.to_numpy(float), decimals)
    trained = data.trained.to_numpy(dtype=bool)
    leaked = data.n_leaked.to_numpy(dtype=float) > 0
    ok = status == "ok"
    cells = np.where(ok & trained, cells + f" {TRAINED_MARK}", cells)
    if not data.exclude_leaked:
        cells = np.where(ok & leaked, cells + f" {LEAK_MARK}", cells)
    cells = np.where(ok, cells, np.where(status == "hidden", "", status))
    for j, dataset in enumerate(data.datasets):
        table[dataset_column(dataset, data.suite_roles[dataset])] = cells[:, j]
    for dataset in data.csa_datasets:  # label-free: the same for every metric
        j = data.datasets.index(dataset)
        sd = data.csa_sd[dataset].to_numpy(float)
        text = _format_ci_array(sd, data.csa_low[dataset].to_numpy(float), data.csa_high[dataset].to_numpy(float),
                                CSA_DECIMALS)
        missing = np.where(data.csa_measured[dataset].to_numpy(float) > 0, "", CSA_NOT_MEASURED)
        text = np.where(np.isnan(sd), missing, np.where(trained[:, j], text + f" {TRAINED_MARK}", text))
        if not data.exclude_leaked:
            text = np.where(leaked[:, j] & ~np.isnan(sd), text + f" {LEAK_MARK}", text)
        table[csa_column(dataset)] = np.where(ok[:, j], text, np.where(status[:, j] == "hidden", "", status[:, j]))
    for label, values in meta.items():  # declared metadata after the scores
        table[label] = values

    shown = status != "hidden"
    n_used = data.n_used.to_numpy(dtype=float)
    n_expected = data.n_expected.to_numpy(dtype=float)
    n_leaked = np.where(shown, data.n_leaked.to_numpy(dtype=float), 0)
    n_failed = np.where(shown, data.n_failed.to_numpy(dtype=float), 0)
    notes_column = []
    model_types = data.meta["model_type"].reindex(subs).tolist()
    for i in range(len(subs)):
        notes = [
            f"incomplete on {dataset} ({int(n_used[i, j])}/{int(n_expected[i, j])} cases)"
            for j, dataset in enumerate(data.datasets)
            if status[i, j] == INCOMPLETE
        ]
        if n_leaked[i].sum():
            where = ", ".join(d for j, d in enumerate(data.datasets) if n_leaked[i, j] > 0)
            verb = "excluded" if data.exclude_leaked else f"INCLUDED {LEAK_MARK}"
            notes.append(f"{int(n_leaked[i].sum())} {LEAK_NOTE} {verb} ({where})")
        if n_failed[i].sum():
            notes.append(f"{int(n_failed[i].sum())} failed case(s) scored worst")
        if model_types[i] == "predictions":
            notes.insert(0, PREDICTIONS_NOTE)
        notes_column.append("; ".join(notes))
    table[NOTES_COLUMN] = notes_column
    key = summary["mean_rank"].to_numpy(dtype=float)
    key = np.where(np.isnan(key), np.inf, key)
    return table.iloc[np.lexsort((subs.astype(str), key))].reset_index(drop=True)


def _ceiling(ceilings: CeilingsFile | None, data: MainTableData, dataset: str):
    """The dataset's one-voxel ceiling when the table is of Dice and the suite has ceilings for this version."""
    if ceilings is None or data.metric != "dice":
        return None
    return ceilings.datasets.get(dataset)


def main_table_headers(data: MainTableData, ceilings: CeilingsFile | None = None) -> dict[str, str]:
    """Column name -> the header shown (and written to the CSV): a Dice column gets its dataset's one-voxel ceiling,
    ``<role>/<dataset> (1-voxel Dice 0.835)``; a CSA column the reference masks' floor with its CI.

    The table keeps the plain names (the column chooser's options must not change with the filters or metric)."""
    headers = {}
    decimals = DECIMALS["dice"]
    for dataset in data.datasets:
        ring = _ceiling(ceilings, data, dataset)
        if ring is not None:
            name = dataset_column(dataset, data.suite_roles[dataset])
            headers[name] = f"{name} (1-voxel Dice {ring.one_voxel_dice:.{decimals}f})"
    for dataset in data.csa_datasets:
        mean, low, high, _ = data.csa_floor[dataset]
        if not math.isnan(mean):
            name = csa_column(dataset)
            headers[name] = (f"{name[:-1]}; reference masks {mean:.{CSA_DECIMALS}f} "
                             f"[{low:.{CSA_DECIMALS}f}, {high:.{CSA_DECIMALS}f}])")
    return headers


def main_table_notes(data: MainTableData, ceilings: CeilingsFile | None = None) -> list[str]:
    """Caption lines that go with :func:`main_table_headers`: what the ceilings and the CSA floors are, per dataset."""
    notes = []
    decimals = DECIMALS["dice"]
    rings = {dataset: ring for dataset in data.datasets if (ring := _ceiling(ceilings, data, dataset)) is not None}
    if rings:
        within = ", ".join(f"{dataset} {ring.within_one_voxel:.{decimals}f}" for dataset, ring in rings.items())
        notes.append(
            "One-voxel ceiling (1-voxel Dice in a header): the mean Dice of the dataset's reference masks against "
            "themselves grown and shrunk by one in-plane voxel (benchmark/evaluation/ceilings.py). Dice differences "
            f"smaller than 1 − that value are within one voxel of boundary placement: {within}.")
    if data.csa_datasets:
        floors = []
        for dataset in data.csa_datasets:
            mean, low, high, persons = data.csa_floor[dataset]
            floors.append(f"{dataset}: no person with two images passes the filters" if persons == 0 else
                          f"{dataset} {mean:.{CSA_DECIMALS}f} [{low:.{CSA_DECIMALS}f}, {high:.{CSA_DECIMALS}f}] mm² "
                          f"over {persons} person{'s' if persons != 1 else ''}")
        notes.append(
            "CSA SD across contrasts (no ground truth needed; benchmark/analysis/csa_consistency.py): per person with "
            "≥ 2 images in the dataset, the SD of the model's angle-corrected cord cross-sectional area across the "
            "person's images (contrasts), over the scanner-z range all of them cover; the cell is the mean over "
            "persons [bootstrap 95 % CI over persons]; lower is better. Blank: no person with two counted images; "
            f"{CSA_NOT_MEASURED}: the model's results carry no CSA (scored before it was measured: score again). "
            "The reference masks' own spread is the floor a model is compared with (MS atrophy is ~1.4 mm² a "
            "year): " + "; ".join(floors) + ".")
    return notes


def build_main_table(
    cases: pd.DataFrame | Prepared,
    *,
    metric: str = "dice",
    zero_shot_only: bool = False,
    filters: Filters | None = None,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
    ceilings: CeilingsFile | None = None,
) -> pd.DataFrame:
    """One row per submission, as displayed (headers with the one-voxel ceilings and CSA floors): see the module
    docstring for every rule."""
    data = main_table_data(cases, metric=metric, zero_shot_only=zero_shot_only, filters=filters,
                           n_resamples=n_resamples, seed=seed)
    return format_main_table(data).rename(columns=main_table_headers(data, ceilings))


def select_columns(table: pd.DataFrame, chosen: Iterable[str]) -> pd.DataFrame:
    """The column chooser: the key column always first and always shown, then the chosen ones in table order."""
    chosen = set(chosen)
    return table[[KEY_COLUMN] + [c for c in table.columns if c != KEY_COLUMN and c in chosen]]


def table_csv(table: pd.DataFrame) -> str:
    """CSV of exactly the shown table (same columns, rows and cell text)."""
    return table.to_csv(index=False, lineterminator="\n")


# --------------------------------------------------------------------------------------------
# per-dataset view
# --------------------------------------------------------------------------------------------


def dataset_view(
    source: pd.DataFrame | Prepared,
    dataset: str,
    *,
    metric: str = "dice",
    zero_shot_only: bool = False,
    filters: Filters | None = None,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-case values of the counted cases, per-submission summary with mean and 95 % CI)."""
    filters = filters or Filters()
    prep = _prepared(source, filters)
    block = prep.block(dataset)
    with _single_thread_blas():
        bs = cached_block_stats(prep, block, metric=metric, zero_shot_only=zero_shot_only, filters=filters,
                                     n_resamples=n_resamples, seed=seed, confidence=CONFIDENCE, alpha=ALPHA)
    case_columns = ["submission", "case_id", metric, "failed", "leaked"]
    if bs is None:
        return pd.DataFrame(columns=case_columns), pd.DataFrame()
    case_ids = block.case_ids[bs.mask]
    visible = bs.used & bs.shown[:, None]
    s_idx, c_idx = np.nonzero(visible)
    cases = pd.DataFrame(
        {
            "submission": np.asarray(prep.submissions, dtype=object)[s_idx],
            "case_id": case_ids[c_idx],
            metric: bs.values[s_idx, c_idx],
            "failed": block.failed[:, bs.mask][s_idx, c_idx],
            "leaked": block.leaked[:, bs.mask][s_idx, c_idx],
        }
    )
    summary = pd.DataFrame(
        {
            "submission": prep.submissions,
            "zero-shot": ~block.in_training,
            "cases": [f"{u}/{e}" for u, e in zip(bs.n_used, bs.n_expected)],
            "status": bs.status,
            "mean": bs.mean,
            "ci_low": bs.low,
            "ci_high": bs.high,
            "rank": bs.rank,
        }
    )
    summary = summary[summary["status"] != "hidden"]
    key = summary["rank"].fillna(np.inf)
    summary = summary.assign(_key=key).sort_values(["_key", "submission"]).drop(columns="_key").reset_index(drop=True)
    return cases, summary


# --------------------------------------------------------------------------------------------
# compare view
# --------------------------------------------------------------------------------------------


def compare_submissions(
    source: pd.DataFrame | Prepared,
    a: str,
    b: str,
    *,
    metric: str = "dice",
    filters: Filters | None = None,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
    confidence: float = CONFIDENCE,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Paired per-case values of A and B and, per dataset, mean(B - A) with CI and Wilcoxon p.

    Returns ``(pairs, table)``: ``pairs`` has columns dataset, case_id, A, B; ``table`` one row per
    dataset: dataset, suite role, zero-shot A/B, paired cases, mean A, A CI low, A CI high (same for
    B; bootstrap over the paired cases), mean diff (B − A), CI low, CI high, Wilcoxon p, Holm p.

    Cases are those both submissions have (after the filters and, if asked, leak exclusion). The
    difference CI is :func:`benchmark.analysis.stats.paired_difference_ci` of ``(B, A)`` and the p-value
    :func:`benchmark.analysis.stats.paired_wilcoxon`; the Holm column adjusts the p-values over the datasets.
    """
    filters = filters or Filters()
    prep = _prepared(source, filters)
    index = {name: i for i, name in enumerate(prep.submissions)}
    for name in (a, b):
        if name not in index:
            raise KeyError(f"no submission {name!r} in benchmark version {prep.benchmark_version}")
    ia, ib = index[a], index[b]
    pair_frames = []
    rows = []
    for block in prep.blocks:
        mask = case_mask(block, filters)
        if not mask.any():
            continue
        values = block.values[metric][:, mask]
        used = block.present[:, mask] & np.isfinite(values)
        if filters.exclude_leaked:
            used &= ~block.leaked[:, mask]
        both = used[ia] & used[ib]
        va, vb = values[ia, both], values[ib, both]
        pair_frames.append(pd.DataFrame({"dataset": block.name, "case_id": block.case_ids[mask][both], "A": va, "B": vb}))
        row = {
            "dataset": block.name,
            "suite role": ROLE_LABELS.get(block.suite_role, block.suite_role),
            "zero-shot A": not block.in_training[ia],
            "zero-shot B": not block.in_training[ib],
            "paired cases": int(both.sum()),
        }
        for label, values in (("A", va), ("B", vb)):
            ci = mean_ci(values, dataset=block.name, seed=seed, confidence=confidence, n_resamples=n_resamples)
            row[f"mean {label}"], row[f"{label} CI low"], row[f"{label} CI high"] = ci.mean, ci.low, ci.high
        compared = paired_comparison(vb, va, dataset=block.name, seed=seed, confidence=confidence,
                                     n_resamples=n_resamples)
        row["mean diff (B − A)"] = compared.difference.mean
        row["CI low"] = compared.difference.low
        row["CI high"] = compared.difference.high
        row["Wilcoxon p"] = compared.p_value
        rows.append(row)
    table = pd.DataFrame(rows)
    if not table.empty:
        finite = table["Wilcoxon p"].notna()
        table["Holm p"] = math.nan
        if finite.any():
            table.loc[finite, "Holm p"] = holm_adjust(table.loc[finite, "Wilcoxon p"].tolist())
    pairs = pd.concat(pair_frames, ignore_index=True) if pair_frames else pd.DataFrame(columns=["dataset", "case_id", "A", "B"])
    return pairs, table


# --------------------------------------------------------------------------------------------
# case view
# --------------------------------------------------------------------------------------------


def case_metrics(cases: pd.DataFrame, case_id: str, benchmark_version: str | None = None) -> pd.DataFrame:
    """Every submission's scores on one case (rows of that benchmark version)."""
    selected = cases[cases["case_id"].astype(str) == case_id]
    if benchmark_version is not None:
        selected = selected[selected["benchmark_version"].astype(str) == benchmark_version]
    columns = ["submission", *METRIC_NAMES, "failure", "dataset_in_training", "subject_in_training"]
    out = selected[[c for c in columns if c in selected]].copy()
    out["submission"] = out["submission"].astype(str)
    return out.sort_values("submission").reset_index(drop=True)


def split_case_id(case_id: str) -> tuple[str, str]:
    """``'dataset:relative/path.nii.gz'`` -> (dataset, relative path)."""
    dataset, sep, relpath = case_id.partition(":")
    if not sep or not dataset or not relpath:
        raise ValueError(f"case id {case_id!r} is not '<dataset>:<relative path>'")
    return dataset, relpath


@dataclass
class CasePaths:
    image: Path | None
    label: Path | None
    predictions: dict[str, Path]  # submission -> prediction on disk
    missing: list[str]  # what is missing and where it was looked for


def case_paths(
    case_id: str,
    *,
    submissions: Iterable[str],
    data_root: Path | None = None,
    cases_index: Mapping[str, Mapping[str, Any]] | None = None,
) -> CasePaths:
    """Where the case's image, ground truth and each submission's prediction are (if on disk).

    image: the cases index, else ``<data_root>/<dataset>/<relative path>``; label and predictions: the
    cases index only (the masks' layout is dataset-specific; scoring's prediction cache is keyed by
    image hash, and its cases index records each prediction's path).
    """
    dataset, relpath = split_case_id(case_id)
    entry = (cases_index or {}).get(case_id, {})
    missing: list[str] = []
    image: Path | None = None
    if entry.get("image"):
        image = Path(entry["image"])
    elif data_root is not None:
        image = Path(data_root) / dataset / relpath
    if image is None:
        missing.append("image: no --data-root given and no cases-index entry for this case")
    elif not image.is_file():
        missing.append(f"image: not on disk at {image}")
        image = None
    label: Path | None = None
    if entry.get("label"):
        label = Path(entry["label"])
        if not label.is_file():
            missing.append(f"ground truth: not on disk at {label}")
            label = None
    else:
        missing.append("ground truth: no cases-index entry for this case (pass --cases-index)")
    indexed = entry.get("prediction", {}) or {}
    predictions: dict[str, Path] = {}
    for submission in sorted(submissions):
        if submission not in indexed:
            missing.append(f"prediction of {submission}: no cases-index entry for this case")
        elif Path(indexed[submission]).is_file():
            predictions[submission] = Path(indexed[submission])
        else:
            missing.append(f"prediction of {submission}: not on disk at {indexed[submission]}")
    return CasePaths(image, label, predictions, missing)


__all__ = [
    "MainTableData",
    "CsaStats",
    "rank_paired",
    "block_stats",
    "csa_stats",
    "main_table_data",
    "format_main_table",
    "main_table_headers",
    "main_table_notes",
    "build_main_table",
    "select_columns",
    "table_csv",
    "dataset_view",
    "compare_submissions",
    "case_metrics",
    "split_case_id",
    "load_cases_index",  # re-exported from benchmark.evaluation.results
    "case_paths",
]
