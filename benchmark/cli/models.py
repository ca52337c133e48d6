"""Commands about models: submissions, predict, export and import."""

from __future__ import annotations

from pathlib import Path
from typing import Optional
import typer
from rich.markup import escape
from rich.table import Table

from benchmark.cli import shell
from benchmark.cli.shell import CordbenchTyper, NO_SANDBOX_HELP, RUNTIME_HELP, THREADS_HELP, app, check_runtime, fail


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
def submissions_check(name: str = typer.Argument(..., help="Submission name or folder.")) -> None:
    """Validate a manifest and the files it points to (checkpoint present, sha256 matches)."""
    from benchmark.data.submissions import check_submission, load_submission

    submission = load_submission(name)  # an invalid manifest: exit 2 with the file and field
    problems = check_submission(submission)
    for problem in problems:
        shell.err_console.print(f"[red]problem[/] {escape(str(submission.folder / 'submission.yaml'))}: {escape(problem)}")
    if problems:
        raise typer.Exit(1)
    shell.console.print(f"[green]{submission.name}: manifest and files OK[/]")


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
