"""Commands that score models: score, metrics, and the state of scoring work units."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional
import typer
from rich.markup import escape
from rich.table import Table
from benchmark.errors import CordbenchError

from benchmark.cli import shell
from benchmark.cli.shell import (NATIVE_KERNELS_HELP, NO_SANDBOX_HELP, RUNTIME_HELP, THREADS_HELP, app, check_runtime,
                                 fail, parse_overrides, use_kernels)
from benchmark.cli.data import print_verify_report
from benchmark.cli.models import EXECUTOR_HELP


@app.command("score")
def score_command(
    names: list[str] = typer.Argument(..., help="Submission name(s) (folders under submissions/) or paths."),
    suite: str = typer.Option(..., "--suite", "-s", help="Suite to score on (every test split of it)."),
    data_root: Optional[Path] = typer.Option(None, help="Folder holding one sub-folder per dataset."),
    dataset_dir: Optional[list[str]] = typer.Option(None, "--dataset-dir", help="ID=PATH (repeatable)."),
    device: Optional[str] = typer.Option(None, help="cpu | cuda (default: the submission's preference; GPU when present)."),
    trust_checkpoint: bool = typer.Option(False, "--trust-checkpoint",
                                          help="Allow a checkpoint that needs full unpickling (runs its code!)."),
    metric: str = typer.Option("dice", help="Metric for the summary table."),
    no_sandbox: bool = typer.Option(False, "--no-sandbox", help=NO_SANDBOX_HELP),
    allow_changed_data: bool = typer.Option(False, "--allow-changed-data", help=(
        "Score even when the local test data differ from the frozen split; the results then carry the version "
        "'<version>+changed-data-<digest>' and never mix with the official ones (runs in this process, not as "
        "work units).")),
    executor: str = typer.Option("local", help=EXECUTOR_HELP),
    workers: Optional[int] = typer.Option(None, help="local: units run at once (default: cores // --threads)."),
    runtime: Optional[str] = typer.Option(None, "--runtime", help=RUNTIME_HELP),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help=THREADS_HELP + " With work units: the "
                                          "threads of each unit (default 1; --workers defaults to cores // threads)."),
    shard_size: int = typer.Option(25, help="Cases per work unit (a unit loads the model once)."),
    shard: Optional[str] = typer.Option(None, help="Run only part i/N of the work units (see --executor shards)."),
    no_wait: bool = typer.Option(False, "--no-wait", help="SLURM: submit and return; follow with `cordbench status`, "
                                                          "then re-run the command (or `cordbench merge`) to merge."),
    native_kernels: bool = typer.Option(False, "--native-kernels", help=NATIVE_KERNELS_HELP),
) -> None:
    """Predict every test case of the suite with each submission, score it, write its versioned results file.

    Every image and mask of the split is first verified against the frozen split (as `splits verify`); a
    difference stops with exit 1. Command and python submissions run in a bubblewrap sandbox (docs/scoring.md).
    The work is cut into units (submission x dataset x shard of cases) under work/units/ (or
    $CORDBENCH_WORKSPACE/work): a re-run does only what is missing. Each submission's first case runs alone first
    (canary): when it fails, the submission's other units are not started, no results file is written for it and the
    command exits 1 (the next run tries the canary again).
    """
    from benchmark.evaluation.scoring import DataChangedError, score_submission
    from benchmark.execution.api import merge_command, run_request, shard_commands
    from benchmark.execution.planner import plan_score_request

    use_kernels(native_kernels)
    check_runtime(runtime)
    from benchmark import workspace

    workspace.require("`cordbench score`")  # results, predictions and work units go to a workspace, never ./work
    if allow_changed_data:
        for name in names:
            try:
                results, path = score_submission(name, suite, data_root=data_root,
                                                 overrides=parse_overrides(dataset_dir), device=device,
                                                 trust_checkpoint=trust_checkpoint, sandbox=not no_sandbox,
                                                 allow_changed_data=True, runtime=runtime, threads=threads)
            except KeyboardInterrupt:
                shell.err_console.print(f"[bold red]interrupted:[/] no results file written for {name}; the "
                                        "predictions made so far are cached: run the same command again to resume")
                raise typer.Exit(INTERRUPTED_EXIT) from None
            print_summary(results, metric)
            shell.console.print(f"wrote {path}")
        return
    plan = None
    try:
        plan, units = plan_score_request(names, suite, data_root=data_root, overrides=parse_overrides(dataset_dir),
                                         device=device, trust_checkpoint=trust_checkpoint, shard_size=shard_size,
                                         sandbox=not no_sandbox, runtime=runtime, threads=threads or 1)
        if executor == "shards" and shard is None:
            for command in shard_commands(plan, sys.argv[1:]):
                typer.echo(command)
            typer.echo(merge_command(sys.argv[1:]))
            return
        outcome = run_request(plan, units, executor=executor, workers=workers, threads=threads or 1, shard=shard,
                              wait=not no_wait, progress=True, merge=shard is None)
    except DataChangedError as error:
        print_verify_report(error.report)
        fail(str(error), code=1)
    except CordbenchError as error:
        fail(str(error))
    except KeyboardInterrupt:
        interrupted(plan)
    _report_request(outcome, metric, shard_argv=sys.argv[1:] if shard else None)


INTERRUPTED_EXIT = 130  # 128 + SIGINT, what a shell reports for Ctrl-C


def interrupted(plan) -> None:
    """After Ctrl-C: how much is kept and how to resume (exit 130)."""
    from benchmark.execution.units import UnitStore
    from benchmark.execution.workdir import work_root

    if plan is None:
        shell.err_console.print("[bold red]interrupted[/] before any work unit started; nothing was written")
    else:
        store = UnitStore(work_root())
        done = sum(store.is_done(uid) for uid in plan.unit_ids())
        shell.err_console.print(
            f"[bold red]interrupted:[/] {done} of {len(plan.unit_ids())} work units are done and kept (plan "
            f"{plan.request_id}, {store.root}); run the same command again to resume: only the missing units run. "
            "`cordbench status` lists them.", highlight=False)
    raise typer.Exit(INTERRUPTED_EXIT)


@app.command("merge")
def merge_command_(
    names: list[str] = typer.Argument(..., help="The submissions of the `cordbench score` request."),
    suite: str = typer.Option(..., "--suite", "-s", help="Suite of the request."),
    data_root: Optional[Path] = typer.Option(None, help="Folder holding one sub-folder per dataset."),
    dataset_dir: Optional[list[str]] = typer.Option(None, "--dataset-dir", help="ID=PATH (repeatable)."),
    device: Optional[str] = typer.Option(None, help="As given to `score`."),
    trust_checkpoint: bool = typer.Option(False, "--trust-checkpoint", help="As given to `score`."),
    metric: str = typer.Option("dice", help="Metric for the summary table."),
    executor: str = typer.Option("local", help="Ignored (accepted so that a `score` command line can be reused)."),
    workers: Optional[int] = typer.Option(None, help="Ignored."),
    threads: Optional[int] = typer.Option(None, help="As given to `score`."),
    runtime: Optional[str] = typer.Option(None, "--runtime", help="As given to `score`."),
    shard_size: int = typer.Option(25, help="As given to `score`."),
    no_sandbox: bool = typer.Option(False, "--no-sandbox", help="As given to `score`."),
) -> None:
    """Write the results files of a `cordbench score` request whose units have all run (e.g. every --shard)."""
    from benchmark.execution.api import RequestOutcome, finish
    from benchmark.execution.planner import plan_score_request, save_plan
    from benchmark.execution.runner import RunReport
    from benchmark.execution.units import UnitStore
    from benchmark.execution.workdir import work_root

    try:
        plan, units = plan_score_request(names, suite, data_root=data_root, overrides=parse_overrides(dataset_dir),
                                         device=device, trust_checkpoint=trust_checkpoint, shard_size=shard_size,
                                         sandbox=not no_sandbox, runtime=runtime, threads=threads or 1)
        store = UnitStore(work_root("`cordbench merge`"))
        outcome = RequestOutcome(save_plan(store, plan, units), store, RunReport())
        finish(outcome)
    except CordbenchError as error:
        fail(str(error))
    _report_request(outcome, metric)


def print_summary(results, metric: str = "dice") -> None:
    from benchmark.analysis.labels import PEOPLE_SCANS, format_ci, format_people, metric_label
    from benchmark.analysis.summary import dataset_summaries

    table = Table(title=f"{results.submission} on {results.suite} ({metric_label(metric)}, mean over people "
                        "[95% CI])")
    for column in ("dataset", "role", "zero-shot", PEOPLE_SCANS, "failures", "leaked (excluded)", metric):
        table.add_column(column)
    for row in dataset_summaries(results, metric):
        table.add_row(row["dataset"], row["role"], "yes" if row["zero_shot"] else "no",
                      format_people(row["people"], row["scans"]),
                      str(row["failures"]), str(row["leaked"]), format_ci(row["mean"], row["low"], row["high"], metric))
    shell.console.print(table)


def _report_request(outcome, metric: str, shard_argv: list[str] | None = None) -> None:
    """Summaries of the results files written; canary stops, failed units with their logs; exit 1 if incomplete."""
    from benchmark.execution.api import merge_command
    from benchmark.execution.runner import failure_lines
    from benchmark.evaluation.results import load_results

    report = outcome.report
    if report.submitted_jobs:
        shell.console.print(f"submitted SLURM job(s) {', '.join(report.submitted_jobs)} for plan {outcome.plan.request_id}; "
                      "follow with `cordbench status`, then run the same command again to merge")
        return
    if report.skipped:
        shell.console.print(f"{report.skipped} unit(s) already done (skipped)")
    for path in outcome.written.values():
        if outcome.plan.kind == "score":
            print_summary(load_results(path), metric)
        shell.console.print(f"wrote {path}")
    for line in failure_lines(report, outcome.store):
        shell.err_console.print(f"[red]{escape(line)}[/]", markup=True, highlight=False)
    if shard_argv is not None:
        shell.console.print(f"shard done; when every shard has run: {merge_command(shard_argv)}")
        raise typer.Exit(1 if report.failed or report.stopped else 0)
    if outcome.incomplete:
        missing = ", ".join(f"{group} ({count} units)" for group, count in outcome.incomplete.items())
        shell.err_console.print(f"[bold red]not complete:[/] {escape(missing)}; nothing was averaged over missing cases. "
                          "Run the same command again to redo only the missing units.")
    if outcome.incomplete or report.stopped:
        raise typer.Exit(1)


@app.command("status")
def status_command() -> None:
    """Work units of every planned request in work/ (or $CORDBENCH_WORKSPACE/work): done, running, interrupted (its
    process is gone: Ctrl-C, kill, reboot; the next run of the same command redoes it), failed, pending."""
    from benchmark.execution.api import status
    from benchmark.execution.workdir import work_root

    rows = status()
    table = Table(title=f"work units in {work_root('`cordbench status`')}")
    for column in ("plan", "kind", "suite", "group", "units", "done", "running", "interrupted", "failed", "pending",
                   "last failure"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["plan"], row["kind"], row["suite"], row["group"], str(row["units"]), str(row["done"]),
                      str(row["running"]), str(row["interrupted"]), str(row["failed"]), str(row["pending"]),
                      escape(row["problem"]))
    shell.console.print(table)


@app.command("metrics")
def metrics_command(
    prediction: Path = typer.Argument(..., help="Predicted binary mask (NIfTI)."),
    ground_truth: Path = typer.Argument(..., help="Reference binary mask (NIfTI) on the same grid."),
    region: str = typer.Option(
        "whole-image", "--region",
        help="Scored region: whole-image, or label-extent (only the axial slices the reference mask spans, "
             "as the suites do for datasets whose masks cover part of the cord; see docs/metrics.md).",
    ),
) -> None:
    """Print every metric for one prediction/reference pair as JSON (spacing read from the files)."""
    from benchmark.evaluation.metrics import metrics_for_files

    values = metrics_for_files(prediction, ground_truth, region)
    typer.echo(json.dumps(values, indent=2, sort_keys=True))
