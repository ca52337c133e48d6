"""The `cordbench` command line. Each command is a thin shell over one stage's public API."""

from __future__ import annotations

import functools
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

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

    return run


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

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PUBLISHED_ROOT = REPO_ROOT.parent / "shared" / "data" / "splits"
RUNTIME_HELP = ("What runs an nnU-Net network: auto (OpenVINO on CPU when installed, else ONNX Runtime, else "
                "PyTorch; PyTorch on CUDA) | openvino | onnxruntime | torch. Default: the manifest's inference.runtime.")
THREADS_HELP = ("Inference threads (runtime, torch, nnU-Net's resampling). Default: the cores available to this "
                "process. Masks are byte-identical on re-run for the same runtime and thread count.")


def check_runtime(runtime: str | None) -> None:
    from benchmark.models.runtime.selection import RUNTIMES

    if runtime is not None and runtime not in RUNTIMES:
        fail(f"--runtime: unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")


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
    from benchmark import workspace

    try:
        workspace.use(workspace_dir)
    except workspace.WorkspaceError as error:
        fail(str(error))


@app.command("init")
def init_command(
    folder: Path = typer.Argument(Path("."), help="Folder to make a workspace of (created when missing)."),
) -> None:
    """Create a workspace: cordbench.yaml (commented), datasets/, suites/, splits/, submissions/, work/, README.md.

    Existing files are kept, so running it again is harmless.
    """
    from benchmark.workspace import init_workspace

    created = init_workspace(folder)
    console.print(f"workspace ready: {created.root}")
    console.print("next: `cordbench datasets add ID --root BIDS_FOLDER` (see README.md there)")


@app.command("schema")
def schema_command(
    kind: str = typer.Argument(..., help="dataset | suite | submission | workspace"),
) -> None:
    """Print the JSON Schema of a dataset, suite or submission file (or cordbench.yaml), for editors."""
    from benchmark.data.schemas import json_schema

    typer.echo(json.dumps(json_schema(kind), indent=2))


# ---------------------------------------------------------------- datasets
@datasets_app.command("list")
def datasets_list() -> None:
    """List every dataset (built-in and the workspace's) with where it comes from, access, contrasts and source.

    An invalid workspace file is listed with its reason and does not hide the others (exit 1).
    """
    from benchmark.data.registry import registry_entries

    entries = registry_entries("datasets")
    suites = registry_entries("suites")
    membership: dict[str, list[str]] = {}
    for entry in suites:
        for member in entry.item.datasets if entry.item else []:
            membership.setdefault(member.id, []).append(f"{entry.id}:{member.role}")
    table = Table(title="Registered datasets")
    for column in ("id", "from", "access", "contrasts", "source", "licence", "suites"):
        table.add_column(column)
    for entry in entries:
        if entry.item is None:
            continue
        dataset = entry.item
        source = dataset.source
        pinned = source.openneuro_id and f"{source.openneuro_id}@{source.openneuro_version}" or (
            f"{source.url}@{source.revision}" if source.url else source.kind)
        table.add_row(dataset.id, entry.origin, dataset.access.level, ", ".join(dataset.contrasts), pinned,
                      dataset.licence, ", ".join(membership.get(dataset.id, [])))
    console.print(table)
    suite_table = Table(title="Suites")
    for column in ("id", "from", "in-domain", "out-of-domain"):
        suite_table.add_column(column)
    for entry in suites:
        if entry.item is not None:
            suite_table.add_row(entry.id, entry.origin, ", ".join(entry.item.ids("in-domain")),
                                ", ".join(entry.item.ids("ood")))
    console.print(suite_table)
    invalid = [entry for entry in entries + suites if entry.error]
    for entry in invalid:
        err_console.print(f"[red]invalid {entry.kind[:-1]}[/] {entry.id} ({entry.origin}): {entry.error}", markup=True,
                          highlight=False)
    if invalid:
        raise typer.Exit(1)


@datasets_app.command("add")
def datasets_add(
    dataset_id: str = typer.Argument(..., help="Id of the new dataset (lower case, digits, dashes)."),
    root: Path = typer.Option(..., "--root", help="The dataset's BIDS folder (only read)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the draft without writing it."),
    suite: Optional[str] = typer.Option(None, "--suite", help="Also draft a suite of this id with the dataset "
                                                              "in-domain (test fraction 0.2)."),
) -> None:
    """Draft a dataset file into the workspace by inspecting a BIDS folder; print what was guessed, validate it
    and index the folder with it."""
    from benchmark.data.bids_index import index_dataset
    from benchmark.data.drafting import dataset_yaml, draft_dataset
    from benchmark.data.registry import workspace_file
    from benchmark.io import atomic_write_text

    target = None if dry_run else workspace_file("datasets", dataset_id)
    suite_target = None if dry_run or suite is None else workspace_file("suites", suite)
    dataset, guesses = draft_dataset(dataset_id, root)
    index = index_dataset(root, dataset)
    for line in guesses.lines():
        console.print(line, markup=False, highlight=False)
    text = dataset_yaml(dataset, root)
    console.print(f"valid; indexed with it: {len(index.subjects())} subjects, {len(index.pairs)} image/mask pairs, "
                  f"{len(index.images_without_label)} images without mask, {len(index.not_downloaded())} files not "
                  "downloaded")
    if target is None:
        typer.echo(text)
        return
    atomic_write_text(target, text)
    console.print(f"wrote {target} (check licence, citation and access; docs/registry.md)")
    if suite_target is not None:
        from benchmark.data.drafting import suite_yaml

        atomic_write_text(suite_target, suite_yaml(suite, dataset_id))
        console.print(f"wrote {suite_target}; next: `cordbench splits make --suite {suite}`")


@datasets_app.command("show")
def datasets_show(dataset_id: str = typer.Argument(..., help="A dataset id from `cordbench datasets list`.")) -> None:
    """Print one dataset's full metadata as YAML-like JSON, and the file it comes from."""
    from benchmark.data.registry import entry_path, load_dataset, origin_of_entry

    dataset = load_dataset(dataset_id)
    console.print_json(json.dumps(dataset.model_dump(mode="json")))
    console.print(f"from {origin_of_entry('datasets', dataset_id)}: {entry_path('datasets', dataset_id)}",
                  highlight=False)


# ---------------------------------------------------------------- index
@app.command("index")
def index_command(
    path: Path = typer.Argument(..., help="The dataset's BIDS folder."),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Registered dataset id (says which files are images and masks)."),
    image_glob: Optional[list[str]] = typer.Option(
        None, "--image-glob", help="Instead of --dataset: try this image glob on an unregistered folder (repeatable), "
                                   "e.g. 'sub-*/func/*_bold.nii.gz'."),
    label: Optional[str] = typer.Option(
        None, "--label", help="With --image-glob: the mask path template, e.g. "
                              "'derivatives/labels/{dir}/{stem}_seg-manual.nii.gz' (docs/registry.md)."),
    contrast: Optional[str] = typer.Option(None, help="With --image-glob: the contrast name (default: the suffix)."),
    sidecars: bool = typer.Option(False, help="Also read each image's sidecar JSON."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the full index as JSON to this file."),
    show: int = typer.Option(10, help="How many rows of each list to print."),
) -> None:
    """Find every image and its cord mask; report missing masks and content that is not downloaded.

    With --image-glob and --label instead of --dataset, try rules on a folder that is not registered; when nothing
    matches, say which patterns were tried and what files are there instead (exit 1).
    """
    from benchmark.data.bids_index import BidsIndexError, index_dataset
    from benchmark.io import atomic_write_json
    from benchmark.data.registry import RegistryError, load_dataset

    if (dataset is None) == (not image_glob):
        fail("give either --dataset ID or --image-glob GLOB with --label TEMPLATE")
    if image_glob and not label:
        fail("--image-glob needs --label (the mask path template)")
    if image_glob:
        from benchmark.data.drafting import try_rules

        trial = try_rules(path, image_glob, label, contrast)
        index, dataset = trial.index, "unregistered folder"
    else:
        index = index_dataset(path, load_dataset(dataset), with_sidecars=sidecars)
    not_downloaded = index.not_downloaded()
    contrasts: dict[str, int] = {}
    for case in index.pairs:
        contrasts[case.contrast] = contrasts.get(case.contrast, 0) + 1
    table = Table(title=f"{dataset}", caption=str(path))
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("subjects", str(len(index.subjects())))
    table.add_row("images", str(len(index.cases)))
    table.add_row("image/mask pairs", str(len(index.pairs)))
    for contrast, count in sorted(contrasts.items()):
        table.add_row(f"  pairs {contrast}", str(count))
    table.add_row("images without mask", str(len(index.images_without_label)))
    table.add_row("masks without image", str(len(index.labels_without_image)))
    table.add_row("files not downloaded", str(len(not_downloaded)))
    console.print(table)
    for case in index.images_without_label[:show]:
        console.print(f"  no mask: {case.image.path}")
    for label in index.labels_without_image[:show]:
        console.print(f"  no image: {label}")
    if not_downloaded:
        console.print(f"[yellow]{len(not_downloaded)} files are not downloaded[/] (git-annex pointers or broken "
                      "annex symlinks), e.g.:")
        for info in not_downloaded[:show]:
            console.print(f"  {info.state}: {info.path}")
        console.print(f"Fetch them with:\n  {index.fetch_command()}")
    if json_out:
        atomic_write_json(json_out, {
            "dataset": dataset, "root": str(path),
            "cases": [
                {"case_id": case.case_id, "subject": case.subject, "person": case.person, "session": case.session,
                 "contrast": case.contrast, "datatype": case.datatype, "entities": case.entities,
                 "image": case.image.__dict__, "label": case.label.__dict__ if case.label else None,
                 "participant": case.participant, "sidecar": case.sidecar}
                for case in index.cases],
            "labels_without_image": index.labels_without_image,
        })
        console.print(f"wrote {json_out}")
    if image_glob and not index.pairs:
        for line in trial.explain(show):
            err_console.print(line, markup=False, highlight=False)
        raise typer.Exit(1)


# ---------------------------------------------------------------- splits
@splits_app.command("make")
def splits_make(
    suite: str = typer.Option(..., "--suite", "-s", help="Suite id (synthetic, real-mini, spinalcord-v1)."),
    data_root: Optional[Path] = typer.Option(None, help="Folder holding one sub-folder per dataset."),
    dataset_dir: Optional[list[str]] = typer.Option(None, "--dataset-dir", help="ID=PATH for a dataset stored elsewhere (repeatable)."),
    published_root: Path = typer.Option(DEFAULT_PUBLISHED_ROOT, help="Folder of published split lists (mp2rage/...)."),
    out: Optional[Path] = typer.Option(None, help="Write here instead of the workspace's splits/<suite>.json."),
) -> None:
    """Make a suite's split file, or freeze the not-yet-frozen datasets of an existing one.

    Frozen datasets are never changed: if the data now give a different split, this refuses.
    """
    from benchmark.data.registry import RegistryError, load_suite
    from benchmark.data.splits import SplitError, load_split, make_split, split_path, workspace_split_path, write_split

    target = out or workspace_split_path(suite)
    existing = load_split(suite, target) if target.exists() else (
        load_split(suite) if split_path(suite).exists() else None)
    split = make_split(load_suite(suite), data_root=data_root, overrides=parse_overrides(dataset_dir),
                       published_root=published_root, existing=existing)
    write_split(split, target)
    _print_split(split)
    console.print(f"wrote {target} (benchmark version {split.version})")


def _print_split(split) -> None:
    table = Table(title=f"split {split.suite} (version {split.version})")
    for column in ("dataset", "role", "status", "train", "test", "files", "scored region"):
        table.add_column(column)
    for dataset_id, entry in split.datasets.items():
        table.add_row(dataset_id, entry.role, entry.status, str(len(entry.train)), str(len(entry.test)),
                      str(len(entry.files)), entry.scored_region)
    console.print(table)


@splits_app.command("show")
def splits_show(suite: str = typer.Option(..., "--suite", "-s")) -> None:
    """Print a suite's split: subjects per dataset and the benchmark version."""
    from benchmark.data.splits import SplitError, load_split, split_path

    _print_split(load_split(suite))
    console.print(f"from {split_path(suite)}")


@splits_app.command("verify")
def splits_verify(
    suite: str = typer.Option(..., "--suite", "-s", help="Suite id."),
    data_root: Optional[Path] = typer.Option(None, help="Folder holding one sub-folder per dataset."),
    dataset_dir: Optional[list[str]] = typer.Option(None, "--dataset-dir", help="ID=PATH (repeatable)."),
    only: Optional[list[str]] = typer.Option(None, help="Check only these datasets (repeatable)."),
) -> None:
    """Compare local data with the split: missing/extra subjects, missing/changed files. Exit 1 on any difference."""
    from benchmark.data.splits import SplitError, load_split, verify_split

    report = verify_split(load_split(suite), data_root=data_root, overrides=parse_overrides(dataset_dir), only=only)
    print_verify_report(report)
    if not report.checked:
        fail("nothing was checked: no dataset of the suite was found under the data root", code=1)
    if not report.ok:
        err_console.print("[bold red]the local data differ from the split[/]")
        raise typer.Exit(1)
    console.print("[green]local data match the split[/]")


def print_verify_report(report) -> None:
    """The table and list of differences `splits verify` and `score` print."""
    table = Table(title=f"verify {report.suite} (benchmark version {report.version})")
    for column in ("dataset", "missing subjects", "extra subjects", "missing files", "changed files", "extra files",
                   "masks off grid", "not downloaded"):
        table.add_column(column)
    for dataset_id in report.checked:
        cells = [report.missing_subjects[dataset_id], report.extra_subjects[dataset_id],
                 report.missing_files[dataset_id], report.changed_files[dataset_id], report.extra_files[dataset_id],
                 report.off_grid[dataset_id], report.not_downloaded[dataset_id]]
        table.add_row(dataset_id, *(str(len(cell)) for cell in cells))
    console.print(table)
    for dataset_id, why in report.not_checked.items():
        console.print(f"  not checked: {dataset_id}: {why}")
    for title, problem in (("missing subject", report.missing_subjects), ("extra subject", report.extra_subjects),
                           ("missing file", report.missing_files), ("changed file", report.changed_files),
                           ("extra file", report.extra_files), ("mask off its image's grid", report.off_grid)):
        for dataset_id, items in problem.items():
            for item in items[:20]:
                console.print(f"  [red]{title}[/] {dataset_id}: {item}")


@splits_app.command("ceilings")
def splits_ceilings(
    suite: str = typer.Option(..., "--suite", "-s", help="Suite id."),
    data_root: Optional[Path] = typer.Option(None, help="Folder holding one sub-folder per dataset."),
    dataset_dir: Optional[list[str]] = typer.Option(None, "--dataset-dir", help="ID=PATH (repeatable)."),
    out: Optional[Path] = typer.Option(None, help="Write here instead of benchmark/splits/<suite>.ceilings.json."),
) -> None:
    """Measure the one-voxel-ring Dice of every test reference mask (Dice vs itself dilated / eroded by one in-plane
    voxel) and store it per dataset next to the split, keyed by the split version. The report shows it beside Dice:
    differences below 1 - ring Dice are within one voxel of boundary placement."""
    from benchmark.evaluation.ceilings import compute_ceilings, write_ceilings

    ceilings = compute_ceilings(suite, data_root, parse_overrides(dataset_dir), progress=True)
    table = Table(title=f"one-voxel ceilings of {suite} (benchmark version {ceilings.benchmark_version})")
    for column in ("dataset", "n", "Dice vs dilated", "Dice vs eroded", "one-voxel Dice [min, max]", "within one voxel"):
        table.add_column(column)
    for dataset, ring in ceilings.datasets.items():
        table.add_row(dataset, str(ring.n), f"{ring.dilated_dice:.3f}", f"{ring.eroded_dice:.3f}",
                      f"{ring.one_voxel_dice:.3f} [{ring.one_voxel_dice_min:.3f}, {ring.one_voxel_dice_max:.3f}]",
                      f"{ring.within_one_voxel:.3f}")
    console.print(table)
    console.print(f"wrote {write_ceilings(ceilings, out)}")


# ---------------------------------------------------------------- convert
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
    console.print(table)
    for outcome in report.skipped:
        console.print(f"  [yellow]skipped[/] {outcome.case_id}: {outcome.reason}")
    for dataset in report.datasets:
        console.print(f"  {dataset.kind:10s} {dataset.folder}  train={dataset.num_training} test={dataset.num_test}")


# ---------------------------------------------------------------- submissions / scoring
submissions_app = CordbenchTyper(help="Registered models (submissions/<name>/submission.yaml).", no_args_is_help=True)
app.add_typer(submissions_app, name="submissions")


@submissions_app.command("list")
def submissions_list() -> None:
    """List every submission (built-in and the workspace's) with its model type, declared training data and
    results files."""
    from benchmark import workspace
    from benchmark.data.submissions import list_submissions, origin

    valid, invalid = list_submissions()
    active = workspace.active()
    table = Table(title="submissions")
    for column in ("name", "from", "model", "trained on", "results"):
        table.add_column(column)
    for submission in valid:
        folders = [submission.folder / "results"] + ([active.results_dir(submission.name)] if active else [])
        results = sorted({path.name for folder in folders for path in folder.glob("*.json")})
        table.add_row(submission.name, origin(submission), submission.model.type,
                      ", ".join(submission.training.datasets) or "-", ", ".join(results) or "-")
    console.print(table)
    for path, error in invalid.items():
        err_console.print(f"[red]invalid[/] {error}")
    if invalid:
        raise typer.Exit(1)


@submissions_app.command("check")
def submissions_check(name: str = typer.Argument(..., help="Submission name or folder.")) -> None:
    """Validate a manifest and the files it points to (checkpoint present, sha256 matches)."""
    from benchmark.data.submissions import check_submission, load_submission

    submission = load_submission(name)  # an invalid manifest: exit 2 with the file and field
    problems = check_submission(submission)
    for problem in problems:
        err_console.print(f"[red]problem[/] {submission.folder / 'submission.yaml'}: {problem}")
    if problems:
        raise typer.Exit(1)
    console.print(f"[green]{submission.name}: manifest and files OK[/]")


EXECUTOR_HELP = ("local (a process pool on this machine), shards (print one `cordbench score ... --shard i/N` command "
                 "per work unit), or a SLURM profile: slurm, or a profile name under executors: in cordbench.yaml.")


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
) -> None:
    """Predict every test case of the suite with each submission, score it, write its versioned results file.

    Every image and mask of the split is first verified against the frozen split (as `splits verify`); a
    difference stops with exit 1. Command and python submissions run in a bubblewrap sandbox (docs/scoring.md).
    The work is cut into units (submission x dataset x shard of cases) under work/units/ (or
    $CORDBENCH_WORKSPACE/work): a re-run does only what is missing. Each submission's first case runs alone first
    (canary): when it fails, the submission's other units are not started.
    """
    from benchmark.evaluation.scoring import DataChangedError, score_submission
    from benchmark.execution.api import merge_command, run_request, shard_commands
    from benchmark.execution.planner import plan_score_request

    check_runtime(runtime)
    if allow_changed_data:
        for name in names:
            results, path = score_submission(name, suite, data_root=data_root, overrides=parse_overrides(dataset_dir),
                                             device=device, trust_checkpoint=trust_checkpoint,
                                             sandbox=not no_sandbox, allow_changed_data=True, runtime=runtime,
                                             threads=threads)
            print_summary(results, metric)
            console.print(f"wrote {path}")
        return
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
    _report_request(outcome, metric, shard_argv=sys.argv[1:] if shard else None)


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
        store = UnitStore(work_root())
        outcome = RequestOutcome(save_plan(store, plan, units), store, RunReport())
        finish(outcome)
    except CordbenchError as error:
        fail(str(error))
    _report_request(outcome, metric)


def _report_request(outcome, metric: str, shard_argv: list[str] | None = None) -> None:
    """Summaries of the results files written; canary stops, failed units with their logs; exit 1 if incomplete."""
    from benchmark.execution.api import merge_command
    from benchmark.execution.runner import failure_lines
    from benchmark.evaluation.results import load_results

    report = outcome.report
    if report.submitted_jobs:
        console.print(f"submitted SLURM job(s) {', '.join(report.submitted_jobs)} for plan {outcome.plan.request_id}; "
                      "follow with `cordbench status`, then run the same command again to merge")
        return
    if report.skipped:
        console.print(f"{report.skipped} unit(s) already done (skipped)")
    for path in outcome.written.values():
        if outcome.plan.kind == "score":
            print_summary(load_results(path), metric)
        console.print(f"wrote {path}")
    for line in failure_lines(report, outcome.store):
        err_console.print(f"[red]{line}[/]", markup=True, highlight=False)
    if shard_argv is not None:
        console.print(f"shard done; when every shard has run: {merge_command(shard_argv)}")
        raise typer.Exit(1 if report.failed else 0)
    if outcome.incomplete:
        missing = ", ".join(f"{group} ({count} units)" for group, count in outcome.incomplete.items())
        err_console.print(f"[bold red]not complete:[/] {missing}; nothing was averaged over missing cases. "
                          "Run the same command again to redo only the missing units.")
        raise typer.Exit(1)


@app.command("status")
def status_command() -> None:
    """Work units of every planned request in work/ (or $CORDBENCH_WORKSPACE/work): done, running, failed, pending."""
    from benchmark.execution.api import status
    from benchmark.execution.workdir import work_root

    rows = status()
    table = Table(title=f"work units in {work_root()}")
    for column in ("plan", "kind", "suite", "group", "units", "done", "running", "failed", "pending", "last failure"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["plan"], row["kind"], row["suite"], row["group"], str(row["units"]), str(row["done"]),
                      str(row["running"]), str(row["failed"]), str(row["pending"]), row["problem"])
    console.print(table)


@app.command("predict")
def predict_command(
    name: str = typer.Argument(..., help="Submission name (folder under submissions/) or path."),
    input_path: Path = typer.Argument(..., metavar="INPUT", help="A NIfTI image, or a BIDS dataset folder."),
    out: Path = typer.Option(..., "--out", "-o", help="Masks go to OUT/derivatives/cordbench-NAME/ (a BIDS derivatives dataset)."),
    include: Optional[list[str]] = typer.Option(None, "--include", help="With a BIDS folder: only images whose path matches this glob, e.g. 'sub-*/anat/*_T2w.nii.gz' (repeatable)."),
    device: Optional[str] = typer.Option(None, help="cpu | cuda (default: the submission's preference; GPU when present)."),
    trust_checkpoint: bool = typer.Option(False, "--trust-checkpoint",
                                          help="Allow a checkpoint that needs full unpickling (runs its code!)."),
    no_sandbox: bool = typer.Option(False, "--no-sandbox", help=NO_SANDBOX_HELP),
    runtime: Optional[str] = typer.Option(None, "--runtime", help=RUNTIME_HELP),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help=THREADS_HELP),
) -> None:
    """Run a model on images that have no mask; write cord masks with a JSON sidecar each (model, weights sha256,
    cordbench version, inference settings), through the same inference path as scoring.

    Re-running skips masks whose sidecar matches; exit 1 when an image could not be predicted.
    """
    from benchmark.evaluation.predict import predict

    check_runtime(runtime)
    report = predict(name, input_path, out, include=include, device=device, trust_checkpoint=trust_checkpoint,
                     sandbox=not no_sandbox, runtime=runtime, threads=threads)
    table = Table(title=f"predict {name}", caption=str(report.derivatives))
    table.add_column("status")
    table.add_column("images", justify="right")
    for status in ("predicted", "unchanged", "failed", "not-downloaded"):
        table.add_row(status, str(report.count(status)))
    console.print(table)
    for outcome in report.failed:
        err_console.print(f"[red]{outcome.status}[/] {escape(str(outcome.image))}: {escape(outcome.reason or '')}")
    console.print(f"masks in {report.derivatives}")
    if report.failed:
        raise typer.Exit(1)


def print_summary(results, metric: str = "dice") -> None:
    from benchmark.analysis.labels import format_ci, metric_label
    from benchmark.analysis.summary import dataset_summaries

    table = Table(title=f"{results.submission} on {results.suite} ({metric_label(metric)}, mean [95% CI])")
    for column in ("dataset", "role", "zero-shot", "n", "failures", "leaked (excluded)", metric):
        table.add_column(column)
    for row in dataset_summaries(results, metric):
        table.add_row(row["dataset"], row["role"], "yes" if row["zero_shot"] else "no", str(row["n"]),
                      str(row["failures"]), str(row["leaked"]), format_ci(row["mean"], row["low"], row["high"], metric))
    console.print(table)


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


# ---------------------------------------------------------------- training
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
) -> None:
    """Train the specific models and the aggregated model with nnU-Net, and register each as a submission.

    Interrupt and re-run to continue from the last checkpoint. Weights go to the workspace's
    submissions/<name>/model/; the manifest records their sha256, the exact training subjects and how to reproduce
    them. A built-in reference submission's name is refused; a workspace one's needs --replace.
    """
    from benchmark import workspace
    from benchmark.training.baselines import BaselineError

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

    try:
        plan, units = plan_train_request(
            suite, raw_root=raw, work_dir=work_dir, profile=profile, only=only, datasets=dataset, seed=seed,
            device=device, epochs=epochs, iterations=iterations, configuration=configuration, fold=fold,
            base_id=base_id, augmentation=augmentation, postprocessing=postprocessing, num_threads=threads,
            name=name, replace=replace, seeds=parse_seeds(seeds))
        outcome = run_request(plan, units, executor=executor, workers=workers, threads=threads, wait=not no_wait)
    except (BaselineError, CordbenchError) as error:
        fail(str(error))
    for group, uids in outcome.plan.groups.items():
        if outcome.store.is_done(uids[0]):
            submission = load_submission(Path(outcome.store.output(uids[0])["submission"]))
            console.print(f"registered {submission.name} (sha256 {submission.model.sha256[:12]}, "
                          f"{submission.training.training_time_s:.0f} s; nnU-Net log: "
                          f"{Path(work_dir) / 'logs' / (group + '.log')})")
    _report_request(outcome, "dice")


@app.command("export")
def export_command(
    name: str = typer.Argument(..., help="Submission to pack."),
    out: Path = typer.Argument(..., help="Zip file to write."),
) -> None:
    """Pack a trained nnU-Net submission (weights, plans, dataset.json, manifest, sha256 of every member)."""
    from benchmark.models.packaging import export_submission
    from benchmark.data.submissions import SubmissionError

    path = export_submission(name, out)
    console.print(f"wrote {path}")


@app.command("import")
def import_command(
    source: Path = typer.Argument(..., help="A zip made by `cordbench export`, a zip made by nnU-Net's "
                                            "`nnUNetv2_export_model_to_zip`, or a trained nnU-Net results folder "
                                            "(nnUNet_results/DatasetXXX/Trainer__Plans__Config, or a folder above it)."),
    overwrite: bool = typer.Option(False, help="Replace a submission of the same name."),
    trained_on: Optional[list[str]] = typer.Option(
        None, "--trained-on", help="nnU-Net models: the registered dataset ids it was trained on, ID[,ID] (required)."),
    name: Optional[str] = typer.Option(None, help="nnU-Net models: submission name (default: <dataset>-<configuration>)."),
    configuration: Optional[str] = typer.Option(None, help="nnU-Net models: which model, when there are several: a configuration (3d_fullres), a folder name (Trainer__Plans__Config) or DatasetXXX_Name/Trainer__Plans__Config."),
    folds: Optional[str] = typer.Option(None, help="nnU-Net models: folds to ensemble, e.g. 0,1,2 or all (default: every fold present)."),
    checkpoint: Optional[str] = typer.Option(None, help="nnU-Net models: checkpoint file name (default: checkpoint_final.pth)."),
    trust_checkpoint: bool = typer.Option(False, "--trust-checkpoint",
                                          help="nnU-Net models: accept checkpoints that need full unpickling (runs their code!)."),
    author: Optional[list[str]] = typer.Option(None, "--author", help="nnU-Net models: author (repeatable)."),
    licence: str = typer.Option("unknown", help="nnU-Net models: the weights' licence."),
    sha256: Optional[str] = typer.Option(None, "--sha256", help=(
        "The archive's sha256 as its authors published it. Only then is the import 'verified': checksums "
        "inside an archive detect corruption, not tampering.")),
) -> None:
    """Register a model under submissions/ after verifying every file. Refuses tampered archives.

    A `cordbench export` zip is checked against its checksums. An nnU-Net zip or results folder is checked member
    by member (safe paths, zip CRC, sha256 of every file recorded in the manifest), its checkpoints are loaded with
    weights_only=True and the network is rebuilt before anything is registered.
    """
    from benchmark.data.submissions import SubmissionError
    from benchmark.models.nnunet_import import NnunetImportError, import_nnunet, is_cordbench_archive
    from benchmark.models.packaging import ArchiveError, import_archive, import_verification

    if is_cordbench_archive(source) and trained_on:
        fail(f"{source}: a cordbench export declares its training data in its manifest; drop --trained-on")
    if sha256 is not None and not is_cordbench_archive(source):  # an nnU-Net zip: its digest, before anything else
        from benchmark.io import sha256_file

        if not source.is_file():
            fail(f"{source}: --sha256 checks an archive file, not a folder")
        if sha256_file(source) != sha256.lower():
            fail(f"{source}: sha256 {sha256_file(source)} differs from --sha256 {sha256}: tampered or not the "
                 "archive you meant", code=1)
    try:
        if is_cordbench_archive(source):
            submission = import_archive(source, overwrite=overwrite, expected_sha256=sha256)
        else:
            submission = import_nnunet(source, trained_on=trained_on, name=name, configuration=configuration,
                                       folds=folds.split(",") if folds else None, checkpoint=checkpoint,
                                       trust_checkpoint=trust_checkpoint, overwrite=overwrite, authors=author,
                                       licence=licence)
    except (ArchiveError, NnunetImportError, SubmissionError) as error:
        fail(str(error), code=1)
    console.print(f"imported {submission.name} into {submission.folder}")
    if is_cordbench_archive(source):
        verification = import_verification(submission.folder)
        console.print(("[green]" if verification.verified else "[yellow]") + verification.describe() + "[/]")
    elif source.is_file():
        console.print("[green]verified: the archive's sha256 equals the digest you gave[/]" if sha256 else
                      "[yellow]NOT verified: only the checksums inside the archive were checked, which detect "
                      "corruption, not tampering; pass --sha256 with the digest its authors published[/]")


# ---------------------------------------------------------------- gate
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
    from benchmark.data.splits import SplitError, load_split

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


@app.command("audit")
def audit_command(
    data_root: Optional[Path] = typer.Option(None, help="Data root: datasets found here are hashed from their files "
                                                        "(else the split files' checksums are used)."),
    dataset_dir: Optional[list[str]] = typer.Option(None, "--dataset-dir", help="ID=PATH (repeatable)."),
    name: Optional[list[str]] = typer.Option(None, "--submission", help="Audit only these submissions (repeatable)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the whole report as JSON here."),
    write: bool = typer.Option(True, help="Write submissions/<name>/audit.json (the leaderboard marks those rows "
                                          "leaked and hides them by default)."),
) -> None:
    """Content-hash leakage audit: the sha256 of every test image of every suite vs every image each submission
    declares as training data (any registered dataset: the same scan is often re-released under another name),
    and vs the other test splits. Unresolvable training declarations are reported. Exit 1 when a leak is found."""
    from benchmark.data.audit import run_audit, write_submission_audits
    from benchmark.io import atomic_write_json
    from benchmark.data.submissions import list_submissions

    valid, invalid = list_submissions()
    for path, error in invalid.items():
        err_console.print(f"[yellow]skipped[/] {error}")
    chosen = [submission for submission in valid if not name or submission.name in name]
    report = run_audit(chosen, data_root=data_root, overrides=parse_overrides(dataset_dir))
    table = Table(title=f"audit: {report.test_images} test images of {', '.join(report.suites)}")
    for column in ("submission", "training images hashed", "leaked test images", "unresolved declarations"):
        table.add_column(column)
    for audit in report.submissions:
        table.add_row(audit.submission, str(audit.training_images), str(len(audit.findings)), str(len(audit.unresolved)))
    console.print(table)
    for audit in report.submissions:
        for finding in audit.findings:
            console.print(f"  [red]leak[/] {audit.submission}: {finding.suite} test {finding.case_id} = training image "
                          f"{finding.training_dataset}:{finding.training_image}", markup=True)
        for problem in audit.unresolved:
            console.print(f"  [yellow]unresolved[/] {audit.submission}: {problem}")
    for duplicate in report.duplicates:
        console.print(f"  duplicate content {duplicate.sha256[:12]}: {'; '.join(duplicate.places)}")
    if report.not_checked:
        console.print(f"  {len(report.not_checked)} test subject(s) have no content hash (restricted or not "
                      f"downloaded), e.g. {report.not_checked[0]}")
    if write:
        for path in write_submission_audits(report, chosen):
            console.print(f"wrote {path}")
    if json_out:
        atomic_write_json(json_out, report.model_dump(mode="json"))
    if report.leaked:
        raise typer.Exit(1)


# ---------------------------------------------------------------- synthetic data, demo, report, leaderboard
@app.command("synth")
def synth_command(
    out: Optional[Path] = typer.Argument(None, help="Folder to write the six synthetic BIDS datasets into "
                                                    "(default: the workspace's work/data/synthetic)."),
    seed: int = typer.Option(0, help="Random seed (the committed synthetic split is for seed 0)."),
    figure: Optional[Path] = typer.Option(None, help="Also write a PNG with one slice per contrast and its mask."),
) -> None:
    """Generate the synthetic suite: phantom cervical cord MRI in BIDS with exact masks (no download)."""
    from benchmark import workspace
    from benchmark.data.bids_index import index_dataset
    from benchmark.data.registry import load_dataset
    from benchmark.data.synth import generate_suite, render_contrast_figure

    out = out or workspace.require("`cordbench synth`").data_dir / "synthetic"
    folders = generate_suite(out, seed=seed)
    table = Table(title=f"synthetic suite (seed {seed}) in {out}")
    table.add_column("dataset")
    table.add_column("subjects", justify="right")
    table.add_column("image/mask pairs", justify="right")
    for dataset_id, folder in folders.items():
        index = index_dataset(folder, load_dataset(dataset_id))
        table.add_row(dataset_id, str(len(index.subjects())), str(len(index.pairs)))
    console.print(table)
    if figure:
        console.print(f"wrote {render_contrast_figure(figure, seed=seed)}")
    if seed != 0:
        console.print("[yellow]note:[/] the committed split of the synthetic suite is for seed 0; "
                      "`splits verify --suite synthetic` will report other seeds' data as different")


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
) -> None:
    """Run the seed experiment end to end: data, splits, training sets, 1 aggregated + N specific models,
    scores on every in-domain and OOD test split, comparison table, HTML report.

    Re-running reuses everything already done; after Ctrl-C, re-run to continue.
    """
    from benchmark.demo import run_demo

    _check_recipe_options(augmentation, postprocessing)
    started = time.perf_counter()
    _results, report, timings = run_demo(suite_id=suite, data_root=data_root, work_dir=work_dir, profile=profile,
                                         seed=seed, seeds=seeds, device=device, epochs=epochs, iterations=iterations,
                                         augmentation=augmentation, postprocessing=postprocessing, console=console)
    console.print(f"[bold green]done[/] in {time.perf_counter() - started:.0f} s: "
                  + ", ".join(f"{name.split('. ', 1)[0]}) {seconds:.0f} s" for name, seconds in timings.steps.items()))


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
    from benchmark.analysis.report import ReportError, case_images_from_cases_index, write_report
    from benchmark.evaluation.results import find_results_files, load_many

    out = out or workspace.require("`cordbench report`").report_dir / f"{suite}.html"
    results, skipped = load_many(find_results_files(*default_results_roots(), *(results_dir or [])))
    for path, why in skipped.items():
        err_console.print(f"[yellow]skipped[/] {why}")
    from benchmark.evaluation.scoring import cases_index_path

    indexes = {}
    for result in results:
        for folder in results_folders(result.submission):
            if cases_index_path(folder.parent, suite).exists():
                indexes.setdefault(result.submission, cases_index_path(folder.parent, suite))
    path = write_report(results, out, suite=suite, metric=metric,
                        case_images=case_images_from_cases_index(indexes), seed=seed)
    console.print(f"wrote {path}")


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
    console.print(f"leaderboard on http://{address}:{port}  (Ctrl-C to stop)")
    raise typer.Exit(subprocess.call(command))


@app.command("fetch")
def fetch_command(
    dataset_id: str = typer.Argument(..., help="A public dataset id (see `cordbench datasets list`)."),
    to: Path = typer.Option(..., "--to", help="Data root: the dataset goes to <to>/<dataset folder>."),
    suite: Optional[str] = typer.Option(None, help="After fetching, verify the data against this suite's split."),
    url: Optional[str] = typer.Option(None, help="Clone from here instead of the registry's URL (a mirror)."),
    revision: Optional[str] = typer.Option(None, help="Check out this instead of the pinned revision."),
    no_content: bool = typer.Option(False, help="Clone only; leave annexed images as pointers."),
    update: bool = typer.Option(False, help="Move an existing clone to the pinned revision."),
    jobs: int = typer.Option(1, help="Parallel downloads for git-annex."),
) -> None:
    """Obtain a public dataset at its pinned revision (git clone + git-annex get), then verify it.

    Restricted datasets print how to request access instead. Exit 1 when content is missing or differs.
    """
    from benchmark.data.fetch import FetchError, fetch_dataset
    from benchmark.data.registry import RegistryError
    from benchmark.data.splits import SplitError

    result = fetch_dataset(dataset_id, to, url=url, revision=revision, get_content=not no_content, suite=suite,
                           update=update, jobs=jobs, progress=True)
    for line in result.lines():
        console.print(line, markup=False)
    if result.status != "complete" or (result.verify is not None and not result.verify.ok):
        raise typer.Exit(1)


def main(argv: list[str] | None = None) -> None:
    app(args=argv, prog_name="cordbench")


if __name__ == "__main__":
    main()
