"""Leaderboard tables: pure pandas/numpy logic behind ``leaderboard/app.py`` (no Streamlit here).

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
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.analysis import stats
from benchmark.analysis.labels import DECIMALS
from benchmark.analysis.summary import (ALPHA, CONFIDENCE, N_RESAMPLES, SEED, dataset_seed, holm_adjust, mean_ci,
                                        paired_comparison)

try:  # installed with nnunetv2 (scikit-learn); without it BLAS keeps its default thread count
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - depends on the environment
    threadpool_limits = None
from benchmark.data.audit import mark_audited_leaks
from benchmark.environment import available_cores
from benchmark.evaluation.metrics import HIGHER_IS_BETTER, METRIC_NAMES
from benchmark.evaluation.results import ResultsFile, find_results_files, load_cases_index, load_many
from benchmark.data.submissions import PREDICTIONS_NOTE

KEY_COLUMN = "submission"
INCOMPLETE = "incomplete"
LEAK_EXCLUDED = "excluded (leak)"
UNKNOWN = "(unknown)"
TRAINED_MARK = "†"
LEAK_MARK = "⚠"
ROLE_ORDER = ("in-domain", "ood")
ROLE_LABELS = {"in-domain": "in-domain", "ood": "OOD"}
CASE_ATTRIBUTES = ("contrast", "site", "vendor", "pathology", "gt_provenance")
AUTOMATED_PROVENANCE = "automated"

#: benchmark.analysis.stats.paired_wilcoxon uses exact / permutation null distributions up to 50 pairs and the
#: normal approximation above; the vectorised ranking only covers the latter regime.
_EXACT_WILCOXON_MAX_N = stats.EXACT_MAX_N
#: threads computing datasets in parallel (one per core, at most 4)
_WORKERS = min(4, available_cores())
#: pairs per block in the vectorised Wilcoxon (bounds memory to ~ block * n_cases doubles).
_PAIR_BLOCK_VALUES = 1 << 21


META_COLUMNS = {
    "model_type": "model type",
    "declared_training_datasets": "training datasets",
    "parameters": "parameters",
    "cpu_s_per_volume": "CPU s/volume",
    "licence": "licence",
}
MEAN_IN_COLUMN = "mean in-domain"
MEAN_OOD_COLUMN = "mean OOD (zero-shot)"
MEAN_RANK_COLUMN = "mean rank"
NOTES_COLUMN = "notes"
#: the phrase of a leakage note in the notes column
LEAK_NOTE = "case(s) with subject in training"


# --------------------------------------------------------------------------------------------
# filters
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """Case filters; an empty tuple means "all". ``None``/missing attribute values match ``(unknown)``."""

    contrasts: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    vendors: tuple[str, ...] = ()
    pathologies: tuple[str, ...] = ()
    exclude_automated_gt: bool = False
    exclude_leaked: bool = True
    benchmark_version: str | None = None


_FILTER_FIELDS = {"contrasts": "contrast", "sites": "site", "vendors": "vendor", "pathologies": "pathology"}


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------


@dataclass
class LoadedResults:
    cases: pd.DataFrame
    #: results file -> why it was skipped
    skipped: dict[str, str]
    #: (submission, benchmark_version) -> results file it came from
    sources: dict[tuple[str, str], str]
    #: roots given that do not exist
    missing_roots: list[str] = field(default_factory=list)


_CATEGORY_COLUMNS = (
    "submission", "dataset", "subject", "contrast", "site", "vendor", "pathology", "suite_role",
    "gt_provenance", "suite", "benchmark_version", "model_type", "licence", "declared_training_datasets",
    "results_path",
)


def cpu_seconds_per_volume(result: ResultsFile) -> str:
    """'median s (hardware, runtime)' of the file's per-case inference seconds on CPU; '' when not measured on
    a known CPU (GPU runs, files from before the results header named the CPU)."""
    seconds = result.median_runtime_s()
    if seconds is None or result.hardware() is None or result.inference_device not in (None, "cpu"):
        return ""
    runtime = f", {result.runtime}" if result.runtime else ""
    return f"{seconds:.2f} ({result.hardware()}{runtime})"


def cases_from_results(results: Sequence[ResultsFile], paths: Sequence[Path | str] | None = None) -> pd.DataFrame:
    """Per-case rows of several results files plus the header fields the leaderboard shows."""
    frames = []
    for i, result in enumerate(results):
        frame = result.frame()
        frame["licence"] = result.licence if result.licence is not None else ""
        if result.sandbox == "none":  # the model ran with --no-sandbox: its numbers could be forged
            frame["model_type"] = f"{result.model_type} (NOT sandboxed)"
        frame["parameters"] = float(result.parameters) if result.parameters is not None else math.nan
        frame["declared_training_datasets"] = ", ".join(result.declared_training_datasets)
        frame["results_path"] = str(paths[i]) if paths is not None else ""
        frame["cpu_s_per_volume"] = cpu_seconds_per_volume(result)
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["submission", "case_id", "dataset", "benchmark_version", *METRIC_NAMES])
    cases = pd.concat(frames, ignore_index=True)
    for column in _CATEGORY_COLUMNS:
        if column in cases:
            cases[column] = cases[column].astype("category")
    return cases


def load_results_dirs(roots: Iterable[Path | str]) -> LoadedResults:
    """Read every results file below ``roots``; invalid, empty or duplicate files are skipped with a reason.

    Duplicates (same submission and benchmark version twice): the first file wins, roots in the given
    order and, within a root, paths in sorted order.
    """
    roots = [Path(root) for root in roots]
    missing = [str(root) for root in roots if not root.exists()]
    paths: list[Path] = []  # root by root, so that a file under an earlier root wins a duplicate
    for root in roots:
        if root.exists():
            seen = set(paths)
            paths.extend(path for path in find_results_files(root) if path not in seen)
    results, skipped_raw = load_many(paths)
    skipped = {str(path): reason for path, reason in skipped_raw.items()}
    valid_paths = [path for path in paths if path not in skipped_raw]
    # rows the content-hash audit found leaked (submissions/<name>/audit.json) count as leaked
    results = [mark_audited_leaks(result, path) for result, path in zip(results, valid_paths)]
    kept: list[ResultsFile] = []
    kept_paths: list[Path] = []
    sources: dict[tuple[str, str], str] = {}
    for path, result in zip(valid_paths, results):
        key = (result.submission, result.benchmark_version)
        if key in sources:
            skipped[str(path)] = (
                f"{path}: duplicate results for submission {result.submission!r} on benchmark version "
                f"{result.benchmark_version} (already read from {sources[key]})"
            )
            continue
        if not result.cases:
            skipped[str(path)] = f"{path}: the results file holds no cases"
            continue
        case_ids = [case.case_id for case in result.cases]
        if len(set(case_ids)) != len(case_ids):
            duplicated = sorted({cid for cid in case_ids if case_ids.count(cid) > 1})[:3]
            skipped[str(path)] = f"{path}: duplicate case rows ({', '.join(duplicated)})"
            continue
        sources[key] = str(path)
        kept.append(result)
        kept_paths.append(path)
    return LoadedResults(cases_from_results(kept, kept_paths), skipped, sources, missing)


def available_versions(cases: pd.DataFrame) -> list[str]:
    """Benchmark versions, the one with most submissions first (ties: by name)."""
    if cases.empty:
        return []
    counts = cases.groupby(cases["benchmark_version"].astype(str), observed=True)["submission"].nunique()
    return sorted(counts.index, key=lambda version: (-int(counts[version]), version))


# --------------------------------------------------------------------------------------------
# dense per-dataset blocks
# --------------------------------------------------------------------------------------------


@dataclass
class DatasetBlock:
    """One dataset of one benchmark version as dense (submission x case) arrays."""

    name: str
    suite_role: str
    case_ids: np.ndarray  # (n,) sorted
    attrs: dict[str, np.ndarray]  # attribute -> (n,) strings (missing -> UNKNOWN)
    values: dict[str, np.ndarray]  # metric -> (S, n) float, NaN where the row is absent
    present: np.ndarray  # (S, n) a row exists
    leaked: np.ndarray  # (S, n) subject_in_training
    failed: np.ndarray  # (S, n) failure row
    in_training: np.ndarray  # (S,) dataset_in_training (declared list when the model has no rows)


@dataclass
class Prepared:
    """Dense arrays of one benchmark version, plus a small LRU memo of per-dataset statistics.

    The memo key holds everything a dataset's statistics depend on (metric, the filtered case set,
    toggles, resampling parameters), so a filter change recomputes only the datasets whose case set
    changed. Treat instances as read-only; the memo is guarded by a lock (Streamlit sessions are threads).
    """

    benchmark_version: str | None
    submissions: list[str]
    meta: pd.DataFrame  # index: submission
    blocks: list[DatasetBlock]
    memo_size: int = 48
    _memo: OrderedDict = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def cached_block_stats(self, block: DatasetBlock, **kwargs: Any) -> BlockStats | None:
        filters: Filters = kwargs["filters"]
        mask = case_mask(block, filters)
        key = (
            block.name, mask.tobytes(), filters.exclude_leaked,
            *(kwargs[name] for name in ("metric", "zero_shot_only", "n_resamples", "seed", "confidence", "alpha")),
        )
        with self._lock:
            if key in self._memo:
                self._memo.move_to_end(key)
                return self._memo[key]
        result = block_stats(block, mask=mask, **kwargs)
        with self._lock:
            self._memo[key] = result
            while len(self._memo) > self.memo_size:
                self._memo.popitem(last=False)
        return result

    def clear_memo(self) -> None:
        with self._lock:
            self._memo.clear()

    def block(self, name: str) -> DatasetBlock:
        for block in self.blocks:
            if block.name == name:
                return block
        raise KeyError(f"no dataset {name!r} in benchmark version {self.benchmark_version}")

    @property
    def datasets(self) -> list[str]:
        return [block.name for block in self.blocks]


def _coded(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(integer code per row, label per code); missing values get code -1.

    Works on the codes of categorical columns (what :func:`cases_from_results` makes) instead of
    materialising 360k strings, which dominates the cost of ``astype(str)`` on Arrow-backed strings.
    """
    if isinstance(column.dtype, pd.CategoricalDtype):
        labels = np.asarray([str(value) for value in column.cat.categories], dtype=object)
        return np.asarray(column.cat.codes, dtype=np.int64), labels
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64), np.asarray([str(value) for value in uniques], dtype=object)


def _labels(codes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Labels of ``codes``; ``-1`` (missing) -> UNKNOWN."""
    with_unknown = np.append(labels, UNKNOWN).astype(object)
    return with_unknown[np.where(codes < 0, len(labels), codes)]


def prepare(cases: pd.DataFrame, benchmark_version: str | None = None) -> Prepared:
    """Pivot the rows of one benchmark version into dense per-dataset arrays (the expensive step)."""
    if cases.empty:
        return Prepared(benchmark_version, [], pd.DataFrame(columns=list(META_COLUMNS)), [])
    version_codes, version_labels = _coded(cases["benchmark_version"])
    present_versions = sorted({str(version_labels[c]) for c in np.unique(version_codes) if c >= 0})
    if benchmark_version is None:
        if len(present_versions) > 1:
            raise ValueError(
                f"results of several benchmark versions {present_versions}: choose one (Filters.benchmark_version)"
            )
        benchmark_version = present_versions[0]
    wanted = np.flatnonzero(version_labels == benchmark_version)
    df = cases[np.isin(version_codes, wanted)]
    if df.empty:
        raise ValueError(f"no results for benchmark version {benchmark_version!r}; present: {present_versions}")

    sub_raw, sub_labels = _coded(df["submission"])
    used_subs = np.unique(sub_raw)
    submissions = sorted(str(sub_labels[c]) for c in used_subs)
    remap = np.full(len(sub_labels), -1, dtype=np.int64)
    remap[used_subs] = [submissions.index(str(sub_labels[c])) for c in used_subs]
    sub_codes = remap[sub_raw]

    # metadata: first row per submission
    _, first_rows = np.unique(sub_codes, return_index=True)
    meta_src = df.iloc[first_rows]
    meta = pd.DataFrame(index=pd.Index(submissions, name=KEY_COLUMN))
    for column in META_COLUMNS:
        if column in meta_src:
            meta[column] = meta_src[column].astype(object).to_numpy()
        else:
            meta[column] = "" if column != "parameters" else math.nan
    declared = {
        sub: {name.strip() for name in str(meta.at[sub, "declared_training_datasets"] or "").split(",") if name.strip()}
        for sub in submissions
    }

    ds_raw, ds_labels = _coded(df["dataset"])
    role_codes, role_labels = _coded(df["suite_role"])
    present_ds, first_of_dataset = np.unique(ds_raw, return_index=True)
    roles = {str(ds_labels[c]): str(_labels(role_codes[[i]], role_labels)[0]) for c, i in zip(present_ds, first_of_dataset)}
    ordered = sorted(roles, key=lambda name: (ROLE_ORDER.index(roles[name]) if roles[name] in ROLE_ORDER else 9, name))
    ds_remap = np.full(len(ds_labels), -1, dtype=np.int64)
    ds_remap[present_ds] = [ordered.index(str(ds_labels[c])) for c in present_ds]
    d_codes = ds_remap[ds_raw]
    order = np.argsort(d_codes, kind="stable")
    bounds = np.searchsorted(d_codes[order], np.arange(len(ordered) + 1))

    case_codes, case_labels = _coded(df["case_id"])
    metric_columns = {metric: df[metric].to_numpy(dtype=np.float64) for metric in METRIC_NAMES}
    attr_columns = {
        attr: _coded(df[attr]) if attr in df else (np.full(len(df), -1, dtype=np.int64), np.empty(0, dtype=object))
        for attr in CASE_ATTRIBUTES
    }
    leak_column = df["subject_in_training"].to_numpy(dtype=bool)
    dit_column = df["dataset_in_training"].to_numpy(dtype=bool)
    failed_column = df["failure"].notna().to_numpy() if "failure" in df else np.zeros(len(df), dtype=bool)

    n_subs = len(submissions)
    blocks = []
    for k, name in enumerate(ordered):
        rows = order[bounds[k] : bounds[k + 1]]
        local, first = np.unique(case_codes[rows], return_index=True)  # first row of each case
        names = case_labels[local]
        by_name = np.argsort(names.astype(str), kind="stable")  # cases sorted by case id
        rank = np.empty(len(local), dtype=np.int64)
        rank[by_name] = np.arange(len(local))
        codes = rank[np.searchsorted(local, case_codes[rows])]
        first = first[by_name]
        n = len(local)
        subs = sub_codes[rows]
        values = {}
        for metric, column in metric_columns.items():
            array = np.full((n_subs, n), np.nan)
            array[subs, codes] = column[rows]
            values[metric] = array
        present = np.zeros((n_subs, n), dtype=bool)
        present[subs, codes] = True
        leaked = np.zeros((n_subs, n), dtype=bool)
        leaked[subs, codes] = leak_column[rows]
        failed = np.zeros((n_subs, n), dtype=bool)
        failed[subs, codes] = failed_column[rows]
        has_rows = np.zeros(n_subs, dtype=bool)
        has_rows[subs] = True
        in_training = np.zeros(n_subs, dtype=bool)
        in_training[subs[dit_column[rows]]] = True
        for s in np.flatnonzero(~has_rows):
            in_training[s] = name in declared[submissions[s]]
        blocks.append(
            DatasetBlock(
                name=name,
                suite_role=roles[name],
                case_ids=names[by_name].astype(object),
                attrs={attr: _labels(codes_[rows][first], labels) for attr, (codes_, labels) in attr_columns.items()},
                values=values,
                present=present,
                leaked=leaked,
                failed=failed,
                in_training=in_training,
            )
        )
    return Prepared(benchmark_version, submissions, meta, blocks)


def _prepared(source: pd.DataFrame | Prepared, filters: Filters) -> Prepared:
    if isinstance(source, Prepared):
        if filters.benchmark_version is not None and source.benchmark_version != filters.benchmark_version:
            raise ValueError(
                f"prepared for benchmark version {source.benchmark_version}, filters ask for {filters.benchmark_version}"
            )
        return source
    return prepare(source, filters.benchmark_version)


def filter_options(source: pd.DataFrame | Prepared, benchmark_version: str | None = None) -> dict[str, list[str]]:
    """Values each case filter can take in one benchmark version (for the sidebar)."""
    prep = _prepared(source, Filters(benchmark_version=benchmark_version))
    options: dict[str, list[str]] = {}
    for attr in CASE_ATTRIBUTES:
        values: set[str] = set()
        for block in prep.blocks:
            values.update(block.attrs[attr].tolist())
        options[attr] = sorted(values)
    return options


def case_mask(block: DatasetBlock, filters: Filters) -> np.ndarray:
    """Which of the block's cases pass the case filters."""
    mask = np.ones(len(block.case_ids), dtype=bool)
    for field_name, attr in _FILTER_FIELDS.items():
        wanted = getattr(filters, field_name)
        if wanted:
            mask &= np.isin(block.attrs[attr], np.asarray(list(wanted), dtype=object))
    if filters.exclude_automated_gt:
        mask &= np.char.lower(block.attrs["gt_provenance"].astype(str)) != AUTOMATED_PROVENANCE
    return mask


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
    def compute(block: DatasetBlock) -> BlockStats | None:
        return prep.cached_block_stats(block, metric=metric, zero_shot_only=zero_shot_only, filters=filters,
                                       n_resamples=n_resamples, seed=seed, confidence=confidence, alpha=alpha)

    with _single_thread_blas():
        if len(prep.blocks) > 1 and _WORKERS > 1:  # numpy releases the GIL in sorts and BLAS
            with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
                computed = list(pool.map(compute, prep.blocks))
        else:
            computed = [compute(block) for block in prep.blocks]
    stats_list = [bs for bs in computed if bs is not None and bs.shown.any()]
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


def _format_ci_array(mean: np.ndarray, low: np.ndarray, high: np.ndarray, decimals: int) -> np.ndarray:
    pattern = f"{{:.{decimals}f}} [{{:.{decimals}f}}, {{:.{decimals}f}}]"
    flat = [pattern.format(a, b, c) for a, b, c in zip(mean.ravel().tolist(), low.ravel().tolist(), high.ravel().tolist())]
    return np.asarray(flat, dtype=object).reshape(mean.shape)


def format_main_table(data: MainTableData) -> pd.DataFrame:
    """The main table as shown (strings), sorted by mean rank; ``submission`` is the first column.

    Columns: submission, model type, mean rank, mean in-domain (not in zero-shot mode), mean OOD
    (zero-shot), ``<suite role>/<dataset>`` per dataset, training datasets, parameters, licence, notes.
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


def build_main_table(
    cases: pd.DataFrame | Prepared,
    *,
    metric: str = "dice",
    zero_shot_only: bool = False,
    filters: Filters | None = None,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> pd.DataFrame:
    """One row per submission, as displayed: see the module docstring for every rule."""
    data = main_table_data(cases, metric=metric, zero_shot_only=zero_shot_only, filters=filters,
                           n_resamples=n_resamples, seed=seed)
    return format_main_table(data)


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
        bs = prep.cached_block_stats(block, metric=metric, zero_shot_only=zero_shot_only, filters=filters,
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
    "Filters",
    "LoadedResults",
    "Prepared",
    "DatasetBlock",
    "MainTableData",
    "cases_from_results",
    "load_results_dirs",
    "available_versions",
    "prepare",
    "filter_options",
    "case_mask",
    "rank_paired",
    "block_stats",
    "main_table_data",
    "format_main_table",
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
