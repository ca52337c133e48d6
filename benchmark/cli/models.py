"""Commands about models: submissions, predict, export and import."""

from __future__ import annotations

from pathlib import Path
from typing import Optional
import typer
from rich.markup import escape
from rich.table import Table

from benchmark.cli import shell
from benchmark.cli.shell import (CordbenchTyper, NO_SANDBOX_HELP, RUNTIME_HELP, THREADS_HELP, app, check_runtime, fail,
                                 parse_overrides)


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
    shell.console.print(table)
    for path, error in invalid.items():
        shell.err_console.print(f"[red]invalid[/] {escape(error)}")
    if invalid:
        raise typer.Exit(1)


@submissions_app.command("check")
def submissions_check(
    name: str = typer.Argument(..., help="Submission name or folder."),
    suite: Optional[str] = typer.Option(None, "--suite", "-s", help=(
        "predictions submissions: check the masks of this suite's test images, as `score` will find them (every "
        "test image needs one, on its grid).")),
    data_root: Optional[Path] = typer.Option(None, help="Folder holding one sub-folder per dataset."),
    dataset_dir: Optional[list[str]] = typer.Option(None, "--dataset-dir", help="ID=PATH (repeatable)."),
) -> None:
    """Validate a manifest and the files it points to (checkpoint present, sha256 matches).

    For a predictions submission also: model.folders keys are registered dataset ids, and every supplied mask that
    belongs to an image of a dataset found here is on that image's grid (with --suite: every test image of the suite
    has its mask)."""
    from benchmark.data.submissions import PredictionsModelSpec, check_submission, load_submission

    submission = load_submission(name)  # an invalid manifest: exit 2 with the file and field
    problems = check_submission(submission)
    if isinstance(submission.model, PredictionsModelSpec) and not problems:
        problems += _supplied_mask_problems(submission, suite, data_root, parse_overrides(dataset_dir))
    for problem in problems:
        shell.err_console.print(f"[red]problem[/] {escape(str(submission.folder / 'submission.yaml'))}: {escape(problem)}")
    if problems:
        raise typer.Exit(1)
    shell.console.print(f"[green]{submission.name}: manifest and files OK[/]")


def _supplied_mask_problems(submission, suite: str | None, data_root: Path | None, overrides: dict) -> list[str]:
    """The supplied masks against the images they belong to: a suite's test images, else every image of each
    dataset found here (those named in model.folders, or every registered one when model.folder is given)."""
    from benchmark.data.bids_index import index_dataset
    from benchmark.data.registry import dataset_ids, load_dataset
    from benchmark.data.splits import dataset_folder, load_split
    from benchmark.evaluation.supplied import supplied_mask_problems

    if suite is not None:
        from benchmark.evaluation.scoring import test_cases

        cases = test_cases(suite, load_split(suite), data_root, overrides, check_checksums=False)
        images = [(case.case.dataset, case.image_path) for case in cases]
        where = f"the {len(images)} test images of {suite}"
    else:
        named = list(submission.model.folders) if not submission.model.folder else dataset_ids()
        images = []
        for dataset_id in named:
            folder = dataset_folder(dataset_id, data_root, overrides)
            if folder is not None:
                index = index_dataset(folder, load_dataset(dataset_id))
                images += [(dataset_id, folder / case.image.path) for case in index.cases if case.image.downloaded]
        where = f"{len(images)} images of the datasets found here"
    problems, found = supplied_mask_problems(submission, images, every_image=suite is not None)
    shell.console.print(f"{found} supplied mask(s) checked against {where}", highlight=False)
    return problems


@submissions_app.command("add-predictions")
def submissions_add_predictions(
    name: str = typer.Argument(..., help="Name of the new submission (lower case, digits, . _ -)."),
    folders: list[str] = typer.Argument(..., metavar="FOLDER|ID=FOLDER...", help=(
        "A BIDS derivatives folder of masks (e.g. what `cordbench predict` wrote: OUT/derivatives/cordbench-MODEL), "
        "or ID=FOLDER for one dataset's masks (when two datasets have images of the same name).")),
    trained_on: Optional[str] = typer.Option(None, "--trained-on", help=(
        "Registered dataset ids the masks' model was trained on, ID[,ID], or 'none'. Default: for masks made by "
        "`cordbench predict`, the training data of the model their sidecars name.")),
    author: Optional[list[str]] = typer.Option(None, "--author", help="Author (repeatable)."),
    licence: str = typer.Option("unknown", help="Licence of the masks."),
    description: Optional[str] = typer.Option(None, help="What the masks are."),
    generated_by: Optional[str] = typer.Option(None, help="The tool or model that computed them (default: what the "
                                                           "folder's dataset_description.json says)."),
    overwrite: bool = typer.Option(False, help="Replace a workspace submission of the same name."),
) -> None:
    """Register masks computed elsewhere (or by `cordbench predict`) as a `predictions` submission: the masks are
    copied into submissions/NAME/masks/ and the manifest written and checked; score it like any model."""
    from benchmark.data.submissions import check_submission
    from benchmark.models.supplied_import import register_predictions

    parsed: dict[str | None, Path] = {}
    for value in folders:
        dataset_id, sep, folder = value.partition("=")
        key, path = (dataset_id, folder) if sep else (None, value)
        if key in parsed:
            fail(f"{value}: " + ("a second plain FOLDER; give ID=FOLDER for each dataset" if key is None
                                 else f"{key} is given twice"))
        parsed[key] = Path(path).resolve()
    declared = None if trained_on is None else [] if trained_on.strip().lower() == "none" else \
        [item.strip() for item in trained_on.split(",") if item.strip()]
    submission, origin = register_predictions(name, parsed, trained_on=declared, authors=author, licence=licence,
                                              description=description, generated_by=generated_by,
                                              overwrite=overwrite)
    shell.console.print(f"registered {submission.name} in {submission.folder}: trained on "
                        f"{', '.join(submission.training.datasets) or 'nothing'} ({origin})", highlight=False)
    problems = check_submission(submission) + _supplied_mask_problems(submission, None, None, {})
    for problem in problems:
        shell.err_console.print(f"[red]problem[/] {submission.folder / 'submission.yaml'}: {problem}", highlight=False)
    if problems:
        raise typer.Exit(1)
    shell.console.print(f"next: `cordbench submissions check {submission.name} --suite SUITE`, then "
                        f"`cordbench score {submission.name} --suite SUITE`", highlight=False)


EXECUTOR_HELP = ("local (a process pool on this machine), shards (print one `cordbench score ... --shard i/N` command "
                 "per work unit), or a SLURM profile: slurm, or a profile name under executors: in cordbench.yaml.")


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
    shell.console.print(table)
    for outcome in report.failed:
        shell.err_console.print(f"[red]{outcome.status}[/] {escape(str(outcome.image))}: {escape(outcome.reason or '')}")
    shell.console.print(f"masks in {report.derivatives}")
    if report.failed:
        raise typer.Exit(1)


@app.command("export")
def export_command(
    name: str = typer.Argument(..., help="Submission to pack."),
    out: Path = typer.Argument(..., help="Zip file to write."),
) -> None:
    """Pack a trained nnU-Net submission (weights, plans, dataset.json, manifest, sha256 of every member)."""
    from benchmark.models.packaging import export_submission

    path = export_submission(name, out)
    shell.console.print(f"wrote {path}")


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
    shell.console.print(f"imported {submission.name} into {submission.folder}")
    if is_cordbench_archive(source):
        verification = import_verification(submission.folder)
        shell.console.print(("[green]" if verification.verified else "[yellow]") + verification.describe() + "[/]")
    elif source.is_file():
        shell.console.print("[green]verified: the archive's sha256 equals the digest you gave[/]" if sha256 else
                      "[yellow]NOT verified: only the checksums inside the archive were checked, which detect "
                      "corruption, not tampering; pass --sha256 with the digest its authors published[/]")
