"""Faults of the scorer and bad input files end as named errors (file + problem), never as tracebacks or as a
model's score."""

from __future__ import annotations

import errno
import json
import math

import numpy as np
import pytest
import yaml

from benchmark.evaluation.inference import ImageReadError, Predictor, ScorerFaultError, load_native
from benchmark.data.submissions import load_submission

from conftest import orientation_affine, save_nifti


def copier(root):
    folder = root / "copier"
    folder.mkdir(parents=True)
    (folder / "submission.yaml").write_text(yaml.safe_dump({
        "name": "copier", "description": "d", "authors": ["a"], "licence": "MIT",
        "model": {"type": "command", "command": "cp {input} {output}"}}))
    return load_submission("copier", root)


@pytest.fixture
def image(tmp_path):
    return save_nifti(tmp_path / "img.nii.gz", np.ones((4, 4, 3), np.float32), orientation_affine("RAS"))


def test_an_unreadable_nifti_is_named(tmp_path):
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(ImageReadError, match=f"{broken}: not a readable NIfTI image"):
        load_native(broken)


def test_a_missing_temporary_folder_stops_the_run_and_records_nothing(tmp_path, image, monkeypatch):
    import tempfile

    pytest.importorskip("benchmark.models.sandbox").sandbox_available() or pytest.skip("needs bubblewrap")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-tmp"))
    with pytest.raises(ScorerFaultError, match="cannot create a temporary folder"):
        Predictor(copier(tmp_path / "subs"), tmp_path / "cache").predict(image, "sha")
    assert not list((tmp_path / "cache").rglob("*.json"))


def test_a_full_disk_stops_the_run_and_records_nothing(tmp_path, image, monkeypatch):
    import benchmark.evaluation.inference as inference

    pytest.importorskip("benchmark.models.sandbox").sandbox_available() or pytest.skip("needs bubblewrap")

    def disk_full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(inference, "atomic_write_bytes", disk_full)
    with pytest.raises(ScorerFaultError, match="scorer fault .*not the model's.*No space left on device"):
        Predictor(copier(tmp_path / "subs"), tmp_path / "cache").predict(image, "sha")
    assert not list((tmp_path / "cache").rglob("*.json"))


@pytest.mark.parametrize("content, problem", [
    (b"participant_id\tsite\nsub-01\t\xff\xfe\n", "not UTF-8 text"),
    (b"participant_id\tsite\nsub-01\tA\tB\n", "line 2: more fields than the 2 columns"),
    (b"participant_id\tsite\nsub-01\t" + b"x" * 200_000 + b"\n", "not a readable tab-separated table"),
])
def test_a_bad_participants_table_is_named(tmp_path, content, problem):
    from benchmark.data.bids_index import BidsIndexError, read_participants

    (tmp_path / "participants.tsv").write_bytes(content)
    with pytest.raises(BidsIndexError, match=f"participants.tsv: {problem}"):
        read_participants(tmp_path)


def test_a_binary_manifest_is_named(tmp_path):
    from benchmark.data.submissions import SubmissionError

    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "submission.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    with pytest.raises(SubmissionError, match="submission.yaml: cannot read YAML .*utf-8"):
        load_submission("bin", tmp_path)


@pytest.mark.parametrize("version", [0, 99, "2", True])
def test_an_unknown_results_schema_version_is_named(tmp_path, version):
    from benchmark.evaluation.results import ResultsError, load_results

    path = tmp_path / "r.json"
    path.write_text(json.dumps({"schema_version": version, "cases": []}))
    with pytest.raises(ResultsError, match=f"schema_version {version!r} is not supported"):
        load_results(path)


def _results_with(tmp_path, name, dice):
    from benchmark.evaluation.results import CaseResult, ResultsFile, write_results

    case = CaseResult(case_id="ds:a.nii.gz", dataset="ds", subject="sub-01", contrast="T2w", image_sha256="0" * 64,
                      suite_role="in-domain", dataset_in_training=True, subject_in_training=False,
                      dice=dice, nsd=0.5, hd95=1.0, rve=0.1, csa_error=0.1)
    results = ResultsFile(submission=name, suite="synthetic", benchmark_version="v1", cordbench_version="0",
                          model_sha256="0" * 64, model_type="command", declared_training_datasets=[],
                          created_utc="2026-01-01T00:00:00+00:00", cases=[case])
    return write_results(tmp_path / f"{name}.json", results)


def test_nan_in_results_given_to_the_gate_is_named(tmp_path):
    import io

    from benchmark.analysis.gate import run_gate

    err = io.StringIO()
    code = run_gate(_results_with(tmp_path, "a", math.nan), _results_with(tmp_path, "b", 0.9),
                    out=io.StringIO(), err=err)
    assert code == 2
    assert "a.json: case ds:a.nii.gz: dice is nan" in err.getvalue()


def test_a_typo_in_a_declared_training_dataset_names_the_close_match(tmp_path):
    from benchmark.evaluation.scoring import ScoringError, check_declared_datasets
    from benchmark.data.submissions import check_submission

    with pytest.raises(ScoringError, match="'gmchalenge' is not a registered dataset id; did you mean 'gmchallenge'"):
        check_declared_datasets("m", {"gmchalenge", "synth-ms"})
    check_declared_datasets("m", {"gmchallenge", "synth-ms"})
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "submission.yaml").write_text(yaml.safe_dump({
        "name": "m", "description": "d", "authors": ["a"], "licence": "MIT",
        "model": {"type": "command", "command": "cp {input} {output}"}, "training": {"datasets": ["gmchalenge"]}}))
    assert check_submission(load_submission("m", tmp_path)) == [
        "training.datasets: 'gmchalenge' is not a registered dataset id; did you mean 'gmchallenge'?"]


def test_checking_a_python_submission_never_imports_its_code(tmp_path):
    from benchmark.data.submissions import check_submission

    folder = tmp_path / "py"
    folder.mkdir()
    marker = tmp_path / "imported"
    (folder / "model.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\ndef predict(image, spacing):\n    return image\n")
    (folder / "submission.yaml").write_text(yaml.safe_dump({
        "name": "py", "description": "d", "authors": ["a"], "licence": "MIT",
        "model": {"type": "python", "entrypoint": "model:predict"}}))
    assert check_submission(load_submission("py", tmp_path)) == []
    assert not marker.exists()
    (folder / "model.py").unlink()
    [problem] = check_submission(load_submission("py", tmp_path))
    assert problem.startswith("model.entrypoint: module 'model' is not in the submission folder")


def test_without_bubblewrap_untrusted_code_is_refused_unless_no_sandbox(tmp_path, image, monkeypatch):
    import benchmark.models.sandbox as sandbox

    monkeypatch.setattr(sandbox, "bwrap_executable", lambda: None)
    submission = copier(tmp_path / "subs")
    with pytest.raises(sandbox.SandboxError, match="refuses to run untrusted submission code.*--no-sandbox"):
        Predictor(submission, tmp_path / "cache")
    unsandboxed = Predictor(submission, tmp_path / "cache", sandbox=False)
    assert unsandboxed.sandbox_mode == "none" and unsandboxed.cache_dir.name.endswith("-unsandboxed")
    assert unsandboxed.predict(image, "sha").failure is None
