"""leaderboard.tables against the hand-computed fixture of tests/leaderboard_fixtures.py.

Fixture (dice per case; hd95 = 10 * (1 - dice)):

    dataset (suite role)  cases                       spec-alpha           agg                       spec-beta
    alpha (in-domain)     a1..a4 T2w                  .9 .8 .7 .6 = .75 †  .8 .8 .8 .8 = .80 †       .5 .6 .7 .8 = .65
    beta (in-domain)      b1 b2 T1w, b3 b4 T2w        .6 .6 .8 .8 = .70    .9 .7 .9 .9 = .85 †       .9 .9 .7 .7 = .80 †
    gamma (ood)           g1 g2 manual, g3 g4 autom.  .4 .5 .6 .7 = .55    .9(leak) 0(failed) .6 .8  .3 .4 .5 (g4 missing)

    agg on gamma: leaked g1 excluded -> (0 + .6 + .8) / 3 = .466667; included -> 2.3 / 4 = .575.
    mean in-domain (trained-on):  spec-alpha .75; agg (.80 + .85) / 2 = .825; spec-beta .80
    mean OOD (zero-shot):         spec-alpha (.70 + .55) / 2 = .625; agg .466667; spec-beta incomplete

Every case is its own person (4 people per dataset, fewer than summary.MIN_PEOPLE): the displayed cells show the mean
and "too few people"; the bootstrap machinery is checked on the numbers computed with ``min_people=1``.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from benchmark.analysis import stats, summary
from leaderboard import data as board_data, tables
from leaderboard.data import Filters
from leaderboard_fixtures import HAND_VERSION, hand_case_id, hand_results, write_hand_results


@pytest.fixture(scope="module")
def cases() -> pd.DataFrame:
    return board_data.cases_from_results(hand_results())


@pytest.fixture(scope="module")
def data(cases):
    return tables.main_table_data(cases)


@pytest.fixture(scope="module")
def data_any_size(cases):
    """The numbers with an interval at any number of people (the displayed table withholds them below 6)."""
    return tables.main_table_data(cases, min_people=1)


def ci_text(values, dataset, decimals=3, trained=False):
    """A cell of one value per person: the mean with its interval, or "too few people" below MIN_PEOPLE."""
    ci = stats.bootstrap_mean_ci(values, seed=summary.dataset_seed(0, dataset))
    if len(values) < summary.MIN_PEOPLE:
        text = f"{ci.mean:.{decimals}f} (too few people)"
    else:
        text = f"{ci.mean:.{decimals}f} [{ci.low:.{decimals}f}, {ci.high:.{decimals}f}]"
    return text + (" †" if trained else "")


def row(table: pd.DataFrame, submission: str) -> pd.Series:
    return table.set_index("submission").loc[submission]


# ------------------------------------------------------------------------------------------------
# means, completeness, in-domain / OOD per model
# ------------------------------------------------------------------------------------------------


def test_dataset_means_are_the_hand_computed_ones(data):
    assert data.datasets == ["alpha", "beta", "gamma"]  # in-domain first, then OOD
    expected = {
        ("spec-alpha", "alpha"): 0.75, ("spec-alpha", "beta"): 0.70, ("spec-alpha", "gamma"): 0.55,
        ("agg", "alpha"): 0.80, ("agg", "beta"): 0.85, ("agg", "gamma"): 1.4 / 3,
        ("spec-beta", "alpha"): 0.65, ("spec-beta", "beta"): 0.80,
    }
    for (submission, dataset), mean in expected.items():
        assert data.mean.at[submission, dataset] == pytest.approx(mean, abs=1e-12), (submission, dataset)
        assert data.status.at[submission, dataset] == "ok"
    assert np.isnan(data.mean.at["spec-beta", "gamma"])
    assert data.status.at["spec-beta", "gamma"] == "incomplete"
    assert data.n_used.at["spec-beta", "gamma"] == 3 and data.n_expected.at["spec-beta", "gamma"] == 4


def test_in_domain_and_ood_means_follow_each_models_training_data(data):
    summary = data.summary
    assert summary.at["spec-alpha", "in_mean"] == pytest.approx(0.75)
    assert summary.at["spec-alpha", "ood_mean"] == pytest.approx((0.70 + 0.55) / 2)
    assert summary.at["agg", "in_mean"] == pytest.approx(0.825)
    assert summary.at["agg", "ood_mean"] == pytest.approx(1.4 / 3)
    assert summary.at["spec-beta", "in_mean"] == pytest.approx(0.80)
    assert summary.at["spec-beta", "ood_status"] == "incomplete"
    assert np.isnan(summary.at["spec-beta", "ood_mean"])
    assert summary.at["spec-beta", "rank_status"] == "incomplete"
    # 4 cases: no exact Wilcoxon p can reach 0.05 (minimum 2/16), so every dataset is a tie at rank 1
    assert summary.at["agg", "mean_rank"] == 1.0 and summary.at["spec-alpha", "mean_rank"] == 1.0


def test_displayed_table_shows_incomplete_and_no_mean(cases):
    table = tables.build_main_table(cases)
    assert list(table["submission"]) == ["agg", "spec-alpha", "spec-beta"]  # rank 1, 1 (by name), incomplete last
    spec_beta = row(table, "spec-beta")
    assert spec_beta["OOD/gamma"] == "incomplete"
    assert spec_beta["mean OOD (zero-shot)"] == "incomplete"
    assert spec_beta["mean rank"] == "incomplete"
    assert spec_beta["notes"] == "incomplete on gamma (3/4 cases)"
    assert spec_beta["in-domain/beta"] == ci_text([0.9, 0.9, 0.7, 0.7], "beta", trained=True)
    agg = row(table, "agg")
    assert agg["in-domain/alpha"] == "0.800 (too few people) †"  # 4 people: no interval
    assert agg["OOD/gamma"] == ci_text([0.0, 0.6, 0.8], "gamma")  # failure counted (0), leak excluded
    assert agg["mean in-domain"] == "0.825 (too few people)"  # its datasets have too few people
    assert tables.format_main_table(tables.main_table_data(cases, min_people=1)).set_index("submission").at[
        "agg", "in-domain/alpha"] == "0.800 [0.800, 0.800] †"  # constant values: the CI collapses
    assert agg["mean rank"] == "1.00"
    assert agg["notes"] == "1 case(s) with subject in training excluded (gamma); 1 failed case(s) scored worst"
    assert agg["model type"] == "aggregated" and agg["training datasets"] == "alpha, beta"
    assert agg["parameters"] == "1.5 M" and agg["licence"] == "MIT"


def test_cell_cis_equal_benchmark_stats_bootstrap(data_any_size, data):
    assert data.low.isna().all().all() and data.people.at["agg", "gamma"] == 3  # too few people: withheld
    for submission, dataset, values in [
        ("spec-alpha", "alpha", [0.9, 0.8, 0.7, 0.6]),
        ("spec-beta", "alpha", [0.5, 0.6, 0.7, 0.8]),
        ("spec-alpha", "gamma", [0.4, 0.5, 0.6, 0.7]),
        ("agg", "gamma", [0.0, 0.6, 0.8]),  # its leaked case g1 excluded: resampled over its own 3 cases
    ]:
        ci = stats.bootstrap_mean_ci(values, seed=summary.dataset_seed(0, dataset))
        assert data_any_size.low.at[submission, dataset] == pytest.approx(ci.low, abs=1e-12)
        assert data_any_size.high.at[submission, dataset] == pytest.approx(ci.high, abs=1e-12)
        assert ci.low < ci.mean < ci.high


def test_mean_of_datasets_ci_is_a_stratified_bootstrap(data_any_size, data):
    assert np.isnan(data.summary.at["agg", "in_low"])  # alpha and beta have 4 people each: withheld
    # independent re-implementation: draw each dataset's resamples as benchmark.analysis.stats does, index, average
    alpha = np.array([0.8, 0.8, 0.8, 0.8])
    beta = np.array([0.9, 0.7, 0.9, 0.9])
    resampled = []
    for dataset, values in (("alpha", alpha), ("beta", beta)):
        rng = np.random.default_rng(summary.dataset_seed(0, dataset))
        indices = rng.integers(0, 4, size=(5000, 4))
        resampled.append(values[indices].mean(axis=1))
    low, high = np.quantile((resampled[0] + resampled[1]) / 2, [0.025, 0.975])
    summary_any = data_any_size.summary
    assert summary_any.at["agg", "in_low"] == pytest.approx(min(low, 0.825), abs=1e-12)
    assert summary_any.at["agg", "in_high"] == pytest.approx(max(high, 0.825), abs=1e-12)
    assert summary_any.at["agg", "in_low"] < 0.825 < summary_any.at["agg", "in_high"]


def test_leaked_cases_can_be_included_and_are_flagged(cases):
    data = tables.main_table_data(cases, filters=Filters(exclude_leaked=False))
    assert data.mean.at["agg", "gamma"] == pytest.approx(2.3 / 4)
    table = tables.format_main_table(data)
    assert row(table, "agg")["OOD/gamma"] == ci_text([0.9, 0.0, 0.6, 0.8], "gamma") + " ⚠"
    assert "1 case(s) with subject in training INCLUDED ⚠ (gamma)" in row(table, "agg")["notes"]


# ------------------------------------------------------------------------------------------------
# zero-shot toggle and filters
# ------------------------------------------------------------------------------------------------


def test_zero_shot_only_hides_each_models_trained_on_datasets(cases):
    table = tables.build_main_table(cases, zero_shot_only=True)
    assert "mean in-domain" not in table.columns
    agg, spec_alpha, spec_beta = (row(table, name) for name in ("agg", "spec-alpha", "spec-beta"))
    assert agg["in-domain/alpha"] == "" and agg["in-domain/beta"] == ""
    assert spec_alpha["in-domain/alpha"] == "" and spec_alpha["in-domain/beta"] == ci_text([0.6, 0.6, 0.8, 0.8], "beta")
    assert spec_beta["in-domain/beta"] == "" and spec_beta["in-domain/alpha"] == ci_text([0.5, 0.6, 0.7, 0.8], "alpha")
    data = tables.main_table_data(cases, zero_shot_only=True)
    assert data.summary.at["spec-alpha", "ood_mean"] == pytest.approx(0.625)
    assert data.summary.at["agg", "ood_mean"] == pytest.approx(1.4 / 3)
    assert data.status.at["agg", "alpha"] == "hidden"


def test_contrast_filter_changes_the_numbers(cases):
    data = tables.main_table_data(cases, filters=Filters(contrasts=("T2w",)))
    assert data.datasets == ["alpha", "beta"]  # gamma (EPI) has no T2w case: column gone
    assert data.mean.at["spec-alpha", "beta"] == pytest.approx(0.80)  # b3, b4 only
    assert data.mean.at["agg", "beta"] == pytest.approx(0.90)
    assert data.mean.at["spec-beta", "beta"] == pytest.approx(0.70)
    assert data.summary.at["agg", "in_mean"] == pytest.approx(0.85)
    assert data.summary.at["agg", "ood_status"] == ""  # no zero-shot dataset left for agg
    assert data.summary.at["spec-beta", "ood_mean"] == pytest.approx(0.65)  # now complete (gamma filtered out)
    assert data.summary.at["spec-beta", "rank_status"] == "ok"
    table = tables.format_main_table(data)
    assert row(table, "agg")["mean OOD (zero-shot)"] == ""


def test_excluding_automated_ground_truth_changes_the_numbers(cases):
    data = tables.main_table_data(cases, filters=Filters(exclude_automated_gt=True))
    assert data.mean.at["spec-alpha", "gamma"] == pytest.approx(0.45)  # g1, g2
    assert data.mean.at["spec-beta", "gamma"] == pytest.approx(0.35)  # g4 (its missing case) is automated
    assert data.status.at["spec-beta", "gamma"] == "ok"
    assert data.mean.at["agg", "gamma"] == pytest.approx(0.0)  # g1 leaked (excluded), g2 failed
    assert data.summary.at["spec-beta", "ood_mean"] == pytest.approx((0.65 + 0.35) / 2)
    assert data.summary.at["spec-alpha", "ood_mean"] == pytest.approx((0.70 + 0.45) / 2)


def test_site_filter_and_options(cases):
    options = board_data.filter_options(cases)
    assert options["contrast"] == ["EPI", "T1w", "T2w"]
    assert options["gt_provenance"] == ["automated", "manual"]
    assert options["site"] == ["s1", "s2", "s3"]
    data = tables.main_table_data(cases, filters=Filters(sites=("s1",)))
    assert data.datasets == ["alpha", "beta"]
    assert data.mean.at["spec-alpha", "alpha"] == pytest.approx(0.85)
    assert data.mean.at["spec-alpha", "beta"] == pytest.approx(0.60)


def test_a_metric_that_is_not_finite_counts_as_missing(cases):
    broken = cases.copy()
    broken.loc[(broken["submission"] == "agg") & (broken["case_id"] == hand_case_id("alpha", "a1")), "dice"] = np.nan
    data = tables.main_table_data(broken)
    assert data.status.at["agg", "alpha"] == "incomplete"
    assert data.summary.at["agg", "in_status"] == "incomplete"


# ------------------------------------------------------------------------------------------------
# ranking
# ------------------------------------------------------------------------------------------------


def _ranking_cases(n_cases: int) -> pd.DataFrame:
    """3 models on one dataset: 'low' has the smallest hd95 (best) and the smallest dice (worst)."""
    results = hand_results()[:3]
    rows = []
    for result, offset in zip(results, (0.0, 1.0, 2.0)):
        frame = result.frame()
        template = frame.iloc[0]
        for i in range(n_cases):
            rows.append({**template.to_dict(), "submission": {0.0: "low", 1.0: "mid", 2.0: "high"}[offset],
                         "case_id": f"delta:sub-{i:03d}", "subject": f"sub-{i:03d}", "person": f"sub-{i:03d}",
                         "dataset": "delta", "suite_role": "ood",
                         "dataset_in_training": False, "subject_in_training": False, "failure": None,
                         "hd95": 1.0 + offset + 0.01 * i, "dice": 0.5 + 0.1 * offset + 0.001 * i})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("n_cases", [20, 60])  # exact Wilcoxon (stats.rank_with_ties) and the vectorised path
def test_lower_is_better_metrics_rank_the_smallest_first(n_cases):
    frame = _ranking_cases(n_cases)
    hd95 = tables.main_table_data(frame, metric="hd95")
    assert hd95.rank["delta"].to_dict() == {"high": 3, "low": 1, "mid": 2}
    assert list(tables.format_main_table(hd95)["submission"]) == ["low", "mid", "high"]
    dice = tables.main_table_data(frame, metric="dice")
    assert dice.rank["delta"].to_dict() == {"high": 1, "low": 3, "mid": 2}
    assert dice.summary["mean_rank"].to_dict() == {"high": 1.0, "low": 3.0, "mid": 2.0}


@pytest.mark.parametrize("n_models,n_cases,decimals", [(8, 60, 2), (25, 120, 3), (6, 300, 12)])
def test_vectorised_ranking_equals_benchmark_stats(n_models, n_cases, decimals):
    rng = np.random.default_rng(n_models)
    skill = np.linspace(0.0, 0.03, n_models)[:, None]
    values = np.round(0.85 + skill + rng.normal(0, 0.02, size=(n_models, n_cases)), decimals)
    values[1] = values[0]  # identical models
    values[2, :7] = values[3, :7]  # zero differences
    names = [f"m{i:02d}" for i in range(n_models)][::-1]
    for higher in (True, False):
        ours = tables.rank_paired(names, values, higher_is_better=higher)
        reference = stats.rank_with_ties({n: values[i] for i, n in enumerate(names)}, higher_is_better=higher)
        assert list(ours.items()) == list(reference.items())
        assert len(set(ours.values())) > 1  # the check is not vacuous: some models are separated
    first, second = np.triu_indices(n_models, 1)
    p_ours = stats.wilcoxon_normal_p_rows(values[first] - values[second])
    p_reference = [stats.paired_wilcoxon(values[i], values[j]) for i, j in zip(first, second)]
    assert p_ours.tolist() == p_reference


def test_incomplete_submissions_are_not_ranked_on_that_dataset(data):
    assert np.isnan(data.rank.at["spec-beta", "gamma"])
    assert data.rank.at["spec-alpha", "gamma"] == 1 and data.rank.at["agg", "gamma"] == 1


# ------------------------------------------------------------------------------------------------
# column chooser, CSV
# ------------------------------------------------------------------------------------------------


def test_column_chooser_keeps_the_key_column(cases):
    table = tables.build_main_table(cases)
    assert list(table.columns) == [
        "submission", "model type", "mean rank", "mean in-domain", "mean OOD (zero-shot)", "in-domain/alpha",
        "in-domain/beta", "OOD/gamma", "training datasets", "parameters", "s/volume (device, runtime)", "licence",
        "notes",
    ]
    shown = tables.select_columns(table, ["OOD/gamma", "mean rank"])
    assert list(shown.columns) == ["submission", "mean rank", "OOD/gamma"]  # table order, key first
    assert list(tables.select_columns(table, []).columns) == ["submission"]


def test_csv_is_exactly_the_shown_table(cases):
    table = tables.build_main_table(cases, zero_shot_only=True)
    shown = tables.select_columns(table, ["in-domain/alpha", "OOD/gamma", "mean rank"])
    expected = (
        "submission,mean rank,in-domain/alpha,OOD/gamma\n"
        f"agg,1.00,,{ci_text([0.0, 0.6, 0.8], 'gamma')}\n"
        f"spec-alpha,1.00,,{ci_text([0.4, 0.5, 0.6, 0.7], 'gamma')}\n"
        f"spec-beta,incomplete,{ci_text([0.5, 0.6, 0.7, 0.8], 'alpha')},incomplete\n"
    )
    expected = expected.replace(", ", "@@")  # cells with ", " are quoted by the CSV writer
    expected_lines = []
    for line in expected.splitlines():
        expected_lines.append(",".join(f'"{c.replace("@@", ", ")}"' if "@@" in c else c for c in line.split(",")))
    assert tables.table_csv(shown) == "\n".join(expected_lines) + "\n"
    assert pd.read_csv(io.StringIO(tables.table_csv(shown)), keep_default_na=False).astype(str).equals(shown.astype(str))


# ------------------------------------------------------------------------------------------------
# dataset view, compare view, case view
# ------------------------------------------------------------------------------------------------


def test_dataset_view_matches_the_main_table(cases, data_any_size):
    data = data_any_size
    per_case, summary = tables.dataset_view(cases, "gamma", min_people=1)
    assert len(per_case) == 4 + 3 + 3  # spec-alpha 4; agg 3 (leak excluded); spec-beta 3 (g4 missing)
    agg_cases = per_case[per_case["submission"] == "agg"].set_index("case_id")
    assert agg_cases["dice"].to_dict() == {hand_case_id("gamma", "g2"): 0.0, hand_case_id("gamma", "g3"): 0.6, hand_case_id("gamma", "g4"): 0.8}
    assert agg_cases.loc[hand_case_id("gamma", "g2"), "failed"]
    by_name = summary.set_index("submission")
    assert by_name.at["agg", "mean"] == pytest.approx(data.mean.at["agg", "gamma"])
    assert by_name.at["agg", "ci_low"] == pytest.approx(data.low.at["agg", "gamma"])
    assert by_name.at["spec-beta", "status"] == "incomplete" and by_name.at["spec-beta", "cases"] == "3/4"
    assert by_name.at["agg", "people (scans)"] == "3 (3)"
    _, shown = tables.dataset_view(cases, "gamma")  # as the app shows it: 3 people, no interval
    assert shown.set_index("submission")["ci_low"].isna().all()
    assert list(summary["submission"]) == ["agg", "spec-alpha", "spec-beta"]


def test_compare_view_paired_difference_and_wilcoxon(cases):
    _, shown = tables.compare_submissions(cases, "spec-alpha", "agg")  # 3-4 people per dataset: nothing tested
    assert set(shown["status"]) == {"too few people"} and shown["Wilcoxon p"].isna().all()
    pairs, result = tables.compare_submissions(cases, "spec-alpha", "agg", min_people=1)
    gamma = result.set_index("dataset").loc["gamma"]
    assert (gamma["people"], gamma["paired scans"]) == (3, 3)  # g1 is agg's leaked case
    assert gamma["mean A"] == pytest.approx(0.6) and gamma["mean B"] == pytest.approx(1.4 / 3)
    a_ci = stats.bootstrap_mean_ci([0.5, 0.6, 0.7], seed=summary.dataset_seed(0, "gamma"))
    assert (gamma["A CI low"], gamma["A CI high"]) == pytest.approx((a_ci.low, a_ci.high))
    assert gamma["mean diff (B − A)"] == pytest.approx((-0.5 + 0.0 + 0.1) / 3)
    expected_ci = stats.paired_difference_ci([0.0, 0.6, 0.8], [0.5, 0.6, 0.7], seed=summary.dataset_seed(0, "gamma"))
    assert (gamma["CI low"], gamma["CI high"]) == pytest.approx((expected_ci.low, expected_ci.high))
    assert gamma["Wilcoxon p"] == pytest.approx(stats.paired_wilcoxon([0.0, 0.6, 0.8], [0.5, 0.6, 0.7]))
    alpha = result.set_index("dataset").loc["alpha"]
    assert alpha["mean diff (B − A)"] == pytest.approx(0.05)
    assert not alpha["zero-shot A"] and not alpha["zero-shot B"]
    assert result.set_index("dataset").loc["beta", "zero-shot A"]  # spec-alpha never saw beta
    assert result["Holm p"].tolist() == pytest.approx(stats.holm_adjust(result["Wilcoxon p"].tolist()))
    assert len(pairs) == 4 + 4 + 3
    assert list(pairs.columns) == ["dataset", "case_id", "A", "B"]
    gamma_pairs = pairs[pairs["dataset"] == "gamma"]
    assert gamma_pairs["A"].tolist() == [0.5, 0.6, 0.7] and gamma_pairs["B"].tolist() == [0.0, 0.6, 0.8]


def test_case_metrics_lists_every_submission(cases):
    table = tables.case_metrics(cases, hand_case_id("gamma", "g2"), HAND_VERSION)
    assert table["submission"].tolist() == ["agg", "spec-alpha", "spec-beta"]
    assert table["dice"].tolist() == [0.0, 0.5, 0.4]
    assert table.loc[0, "failure"] == "prediction crashed"


def test_case_paths_from_data_root_and_cases_index(tmp_path):
    case_id = "synth-ms:sub-01/anat/sub-01_T2w.nii.gz"
    image = tmp_path / "bids" / "synth-ms" / "sub-01" / "anat" / "sub-01_T2w.nii.gz"
    label = tmp_path / "bids" / "synth-ms" / "derivatives" / "labels" / "sub-01_T2w_seg.nii.gz"
    indexed_prediction = tmp_path / "subs" / "model-a" / "predictions" / "ab12" / "f00d.nii.gz"
    for path in (image, label, indexed_prediction):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    nothing = tables.case_paths(case_id, submissions=[])
    assert (nothing.image, nothing.label, nothing.predictions) == (None, None, {})
    assert nothing.missing == [
        "image: no --data-root given and no cases-index entry for this case",
        "ground truth: no cases-index entry for this case (pass --cases-index)",
    ]
    # scoring's per-submission index, with paths relative to where scoring ran
    (tmp_path / "subs" / "model-a" / "cases_index_synth.json").write_text(json.dumps({
        case_id: {"image": "bids/synth-ms/sub-01/anat/sub-01_T2w.nii.gz",
                  "label": "bids/synth-ms/derivatives/labels/sub-01_T2w_seg.nii.gz",
                  "prediction": "subs/model-a/predictions/ab12/f00d.nii.gz"},
    }))
    (tmp_path / "broken.json").write_text("[1, 2")
    index, problems = tables.load_cases_index(
        [("model-a", tmp_path / "subs" / "model-a" / "cases_index_synth.json"), (None, tmp_path / "broken.json"),
         (None, tmp_path / "absent.json")],
        base=tmp_path,
    )
    assert len(problems) == 1 and problems[0].startswith(f"{tmp_path / 'broken.json'}: cannot read cases index")
    assert index[case_id] == {"image": image, "label": label, "prediction": {"model-a": indexed_prediction}}
    found = tables.case_paths(case_id, submissions=["model-b", "model-a"], cases_index=index)
    assert (found.image, found.label) == (image, label)
    assert found.predictions == {"model-a": indexed_prediction}
    assert found.missing == ["prediction of model-b: no cases-index entry for this case"]
    indexed_prediction.unlink()
    deleted = tables.case_paths(case_id, submissions=["model-a"], cases_index=index)
    assert deleted.predictions == {} and deleted.missing == [f"prediction of model-a: not on disk at {indexed_prediction}"]
    from_root = tables.case_paths(case_id, submissions=[], data_root=tmp_path / "bids")
    assert from_root.image == image and from_root.label is None
    gone = tables.case_paths(case_id, submissions=[], data_root=tmp_path / "elsewhere")
    assert gone.missing[0] == f"image: not on disk at {tmp_path / 'elsewhere' / 'synth-ms' / 'sub-01' / 'anat' / 'sub-01_T2w.nii.gz'}"
    with pytest.raises(ValueError, match="not '<dataset>:<relative path>'"):
        tables.split_case_id("no-colon")


# ------------------------------------------------------------------------------------------------
# loading
# ------------------------------------------------------------------------------------------------


def test_loading_skips_corrupt_and_duplicate_files_with_reasons(tmp_path):
    write_hand_results(tmp_path / "subs", corrupt=True)
    duplicate = tmp_path / "extra" / "agg-copy" / "results" / f"hand_{HAND_VERSION}.json"
    duplicate.parent.mkdir(parents=True)
    duplicate.write_text((tmp_path / "subs" / "agg" / "results" / f"hand_{HAND_VERSION}.json").read_text())
    loaded = board_data.load_results_dirs([tmp_path / "subs", tmp_path / "extra", tmp_path / "missing"])
    assert loaded.missing_roots == [str(tmp_path / "missing")]
    assert set(loaded.skipped) == {str(tmp_path / "subs" / "corrupt" / "results" / f"hand_{HAND_VERSION}.json"), str(duplicate)}
    assert "cannot read results file" in loaded.skipped[str(tmp_path / "subs" / "corrupt" / "results" / f"hand_{HAND_VERSION}.json")]
    assert "duplicate results for submission 'agg'" in loaded.skipped[str(duplicate)]
    assert sorted(loaded.cases["submission"].astype(str).unique()) == ["agg", "spec-alpha", "spec-beta"]
    assert len(loaded.cases) == 12 + 12 + 11
    assert board_data.available_versions(loaded.cases) == [HAND_VERSION]
    table = tables.build_main_table(loaded.cases)
    assert row(table, "agg")["OOD/gamma"] == ci_text([0.0, 0.6, 0.8], "gamma")


def test_several_versions_need_a_choice(cases):
    other = cases.copy()
    other["benchmark_version"] = "other"
    both = pd.concat([cases.astype(object), other.astype(object)], ignore_index=True)
    with pytest.raises(ValueError, match="several benchmark versions"):
        tables.build_main_table(both)
    data = tables.main_table_data(both, filters=Filters(benchmark_version="other"))
    assert data.mean.at["agg", "beta"] == pytest.approx(0.85)
    assert board_data.available_versions(both) == [HAND_VERSION, "other"]  # 3 submissions each: by name
    with pytest.raises(ValueError, match="no results for benchmark version 'v9'"):
        board_data.prepare(both, "v9")


# ------------------------------------------------------------------------------------------------
# CSA consistency across contrasts and the one-voxel ceiling (tests/leaderboard_fixtures.py: csa_results)
# ------------------------------------------------------------------------------------------------

CSA_MULTI = "CSA SD across contrasts, mm² (multi)"


@pytest.fixture(scope="module")
def csa_cases() -> pd.DataFrame:
    from leaderboard_fixtures import csa_results

    return board_data.cases_from_results(csa_results())


def csa_text(person_sds, decimals=2, mark=""):
    """A CSA cell over these people's SDs; "too few people" below MIN_PEOPLE (every cell of this fixture)."""
    ci = stats.bootstrap_mean_ci(person_sds, seed=summary.dataset_seed(0, "multi"))
    if len(person_sds) < summary.MIN_PEOPLE:
        return f"{ci.mean:.{decimals}f} (too few people)" + mark
    return f"{ci.mean:.{decimals}f} [{ci.low:.{decimals}f}, {ci.high:.{decimals}f}]" + mark


def csa_ci(person_sds):
    ci = stats.bootstrap_mean_ci(person_sds, seed=summary.dataset_seed(0, "multi"))
    return f"{ci.low:.2f}, {ci.high:.2f}"


def test_csa_column_is_the_hand_computed_mean_sd_with_the_reference_floor(csa_cases):
    data = tables.main_table_data(csa_cases)
    assert data.csa_datasets == ["multi"]  # "single": every person has one image, no column
    assert data.csa_sd.at["csa-trained", "multi"] == pytest.approx((2 ** 0.5 + 3) / 2)
    assert data.csa_sd.at["csa-zero-shot", "multi"] == pytest.approx(3 ** 0.5)  # sub-01 leaked: excluded
    assert data.csa_persons.at["csa-zero-shot", "multi"] == 1
    assert data.csa_floor["multi"][0] == pytest.approx((0.5 ** 0.5 + (1 / 3) ** 0.5) / 2)
    table = row_table = tables.build_main_table(csa_cases)
    floor = csa_text([0.5 ** 0.5, (1 / 3) ** 0.5])
    header = f"CSA SD across contrasts, mm² (multi; reference masks {floor})"
    assert [c for c in table.columns if c.startswith("CSA")] == [header]
    assert row(row_table, "csa-trained")[header] == csa_text([2 ** 0.5, 3.0], mark=" †")  # trained on multi
    assert row(row_table, "csa-zero-shot")[header] == f"{3 ** 0.5:.2f} (too few people)"
    any_size = tables.format_main_table(tables.main_table_data(csa_cases, min_people=1))
    assert row(any_size, "csa-zero-shot")[CSA_MULTI] == f"{3 ** 0.5:.2f} [{3 ** 0.5:.2f}, {3 ** 0.5:.2f}]"
    assert row(any_size, "csa-trained")[CSA_MULTI] == (
        f"{(2 ** 0.5 + 3) / 2:.2f} [{csa_ci([2 ** 0.5, 3.0])}] †")
    notes = tables.main_table_notes(data)
    assert any(f"multi {floor} mm² over 2 persons" in note for note in notes)


def test_csa_column_follows_the_filters(csa_cases):
    # leaked cases included: sub-01 counts for csa-zero-shot again, cell flagged
    included = tables.format_main_table(tables.main_table_data(csa_cases, filters=Filters(exclude_leaked=False)))
    assert row(included, "csa-zero-shot")[CSA_MULTI] == csa_text([0.0, 3 ** 0.5], mark=" ⚠")
    # zero-shot only: csa-trained's trained-on dataset is hidden, so is its CSA cell
    zero_shot = tables.format_main_table(tables.main_table_data(csa_cases, zero_shot_only=True))
    assert row(zero_shot, "csa-trained")[CSA_MULTI] == ""
    assert row(zero_shot, "csa-zero-shot")[CSA_MULTI] != ""
    # a contrast filter: sub-02 keeps T1w and T2w only
    two = tables.format_main_table(tables.main_table_data(csa_cases, filters=Filters(contrasts=("T1w", "T2w"))))
    assert row(two, "csa-trained")[CSA_MULTI] == csa_text([2 ** 0.5, 3 / 2 ** 0.5], mark=" †")
    # one contrast: no person has two images -> blank cells, no floor in the header
    data = tables.main_table_data(csa_cases, filters=Filters(contrasts=("T1w",)))
    one = tables.format_main_table(data)
    assert set(one[CSA_MULTI]) == {""}
    assert CSA_MULTI not in tables.main_table_headers(data)
    assert any("multi: no person with two images passes the filters" in note for note in tables.main_table_notes(data))


def test_csa_stats_equal_benchmark_analysis_csa_consistency():
    """The vectorised column equals dataset_consistency(person_consistency(results)) on the same cases: several
    persons, sessions (one subject in two sessions and without one), failed predictions (no CSA)."""
    from benchmark.analysis.csa_consistency import REFERENCE, dataset_consistency, person_consistency
    from factories import make_case, make_results

    rng = np.random.default_rng(5)
    results = []
    for s, name in enumerate(("m-a", "m-b", "m-c")):
        rows = []
        for p in range(14):
            subject, session = f"sub-{p % 11:02d}", "ses-2" if p >= 11 else ("ses-1" if p == 2 else None)
            for c, contrast in enumerate(("T1w", "T2w", "T2star")[: 1 + (p % 3 > 0) + (p % 2)]):
                failed = (s, p, c) in {(1, 4, 0), (2, 5, 1), (2, 6, 1)}
                case_id = f"multi:{subject}/{session or '-'}/anat/{subject}_{contrast}.nii.gz"
                rows.append(make_case("multi", subject, 0.9, contrast=contrast, case_id=case_id, session=session,
                                      csa_mm2=None if failed else float(rng.normal(80, 4)),
                                      csa_reference_mm2=float(70 + p + c * (p % 4)), failure="x" if failed else None))
        results.append(make_results(name, rows))
    expected = dataset_consistency(person_consistency(results)).set_index("submission")
    data = tables.main_table_data(board_data.cases_from_results(results))
    assert len(set(data.csa_persons["multi"])) > 1  # the failures leave the models different persons
    for name in ("m-a", "m-b", "m-c"):
        got = [data.csa_sd.at[name, "multi"], data.csa_low.at[name, "multi"], data.csa_high.at[name, "multi"]]
        assert got == pytest.approx(expected.loc[name, ["sd_mm2", "sd_low", "sd_high"]].tolist(), rel=1e-9)
        assert data.csa_persons.at[name, "multi"] == expected.at[name, "persons"]
    floor = data.csa_floor["multi"]
    assert list(floor[:3]) == pytest.approx(expected.loc[REFERENCE, ["sd_mm2", "sd_low", "sd_high"]].tolist(), rel=1e-9)
    assert floor[3] == expected.at[REFERENCE, "persons"]


def test_one_voxel_ceiling_goes_beside_each_dice_column(csa_cases):
    from benchmark.evaluation.ceilings import CeilingsFile, DatasetCeiling

    ring = DatasetCeiling(n=5, dilated_dice=0.8531, eroded_dice=0.8167, one_voxel_dice=0.8349, one_voxel_dice_min=0.7999,
                          one_voxel_dice_max=0.9046, within_one_voxel=0.1651)
    ceilings = CeilingsFile(suite="csa-suite", benchmark_version="csa00001", datasets={"multi": ring})
    table = tables.build_main_table(csa_cases, ceilings=ceilings)
    assert "in-domain/multi (1-voxel Dice 0.835)" in table.columns
    assert "OOD/single" in table.columns  # no ceiling stored for it
    assert row(table, "csa-trained")["in-domain/multi (1-voxel Dice 0.835)"] == "0.900 (too few people) †"
    data = tables.main_table_data(csa_cases)
    assert any("within one voxel of boundary placement: multi 0.165." in note for note in tables.main_table_notes(data, ceilings))
    # other metrics: no ceiling (it is a Dice)
    hd95 = tables.build_main_table(csa_cases, metric="hd95", ceilings=ceilings)
    assert "in-domain/multi" in hd95.columns
    assert tables.main_table_notes(tables.main_table_data(csa_cases, metric="hd95"), ceilings)[0].startswith("CSA SD")


def test_csa_cell_says_not_measured_for_results_without_csa():
    """A results file scored before CSA was measured (csa_mm2 None everywhere) is not mistaken for a model with no
    person in two contrasts."""
    from leaderboard_fixtures import csa_results

    results = csa_results()
    old = results[0].model_copy(update={
        "submission": "csa-old", "cases": [case.model_copy(update={"csa_mm2": None}) for case in results[0].cases]})
    table = tables.format_main_table(tables.main_table_data(board_data.cases_from_results([*results, old])))
    assert row(table, "csa-old")[CSA_MULTI] == tables.CSA_NOT_MEASURED
    assert row(table, "csa-trained")[CSA_MULTI] == csa_text([2 ** 0.5, 3.0], mark=" †")
