"""The CLI's one error handler on user mistakes: one line naming the file and the problem, exit 2, no traceback.

Each case runs the real command in-process with ``catch_exceptions=False``: an error that is not a
CordbenchError (a bug) would escape and fail the test with its traceback.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from benchmark import cli
from benchmark.cli import app
from conftest import save_nifti

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setattr(cli.shell, "console", Console(width=400, no_color=True))
    monkeypatch.setattr(cli.shell, "err_console", Console(width=400, no_color=True, stderr=True))
    monkeypatch.setattr(cli.shell.STATE, "debug", False)


def run(*args):
    return runner.invoke(app, [str(arg) for arg in args], catch_exceptions=False)


def assert_user_error(result, *must_name: object) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "error: " in result.output.splitlines()[0]
    for name in must_name:
        assert str(name) in result.output, result.output


@pytest.fixture
def gmchallenge_without_participant_id(shared_bids, tmp_path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(shared_bids / "gmchallenge", root / "gmchallenge")
    tsv = root / "gmchallenge" / "participants.tsv"
    tsv.write_text(tsv.read_text().replace("participant_id", "subject", 1))
    return root


@pytest.mark.real_data
def test_index_participants_without_id_column(gmchallenge_without_participant_id):
    tsv = gmchallenge_without_participant_id / "gmchallenge" / "participants.tsv"
    assert_user_error(run("index", tsv.parent, "--dataset", "gmchallenge"), tsv, "participant_id")


@pytest.mark.real_data
def test_splits_verify_participants_without_id_column(gmchallenge_without_participant_id):
    result = run("splits", "verify", "--suite", "real-mini", "--data-root", gmchallenge_without_participant_id,
                 "--only", "gmchallenge")
    assert_user_error(result, "participants.tsv", "participant_id")


@pytest.mark.real_data
def test_score_participants_without_id_column(gmchallenge_without_participant_id, tmp_path, monkeypatch):
    from benchmark.workspace import ENV_WORKSPACE, init_workspace

    monkeypatch.setenv(ENV_WORKSPACE, str(init_workspace(tmp_path / "ws").root))  # score writes only to a workspace
    result = run("score", "threshold-baseline", "--suite", "real-mini", "--data-root",
                 gmchallenge_without_participant_id)
    assert_user_error(result, "participants.tsv")


def test_unknown_dataset_and_suite():
    assert_user_error(run("datasets", "show", "gmchalenge"), "gmchalenge")
    assert_user_error(run("splits", "show", "--suite", "nope"), "nope")


@pytest.fixture
def masks(tmp_path):
    affine = np.diag([0.5, 0.5, 3.0, 1.0])
    mask = np.zeros((8, 8, 4), np.uint8)
    mask[2:5, 2:5, 1:3] = 1
    return (save_nifti(tmp_path / "pred.nii.gz", mask, affine), save_nifti(tmp_path / "gt.nii.gz", mask, affine),
            save_nifti(tmp_path / "small.nii.gz", mask[:6], affine))


def test_metrics_on_a_file_that_is_not_nifti(masks, tmp_path):
    text = tmp_path / "notes.nii.gz"
    text.write_text("not an image")
    assert_user_error(run("metrics", text, masks[1]), text, "not a readable NIfTI")


def test_metrics_on_a_missing_file(masks, tmp_path):
    assert_user_error(run("metrics", tmp_path / "absent.nii.gz", masks[1]), tmp_path / "absent.nii.gz", "not found")


def test_metrics_on_masks_of_different_shapes(masks):
    assert_user_error(run("metrics", masks[2], masks[1]), masks[2], masks[1], "shape")


def test_metrics_with_an_unknown_region(masks):
    assert_user_error(run("metrics", masks[0], masks[1], "--region", "cord-only"), "cord-only")


def test_gate_on_a_results_file_that_is_not_json(tmp_path):
    bad = tmp_path / "candidate.json"
    bad.write_text("{ not json")
    assert_user_error(run("gate", "--candidate", bad, "--baseline", bad), bad)


def test_gate_on_a_results_file_of_a_future_schema(tmp_path):
    future = tmp_path / "future.json"
    future.write_text(json.dumps({"schema_version": 99}))
    assert_user_error(run("gate", "--candidate", future, "--baseline", future), future, "schema_version")


def _submission(tmp_path: Path, manifest: bytes | str) -> Path:
    folder = tmp_path / "sub"
    folder.mkdir()
    path = folder / "submission.yaml"
    path.write_bytes(manifest if isinstance(manifest, bytes) else manifest.encode())
    return folder


def test_submission_manifest_with_an_unknown_field(tmp_path):
    folder = _submission(tmp_path, "name: x\ndescription: d\nauthors: [a]\nlicence: MIT\nmodle: {}\n")
    assert_user_error(run("submissions", "check", folder), folder / "submission.yaml", "modle")


def test_binary_submission_manifest(tmp_path):
    folder = _submission(tmp_path, bytes(range(256)))
    assert_user_error(run("submissions", "check", folder), folder / "submission.yaml")


def test_debug_shows_the_traceback(masks):
    result = runner.invoke(app, ["--debug", "metrics", str(masks[0]), str(masks[1]), "--region", "cord-only"])
    assert isinstance(result.exception, ValueError) and "cord-only" in str(result.exception)
