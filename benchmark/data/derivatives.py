"""BIDS derivative file names: which image a mask file belongs to, the name cordbench gives a mask, and the mask files
of a derivatives folder. One rule, used by `cordbench predict` (which writes masks) and by ``predictions`` submissions
(which find them), so that whatever ``predict`` writes is found again, whatever the image's entities.

The rule: a mask's name is an image's name followed by a **derivative tail**, the run of trailing tokens that are
derivative entities (``label-*``, ``desc-*``) or a derivative suffix (``seg``, ``dseg``, ``mask``, ``probseg``):

- ``sub-01_ses-2_acq-ax_T2w_label-SC_seg`` belongs to ``sub-01_ses-2_acq-ax_T2w``;
- ``sub-01_task-rest_desc-mocomean_bold_label-SC_seg`` to ``sub-01_task-rest_desc-mocomean_bold`` (a ``desc`` before
  the image's suffix is the image's own);
- ``sub-01_T2w_seg`` (SCT's naming) to ``sub-01_T2w``; ``sub-04_task-rest_bold_desc-spinalcordmask`` to
  ``sub-04_task-rest_bold``;
- a name without the image's suffix (``sub-01_label-SC_seg``) to any image with exactly those entities, used only
  when no mask carries the suffix; there a ``desc`` in the tail may be the image's or the mask's, and both readings
  are tried (``sub-01_desc-preproc_label-SC_seg``: ``sub-01_desc-preproc_*`` or ``sub-01_*``).

Entities are compared as sets (their order in a name does not matter). Nothing here reads image content.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from benchmark.data.bids_index import strip_nifti
from benchmark.io import sha256_file

DERIVATIVE_ENTITIES = frozenset({"label", "desc"})
DERIVATIVE_SUFFIXES = frozenset({"seg", "dseg", "mask", "probseg"})
NIFTI_ENDINGS = (".nii.gz", ".nii")
#: the label cordbench writes and, by default, looks for
CORD_LABEL = "SC"

Entities = tuple[tuple[str, str], ...]
Key = tuple[Entities, "str | None"]


@dataclass(frozen=True)
class NameParts:
    """A BIDS file name split into its sorted entities and its bare (suffix) tokens, in order."""

    entities: Entities
    bare: tuple[str, ...]

    @classmethod
    def of(cls, filename: str) -> "NameParts":
        entities: dict[str, str] = {}
        bare: list[str] = []
        for token in strip_nifti(filename).split("_"):
            key, sep, value = token.partition("-")
            if sep and key and value:
                entities[key] = value
            elif token:
                bare.append(token)
        return cls(tuple(sorted(entities.items())), tuple(bare))

    def entity(self, key: str) -> str | None:
        return dict(self.entities).get(key)


def _entity(token: str) -> tuple[str, str] | None:
    key, sep, value = token.partition("-")
    return (key, value) if sep and key and value else None


def _is_derivative(token: str) -> bool:
    entity = _entity(token)
    return entity[0] in DERIVATIVE_ENTITIES if entity else token in DERIVATIVE_SUFFIXES


def image_key(filename: str) -> Key:
    """(entities, suffix) of a source image."""
    parts = NameParts.of(filename)
    return parts.entities, (parts.bare[-1] if parts.bare else None)


def mask_filename(image_filename: str, label: str = CORD_LABEL) -> str:
    """The name cordbench gives the mask of an image (``cordbench predict``): the image's name + ``_label-<label>_seg``."""
    return f"{strip_nifti(Path(image_filename).name)}_label-{label}_seg.nii.gz"


def mask_keys(filename: str) -> tuple[Key, ...]:
    """The keys (``image_key`` values) of the images a mask file belongs to, most specific first; ``()`` when the
    name is not a mask's (no derivative tail, or nothing before it)."""
    tokens = [token for token in strip_nifti(filename).split("_") if token]
    tail: list[str] = []
    while tokens and _is_derivative(tokens[-1]):
        tail.insert(0, tokens.pop())
    if not tail or not tokens:
        return ()
    if _entity(tokens[-1]) is None:  # the image's suffix: everything before it is the image's
        entities = tuple(sorted(entity for token in tokens if (entity := _entity(token))))
        return ((entities, tokens[-1]),)
    entities = dict(entity for token in tokens if (entity := _entity(token)))
    keys: list[Key] = [(tuple(sorted(entities.items())), None)]
    descs = [entity for token in tail if (entity := _entity(token)) and entity[0] == "desc"]
    if descs and "desc" not in entities:  # the tail's desc may be the image's own
        keys.append((tuple(sorted({**entities, "desc": descs[0][1]}.items())), None))
    return tuple(keys)


def mask_key(filename: str) -> Key | None:
    """The most specific image key a mask file names (see ``mask_keys``), or None when the name is not a mask's."""
    keys = mask_keys(filename)
    return keys[0] if keys else None


def belongs_to(mask_name: str, image_name: str) -> bool:
    """Whether a mask file, by its name alone, is one of an image's (the rule of this module)."""
    entities, suffix = image_key(image_name)
    return any(key in ((entities, suffix), (entities, None)) for key in mask_keys(mask_name))


def mask_files(folder: Path, label: str | None = CORD_LABEL) -> list[Path]:
    """Mask files below ``folder`` (hidden folders skipped); with ``label``, masks of another label are left out."""
    found: list[Path] = []
    for parent, subfolders, files in os.walk(folder):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or not name.endswith(NIFTI_ENDINGS) or not mask_keys(name):
                continue
            named_label = NameParts.of(name).entity("label")
            if label is not None and named_label is not None and named_label != label:
                continue
            found.append(Path(parent) / name)
    return found


def folder_digest(folder: Path, label: str | None = CORD_LABEL) -> str:
    """sha256 over every mask's relative path and content: identifies what a predictions submission supplies."""
    digest = hashlib.sha256()
    folder = Path(folder)
    for path in mask_files(folder, label):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(sha256_file(path).encode() if path.exists() else b"missing")
    return digest.hexdigest()
