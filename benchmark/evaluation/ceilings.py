"""Ceilings: how much Dice moves when a reference mask's boundary moves by ONE voxel.

A Dice of 0.95 against one rater is already sub-voxel on a cord a few voxels across: on the real gmchallenge
masks, growing or shrinking the boundary by one in-plane voxel ring alone gives Dice 0.84-0.93. So a difference
between two models smaller than that ring is within one voxel of boundary placement, below what a reference
drawn by hand can resolve.

For every test case of a suite (the reference mask M in canonical orientation, axial slices ``M[:, :, k]``):

    dilated_dice = Dice(M, dilate2d(M)),   eroded_dice = Dice(M, erode2d(M)),
    one_voxel_dice = (dilated_dice + eroded_dice) / 2

with a one-voxel in-plane (4-connected cross) dilation / erosion per slice. Per dataset the file stores their
means, the range of ``one_voxel_dice`` and ``within_one_voxel = 1 - mean(one_voxel_dice)``: "differences below
X are within one voxel". ``inter_rater_dice`` is the mean Dice between two raters' masks where a dataset has
them (none of the registered datasets does today: null).

Stored next to the split, keyed by its version: ``benchmark/splits/<suite>.ceilings.json`` (NOT inside the split
file, whose content hash is the benchmark version). A file whose ``benchmark_version`` differs from the current
split is ignored by :func:`load_ceilings`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from scipy import ndimage

from benchmark.errors import CordbenchError
from benchmark.evaluation.csa import load_canonical_mask
from benchmark.io import atomic_write_json, describe_validation_error
from benchmark.data.splits import load_split, split_path

_IN_PLANE_CROSS = ndimage.generate_binary_structure(2, 1)[:, :, None]


class CeilingsError(CordbenchError, ValueError):
    """A ceilings file that cannot be read; the message names the file and the field."""


class DatasetCeiling(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n: int = Field(description="Test cases measured")
    dilated_dice: float = Field(description="Mean Dice of each reference mask vs itself dilated by one in-plane voxel")
    eroded_dice: float = Field(description="Mean Dice of each reference mask vs itself eroded by one in-plane voxel")
    one_voxel_dice: float = Field(description="Mean of (dilated_dice + eroded_dice) / 2")
    one_voxel_dice_min: float
    one_voxel_dice_max: float
    within_one_voxel: float = Field(description="1 - one_voxel_dice: Dice differences below this are within one voxel")
    inter_rater_dice: float | None = Field(default=None, description="Mean Dice between two raters, where available")


class CeilingsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    suite: str
    benchmark_version: str = Field(description="The split version these ceilings were computed on")
    definition: str = "one-voxel in-plane ring of the reference masks (benchmark/evaluation/ceilings.py)"
    datasets: dict[str, DatasetCeiling]


def ring_dice(mask: np.ndarray) -> tuple[float, float]:
    """(Dice vs one-voxel in-plane dilation, Dice vs one-voxel in-plane erosion) of a 3D binary mask."""
    mask = np.asarray(mask, bool)
    total = int(mask.sum())
    if total == 0:
        return 1.0, 1.0
    dilated = ndimage.binary_dilation(mask, structure=_IN_PLANE_CROSS)
    eroded = ndimage.binary_erosion(mask, structure=_IN_PLANE_CROSS, border_value=0)
    # M is inside its dilation and contains its erosion: the intersections are M and the erosion
    return 2 * total / (total + int(dilated.sum())), 2 * int(eroded.sum()) / (total + int(eroded.sum()))


def ceilings_path(suite_id: str) -> Path:
    split_file = split_path(suite_id)
    return split_file.with_name(f"{split_file.stem}.ceilings.json")


def compute_ceilings(suite_id: str, data_root: Path | None, overrides: dict[str, Path] | None = None, *,
                     progress: bool = False) -> CeilingsFile:
    """Ring Dice of every test reference mask of the suite, summarised per dataset."""
    from rich.progress import track

    from benchmark.evaluation.scoring import test_cases

    split = load_split(suite_id)
    cases = test_cases(suite_id, split, data_root, overrides)
    per_dataset: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for test_case in track(cases, description=f"ceilings of {suite_id}", disable=not progress):
        mask, _ = load_canonical_mask(test_case.label_path)
        per_dataset[test_case.case.dataset].append(ring_dice(mask))
    datasets = {}
    for dataset, values in sorted(per_dataset.items()):
        array = np.asarray(values, float)
        one_voxel = array.mean(axis=1)
        datasets[dataset] = DatasetCeiling(
            n=len(values), dilated_dice=round(float(array[:, 0].mean()), 4),
            eroded_dice=round(float(array[:, 1].mean()), 4), one_voxel_dice=round(float(one_voxel.mean()), 4),
            one_voxel_dice_min=round(float(one_voxel.min()), 4), one_voxel_dice_max=round(float(one_voxel.max()), 4),
            within_one_voxel=round(float(1 - one_voxel.mean()), 4))
    return CeilingsFile(suite=suite_id, benchmark_version=split.version, datasets=datasets)


def write_ceilings(ceilings: CeilingsFile, path: Path | None = None) -> Path:
    target = Path(path) if path else ceilings_path(ceilings.suite)
    atomic_write_json(target, ceilings.model_dump(mode="json"))
    return target


def read_ceilings(path: Path) -> CeilingsFile:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise CeilingsError(f"{path}: cannot read ceilings file ({error})") from error
    try:
        return CeilingsFile.model_validate(raw)
    except ValidationError as error:
        raise CeilingsError(describe_validation_error(path, error, "ceilings file")) from error


def load_ceilings(suite_id: str, benchmark_version: str | None = None, path: Path | None = None) -> CeilingsFile | None:
    """The suite's ceilings when they were computed on ``benchmark_version`` (default: the current split), else
    None (absent or stale)."""
    target = Path(path) if path else ceilings_path(suite_id)
    if not target.is_file():
        return None
    ceilings = read_ceilings(target)
    version = benchmark_version or load_split(suite_id).version
    return ceilings if ceilings.benchmark_version == version else None


__all__ = ["CeilingsError", "CeilingsFile", "DatasetCeiling", "ceilings_path", "compute_ceilings", "load_ceilings",
           "read_ceilings", "ring_dice", "write_ceilings"]
