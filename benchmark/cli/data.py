"""Commands of the data stage: datasets, index, splits, synthetic data, fetch."""

from __future__ import annotations

import json
from dataclasses import dataclass
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


ROLE_HELP = "in-domain (trained on and tested: a train and a test split) or ood (out-of-domain: tested only)."


@datasets_app.command("add")
def datasets_add(
    datasets: list[str] = typer.Argument(..., metavar="ID|ID=FOLDER...", help=(
        "Id of the new dataset (lower case, digits, dashes) with --root, or several ID=FOLDER pairs.")),
    root: Optional[Path] = typer.Option(None, "--root", help="The dataset's BIDS folder (only read)."),
    suite: Optional[str] = typer.Option(None, "--suite", help="Also put the dataset(s) in this suite (created when "
                                                              "missing, else added to)."),
    role: str = typer.Option("in-domain", "--role", help="With --suite: " + ROLE_HELP),
    test_fraction: Optional[float] = typer.Option(None, "--test-fraction", help="With --suite and --role in-domain: "
                                                  "share of people in the test split (default 0.2)."),
    same_person: Optional[list[str]] = typer.Option(None, "--same-person", help=(
        "Participant ids that are one person, e.g. sub-p01,sub-p01rescan (repeatable): a split keeps them on one "
        "side and statistics count them once.")),
    same_person_file: Optional[Path] = typer.Option(None, "--same-person-file", help=(
        "A file of such groups, one per line (ids separated by tabs, commas or spaces; # comments).")),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the drafts without writing them."),
) -> None:
    """Draft a dataset file into the workspace by inspecting a BIDS folder; print what was guessed, validate it and
    index the folder with it, check every mask is on its image's grid, and warn about participant ids that look
    like one person. With --suite, also put it in a suite (any role), without editing YAML."""
    from benchmark.data.drafting import dataset_yaml
    from benchmark.data.suite_files import parse_groups
    from benchmark.io import atomic_write_text

    if role not in ("in-domain", "ood"):
        fail(f"--role must be in-domain or ood, got {role!r}")
    if test_fraction is not None and (suite is None or role != "in-domain"):
        fail("--test-fraction applies to an in-domain dataset of a --suite")
    folders = _dataset_folders(datasets, root)
    drafts = [_draft(dataset_id, folder, dry_run) for dataset_id, folder in folders.items()]
    _assign_groups(drafts, parse_groups(same_person, same_person_file))
    for draft in drafts:
        if draft.dataset.same_person:
            shell.console.print(f"{draft.dataset.id}: one person each: "
                                + "; ".join(", ".join(group) for group in draft.dataset.same_person), highlight=False)
        _warn_lookalikes(draft.dataset, draft.index)
    if suite is not None and not dry_run:  # a suite that cannot take them (a built-in one): before writing anything
        from benchmark.data.suite_files import add_to_suite

        add_to_suite(suite, [], dry_run=True)
    for draft in drafts:
        if draft.target is None:
            typer.echo(dataset_yaml(draft.dataset, draft.folder))
            continue
        atomic_write_text(draft.target, dataset_yaml(draft.dataset, draft.folder))
        shell.console.print(f"wrote {draft.target} (check licence, citation and access; docs/registry.md)",
                            highlight=False)
    if suite is not None:
        from benchmark.data.registry import SuiteDataset

        entries = [SuiteDataset(id=draft.dataset.id, role=role,
                                test_fraction=(test_fraction or 0.2) if role == "in-domain" else None)
                   for draft in drafts]
        _print_suite_edit(suite, entries=entries, dry_run=dry_run)
    elif not dry_run:
        shell.console.print(f"next: put it in a suite: `cordbench suites add SUITE {' '.join(folders)} --role "
                            "in-domain|ood`, then `cordbench splits make --suite SUITE`")


@dataclass
class _Draft:
    """A dataset drafted from a folder, its index, and where it will be written (None: --dry-run)."""

    dataset: object
    folder: Path
    target: Path | None
    index: object


def _draft(dataset_id: str, folder: Path, dry_run: bool) -> _Draft:
    """Draft, print the guesses, index; masks off their image's grid stop everything (nothing written)."""
    from benchmark.data.bids_index import index_dataset
    from benchmark.data.drafting import draft_dataset
    from benchmark.data.grids import off_grid_masks
    from benchmark.data.registry import RegistryError, workspace_file

    target = None if dry_run else workspace_file("datasets", dataset_id)
    dataset, guesses = draft_dataset(dataset_id, folder)
    index = index_dataset(folder, dataset)
    for line in guesses.lines():
        shell.console.print(line, markup=False, highlight=False)
    shell.console.print(f"valid; indexed with it: {len(index.subjects())} subjects, {len(index.pairs)} image/mask "
                        f"pairs, {len(index.images_without_label)} images without mask, "
                        f"{len(index.not_downloaded())} files not downloaded", highlight=False)
    off_grid = off_grid_masks(index)
    if off_grid:
        for problem in off_grid[:10]:
            shell.err_console.print(f"  mask off its image's grid {problem.line()}", markup=False, highlight=False)
        raise RegistryError(f"{folder}: {len(off_grid)} mask(s) not on their image's grid (listed above); they "
                            "cannot be scored: nothing was written. Put them on their images' grid and run the "
                            "command again")
    return _Draft(dataset, folder, target, index)


def _assign_groups(drafts: list[_Draft], groups: list[list[str]]) -> None:
    """Each same-person group to the one dataset holding all its ids (an unknown id is named, with the closest)."""
    from benchmark.data.suite_files import check_groups, with_same_person

    for group in groups:
        owners = [draft for draft in drafts if set(group) <= set(draft.index.subjects())]
        if len(owners) != 1:
            closest = max(drafts, key=lambda draft: len(set(group) & set(draft.index.subjects())))
            check_groups(closest.dataset.id, [group], closest.index.subjects())  # names the id that is not there
            fail(f"--same-person {','.join(group)}: these ids are participants of several datasets")
        owners[0].dataset = with_same_person(owners[0].dataset, [group])


def _dataset_folders(datasets: list[str], root: Path | None) -> dict[str, Path]:
    """``ID`` with --root, or ``ID=FOLDER`` pairs -> {id: folder}."""
    pairs = [value.partition("=") for value in datasets]
    if root is not None:
        if len(datasets) != 1 or pairs[0][1]:
            fail("--root goes with one dataset id; for several give ID=FOLDER pairs")
        return {datasets[0]: root}
    folders = {}
    for dataset_id, sep, folder in pairs:
        if not sep or not dataset_id or not folder:
            fail(f"{dataset_id!r}: give the dataset's folder with --root, or ID=FOLDER")
        if dataset_id in folders:
            fail(f"{dataset_id!r} is given twice")
        folders[dataset_id] = Path(folder)
    return folders


def _warn_lookalikes(dataset, index) -> None:
    from benchmark.data.lookalike import lookalike_people

    for found in lookalike_people(index, dataset.person_of):
        shell.err_console.print(
            f"[yellow]warning:[/] {found.line()}. If they are one person, declare it: `--same-person "
            f"{','.join(found.subjects)}` (or later `cordbench datasets same-person {dataset.id} "
            f"{','.join(found.subjects)}`)", highlight=False)


def _print_suite_edit(suite_id: str, *, entries=None, remove: list[str] | None = None, dry_run: bool = False) -> None:
    """Add or remove suite members, say what changed and what it does to the suite's split version."""
    from benchmark.data.splits import split_candidates
    from benchmark.data.suite_files import add_to_suite, remove_from_suite

    edit = remove_from_suite(suite_id, remove, dry_run=dry_run) if remove else add_to_suite(suite_id, entries,
                                                                                            dry_run=dry_run)
    changed = edit.created or any(not change.endswith("in the suite already") for change in edit.changes)
    verb = "unchanged:" if not changed else "would write" if dry_run else "wrote"
    shell.console.print(f"{verb} {edit.path} ({'new suite' if edit.created else 'suite ' + suite_id}): "
                        + "; ".join(edit.changes), highlight=False)
    frozen = next((path for path in split_candidates(suite_id) if path.exists()), None)
    if frozen is not None and changed:
        from benchmark.data.splits import load_split

        version = load_split(suite_id, frozen).version
        shell.console.print(f"the suite's split (version {version}, {frozen}) no longer matches it: "
                            f"`cordbench splits make --suite {suite_id}` writes a new version and keeps this one; "
                            f"results scored on {version} stay under it (marked superseded on the leaderboard)",
                            highlight=False)
    elif not dry_run:
        shell.console.print(f"next: `cordbench splits make --suite {suite_id}`", highlight=False)


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
    """Find every image and its cord mask; report missing masks, masks off their image's grid (exit 1) and content
    that is not downloaded.

    With --image-glob and --label instead of --dataset, try rules on a folder that is not registered; when nothing
    matches, say which patterns were tried and what files are there instead (exit 1).
    """
    from benchmark.data.bids_index import index_dataset
    from benchmark.data.grids import off_grid_masks
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
    off_grid = off_grid_masks(index)
    table.add_row("masks off their image's grid", str(len(off_grid)))
    shell.console.print(table)
    for problem in off_grid[:show]:
        shell.err_console.print(f"  [red]mask off its image's grid[/] {problem.mask}: {problem.problem}", highlight=False)
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
    if off_grid:
        shell.err_console.print(f"[bold red]{len(off_grid)} mask(s) are not on their image's grid[/]: they cannot be "
                                "scored or trained on; put them on their images' grid", highlight=False)
        raise typer.Exit(1)


@splits_app.command("make")
def splits_make(
    suite: str = typer.Option(..., "--suite", "-s", help="Suite id (synthetic, real-mini, spinalcord-v1, or yours)."),
    data_root: Optional[Path] = typer.Option(None, help="Folder holding one sub-folder per dataset."),
    dataset_dir: Optional[list[str]] = typer.Option(None, "--dataset-dir", help="ID=PATH for a dataset stored elsewhere (repeatable)."),
    published_root: Path = typer.Option(DEFAULT_PUBLISHED_ROOT, help="Folder of published split lists (mp2rage/...)."),
    out: Optional[Path] = typer.Option(None, help="Write here instead of the workspace's splits/<suite>.json."),
    refreeze: bool = typer.Option(False, "--refreeze", help=(
        "Make a new version from the data as they are now (after a deliberate edit of images or masks, a changed "
        "same-person list or test fraction). The current file is kept under splits/superseded/; what changed is "
        "listed. Datasets frozen in a built-in split stay as they are.")),
) -> None:
    """Make a suite's split file, complete it (datasets added to the suite, restricted data obtained since), or, with
    --refreeze, make a new version of it.

    Frozen datasets are never changed silently: if the data now give other subjects this refuses, and if only
    files changed it says so and keeps the split (--refreeze applies the change). Every change of version is said,
    with the old file kept; a split that does not change is not written. Masks off their image's grid are refused.
    """
    from benchmark.data.registry import RegistryError, load_dataset, load_suite, origin_of_entry, suite_ids
    from benchmark.data.split_changes import frozen_drift, split_warnings
    from benchmark.data.splits import (SPLITS_DIR, complete_split, fresh_split, load_split, split_path,
                                       workspace_split_path, write_split)
    from benchmark.data.suite_files import unknown_suite_message

    if suite not in suite_ids():
        raise RegistryError(unknown_suite_message(suite))
    suite_entry = load_suite(suite)
    target = out or workspace_split_path(suite)
    current = load_split(suite, target) if target.exists() else None
    builtin_path = SPLITS_DIR / f"{suite}.json"
    builtin = load_split(suite, builtin_path) if builtin_path.exists() else None
    if refreeze:
        base = builtin
    else:
        base = current or (load_split(suite) if split_path(suite).exists() else None)
    fresh, indexes = fresh_split(suite_entry, data_root=data_root, overrides=parse_overrides(dataset_dir),
                                 published_root=published_root)
    split = complete_split(suite_entry, fresh, base)
    _print_split(split)
    editable = origin_of_entry("suites", suite) == "workspace"
    for warning in split_warnings(split, lambda dataset_id, subject: load_dataset(dataset_id).person_of(subject),
                                  editable):
        shell.err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    _warn_split_lookalikes(suite, indexes)
    kept = frozen_drift(split, fresh)
    if kept and not refreeze:
        shell.err_console.print(f"[yellow]note:[/] the data (or the rules) now differ from the frozen split, which is "
                                f"kept as it is: {'; '.join(kept)}. `cordbench splits make --suite {suite} --refreeze` "
                                "makes a new version with them.", highlight=False)
    if current is not None and current.version == split.version:
        shell.console.print(f"unchanged: {target} (benchmark version {split.version})", highlight=False)
        return
    _announce_version(target, current, builtin, split)
    write_split(split, target)
    shell.console.print(f"wrote {target} (benchmark version {split.version})", highlight=False)


def _announce_version(target: Path, current, builtin, split) -> None:
    """Say how the version changes, and keep the file being replaced under splits/superseded/."""
    from benchmark.data.split_changes import split_changes, superseded_path
    from benchmark.io import atomic_write_bytes

    if current is not None:
        kept_at = superseded_path(target.parent, current)
        atomic_write_bytes(kept_at, target.read_bytes())
        shell.console.print(f"new benchmark version {current.version} -> {split.version}: "
                            + "; ".join(split_changes(current, split)), highlight=False)
        shell.console.print(f"the previous split is kept as {kept_at}; results scored on {current.version} stay under "
                            "it (the leaderboard marks them superseded)", highlight=False)
    elif builtin is not None and builtin.version != split.version:
        shell.console.print(f"completes the built-in split (version {builtin.version} -> {split.version}): "
                            + "; ".join(split_changes(builtin, split)), highlight=False)


def _warn_split_lookalikes(suite: str, indexes: dict) -> None:
    from benchmark.data.lookalike import lookalike_people
    from benchmark.data.registry import load_dataset

    for dataset_id, index in indexes.items():
        for found in lookalike_people(index, load_dataset(dataset_id).person_of):
            shell.err_console.print(
                f"[yellow]warning:[/] {found.line()}. If they are one person: `cordbench datasets same-person "
                f"{dataset_id} {','.join(found.subjects)}`, then `cordbench splits make --suite {suite} --refreeze`",
                highlight=False)


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
                           ("extra file", report.extra_files)):
        for dataset_id, items in problem.items():
            for item in items[:20]:
                shell.console.print(f"  [red]{title}[/] {dataset_id}: {item}")
    for mask, problem in list(report.grid_problems.items())[:20]:
        shell.console.print(f"  [red]mask off its image's grid[/] {mask}: {problem}", highlight=False)


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
    and vs the other test splits; and every test image whose person the submission (or a parent it was adapted
    from) declares as training data. Unresolvable training declarations are reported. Exit 1 when a leak is found."""
    from benchmark.data.audit import run_audit, write_submission_audits
    from benchmark.io import atomic_write_json
    from benchmark.data.submissions import list_submissions

    valid, invalid = list_submissions()
    for path, error in invalid.items():
        shell.err_console.print(f"[yellow]skipped[/] {escape(error)}")
    chosen = [submission for submission in valid if not name or submission.name in name]
    report = run_audit(chosen, data_root=data_root, overrides=parse_overrides(dataset_dir))
    table = Table(title=f"audit: {report.test_images} test images of {', '.join(report.suites)}")
    for column in ("submission", "training images hashed", "leaked test images", "test images of declared people",
                   "unresolved declarations"):
        table.add_column(column)
    for audit in report.submissions:
        table.add_row(audit.submission, str(audit.training_images), str(len(audit.findings)),
                      str(len(audit.declared_leaks)), str(len(audit.unresolved)))
    shell.console.print(table)
    for audit in report.submissions:
        for finding in audit.findings:
            shell.console.print(f"  [red]leak[/] {audit.submission}: {finding.suite} test {finding.case_id} = training image "
                          f"{finding.training_dataset}:{finding.training_image}", markup=True)
        for case_id in audit.declared_leaks:
            shell.console.print(f"  [red]leak[/] {audit.submission}: test {case_id}: its person is declared as "
                                "training data (scored as subject_in_training)", markup=True)
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
