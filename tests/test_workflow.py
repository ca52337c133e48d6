"""The shipped CI workflow (.github/workflows/benchmark-gate.yml) works: every `cordbench` call in its `run:`
steps parses against the real CLI, and its scoring step, run by bash as CI runs it, scores and gates.

The scoring step runs on a throw-away copy of the package and the reference submission (threshold-baseline,
training-free), on the real-mini suite from ../shared instead of the synthetic suite (generating the
synthetic suite takes over a minute on 2 cores; the step's commands are the same, only $SUITE/$DATA_ROOT
differ). The generation step's command line is checked by the CLI's own parser.
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import yaml

from benchmark.cli import app


def _parser_exceptions() -> tuple[type[Exception], type[Exception]]:
    """(UsageError, NoSuchOption) of the click the CLI is built on (newer typer versions vendor their own)."""
    base = next(klass for klass in type(typer.main.get_command(app)).__mro__ if klass.__name__ == "Command")
    exceptions = importlib.import_module(base.__module__.rsplit(".", 1)[0] + ".exceptions")
    return exceptions.UsageError, exceptions.NoSuchOption


UsageError, NoSuchOption = _parser_exceptions()

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / ".github" / "workflows" / "benchmark-gate.yml"
SCORE_STEP = "Score and gate each changed submission"


def steps() -> dict[str, dict]:
    [job] = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))["jobs"].values()
    return {step["name"]: step for step in job["steps"]}


def cordbench_calls(script: str) -> list[list[str]]:
    """Every `cordbench ...` command line in a shell script, with $VARS replaced by placeholder values."""
    calls = []
    for line in script.splitlines():
        for match in re.finditer(r"\bcordbench ([^;|&>)]*)", line):
            words = shlex.split(match.group(1).replace("\\", ""))
            calls.append([re.sub(r"\$\{?\w+\}?", "X", word) for word in words])
    return calls


def test_every_cordbench_call_of_the_workflow_parses_against_the_cli():
    cli = typer.main.get_command(app)
    calls = [call for step in steps().values() for call in cordbench_calls(step.get("run", ""))]
    assert {call[0] for call in calls} >= {"synth", "score", "gate"}
    for call in calls:
        try:
            parse(cli, call)
        except UsageError as error:
            pytest.fail(f"{WORKFLOW}: `cordbench {' '.join(call)}`: {error.format_message()}")


def parse(cli, call: list[str]) -> None:
    """Parse one command line as `cordbench` would, without running it (UsageError when it is wrong)."""
    parent = cli.context_class(cli, info_name="cordbench")
    command = cli.get_command(parent, call[0])
    if command is None:
        raise UsageError(f"no such command {call[0]!r}")
    command.make_context(call[0], list(call[1:]), parent=parent)


def test_a_wrong_option_is_caught_by_that_check():
    cli = typer.main.get_command(app)
    with pytest.raises(NoSuchOption):
        parse(cli, ["synth", "--out", "X", "--seed", "0"])
    with pytest.raises(UsageError, match="no such command"):
        parse(cli, ["synthesize", "X"])
    parse(cli, ["synth", "X", "--seed", "0"])


@pytest.mark.real_data
@pytest.mark.slow  # ~30 s: 7 real cases through the sandboxed threshold baseline, then the gate
def test_the_scoring_step_scores_and_gates_the_reference(tmp_path, shared_bids):
    from benchmark.models.sandbox import sandbox_available

    if not sandbox_available():
        pytest.skip("needs bubblewrap (the workflow installs it)")
    checkout = tmp_path / "checkout"
    shutil.copytree(REPO / "benchmark", checkout / "benchmark", ignore=shutil.ignore_patterns("__pycache__"))
    reference = (REPO / "submissions" / "REFERENCE").read_text().strip()
    shutil.copytree(REPO / "submissions" / reference, checkout / "submissions" / reference,
                    ignore=shutil.ignore_patterns("results", "predictions", "cases_index*"))
    shutil.copyfile(REPO / "submissions" / "REFERENCE", checkout / "submissions" / "REFERENCE")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "cordbench").write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m benchmark \"$@\"\n")
    (bin_dir / "cordbench").chmod(0o755)
    summary = tmp_path / "summary.md"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": str(checkout),
           "SUITE": "real-mini", "DATA_ROOT": str(shared_bids), "GATE_OUT": str(tmp_path / "gate"),
           "GITHUB_STEP_SUMMARY": str(summary), "NAMES": reference, "OMP_NUM_THREADS": "1",
           "CORDBENCH_WORKSPACE": str(tmp_path / "workspace")}  # the job's env sets it; a step inits it
    init = 'cordbench init "$CORDBENCH_WORKSPACE"'
    assert init in WORKFLOW.read_text()  # the workflow's install step makes the workspace the job's env names
    script = init + "\n" + steps()[SCORE_STEP]["run"]
    completed = subprocess.run(["bash", "-c", script], cwd=checkout, env=env,
                               capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert f"gate passed for {reference}" in completed.stdout
    assert summary.read_text().startswith(f"# Benchmark gate (suite `real-mini`, baseline `{reference}`)")
    assert (tmp_path / "gate" / f"{reference}.md").stat().st_size > 0
    assert list((tmp_path / "workspace").rglob(f"{reference}/**/real-mini_*.json"))
    assert not (checkout / "submissions" / reference / "results").exists()  # the checkout is never written
