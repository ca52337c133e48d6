"""Supplied predictions: find, for a test image, its mask in a BIDS derivatives folder computed elsewhere.

Matching is by name, with the one rule of :mod:`benchmark.data.derivatives` (the one ``cordbench predict`` writes
by): a mask is an image's name followed by a derivative tail (``label-*``, ``desc-*``, a final
``seg``/``dseg``/``mask``/``probseg``). A mask named without the image's suffix
(``sub-01_ses-2_acq-ax_label-SC_seg.nii.gz``) is used only when no mask carries the suffix. Folders do not matter (masks may sit in ``sub-*/ses-*/anat/`` or anywhere below), so
a folder of thousands of masks is indexed in one directory walk without reading any image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmark.data.bids_index import classify_file
from benchmark.data.derivatives import CORD_LABEL, Key, image_key, mask_filename, mask_files, mask_keys
from benchmark.data.submissions import supplied_folders

__all__ = ["MaskMatch", "PredictionsIndex", "supplied_folders"]


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
