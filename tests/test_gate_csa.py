"""CSA as a gate metric: `cordbench gate --metric csa_error --margin 0.5` and `--metric csa_drift` (no ground truth).

Constructed results, 10 cases on each of two datasets. Baseline CSA 80 mm² on every case. Candidate:
on `shifted` +1.0 mm² on every case (beyond 0.5 mm², every difference positive: exact two-sided p = 2/1024,
Holm x2 = 0.0039: FAIL); on `steady` +0.2 mm² (inside the margin: PASS). csa_error (per-slice area error vs the
reference) grows by 1.0 mm² on `shifted` (FAIL) and by 0.2 on `steady` (PASS).
"""

from __future__ import annotations

import hashlib
import json

import pytest
from typer.testing import CliRunner

from benchmark.analysis.csa_drift import csa_drift_report
from benchmark.cli import app
from benchmark.evaluation.results import CaseResult, ResultsFile, write_results

SHIFT = {"shifted": 1.0, "steady": 0.2}


def results(name: str, shifted: bool, failed_case: str | None = None) -> ResultsFile:
    cases = []
    for dataset, shift in SHIFT.items():
        for i in range(10):
            case_id = f"{dataset}:sub-{i:02d}"
            offset = shift if shifted else 0.0
            cases.append(CaseResult(
                case_id=case_id, dataset=dataset, subject=f"sub-{i:02d}", contrast="T2w",
                image_sha256=hashlib.sha256(case_id.encode()).hexdigest(), suite_role="ood",
                dataset_in_training=False, subject_in_training=False, dice=0.9, nsd=0.9, hd95=1.0, rve=0.02,
                csa_error=2.0 + 0.01 * i + offset, csa_mm2=None if case_id == failed_case else 80.0 + 0.01 * i + offset,
                csa_reference_mm2=79.0))
    return ResultsFile(submission=name, suite="synthetic", benchmark_version="v1", cordbench_version="0",
                       model_sha256="0" * 64, model_type="nnunet", declared_training_datasets=[],
                       created_utc="2026-01-01T00:00:00+00:00", cases=cases)


def test_csa_drift_fails_a_shift_beyond_the_margin_without_ground_truth():
    report = csa_drift_report(results("new", True), results("old", False), margin=0.5)
    verdicts = {verdict.dataset: verdict for verdict in report.verdicts}
    assert verdicts["shifted"].difference.mean == pytest.approx(1.0)
    assert verdicts["shifted"].p_value == pytest.approx(2 * 2 / 1024)
    assert verdicts["shifted"].verdict == "fail" and verdicts["steady"].verdict == "pass"
    assert not report.passed


def test_csa_drift_fails_a_lost_measurement_and_mismatched_files():
    report = csa_drift_report(results("new", False, failed_case="steady:sub-03"), results("old", False))
    assert {v.dataset: v.verdict for v in report.verdicts} == {"shifted": "pass", "steady": "fail"}
    other = results("old", False)
    other = other.model_copy(update={"benchmark_version": "v2"})
    assert not csa_drift_report(results("new", False), other).passed


@pytest.mark.parametrize("metric", ["csa_error", "csa_drift"])
def test_cli_gate_on_csa_metrics_with_a_half_mm2_margin(tmp_path, metric):
    new, old = tmp_path / "new.json", tmp_path / "old.json"
    write_results(new, results("new", True))
    write_results(old, results("old", False))
    runner = CliRunner()
    outcome = runner.invoke(app, ["gate", "--candidate", str(new), "--baseline", str(old), "--metric", metric,
                                  "--margin", "0.5", "--json", str(tmp_path / "gate.json")])
    assert outcome.exit_code == 1, outcome.output
    report = json.loads((tmp_path / "gate.json").read_text())
    assert {v["dataset"]: v["verdict"] for v in report["verdicts"]} == {"shifted": "fail", "steady": "pass"}
    same = runner.invoke(app, ["gate", "--candidate", str(old), "--baseline", str(old), "--metric", metric,
                               "--margin", "0.5"])
    assert same.exit_code == 0, same.output
