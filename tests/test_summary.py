"""One analysis path: `score`, the report, the leaderboard and the gate show the same CI for the same rows."""

from __future__ import annotations

import pytest

from benchmark.analysis import summary
from benchmark.analysis.gate import compare_results
from benchmark.analysis.labels import format_ci, format_p, metric_label
from benchmark.analysis.report import model_means, report_cases, statistics_table, comparison_table
from benchmark.analysis.stats import bootstrap_mean_ci, paired_difference_ci
from benchmark.evaluation.results import find_results_files, load_results
from leaderboard import data as board_data, tables
from leaderboard_fixtures import DEMO_AGGREGATED, DEMO_DATASETS, write_demo_results


@pytest.fixture(scope="module")
def demo_results(tmp_path_factory):
    root = write_demo_results(tmp_path_factory.mktemp("summary"), incomplete=False)
    return {results.submission: results for results in map(load_results, find_results_files(root))}, root


def test_dataset_seed_is_stable_and_distinct_per_dataset():
    assert summary.dataset_seed(0, "synth-ms") == summary.dataset_seed(0, "synth-ms")
    assert summary.dataset_seed(0, "synth-ms") != summary.dataset_seed(0, "synth-epi")
    assert summary.dataset_seed(0, "synth-ms") != summary.dataset_seed(1, "synth-ms")


def test_mean_ci_is_the_bootstrap_with_the_dataset_seed():
    values = [0.91, 0.85, 0.88, 0.97, 0.79, 0.93]
    ci = summary.mean_ci(values, dataset="synth-ms")  # no persons given: every value is a person
    expected = bootstrap_mean_ci(values, seed=summary.dataset_seed(0, "synth-ms"), n_resamples=5000)
    assert (ci.mean, ci.low, ci.high, ci.n, ci.scans) == (expected.mean, expected.low, expected.high, 6, 6)
    assert ci.mean == pytest.approx(sum(values) / len(values))
    compared = summary.paired_comparison(values, [0.9] * 6, dataset="synth-ms")
    expected = paired_difference_ci(values, [0.9] * 6, seed=summary.dataset_seed(0, "synth-ms"))
    assert (compared.difference.low, compared.difference.high) == pytest.approx((expected.low, expected.high))
    assert 0 < compared.p_value <= 1


def test_score_report_and_leaderboard_print_the_same_ci(demo_results):
    by_name, root = demo_results
    aggregated = by_name[DEMO_AGGREGATED]
    score_cells = {row["dataset"]: format_ci(row["mean"], row["low"], row["high"], "dice")
                   for row in summary.dataset_summaries(aggregated, "dice")}
    assert set(score_cells) == set(DEMO_DATASETS)

    in_domain = [dataset for dataset, spec in DEMO_DATASETS.items() if spec[0] == "in-domain"]
    cases = report_cases(list(by_name.values()), in_domain)
    means = model_means(cases, metric="dice")
    report = statistics_table(means, comparison_table(cases, metric="dice"), metric="dice").set_index("dataset")
    report_cells = {dataset: report.loc[dataset, DEMO_AGGREGATED] for dataset in DEMO_DATASETS}

    loaded = board_data.load_results_dirs([root])
    main = tables.build_main_table(board_data.prepare(loaded.cases)).set_index(tables.KEY_COLUMN)
    board_cells = {dataset: main.loc[DEMO_AGGREGATED, tables.dataset_column(dataset, spec[0])]
                   for dataset, spec in DEMO_DATASETS.items()}
    board_cells = {dataset: cell.removesuffix(f" {tables.TRAINED_MARK}") for dataset, cell in board_cells.items()}
    assert score_cells == report_cells == board_cells


def test_gate_and_leaderboard_compare_view_give_the_same_difference_ci(demo_results):
    by_name, root = demo_results
    candidate, baseline = by_name[DEMO_AGGREGATED], by_name["nnunet-specific-ms"]
    report = compare_results(candidate, baseline, metric="dice", margin=0.01, alpha=0.05)
    gate_cells = {verdict.dataset: format_ci(verdict.difference.mean, verdict.difference.low,
                                             verdict.difference.high, "dice", signed=True)
                  for verdict in report.verdicts}
    loaded = board_data.load_results_dirs([root])
    _pairs, compared = tables.compare_submissions(board_data.prepare(loaded.cases), baseline.submission,
                                                  candidate.submission)
    board_cells = {row["dataset"]: format_ci(row["mean diff (B − A)"], row["CI low"], row["CI high"], "dice",
                                             signed=True) for _, row in compared.iterrows()}
    # one rule for leaked cases: both leave the pairs with a leaked side out (synth-mp2rage has 2), so they agree
    # to the digit on every dataset
    leaked = {case.dataset for case in candidate.cases + baseline.cases if case.subject_in_training}
    assert leaked == {"synth-mp2rage"}
    assert gate_cells == board_cells
    assert len(gate_cells) == len(DEMO_DATASETS)


def test_labels_and_formats_are_defined_once():
    assert metric_label("dice") == "Dice"
    assert metric_label("csa_error") == "CSA error (mm²)"
    assert format_p(float("nan")) == "–"
    assert format_p(0.04567) == "0.0457"
    assert format_ci(-0.0214, -0.0251, -0.0163, "dice", signed=True) == "-0.021 [-0.025, -0.016]"
