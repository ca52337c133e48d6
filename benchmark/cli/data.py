"""Commands of the data stage: datasets, index, splits, synthetic data, fetch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional
import typer
from rich.markup import escape
from rich.table import Table

from benchmark.cli import shell
from benchmark.cli.shell import DEFAULT_PUBLISHED_ROOT, app, datasets_app, fail, main, parse_overrides, splits_app


@app.command("init")
def init_command(
    folder: Path = typer.Argument(Path("."), help="Folder to make a workspace of (created when missing)."),
) -> None:
    """Create a workspace: cordbench.yaml (commented), datasets/, suites/, splits/, submissions/, work/, README.md.

    Existing files are kept, so running it again is harmless.
    """
    from benchmark.workspace import init_workspace

    created = init_workspace(folder)
    shell.console.print(f"workspace ready: {created.root}")
    shell.console.print("next: `cordbench datasets add ID --root BIDS_FOLDER` (see README.md there)")


@app.command("schema")
def schema_command(
    kind: str = typer.Argument(..., help="dataset | suite | submission | workspace"),
) -> None:
    """Print the JSON Schema of a dataset, suite or submission file (or cordbench.yaml), for editors."""
    from benchmark.data.schemas import json_schema

    typer.echo(json.dumps(json_schema(kind), indent=2))


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
    shell.console.print(table)
    suite_table = Table(title="Suites")
    for column in ("id", "from", "in-domain", "out-of-domain"):
        suite_table.add_column(column)
    for entry in suites:
        if entry.item is not None:
            suite_table.add_row(entry.id, entry.origin, ", ".join(entry.item.ids("in-domain")),
                                ", ".join(entry.item.ids("ood")))
    shell.console.print(suite_table)
    invalid = [entry for entry in entries + suites if entry.error]
    for entry in invalid:
        shell.err_console.print(f"[red]invalid {entry.kind[:-1]}[/] {entry.id} ({entry.origin}): {escape(entry.error)}", markup=True,
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
        shell.console.print(line, markup=False, highlight=False)
    text = dataset_yaml(dataset, root)
    shell.console.print(f"valid; indexed with it: {len(index.subjects())} subjects, {len(index.pairs)} image/mask pairs, "
                  f"{len(index.images_without_label)} images without mask, {len(index.not_downloaded())} files not "
                  "downloaded")
    if target is None:
        typer.echo(text)
        return
    atomic_write_text(target, text)
    shell.console.print(f"wrote {target} (check licence, citation and access; docs/registry.md)")
    if suite_target is not None:
        from benchmark.data.drafting import suite_yaml

        atomic_write_text(suite_target, suite_yaml(suite, dataset_id))
        shell.console.print(f"wrote {suite_target}; next: `cordbench splits make --suite {suite}`")


@datasets_app.command("show")
def datasets_show(dataset_id: str = typer.Argument(..., help="A dataset id from `cordbench datasets list`.")) -> None:
    """Print one dataset's full metadata as YAML-like JSON, and the file it comes from."""
    from benchmark.data.registry import entry_path, load_dataset, origin_of_entry

    dataset = load_dataset(dataset_id)
    shell.console.print_json(json.dumps(dataset.model_dump(mode="json")))
    shell.console.print(f"from {origin_of_entry('datasets', dataset_id)}: {entry_path('datasets', dataset_id)}",
                  highlight=False)


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
    from benchmark.data.bids_index import index_dataset
    from benchmark.io import atomic_write_json
    from benchmark.data.registry import load_dataset

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
    shell.console.print(table)
    for case in index.images_without_label[:show]:
        shell.console.print(f"  no mask: {case.image.path}")
    for label in index.labels_without_image[:show]:
        shell.console.print(f"  no image: {label}")
    if not_downloaded:
        shell.console.print(f"[yellow]{len(not_downloaded)} files are not downloaded[/] (git-annex pointers or broken "
                      "annex symlinks), e.g.:")
        for info in not_downloaded[:show]:
            shell.console.print(f"  {info.state}: {info.path}")
        shell.console.print(f"Fetch them with:\n  {index.fetch_command()}")
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
        shell.console.print(f"wrote {json_out}")
    if image_glob and not index.pairs:
        for line in trial.explain(show):
            shell.err_console.print(line, markup=False, highlight=False)
        raise typer.Exit(1)


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
    from benchmark.data.registry import load_suite
    from benchmark.data.splits import load_split, make_split, split_path, workspace_split_path, write_split

    target = out or workspace_split_path(suite)
    existing = load_split(suite, target) if target.exists() else (
        load_split(suite) if split_path(suite).exists() else None)
    split = make_split(load_suite(suite), data_root=data_root, overrides=parse_overrides(dataset_dir),
                       published_root=published_root, existing=existing)
    write_split(split, target)
    _print_split(split)
    shell.console.print(f"wrote {target} (benchmark version {split.version})")


def _print_split(split) -> None:
    table = Table(title=f"split {split.suite} (version {split.version})")
    for column in ("dataset", "role", "status", "train", "test", "files", "scored region"):
        table.add_column(column)
    for dataset_id, entry in split.datasets.items():
        table.add_row(dataset_id, entry.role, entry.status, str(len(entry.train)), str(len(entry.test)),
                      str(len(entry.files)), entry.scored_region)
    shell.console.print(table)


@splits_app.command("show")
def splits_show(suite: str = typer.Option(..., "--suite", "-s")) -> None:
    """Print a suite's split: subjects per dataset and the benchmark version."""
    from benchmark.data.splits import load_split, split_path

    _print_split(load_split(suite))
    shell.console.print(f"from {split_path(suite)}")


@splits_app.command("verify")
def splits_verify(
    suite: str = typer.Option(..., "--suite", "-s", help="Suite id."),
    data_root: Optional[Path] = typer.Option(None, help="Folder holding one sub-folder per dataset."),
    dataset_dir: Optional[list[str]] = typer.Option(None, "--dataset-dir", help="ID=PATH (repeatable)."),
    only: Optional[list[str]] = typer.Option(None, help="Check only these datasets (repeatable)."),
) -> None:
    """Compare local data with the split: missing/extra subjects, missing/changed files. Exit 1 on any difference."""
    from benchmark.data.splits import load_split, verify_split

    report = verify_split(load_split(suite), data_root=data_root, overrides=parse_overrides(dataset_dir), only=only)
    print_verify_report(report)
    if not report.checked:
        fail("nothing was checked: no dataset of the suite was found under the data root", code=1)
    if not report.ok:
        shell.err_console.print("[bold red]the local data differ from the split[/]")
        raise typer.Exit(1)
    shell.console.print("[green]local data match the split[/]")


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
    shell.console.print(table)
    for dataset_id, why in report.not_checked.items():
        shell.console.print(f"  not checked: {dataset_id}: {why}")
    for title, problem in (("missing subject", report.missing_subjects), ("extra subject", report.extra_subjects),
                           ("missing file", report.missing_files), ("changed file", report.changed_files),
                           ("extra file", report.extra_files), ("mask off its image's grid", report.off_grid)):
        for dataset_id, items in problem.items():
            for item in items[:20]:
                shell.console.print(f"  [red]{title}[/] {dataset_id}: {item}")


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
    shell.console.print(table)
    shell.console.print(f"wrote {write_ceilings(ceilings, out)}")


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
        shell.err_console.print(f"[yellow]skipped[/] {escape(error)}")
    chosen = [submission for submission in valid if not name or submission.name in name]
    report = run_audit(chosen, data_root=data_root, overrides=parse_overrides(dataset_dir))
    table = Table(title=f"audit: {report.test_images} test images of {', '.join(report.suites)}")
    for column in ("submission", "training images hashed", "leaked test images", "unresolved declarations"):
        table.add_column(column)
    for audit in report.submissions:
        table.add_row(audit.submission, str(audit.training_images), str(len(audit.findings)), str(len(audit.unresolved)))
    shell.console.print(table)
    for audit in report.submissions:
        for finding in audit.findings:
            shell.console.print(f"  [red]leak[/] {audit.submission}: {finding.suite} test {finding.case_id} = training image "
                          f"{finding.training_dataset}:{finding.training_image}", markup=True)
        for problem in audit.unresolved:
            shell.console.print(f"  [yellow]unresolved[/] {audit.submission}: {problem}")
    for duplicate in report.duplicates:
        shell.console.print(f"  duplicate content {duplicate.sha256[:12]}: {'; '.join(duplicate.places)}")
    if report.not_checked:
        shell.console.print(f"  {len(report.not_checked)} test subject(s) have no content hash (restricted or not "
                      f"downloaded), e.g. {report.not_checked[0]}")
    if write:
        for path in write_submission_audits(report, chosen):
            shell.console.print(f"wrote {path}")
    if json_out:
        atomic_write_json(json_out, report.model_dump(mode="json"))
    if report.leaked:
        raise typer.Exit(1)


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
    shell.console.print(table)
    if figure:
        shell.console.print(f"wrote {render_contrast_figure(figure, seed=seed)}")
    if seed != 0:
        shell.console.print("[yellow]note:[/] the committed split of the synthetic suite is for seed 0; "
                      "`splits verify --suite synthetic` will report other seeds' data as different")


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
    from benchmark.data.fetch import fetch_dataset

    result = fetch_dataset(dataset_id, to, url=url, revision=revision, get_content=not no_content, suite=suite,
                           update=update, jobs=jobs, progress=True)
    for line in result.lines():
        shell.console.print(line, markup=False)
    if result.status != "complete" or (result.verify is not None and not result.verify.ok):
        raise typer.Exit(1)


if __name__ == "__main__":
    main()
