"""Commands that read results: the gate, the report, the leaderboard."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional
import typer
from rich.markup import escape

from benchmark.cli import shell
from benchmark.cli.shell import NO_SANDBOX_HELP, RUNTIME_HELP, THREADS_HELP, app, check_runtime, fail


def results_folders(name: str) -> list[Path]:
    """Where a submission's results files may be: the workspace's (scored here), then the built-in ones."""
    from benchmark import workspace
    from benchmark.data.submissions import SUBMISSIONS_DIR

    active = workspace.active()
    return ([active.results_dir(name)] if active else []) + [SUBMISSIONS_DIR / name / "results"]


def default_results_roots() -> list[Path]:
    """Folders searched for results files: the workspace's submissions (first: a re-score wins), the built-in."""
    from benchmark import workspace
    from benchmark.data.submissions import SUBMISSIONS_DIR

    active = workspace.active()
    return ([active.submissions_dir] if active else []) + [SUBMISSIONS_DIR]


def resolve_results(name_or_path: str, suite: Optional[str]) -> Path:
    """A results file path, or a submission name -> its results file for the suite's current split version
    (or, when it has none for that version, its newest one, so that the gate reports the version change)."""
    from benchmark.data.splits import load_split

    candidate = Path(name_or_path)
    if candidate.suffix == ".json":
        return candidate
    if suite is None:
        fail(f"--suite is needed to find the results of submission {name_or_path!r}")
    folders = results_folders(name_or_path)
    folder = folders[0]
    version = load_split(suite).version
    for results in folders:
        if (results / f"{suite}_{version}.json").exists():
            return results / f"{suite}_{version}.json"
    older = sorted((path for results in folders for path in results.glob(f"{suite}_*.json")),
                   key=lambda path: path.stat().st_mtime)
    if not older:
        fail(f"{folder}: no results of {name_or_path!r} on suite {suite!r}; run `cordbench score {name_or_path} --suite {suite}`")
    return older[-1]


def reproduce_refusal(name: str) -> str | None:
    """Why a submission cannot be re-scored from scratch (masks supplied, no model), or None."""
    from benchmark.data.submissions import PREDICTIONS_NOTE, PredictionsModelSpec, load_submission

    submission = load_submission(name)
    if isinstance(submission.model, PredictionsModelSpec):
        return (f"{name}: {PREDICTIONS_NOTE}: a predictions submission holds masks computed elsewhere, so there is "
                "no model to re-run and nothing to reproduce")
    return None


@app.command("gate")
def gate_command(
    candidate: Optional[str] = typer.Option(None, help="Candidate: submission name or results file."),
    baseline: Optional[str] = typer.Option(None, help="Baseline: submission name or results file."),
    suite: Optional[str] = typer.Option(None, "--suite", "-s", help="Suite (needed when giving names)."),
    metric: str = typer.Option("dice", help="dice | nsd | hd95 | rve | csa_error (mm²; e.g. --margin 0.5: a third "
                                            "of a year's MS atrophy) | csa_drift (two models' CSA per case, no ground "
                                            "truth; fails on a shift beyond --margin mm²). See docs/gate.md."),
    margin: float = typer.Option(0.01, help="Largest tolerated drop of the per-dataset mean, in the metric's units."),
    alpha: float = typer.Option(0.05, help="Significance level of the one-sided paired test (Holm across datasets)."),
    seed: int = typer.Option(0, help="Seed of the bootstrap confidence intervals."),
    markdown: Optional[Path] = typer.Option(None, help="Also write the Markdown table here (for a PR comment)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the report as JSON here."),
    reproduce: Optional[str] = typer.Option(None, help="Reproducibility gate: re-score this submission from scratch "
                                                       "and compare with its stored results."),
    data_root: Optional[Path] = typer.Option(None, help="With --reproduce: the data root to score on."),
    tolerance: float = typer.Option(0.005, help="With --reproduce: largest tolerated change of a per-dataset mean."),
    trust_checkpoint: bool = typer.Option(False, "--trust-checkpoint", help="With --reproduce: see `score`."),
    no_sandbox: bool = typer.Option(False, "--no-sandbox", help=f"With --reproduce: {NO_SANDBOX_HELP}"),
    max_slowdown: Optional[float] = typer.Option(
        None, "--max-slowdown", min=0,
        help="Also fail when the candidate's median s/volume is more than this fraction above the baseline's "
             "(0.2 = 20 %), measured on the same hardware; on different hardware the speed is reported as not "
             "comparable. Default: speed not gated."),
    runtime: Optional[str] = typer.Option(None, "--runtime", help="With --reproduce: " + RUNTIME_HELP),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="With --reproduce: " + THREADS_HELP),
) -> None:
    """Fail (exit 1) when the candidate drops the metric by more than the margin AND significantly, on any dataset.

    Also fails when the two results do not cover the same cases or come from different benchmark versions.
    Exit 0 pass, 1 fail, 2 unusable input. `--reproduce NAME` re-scores a registered submission and fails when
    a per-dataset mean moved by more than --tolerance.
    """
    from benchmark.analysis.gate import run_gate, run_reproduce

    if reproduce:
        import tempfile

        from benchmark.evaluation.scoring import score_submission

        if suite is None:
            fail("--reproduce needs --suite")
        check_runtime(runtime)
        refusal = reproduce_refusal(reproduce)
        if refusal:
            fail(refusal)
        stored = resolve_results(reproduce, suite)
        with tempfile.TemporaryDirectory(prefix="cordbench-reproduce-") as scratch:
            _results, rescored = score_submission(
                reproduce, suite, data_root=data_root, trust_checkpoint=trust_checkpoint,
                out_path=Path(scratch) / "rescored.json", cache_dir=Path(scratch) / "predictions",
                sandbox=not no_sandbox, runtime=runtime, threads=threads)
            raise typer.Exit(run_reproduce(stored, rescored, tolerance=tolerance, markdown_path=markdown,
                                           json_path=json_out))
    if not candidate or not baseline:
        fail("give --candidate and --baseline (or --reproduce NAME)")
    if metric == "csa_drift":
        from benchmark.analysis.csa_drift import run_csa_drift

        raise typer.Exit(run_csa_drift(resolve_results(candidate, suite), resolve_results(baseline, suite),
                                       margin=margin, alpha=alpha, seed=seed, markdown_path=markdown,
                                       json_path=json_out))
    raise typer.Exit(run_gate(resolve_results(candidate, suite), resolve_results(baseline, suite), suite=suite,
                              metric=metric, margin=margin, alpha=alpha, seed=seed, markdown_path=markdown,
                              json_path=json_out, max_slowdown=max_slowdown))


@app.command("report")
def report_command(
    suite: str = typer.Option(..., "--suite", "-s", help="Suite whose results to report."),
    out: Optional[Path] = typer.Option(None, help="HTML file to write (default: the workspace's work/report/<suite>.html)."),
    results_dir: Optional[list[Path]] = typer.Option(None, "--results-dir", help="Extra folders with results files."),
    metric: str = typer.Option("dice", help="dice | nsd | hd95 | rve | csa_error."),
    seed: int = typer.Option(0, help="Seed of the bootstrap intervals."),
) -> None:
    """Write the self-contained HTML report (plotly figures, statistics, overlays) from the results files."""
    from benchmark import workspace
    from benchmark.analysis.report import case_images_from_cases_index, write_report
    from benchmark.evaluation.results import find_results_files, load_many

    out = out or workspace.require("`cordbench report`").report_dir / f"{suite}.html"
    results, skipped = load_many(find_results_files(*default_results_roots(), *(results_dir or [])))
    for path, why in skipped.items():
        shell.err_console.print(f"[yellow]skipped[/] {escape(why)}")
    from benchmark.evaluation.scoring import cases_index_path

    indexes = {}
    for result in results:
        for folder in results_folders(result.submission):
            if cases_index_path(folder.parent, suite).exists():
                indexes.setdefault(result.submission, cases_index_path(folder.parent, suite))
    path = write_report(results, out, suite=suite, metric=metric,
                        case_images=case_images_from_cases_index(indexes), seed=seed)
    shell.console.print(f"wrote {path}")


@app.command("leaderboard")
def leaderboard_command(
    results_dir: Optional[list[Path]] = typer.Option(None, "--results-dir", help="Extra folders with results files."),
    data_root: Optional[Path] = typer.Option(None, help="Data root, for the case view's image overlays."),
    port: int = typer.Option(8501, help="Port to serve on."),
    address: str = typer.Option("127.0.0.1", help="Address to listen on."),
) -> None:
    """Start the Streamlit leaderboard over the built-in reference results and the workspace's (each row marked
    by where it comes from); never writes."""
    import importlib.util
    import subprocess

    spec = importlib.util.find_spec("leaderboard")
    if spec is None or spec.origin is None:
        fail("the leaderboard package is not installed (reinstall cordbench: `pip install .`)")
    app_path = Path(spec.origin).parent / "app.py"
    command = [sys.executable, "-m", "streamlit", "run", str(app_path), "--server.headless", "true",
               "--server.address", address, "--server.port", str(port), "--browser.gatherUsageStats", "false", "--"]
    for folder in default_results_roots() + list(results_dir or []):
        command += ["--results-dir", str(folder)]
    if data_root:
        command += ["--data-root", str(data_root)]
    shell.console.print(f"leaderboard on http://{address}:{port}  (Ctrl-C to stop)")
    from benchmark import workspace

    active = workspace.active()
    if active is not None:  # `--workspace DIR` holds in this process only: the app reads the suites' splits there
        os.environ[workspace.ENV_WORKSPACE] = str(active.root)
    if os.name == "posix":
        # become the server: a SIGTERM to this process (a supervisor, `kill PID`) then stops Streamlit itself
        # instead of leaving it running as an orphan
        sys.stdout.flush()
        os.execv(sys.executable, command)
    raise typer.Exit(subprocess.call(command))
