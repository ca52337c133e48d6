"""The seed experiment end to end: data -> splits -> training sets -> baselines -> scores -> table -> report.

Every step reuses what is already done (synthetic data stamped by seed, conversion by checksum, training by
checkpoint, inference by prediction cache), so a second run only re-reads and re-scores, and an interrupted
run continues where it stopped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rich.console import Console
from rich.table import Table

from benchmark.data.registry import load_suite
from benchmark.errors import CordbenchError
from benchmark.evaluation.results import ResultsFile

class DemoError(CordbenchError, ValueError):
    """The demo cannot run on this input (no data root for a real suite, data that differ from the split)."""


def demo_name(suite_id: str, profile: str) -> str:
    """Prefix of the models the demo trains: never a built-in reference submission's name."""
    return f"demo-{suite_id}-{profile}"


@dataclass
class DemoTimings:
    steps: dict[str, float] = field(default_factory=dict)

    def run(self, name: str, console: Console, action: Callable):
        console.rule(f"[bold]{name}")
        started = time.perf_counter()
        value = action()
        self.steps[name] = time.perf_counter() - started
        console.print(f"[dim]{name}: {self.steps[name]:.1f} s[/]")
        return value


def run_demo(
    *,
    suite_id: str = "synthetic",
    data_root: Path | None = None,
    work_dir: Path | None = None,
    profile: str = "quick",
    seed: int = 0,
    seeds: int = 1,
    device: str | None = None,
    epochs: int | None = None,
    iterations: int | None = None,
    augmentation: str | None = None,
    postprocessing: str | None = None,
    console: Console | None = None,
    submissions_root: Path | None = None,
    workers: int | None = None,
) -> tuple[list[ResultsFile], Path, DemoTimings]:
    """Run the whole experiment on one suite; return the results, the report path and step timings.

    Everything is written into the active workspace (``work_dir`` defaults to its ``work/``; the models are
    registered in its ``submissions/`` as ``demo-<suite>-<profile>-*``, replacing the demo's earlier models).
    ``seeds`` models of each kind are trained (seeds ``seed .. seed + seeds - 1``) and the verdict averages over
    them (:mod:`benchmark.analysis.seeds`); with one seed the verdict is printed as single-seed.

    Training and scoring run as work units on the local executor (:mod:`benchmark.execution`): ``workers`` models
    train at once, one thread each (default: one per core on CPU, one at a time on a GPU), and scoring units
    (model x dataset x shard of cases) run on the same pool."""
    from benchmark.training.convert import convert_suite
    from benchmark.analysis.report import write_report
    from benchmark.data.splits import load_split, verify_split

    console = console or Console()
    timings = DemoTimings()
    suite = load_suite(suite_id)
    from benchmark import workspace

    work_dir = Path(work_dir).resolve() if work_dir is not None else workspace.require("the demo").work_dir
    if suite_id == "synthetic" and data_root is None:
        data_root = work_dir / "data" / "synthetic"
    if data_root is None:
        raise DemoError(f"suite {suite_id!r} needs --data-root (where its datasets are)")

    if suite_id == "synthetic":
        from benchmark.data.synth import generate_suite

        timings.run("1. generate the synthetic suite", console, lambda: generate_suite(data_root, seed=0))
    split = load_split(suite_id)

    def verify():
        report = verify_split(split, data_root=data_root)
        if not report.ok:
            problems = {name: values for name, values in {**report.missing_subjects, **report.changed_files}.items()
                        if values}
            raise DemoError(f"the data under {data_root} differ from the split {split.version}: {problems}")
        console.print(f"data match split {split.version} ({', '.join(report.checked)})")

    timings.run("2. verify the data against the fixed split", console, verify)
    raw_root = work_dir / "nnUNet_raw" / suite_id
    timings.run("3. convert the train splits to nnU-Net datasets", console,
                lambda: convert_suite(suite_id, data_root=data_root, out=raw_root, progress=True))
    workers = demo_workers(device, workers)
    submissions = timings.run(
        f"4. train 1 aggregated + {len(suite.ids('in-domain'))} specific nnU-Net models ({profile}, "
        f"{seeds} seed{'s' if seeds > 1 else ''}, {workers} at once)", console,
        lambda: train_models(suite_id, raw_root=raw_root, nnunet_dir=work_dir / "nnunet" / suite_id, profile=profile,
                             seeds=[seed + offset for offset in range(seeds)], device=device, epochs=epochs,
                             iterations=iterations, augmentation=augmentation, postprocessing=postprocessing,
                             submissions_root=submissions_root, name=demo_name(suite_id, profile), workers=workers,
                             work=work_dir))

    def score_all() -> list[ResultsFile]:
        return score_models([submission.name for submission in submissions], suite_id, data_root=data_root,
                            device=device, submissions_root=submissions_root, workers=workers, work=work_dir)

    results = timings.run("5. score every model on every test split", console, score_all)
    print_comparison(results, suite_id, console, seed=seed)

    def report() -> Path:
        from benchmark.analysis.report import case_images_from_cases_index

        from benchmark.evaluation.scoring import cases_index_path

        from benchmark.data.submissions import output_dir

        indexes = {submission.name: cases_index_path(output_dir(submission), suite_id) for submission in submissions}
        return write_report(results, work_dir / "report" / f"{suite_id}.html", suite=suite_id,
                            case_images=case_images_from_cases_index(indexes), seed=seed)

    report_path = timings.run("6. write the report", console, report)
    console.print(f"report: {report_path}")
    console.print("leaderboard: cordbench leaderboard   (then open http://localhost:8501)")
    return results, report_path, timings


def demo_workers(device: str | None, workers: int | None) -> int:
    """Units run at once: as asked, else one at a time on a GPU (five trainings would share its memory), else one
    per core (each model trains on one thread, as a serial run does, so the weights are the same)."""
    if workers is not None:
        return max(1, workers)
    from benchmark.training.nnunet.train import resolve_device
    from benchmark.execution.local import default_workers

    return 1 if resolve_device(device).type == "cuda" else default_workers(1)


def _run_units(plan, units, *, workers: int, work: Path, what: str):
    """Run a request's units on the local pool; a failed unit stops the demo with its reason and log."""
    from benchmark.execution.api import run_request
    from benchmark.execution.runner import failure_lines

    outcome = run_request(plan, units, executor="local", workers=workers, threads=1, work=work)
    problems = failure_lines(outcome.report, outcome.store)
    if problems or outcome.incomplete:
        raise DemoError(f"{what}: " + "; ".join(problems or [f"{group} not complete" for group in outcome.incomplete])
                        + " (re-run the demo to redo only what is missing)")
    return outcome


def train_models(suite_id: str, *, raw_root: Path, nnunet_dir: Path, profile: str, seeds: list[int],
                 device: str | None, epochs: int | None, iterations: int | None, augmentation: str | None,
                 postprocessing: str | None, submissions_root: Path | None, name: str, workers: int,
                 work: Path) -> list:
    """Train and register the suite's baselines (one work unit per model and seed; done units are skipped)."""
    from benchmark.data.submissions import load_submission
    from benchmark.execution.planner import plan_train_request

    plan, units = plan_train_request(suite_id, raw_root=raw_root, work_dir=nnunet_dir, profile=profile, seeds=seeds,
                                     device=device, epochs=epochs, iterations=iterations, augmentation=augmentation,
                                     postprocessing=postprocessing, submissions_root=submissions_root, name=name,
                                     replace=True)
    outcome = _run_units(plan, units, workers=workers, work=work, what="training")
    return [load_submission(Path(outcome.store.output(uids[0])["submission"])) for uids in plan.groups.values()]


def score_models(names: list[str], suite_id: str, *, data_root: Path, device: str | None,
                 submissions_root: Path | None, workers: int, work: Path) -> list[ResultsFile]:
    """Score every model on every test split (work units: model x dataset x shard), merged into results files."""
    from benchmark.evaluation.results import load_results
    from benchmark.execution.planner import plan_score_request

    plan, units = plan_score_request(names, suite_id, data_root=data_root, device=device,
                                     submissions_root=submissions_root)
    outcome = _run_units(plan, units, workers=workers, work=work, what="scoring")
    return [load_results(outcome.written[group]) for group in plan.groups]


def _short(name: str, suite_id: str) -> str:
    for prefix in (f"nnunet-{suite_id}-", f"demo-{suite_id}-"):
        name = name.removeprefix(prefix)
    return name


def print_comparison(results: list[ResultsFile], suite_id: str, console: Console, *, seed: int = 0) -> None:
    """Dice per dataset and model (mean [95% CI]), then aggregated vs best specific with paired p-values."""
    from benchmark.analysis.labels import PEOPLE_SCANS, format_ci, format_p, format_people
    from benchmark.analysis.report import comparison_table, model_means, report_cases

    in_domain = load_suite(suite_id).ids("in-domain")
    cases = report_cases(results, in_domain)
    means = model_means(cases, metric="dice", seed=seed)
    models = list(dict.fromkeys(means["submission"]))
    table = Table(title=f"Dice per dataset on {suite_id} (mean over people [95% bootstrap CI resampling people])")
    table.add_column("dataset")
    table.add_column("role")
    table.add_column(PEOPLE_SCANS, justify="right")
    for model in models:
        table.add_column(_short(model, suite_id), justify="right")
    for (dataset, role), rows in means.groupby(["dataset", "suite_role"], sort=False):
        cells = {row.submission: format_ci(row.mean, row.low, row.high, "dice") for row in rows.itertuples()}
        widest = rows.sort_values(["people", "scans"]).iloc[-1]
        table.add_row(dataset, role, format_people(widest["people"], widest["scans"]),
                      *(cells.get(model, "-") for model in models))
    console.print(table)
    comparison = comparison_table(cases, metric="dice", seed=seed)
    versus = Table(title="Aggregated minus reference specific model (paired per person)")
    for column in ("dataset", "role", "reference", PEOPLE_SCANS, "aggregated", "reference mean",
                   "difference [95% CI]", "p (Holm)", "verdict"):
        versus.add_column(column)
    for row in comparison.itertuples():
        versus.add_row(row.dataset, row.suite_role, _short(row.reference, suite_id),
                       format_people(row.people, row.scans),
                       f"{row.aggregated_mean:.3f}", f"{row.reference_mean:.3f}",
                       format_ci(row.difference, row.difference_low, row.difference_high, "dice", signed=True),
                       format_p(row.p_holm), row.verdict)
    console.print(versus)
    print_seed_comparison(results, suite_id, console, seed=seed)


def print_seed_comparison(results: list[ResultsFile], suite_id: str, console: Console, *, seed: int = 0) -> None:
    """The seed-aware verdict: seed-averaged paired difference, its CI and the between-seed spread."""
    from benchmark.analysis.labels import PEOPLE_SCANS, format_ci, format_people
    from benchmark.analysis.report import report_cases
    from benchmark.analysis.seeds import families, is_single_seed, seed_comparison_table

    cases = report_cases(results, load_suite(suite_id).ids("in-domain"))
    table = seed_comparison_table(cases, families(results), metric="dice", seed=seed)
    seeds = Table(title="Seed-aware verdict: aggregated minus reference family, averaged over seeds")
    for column in ("dataset", "role", PEOPLE_SCANS, "seeds", "difference [95% CI]", "seed spread", "verdict"):
        seeds.add_column(column)
    for row in table.itertuples():
        spread = "unknown" if row.seed_spread != row.seed_spread else f"{row.seed_spread:.3f}"
        seeds.add_row(row.dataset, row.suite_role, format_people(row.people, row.scans),
                      f"{row.aggregated_seeds}/{row.reference_seeds}",
                      format_ci(row.difference, row.difference_low, row.difference_high, "dice", signed=True), spread,
                      row.verdict)
    console.print(seeds)
    if is_single_seed(table):
        console.print("[yellow]single-seed verdict:[/] one training seed per model; retraining moves per-dataset "
                      "means by more than many of these differences. Run `cordbench demo --seeds 3` for the full "
                      "protocol (a verdict only where the difference exceeds the between-seed spread).")
