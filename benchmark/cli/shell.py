"""The shell every command shares: the Typer app and sub-apps, the one error handler, the consoles."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.console import Console
from rich.markup import escape

from benchmark import __version__
from benchmark.errors import CordbenchError

class _State:
    debug = False


STATE = _State()


def handle_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """The CLI's one error handler: a CordbenchError (a user-facing problem) is printed as one line naming the
    file and the problem, exit 2 (or the error's own code), no traceback unless --debug. Anything else is a bug
    and keeps its traceback."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except CordbenchError as error:
            if STATE.debug:
                raise
            err_console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False)
            raise typer.Exit(error.exit_code) from None
        except OSError as error:
            # a file system fault the user can cause (read-only or full disk, a file where a folder belongs, a
            # name too long): the file and the system's reason in one line, not a traceback
            if STATE.debug:
                raise
            err_console.print(f"[bold red]error:[/] {escape(describe_os_error(error))}", highlight=False)
            raise typer.Exit(2) from None

    return run


def describe_os_error(error: OSError) -> str:
    """'<file>: <the system's reason>' (both files of a rename), with what to check for the common causes."""
    import errno as codes

    names = [str(name) for name in (error.filename, error.filename2) if name is not None]
    reason = error.strerror or str(error)
    hint = {codes.ENOSPC: "free some space or point TMPDIR elsewhere", codes.EROFS: "the file system is read-only",
            codes.EACCES: "check the permissions", codes.ENOTDIR: "a file stands where a folder is expected",
            codes.ENAMETOOLONG: "a name is longer than the file system allows"}.get(error.errno)
    return f"{' -> '.join(names) or 'file system'}: {reason}" + (f" ({hint})" if hint else "")


class CordbenchTyper(typer.Typer):
    """A Typer whose every command goes through :func:`handle_errors`."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        register = super().command(*args, **kwargs)

        def decorator(function: Callable[..., Any]) -> Callable[..., Any]:
            register(handle_errors(function))
            return function

        return decorator


app = CordbenchTyper(
    help=(
        "cordbench: an open benchmark for spinal cord MRI segmentation.\n\n"
        "Typical flow: `cordbench synth` (or fetch real data) -> `splits verify` -> `convert` -> `train` -> "
        "`score` -> `leaderboard` / `gate`. `cordbench demo` runs all of it on the embedded synthetic suite."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
datasets_app = CordbenchTyper(help="The registered datasets (metadata only).", no_args_is_help=True)
splits_app = CordbenchTyper(help="Fixed, versioned train/test splits.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")
app.add_typer(splits_app, name="splits")

# Piped or logged output gets wide tables instead of rich's 80-column default.
console = Console() if sys.stdout.isatty() else Console(width=200)
err_console = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, width=200)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PUBLISHED_ROOT = REPO_ROOT.parent / "shared" / "data" / "splits"
RUNTIME_HELP = ("What runs an nnU-Net network: auto (OpenVINO on CPU when installed, else ONNX Runtime, else "
                "PyTorch; PyTorch on CUDA) | openvino | onnxruntime | torch. Default: the manifest's inference.runtime.")
THREADS_HELP = ("Inference threads (runtime, torch, nnU-Net's resampling). Default: the cores available to this "
                "process. Masks are byte-identical on re-run for the same runtime and thread count.")


def check_runtime(runtime: str | None) -> None:
    from benchmark.models.runtime.selection import RUNTIMES

    if runtime is not None and runtime not in RUNTIMES:
        fail(f"--runtime: unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")


NATIVE_KERNELS_HELP = ("Let torch use this CPU's fastest kernels (e.g. AVX-512) instead of the pinned AVX2 ones, and "
                       "OpenVINO for nnU-Net inference: faster, but the weights and scores then depend on the CPU "
                       "and are marked native-<isa> in the manifest and results. Same as CORDBENCH_CPU_KERNELS=native "
                       "(docs/reproducibility.md).")


def use_kernels(native: bool) -> None:
    """Switch this process (and the workers it starts) to native CPU kernels when asked; the app's callback has
    already applied the environment's choice (pinned by default) before anything loaded torch."""
    if native:
        from benchmark import kernels

        kernels.apply("native")


NO_SANDBOX_HELP = ("Run command/python submissions WITHOUT the bubblewrap sandbox (their code can then read and "
                   "write whatever this user can); only where bwrap is unavailable. Results are marked `sandbox: none`.")


def fail(message: str, code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def parse_overrides(values: list[str] | None) -> dict[str, Path]:
    """``ID=PATH`` pairs -> {ID: PATH}."""
    overrides: dict[str, Path] = {}
    for value in values or []:
        dataset_id, sep, path = value.partition("=")
        if not sep or not dataset_id or not path:
            fail(f"--dataset-dir expects ID=PATH, got {value!r}")
        overrides[dataset_id] = Path(path)
    return overrides


def version_callback(value: bool) -> None:
    if value:
        console.print(f"cordbench {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: bool = typer.Option(False, "--version", callback=version_callback, is_eager=True,
                                 help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", envvar="CORDBENCH_DEBUG",
                               help="Show the full traceback of an error instead of its one-line message."),
    workspace_dir: Optional[Path] = typer.Option(
        None, "--workspace", "-w",
        help="Workspace folder (made by `cordbench init`). Default: $CORDBENCH_WORKSPACE, else the current "
             "directory when it holds cordbench.yaml. Everything cordbench writes goes there."),
) -> None:
    """cordbench: benchmark spinal cord segmentation models, in-domain and out-of-domain."""
    STATE.debug = debug
    from benchmark import kernels, workspace

    try:  # before any command loads torch: every process cordbench starts computes with the same kernels
        kernels.apply()
    except kernels.KernelSettingError as error:
        fail(str(error))

    try:
        workspace.use(workspace_dir)
    except workspace.WorkspaceError as error:
        fail(str(error))


def main(argv: list[str] | None = None) -> None:
    app(args=argv, prog_name="cordbench")
