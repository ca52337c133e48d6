"""Fixed, versioned, subject-level splits.

One JSON file per suite under ``benchmark/splits/`` (committed). For each dataset of the suite it holds
the rule (test fraction, stratification, grouping, published list), the train and test subject lists,
and the sha256 of every image and mask of those subjects. The file's content hash is the **benchmark
version** reported with every score: change one subject or one checksum and the version changes.

Assignment is deterministic and platform independent: people (not participant ids: see the registry's
``subject_grouping``) are ordered by ``sha256("<seed>:<dataset>:<person>")`` inside each stratum, and
each stratum gives its share of test people by largest remainder. No random generator is involved, so
the same seed and input give the same file bit for bit on any machine and numpy version.

Datasets whose subject list is not public keep only their rule until someone with the data runs
``cordbench splits make``; the split is then frozen and later runs refuse to change it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from benchmark import __version__, workspace
from benchmark.data.bids_index import Case, DatasetIndex, index_dataset, participant_field
from benchmark.errors import CordbenchError
from benchmark.io import atomic_write_text, sha256_file
from benchmark.data.registry import ScoredRegion, Suite, SuiteDataset, load_dataset

SPLITS_DIR = Path(__file__).resolve().parents[1] / "splits"
SPLIT_FORMAT = 1


class SplitError(CordbenchError, ValueError):
    """A split cannot be made, loaded or changed; the message says which file and why."""


class DatasetSplit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["in-domain", "ood"]
    status: Literal["fixed", "rule-only"]
    rule: dict = Field(description="How the split was made: fraction, strata, grouping, published list")
    train: list[str] = Field(default_factory=list)
    test: list[str] = Field(default_factory=list)
    files: dict[str, str | None] = Field(
        default_factory=dict, description="relative path -> sha256 of the content (None when unknown)"
    )
    excluded: dict[str, str] = Field(default_factory=dict, description="subject -> why it is in no split")
    scored_region: ScoredRegion = Field(
        default="whole-image", description="Where test cases are scored (the suite's choice; docs/metrics.md)"
    )


class SplitFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: int = SPLIT_FORMAT
    suite: str
    seed: int
    made_with: str
    version: str = ""
    datasets: dict[str, DatasetSplit]

    def content_hash(self) -> str:
        payload = self.model_dump(mode="json", exclude={"version", "made_with"})
        for entry in payload["datasets"].values():
            # splits written before scored regions existed keep their version: the default is not hashed
            if entry["scored_region"] == "whole-image":
                del entry["scored_region"]
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]

    def subjects(self, dataset_id: str, part: Literal["train", "test"]) -> list[str]:
        return list(getattr(self.datasets[dataset_id], part))


def split_candidates(suite_id: str) -> list[Path]:
    """Where a suite's split may be, first match wins: the active workspace (and its ``include`` folders), then
    the built-in splits. A workspace split of a built-in suite completes it (freezes its rule-only datasets);
    its frozen datasets must equal the built-in ones."""
    active = workspace.active()
    folders = [folder / "splits" for folder in (active.registry_dirs() if active else [])] + [SPLITS_DIR]
    return [folder / f"{suite_id}.json" for folder in folders]


def split_path(suite_id: str) -> Path:
    """The split file a suite's split is read from (the first candidate when none exists yet)."""
    candidates = split_candidates(suite_id)
    return next((path for path in candidates if path.exists()), candidates[0])


def workspace_split_path(suite_id: str) -> Path:
    """Where ``splits make`` writes a suite's split: the active workspace, never the package."""
    return workspace.require("`cordbench splits make`").splits_dir / f"{suite_id}.json"


def load_split(suite_id: str, path: Path | None = None) -> SplitFile:
    """The frozen split of a suite; its ``version`` (the content hash) is the benchmark version of every score."""
    if path is None:
        path = split_path(suite_id)
        split = _read_split(suite_id, path)
        builtin = SPLITS_DIR / f"{suite_id}.json"
        if path != builtin and builtin.exists():
            _check_completes(path, split, builtin, _read_split(suite_id, builtin))
        return split
    return _read_split(suite_id, path)


def _check_completes(path: Path, split: SplitFile, builtin_path: Path, builtin: SplitFile) -> None:
    for dataset_id, entry in builtin.datasets.items():
        mine = split.datasets.get(dataset_id)
        if entry.status == "fixed" and (mine is None or _assignment(mine) != _assignment(entry)):
            raise SplitError(f"{path}: datasets.{dataset_id}: differs from the built-in split {builtin_path}, whose "
                             "frozen subjects a workspace split may not change (delete it and re-run "
                             "`cordbench splits make`)")


def _read_split(suite_id: str, path: Path) -> SplitFile:
    if not path.exists():
        from benchmark.data.registry import suite_ids
        from benchmark.data.suite_files import unknown_suite_message

        if suite_id not in suite_ids():  # a mistyped id: `splits make` would only fail on it next
            raise SplitError(unknown_suite_message(suite_id))
        raise SplitError(f"{path}: no split file for suite {suite_id!r}; run `cordbench splits make --suite {suite_id}`")
    try:
        split = SplitFile.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise SplitError(f"{path}: invalid split file ({error})") from error
    if split.version != split.content_hash():
        raise SplitError(
            f"{path}: stored version {split.version} does not match its content ({split.content_hash()}); "
            "the file was edited by hand - re-make it with `cordbench splits make`"
        )
    return split


def check_split_covers_suite(suite: Suite, split: SplitFile) -> None:
    """The suite's datasets are the split's: a dataset added to (or removed from) the suite since the split was made
    would be scored, or trained on, under a version that does not hold it."""
    added = [dataset_id for dataset_id in suite.ids() if dataset_id not in split.datasets]
    removed = [dataset_id for dataset_id in split.datasets if dataset_id not in suite.ids()]
    if added or removed:
        what = "; ".join(filter(None, [f"added to the suite since: {', '.join(added)}" if added else "",
                                       f"removed from it: {', '.join(removed)}" if removed else ""]))
        raise SplitError(f"suite {suite.id}: its split (benchmark version {split.version}) was made for other "
                         f"datasets ({what}); `cordbench splits make --suite {suite.id}` makes the new version")


def write_split(split: SplitFile, path: Path) -> Path:
    split.version = split.content_hash()
    atomic_write_text(path, json.dumps(split.model_dump(mode="json"), indent=1, sort_keys=True) + "\n")
    return path


def _order_key(seed: int, dataset_id: str, person: str) -> str:
    return hashlib.sha256(f"{seed}:{dataset_id}:{person}".encode("utf-8")).hexdigest()


def _allocate(stratum_sizes: dict[tuple, int], total_test: int) -> dict[tuple, int]:
    """Largest-remainder allocation of ``total_test`` over strata in proportion to their sizes."""
    population = sum(stratum_sizes.values())
    exact = {stratum: total_test * size / population for stratum, size in stratum_sizes.items()}
    quota = {stratum: math.floor(value) for stratum, value in exact.items()}
    leftover = total_test - sum(quota.values())
    by_remainder = sorted(exact, key=lambda stratum: (-(exact[stratum] - quota[stratum]), stratum))
    for stratum in by_remainder[:leftover]:
        quota[stratum] += 1
    return quota


def n_test_people(n_people: int, test_fraction: float) -> int:
    """round(fraction x people), at least one and leaving at least one for training; 0 if one person."""
    if n_people < 2:
        return 0
    return min(max(1, round(test_fraction * n_people)), n_people - 1)


def assign_people(
    people: dict[str, tuple], *, seed: int, dataset_id: str, test_fraction: float
) -> tuple[set[str], set[str]]:
    """Split people (person -> stratum) into (train, test), stratified, deterministic for a seed."""
    strata: dict[tuple, list[str]] = defaultdict(list)
    for person, stratum in people.items():
        strata[stratum].append(person)
    quota = _allocate({stratum: len(members) for stratum, members in strata.items()},
                      n_test_people(len(people), test_fraction))
    test: set[str] = set()
    for stratum, members in strata.items():
        ordered = sorted(members, key=lambda person: _order_key(seed, dataset_id, person))
        test.update(ordered[: quota[stratum]])
    return set(people) - test, test


def _labelled_subjects(index: DatasetIndex) -> dict[str, list[Case]]:
    by_subject: dict[str, list[Case]] = defaultdict(list)
    for case in index.pairs:
        by_subject[case.subject].append(case)
    return by_subject


def _stratum(cases: list[Case], dataset_id: str, stratify_by: list[str]) -> tuple:
    dataset = load_dataset(dataset_id)
    return tuple(participant_field(cases[0], dataset, name) or "unknown" for name in stratify_by)


def file_checksum(root: Path, case_file) -> str | None:
    """sha256 of a file's content: computed when present, read from the annex key when not downloaded."""
    if case_file.state == "present":
        return sha256_file(root / case_file.path)
    return case_file.annex_sha256


def _files_of(index: DatasetIndex, subjects: set[str]) -> dict[str, str | None]:
    files: dict[str, str | None] = {}
    for case in index.pairs:
        if case.subject in subjects:
            files[case.image.path] = file_checksum(index.root, case.image)
            files[case.label.path] = file_checksum(index.root, case.label)
    return files


def _published_test_subjects(published_root: Path, relative: str) -> list[str]:
    path = published_root / relative
    if not path.exists():
        raise SplitError(f"{path}: published split list not found (pass --published-root)")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("test"), list):
        raise SplitError(f"{path}: expected a 'test' list of subject ids")
    return sorted(str(subject) for subject in data["test"])


def _rule_of(entry: SuiteDataset, seed: int) -> dict:
    dataset = load_dataset(entry.id)
    rule: dict = {"seed": seed}
    if entry.published_split:
        rule["published_split"] = entry.published_split
    if entry.role == "in-domain":
        rule.update(test_fraction=entry.test_fraction, stratify_by=list(entry.stratify_by))
    else:
        rule["test"] = "published list" if entry.published_split else "every labelled subject"
    if dataset.subject_grouping:
        rule["grouping"] = dataset.subject_grouping.pattern
    if dataset.same_person:
        rule["same_person"] = [sorted(group) for group in dataset.same_person]
    return rule


def split_dataset(entry: SuiteDataset, index: DatasetIndex | None, *, seed: int, published_root: Path) -> DatasetSplit:
    """One dataset's split from its index (None: data not at hand) and the suite's rule."""
    split = _split_subjects(entry, index, seed=seed, published_root=published_root)
    return split.model_copy(update={"scored_region": entry.scored_region})


def _split_subjects(entry: SuiteDataset, index: DatasetIndex | None, *, seed: int, published_root: Path) -> DatasetSplit:
    rule = _rule_of(entry, seed)
    if entry.published_split:
        test = _published_test_subjects(published_root, entry.published_split)
        files = _files_of(index, set(test)) if index else {}
        return DatasetSplit(role=entry.role, status="fixed", rule=rule, test=test, files=files)
    if index is None:
        return DatasetSplit(role=entry.role, status="rule-only", rule=rule)
    by_subject = _labelled_subjects(index)
    excluded = {subject: "no image with a cord mask" for subject in index.subjects() if subject not in by_subject}
    if entry.role == "ood":
        test = sorted(by_subject)
        return DatasetSplit(role="ood", status="fixed", rule=rule, test=test,
                        files=_files_of(index, set(test)), excluded=excluded)
    dataset = load_dataset(entry.id)
    people: dict[str, tuple] = {}
    for subject, cases in by_subject.items():
        people.setdefault(dataset.person_of(subject), _stratum(cases, entry.id, list(entry.stratify_by)))
    _train_people, test_people = assign_people(people, seed=seed, dataset_id=entry.id,
                                               test_fraction=entry.test_fraction or 0.2)
    test = sorted(subject for subject in by_subject if dataset.person_of(subject) in test_people)
    train = sorted(subject for subject in by_subject if dataset.person_of(subject) not in test_people)
    return DatasetSplit(role="in-domain", status="fixed", rule=rule, train=train, test=test,
                        files=_files_of(index, set(train) | set(test)), excluded=excluded)


def dataset_folder(dataset_id: str, data_root: Path | None, overrides: dict[str, Path] | None = None) -> Path | None:
    """Where a dataset lives: an explicit override, else its absolute ``local_path``, else
    ``<data_root>/<folder name>`` (data root: the one given, else the active workspace's ``data_root``), else None."""
    if overrides and dataset_id in overrides:
        return Path(overrides[dataset_id])
    local_path = load_dataset(dataset_id).local_path
    if local_path and Path(local_path).expanduser().is_absolute():
        folder = Path(local_path).expanduser()
        return folder if folder.is_dir() else None
    if data_root is None:
        active = workspace.active()
        data_root = active.default_data_root() if active else None
    if data_root is None:
        return None
    candidate = Path(data_root) / load_dataset(dataset_id).folder_name
    return candidate if candidate.is_dir() else None


def make_split(
    suite: Suite,
    *,
    data_root: Path | None,
    overrides: dict[str, Path] | None = None,
    published_root: Path,
    existing: SplitFile | None = None,
) -> SplitFile:
    """Make (or complete) a suite's split. Fixed entries of ``existing`` are never changed."""
    fresh, _indexes = fresh_split(suite, data_root=data_root, overrides=overrides, published_root=published_root)
    return complete_split(suite, fresh, existing)


def fresh_split(
    suite: Suite,
    *,
    data_root: Path | None,
    overrides: dict[str, Path] | None = None,
    published_root: Path,
) -> tuple[SplitFile, dict[str, DatasetIndex]]:
    """The split the data at hand give now, ignoring any frozen one, and the index of every dataset found. Masks
    off their image's grid are refused here, before anything is frozen (they could never be scored)."""
    from benchmark.data.grids import off_grid_masks

    datasets: dict[str, DatasetSplit] = {}
    indexes: dict[str, DatasetIndex] = {}
    for entry in suite.datasets:
        folder = dataset_folder(entry.id, data_root, overrides)
        index = index_dataset(folder, load_dataset(entry.id)) if folder else None
        if index is not None:
            indexes[entry.id] = index
        datasets[entry.id] = split_dataset(entry, index, seed=suite.seed, published_root=published_root)
    off_grid = [problem for index in indexes.values() for problem in off_grid_masks(index)]
    if off_grid:
        shown = "; ".join(problem.line() for problem in off_grid[:3])
        raise SplitError(f"suite {suite.id}: {len(off_grid)} mask(s) not on their image's grid, nothing was frozen "
                         f"(they could never be scored): {shown}" + (" ..." if len(off_grid) > 3 else ""))
    split = SplitFile(suite=suite.id, seed=suite.seed, made_with=f"cordbench {__version__}", datasets=datasets)
    split.version = split.content_hash()
    return split, indexes


def complete_split(suite: Suite, fresh: SplitFile, existing: SplitFile | None) -> SplitFile:
    """``fresh`` with every dataset frozen in ``existing`` kept as it was frozen (subjects, checksums, rule); the
    scored region is the suite's current choice. A frozen dataset whose data now give other subjects is refused:
    only an explicit re-freeze (``splits make --refreeze``) makes a new version of it. A dataset whose role, test
    fraction, strata or published list the suite file now sets differently is split afresh: the suite was changed
    on purpose (``cordbench suites add``), and the caller says so."""
    datasets: dict[str, DatasetSplit] = {}
    for entry in suite.datasets:
        now = fresh.datasets[entry.id]
        previous = existing.datasets.get(entry.id) if existing else None
        if previous is not None and previous.status == "fixed" and _suite_rule(previous) != _suite_rule(now):
            datasets[entry.id] = now  # the suite itself was changed (role, test fraction, ...): a deliberate new split
        elif previous is not None and previous.status == "fixed":
            if now.status == "fixed" and _assignment(now) != _assignment(previous):
                raise SplitError(_frozen_message(suite.id, entry.id, previous, now))
            # the subjects stay frozen; the scored region is the suite's current choice (and changes the version)
            datasets[entry.id] = previous.model_copy(update={"scored_region": entry.scored_region})
        else:
            datasets[entry.id] = now
    split = SplitFile(suite=suite.id, seed=suite.seed, made_with=f"cordbench {__version__}", datasets=datasets)
    split.version = split.content_hash()
    return split


#: the parts of a dataset's rule that the suite file decides (the rest comes from the data and the dataset file)
SUITE_RULE_KEYS = ("test_fraction", "stratify_by", "published_split", "test")


def _suite_rule(split: DatasetSplit) -> tuple:
    return (split.role, *(json.dumps(split.rule.get(key), sort_keys=True) for key in SUITE_RULE_KEYS))


def _assignment(split: DatasetSplit) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(split.train), tuple(split.test)


def _frozen_message(suite_id: str, dataset_id: str, previous: DatasetSplit, fresh: DatasetSplit) -> str:
    old = set(previous.train) | set(previous.test)
    new = set(fresh.train) | set(fresh.test)
    return (
        f"{split_path(suite_id)}: the split of {dataset_id!r} is frozen and the data now give a different one "
        f"({len(new - old)} new subjects, {len(old - new)} gone, e.g. {sorted(new ^ old)[:5]}). "
        f"Frozen splits are never changed silently: `cordbench splits make --suite {suite_id} --refreeze` makes a "
        "new version (the current file is kept, and results scored on it stay under its version)."
    )


@dataclass
class VerifyReport:
    suite: str
    version: str
    checked: list[str] = field(default_factory=list)
    not_checked: dict[str, str] = field(default_factory=dict)
    missing_subjects: dict[str, list[str]] = field(default_factory=dict)
    extra_subjects: dict[str, list[str]] = field(default_factory=dict)
    missing_files: dict[str, list[str]] = field(default_factory=dict)
    changed_files: dict[str, list[str]] = field(default_factory=dict)
    not_downloaded: dict[str, list[str]] = field(default_factory=dict)
    extra_files: dict[str, list[str]] = field(default_factory=dict)  # images/masks of split subjects not listed
    off_grid: dict[str, list[str]] = field(default_factory=dict)  # masks not on their image's grid
    grid_problems: dict[str, str] = field(default_factory=dict)  # "<dataset>: <mask>" -> shapes and affines

    @property
    def ok(self) -> bool:
        problems = (self.missing_subjects, self.extra_subjects, self.missing_files, self.changed_files,
                    self.extra_files, self.off_grid)
        return not any(any(values) for values in (problem.values() for problem in problems))


def verify_split(
    split: SplitFile,
    *,
    data_root: Path | None,
    overrides: dict[str, Path] | None = None,
    only: list[str] | None = None,
) -> VerifyReport:
    """Compare local copies with the split: subjects missing or extra, files missing or changed."""
    report = VerifyReport(suite=split.suite, version=split.version)
    for dataset_id, entry in split.datasets.items():
        if only and dataset_id not in only:
            continue
        folder = dataset_folder(dataset_id, data_root, overrides)
        if folder is None:
            report.not_checked[dataset_id] = "no local copy under the data root"
            continue
        if entry.status == "rule-only":
            report.not_checked[dataset_id] = "split not frozen yet (run `cordbench splits make`)"
            continue
        index = index_dataset(folder, load_dataset(dataset_id))
        _verify_dataset(report, dataset_id, entry, index)
    return report


def _verify_dataset(report: VerifyReport, dataset_id: str, entry: DatasetSplit, index: DatasetIndex) -> None:
    report.checked.append(dataset_id)
    expected = set(entry.train) | set(entry.test)
    local = set(_labelled_subjects(index))
    report.missing_subjects[dataset_id] = sorted(expected - local)
    report.extra_subjects[dataset_id] = sorted(local - expected - set(entry.excluded)) if entry.files else []
    local_files = {case.image.path: case.image for case in index.pairs}
    local_files.update({case.label.path: case.label for case in index.pairs})
    missing, changed, absent = [], [], []
    for relative, digest in sorted(entry.files.items()):
        info = local_files.get(relative)
        if info is None:
            missing.append(relative)
            continue
        if info.state != "present":
            absent.append(relative)
        actual = file_checksum(index.root, info)
        if digest is not None and actual is not None and actual != digest:
            changed.append(relative)
    report.missing_files[dataset_id] = missing
    report.changed_files[dataset_id] = changed
    report.not_downloaded[dataset_id] = absent
    in_split = [case for case in index.pairs if case.subject in expected]
    report.extra_files[dataset_id] = sorted(
        path for case in in_split for path in (case.image.path, case.label.path) if path not in entry.files
    ) if entry.files else []
    report.off_grid[dataset_id] = []
    for case in in_split:
        problem = _grid_problem(index.root, case)
        if problem is not None:
            report.off_grid[dataset_id].append(case.label.path)
            report.grid_problems[f"{dataset_id}: {case.label.path}"] = problem


def _grid_problem(root: Path, case: Case) -> str | None:
    """Why the mask is not on its image's grid (shapes and affines; headers only), or None. Files not downloaded are
    not judged here (they are reported as not downloaded), nor unreadable ones (their checksum check names them)."""
    from benchmark.data.grids import grid_problem

    if case.image.state != "present" or case.label.state != "present":
        return None
    problem = grid_problem(root / case.image.path, root / case.label.path)
    return problem if problem is not None and problem.startswith("not on") else None

