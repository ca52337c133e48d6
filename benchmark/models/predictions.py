"""Supplied predictions: find, for a test image, its mask in a BIDS derivatives folder computed elsewhere.

Matching is by name, with the one rule of :mod:`benchmark.data.derivatives` (the one ``cordbench predict`` writes
by): a mask is an image's name followed by a derivative tail (``label-*``, ``desc-*``, a final
``seg``/``dseg``/``mask``/``probseg``). A mask named without the image's suffix
(``sub-01_ses-2_acq-ax_label-SC_seg.nii.gz``) is used only when no mask carries the suffix. Folders do not matter (masks may sit in ``sub-*/ses-*/anat/`` or anywhere below), so
a folder of thousands of masks is indexed in one directory walk without reading any image.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from benchmark.data.bids_index import classify_file
from benchmark.data.derivatives import CORD_LABEL, Key, image_key, mask_filename, mask_files, mask_keys
from benchmark.data.submissions import supplied_folders
from benchmark.safepaths import UnsafePathError, is_within, refuse_link_out

__all__ = ["MaskMatch", "PredictionsIndex", "check_supplied_folder", "supplied_folders"]


@dataclass(frozen=True)
class MaskMatch:
    """The mask found for one image, or the named failure saying why there is none."""

    path: Path | None
    failure: str | None


class PredictionsIndex:
    """Every mask file below one derivatives folder, keyed by the image it names."""

    def __init__(self, folder: Path, label: str | None = CORD_LABEL):
        self.folder = Path(folder)
        self.label = label
        # a mask's first reading of its name, then the others (a desc of a name without the image's suffix)
        self._by_key: dict[Key, list[Path]] = {}
        self._by_other_key: dict[Key, list[Path]] = {}
        self.masks = mask_files(self.folder, label)
        for path in self.masks:
            first, *others = mask_keys(path.name)
            self._by_key.setdefault(first, []).append(path)
            for key in others:
                self._by_other_key.setdefault(key, []).append(path)

    def find(self, image_filename: str) -> MaskMatch:
        """The one mask of an image (by BIDS entities and suffix); a missing or ambiguous mask is a failure."""
        entities, suffix = image_key(image_filename)
        for candidates in (self._by_key.get((entities, suffix), []), self._by_key.get((entities, None), []),
                           self._by_other_key.get((entities, None), [])):
            if len(candidates) == 1:
                return self._downloaded(candidates[0])
            if len(candidates) > 1:
                listed = ", ".join(str(path.relative_to(self.folder)) for path in sorted(candidates))
                return MaskMatch(None, f"ambiguous-prediction: {len(candidates)} masks in {self.folder} match "
                                       f"{image_filename}: {listed}")
        expected = mask_filename(image_filename, self.label or CORD_LABEL)
        return MaskMatch(None, f"missing-prediction: no mask for {image_filename} in {self.folder} "
                               f"(expected e.g. {expected})")

    def _downloaded(self, path: Path) -> MaskMatch:
        state, _digest, _size = classify_file(path)
        if state != "present":
            return MaskMatch(None, f"missing-prediction: {path} is {state} (not downloaded)")
        return MaskMatch(path, None)


def annex_objects(folder: Path) -> tuple[Path, ...]:
    """The git-annex object store of the repository holding ``folder`` (a datalad dataset's masks are links into
    it), or nothing when no repository holds it."""
    for parent in [folder, *folder.parents]:
        if (parent / ".git").is_dir():
            return (parent / ".git" / "annex" / "objects",)
    return ()


def check_supplied_folder(index: PredictionsIndex, data_folders: Iterable[Path], reference_masks: Iterable[Path]
                          ) -> None:
    """Refuse, by name, a supplied folder that overlaps the data being scored, and any mask that is a link out of
    its folder (git-annex objects of the folder's own repository excepted) or that is a reference mask itself
    (a symbolic or hard link to the ground truth): such masks would score the ground truth against itself."""
    folder = Path(os.path.realpath(index.folder))
    for data in {Path(os.path.realpath(path)) for path in data_folders}:
        if is_within(folder, data) or is_within(data, folder):
            raise UnsafePathError(f"{index.folder}: the supplied predictions folder overlaps the data being scored "
                                  f"({data}); supplied masks must live outside the data root")
    references = {}
    for path in reference_masks:
        try:
            info = os.stat(path)
        except OSError:
            continue
        references[(info.st_dev, info.st_ino)] = path
    allowed = annex_objects(folder)
    for mask in index.masks:
        real = refuse_link_out(mask, index.folder, allowed=allowed, what="supplied mask")
        try:
            info = os.stat(real)
        except OSError:
            continue  # a broken link (not downloaded) is that case's named failure, as before
        if (info.st_dev, info.st_ino) in references:
            raise UnsafePathError(f"{mask}: this supplied mask is the reference mask "
                                  f"{references[(info.st_dev, info.st_ino)]} itself (a link to the ground truth); "
                                  "refused")
