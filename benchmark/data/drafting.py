"""Draft a dataset's registry entry by looking at a BIDS folder (``cordbench datasets add``), and try image rules
on a folder that is not registered (``cordbench index PATH --image-glob ... --label ...``).

What is guessed, and how:
- images: NIfTI files outside ``derivatives/`` under a BIDS datatype folder (anat, func, dwi); one rule per
  (datatype, suffix) that has at least one mask;
- masks: files under ``derivatives/<folder>/`` whose name is an image's name plus a tail (``_seg-manual``,
  ``_label-SC_seg``, ``_desc-spinalcordmask``); per derivatives folder the tail naming the cord is preferred
  (grey matter, white matter, lesion and rootlet masks are not the cord), then the most frequent;
- participants.tsv: columns named like site, manufacturer, pathology, field strength, segmentation type.
Everything guessed is printed; the draft is validated and indexed before it is written.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from benchmark.data.bids_index import (BidsIndexError, DatasetIndex, _walk_files, index_dataset, parse_entities,
                                  read_participants, strip_nifti)
from benchmark.data.derivatives import DERIVATIVE_ENTITIES
from benchmark.data.registry import Dataset, ImageRule, RegistryError

DATATYPES = ("anat", "func", "dwi")
NOT_CORD = ("gm", "wm", "lesion", "rootlet", "csf", "disc", "centerline", "label-GM", "label-WM")
COLUMN_GUESSES = {
    "site": ("site", "institution_id", "institution", "center", "centre"),
    "vendor": ("manufacturer", "vendor", "scanner_manufacturer"),
    "field_strength": ("field_strength", "magneticfieldstrength", "field"),
    "pathology": ("pathology", "diagnosis", "group"),
    "gt_provenance": ("segmentation_type", "gt_provenance", "mask_provenance"),
}


@dataclass
class DraftGuesses:
    """What was seen and guessed, for the user to check."""

    root: Path
    subjects: int = 0
    images: Counter = field(default_factory=Counter)  # (datatype, suffix) -> images
    label_tails: dict[tuple[str, str], Counter] = field(default_factory=dict)  # (datatype, suffix) -> (folder, tail)
    chosen: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    unlabelled: list[tuple[str, str]] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)
    participant_columns: list[str] = field(default_factory=list)
    participants_file: bool = False  # whether participants.tsv exists
    sessions: bool = False

    def lines(self) -> list[str]:
        out = [f"{self.root}: {self.subjects} subjects, {sum(self.images.values())} images"
               + (" (with sessions)" if self.sessions else "")]
        for (datatype, suffix), count in sorted(self.images.items()):
            chosen = self.chosen.get((datatype, suffix))
            where = (f"masks derivatives/{chosen[0]}/{_shown(chosen[1], suffix)}" if chosen
                     else "no mask found: not used")
            out.append(f"  {datatype}/{suffix}: {count} images; {where}")
            others = [f"{folder}/{_shown(tail, suffix)}" for (folder, tail), _ in self.label_tails.get((datatype, suffix), Counter())
                      .most_common() if (folder, tail) != chosen]
            if others:
                out.append(f"    other masks seen (not used): {', '.join(others[:6])}")
        if not self.participants_file:
            out.append("  participants.tsv: absent (site, vendor, pathology and mask provenance unknown; add one to "
                       "stratify or filter by them)")
        else:
            out.append("  participants.tsv columns: " + (", ".join(self.participant_columns)
                                                         or "none besides participant_id"))
        for role, column in self.columns.items():
            out.append(f"    {role}: {column}")
        return out


def _shown(tail: str, suffix: str) -> str:
    return tail.removeprefix(TEMPLATE_MARK) if tail.startswith(TEMPLATE_MARK) else f"..._{suffix}{tail}"


def _cord_rank(folder: str, tail: str, count: int) -> tuple:
    lowered = tail.lower()
    not_cord = any(word.lower() in lowered for word in NOT_CORD)
    says_cord = any(word in lowered for word in ("sc_", "label-sc", "spinalcord", "cord", "_seg"))
    return (not_cord, not says_cord, -count, folder, tail)


def survey(root: Path) -> DraftGuesses:
    """Look at a BIDS folder: images per (datatype, suffix), candidate masks, participants.tsv columns."""
    root = Path(root)
    if not root.is_dir():
        raise BidsIndexError(f"{root}: not a folder")
    guesses = DraftGuesses(root)
    files = _walk_files(root)
    images: dict[str, tuple[str, str]] = {}  # relative path without extension -> (datatype, suffix)
    subjects: set[str] = set()
    for relative in files:
        if relative.startswith("derivatives/") or not relative.endswith((".nii.gz", ".nii")):
            continue
        parts = relative.split("/")
        if len(parts) < 3 or parts[-2] not in DATATYPES or not parts[0].startswith("sub-"):
            continue
        _entities, suffix = parse_entities(parts[-1])
        guesses.images[(parts[-2], suffix)] += 1
        images[strip_nifti(relative)] = (parts[-2], suffix)
        subjects.add(parts[0])
        guesses.sessions |= parts[1].startswith("ses-")
    guesses.subjects = len(subjects)
    by_folder: dict[str, dict[str, tuple[str, str]]] = {}
    for image, key in images.items():
        by_folder.setdefault(image.rpartition("/")[0], {})[image] = key
    for relative in files:
        parts = relative.split("/")
        if len(parts) < 4 or parts[0] != "derivatives" or not relative.endswith((".nii.gz", ".nii")):
            continue
        folder, inner = parts[1], strip_nifti("/".join(parts[2:]))
        image = _image_of(inner, images)
        if image is not None:
            tail = inner[len(image):]
            guesses.label_tails.setdefault(images[image], Counter())[(folder, tail)] += 1
            continue
        for key, template in _entity_matches(inner, by_folder):
            guesses.label_tails.setdefault(key, Counter())[(folder, TEMPLATE_MARK + template)] += 1
    for key in sorted(guesses.images):
        tails = guesses.label_tails.get(key)
        if tails:
            guesses.chosen[key] = min(tails.items(), key=lambda item: _cord_rank(*item[0], item[1]))[0]
        else:
            guesses.unlabelled.append(key)
    participants = read_participants(root)
    guesses.participants_file = (root / "participants.tsv").is_file()
    guesses.participant_columns = sorted({column for row in participants.values() for column in row}
                                         - {"participant_id"})
    lowered = {column.lower(): column for column in guesses.participant_columns}
    for role, names in COLUMN_GUESSES.items():
        column = next((lowered[name] for name in names if name in lowered), None)
        if column:
            guesses.columns[role] = column
    return guesses


def _entity_matches(label_stem: str, by_folder: dict[str, dict[str, tuple[str, str]]]
                    ) -> list[tuple[tuple[str, str], str]]:
    """Masks named by a subset of the image's entities (EPISeg: ``sub-X_task-rest_desc-spinalcordmask`` for
    ``sub-X_task-rest_rec-MoCoMean_bold``): (image kind, file-name template with the shared entities as
    placeholders) for every image of the same folder it can belong to."""
    folder, _, name = label_stem.rpartition("/")
    label_entities, _suffix = parse_entities(name)
    found = []
    for image, key in by_folder.get(folder, {}).items():
        image_name = image.rpartition("/")[2]
        image_entities, _ = parse_entities(image_name)
        common = {entity for entity in label_entities if entity in image_entities}
        shared = {entity for entity in common if label_entities[entity] == image_entities[entity]}
        # a derivative's own desc/label (``desc-spinalcordmask``) may differ from the image's (``desc-mocomean``)
        if "sub" not in shared or (common - shared) - DERIVATIVE_ENTITIES:
            continue
        tokens = []
        for token in name.split("_"):
            entity, sep, _value = token.partition("-")
            tokens.append(f"{entity}-{{{entity}}}" if sep and entity in shared else token)
        found.append((key, "_".join(tokens)))
    return found


TEMPLATE_MARK = "name:"


def _image_of(label_stem: str, images: dict[str, tuple[str, str]]) -> str | None:
    """The image whose path (without extension) the mask's path starts with, followed by ``_``."""
    candidate = label_stem
    while "_" in candidate:
        candidate = candidate.rpartition("_")[0]
        if candidate in images:
            return candidate
    return None


def draft_dataset(dataset_id: str, root: Path, guesses: DraftGuesses | None = None,
                  same_person: list[list[str]] | None = None) -> tuple[Dataset, DraftGuesses]:
    """A validated Dataset drafted from the folder (raises RegistryError naming what could not be guessed), with
    ``same_person`` groups when given."""
    guesses = guesses or survey(root)
    if not guesses.chosen:
        seen = ", ".join(f"{datatype}/{suffix}" for datatype, suffix in sorted(guesses.images)) or "none"
        raise RegistryError(f"{root}: no image with a mask under derivatives/ was found (images seen: {seen}); "
                            "write the dataset file by hand (docs/registry.md) or try rules with "
                            "`cordbench index PATH --image-glob ... --label ...`")
    description = _dataset_description(Path(root))
    rules = []
    for (datatype, suffix), (folder, tail) in sorted(guesses.chosen.items()):
        name = tail.removeprefix(TEMPLATE_MARK) if tail.startswith(TEMPLATE_MARK) else f"{{stem}}{tail}"
        rules.append(ImageRule(glob=f"sub-*/**/{datatype}/*_{suffix}.nii.gz", contrast=suffix,
                               label=f"derivatives/{folder}/{{dir}}/{name}.nii.gz"))
    data = {
        "id": dataset_id,
        "title": description.get("Name") or dataset_id,
        "source": {"kind": "local", "notes": f"drafted by `cordbench datasets add` from {Path(root).resolve()}"},
        "licence": description.get("License") or "unknown (check before sharing results)",
        "citation": description.get("HowToAcknowledge") or "unknown",
        "access": {"level": "public"},
        "datatypes": sorted({datatype for datatype, _ in guesses.chosen}),
        "contrasts": [rule.contrast for rule in rules],
        "images": [rule.model_dump() for rule in rules],
        "participants": dict(guesses.columns),
    }
    data["local_path"] = str(Path(root).resolve())
    if same_person:
        data["same_person"] = [sorted(group) for group in same_person]
    try:
        return Dataset.model_validate(data), guesses
    except ValueError as error:
        raise RegistryError(f"{root}: the drafted entry is invalid: {error}") from error


def _dataset_description(root: Path) -> dict:
    path = root / "dataset_description.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except json.JSONDecodeError as error:
        raise BidsIndexError(f"{path}: not valid JSON ({error})") from error
    return {key: value for key, value in data.items() if isinstance(value, str)} if isinstance(data, dict) else {}


def dataset_yaml(dataset: Dataset, root: Path) -> str:
    """The YAML text of a drafted entry, with a header saying what to check."""
    body = yaml.safe_dump(dataset.model_dump(mode="json", exclude_defaults=True), sort_keys=False,
                          allow_unicode=True, width=110)
    return (f"# Drafted by `cordbench datasets add {dataset.id} --root {root}`: check every field (docs/registry.md),\n"
            "# especially licence, citation, access and which masks are the cord.\n" + body)


@dataclass
class RuleTrial:
    """The outcome of trying image rules on a folder."""

    index: DatasetIndex
    patterns: list[str]
    files_seen: list[str]

    def explain(self, show: int = 10) -> list[str]:
        """When nothing matched: which patterns were tried and what files are there instead."""
        if self.index.pairs:
            return []
        problem = "no image matched" if not self.index.cases else "images matched, but none has its mask"
        lines = [f"{problem}; patterns tried:"] + [f"  {pattern}" for pattern in self.patterns]
        if self.index.cases:
            lines.append("expected masks, e.g.:")
            from benchmark.data.bids_index import _label_path

            for case in self.index.cases[:3]:
                rule = next(rule for rule in self.index_rules if rule.contrast == case.contrast)
                lines.append(f"  {_label_path(rule, case.image.path, case.entities, self.index.root)}")
        nifti = [path for path in self.files_seen if path.endswith((".nii.gz", ".nii"))]
        lines.append(f"NIfTI files seen ({len(nifti)}), e.g.:")
        lines.extend(f"  {path}" for path in nifti[:show])
        return lines

    index_rules: list[ImageRule] = field(default_factory=list)


def try_rules(root: Path, image_globs: list[str], label: str, contrast: str | None = None) -> RuleTrial:
    """Index an unregistered folder with ad-hoc rules (one per glob, all with the same label template)."""
    rules = [ImageRule(glob=glob, contrast=contrast or _contrast_of(glob), label=label) for glob in image_globs]
    dataset = Dataset(id="unregistered", title=str(root), source={"kind": "local"}, licence="unknown",
                      citation="unknown", access={"level": "public"}, datatypes=["anat"],
                      contrasts=sorted({rule.contrast for rule in rules}), images=rules)
    index = index_dataset(Path(root), dataset)
    return RuleTrial(index, [f"image {rule.glob}  ->  mask {rule.label}" for rule in rules],
                     sorted(_walk_files(Path(root))), rules)


def _contrast_of(glob: str) -> str:
    stem = strip_nifti(glob.rpartition("/")[2])
    suffix = stem.rpartition("_")[2].strip("*?") if "_" in stem else ""
    return suffix or "image"
