"""BIDS derivative file names: which image a mask file names, and the mask files of a derivatives folder.

A mask belongs to an image when their BIDS entities and suffix agree once the derivative's own parts are
removed: ``sub-01_ses-2_acq-ax_T2w.nii.gz`` <- ``sub-01_ses-2_acq-ax_T2w_label-SC_seg.nii.gz``. The derivative
parts are the ``label`` and ``desc`` entities and a final ``seg``/``dseg``/``mask``/``probseg`` suffix. Nothing
here reads image content.
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

Entities = tuple[tuple[str, str], ...]


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


def image_key(filename: str) -> tuple[Entities, str | None]:
    """(entities, suffix) of a source image."""
    parts = NameParts.of(filename)
    return parts.entities, (parts.bare[-1] if parts.bare else None)


def mask_key(filename: str) -> tuple[Entities, str | None] | None:
    """(entities, suffix of the source image) a mask file names, or None when the name is not a mask's."""
    parts = NameParts.of(filename)
    tokens = strip_nifti(filename).split("_")
    bare = list(parts.bare)
    derivative_suffix = bool(bare) and tokens[-1] == bare[-1] and bare[-1] in DERIVATIVE_SUFFIXES
    derivative_entity = any(key in DERIVATIVE_ENTITIES for key, _ in parts.entities)
    if not (derivative_suffix or derivative_entity):
        return None
    if derivative_suffix:
        bare.pop()
    entities = tuple((key, value) for key, value in parts.entities if key not in DERIVATIVE_ENTITIES)
    return entities, (bare[-1] if bare else None)


def mask_files(folder: Path, label: str | None = "SC") -> list[Path]:
    """Mask files below ``folder`` (hidden folders skipped); with ``label``, masks of another label are left out."""
    found: list[Path] = []
    for parent, subfolders, files in os.walk(folder):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or not name.endswith(NIFTI_ENDINGS) or mask_key(name) is None:
                continue
            named_label = NameParts.of(name).entity("label")
            if label is not None and named_label is not None and named_label != label:
                continue
            found.append(Path(parent) / name)
    return found


def folder_digest(folder: Path, label: str | None = "SC") -> str:
    """sha256 over every mask's relative path and content: identifies what a predictions submission supplies."""
    digest = hashlib.sha256()
    folder = Path(folder)
    for path in mask_files(folder, label):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(sha256_file(path).encode() if path.exists() else b"missing")
    return digest.hexdigest()
