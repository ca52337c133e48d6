"""How `cordbench score` stops: a failed canary writes no results file and exits 1 (even on a one-case suite, where
the canary is the whole submission); Ctrl-C says how to resume; `cordbench status` tells a dead unit from a running
one. Command models run with --no-sandbox here (these tests are about stopping, not isolation)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from benchmark import cli, workspace
from benchmark.execution.units import UnitStore
from own_data_fixtures import write_anat_dataset, write_command_submission

REPO = Path(__file__).resolve().parents[1]

CRASHES = "import sys\nsys.exit('this model always fails')\n"
SLEEPS = "import time\ntime.sleep(60)\n"


@pytest.fixture
def wide_consoles(monkeypatch):
    monkeypatch.setattr(cli.shell, "console", Console(width=400, no_color=True))
    monkeypatch.setattr(cli.shell, "err_console", Console(width=400, no_color=True, stderr=True))


def ood_workspace(tmp_path: Path, subjects: tuple[str, ...], monkeypatch) -> Path:
    """A workspace (the active one) with one dataset of ``subjects`` in an OOD-only suite `s`, its split frozen."""
    ws = tmp_path / "ws"
    bids = write_anat_dataset(tmp_path / "bids" / "t2", subjects)
    runner = CliRunner()
    assert runner.invoke(cli.app, ["init", str(ws)]).exit_code == 0
    monkeypatch.setenv(workspace.ENV_WORKSPACE, str(ws))
    result = runner.invoke(cli.app, ["datasets", "add", "t2", "--root", str(bids)])
    assert result.exit_code == 0, result.output
    (ws / "suites" / "s.yaml").write_text("id: s\ntitle: t\ndescription: t\ndatasets:\n- {id: t2, role: ood}\n")
    result = runner.invoke(cli.app, ["splits", "make", "--suite", "s"])
    assert result.exit_code == 0, result.output
    return ws


def test_a_failed_canary_of_a_one_case_suite_writes_no_results_and_exits_1(tmp_path, wide_consoles, monkeypatch):
    ws = ood_workspace(tmp_path, ("a1",), monkeypatch)
    write_command_submission(ws / "submissions", "crashes", CRASHES)
    runner = CliRunner()
    result = runner.invoke(cli.app, ["score", "crashes", "--suite", "s", "--no-sandbox"])
    # before: exit 0, "stopped, its canary case failed" and a results file with Dice 0.000
    assert result.exit_code == 1, result.output
    assert "crashes: stopped, its canary case failed (no results file written; run the same command again " \
           "once fixed): t2:sub-a1/ses-1/anat/sub-a1_ses-1_acq-axial_run-1_T2w.nii.gz: crash: exit code 1" \
           in result.output
    assert "wrote" not in result.output
    assert not (ws / "submissions" / "crashes" / "results").exists()
    # `cordbench merge` of the same request does not write it either
    merged = runner.invoke(cli.app, ["merge", "crashes", "--suite", "s", "--no-sandbox"])
    assert merged.exit_code == 1 and not (ws / "submissions" / "crashes" / "results").exists()
    status = runner.invoke(cli.app, ["status"])
    assert "stopped, its canary case failed: t2:sub-a1" in status.output
    # fixed:
    (ws / "submissions" / "crashes" / "model.py").write_text("import shutil, sys\nshutil.copyfile(*sys.argv[1:])\n")
    again = runner.invoke(cli.app, ["score", "crashes", "--suite", "s", "--no-sandbox"])
    # the fixed model is a new submission identity: scored from scratch, a results file written
    assert again.exit_code == 0, again.output
    assert len(list((ws / "submissions" / "crashes" / "results").glob("s_*.json"))) == 1


def test_a_failed_canary_is_tried_again_on_the_next_run(tmp_path, wide_consoles, monkeypatch):
    ws = ood_workspace(tmp_path, ("a1", "a2"), monkeypatch)
    write_command_submission(ws / "submissions", "crashes", CRASHES)
    runner = CliRunner()
    for _ in range(2):
        result = runner.invoke(cli.app, ["score", "crashes", "--suite", "s", "--no-sandbox"])
        assert result.exit_code == 1 and "stopped, its canary case failed" in result.output
        assert "already done" not in result.output
    store = UnitStore(ws / "work")
    canary = next(path.parent.name for path in store.root.glob("*/unit.json")
                  if json.loads(path.read_text())["canary"])
    assert [entry["reason"] for entry in store.failures(canary)] == [
        "t2:sub-a1/ses-1/anat/sub-a1_ses-1_acq-axial_run-1_T2w.nii.gz: crash: exit code 1: this model always fails"]
    assert not (ws / "submissions" / "crashes" / "results").exists()


def _wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_ctrl_c_says_how_to_resume_and_status_tells_the_dead_unit_from_a_running_one(tmp_path, monkeypatch):
    ws = ood_workspace(tmp_path, ("a1", "a2"), monkeypatch)
    write_command_submission(ws / "submissions", "sleeps", SLEEPS)
    env = {**os.environ, "CORDBENCH_WORKSPACE": str(ws), "PYTHONPATH": str(REPO), "COLUMNS": "300"}
    command = [sys.executable, "-m", "benchmark", "score", "sleeps", "--suite", "s", "--no-sandbox", "--workers", "1"]
    # a terminal's Ctrl-C goes to the whole foreground process group: the command and its workers
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    store = UnitStore(ws / "work")
    try:
        _wait_for(lambda: store.root.is_dir() and any(store.root.glob("*/running.json")), 60, "a unit to start")
        [running] = [path.parent.name for path in store.root.glob("*/running.json")]
        assert store.state(running) == "running" and store.attempt_alive(running) is True
        os.killpg(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    # before: exit 130 with nothing said, and `cordbench status` listed the dead unit as running
    assert process.returncode == 130, stdout + stderr
    assert " ".join(stderr.split()).startswith(
        "interrupted: 0 of 2 work units are done and kept (plan score-"), stderr
    assert "run the same command again to resume: only the missing units run. `cordbench status` lists them." \
        in " ".join(stderr.split())
    assert store.state(running) == "interrupted" and store.attempt_alive(running) is False
    status = subprocess.run([sys.executable, "-m", "benchmark", "status"], env=env, capture_output=True, text=True,
                            timeout=60)
    row = next(line for line in status.stdout.splitlines() if "sleeps" in line)
    cells = [cell.strip() for cell in row.split("│") if cell.strip()]
    assert cells[4:10] == ["2", "0", "0", "1", "0", "1"], row  # units, done, running, interrupted, failed, pending
    assert "1 unit(s) interrupted (their process is gone" in status.stdout


def test_a_reused_pid_or_another_host_is_not_taken_for_the_attempt(tmp_path):
    store = UnitStore(tmp_path)
    folder = store.folder("score-x")
    folder.mkdir(parents=True)
    import socket

    from benchmark.execution.units import utc_now

    (folder / "running.json").write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                                     "started_utc": utc_now()}))
    assert store.state("score-x") == "running"
    # this process started long before this "attempt" of 2000: its pid was reused, the attempt is gone
    (folder / "running.json").write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                                     "started_utc": "2000-01-01T00:00:00+00:00"}))
    assert store.state("score-x") == "interrupted"
    (folder / "running.json").write_text(json.dumps({"host": "another-node", "pid": 1, "started_utc": utc_now()}))
    assert store.state("score-x") == "running" and store.attempt_alive("score-x") is None
