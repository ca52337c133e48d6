"""Statistics by person: a worked example checked by hand and against scipy, the cluster bootstrap, the five callers of
the one paired comparison on the same results, and the blindness of every interval, p-value and verdict to how
many scans a person has (tests/people_fixtures.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from benchmark.analysis import summary
from benchmark.analysis.csa_drift import csa_drift_report
from benchmark.analysis.family import NO_PAIRS, TESTED, Pairs, compare_family, pairs_from_cases
from benchmark.analysis.gate import compare_results
from benchmark.analysis.labels import TOO_FEW_PEOPLE
from benchmark.analysis.report import comparison_table, report_cases
from benchmark.analysis.seeds import families, seed_comparison_table
from benchmark.analysis.stats import bootstrap_mean_ci, paired_wilcoxon
from leaderboard import data as board_data, tables
from people_fixtures import IN_DOMAIN, people_results

# ------------------------------------------------------------------------------------------------ worked example

#: six people, 1-3 scans each, two models: per scan (person, a, b)
WORKED = [("p1", 0.80, 0.75), ("p1", 0.84, 0.79),  # person differences: p1 mean(.05, .05) = +.05
          ("p2", 0.70, 0.67),  # +.03
          ("p3", 0.90, 0.92), ("p3", 0.88, 0.89), ("p3", 0.86, 0.86),  # mean(-.02, -.01, 0) = -.01
          ("p4", 0.75, 0.71),  # +.04
          ("p5", 0.81, 0.79), ("p5", 0.83, 0.81),  # +.02
          ("p6", 0.95, 0.89)]  # +.06


def _worked():
    persons = [row[0] for row in WORKED]
    return persons, np.array([row[1] for row in WORKED]), np.array([row[2] for row in WORKED])


def test_worked_example_by_hand_and_with_scipy():
    persons, a, b = _worked()
    compared = summary.paired_comparison(a, b, dataset="worked", persons=persons)
    # by hand: person differences +.05 +.03 -.01 +.04 +.02 +.06; |d| ranks 5 3 1 4 2 6; R- = 1, R+ = 20.
    # Exact null of R+ over the 2^6 sign patterns: P(R+ >= 20) = P(R+ = 20) + P(R+ = 21) = 2/64 (only "rank 1 negative"
    # and "none negative"), so the two-sided p is 2 * 2/64 = 0.0625.
    assert compared.p_value == pytest.approx(0.0625, abs=1e-15)
    person_differences = [0.05, 0.03, -0.01, 0.04, 0.02, 0.06]
    assert compared.p_value == pytest.approx(scipy.stats.wilcoxon(person_differences).pvalue, abs=1e-12)
    assert compared.difference.mean == pytest.approx(sum(person_differences) / 6, abs=1e-12)
    assert (compared.difference.n, compared.difference.scans) == (6, 10)
    # the scan-level test would count 10 "cases" (and drop p3's zero): a smaller p from the same people
    scan_level = paired_wilcoxon(a, b)
    assert scan_level == pytest.approx(scipy.stats.wilcoxon(a, b).pvalue, abs=1e-12)
    assert scan_level < compared.p_value


def test_the_bootstrap_resamples_people_and_their_scans_move_together():
    persons, a, _ = _worked()
    ci = summary.mean_ci(a, dataset="worked", persons=persons)
    person_means = np.array([0.82, 0.70, 0.88, 0.75, 0.82, 0.95])  # p1..p6 in id order
    assert ci.mean == pytest.approx(person_means.mean(), abs=1e-12)
    # independent re-implementation: draw 6 people with replacement 5000 times with the dataset's seed
    rng = np.random.default_rng(summary.dataset_seed(0, "worked"))
    resampled = person_means[rng.integers(0, 6, size=(5000, 6))].mean(axis=1)
    low, high = np.quantile(resampled, [0.025, 0.975])
    assert (ci.low, ci.high) == (pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12))
    # the person mean weighs every person once, whatever their number of scans (the scan mean would weigh p3 x3)
    assert ci.mean != pytest.approx(a.mean(), abs=1e-6)


def test_below_the_minimum_of_people_no_interval_and_no_test():
    persons, a, b = _worked()
    keep = [i for i, person in enumerate(persons) if person != "p6"]  # 5 people left
    compared = summary.paired_comparison(a[keep], b[keep], dataset="worked", persons=[persons[i] for i in keep])
    assert compared.difference.n == 5 == summary.MIN_PEOPLE - 1
    assert compared.difference.interval_withheld and math.isnan(compared.p_value)
    # why 6: with 5 people the exact two-sided signed-rank p cannot go below 2/2^5 = 0.0625 > 0.05
    assert paired_wilcoxon([0.1, 0.2, 0.3, 0.4, 0.5], [0] * 5) == pytest.approx(0.0625)
    assert paired_wilcoxon([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0] * 6) == pytest.approx(0.03125)


# ------------------------------------------------------------------------------------------------ the five callers


def _callers(results):
    """The paired comparison agg - spec per dataset, as each of the five callers computes it (dice; csa_mm2 = dice)."""
    agg, spec = results
    cases = report_cases(results, IN_DOMAIN)
    report = comparison_table(cases, metric="dice").set_index("dataset")
    seeds = seed_comparison_table(cases, families(results), metric="dice").set_index("dataset")
    gate = {v.dataset: v for v in compare_results(agg, spec, metric="dice", margin=0.01).verdicts}
    drift = {v.dataset: v for v in csa_drift_report(agg, spec).verdicts}
    _, board = tables.compare_submissions(board_data.prepare(board_data.cases_from_results(results)), "spec", "agg")
    board = board.set_index("dataset")
    rows = {}
    for dataset in sorted(gate):
        rows[dataset] = {
            "report": (report.loc[dataset, ["people", "scans", "difference", "difference_low", "difference_high",
                                            "p", "p_holm"]].tolist() if dataset in report.index else None),
            "seeds": (seeds.loc[dataset, ["people", "scans", "difference", "difference_low", "difference_high", "p",
                                          "p_holm"]].tolist() if dataset in seeds.index else None),
            "board": board.loc[dataset, ["people", "paired scans", "mean diff (B − A)", "CI low", "CI high",
                                         "Wilcoxon p", "Holm p"]].tolist(),
            "drift": [drift[dataset].n, drift[dataset].scans, drift[dataset].difference.mean,
                      drift[dataset].difference.low, drift[dataset].difference.high, None, drift[dataset].p_value],
            "gate": [gate[dataset].n, gate[dataset].scans, gate[dataset].difference.mean,
                     gate[dataset].difference.low, gate[dataset].difference.high, None, gate[dataset].p_value],
        }
    return rows


def _expected(results, alternative="two-sided"):
    agg, spec = results
    by_id = {case.case_id: case for case in spec.cases}
    datasets = sorted({case.dataset for case in agg.cases})
    family = [pairs_from_cases(d, [(case, by_id[case.case_id]) for case in agg.cases if case.dataset == d],
                               lambda case: case.dice) for d in datasets]
    return {row.dataset: row for row in compare_family(family, alternative=alternative)}


def _same(got, row, *, with_p=True):
    """The caller's (people, scans, difference, low, high[, p, p_holm]) equal the family row's."""
    numbers = [row.people, row.scans, row.difference.mean, row.difference.low, row.difference.high]
    if with_p:
        numbers += [row.p, row.p_holm]
    return [float(value) for value in got[:len(numbers)]] == pytest.approx(numbers, abs=1e-12, nan_ok=True)


def test_the_five_callers_give_identical_rows():
    results = people_results()
    expected, one_sided = _expected(results), _expected(results, alternative="less")
    rows = _callers(results)
    assert sorted(rows) == ["d-few", "d-leak", "d-multi", "d-nopairs", "d-single"]
    for dataset, callers in rows.items():
        row = expected[dataset]
        if row.status == NO_PAIRS:  # every pair leaked: no reference to name in the report, no row there
            assert callers["report"] is None and callers["seeds"] is None
        else:
            assert _same(callers["report"], row) and _same(callers["seeds"], row), dataset
        assert _same(callers["board"], row), dataset
        assert _same(callers["drift"], row, with_p=False) and _same(callers["gate"], row, with_p=False), dataset
        assert callers["drift"][6] == pytest.approx(row.p_holm, nan_ok=True)  # two-sided, Holm over the same family
        assert callers["gate"][6] == pytest.approx(one_sided[dataset].p_holm, nan_ok=True)  # one-sided
    # the shared rules, visible in the rows
    assert expected["d-multi"].people == 8 and expected["d-multi"].scans == 21 and expected["d-multi"].status == TESTED
    assert expected["d-few"].status == TOO_FEW_PEOPLE and (expected["d-few"].people, expected["d-few"].scans) == (4, 20)
    assert expected["d-leak"].people == 6 and expected["d-leak"].leaked == 2  # leaked pairs left out by every caller
    assert expected["d-nopairs"].status == NO_PAIRS and math.isnan(expected["d-nopairs"].p_holm)
    assert expected["d-single"].p == pytest.approx(2 / 2 ** 10) and expected["d-single"].p_holm <= 0.05
    tested = [row for row in expected.values() if row.tested]
    assert len(tested) == 3  # the Holm family: d-multi, d-single, d-leak
    smallest = min(tested, key=lambda row: row.p)
    assert smallest.p_holm == pytest.approx(min(1.0, 3 * smallest.p))


# ------------------------------------------------------------------------------------------------ duplication


def _all_numbers(results):
    """Every interval, p-value and verdict the summaries, the five callers and the leaderboard show."""
    agg, spec = results
    numbers = {}
    for result in results:
        for row in summary.dataset_summaries(result, "dice"):
            numbers[("summary", result.submission, row["dataset"])] = (row["people"], row["mean"], row["low"],
                                                                      row["high"])
    cases = report_cases(results, IN_DOMAIN)
    for row in comparison_table(cases, metric="dice").itertuples():
        numbers[("report", row.dataset)] = (row.people, row.difference, row.difference_low, row.difference_high,
                                            row.p, row.p_holm, row.verdict, row.aggregated_low, row.reference_high)
    for row in seed_comparison_table(cases, families(results), metric="dice").itertuples():
        numbers[("seeds", row.dataset)] = (row.people, row.difference, row.difference_low, row.difference_high,
                                           row.p_holm, row.verdict)
    for verdict in compare_results(agg, spec, metric="dice", margin=0.01).verdicts + \
            csa_drift_report(agg, spec, margin=0.01).verdicts:
        numbers[(verdict.metric, verdict.dataset)] = (verdict.n, verdict.difference.mean, verdict.difference.low,
                                                      verdict.difference.high, verdict.p_value, verdict.verdict,
                                                      verdict.status)
    prepared = board_data.prepare(board_data.cases_from_results(results))
    data = tables.main_table_data(prepared)
    for name in data.mean.index:
        for dataset in data.datasets:
            numbers[("board", name, dataset)] = (data.mean.at[name, dataset], data.low.at[name, dataset],
                                                 data.high.at[name, dataset], data.rank.at[name, dataset])
        numbers[("board", name)] = tuple(data.summary.loc[name, ["in_mean", "in_low", "in_high", "ood_mean",
                                                                 "ood_low", "ood_high", "mean_rank"]])
    _, compared = tables.compare_submissions(prepared, "spec", "agg")
    for _, row in compared.iterrows():
        numbers[("compare", row["dataset"])] = tuple(row[["people", "mean diff (B − A)", "CI low", "CI high",
                                                          "Wilcoxon p", "Holm p", "status"]])
    return numbers


def test_duplicating_every_scan_of_a_dataset_changes_no_interval_p_value_or_verdict():
    before = _all_numbers(people_results())
    for dataset in ("d-multi", "d-single", "d-few"):
        after = _all_numbers(people_results(copies={dataset: 2}))
        assert after.keys() == before.keys()
        for key, values in before.items():
            text = [value for value in values if isinstance(value, str)]
            numbers = [float(value) for value in values if not isinstance(value, str)]
            assert [value for value in after[key] if isinstance(value, str)] == text, (dataset, key)
            assert [float(value) for value in after[key] if not isinstance(value, str)] == pytest.approx(
                numbers, abs=1e-12, nan_ok=True), (dataset, key)
    assert before[("report", "d-single")][6] == "aggregated better"  # a called verdict is among those kept
    # not vacuous: the scan-level bootstrap of the same values narrows when every scan is counted twice
    spec_single = [case.dice for case in people_results()[1].cases if case.dataset == "d-single"]
    once = bootstrap_mean_ci(spec_single, seed=1)
    twice = bootstrap_mean_ci(spec_single * 2, seed=1)
    assert twice.high - twice.low < 0.8 * (once.high - once.low)


def test_scans_are_counted_beside_the_people():
    results = people_results(copies={"d-multi": 2})
    [multi] = [row for row in summary.dataset_summaries(results[1], "dice") if row["dataset"] == "d-multi"]
    assert (multi["people"], multi["scans"]) == (8, 42)
    verdict = next(v for v in compare_results(*results, metric="dice").verdicts if v.dataset == "d-multi")
    assert (verdict.n, verdict.scans) == (8, 42)


def test_compare_family_validates_its_rows():
    with pytest.raises(ValueError, match="one entry per scan"):
        compare_family([Pairs("d", ["a", "b"], [0.1, 0.2], [0.3])])


def test_synth_multicontrast_reports_4_people_of_20_scans_in_the_committed_results():
    """The issue's case: 20 test scans of 4 people (one of them in two sessions) are 4 people, too few for a CI."""
    import benchmark as cb
    from benchmark.analysis.labels import format_ci, format_people

    submission = cb.load_submission("nnunet-synthetic-aggregated-quick")
    results = cb.load_results(cb.results_path(submission.folder, "synthetic", cb.load_split("synthetic").version))
    rows = {row["dataset"]: row for row in summary.dataset_summaries(results, "dice")}
    multicontrast = rows["synth-multicontrast"]
    assert format_people(multicontrast["people"], multicontrast["scans"]) == "4 (20)"
    assert format_ci(multicontrast["mean"], multicontrast["low"], multicontrast["high"], "dice").endswith(
        "(too few people)")
    assert (rows["synth-epi"]["people"], rows["synth-epi"]["scans"]) == (12, 12) and rows["synth-epi"]["low"] > 0
