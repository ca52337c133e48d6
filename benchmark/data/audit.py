"""Content-hash leakage audit: is any test image, byte for byte, among the images a model declares it trained on?

Subject lists catch a model trained on a test subject of the SAME dataset (``subject_in_training`` in the
results). They miss the common case of the same scan re-released under another dataset's name (spine-generic
scans inside a later multi-site set, a challenge's images in a toolbox's test data). This audit compares
sha256 content hashes instead:

* **test images**: every image of every test subject of every suite's split (the split file stores each file's
  sha256; a file whose checksum the split lacks is hashed from the data root when it is there);
* **training images of a submission**: the images of every (dataset, subject) it declares (``training.subjects``,
  or the train subjects of ``training.split``), also through ``adapted_from``; hashes from the data root when the
  dataset is there, else from any split file that lists the subject's files. A declared dataset without a
  subject list, or a subject whose images are known nowhere, is reported as **unresolved**, never ignored;
* **findings**: a test image whose hash is among a submission's training images; written to
  ``submissions/<name>/audit.json`` in the workspace (never the package); the leaderboard marks those rows
  leaked (hidden by default);
* **declared leaks**: a test image whose PERSON the submission declares as training data (the rule scoring uses
  for ``subject_in_training``, :mod:`benchmark.data.declaration`), whatever its content;
* **cross-split duplicates**: the same content under two test splits (or a test image that is also another
  split's training image), listed once for the whole benchmark.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from benchmark.data.bids_index import index_dataset
from benchmark.data.declaration import training_declaration
from benchmark.errors import CordbenchError
from benchmark.io import atomic_write_json, sha256_file
from benchmark.data.registry import RegistryError, list_suites, load_dataset
from benchmark.data.splits import SplitError, SplitFile, dataset_folder, load_split
from benchmark.data.submissions import Submission, output_dir

AUDIT_NAME = "audit.json"
_SUBJECT = re.compile(r"^(sub-[^/]+)/")


class AuditError(CordbenchError, ValueError):
    """An audit file that cannot be read; the message names the file."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImageRecord(_Strict):
    dataset: str
    subject: str
    path: str = Field(description="Relative to the dataset root")
    sha256: str
    source: str = Field(description="Where the hash comes from: 'split <suite>' or 'data <folder>'")

    @property
    def case_id(self) -> str:
        return f"{self.dataset}:{self.path}"


class Finding(_Strict):
    """A test image identical in content to an image the submission declares as training data."""

    suite: str
    case_id: str = Field(description="The test case, as in the results files")
    sha256: str
    training_dataset: str
    training_subject: str
    training_image: str


class SubmissionAudit(_Strict):
    submission: str
    training_images: int = Field(description="Declared training images whose content hash is known")
    findings: list[Finding] = Field(default_factory=list)
    declared_leaks: list[str] = Field(default_factory=list, description="Test cases whose person the submission (or "
                                      "a submission it was adapted from) declares as training data: scoring flags "
                                      "them subject_in_training")
    unresolved: list[str] = Field(default_factory=list, description="Declared training data the audit could not resolve")


class Duplicate(_Strict):
    """One content hash found at several places, at least one of them a test image."""

    sha256: str
    places: list[str] = Field(description="'<suite> test|train <dataset>:<path>'")


class AuditReport(_Strict):
    test_images: int
    suites: list[str]
    not_checked: list[str] = Field(default_factory=list, description="Test subjects without any content hash")
    submissions: list[SubmissionAudit]
    duplicates: list[Duplicate] = Field(default_factory=list)

    @property
    def leaked(self) -> bool:
        return any(audit.findings or audit.declared_leaks for audit in self.submissions)


def _image_paths(split_files: Mapping[str, str | None]) -> Iterable[tuple[str, str, str | None]]:
    """(subject, path, sha256) of the image files (not derivatives) a split lists."""
    for path, digest in split_files.items():
        match = _SUBJECT.match(path)
        if match and not path.startswith("derivatives/"):
            yield match.group(1), path, digest


class Catalogue:
    """Content hashes of images by (dataset, subject), from split files and (preferred) data on disk."""

    def __init__(self, splits: Mapping[str, SplitFile], data_root: Path | None = None,
                 overrides: Mapping[str, Path] | None = None):
        self._images: dict[tuple[str, str], dict[str, ImageRecord]] = defaultdict(dict)
        self._on_disk: set[str] = set()
        for suite_id, split in splits.items():
            for dataset_id, entry in split.datasets.items():
                for subject, path, digest in _image_paths(entry.files):
                    if digest:
                        self._images[(dataset_id, subject)].setdefault(
                            path, ImageRecord(dataset=dataset_id, subject=subject, path=path, sha256=digest,
                                              source=f"split {suite_id}"))
        self._data_root, self._overrides = data_root, dict(overrides or {})

    def _read_disk(self, dataset_id: str) -> None:
        if dataset_id in self._on_disk:
            return
        self._on_disk.add(dataset_id)
        try:
            folder = dataset_folder(dataset_id, self._data_root, self._overrides)
            dataset = load_dataset(dataset_id)
        except RegistryError:
            return
        if folder is None:
            return
        for case in index_dataset(folder, dataset).cases:
            if case.image.state == "present":
                self._images[(dataset_id, case.subject)][case.image.path] = ImageRecord(
                    dataset=dataset_id, subject=case.subject, path=case.image.path,
                    sha256=sha256_file(folder / case.image.path), source=f"data {folder}")

    def images(self, dataset_id: str, subject: str) -> list[ImageRecord]:
        self._read_disk(dataset_id)
        return list(self._images.get((dataset_id, subject), {}).values())


def all_splits() -> dict[str, SplitFile]:
    splits = {}
    for suite in list_suites():
        try:
            splits[suite.id] = load_split(suite.id)
        except SplitError:
            continue
    return splits


def declared_training(submission: Submission, root: Path | None = None) -> tuple[dict[str, set[str]], list[str]]:
    """dataset -> declared training subjects (through adapted_from), and what cannot be resolved: the one rule of
    :func:`benchmark.data.declaration.training_declaration` (a cycle or an unknown parent is an error)."""
    declaration = training_declaration(submission, root)
    unresolved = list(declaration.split_problems)
    for owner, dataset_id in declaration.unlisted:
        via = "" if owner == submission.name else f"via {owner}: "
        unresolved.append(f"{via}declares training dataset {dataset_id!r} without a subject list or split: the "
                          "audit cannot tell which of its images were trained on")
    return {dataset_id: set(listed) for dataset_id, listed in declaration.subjects.items()}, unresolved


def declared_leaks(submission: Submission, tests: list[tuple[str, ImageRecord]], root: Path | None = None) -> list[str]:
    """Test images whose person the submission (or an ancestor) declares it was trained on: the rows scoring
    flags ``subject_in_training`` (same rule, so ``score`` and ``audit`` agree), whatever their content."""
    declaration = training_declaration(submission, root)
    people = declaration.people()
    found = set()
    for _suite, record in tests:
        if record.dataset in people:
            person = load_dataset(record.dataset).person_of(record.subject)
            if person in people[record.dataset]:
                found.add(record.case_id)
    return sorted(found)


def test_images(splits: Mapping[str, SplitFile], catalogue: Catalogue) -> tuple[list[tuple[str, ImageRecord]], list[str]]:
    """(suite, image) of every test image with a content hash, and the test subjects that have none."""
    found: list[tuple[str, ImageRecord]] = []
    missing: list[str] = []
    for suite_id, split in splits.items():
        for dataset_id, entry in split.datasets.items():
            listed = defaultdict(list)
            for subject, path, digest in _image_paths(entry.files):
                if digest:
                    listed[subject].append(ImageRecord(dataset=dataset_id, subject=subject, path=path, sha256=digest,
                                                       source=f"split {suite_id}"))
            for subject in entry.test:
                records = listed.get(subject) or catalogue.images(dataset_id, subject)
                if not records:
                    missing.append(f"{suite_id} {dataset_id}:{subject}")
                found += [(suite_id, record) for record in records]
    return found, missing


def _duplicates(splits: Mapping[str, SplitFile], tests: list[tuple[str, ImageRecord]]) -> list[Duplicate]:
    places: dict[str, set[str]] = defaultdict(set)
    for suite_id, record in tests:
        places[record.sha256].add(f"{suite_id} test {record.case_id}")
    test_hashes = set(places)
    for suite_id, split in splits.items():
        for dataset_id, entry in split.datasets.items():
            train = set(entry.train)
            for subject, path, digest in _image_paths(entry.files):
                if digest in test_hashes and subject in train:
                    places[digest].add(f"{suite_id} train {dataset_id}:{path}")
    duplicates = []
    for digest, where in sorted(places.items()):
        distinct = {place.split(" ", 2)[2] for place in where}
        if len(distinct) > 1:
            duplicates.append(Duplicate(sha256=digest, places=sorted(where)))
    return duplicates


def audit_submission(submission: Submission, tests: list[tuple[str, ImageRecord]], catalogue: Catalogue,
                     root: Path | None = None) -> SubmissionAudit:
    subjects, unresolved = declared_training(submission, root)
    training: dict[str, list[ImageRecord]] = defaultdict(list)
    count = 0
    for dataset_id, listed in sorted(subjects.items()):
        for subject in sorted(listed):
            records = catalogue.images(dataset_id, subject)
            if not records:
                unresolved.append(f"training subject {dataset_id}:{subject}: no content hash known (not in any "
                                  "split file, dataset not under the data root)")
            for record in records:
                training[record.sha256].append(record)
                count += 1
    findings = []
    for suite_id, record in tests:
        for source in training.get(record.sha256, []):
            findings.append(Finding(suite=suite_id, case_id=record.case_id, sha256=record.sha256,
                                    training_dataset=source.dataset, training_subject=source.subject,
                                    training_image=source.path))
    return SubmissionAudit(submission=submission.name, training_images=count, findings=findings,
                           declared_leaks=declared_leaks(submission, tests, root), unresolved=unresolved)


def run_audit(submissions: list[Submission], *, data_root: Path | None = None,
              overrides: Mapping[str, Path] | None = None, splits: Mapping[str, SplitFile] | None = None,
              submissions_root: Path | None = None) -> AuditReport:
    """Audit every submission against every suite's test images (see the module docstring)."""
    splits = dict(splits) if splits is not None else all_splits()
    catalogue = Catalogue(splits, data_root, overrides)
    tests, missing = test_images(splits, catalogue)
    audits = [audit_submission(submission, tests, catalogue, submissions_root) for submission in submissions]
    return AuditReport(test_images=len(tests), suites=sorted(splits), not_checked=missing, submissions=audits,
                       duplicates=_duplicates(splits, tests))


def write_submission_audits(report: AuditReport, submissions: list[Submission]) -> list[Path]:
    """``audit.json`` (findings and unresolved declarations) in every audited submission's output folder: its own
    folder, or for a built-in submission the workspace's ``submissions/<name>/`` (the package is never written)."""
    by_name = {submission.name: submission for submission in submissions if submission.folder}
    written = []
    for audit in report.submissions:
        if audit.submission in by_name:
            path = output_dir(by_name[audit.submission]) / AUDIT_NAME
            atomic_write_json(path, audit.model_dump(mode="json"))
            written.append(path)
    return written


def audit_folder(submission_folder: Path, submission_name: str) -> Path:
    """Where the audit of the submission whose results live in ``submission_folder`` is: that folder, or for a
    built-in submission (results shipped with cordbench) the active workspace's ``submissions/<name>/``."""
    from benchmark import workspace

    active = workspace.active()
    if active is not None and workspace.origin_of(submission_folder) == "built-in":
        return active.submission_dir(submission_name)
    return Path(submission_folder)


def leaked_case_ids(submission_folder: Path) -> set[str]:
    """Case ids the last audit found leaked for the submission in this folder (empty when never audited)."""
    path = Path(submission_folder) / AUDIT_NAME
    if not path.is_file():
        return set()
    try:
        audit = SubmissionAudit.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as error:
        raise AuditError(f"{path}: cannot read audit file ({error})") from error
    return {finding.case_id for finding in audit.findings} | set(audit.declared_leaks)


def mark_audited_leaks(result, results_file: Path):
    """A copy of a results file whose rows found leaked by the audit (``audit.json`` in the submission folder,
    two levels above ``results/<suite>_<version>.json``) carry ``subject_in_training=True``."""
    leaked = leaked_case_ids(audit_folder(Path(results_file).parent.parent, result.submission))
    if not leaked:
        return result
    cases = [case.model_copy(update={"subject_in_training": True}) if case.case_id in leaked else case
             for case in result.cases]
    return result.model_copy(update={"cases": cases})


__all__ = ["AUDIT_NAME", "AuditReport", "Catalogue", "Duplicate", "Finding", "ImageRecord", "SubmissionAudit",
           "audit_submission", "declared_leaks", "declared_training", "leaked_case_ids", "mark_audited_leaks", "run_audit",
           "test_images", "write_submission_audits"]
