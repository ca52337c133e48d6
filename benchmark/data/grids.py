"""Is a mask on its image's grid? Headers only (shape and affine), with a message a user can act on.

A mask is on its image's grid when the first three axes of their shapes are equal and their affines agree within
``benchmark.io.AFFINE_TOLERANCE_MM`` (a trailing axis of length 1 is ignored, as everywhere in cordbench). Used
where masks are supplied: ground truth at ``datasets add``, ``index`` and ``splits make`` (and every later
``splits verify``), supplied predictions at ``submissions check``. The message names both files' shapes and
affines, so that a swapped axis, a resampled mask or a shifted origin is visible at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.io import AFFINE_TOLERANCE_MM


@dataclass(frozen=True)
class Grid:
    """The voxel grid of a NIfTI file, from its header."""

    shape: tuple[int, ...]
    affine: np.ndarray

    @classmethod
    def of(cls, path: Path) -> "Grid":
        import nibabel as nib

        image = nib.load(str(path))
        shape = tuple(int(size) for size in image.shape)
        if len(shape) == 4 and shape[3] == 1:
            shape = shape[:3]
        return cls(shape, np.asarray(image.affine, dtype=np.float64))

    def describe(self) -> str:
        rows = "; ".join(" ".join(_number(value) for value in row) for row in self.affine[:3])
        return f"shape {self.shape}, affine [{rows}]"


def _number(value: float) -> str:
    rounded = round(float(value), 4)
    return f"{0.0 if rounded == 0 else rounded:g}"


def grid_problem(image_path: Path, mask_path: Path) -> str | None:
    """None when the mask is on the image's grid; otherwise what differs, with both shapes and affines. A file that
    cannot be read is a problem too (said as such)."""
    try:
        image = Grid.of(image_path)
    except Exception as error:  # nibabel raises many types for a corrupt file
        return f"the image {image_path} cannot be read ({error})"
    try:
        mask = Grid.of(mask_path)
    except Exception as error:
        return f"the mask {mask_path} cannot be read ({error})"
    if mask.shape[:3] != image.shape[:3]:
        what = "shape differs"
    elif not np.allclose(mask.affine, image.affine, atol=AFFINE_TOLERANCE_MM):
        delta = float(np.abs(mask.affine - image.affine).max())
        what = f"affine differs by up to {delta:.4g} mm (tolerance {AFFINE_TOLERANCE_MM} mm)"
    else:
        return None
    return f"not on its image's grid ({what}): mask {mask.describe()} vs image {image.describe()}"


@dataclass(frozen=True)
class OffGrid:
    """One mask of a dataset that is not on its image's grid."""

    dataset: str
    image: str  # relative to the dataset root
    mask: str
    problem: str

    def line(self) -> str:
        return f"{self.dataset}: {self.mask}: {self.problem}"


def off_grid_masks(index) -> list[OffGrid]:
    """The image/mask pairs of a :class:`benchmark.data.bids_index.DatasetIndex` whose mask is off its image's grid
    (pairs not downloaded are left to the "not downloaded" report)."""
    found = []
    for case in index.pairs:
        if case.image.state != "present" or case.label.state != "present":
            continue
        problem = grid_problem(index.root / case.image.path, index.root / case.label.path)
        if problem is not None:
            found.append(OffGrid(index.dataset_id, case.image.path, case.label.path, problem))
    return found
