"""Leaderboard data: results files -> one per-case table -> dense per-dataset blocks, and the case filters.

Everything here reads; nothing writes results. The statistics on these blocks are computed by
:mod:`benchmark.analysis.board` and shown by :mod:`leaderboard.tables` (the definitions of incomplete, leakage,
means, CIs and ranks are in its docstring).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.analysis.board import INCOMPLETE, LEAK_EXCLUDED
from benchmark.data.audit import mark_audited_leaks
from benchmark.evaluation.metrics import METRIC_NAMES
from benchmark.evaluation.results import ResultsFile, find_results_files, load_many

KEY_COLUMN = "submission"
UNKNOWN = "(unknown)"
TRAINED_MARK = "†"
LEAK_MARK = "⚠"
ROLE_ORDER = ("in-domain", "ood")
ROLE_LABELS = {"in-domain": "in-domain", "ood": "OOD"}
CASE_ATTRIBUTES = ("contrast", "site", "vendor", "pathology", "gt_provenance")
AUTOMATED_PROVENANCE = "automated"



META_COLUMNS = {
    "model_type": "model type",
    "declared_training_datasets": "training datasets",
    "parameters": "parameters",
    "s_per_volume": "s/volume (device, runtime)",
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
    #: (submission, benchmark_version) -> the results file's created_utc
    created: dict[tuple[str, str], str] = field(default_factory=dict)


_CATEGORY_COLUMNS = (
    "submission", "dataset", "subject", "person", "contrast", "site", "vendor", "pathology", "suite_role",
    "gt_provenance", "suite", "benchmark_version", "model_type", "licence", "declared_training_datasets",
    "results_path",
)


def seconds_per_volume(result: ResultsFile) -> str:
    """'median s (device: model, runtime)' of the file's per-case inference seconds, e.g. '2.00 (CPU: AMD EPYC
    9654, 2 threads, openvino)' or '0.31 (GPU: NVIDIA H100 80GB HBM3, torch)'; a precision other than float32 is
    named too; '' when the device is unknown (files from before the results header named it)."""
    seconds = result.median_runtime_s()
    if seconds is None or result.hardware() is None:
        return ""
    details = [part for part in (result.runtime, result.precision if result.precision not in (None, "float32")
                                 else None) if part]
    return f"{seconds:.2f} ({', '.join([result.hardware(), *details])})"


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
        frame["s_per_volume"] = seconds_per_volume(result)
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
    created: dict[tuple[str, str], str] = {}
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
        created[key] = result.created_utc
        kept.append(result)
        kept_paths.append(path)
    return LoadedResults(cases_from_results(kept, kept_paths), skipped, sources, missing, created)


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
    #: (n,) index of the case's CSA unit, (subject, session) in the order pandas' sorted groupby gives
    #: (benchmark.analysis.csa_consistency): subject, then session with "no session" last
    person: np.ndarray | None = None
    #: (n,) index into person_ids of the case's person (results' ``person``: the unit of analysis)
    person_index: np.ndarray | None = None
    person_ids: np.ndarray | None = None  # (P,) person ids, sorted
    csa: np.ndarray | None = None  # (S, n) csa_mm2 of the prediction, NaN where absent or not measured
    csa_reference: np.ndarray | None = None  # (n,) csa_reference_mm2 of the case's reference mask
    #: some person has >= 2 images with a measured CSA (the dataset gets a CSA-consistency column)
    multi_contrast: bool = False


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
    #: the suite the version is a split of (where its one-voxel ceilings are stored); None if not recorded
    suite: str | None = None
    memo_size: int = 64
    _memo: OrderedDict = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

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
    csa_columns = {name: df[name].to_numpy(dtype=np.float64, na_value=np.nan) if name in df else np.full(len(df), np.nan)
                   for name in ("csa_mm2", "csa_reference_mm2")}
    subject_coded = _coded(df["subject"]) if "subject" in df else (np.full(len(df), -1, dtype=np.int64), np.empty(0, dtype=object))
    person_coded = _coded(df["person"]) if "person" in df and df["person"].notna().all() else subject_coded
    session_coded = _coded(df["session"]) if "session" in df else (np.full(len(df), -1, dtype=np.int64), np.empty(0, dtype=object))
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
        csa = np.full((n_subs, n), np.nan)
        csa[subs, codes] = csa_columns["csa_mm2"][rows]
        person = _person_codes(rows[first], subject_coded, session_coded)
        person_ids, person_index = np.unique(_labels(person_coded[0][rows[first]], person_coded[1]).astype(str),
                                             return_inverse=True)
        csa_reference = _first_finite(codes, subs, csa_columns["csa_reference_mm2"][rows], n)
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
                person=person,
                person_index=person_index.astype(np.int64),
                person_ids=person_ids.astype(object),
                csa=csa,
                csa_reference=csa_reference,
                multi_contrast=_has_repeated_person(person, np.isfinite(csa).any(axis=0) | np.isfinite(csa_reference)),
            )
        )
    suite_codes, suite_labels = _coded(df["suite"]) if "suite" in df else (np.empty(0, dtype=np.int64), np.empty(0))
    suites = sorted(str(suite_labels[code]) for code in np.unique(suite_codes) if code >= 0)
    return Prepared(benchmark_version, submissions, meta, blocks, suite=suites[0] if suites else None)


def _person_codes(case_rows: np.ndarray, subjects: tuple[np.ndarray, np.ndarray],
                  sessions: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Index of each case's (subject, session) among the block's persons, sorted as
    ``DataFrame.groupby(["subject", "session"], dropna=False, sort=True)`` orders them (no session last)."""
    subject = _labels(subjects[0][case_rows], subjects[1])
    session_codes = sessions[0][case_rows]
    session = np.where(session_codes < 0, None, _labels(session_codes, sessions[1]))
    keys = [(str(a), b is None, "" if b is None else str(b)) for a, b in zip(subject.tolist(), session.tolist())]
    ordered = sorted(set(keys))
    index = {key: i for i, key in enumerate(ordered)}
    return np.asarray([index[key] for key in keys], dtype=np.int64)


def _first_finite(codes: np.ndarray, subs: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Per case, the first finite value in submission order (the reference mask's CSA is the same in every
    submission's row; a row without it, e.g. from an older results file, is skipped)."""
    out = np.full(n, np.nan)
    finite = np.flatnonzero(np.isfinite(values))
    if len(finite):
        order = finite[np.lexsort((subs[finite], codes[finite]))]
        cases, first = np.unique(codes[order], return_index=True)
        out[cases] = values[order[first]]
    return out


def _has_repeated_person(person: np.ndarray, measured: np.ndarray) -> bool:
    return bool(measured.any()) and bool((np.bincount(person[measured]) >= 2).any())


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


__all__ = [
    "Filters",
    "LoadedResults",
    "Prepared",
    "DatasetBlock",
    "cases_from_results",
    "load_results_dirs",
    "available_versions",
    "prepare",
    "filter_options",
    "case_mask",
]
