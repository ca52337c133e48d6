"""Commands of the training stage: nnU-Net training sets (convert) and the baselines (train)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional
import typer
from rich.table import Table
from benchmark.errors import CordbenchError

from benchmark.cli import shell
from benchmark.cli.shell import NATIVE_KERNELS_HELP, app, fail, parse_overrides, use_kernels
from benchmark.cli.evaluation import _report_request, interrupted


@app.command("convert")
def convert_command(
    suite: str = typer.Option(..., "--suite", "-s", help="Suite whose in-domain TRAIN splits become training sets."),
    data_root: Optional[Path] = typer.Option(None, help="Folder holding one sub-folder per dataset."),
    out: Optional[Path] = typer.Option(None, envvar="nnUNet_raw", help="nnU-Net raw folder (default: $nnUNet_raw, else the workspace's work/nnUNet_raw)."),
    only: Optional[str] = typer.Option(None, help="aggregated | specific (default: both)."),
    with_test: bool = typer.Option(True, help="Also write imagesTs/labelsTs from the TEST splits."),
    base_id: Optional[int] = typer.Option(None, help="First nnU-Net dataset number (default: synthetic 500, real-mini 520, spinalcord-v1 540)."),
    dataset_dir: Optional[list[str]] = typer.Option(None, "--dataset-dir", help="ID=PATH (repeatable)."),
    workers: Optional[int] = typer.Option(None, help="Parallel processes (default: all cores)."),
) -> None:
    """Write nnU-Net v2 raw datasets: one aggregated + one per in-domain dataset, from the fixed train splits.

    Sources are only read. Images and masks are reoriented to RAS+, masks binarized at 0.5 into new files.
    Cases that cannot be used are skipped and listed with the reason; re-running skips unchanged cases.
    """
    from benchmark import workspace
    from benchmark.training.convert import convert_suite

    if only not in (None, "aggregated", "specific"):
        fail("--only must be 'aggregated' or 'specific'")
    out = out or workspace.require("`cordbench convert`").nnunet_raw
    report = convert_suite(suite, data_root=data_root, out=out, only=only, with_test=with_test, base_id=base_id,
                           overrides=parse_overrides(dataset_dir), workers=workers)
    print_convert_report(report)


def print_convert_report(report) -> None:
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for outcome in report.outcomes:
        cell = counts.setdefault((outcome.dataset, outcome.part), {"converted": 0, "unchanged": 0, "skipped": 0})
        cell[outcome.status] += 1
    table = Table(title=f"convert {report.suite} (benchmark version {report.benchmark_version})")
    for column in ("dataset", "split", "converted", "unchanged", "skipped"):
        table.add_column(column)
    for (dataset_id, part), cell in sorted(counts.items()):
        table.add_row(dataset_id, part, str(cell["converted"]), str(cell["unchanged"]), str(cell["skipped"]))
    shell.console.print(table)
    for outcome in report.skipped:
        shell.console.print(f"  [yellow]skipped[/] {outcome.case_id}: {outcome.reason}")
    for dataset in report.datasets:
        shell.console.print(f"  {dataset.kind:10s} {dataset.folder}  train={dataset.num_training} test={dataset.num_test}")


EPOCHS_HELP = "Override the number of epochs (quick: the suite's recipe, else 40)."


ITERATIONS_HELP = "Override the iterations per epoch (quick: the suite's recipe, else 12)."


AUGMENTATION_HELP = ("default: nnU-Net's data augmentation; da5: nnU-Net's stronger DA5 variant (about 15% slower per "
                     "iteration; see docs/nnunet.md). Default: the suite's quick recipe, else default.")


POSTPROCESSING_HELP = ("Declared in each registered submission and applied when it is scored: none, or "
                       "largest-component (keep the largest 3D connected component). Default: the suite's quick "
                       "recipe, else none.")


def _check_recipe_options(augmentation: str | None, postprocessing: str | None) -> None:
    from typing import get_args

    from benchmark.data.registry import Augmentation, Postprocessing

    for option, value, allowed in (("--augmentation", augmentation, get_args(Augmentation)),
                                   ("--postprocessing", postprocessing, get_args(Postprocessing))):
        if value is not None and value not in allowed:
            fail(f"{option} must be one of {', '.join(allowed)}, got {value!r}")


def parse_seeds(value: str | None) -> list[int] | None:
    """``"0,1,2"`` -> [0, 1, 2]; None stays None."""
    if value is None:
        return None
    try:
        listed = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        fail(f"--seeds expects comma-separated non-negative integers, got {value!r}")
    if not listed or any(seed < 0 for seed in listed) or len(set(listed)) != len(listed):
        fail(f"--seeds expects distinct non-negative integers, got {value!r}")
    return listed


@app.command("train")
def train_command(
    suite: str = typer.Option(..., "--suite", "-s", help="Suite whose converted training sets to train on."),
    raw: Optional[Path] = typer.Option(None, "--raw", envvar="nnUNet_raw", help="nnU-Net raw folder written by `convert` (default: $nnUNet_raw, else the workspace's work/nnUNet_raw)."),
    work_dir: Optional[Path] = typer.Option(None, help="Where nnU-Net's preprocessed data and results go (default: the workspace's work/nnunet)."),
    profile: str = typer.Option("quick", help="quick: reduced 2D plan for a CPU; full: nnU-Net defaults (GPU)."),
    only: Optional[str] = typer.Option(None, help="aggregated | specific (default: both)."),
    dataset: Optional[list[str]] = typer.Option(None, "--dataset", help="Train only the specific model(s) of these datasets."),
    seed: int = typer.Option(0, help="Random seed of the training runs."),
    seeds: Optional[str] = typer.Option(None, help="Comma-separated seeds, e.g. 0,1,2: train and register every model "
                                                   "once per seed, as one family (seed N>0 is named <family>-seed<N>). "
                                                   "Overrides --seed."),
    device: Optional[str] = typer.Option(None, help="cpu | cuda (default: GPU when present, else CPU)."),
    epochs: Optional[int] = typer.Option(None, help=EPOCHS_HELP),
    iterations: Optional[int] = typer.Option(None, help=ITERATIONS_HELP),
    configuration: Optional[str] = typer.Option(None, help="Override the nnU-Net configuration (e.g. 2d, 3d_fullres)."),
    fold: str = typer.Option("all", help="nnU-Net fold (0-4 or all)."),
    base_id: Optional[int] = typer.Option(None, help="First nnU-Net dataset number used by `convert`."),
    augmentation: Optional[str] = typer.Option(None, help=AUGMENTATION_HELP),
    postprocessing: Optional[str] = typer.Option(None, help=POSTPROCESSING_HELP),
    name: Optional[str] = typer.Option(
        None, "--name", help="Submission name when one model is trained, else the prefix of NAME-aggregated and "
                             "NAME-<dataset> (default: nnunet-<suite>-<model>-<profile>)."),
    replace: bool = typer.Option(False, "--replace", help="Register over a workspace submission of the same name; its "
                                                          "folder is moved aside (submissions/.replaced/NAME.<time>)."),
    executor: str = typer.Option("local", help="local (a process pool: --workers models train at once), or a "
                                               "SLURM profile: slurm, or a name under executors: in cordbench.yaml."),
    workers: Optional[int] = typer.Option(None, help="local: models trained at once (default: cores // --threads)."),
    threads: int = typer.Option(1, help="Torch/OpenMP threads per model."),
    no_wait: bool = typer.Option(False, "--no-wait", help="SLURM: submit and return (see `cordbench status`)."),
    native_kernels: bool = typer.Option(False, "--native-kernels", help=NATIVE_KERNELS_HELP),
) -> None:
    """Train the specific models and the aggregated model with nnU-Net, and register each as a submission.

    Interrupt and re-run to continue from the last checkpoint. Weights go to the workspace's
    submissions/<name>/model/; the manifest records their sha256, the exact training subjects, the CPU kernels
    (pinned-avx2 by default: the same weights on every x86-64 CPU with AVX2) and how to reproduce them. A built-in reference submission's name is refused; a workspace one's needs --replace.
    """
    from benchmark import workspace
    from benchmark.training.baselines import BaselineError

    use_kernels(native_kernels)
    active = workspace.require("`cordbench train`")
    raw = raw or active.nnunet_raw
    work_dir = work_dir or active.nnunet_work
    if profile not in ("quick", "full"):
        fail("--profile must be quick or full")
    if only not in (None, "aggregated", "specific"):
        fail("--only must be 'aggregated' or 'specific'")
    _check_recipe_options(augmentation, postprocessing)
    from benchmark.execution.api import run_request
    from benchmark.execution.planner import plan_train_request
    from benchmark.data.submissions import load_submission

    plan = None
    try:
        plan, units = plan_train_request(
            suite, raw_root=raw, work_dir=work_dir, profile=profile, only=only, datasets=dataset, seed=seed,
            device=device, epochs=epochs, iterations=iterations, configuration=configuration, fold=fold,
            base_id=base_id, augmentation=augmentation, postprocessing=postprocessing, num_threads=threads,
            name=name, replace=replace, seeds=parse_seeds(seeds))
        outcome = run_request(plan, units, executor=executor, workers=workers, threads=threads, wait=not no_wait)
    except (BaselineError, CordbenchError) as error:
        fail(str(error))
    except KeyboardInterrupt:
        interrupted(plan)
    for group, uids in outcome.plan.groups.items():
        if outcome.store.is_done(uids[0]):
            submission = load_submission(Path(outcome.store.output(uids[0])["submission"]))
            shell.console.print(f"registered {submission.name} (sha256 {submission.model.sha256[:12]}, "
                          f"{submission.training.training_time_s:.0f} s; nnU-Net log: "
                          f"{Path(work_dir) / 'logs' / (group + '.log')})")
    _report_request(outcome, "dice")
