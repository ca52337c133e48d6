"""The command line as a user meets it (typer's runner, same process)."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from rich.console import Console

from benchmark import cli
from benchmark.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """Rich wraps tables at the terminal width; the runner has none, so give it a wide one."""
    monkeypatch.setattr(cli.shell, "console", Console(width=220, no_color=True))
    monkeypatch.setattr(cli.shell, "err_console", Console(width=220, no_color=True, stderr=True))


def run(*args):
    return runner.invoke(app, [str(arg) for arg in args], catch_exceptions=False)


def test_help_lists_the_pipeline():
    result = run("--help")
    assert result.exit_code == 0
    for command in ("index", "splits", "convert", "train", "score", "gate", "leaderboard", "demo", "fetch"):
        assert command in result.output


def test_datasets_list_and_show():
    listed = run("datasets", "list")
    assert listed.exit_code == 0 and "spine-generic" in listed.output and "restricted" in listed.output
    shown = run("datasets", "show", "episeg")
    assert shown.exit_code == 0 and '"openneuro_id": "ds005143"' in shown.output
    unknown = run("datasets", "show", "nope")
    assert unknown.exit_code == 2 and "unknown dataset 'nope'" in unknown.output


@pytest.mark.real_data
def test_index_reports_not_downloaded_with_the_fetch_command(shared_bids, tmp_path):
    result = run("index", shared_bids / "episeg-layout", "--dataset", "episeg", "--json", tmp_path / "i.json")
    assert result.exit_code == 0
    assert "792 files are not downloaded" in result.output  # 397 images + 395 masks
    assert "git annex get" in result.output
    data = json.loads((tmp_path / "i.json").read_text())
    assert len(data["cases"]) == 397 and data["cases"][0]["image"]["state"] == "broken-symlink"


@pytest.mark.real_data
def test_splits_verify_exit_codes(shared_bids, tmp_path):
    assert run("splits", "verify", "--suite", "real-mini", "--data-root", shared_bids).exit_code == 0
    root = tmp_path / "data"
    shutil.copytree(shared_bids / "gmchallenge", root / "gmchallenge")
    shutil.rmtree(root / "gmchallenge" / "sub-9418")
    result = run("splits", "verify", "--suite", "real-mini", "--data-root", root, "--only", "gmchallenge")
    assert result.exit_code == 1
    assert "missing subject gmchallenge: sub-9418" in " ".join(result.output.split())


@pytest.mark.real_data
def test_metrics_prints_json(shared_bids):
    labels = shared_bids / "gmchallenge/derivatives/labels/sub-9418/anat"
    result = run("metrics", labels / "sub-9418_T2starw_gmseg-manual.nii.gz", labels / "sub-9418_T2starw_seg-manual.nii.gz")
    assert result.exit_code == 0
    values = json.loads(result.output)
    assert round(values["dice"], 4) == 0.2456 and values["hd95"] == 4.0


def test_gate_unusable_input_exits_2(tmp_path):
    (tmp_path / "a.json").write_text("{not json")
    result = run("gate", "--candidate", tmp_path / "a.json", "--baseline", tmp_path / "a.json")
    assert result.exit_code == 2
