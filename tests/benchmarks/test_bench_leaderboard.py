"""Speed of the leaderboard tables: 100 submissions x 12 datasets x 300 cases (360k case rows).

Targets: the main table from the raw per-case frame (pivot + person means + bootstrap CIs over people + tied ranks)
in < 2 s; a typical filter change (new table from the prepared arrays, unchanged datasets reused) in
< 0.3 s; the worst-case filter change (every dataset's case set changes) in < 0.6 s. Each benchmark also runs,
once, the naive pandas approach a user would otherwise write (groupby over (submission, dataset, person) for the
person means, then a Python loop per (submission, dataset) calling benchmark.analysis.stats, pivot_table per dataset
for the ranks) on the same input, checks it gives the same numbers, and records both times and the ratio in
extra_info.

Run: python -m pytest tests/benchmarks/test_bench_leaderboard.py --benchmark-enable
(with the default --benchmark-disable each table is built once and the naive comparison is skipped)
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from benchmark.analysis import stats, summary
from benchmark.evaluation.metrics import HIGHER_IS_BETTER
from leaderboard import data as board_data, tables
from leaderboard.data import Filters

MAIN_TABLE_TARGET_S = 2.0
FILTER_CHANGE_TARGET_S = 0.3
WORST_FILTER_CHANGE_TARGET_S = 0.6
SITES = ("site-a", "site-b", "site-c", "site-d")
VENDORS = ("Siemens", "GE", "Philips")
PATHOLOGIES = ("HC", "MS", "DCM", "SCI")
CONTRASTS = ("T1w", "T2w", "T2star", "MP2RAGE", "EPI", "STIR")


def synthetic_cases_frame(
    n_submissions: int = 100, n_datasets: int = 12, n_cases: int = 300, *, seed: int = 0, version: str = "v1"
) -> pd.DataFrame:
    """A per-case frame with realistic structure: per-dataset contrasts, several sites/vendors/pathologies,
    some automated masks, per-model training datasets, a few leaked subjects, failures and one incomplete model.
    Every third dataset is multi-contrast: its persons have two images (two contrasts), so the CSA-consistency
    columns are computed (csa_mm2 per case, None where the prediction failed)."""
    rng = np.random.default_rng(seed)
    datasets = [f"ds{d:02d}" for d in range(n_datasets)]
    roles = ["in-domain" if d < n_datasets * 2 // 3 else "ood" for d in range(n_datasets)]
    submissions = [f"model-{s:03d}" for s in range(n_submissions)]
    sub_idx = np.repeat(np.arange(n_submissions), n_datasets * n_cases)
    ds_idx = np.tile(np.repeat(np.arange(n_datasets), n_cases), n_submissions)
    case_idx = np.tile(np.arange(n_cases), n_submissions * n_datasets)
    # case attributes: fixed per (dataset, case)
    contrast_of = np.array([[CONTRASTS[(d + (c % 2) * (d % 3 == 0)) % len(CONTRASTS)] for c in range(n_cases)] for d in range(n_datasets)], dtype=object)
    site_of = rng.integers(0, len(SITES), size=(n_datasets, n_cases))
    vendor_of = rng.integers(0, len(VENDORS), size=(n_datasets, n_cases))
    path_of = rng.integers(0, len(PATHOLOGIES), size=(n_datasets, n_cases))
    automated = rng.random((n_datasets, n_cases)) < np.where(np.arange(n_datasets) % 4 == 3, 0.3, 0.0)[:, None]
    # model skill: per submission and dataset
    trained = rng.random((n_submissions, n_datasets)) < 0.3
    skill = rng.normal(0.85, 0.03, size=(n_submissions, 1)) + np.where(trained, 0.03, -0.02)
    difficulty = rng.normal(0.0, 0.04, size=(n_datasets, n_cases))
    dice = np.clip(skill[sub_idx, ds_idx] + difficulty[ds_idx, case_idx] + rng.normal(0, 0.03, sub_idx.size), 0, 1)
    failed = rng.random(sub_idx.size) < 0.002
    dice[failed] = 0.0
    leaked = trained[sub_idx, ds_idx] & (case_idx < 3) & (sub_idx % 10 == 0)
    # multi-contrast datasets: cases 2k and 2k+1 are one person's two contrasts
    person_of = np.where((np.arange(n_datasets) % 3 == 0)[:, None], np.arange(n_cases)[None, :] // 2,
                         np.arange(n_cases)[None, :])
    subject_of = np.array([[f"sub-{p:03d}" for p in row] for row in person_of], dtype=object)
    # run-1 / run-2 keep the case ids sorted in case order (the naive approach resamples cases in row order)
    case_of = np.array([[f"{datasets[d]}:{subject_of[d, c]}/anat/{subject_of[d, c]}_run-{c % 2 + 1}_{contrast_of[d, c]}.nii.gz"
                         for c in range(n_cases)] for d in range(n_datasets)], dtype=object)
    reference_csa = rng.normal(80, 6, size=(n_datasets, n_cases))
    csa = reference_csa[ds_idx, case_idx] + rng.normal(0, 1.5, sub_idx.size)
    frame = pd.DataFrame(
        {
            "submission": np.asarray(submissions, dtype=object)[sub_idx],
            "case_id": case_of[ds_idx, case_idx],
            "dataset": np.asarray(datasets, dtype=object)[ds_idx],
            "subject": subject_of[ds_idx, case_idx],
            "person": subject_of[ds_idx, case_idx],
            "session": None,
            "contrast": contrast_of[ds_idx, case_idx],
            "image_sha256": "0" * 64,
            "site": np.asarray(SITES, dtype=object)[site_of[ds_idx, case_idx]],
            "vendor": np.asarray(VENDORS, dtype=object)[vendor_of[ds_idx, case_idx]],
            "pathology": np.asarray(PATHOLOGIES, dtype=object)[path_of[ds_idx, case_idx]],
            "suite_role": np.asarray(roles, dtype=object)[ds_idx],
            "gt_provenance": np.where(automated[ds_idx, case_idx], "automated", "manual"),
            "dataset_in_training": trained[sub_idx, ds_idx],
            "subject_in_training": leaked,
            "dice": dice,
            "nsd": np.clip(dice + rng.normal(0.02, 0.02, sub_idx.size), 0, 1),
            "hd95": np.where(failed, 80.0, np.abs((1 - dice) * 12 + rng.normal(0, 0.3, sub_idx.size))),
            "rve": np.where(failed, 1.0, np.abs(rng.normal(0, 0.08, sub_idx.size))),
            "csa_error": np.where(failed, 60.0, np.abs(rng.normal(6, 2, sub_idx.size))),
            "csa_mm2": np.where(failed, np.nan, csa),
            "csa_reference_mm2": reference_csa[ds_idx, case_idx],
            "runtime_s": 1.0,
            "peak_memory_mb": 100.0,
            "failure": np.where(failed, "prediction crashed", None),
            "suite": "synth",
            "benchmark_version": version,
            "model_type": np.where(trained.sum(axis=1) > 3, "aggregated", "specific")[sub_idx],
            "licence": "MIT",
            "parameters": 31_000_000.0,
            "declared_training_datasets": None,
            "results_path": "",
        }
    )
    declared = [", ".join(d for d, t in zip(datasets, row) if t) for row in trained]
    frame["declared_training_datasets"] = np.asarray(declared, dtype=object)[sub_idx]
    # one incomplete submission: the last one misses 5 cases of the first dataset
    drop = (sub_idx == n_submissions - 1) & (ds_idx == 0) & (case_idx < 5)
    frame = frame[~drop].reset_index(drop=True)
    for column in ("submission", "case_id", "dataset", "subject", "person", "contrast", "site", "vendor", "pathology",
                   "suite_role", "gt_provenance", "suite", "benchmark_version", "model_type", "licence",
                   "declared_training_datasets", "results_path"):
        frame[column] = frame[column].astype("category")
    return frame


@pytest.fixture(scope="module")
def cases() -> pd.DataFrame:
    return synthetic_cases_frame()


# ------------------------------------------------------------------------------------------------
# the naive approach
# ------------------------------------------------------------------------------------------------


def naive_main_table(cases: pd.DataFrame, metric: str = "dice", filters: Filters = Filters(), n_resamples: int = 5000):
    """What one would write with pandas: filter, person means by groupby, a Python loop per (submission, dataset),
    pivot_table per dataset for the ranks."""
    df = cases
    if filters.contrasts:
        df = df[df["contrast"].isin(filters.contrasts)]
    if filters.sites:
        df = df[df["site"].isin(filters.sites)]
    if filters.pathologies:
        df = df[df["pathology"].isin(filters.pathologies)]
    if filters.exclude_automated_gt:
        df = df[df["gt_provenance"] != "automated"]
    expected = df.groupby("dataset", observed=True)["case_id"].nunique()
    leaked_per_group = df.groupby(["submission", "dataset"], observed=True)["subject_in_training"].sum()
    if filters.exclude_leaked:
        df = df[~df["subject_in_training"]]
    scans = df.groupby(["submission", "dataset"], observed=True)[metric].size()
    people = df.groupby(["submission", "dataset", "person"], observed=True)[metric].mean()
    cells = []
    resamples = {}
    for (submission, dataset), group in people.groupby(level=["submission", "dataset"], observed=True):
        values = group.sort_index(level="person").to_numpy()  # people in person-id order
        complete = scans[(submission, dataset)] + int(leaked_per_group.get((submission, dataset), 0)) == expected[dataset]
        ci = stats.bootstrap_mean_ci(values, seed=summary.dataset_seed(0, dataset), n_resamples=n_resamples)
        rng = np.random.default_rng(summary.dataset_seed(0, dataset))
        block = (1 << 20) // len(values)  # benchmark.analysis.stats draws its indices in calls of <= 2**20 values
        resamples[(submission, dataset)] = np.concatenate([
            values[rng.integers(0, len(values), size=(min(block, n_resamples - start), len(values)))].mean(axis=1)
            for start in range(0, n_resamples, block)
        ])
        trained = bool(df[(df["submission"] == submission) & (df["dataset"] == dataset)]["dataset_in_training"].iloc[0])
        cells.append({"submission": submission, "dataset": dataset, "mean": ci.mean if complete else np.nan,
                      "low": ci.low, "high": ci.high, "complete": complete, "trained": trained})
    cells = pd.DataFrame(cells)
    means = cells.pivot_table(index="submission", columns="dataset", values="mean", dropna=False)
    ranks = {}
    for dataset, group in df.groupby("dataset", observed=True):
        complete = set(cells[(cells["dataset"] == dataset) & cells["complete"]]["submission"])
        wide = group[group["submission"].isin(complete)].pivot_table(index=["person", "case_id"], columns="submission", values=metric, observed=True).dropna()
        wide = wide.groupby(level="person").mean()  # per person, on the scans every ranked model has
        ranked = stats.rank_with_ties({str(c): wide[c].to_numpy() for c in wide.columns}, higher_is_better=HIGHER_IS_BETTER[metric])
        for submission, rank in ranked.items():
            ranks[(submission, dataset)] = rank
    macro_means = {}
    for submission, group in cells.groupby("submission"):
        for label, subset in (("in", group[group["trained"]]), ("ood", group[~group["trained"]])):
            if len(subset) and subset["complete"].all():
                macro = np.mean([resamples[(submission, d)] for d in subset["dataset"]], axis=0)
                macro_means[(submission, label)] = (subset["mean"].mean(), *np.quantile(macro, [0.025, 0.975]))
    return means, ranks, macro_means


def _check_same_numbers(data: tables.MainTableData, naive) -> None:
    means, ranks, summary = naive
    ours = data.mean.reindex(index=means.index, columns=means.columns)
    assert np.allclose(ours.to_numpy(), means.to_numpy(), equal_nan=True, atol=1e-12)
    for (submission, dataset), rank in ranks.items():
        assert data.rank.at[submission, dataset] == rank
    for (submission, label), (mean, low, high) in summary.items():
        assert data.summary.at[submission, f"{label}_mean"] == pytest.approx(mean, abs=1e-12)
        assert data.summary.at[submission, f"{label}_low"] == pytest.approx(min(low, mean), abs=1e-9)


def _record(benchmark, naive_s: float, target_s: float) -> None:
    benchmark.extra_info["target_s"] = target_s
    benchmark.extra_info["naive_s"] = round(naive_s, 3)
    if benchmark.stats is not None:  # None with --benchmark-disable
        mean = benchmark.stats.stats.mean
        benchmark.extra_info["naive_over_vectorised"] = round(naive_s / mean, 1)
        assert mean < target_s, f"{mean:.3f} s (target {target_s} s)"


# ------------------------------------------------------------------------------------------------
# benchmarks
# ------------------------------------------------------------------------------------------------


@pytest.mark.benchmark(group="leaderboard-main-table")
def test_main_table_from_raw_cases(benchmark, cases):
    assert len(cases) == 100 * 12 * 300 - 5
    table = benchmark.pedantic(lambda: tables.build_main_table(cases), rounds=3, iterations=1, warmup_rounds=0)
    assert len(table) == 100 and table["mean rank"].iloc[-1] == "incomplete"
    assert [c.split(";")[0] for c in table.columns if c.startswith("CSA")] == [
        f"CSA SD across contrasts, mm² (ds{d:02d}" for d in (0, 3, 6, 9)]
    if benchmark.disabled:  # plain test runs: the naive comparison (~20 s) only runs when benchmarking
        return
    start = time.perf_counter()
    naive = naive_main_table(cases)
    naive_s = time.perf_counter() - start
    _check_same_numbers(tables.main_table_data(cases), naive)
    _record(benchmark, naive_s, MAIN_TABLE_TARGET_S)


#: change -> (filters, target in s)
FILTER_CHANGES = {
    # a typical change: some datasets drop out, two change their case set, the others are reused
    "contrast": (Filters(contrasts=("T1w", "T2star", "MP2RAGE", "EPI")), FILTER_CHANGE_TARGET_S),
    # the worst case: every dataset's case set changes, nothing can be reused: 12 datasets x (5000
    # bootstrap resamples + 4950 pairwise Wilcoxon tests) from scratch, ~0.3 s of CPU on its own
    "pathology": (Filters(pathologies=("HC", "MS")), WORST_FILTER_CHANGE_TARGET_S),
}


@pytest.mark.benchmark(group="leaderboard-filter-change")
@pytest.mark.parametrize("change", sorted(FILTER_CHANGES))
def test_filter_change(benchmark, cases, change):
    prep = board_data.prepare(cases)
    new_filters, target_s = FILTER_CHANGES[change]

    def setup():  # the app's state before the change: the unfiltered table was shown
        prep.clear_memo()
        tables.build_main_table(prep)

    table = benchmark.pedantic(lambda: tables.build_main_table(prep, filters=new_filters), setup=setup, rounds=3, iterations=1)
    assert len(table) == 100
    if benchmark.disabled:
        return
    start = time.perf_counter()
    naive = naive_main_table(cases, filters=new_filters)
    naive_s = time.perf_counter() - start
    _check_same_numbers(tables.main_table_data(prep, filters=new_filters), naive)
    _record(benchmark, naive_s, target_s)
