"""Build suites and amend datasets without editing YAML by hand: ``cordbench datasets add --suite``, ``cordbench
suites add|remove``, ``cordbench datasets same-person``.

Only the active workspace's files are written (a built-in suite or dataset is refused, with what to do instead);
every file is validated as the registry reads it before it replaces the old one, atomically. Each change is said
in words, and when the suite already has a split, so is its consequence: the next ``splits make`` writes a new
version (the results of the old one stay, marked superseded on the leaderboard).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from benchmark import workspace
from pydantic import ValidationError

from benchmark.data.registry import (Dataset, RegistryError, Suite, SuiteDataset, dataset_ids, entry_path,
                                     load_dataset, registry_files, suite_ids, workspace_file)
from benchmark.io import atomic_write_text, describe_validation_error

SUITE_HEADER = ("# Written by cordbench (`datasets add --suite`, `suites add`, `suites remove`); you may edit it\n"
                "# (docs/registry.md, 'A suite').\n")


@dataclass
class Edit:
    """A registry file written (or that would be), and what changed in it, in words."""

    path: Path
    created: bool
    changes: list[str] = field(default_factory=list)


def _workspace_entry(kind: str, item_id: str) -> Path:
    path = entry_path(kind, item_id)
    if workspace.origin_of(path) == "built-in":
        raise RegistryError(f"{kind[:-1]} {item_id!r} is built-in ({path}) and is never changed; make your own "
                            + ("suite with `cordbench suites add NEW-ID DATASET ...`" if kind == "suites" else
                               "entry with `cordbench datasets add NEW-ID --root FOLDER`"))
    return path


def unknown_suite_message(suite_id: str) -> str:
    """The error for a suite id that is not registered, with the closest registered id when there is one."""
    known = suite_ids()
    close = difflib.get_close_matches(suite_id, known, n=1)
    hint = (f"did you mean {close[0]!r}?" if close else
            f"registered: {', '.join(known)}; make one with `cordbench suites add {suite_id} DATASET ...`")
    return f"unknown suite {suite_id!r}; {hint}"


def _describe(entry: SuiteDataset) -> str:
    extra = f", test fraction {entry.test_fraction}" if entry.role == "in-domain" and entry.test_fraction else ""
    strata = f", stratified by {', '.join(entry.stratify_by)}" if entry.stratify_by else ""
    return f"{entry.id} ({entry.role}{extra}{strata})"


def _write_suite(path: Path, data: dict) -> Path | None:
    """Validate the suite as the registry will read it, then write it atomically."""
    try:
        suite = Suite.model_validate(data)
    except ValidationError as error:
        raise RegistryError(describe_validation_error(path, error, "registry file")) from error
    unknown = [entry.id for entry in suite.datasets if entry.id not in dataset_ids()]
    if unknown:
        raise RegistryError(f"{path}: unknown dataset(s) {', '.join(unknown)} (see `cordbench datasets list`)")
    return _replace(path, SUITE_HEADER + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110))


def _replace(path: Path, text: str) -> Path | None:
    """Write ``text`` over a registry file. Comments other than its leading block would be lost (the file is rewritten
    from its data): the previous file is then kept under ``work/replaced/`` and its path returned."""
    kept = None
    if path.is_file():
        old = path.read_text(encoding="utf-8")
        body = old.splitlines()[len(_leading_comment(old)):]
        if any("#" in line for line in body):
            from datetime import datetime, timezone

            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
            kept = workspace.require("editing a registry file").work_dir / "replaced" / path.parent.name / \
                f"{path.stem}.{stamp}{path.suffix}"
            atomic_write_text(kept, old)
    atomic_write_text(path, text)
    return kept


def add_to_suite(suite_id: str, entries: list[SuiteDataset], *, dry_run: bool = False) -> Edit:
    """Add datasets to a workspace suite (created when missing), or change the role or test fraction of one that is
    in it already."""
    existing = registry_files("suites").get(suite_id)
    if existing:
        path = _workspace_entry("suites", suite_id)
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        created = False
    else:
        path = workspace_file("suites", suite_id)
        data = {"id": suite_id, "title": f"{suite_id} (workspace suite)",
                "description": "Made with `cordbench datasets add --suite` / `cordbench suites add`.", "datasets": []}
        created = True
    members = {member["id"]: index for index, member in enumerate(data.get("datasets") or [])}
    changes = []
    for entry in entries:
        dumped = entry.model_dump(mode="json", exclude_defaults=True)
        if entry.id in members:
            before = SuiteDataset.model_validate(data["datasets"][members[entry.id]])
            if before == entry:
                changes.append(f"{_describe(entry)} is in the suite already")
                continue
            data["datasets"][members[entry.id]] = dumped
            changes.append(f"{_describe(before)} -> {_describe(entry)}")
        else:
            data.setdefault("datasets", []).append(dumped)
            members[entry.id] = len(data["datasets"]) - 1
            changes.append(f"+ {_describe(entry)}")
    changed = created or any(not change.endswith("in the suite already") for change in changes)
    if changed and not dry_run:
        _note_kept(changes, _write_suite(path, data))
    return Edit(path, created, changes)


def _note_kept(changes: list[str], kept: Path | None) -> None:
    if kept is not None:
        changes.append(f"its comments are not kept: the previous file is {kept}")


def remove_from_suite(suite_id: str, dataset_ids: list[str], *, dry_run: bool = False) -> Edit:
    """Remove datasets from a workspace suite (a suite keeps at least one)."""
    if suite_id not in registry_files("suites"):
        raise RegistryError(unknown_suite_message(suite_id))
    path = _workspace_entry("suites", suite_id)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    members = [member["id"] for member in data.get("datasets") or []]
    missing = [dataset_id for dataset_id in dataset_ids if dataset_id not in members]
    if missing:
        raise RegistryError(f"{path}: {', '.join(missing)} not in suite {suite_id!r} (its datasets: "
                            f"{', '.join(members)})")
    kept = [member for member in data["datasets"] if member["id"] not in dataset_ids]
    if not kept:
        raise RegistryError(f"{path}: a suite needs at least one dataset; removing {', '.join(dataset_ids)} would "
                            "leave none (delete the file to drop the suite)")
    data["datasets"] = kept
    changes = [f"- {dataset_id}" for dataset_id in dataset_ids]
    if not dry_run:
        _note_kept(changes, _write_suite(path, data))
    return Edit(path, False, changes)


def with_same_person(dataset: Dataset, groups: list[list[str]]) -> Dataset:
    """The dataset with ``groups`` (participant ids of one person each) merged into its ``same_person`` list: groups
    that share an id become one group."""
    merged: list[set[str]] = [set(group) for group in dataset.same_person]
    for group in groups:
        joined = set(group)
        for existing in [existing for existing in merged if existing & joined]:
            joined |= existing
            merged.remove(existing)
        merged.append(joined)
    ordered = sorted((sorted(group) for group in merged), key=lambda group: group[0])
    try:
        return Dataset.model_validate({**dataset.model_dump(mode="json"), "same_person": ordered})
    except ValueError as error:
        raise RegistryError(f"dataset {dataset.id}: same_person: {error}") from error


def amend_dataset_same_person(dataset_id: str, groups: list[list[str]], *, dry_run: bool = False) -> tuple[Dataset, Edit]:
    """Declare groups of participant ids as one person in a workspace dataset's file (the file's leading comment is
    kept)."""
    path = _workspace_entry("datasets", dataset_id)
    before = load_dataset(dataset_id)
    after = with_same_person(before, groups)
    header = "".join(line for line in _leading_comment(path.read_text(encoding="utf-8")))
    text = header + yaml.safe_dump(after.model_dump(mode="json", exclude_defaults=True), sort_keys=False,
                                   allow_unicode=True, width=110)
    changes = [f"same_person: {before.same_person or '[]'} -> {after.same_person}"] \
        if after.same_person != before.same_person else ["same_person: unchanged"]
    if not dry_run and after.same_person != before.same_person:
        _note_kept(changes, _replace(path, text))
    return after, Edit(path, False, changes)


def _leading_comment(text: str) -> list[str]:
    lines = []
    for line in text.splitlines(keepends=True):
        if not line.startswith("#"):
            break
        lines.append(line)
    return lines


def parse_groups(values: list[str] | None, file: Path | None) -> list[list[str]]:
    """``--same-person a,b[,c]`` values and a file of groups (one per line: ids separated by tabs, commas or spaces;
    ``#`` starts a comment) -> groups of participant ids (``sub-`` added where it is missing)."""
    lines = list(values or [])
    if file is not None:
        try:
            text = Path(file).read_text(encoding="utf-8")
        except OSError as error:
            raise RegistryError(f"{file}: cannot read the same-person file ({error})") from error
        lines += [line.split("#", 1)[0] for line in text.splitlines()]
    groups = []
    for number, line in enumerate(lines, start=1):
        ids = [token for token in line.replace(",", " ").replace("\t", " ").split() if token]
        if not ids:
            continue
        if len(ids) < 2:
            where = f"{file}: line {number}" if file is not None and number > len(values or []) else "--same-person"
            raise RegistryError(f"{where}: {line.strip()!r}: a group needs two or more participant ids")
        groups.append([token if token.startswith("sub-") else f"sub-{token}" for token in ids])
    return groups


def check_groups(dataset_id: str, groups: list[list[str]], participants: list[str]) -> None:
    """Every id of every group must be a participant of the dataset (with the closest one when it is not)."""
    for group in groups:
        for participant in group:
            if participant not in participants:
                close = difflib.get_close_matches(participant, participants, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"its participants: {', '.join(participants[:8])}"
                raise RegistryError(f"same person {','.join(group)}: {participant!r} is not a participant of "
                                    f"{dataset_id}; {hint}")
