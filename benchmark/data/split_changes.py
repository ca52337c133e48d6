"""What changed between two versions of a suite's split, where a superseded split file is kept, and what a new split
should warn about (a test split that is empty or holds one person).

``cordbench splits make`` says every change of version in words (a dataset added or removed, subjects moved,
files whose checksum changed, a rule changed) and keeps the old file under ``splits/superseded/<suite>@<version>.json``,
so that results scored on it still name a split that exists. The same comparison, between the frozen split and
what the data give now, is how ``splits make`` tells a deliberate data edit it did not apply (``--refreeze`` does).
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmark.data.splits import DatasetSplit, SplitFile

SUPERSEDED_FOLDER = "superseded"


def _subjects(entry: DatasetSplit) -> str:
    if entry.status != "fixed":
        return "rule only, not frozen"
    parts = [f"{len(entry.test)} test"] + ([f"{len(entry.train)} train"] if entry.role == "in-domain" else [])
    return ", ".join(parts) + " subjects"


def _listed(items: list[str], show: int = 4) -> str:
    return ", ".join(items[:show]) + (f" and {len(items) - show} more" if len(items) > show else "")


def dataset_changes(dataset_id: str, old: DatasetSplit, new: DatasetSplit) -> list[str]:
    """One line per difference of one dataset's split between two versions."""
    lines = []
    if old.role != new.role:
        lines.append(f"{dataset_id}: role {old.role} -> {new.role}")
    if old.status != new.status:
        lines.append(f"{dataset_id}: {old.status} -> {new.status} ({_subjects(new)})")
    for part in ("test", "train"):
        before, after = set(getattr(old, part)), set(getattr(new, part))
        if after - before:
            lines.append(f"{dataset_id}: {part} + {_listed(sorted(after - before))}")
        if before - after:
            lines.append(f"{dataset_id}: {part} - {_listed(sorted(before - after))}")
    changed = sorted(path for path in set(old.files) & set(new.files) if old.files[path] != new.files[path])
    if changed:
        lines.append(f"{dataset_id}: {len(changed)} file(s) with new content: {_listed(changed, 3)}")
    added, removed = sorted(set(new.files) - set(old.files)), sorted(set(old.files) - set(new.files))
    if added:
        lines.append(f"{dataset_id}: {len(added)} file(s) added: {_listed(added, 3)}")
    if removed:
        lines.append(f"{dataset_id}: {len(removed)} file(s) gone: {_listed(removed, 3)}")
    if old.rule != new.rule:
        keys = sorted(key for key in set(old.rule) | set(new.rule) if old.rule.get(key) != new.rule.get(key))
        lines.append(f"{dataset_id}: rule " + "; ".join(
            f"{key} {json.dumps(old.rule.get(key))} -> {json.dumps(new.rule.get(key))}" for key in keys))
    if old.scored_region != new.scored_region:
        lines.append(f"{dataset_id}: scored region {old.scored_region} -> {new.scored_region}")
    return lines


def split_changes(old: SplitFile, new: SplitFile) -> list[str]:
    """Every difference between two splits of a suite, one line each (empty: the same split)."""
    lines = [f"seed {old.seed} -> {new.seed}"] if old.seed != new.seed else []
    for dataset_id, entry in new.datasets.items():
        if dataset_id not in old.datasets:
            lines.append(f"+ {dataset_id} ({entry.role}, {_subjects(entry)})")
    for dataset_id in old.datasets:
        if dataset_id not in new.datasets:
            lines.append(f"- {dataset_id} (removed from the suite)")
    for dataset_id, entry in new.datasets.items():
        if dataset_id in old.datasets:
            lines += dataset_changes(dataset_id, old.datasets[dataset_id], entry)
    return lines


def frozen_drift(kept: SplitFile, fresh: SplitFile) -> list[str]:
    """How the data at hand (``fresh``) differ from the frozen datasets ``kept`` (checksums, files, rules); datasets
    not found here, or not frozen, are not compared."""
    return [line for dataset_id, entry in kept.datasets.items()
            if entry.status == "fixed" and dataset_id in fresh.datasets and fresh.datasets[dataset_id].status == "fixed"
            for line in dataset_changes(dataset_id, entry, fresh.datasets[dataset_id])]


def superseded_path(splits_dir: Path, split: SplitFile) -> Path:
    """Where a superseded split file is kept: ``<splits>/superseded/<suite>@<version>.json``."""
    return Path(splits_dir) / SUPERSEDED_FOLDER / f"{split.suite}@{split.version}.json"


def split_warnings(split: SplitFile, person_of, editable: bool = True) -> list[str]:
    """Test splits that cannot support a conclusion about people: empty, or one person. ``person_of(dataset id,
    participant id)`` gives the person (same_person groups and subject_grouping); ``editable``: the suite is the
    user's, so the warning may say how to change it."""
    warnings = []
    for dataset_id, entry in split.datasets.items():
        if entry.status != "fixed":
            continue
        people = sorted({person_of(dataset_id, subject) for subject in entry.test})
        if not people:
            why = (f"all {len({person_of(dataset_id, s) for s in entry.train})} of its people are in the train split"
                   if entry.train else "no subject has an image with a cord mask")
            lines = f"the test split of {dataset_id} is empty ({why}): nothing of {dataset_id} will be scored"
            if entry.role == "in-domain" and editable:
                lines += ("; with so few people use it out-of-domain (`cordbench suites add "
                          f"{split.suite} {dataset_id} --role ood`) or raise its test fraction")
            warnings.append(lines)
        elif len(people) == 1:
            warnings.append(f"the test split of {dataset_id} holds one person ({people[0]}, {len(entry.test)} "
                            "participant id(s)): its scores describe that person, and no interval over people can "
                            "be computed")
    return warnings
