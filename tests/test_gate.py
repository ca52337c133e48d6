"""Tests of benchmark.analysis.gate on constructed per-case results, and of the gate workflow file."""

from __future__ import annotations

import io
import itertools
import json
import math
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from benchmark.analysis.gate import (
    GateInputError,
    GateReport,
    compare_results,
    exit_code,
    gate_json,
    gate_markdown,
    reproduce_check,
    run_gate,
    run_reproduce,
)
from benchmark.evaluation.results import CaseResult, ResultsFile, write_results
from benchmark.analysis.stats import holm_adjust, paired_wilcoxon
from factories import make_case, make_results

REPO = Path(__file__).resolve().parents[1]
VERSION = "3f2a9c1d0b7e"


# --------------------------------------------------------------------------- builders


def _case(
    dataset: str, index: int, dice: float, *, hd95: float | None = None, failure: str | None = None
) -> CaseResult:
    return make_case(dataset, f"sub-{index:03d}", float(dice), hd95=hd95, failure=failure)


def _results(
    submission: str,
    cases: list[CaseResult],
    *,
    suite: str = "synthetic",
    version: str = VERSION,
    model_sha256: str | None = None,
) -> ResultsFile:
    header = {"model_sha256": model_sha256} if model_sha256 else {}
    return make_results(submission, cases, suite=suite, version=version, declared=["synth-a"],
                        model_type="nnunet-3d-fullres", **header)


def _pair(
    baseline_dice: dict[str, np.ndarray], candidate_dice: dict[str, np.ndarray], **kwargs: object
) -> tuple[ResultsFile, ResultsFile]:
    baseline = _results("baseline-model", [_case(d, i, v) for d, vs in baseline_dice.items() for i, v in enumerate(vs)])
    candidate = _results(
        "candidate-model", [_case(d, i, v) for d, vs in candidate_dice.items() for i, v in enumerate(vs)], **kwargs
    )
    return candidate, baseline


def _baseline_dice(n: int, seed: int = 0) -> np.ndarray:
    return np.clip(np.random.default_rng(seed).normal(0.90, 0.02, size=n), 0.0, 1.0)


# --------------------------------------------------------------------------- regression gate


def test_real_drop_of_003_over_40_cases_is_caught() -> None:
    base = _baseline_dice(40)
    cand = base - 0.03 + np.random.default_rng(1).normal(0, 0.003, size=40)
    candidate, baseline = _pair({"synth-a": base}, {"synth-a": cand})
    report = compare_results(candidate, baseline)
    (verdict,) = report.verdicts
    assert verdict.verdict == "fail" and not report.passed and exit_code(report) == 1
    assert verdict.n == 40
    assert verdict.candidate_mean - verdict.baseline_mean == pytest.approx(float(np.mean(cand - base)), abs=1e-12)
    assert verdict.difference.high < -0.02 and verdict.difference.low > -0.04
    assert verdict.p_value == pytest.approx(2.0**-40, rel=1e-9)  # all 40 differences negative: exact
    assert verdict.reason.startswith("worse by 0.03")
    assert report.problems == []


@pytest.mark.parametrize("seed", range(5))
def test_zero_mean_noise_of_003_on_8_cases_is_not_caught(seed: int) -> None:
    rng = np.random.default_rng(seed)
    base = _baseline_dice(8, seed=seed)
    signs = rng.permutation([1.0] * 4 + [-1.0] * 4)
    cand = base + 0.03 * signs
    candidate, baseline = _pair({"synth-a": base}, {"synth-a": cand})
    report = compare_results(candidate, baseline)
    (verdict,) = report.verdicts
    assert verdict.verdict == "pass" and report.passed and exit_code(report) == 0
    assert abs(verdict.candidate_mean - verdict.baseline_mean) < 1e-12
    assert verdict.p_value > 0.05


def test_eight_cases_give_little_power_by_hand() -> None:
    # 6 of 8 cases worse, the 2 better ones with the largest changes: mean drop 0.01525 > margin,
    # but R+ = 7 + 8 = 15 and P(R+ <= 15) = 95/256 (brute force over the 256 sign patterns) -> pass.
    # With the 2 better cases at the smallest changes instead, R+ = 1 + 2 = 3, P = 5/256 -> fail.
    base = _baseline_dice(8, seed=2)
    changes = np.array([-0.030, -0.031, -0.032, -0.033, -0.034, -0.035, 0.036, 0.037])
    patterns = [s for k in range(9) for s in itertools.combinations(range(1, 9), k)]
    assert sum(sum(s) <= 15 for s in patterns) == 95 and sum(sum(s) <= 3 for s in patterns) == 5
    (kept,) = compare_results(*_pair({"synth-a": base}, {"synth-a": base + changes})).verdicts
    assert kept.baseline_mean - kept.candidate_mean == pytest.approx(0.122 / 8, abs=1e-12)
    assert kept.p_value == pytest.approx(95 / 256) and kept.verdict == "pass"
    assert "not significant" in kept.reason
    flipped = np.array([0.030, 0.031, -0.032, -0.033, -0.034, -0.035, -0.036, -0.037])
    (caught,) = compare_results(*_pair({"synth-a": base}, {"synth-a": base + flipped})).verdicts
    assert caught.p_value == pytest.approx(5 / 256) and caught.verdict == "fail"


def test_drop_smaller_than_margin_is_not_caught_even_if_significant() -> None:
    base = _baseline_dice(40, seed=3)
    cand = base - 0.005 + np.random.default_rng(4).normal(0, 0.0005, size=40)
    report = compare_results(*_pair({"synth-a": base}, {"synth-a": cand}), margin=0.01)
    (verdict,) = report.verdicts
    assert verdict.p_value < 1e-6  # clearly significant
    assert verdict.verdict == "pass" and report.passed
    assert "within margin 0.01" in verdict.reason
    # the same data with margin 0.002 fails
    assert compare_results(*_pair({"synth-a": base}, {"synth-a": cand}), margin=0.002).verdicts[0].verdict == "fail"


def test_improvement_passes_one_sided() -> None:
    base = _baseline_dice(40, seed=5)
    report = compare_results(*_pair({"synth-a": base}, {"synth-a": base + 0.03}))
    assert report.passed
    assert report.verdicts[0].p_value == pytest.approx(1.0)
    assert report.verdicts[0].reason.startswith("not worse (better by 0.03")


def test_holm_across_datasets_by_hand() -> None:
    # 6 cases, candidate worse on all: one-sided exact p = 1/64 = 0.015625 per dataset.
    base = np.array([0.88, 0.90, 0.91, 0.92, 0.89, 0.93])
    one = compare_results(*_pair({"d1": base}, {"d1": base - 0.05}))
    assert one.verdicts[0].p_value == pytest.approx(1 / 64) and not one.passed
    # 3 datasets: Holm gives 3/64 = 0.046875 <= 0.05 -> all fail
    three = compare_results(*_pair({f"d{k}": base for k in range(3)}, {f"d{k}": base - 0.05 for k in range(3)}))
    assert [v.p_value for v in three.verdicts] == pytest.approx([3 / 64] * 3)
    assert [v.verdict for v in three.verdicts] == ["fail"] * 3
    # 4 datasets: 4/64 = 0.0625 > 0.05 -> all pass, not significant
    four = compare_results(*_pair({f"d{k}": base for k in range(4)}, {f"d{k}": base - 0.05 for k in range(4)}))
    assert [v.p_value for v in four.verdicts] == pytest.approx([0.0625] * 4)
    assert four.passed and all("not significant" in v.reason for v in four.verdicts)


def test_holm_matches_raw_wilcoxon_per_dataset() -> None:
    rng = np.random.default_rng(9)
    base = {f"ds-{k}": _baseline_dice(20 + 5 * k, seed=k) for k in range(3)}
    cand = {name: values - 0.01 * k + rng.normal(0, 0.01, values.size) for k, (name, values) in enumerate(base.items())}
    report = compare_results(*_pair(base, cand))
    raw = [paired_wilcoxon(cand[name], base[name], alternative="less") for name in sorted(base)]
    assert [v.dataset for v in report.verdicts] == sorted(base)
    assert [v.p_value for v in report.verdicts] == pytest.approx(holm_adjust(raw), rel=1e-12)


def test_failed_predictions_count_in_the_mean() -> None:
    base = _baseline_dice(40, seed=6)
    cand = base - 0.004
    cases = [_case("synth-a", i, v) for i, v in enumerate(cand)]
    for i in (3, 17, 29):  # missing predictions, scored worst (Dice 0) by the scorer
        cases[i] = _case("synth-a", i, 0.0, failure="missing prediction")
    candidate = _results("candidate-model", cases)
    baseline = _results("baseline-model", [_case("synth-a", i, v) for i, v in enumerate(base)])
    report = compare_results(candidate, baseline)
    (verdict,) = report.verdicts
    expected = (float(np.sum(cand)) - float(cand[3] + cand[17] + cand[29])) / 40
    assert verdict.n == 40
    assert verdict.candidate_mean == pytest.approx(expected, abs=1e-12)
    assert verdict.verdict == "fail"  # dropping the 3 rows would leave a 0.004 drop: a pass
    assert "candidate 3, baseline 0" in verdict.reason


def test_new_failures_fail_the_gate_even_when_the_test_is_not_significant() -> None:
    # Zero differences are dropped, so 2 failures among 40 otherwise identical cases are tested on 2 ranks
    # (normal approximation, N = 40 > 13 with zeros): z = -1.5 / sqrt(1.25), not significant. A case the
    # candidate cannot predict while the baseline could is a regression by itself.
    base = _baseline_dice(40, seed=22)
    cases = [_case("synth-a", i, v) for i, v in enumerate(base)]
    for i in (5, 30):
        cases[i] = _case("synth-a", i, 0.0, failure="prediction crashed")
    baseline = _results("baseline-model", [_case("synth-a", i, v) for i, v in enumerate(base)])
    report = compare_results(_results("candidate-model", cases), baseline)
    (verdict,) = report.verdicts
    assert verdict.p_value == pytest.approx(0.5 * math.erfc(1.5 / math.sqrt(1.25) / math.sqrt(2)), rel=1e-12)
    assert verdict.p_value == pytest.approx(0.0899, abs=1e-4)
    assert verdict.baseline_mean - verdict.candidate_mean == pytest.approx((base[5] + base[30]) / 40, abs=1e-12)
    assert verdict.verdict == "fail" and "candidate 2, baseline 0" in verdict.reason
    assert verdict.reason.startswith("fail: 2 case(s) with no valid prediction where the baseline had one")


def test_hd95_direction() -> None:
    hd95 = np.random.default_rng(7).uniform(1.0, 3.0, size=40)
    jitter = np.random.default_rng(8).normal(0, 0.05, size=40)
    baseline = _results("baseline-model", [_case("synth-a", i, 0.9, hd95=h) for i, h in enumerate(hd95)])
    worse = _results("candidate-model", [_case("synth-a", i, 0.9, hd95=h) for i, h in enumerate(hd95 + 2 + jitter)])
    better = _results("candidate-model", [_case("synth-a", i, 0.9, hd95=h) for i, h in enumerate(hd95 - 0.5 + jitter)])
    failing = compare_results(worse, baseline, metric="hd95", margin=1.0)
    assert failing.verdicts[0].verdict == "fail"
    assert failing.verdicts[0].difference.mean == pytest.approx(2 + float(np.mean(jitter)), abs=1e-12)
    expected_reason = f"worse by {2 + float(np.mean(jitter)):.4f} > margin 1 and significant"
    assert failing.verdicts[0].reason.startswith(expected_reason)
    passing = compare_results(better, baseline, metric="hd95", margin=1.0)
    assert passing.passed and passing.verdicts[0].p_value > 0.5
    # a 2 mm increase within a 3 mm margin passes
    assert compare_results(worse, baseline, metric="hd95", margin=3.0).passed
    # dice is identical (0.9 everywhere): nothing to detect
    assert compare_results(worse, baseline, metric="dice").verdicts[0].p_value == 1.0


def test_single_missing_case_fails_on_coverage() -> None:
    base = _baseline_dice(40, seed=10)
    candidate, baseline = _pair({"synth-a": base}, {"synth-a": base})
    candidate = candidate.model_copy(update={"cases": candidate.cases[:17] + candidate.cases[18:]})
    report = compare_results(candidate, baseline)
    assert not report.passed and exit_code(report) == 1
    assert report.verdicts[0].verdict == "pass" and report.verdicts[0].n == 39
    assert report.problems == [
        "candidate 'candidate-model' is missing 1 case(s) that baseline 'baseline-model' has: "
        "synth-a:sub-017/anat/sub-017_T2w.nii.gz"
    ]
    assert "- candidate 'candidate-model' is missing 1 case(s)" in gate_markdown(report)


def test_coverage_lists_first_ten_ids() -> None:
    base = _baseline_dice(30, seed=11)
    candidate, baseline = _pair({"synth-a": base}, {"synth-a": base[:12]})
    baseline_extra = _results("baseline-model", baseline.cases[:5])
    report = compare_results(candidate, baseline)
    (problem,) = report.problems
    assert problem.startswith("candidate 'candidate-model' is missing 18 case(s)")
    assert problem.count("synth-a:") == 10 and problem.endswith("(and 8 more)")
    assert "synth-a:sub-012/" in problem and "synth-a:sub-022/" not in problem
    extra = compare_results(candidate, baseline_extra).problems
    assert extra == [
        "candidate 'candidate-model' has 7 case(s) that baseline 'baseline-model' lacks: "
        + ", ".join(f"synth-a:sub-{i:03d}/anat/sub-{i:03d}_T2w.nii.gz" for i in range(5, 12))
    ]


def test_different_benchmark_versions_and_suites_fail() -> None:
    base = _baseline_dice(10, seed=12)
    candidate, baseline = _pair({"synth-a": base}, {"synth-a": base}, version="0000aaaa1111")
    report = compare_results(candidate, baseline)
    assert not report.passed and report.verdicts[0].verdict == "pass"
    assert report.problems == [
        "different benchmark versions (split hashes): candidate 'candidate-model' '0000aaaa1111', "
        f"baseline 'baseline-model' '{VERSION}'; re-score both on the same version"
    ]
    other_suite = compare_results(*_pair({"synth-a": base}, {"synth-a": base}, suite="full"))
    assert other_suite.problems == [
        "different suites: candidate 'candidate-model' 'full', baseline 'baseline-model' 'synthetic'"
    ]
    asked = compare_results(*_pair({"synth-a": base}, {"synth-a": base}), suite="full")
    assert not asked.passed and len(asked.problems) == 2


def test_changed_image_and_duplicate_ids_are_problems() -> None:
    base = _baseline_dice(5, seed=13)
    candidate, baseline = _pair({"synth-a": base}, {"synth-a": base})
    changed = candidate.cases[2].model_copy(update={"image_sha256": "0" * 64})
    cases = [*candidate.cases[:2], changed, *candidate.cases[3:], candidate.cases[0]]
    candidate = candidate.model_copy(update={"cases": cases})
    problems = compare_results(candidate, baseline).problems
    assert problems == [
        "candidate 'candidate-model' lists 1 case id(s) twice: synth-a:sub-000/anat/sub-000_T2w.nii.gz",
        "1 case(s) were scored on different images (image_sha256 differs): synth-a:sub-002/anat/sub-002_T2w.nii.gz",
    ]


def test_bad_options_are_input_errors() -> None:
    candidate, baseline = _pair({"synth-a": _baseline_dice(5)}, {"synth-a": _baseline_dice(5)})
    with pytest.raises(GateInputError, match="unknown metric 'iou'"):
        compare_results(candidate, baseline, metric="iou")
    with pytest.raises(GateInputError, match="margin"):
        compare_results(candidate, baseline, margin=-0.1)
    with pytest.raises(GateInputError, match="alpha"):
        compare_results(candidate, baseline, alpha=1.5)


# --------------------------------------------------------------------------- output


def _markdown_fixture() -> GateReport:
    # site-a: baseline mean 0.875, candidate mean 0.860; 4 people (one scan each): too few people (< 6) for a test
    # or an interval (the exact one-sided p could not go below 1/16 = 0.0625): it passes, untested.
    base_a = np.array([0.90, 0.80, 0.85, 0.95])
    cand_a = np.array([0.88, 0.79, 0.83, 0.94])
    base_b = _baseline_dice(40, seed=14)
    cand_b = base_b - 0.03 + np.random.default_rng(15).normal(0, 0.003, 40)
    return compare_results(*_pair({"site-a": base_a, "site-b": base_b}, {"site-a": cand_a, "site-b": cand_b}))


def test_markdown_table_has_the_right_numbers() -> None:
    report = _markdown_fixture()
    markdown = gate_markdown(report)
    lines = markdown.splitlines()
    assert lines[0] == "## cordbench gate: **FAIL** - candidate `candidate-model` vs baseline `baseline-model`"
    assert ("| dataset | people (scans) | baseline mean | candidate mean | difference [95% CI] | p (Holm) | verdict |"
            in lines)
    assert "| site-a | 4 (4) | 0.8750 | 0.8600 | -0.0150 (too few people) | – | PASS |" in lines
    assert report.verdicts[0].reason == "worse by 0.0150; too few people (4 < 6) for a test"
    site_b = report.verdicts[1]
    row_b = next(line for line in lines if line.startswith("| site-b |"))
    assert row_b == (
        f"| site-b | 40 (40) | {site_b.baseline_mean:.4f} | {site_b.candidate_mean:.4f} | "
        f"{site_b.difference.mean:+.4f} [{site_b.difference.low:+.4f}, {site_b.difference.high:+.4f}] | "
        f"{site_b.p_value:.1e} | FAIL |"
    )
    assert f"{np.mean(_baseline_dice(40, seed=14)):.4f}" in row_b
    # Holm over the 1 tested dataset (site-a has too few people): 2^-40 for site-b
    assert site_b.p_value == pytest.approx(2.0**-40, rel=1e-9)
    assert "1 of 2 dataset(s) fail; 0 problem(s)." in markdown
    drop = site_b.baseline_mean - site_b.candidate_mean
    reason = f"worse by {drop:.4f} > margin 0.01 and significant (p (Holm) = {site_b.p_value:.1e} <= 0.05)"
    assert f"- site-b (dice): fail: {reason}" in markdown
    assert 0.0295 < drop < 0.0305


def test_output_is_deterministic_for_a_seed() -> None:
    first, second = _markdown_fixture(), _markdown_fixture()
    assert gate_markdown(first) == gate_markdown(second)
    assert gate_json(first) == gate_json(second)
    base = _baseline_dice(12, seed=16)
    cand = base + np.random.default_rng(17).normal(-0.01, 0.01, 12)
    seeded = [compare_results(*_pair({"s": base}, {"s": cand}), seed=s).verdicts[0] for s in (0, 0, 1)]
    assert seeded[0] == seeded[1]
    assert seeded[0].difference != seeded[2].difference  # the bootstrap CI follows the seed ...
    assert seeded[0].p_value == seeded[2].p_value and seeded[0].verdict == seeded[2].verdict  # ... the test not


def test_gate_json_is_strict_json() -> None:
    payload = gate_json(_markdown_fixture())
    text = json.dumps(payload, allow_nan=False)
    data = json.loads(text)
    assert data["passed"] is False and data["exit_code"] == 1 and data["metric"] == "dice"
    assert data["verdicts"][0]["dataset"] == "site-a"
    assert data["verdicts"][0]["difference"]["mean"] == pytest.approx(-0.015, abs=1e-12)
    assert data["verdicts"][0]["difference"]["low"] is None  # 4 people: interval withheld, not tested
    assert data["verdicts"][0]["p_value"] is None and data["verdicts"][0]["status"] == "too few people"
    assert data["verdicts"][1]["n"] == 40 and data["verdicts"][1]["scans"] == 40
    reproduce = gate_json(reproduce_check(*_pair({"s": _baseline_dice(4)}, {"s": _baseline_dice(4)})[::-1]))
    assert reproduce["alpha"] is None and reproduce["verdicts"][0]["p_value"] is None
    json.dumps(reproduce, allow_nan=False)


# --------------------------------------------------------------------------- reproducibility


def _stored_and_rescored(shift: float = 0.0, jitter: float = 0.0) -> tuple[ResultsFile, ResultsFile]:
    rng = np.random.default_rng(18)
    stored_scores = {"synth-a": _baseline_dice(20, seed=19), "synth-b": _baseline_dice(15, seed=20)}
    stored = _results("reference", [_case(d, i, v) for d, vs in stored_scores.items() for i, v in enumerate(vs)])
    rescored_cases = []
    for d, values in stored_scores.items():
        noise = jitter * rng.choice([-1.0, 1.0], size=values.size)
        moved = values + noise + (shift if d == "synth-b" else 0.0)
        rescored_cases.extend(_case(d, i, v) for i, v in enumerate(moved))
    return stored, _results("reference", rescored_cases)


def test_reproduce_passes_within_tolerance() -> None:
    stored, rescored = _stored_and_rescored(jitter=0.001)
    report = reproduce_check(stored, rescored, tolerance=0.005, metrics=("dice", "hd95"))
    assert report.passed and exit_code(report) == 0 and report.problems == []
    assert [(v.dataset, v.metric) for v in report.verdicts] == [
        ("synth-a", "dice"), ("synth-a", "hd95"), ("synth-b", "dice"), ("synth-b", "hd95")
    ]
    assert all(abs(v.candidate_mean - v.baseline_mean) <= 0.001 + 1e-12 for v in report.verdicts if v.metric == "dice")
    assert "largest per-case change 0.0010" in report.verdicts[0].reason


def test_reproduce_fails_on_a_moved_mean() -> None:
    stored, rescored = _stored_and_rescored(shift=-0.008)
    report = reproduce_check(stored, rescored, tolerance=0.005)
    assert not report.passed
    assert [(v.dataset, v.verdict) for v in report.verdicts] == [("synth-a", "pass"), ("synth-b", "fail")]
    assert report.verdicts[1].reason.startswith("mean moved by -0.0080, |shift| > tolerance 0.005")
    assert reproduce_check(stored, rescored, tolerance=0.01, metrics=("dice",)).passed
    # hd95 (1 + 10 * (1 - dice) in these fixtures) moves by 0.08 mm: fails at 0.05, passes at 0.1
    assert not reproduce_check(stored, rescored, tolerance=0.05, metrics=("hd95",)).passed
    assert reproduce_check(stored, rescored, tolerance=0.1, metrics=("hd95",)).passed
    markdown = gate_markdown(report)
    assert markdown.splitlines()[0] == "## cordbench reproduce: **FAIL** - rescored `reference` vs stored results"
    assert "| synth-b | dice | 15 (15) |" in markdown


def test_reproduce_fails_on_coverage_version_and_model_mismatch() -> None:
    stored, rescored = _stored_and_rescored()
    assert reproduce_check(stored, rescored).passed
    short = rescored.model_copy(update={"cases": rescored.cases[1:]})
    assert reproduce_check(stored, short).problems == [
        "rescored 'reference' is missing 1 case(s) that stored 'reference' has: synth-a:sub-000/anat/sub-000_T2w.nii.gz"
    ]
    other_version = rescored.model_copy(update={"benchmark_version": "ffff"})
    assert "different benchmark versions" in reproduce_check(stored, other_version).problems[0]
    other_model = rescored.model_copy(update={"model_sha256": "ab" * 32})
    assert reproduce_check(stored, other_model).problems == [
        f"different model weights: stored model_sha256 {stored.model_sha256[:12]}, rescored abababababab"
    ]


def test_reproduce_says_when_the_cpu_kernels_differ() -> None:
    """A model scored with native AVX-512 kernels and re-scored with the pinned ones: the means may move a little
    and the report says why; the same kernels on both sides need no note."""
    stored, rescored = _stored_and_rescored()
    stored = stored.model_copy(update={"cpu_kernels": "native-avx512"})
    pinned = rescored.model_copy(update={"cpu_kernels": "pinned-avx2"})
    report = reproduce_check(stored, pinned)
    assert report.passed  # a note, not a failure: the numbers decide
    assert report.notes == ["CPU kernels differ: stored `native-avx512`, rescored `pinned-avx2`; masks computed with "
                            "other kernels may differ in a few voxels (docs/reproducibility.md). Re-score with the "
                            "stored setting (CORDBENCH_CPU_KERNELS) for an exact comparison."]
    assert f"**Note:** {report.notes[0]}" in gate_markdown(report)
    assert gate_json(report)["notes"] == report.notes
    assert reproduce_check(stored.model_copy(update={"cpu_kernels": None}), pinned).notes[0].startswith(
        "CPU kernels differ: stored `not recorded`, rescored `pinned-avx2`")
    assert reproduce_check(pinned, pinned).notes == []


# --------------------------------------------------------------------------- entry points


def test_run_gate_writes_outputs_and_returns_exit_codes(tmp_path: Path) -> None:
    base = _baseline_dice(40, seed=21)
    candidate, baseline = _pair({"synth-a": base}, {"synth-a": base - 0.03})
    cand_path = write_results(tmp_path / "cand.json", candidate)
    base_path = write_results(tmp_path / "base.json", baseline)
    out, err = io.StringIO(), io.StringIO()
    code = run_gate(cand_path, base_path, suite="synthetic", markdown_path=tmp_path / "gate.md",
                    json_path=tmp_path / "gate.json", out=out, err=err)
    assert code == 1 and err.getvalue() == ""
    assert out.getvalue().startswith("## cordbench gate: **FAIL**")
    assert (tmp_path / "gate.md").read_text() == gate_markdown(compare_results(candidate, baseline))
    assert json.loads((tmp_path / "gate.json").read_text())["exit_code"] == 1
    assert run_gate(base_path, base_path, out=io.StringIO()) == 0
    assert run_reproduce(base_path, base_path, out=io.StringIO()) == 0


def test_run_gate_unusable_input_is_exit_2(tmp_path: Path) -> None:
    good = write_results(tmp_path / "good.json", _pair({"s": _baseline_dice(3)}, {"s": _baseline_dice(3)})[1])
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    cases = [(broken, good, "dice"), (tmp_path / "absent.json", good, "dice"), (good, good, "iou")]
    for candidate, baseline, metric in cases:
        err = io.StringIO()
        assert run_gate(candidate, baseline, metric=metric, out=io.StringIO(), err=err) == 2
        assert err.getvalue().startswith("cordbench gate: error: ")
    with pytest.raises(GateInputError, match="not found"):
        from benchmark.analysis.gate import load_gate_input

        load_gate_input(tmp_path / "absent.json")


# --------------------------------------------------------------------------- workflow


WORKFLOW = REPO / ".github" / "workflows" / "benchmark-gate.yml"


def test_workflow_parses_and_runs_the_gate() -> None:
    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load(WORKFLOW.read_text())
    trigger = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert trigger["pull_request"]["paths"] == ["submissions/**"]
    (job,) = workflow["jobs"].values()
    steps = job["steps"]
    uses = [step.get("uses", "") for step in steps]
    assert any(u.startswith("actions/checkout@") for u in uses)
    checkout = next(step for step in steps if step.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0  # the diff against the base ref needs history
    setup = next(step for step in steps if step.get("uses", "").startswith("actions/setup-python@"))
    assert str(setup["with"]["python-version"]) == "3.11"
    scripts = "\n".join(step.get("run", "") for step in steps)
    for needle in ('pip install -e ".[test]"', "cordbench synth", "cordbench score", "cordbench gate",
                   "submissions/REFERENCE", "GITHUB_STEP_SUMMARY", "git diff --name-only"):
        assert needle in scripts, needle


def test_workflow_scripts_are_valid_bash() -> None:
    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load(WORKFLOW.read_text())
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if "run" not in step:
                continue
            script = re.sub(r"\$\{\{[^}]*\}\}", "EXPR", step["run"])
            result = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
            assert result.returncode == 0, (step.get("name"), result.stderr)
