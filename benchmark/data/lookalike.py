"""People who look like one person: images of two participant ids, counted as different people, that are on the
same voxel grid and have near-identical content. A person scanned twice under two ids (a rescan, a second
session registered as a new participant) is the usual cause; a split would then put the same person on both sides,
and statistics over people would count one person twice.

Two images are look-alikes when their grids are identical (shape, and affine within
``benchmark.io.AFFINE_TOLERANCE_MM``: scanners place every new scan differently, so an identical grid across two
people is already rare) **and** the Pearson correlation of their voxel intensities is at least
:data:`CORRELATION_THRESHOLD`. Only images that share a grid with another person's are read. Nothing here decides
anything: the caller warns and says how to declare the ids one person (``same_person``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.io import AFFINE_TOLERANCE_MM

#: voxel-intensity correlation from which two same-grid images of different people are called near-identical
CORRELATION_THRESHOLD = 0.98
#: voxels compared per image at most (a fixed stride over the volume beyond that): near-identical images stay so on
#: a subsample, and a dataset of hundreds of images on one grid (data resampled to a template) stays cheap
MAX_VOXELS = 65_536


@dataclass(frozen=True)
class LookAlike:
    """Two participant ids of one dataset whose images look like one person's."""

    dataset: str
    subjects: tuple[str, str]
    images: tuple[str, str]  # relative to the dataset root
    correlation: float

    def line(self) -> str:
        return (f"{self.dataset}: {self.subjects[0]} and {self.subjects[1]} look like one person: {self.images[0]} and "
                f"{self.images[1]} are on the same grid with near-identical content (correlation "
                f"{self.correlation:.4f})")


def _grid_key(path: Path) -> tuple | None:
    import nibabel as nib

    try:
        image = nib.load(str(path))
    except Exception:  # an unreadable file is reported elsewhere (index, checksums)
        return None
    shape = tuple(int(size) for size in image.shape)
    # affines within the tolerance fall in the same bucket (rounded to the tolerance's decimals)
    decimals = max(0, int(round(-np.log10(AFFINE_TOLERANCE_MM))))
    return shape, tuple(np.round(np.asarray(image.affine, dtype=np.float64), decimals).ravel().tolist())


def _standardized(path: Path) -> np.ndarray | None:
    import nibabel as nib

    data = np.asarray(nib.load(str(path)).dataobj, dtype=np.float32).ravel()
    if data.size > MAX_VOXELS:
        data = data[:: int(np.ceil(data.size / MAX_VOXELS))]
    data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
    spread = float(data.std())
    if spread == 0.0:
        return None  # a constant image correlates with nothing
    return (data - float(data.mean())) / spread


def lookalike_people(index, person_of, threshold: float = CORRELATION_THRESHOLD) -> list[LookAlike]:
    """Pairs of participant ids of a :class:`benchmark.data.bids_index.DatasetIndex` that ``person_of`` (participant
    id -> person) calls different people and whose images look like one person's, strongest first."""
    by_grid: dict[tuple, list] = defaultdict(list)
    for case in index.cases:
        if case.image.state != "present":
            continue
        key = _grid_key(index.root / case.image.path)
        if key is not None:
            by_grid[key].append(case)
    best: dict[tuple[str, str], LookAlike] = {}
    for cases in by_grid.values():
        if len({person_of(case.subject) for case in cases}) < 2:
            continue
        vectors = [(case, _standardized(index.root / case.image.path)) for case in cases]
        vectors = [(case, vector) for case, vector in vectors if vector is not None]
        if len(vectors) < 2:
            continue
        matrix = np.stack([vector for _case, vector in vectors])
        correlations = matrix @ matrix.T / matrix.shape[1]  # Pearson: the vectors are standardized
        for first_index, (first, _) in enumerate(vectors):
            for second_index in range(first_index + 1, len(vectors)):
                second = vectors[second_index][0]
                if person_of(first.subject) == person_of(second.subject):
                    continue
                correlation = float(correlations[first_index, second_index])
                pair = tuple(sorted((first.subject, second.subject)))
                if correlation >= threshold and (pair not in best or correlation > best[pair].correlation):
                    images = (first.image.path, second.image.path) if pair[0] == first.subject else \
                        (second.image.path, first.image.path)
                    best[pair] = LookAlike(index.dataset_id, pair, images, correlation)
    return sorted(best.values(), key=lambda found: (-found.correlation, found.subjects))
