"""Leaderboard tables: the views behind ``leaderboard/app.py`` (no Streamlit here). The numbers come from
:mod:`benchmark.analysis.board` (per dataset, vectorised over submissions) and
:func:`benchmark.analysis.family.compare_family` (the compare view); this module memoises them on the prepared
blocks of :mod:`leaderboard.data`, runs the datasets in parallel and formats the tables.

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
  ``dataset_in_training`` is False in its rows (written by scoring from the one training-declaration rule,
  :mod:`benchmark.data.declaration`; suite labels are only used to order columns). With ``zero_shot_only`` a
  model's trained-on datasets are hidden for that model.
* **Leakage**: rows with ``subject_in_training`` True. With ``Filters.exclude_leaked`` (default) they
  are dropped for that model and are not expected from it (so they don't make it incomplete); the
  notes column says how many. Otherwise they are kept and the cell is marked ``⚠``.
* **The unit is the person**: a dataset mean is the mean over people of each person's mean over its counted scans;
  mean in-domain / mean OOD is the unweighted mean of the model's dataset means. 95 % CIs are percentile
  bootstraps resampling people, drawn per dataset with ``numpy.random.default_rng(dataset_seed(seed, dataset))``
  exactly as :func:`benchmark.analysis.summary.mean_ci` draws them, so every cell equals ``mean_ci(values,
  persons=..., dataset=dataset)``. With fewer than ``MIN_PEOPLE`` people the cell shows the mean and "too few
  people" instead of an interval; a mean over datasets shows no interval when any of its datasets has too few.
* **Ranks**: per dataset, :func:`benchmark.analysis.stats.rank_with_ties` over the complete, shown submissions on
  the per-person means of the scans all of them have (paired); vectorised above 50 people
  (:func:`benchmark.analysis.board.rank_paired`). Mean rank = mean over the datasets shown for that model.
* **CSA consistency across contrasts** (label-free): a column per dataset shown that has a person with two measured
  images: :func:`benchmark.analysis.csa_consistency.dataset_consistency` of each model's counted cases, vectorised
  over models (:func:`benchmark.analysis.board.csa_stats`; equal to it by test). The header gives the reference
  masks' floor. Hidden, incomplete and leak-excluded cells follow the dataset's cell; blank: no person with two
  counted images.
* **One-voxel ceiling**: with a :class:`benchmark.evaluation.ceilings.CeilingsFile` for the version and the metric
  Dice, each dataset's header carries its 1-voxel Dice (:func:`main_table_headers`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from benchmark.analysis import board
from benchmark.analysis.board import (BlockStats, CsaStats, MainTableData, person_sds, rank_paired,
                                      single_thread_blas as _single_thread_blas)
from benchmark.analysis.family import Pairs, compare_family
from benchmark.analysis.labels import DECIMALS, TOO_FEW_PEOPLE
from benchmark.analysis.summary import ALPHA, CONFIDENCE, MIN_PEOPLE, N_RESAMPLES, SEED
from benchmark.environment import available_cores
from benchmark.evaluation.metrics import METRIC_NAMES
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
#: threads computing datasets in parallel (one per core, at most 4)
_WORKERS = min(4, available_cores())


# --------------------------------------------------------------------------------------------
# per-dataset statistics (benchmark.analysis.board), memoised on the prepared data
# --------------------------------------------------------------------------------------------


def block_stats(block: DatasetBlock, *, metric: str, zero_shot_only: bool, filters: Filters,
                n_resamples: int = N_RESAMPLES, seed: int = SEED, confidence: float = CONFIDENCE,
                alpha: float = ALPHA, mask: np.ndarray | None = None,
                min_people: int = MIN_PEOPLE) -> BlockStats | None:
    """:func:`benchmark.analysis.board.block_stats` of the block's cases passing the filters."""
    return board.block_stats(block, metric=metric, zero_shot_only=zero_shot_only,
                             exclude_leaked=filters.exclude_leaked,
                             mask=case_mask(block, filters) if mask is None else mask, n_resamples=n_resamples,
                             seed=seed, confidence=confidence, alpha=alpha, min_people=min_people)


def cached_block_stats(prep: Prepared, block: DatasetBlock, **kwargs: Any) -> BlockStats | None:
    """block_stats memoised on the prepared data (filter changes that keep a dataset's cases reuse its statistics)."""
    filters: Filters = kwargs["filters"]
    mask = case_mask(block, filters)
    kwargs.setdefault("min_people", MIN_PEOPLE)
    key = (
        block.name, mask.tobytes(), filters.exclude_leaked,
        *(kwargs[name] for name in ("metric", "zero_shot_only", "n_resamples", "seed", "confidence", "alpha",
                                    "min_people")),
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


def csa_stats(block: DatasetBlock, *, filters: Filters, n_resamples: int = N_RESAMPLES, seed: int = SEED,
              confidence: float = CONFIDENCE, mask: np.ndarray | None = None,
              min_people: int = MIN_PEOPLE) -> CsaStats | None:
    """:func:`benchmark.analysis.board.csa_stats` of the block's cases passing the filters."""
    return board.csa_stats(block, exclude_leaked=filters.exclude_leaked,
                           mask=case_mask(block, filters) if mask is None else mask, n_resamples=n_resamples,
                           seed=seed, confidence=confidence, min_people=min_people)


def cached_csa_stats(prep: Prepared, block: DatasetBlock, *, filters: Filters, n_resamples: int, seed: int,
                     confidence: float, min_people: int = MIN_PEOPLE) -> CsaStats | None:
    """csa_stats memoised on the prepared data, like :func:`cached_block_stats` (independent of the metric)."""
    mask = case_mask(block, filters)
    key = ("csa", block.name, mask.tobytes(), filters.exclude_leaked, n_resamples, seed, confidence, min_people)
    return memoised(prep, key, lambda: csa_stats(block, filters=filters, n_resamples=n_resamples, seed=seed,
                                                 confidence=confidence, mask=mask, min_people=min_people))


# --------------------------------------------------------------------------------------------
# main table
# --------------------------------------------------------------------------------------------


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
    min_people: int = MIN_PEOPLE,
) -> MainTableData:
    """Every dataset's statistics (memoised, in parallel) summarised by :func:`benchmark.analysis.board.summarise`."""
    filters = filters or Filters()
    prep = _prepared(source, filters)

    def compute(task: tuple[str, DatasetBlock]) -> BlockStats | CsaStats | None:
        kind, block = task
        if kind == "csa":
            return cached_csa_stats(prep, block, filters=filters, n_resamples=n_resamples, seed=seed,
                                    confidence=confidence, min_people=min_people)
        return cached_block_stats(prep, block, metric=metric, zero_shot_only=zero_shot_only, filters=filters,
                                  n_resamples=n_resamples, seed=seed, confidence=confidence, alpha=alpha,
                                  min_people=min_people)

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
    stats_list = [bs for (kind, _), bs in zip(tasks, computed) if kind == "stats" and bs is not None]
    return board.summarise(prep.submissions, prep.meta, stats_list, csa_by_dataset, metric=metric,
                           zero_shot_only=zero_shot_only, exclude_leaked=filters.exclude_leaked,
                           confidence=confidence)


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
    """``mean [low, high]`` per cell; ``mean (too few people)`` where the interval is withheld."""
    pattern = f"{{:.{decimals}f}} [{{:.{decimals}f}}, {{:.{decimals}f}}]"
    withheld = f"{{:.{decimals}f}} ({TOO_FEW_PEOPLE})"
    flat = [pattern.format(a, b, c) if math.isfinite(b) or not math.isfinite(a) else withheld.format(a)
            for a, b, c in zip(mean.ravel().tolist(), low.ravel().tolist(), high.ravel().tolist())]
    return np.asarray(flat, dtype=object).reshape(mean.shape)


def _ci_text(mean: float, low: float, high: float, decimals: int) -> str:
    return str(_format_ci_array(np.array([mean]), np.array([low]), np.array([high]), decimals)[0])


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
            headers[name] = f"{name[:-1]}; reference masks {_ci_text(mean, low, high, CSA_DECIMALS)})"
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
                          f"{dataset} {_ci_text(mean, low, high, CSA_DECIMALS)} mm² "
                          f"over {persons} person{'s' if persons != 1 else ''}")
        notes.append(
            "CSA SD across contrasts (no ground truth needed; benchmark/analysis/csa_consistency.py): per person with "
            "≥ 2 images in the dataset, the SD of the model's angle-corrected cord cross-sectional area across the "
            "person's images (contrasts), over the scanner-z range all of them cover; the cell is the mean over "
            f"persons [bootstrap 95 % CI over persons; {TOO_FEW_PEOPLE} below {MIN_PEOPLE}]; lower is better. Blank: "
            "no person with two counted images; "
            f"{CSA_NOT_MEASURED}: the model's results carry no CSA (scored before it was measured: score again). "
            "The reference masks' own spread is the floor a model is compared with (MS atrophy is ~1.4 mm² a "
            "year): " + "; ".join(floors) + ".")
    if board.interval_withheld(data.mean.to_numpy(float), data.low.to_numpy(float)).any():
        notes.append(
            f"{TOO_FEW_PEOPLE}: the model's counted scans of that dataset come from fewer than {MIN_PEOPLE} people "
            "(the unit of analysis; a person's scans are averaged first): the mean over people is shown without an "
            "interval, since a bootstrap over so few people covers far less than 95 % (docs/metrics.md).")
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
    min_people: int = MIN_PEOPLE,
) -> pd.DataFrame:
    """One row per submission, as displayed (headers with the one-voxel ceilings and CSA floors): see the module
    docstring for every rule."""
    data = main_table_data(cases, metric=metric, zero_shot_only=zero_shot_only, filters=filters,
                           n_resamples=n_resamples, seed=seed, min_people=min_people)
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
    min_people: int = MIN_PEOPLE,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-case values of the counted cases, per-submission summary with mean and 95 % CI)."""
    filters = filters or Filters()
    prep = _prepared(source, filters)
    block = prep.block(dataset)
    with _single_thread_blas():
        bs = cached_block_stats(prep, block, metric=metric, zero_shot_only=zero_shot_only, filters=filters,
                                n_resamples=n_resamples, seed=seed, confidence=CONFIDENCE, alpha=ALPHA,
                                min_people=min_people)
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
            "people (scans)": [f"{p} ({u})" for p, u in zip(bs.people, bs.n_used)],
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
    min_people: int = MIN_PEOPLE,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Paired per-case values of A and B and, per dataset, the comparison of B with A over people.

    Returns ``(pairs, table)``: ``pairs`` has columns dataset, case_id, A, B (the scans both have); ``table`` one
    row per dataset: dataset, suite role, zero-shot A/B, people, paired scans, mean A, A CI low, A CI high (same
    for B), mean diff (B − A), CI low, CI high, Wilcoxon p, Holm p, status.

    The numbers are :func:`benchmark.analysis.family.compare_family` of ``(B, A)`` over the datasets shown (the
    path the report, the seed table and the gates use): means over people, CIs resampling people, the two-sided
    Wilcoxon test of the per-person differences, Holm over the tested datasets; leaked scans (either side) are left
    out while ``filters.exclude_leaked``; with fewer than ``MIN_PEOPLE`` people no interval and no test.
    """
    filters = filters or Filters()
    prep = _prepared(source, filters)
    index = {name: i for i, name in enumerate(prep.submissions)}
    for name in (a, b):
        if name not in index:
            raise KeyError(f"no submission {name!r} in benchmark version {prep.benchmark_version}")
    ia, ib = index[a], index[b]
    pair_frames, rows, family = [], [], []
    for block in prep.blocks:
        mask = case_mask(block, filters)
        if not mask.any():
            continue
        values = block.values[metric][:, mask]
        usable = block.present[:, mask] & np.isfinite(values)
        both = usable[ia] & usable[ib]
        leaked = (block.leaked[ia, mask] | block.leaked[ib, mask])[both]
        kept = both & ~(block.leaked[ia, mask] | block.leaked[ib, mask]) if filters.exclude_leaked else both
        pair_frames.append(pd.DataFrame({"dataset": block.name, "case_id": block.case_ids[mask][kept],
                                         "A": values[ia, kept], "B": values[ib, kept]}))
        persons = block.person_ids[block.person_index[mask][both]]
        family.append(Pairs(block.name, persons, values[ib, both], values[ia, both], leaked))
        rows.append({"dataset": block.name, "suite role": ROLE_LABELS.get(block.suite_role, block.suite_role),
                     "zero-shot A": not block.in_training[ia], "zero-shot B": not block.in_training[ib]})
    compared = compare_family(family, seed=seed, exclude_leaked=filters.exclude_leaked, confidence=confidence,
                              n_resamples=n_resamples, min_people=min_people)
    for row, result in zip(rows, compared):
        row.update({"people": result.people, "paired scans": result.scans})
        for label, ci in (("A", result.b), ("B", result.a)):
            row[f"mean {label}"], row[f"{label} CI low"], row[f"{label} CI high"] = ci.mean, ci.low, ci.high
        row.update({"mean diff (B − A)": result.difference.mean, "CI low": result.difference.low,
                    "CI high": result.difference.high, "Wilcoxon p": result.p, "Holm p": result.p_holm,
                    "status": result.status})
    table = pd.DataFrame(rows)
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
    "BlockStats",
    "CsaStats",
    "rank_paired",
    "person_sds",
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
