"""Find every image and its cord mask in a BIDS dataset, fast, without reading image content.

The dataset's registry entry says which files are images (``images[].glob``) and where each image's
mask lives (``images[].label``, a template). One walk of the tree collects every file; images, masks,
participants.tsv rows and (on request) sidecar JSON are then joined in memory.

Content that is not there is recognised, never read as NIfTI: a git-annex pointer file (a small text
file holding ``/annex/objects/<key>``), a broken annex symlink (``.git/annex/objects/...`` that does not
resolve), and a text file holding such a symlink target (what a copy of a datalad tree without
symlinks looks like). Each is listed as "not downloaded", with the command that fetches it.
"""

from __future__ import annotations

import csv
import json
import os
import re
import stat
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

from benchmark.errors import CordbenchError
from benchmark.data.registry import Dataset, ImageRule

FileState = Literal["present", "annex-pointer", "broken-symlink", "missing"]
NOT_DOWNLOADED: tuple[FileState, ...] = ("annex-pointer", "broken-symlink")
_POINTER_MAX_BYTES = 1024
_ANNEX_KEY = re.compile(r"(?P<backend>SHA256E?)-s(?P<size>\d+)--(?P<digest>[0-9a-f]{64})")
_SKIP_DIRS = {".git", ".datalad", "code", "sourcedata"}


class BidsIndexError(CordbenchError, ValueError):
    """The dataset folder cannot be indexed (missing, not BIDS-like, bad participants.tsv)."""


@dataclass(frozen=True)
class FileInfo:
    """What is known about one file without reading its image content."""

    path: str  # relative to the dataset root
    state: FileState
    annex_sha256: str | None = None  # the content's sha256 when the annex key carries it
    size: int | None = None

    @property
    def downloaded(self) -> bool:
        return self.state == "present"


@dataclass
class Case:
    """One image of one subject and, when it exists, its cord mask."""

    dataset: str
    subject: str  # the participant id, e.g. "sub-9709Ses1"
    person: str  # one id per human being (several participant ids can be one person)
    session: str | None
    datatype: str
    contrast: str
    entities: dict[str, str]
    image: FileInfo
    label: FileInfo | None
    participant: dict[str, str] = field(default_factory=dict)
    sidecar: dict | None = None

    @property
    def case_id(self) -> str:
        return f"{self.dataset}:{self.image.path}"

    @property
    def usable(self) -> bool:
        return self.label is not None and self.image.downloaded and self.label.downloaded


@dataclass
class DatasetIndex:
    dataset_id: str
    root: Path
    cases: list[Case]
    labels_without_image: list[str]
    participants: dict[str, dict[str, str]]

    @property
    def pairs(self) -> list[Case]:
        return [case for case in self.cases if case.label is not None]

    @property
    def images_without_label(self) -> list[Case]:
        return [case for case in self.cases if case.label is None]

    def not_downloaded(self) -> list[FileInfo]:
        infos = [case.image for case in self.cases]
        infos += [case.label for case in self.cases if case.label is not None]
        return sorted((info for info in infos if info.state in NOT_DOWNLOADED), key=lambda info: info.path)

    def subjects(self) -> list[str]:
        return sorted({case.subject for case in self.cases})

    def fetch_command(self, paths: list[str] | None = None) -> str:
        """The command that downloads missing content (git-annex and datalad trees alike)."""
        targets = " ".join(paths) if paths else "."
        return f"cd {self.root} && git annex get {targets}   # or: datalad get {targets}"


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Translate a path glob: ``*`` and ``?`` stay inside one folder, ``**/`` spans any number of folders."""
    out: list[str] = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out.append("(?:[^/]+/)*")
            index += 3
        elif pattern[index] == "*":
            out.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            out.append("[^/]")
            index += 1
        else:
            out.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(out) + r"\Z")


def template_to_regex(template: str) -> re.Pattern[str]:
    """A label template with every ``{placeholder}`` matching any text without ``/`` (``{dir}`` spans folders)."""
    parts = re.split(r"(\{[a-z]+\})", template)
    out = []
    for part in parts:
        if part == "{dir}":
            out.append(r"[^\s]+?")
        elif part.startswith("{") and part.endswith("}"):
            out.append(r"[^/]+")
        else:
            out.append(re.escape(part))
    return re.compile("".join(out) + r"\Z")


def parse_entities(filename: str) -> tuple[dict[str, str], str]:
    """BIDS entities and suffix of a file name: ``sub-01_acq-ax_T2w.nii.gz`` -> ({sub: 01, acq: ax}, T2w)."""
    stem = strip_nifti(filename)
    tokens = stem.split("_")
    entities: dict[str, str] = {}
    suffix = ""
    for token in tokens:
        key, sep, value = token.partition("-")
        if sep and key and value:
            entities[key] = value
        else:
            suffix = token
    return entities, suffix


def strip_nifti(filename: str) -> str:
    for ending in (".nii.gz", ".nii"):
        if filename.endswith(ending):
            return filename[: -len(ending)]
    return filename


def classify_file(path: Path) -> tuple[FileState, str | None, int | None]:
    """(state, annex sha256, size) of one file from lstat and, for tiny files, their first bytes."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return "missing", None, None
    if stat.S_ISLNK(info.st_mode):
        target = os.readlink(path)
        if os.path.exists(path):
            return "present", None, os.stat(path).st_size
        return "broken-symlink", _annex_sha256(target), None
    if info.st_size <= _POINTER_MAX_BYTES:
        with open(path, "rb") as handle:
            head = handle.read(_POINTER_MAX_BYTES)
        if not head.startswith(b"\x1f\x8b") and b"annex/objects/" in head:
            text = head.decode("utf-8", "replace").strip()
            state: FileState = "broken-symlink" if ".git/annex/objects/" in text else "annex-pointer"
            return state, _annex_sha256(text), info.st_size
    return "present", None, info.st_size


def _annex_sha256(text: str) -> str | None:
    match = _ANNEX_KEY.search(text)
    return match.group("digest") if match else None


def _walk_files(root: Path) -> list[str]:
    """Every file (or symlink) below root as a relative POSIX path, skipping VCS and code folders."""
    found: list[str] = []
    root_text = str(root)
    prefix_length = len(root_text) + 1
    for folder, subfolders, files in os.walk(root_text):
        subfolders[:] = [name for name in subfolders if name not in _SKIP_DIRS and not name.startswith(".")]
        # os.walk lists symlinks to folders as folders; annex symlinks point to files, so they are in `files`
        relative_folder = folder[prefix_length:].replace(os.sep, "/")
        for name in files:
            found.append(f"{relative_folder}/{name}" if relative_folder else name)
    return found


def read_participants(root: Path) -> dict[str, dict[str, str]]:
    path = root / "participants.tsv"
    if not path.exists():
        return {}
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return _participant_rows(path, csv.DictReader(handle, delimiter="\t"))
    except UnicodeDecodeError as error:
        raise BidsIndexError(f"{path}: not UTF-8 text (byte {error.start}: {error.reason})") from error
    except csv.Error as error:
        raise BidsIndexError(f"{path}: not a readable tab-separated table ({error})") from error


def _participant_rows(path: Path, reader: csv.DictReader) -> dict[str, dict[str, str]]:
    if not reader.fieldnames or "participant_id" not in reader.fieldnames:
        raise BidsIndexError(f"{path}: no 'participant_id' column (columns: {reader.fieldnames})")
    rows: dict[str, dict[str, str]] = {}
    lines: dict[str, int] = {}
    for line_number, row in enumerate(reader, start=2):
        if None in row:
            raise BidsIndexError(f"{path}: line {line_number}: more fields than the {len(reader.fieldnames)} columns")
        participant = (row.get("participant_id") or "").strip()
        if not participant:
            raise BidsIndexError(f"{path}: line {line_number}: empty participant_id")
        values = {key: (value or "").strip() for key, value in row.items() if key}
        if participant in rows and rows[participant] != values:
            # which row would win is an accident of order: the site or pathology of a case must not depend on it
            differing = sorted(key for key in values if values[key] != rows[participant].get(key))
            raise BidsIndexError(f"{path}: lines {lines[participant]} and {line_number} both describe {participant} "
                                 f"with different values ({', '.join(differing)}); keep one row per participant")
        rows[participant] = values
        lines.setdefault(participant, line_number)
    return rows


@lru_cache(maxsize=64)
def _compiled_rules(rules: tuple[ImageRule, ...]) -> list[tuple[ImageRule, re.Pattern[str], re.Pattern[str]]]:
    return [(rule, glob_to_regex(rule.glob), template_to_regex(rule.label)) for rule in rules]


def _label_path(rule: ImageRule, image_path: str, entities: dict[str, str], root: Path) -> str:
    folder, _, filename = image_path.rpartition("/")
    values = {**entities, "dir": folder, "stem": strip_nifti(filename)}
    try:
        return rule.label.format(**values)
    except KeyError as error:
        raise BidsIndexError(
            f"{root / image_path}: the label template {rule.label!r} needs the entity {error.args[0]!r}, "
            "which this file name does not have"
        ) from None


def index_dataset(root: Path, dataset: Dataset, *, with_sidecars: bool = False) -> DatasetIndex:
    """Index one dataset folder: images, their masks, participants, and what is not downloaded."""
    root = Path(root)
    if not root.is_dir():
        raise BidsIndexError(f"{root}: dataset folder for {dataset.id!r} does not exist")
    files = _walk_files(root)
    file_set = set(files)
    participants = read_participants(root)
    rules = _compiled_rules(tuple(dataset.images))

    cases: list[Case] = []
    claimed_labels: set[str] = set()
    candidate_labels: set[str] = set()
    for relative in files:
        if relative.startswith("derivatives/"):
            if any(label_regex.match(relative) for _, _, label_regex in rules):
                candidate_labels.add(relative)
            continue
        for rule, image_regex, _ in rules:
            if not image_regex.match(relative):
                continue
            cases.append(_make_case(root, dataset, rule, relative, file_set, participants, with_sidecars))
            if cases[-1].label is not None:
                claimed_labels.add(cases[-1].label.path)
            break
    cases.sort(key=lambda case: case.image.path)
    return DatasetIndex(
        dataset_id=dataset.id,
        root=root,
        cases=cases,
        labels_without_image=sorted(candidate_labels - claimed_labels),
        participants=participants,
    )


def _make_case(
    root: Path,
    dataset: Dataset,
    rule: ImageRule,
    relative: str,
    file_set: set[str],
    participants: dict[str, dict[str, str]],
    with_sidecars: bool,
) -> Case:
    filename = relative.rpartition("/")[2]
    entities, _suffix = parse_entities(filename)
    if "sub" not in entities:
        raise BidsIndexError(f"{root / relative}: file name has no sub- entity")
    subject = f"sub-{entities['sub']}"
    datatype = relative.rpartition("/")[0].rpartition("/")[2]
    label_relative = _label_path(rule, relative, entities, root)
    label = None
    if label_relative in file_set:
        state, digest, size = classify_file(root / label_relative)
        label = FileInfo(label_relative, state, digest, size)
    state, digest, size = classify_file(root / relative)
    sidecar = None
    if with_sidecars:
        sidecar_path = root / (strip_nifti(relative) + ".json")
        if sidecar_path.exists():
            sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
    return Case(
        dataset=dataset.id,
        subject=subject,
        person=dataset.person_of(subject),
        session=entities.get("ses"),
        datatype=datatype,
        contrast=rule.contrast,
        entities=entities,
        image=FileInfo(relative, state, digest, size),
        label=label,
        participant=participants.get(subject, {}),
        sidecar=sidecar,
    )


def participant_field(case: Case, dataset: Dataset, field_name: str) -> str | None:
    """A participants.tsv value named by the registry (site, vendor, pathology, ...), or None."""
    column = getattr(dataset.participants, field_name)
    if not column:
        return None
    value = case.participant.get(column)
    return value if value not in (None, "", "n/a") else None
