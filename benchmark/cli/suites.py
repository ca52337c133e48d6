"""Commands that build suites and amend datasets without editing YAML: `suites add|remove|show`, `datasets
same-person`."""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from benchmark.cli import shell
from benchmark.cli.data import ROLE_HELP, _print_suite_edit
from benchmark.cli.shell import CordbenchTyper, app, datasets_app, fail

suites_app = CordbenchTyper(help="Suites: which datasets are in-domain and which out-of-domain (no YAML to edit).",
                            no_args_is_help=True)
app.add_typer(suites_app, name="suites")

STRATA = ("site", "vendor", "pathology", "field_strength")


@suites_app.command("add")
def suites_add(
    suite: str = typer.Argument(..., help="Suite id (created in the workspace when missing)."),
    datasets: list[str] = typer.Argument(..., help="Registered dataset ids to put in it (see `cordbench datasets list`)."),
    role: str = typer.Option(..., "--role", help=ROLE_HELP),
    test_fraction: Optional[float] = typer.Option(None, "--test-fraction", help="in-domain: share of people in the "
                                                  "test split (default 0.2)."),
    stratify_by: Optional[list[str]] = typer.Option(None, "--stratify-by", help="in-domain: keep these participants.tsv "
                                                    "fields proportional in the test split: site, vendor, pathology, "
                                                    "field_strength (repeatable)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would change without writing."),
) -> None:
    """Put datasets in a suite with a role, or change the role / test fraction of one that is in it.

    The suite's split is not touched: the next `cordbench splits make` writes a new version (the old one is kept, and
    results scored on it stay under its version)."""
    from benchmark.data.registry import SuiteDataset, dataset_ids

    if role not in ("in-domain", "ood"):
        fail(f"--role must be in-domain or ood, got {role!r}")
    if role == "ood" and (test_fraction is not None or stratify_by):
        fail("--test-fraction and --stratify-by apply to in-domain datasets (an OOD dataset is tested whole)")
    for stratum in stratify_by or []:
        if stratum not in STRATA:
            fail(f"--stratify-by {stratum!r}: choose among {', '.join(STRATA)}")
    registered = dataset_ids()
    for dataset_id in datasets:
        if dataset_id not in registered:
            import difflib

            close = difflib.get_close_matches(dataset_id, registered, n=1)
            fail(f"unknown dataset {dataset_id!r}; " + (f"did you mean {close[0]!r}?" if close else
                                                        "register it with `cordbench datasets add`"))
    entries = [SuiteDataset(id=dataset_id, role=role, stratify_by=list(stratify_by or []),
                            test_fraction=(test_fraction or 0.2) if role == "in-domain" else None)
               for dataset_id in datasets]
    _print_suite_edit(suite, entries=entries, dry_run=dry_run)


@suites_app.command("remove")
def suites_remove(
    suite: str = typer.Argument(..., help="A workspace suite id."),
    datasets: list[str] = typer.Argument(..., help="Dataset ids to take out of it."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would change without writing."),
) -> None:
    """Take datasets out of a workspace suite (its split then changes version at the next `splits make`)."""
    _print_suite_edit(suite, remove=datasets, dry_run=dry_run)


@suites_app.command("show")
def suites_show(suite: str = typer.Argument(..., help="A suite id.")) -> None:
    """A suite's datasets with their roles, where its file is, and its split's version (if frozen)."""
    from benchmark.data.registry import RegistryError, entry_path, load_suite, origin_of_entry, suite_ids
    from benchmark.data.splits import SplitError, load_split
    from benchmark.data.suite_files import unknown_suite_message

    if suite not in suite_ids():
        raise RegistryError(unknown_suite_message(suite))
    loaded = load_suite(suite)
    table = Table(title=f"suite {suite}: {loaded.title}")
    for column in ("dataset", "role", "test fraction", "stratify by", "scored region"):
        table.add_column(column)
    for entry in loaded.datasets:
        table.add_row(entry.id, entry.role, str(entry.test_fraction or ""), ", ".join(entry.stratify_by),
                      entry.scored_region)
    shell.console.print(table)
    shell.console.print(f"from {origin_of_entry('suites', suite)}: {entry_path('suites', suite)}", highlight=False)
    try:
        split = load_split(suite)
    except SplitError:
        shell.console.print(f"no split yet: `cordbench splits make --suite {suite}`")
        return
    if set(split.datasets) != set(loaded.ids()):
        shell.console.print(f"split version {split.version} was made for other datasets "
                            f"({', '.join(split.datasets)}): `cordbench splits make --suite {suite}`")
    else:
        shell.console.print(f"split version {split.version}")


@datasets_app.command("same-person")
def datasets_same_person(
    dataset: str = typer.Argument(..., help="A workspace dataset id."),
    groups: Optional[list[str]] = typer.Argument(None, help="Participant ids that are one person, comma-separated, "
                                                            "e.g. sub-p01,sub-p01rescan (several groups allowed)."),
    file: Optional[typer.FileText] = typer.Option(None, "--file", help="A file of groups, one per line (ids separated "
                                                                       "by tabs, commas or spaces; # comments)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would change without writing."),
) -> None:
    """Declare participant ids of a dataset to be one person (its `same_person` list): a split keeps them on one side
    and statistics count them once. Changes the suites' split rule: `splits make --refreeze` applies it."""
    from pathlib import Path

    from benchmark.data.bids_index import index_dataset
    from benchmark.data.registry import load_dataset
    from benchmark.data.splits import dataset_folder
    from benchmark.data.suite_files import amend_dataset_same_person, check_groups, parse_groups

    parsed = parse_groups(groups, Path(file.name) if file is not None else None)
    if not parsed:
        fail("give the ids of one person, e.g. sub-p01,sub-p01rescan, or --file")
    folder = dataset_folder(dataset, None)
    if folder is not None:
        check_groups(dataset, parsed, index_dataset(folder, load_dataset(dataset)).subjects())
    _after, edit = amend_dataset_same_person(dataset, parsed, dry_run=dry_run)
    shell.console.print(f"{'would write' if dry_run else 'wrote'} {edit.path}: {'; '.join(edit.changes)}",
                        highlight=False)
    if not dry_run and not edit.changes[0].endswith("unchanged"):
        shell.console.print("suites with this dataset: `cordbench splits make --suite SUITE --refreeze` makes a new "
                            "split version that applies it", highlight=False)
