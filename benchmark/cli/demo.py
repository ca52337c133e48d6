"""The seed experiment end to end."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional
import typer

from benchmark.cli import shell
from benchmark.cli.shell import NATIVE_KERNELS_HELP, app, use_kernels
from benchmark.cli.training import EPOCHS_HELP
from benchmark.cli.training import ITERATIONS_HELP
from benchmark.cli.training import AUGMENTATION_HELP
from benchmark.cli.training import POSTPROCESSING_HELP
from benchmark.cli.training import _check_recipe_options


@app.command("demo")
def demo_command(
    suite: str = typer.Option("synthetic", "--suite", "-s", help="synthetic (embedded, generated here) or a real suite."),
    data_root: Optional[Path] = typer.Option(None, help="Where the suite's datasets are (not needed for synthetic)."),
    work_dir: Optional[Path] = typer.Option(None, help="Where data, nnU-Net files and the report are written "
                                                       "(default: the workspace's work/)."),
    profile: str = typer.Option("quick", help="quick (2-core CPU, minutes) or full (nnU-Net defaults, GPU)."),
    seed: int = typer.Option(0, help="Training seed (the first one with --seeds)."),
    seeds: int = typer.Option(1, min=1, help="Train every model with this many seeds (seed, seed+1, ...) and give "
                                             "the seed-aware verdict; 1 (default) prints a single-seed verdict."),
    device: Optional[str] = typer.Option(None, help="cpu | cuda (default: GPU when present)."),
    epochs: Optional[int] = typer.Option(None, help=EPOCHS_HELP),
    iterations: Optional[int] = typer.Option(None, help=ITERATIONS_HELP),
    augmentation: Optional[str] = typer.Option(None, help=AUGMENTATION_HELP),
    postprocessing: Optional[str] = typer.Option(None, help=POSTPROCESSING_HELP),
    workers: Optional[int] = typer.Option(None, min=1, help="Models trained (and scoring units run) at once, one "
                                                            "thread each (default: one per CPU core; 1 on a GPU)."),
    native_kernels: bool = typer.Option(False, "--native-kernels", help=NATIVE_KERNELS_HELP),
) -> None:
    """Run the seed experiment end to end: data, splits, training sets, 1 aggregated + N specific models,
    scores on every in-domain and OOD test split, comparison table, HTML report.

    Re-running reuses everything already done; after Ctrl-C, re-run to continue.
    """
    from benchmark.demo import run_demo

    use_kernels(native_kernels)
    _check_recipe_options(augmentation, postprocessing)
    started = time.perf_counter()
    _results, report, timings = run_demo(suite_id=suite, data_root=data_root, work_dir=work_dir, profile=profile,
                                         seed=seed, seeds=seeds, device=device, epochs=epochs, iterations=iterations,
                                         augmentation=augmentation, postprocessing=postprocessing, console=shell.console,
                                         workers=workers)
    shell.console.print(f"[bold green]done[/] in {time.perf_counter() - started:.0f} s: "
                  + ", ".join(f"{name.split('. ', 1)[0]}) {seconds:.0f} s" for name, seconds in timings.steps.items()))
