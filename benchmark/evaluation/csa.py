"""Spinal cord cross-sectional area (CSA) from a binary mask, corrected for the cord's angle to the slices.

Clinicians read cord atrophy from CSA in mm² (MS: about 1.8 % per year, ~1.4 mm² on an ~80 mm² cord), so a
model is judged here by the area it measures, not only by overlap. Definitions (docs/metrics.md):

* the mask is reoriented to the closest canonical (RAS+) orientation, so axial slice ``k`` is ``mask[:, :, k]``
  (an oblique acquisition keeps its obliquity: the affine carries it);
* slice plane normal ``n = (a0 x a1) / |a0 x a1|`` and in-plane voxel area ``|a0 x a1|`` mm², with ``a0``, ``a1``
  the first two columns of the affine (physical steps along the slice's two axes);
* centreline: the centroid of every non-empty slice in physical (scanner) coordinates, ``c_k = A (i_k, j_k, k, 1)``,
  smoothed by a least-squares polynomial in ``k`` per coordinate (degree ``min(3, slices - 1)``); its tangent
  ``t_k = dc/dk / |dc/dk|`` (one slice: ``t = n``);
* ``area_k = voxels_k * |a0 x a1|`` and the angle-corrected ``csa_k = area_k * |t_k . n|``: a cylinder of radius r
  cut at angle theta to its axis leaves an ellipse of area ``pi r^2 / cos(theta)``;
* a mask's CSA over a range ``[z_low, z_high]`` of scanner z (mm) is the mean of ``csa_k`` over the slices whose
  centreline point lies in the range; a slice in the range where the mask is empty counts as 0 (the cord is
  there but was missed);
* several images of one person in one session (contrasts) share the scanner's coordinates: their common range
  is ``[max of the lowest slice z, min of the highest slice z]`` of their masks (:func:`common_range`). This
  stands in for vertebral levels, which need a labelling step cordbench does not have.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from benchmark.errors import CordbenchError

#: Mask voxels at or above this value are cord (as the scorer binarizes labels).
MASK_THRESHOLD = 0.5
#: Slices whose centreline point is within this distance (mm) of a range's end still count as inside.
RANGE_TOLERANCE_MM = 1e-6


class CsaError(CordbenchError, ValueError):
    """A mask cannot be measured: not 3D, or its affine is degenerate; the message names the file."""


@dataclass(frozen=True)
class CsaProfile:
    """Per-slice measurements of one mask; arrays are indexed by slice ``k`` of the canonical volume."""

    z_mm: np.ndarray        # scanner z of each slice's centreline point (NaN where the whole mask is empty)
    area_mm2: np.ndarray    # raw in-plane area per slice (0 where empty)
    cos_angle: np.ndarray   # |t . n| per slice (1 where empty)
    present: np.ndarray     # bool: the slice has mask voxels

    @property
    def csa_mm2(self) -> np.ndarray:
        """Angle-corrected CSA per slice."""
        return self.area_mm2 * self.cos_angle

    def extent(self) -> tuple[float, float] | None:
        """(lowest, highest) scanner z of the mask's slices, or None for an empty mask."""
        z = self.z_mm[self.present]
        return (float(z.min()), float(z.max())) if z.size else None

    def angle_deg(self) -> np.ndarray:
        return np.degrees(np.arccos(np.clip(self.cos_angle, 0.0, 1.0)))


def _slice_geometry(affine: np.ndarray) -> tuple[np.ndarray, float]:
    a0, a1 = np.asarray(affine, float)[:3, 0], np.asarray(affine, float)[:3, 1]
    cross = np.cross(a0, a1)
    area = float(np.linalg.norm(cross))
    if not area > 0:
        raise CsaError(f"degenerate affine (in-plane voxel area {area})")
    return cross / area, area


def _centreline(mask: np.ndarray, affine: np.ndarray, slices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed centreline points (n_slices, 3) and unit tangents (n_slices, 3) at ``slices``, in scanner mm."""
    points = []
    for k in slices:
        i, j = np.nonzero(mask[:, :, k])
        points.append(affine[:3, :3] @ np.array([i.mean(), j.mean(), k], float) + affine[:3, 3])
    points = np.asarray(points)
    if len(slices) == 1:
        normal, _ = _slice_geometry(affine)
        return points, normal[None, :]
    degree = min(3, len(slices) - 1)
    k = slices.astype(float)
    smoothed = np.empty_like(points)
    derivative = np.empty_like(points)
    for axis in range(3):
        fit = np.polynomial.Polynomial.fit(k, points[:, axis], degree)
        smoothed[:, axis] = fit(k)
        derivative[:, axis] = fit.deriv()(k)
    tangents = derivative / np.linalg.norm(derivative, axis=1, keepdims=True)
    return smoothed, tangents


def csa_profile(mask: np.ndarray, affine: np.ndarray) -> CsaProfile:
    """Per-slice CSA of a binary mask given in canonical orientation (axis 2 = inferior->superior)."""
    mask = np.asarray(mask) >= MASK_THRESHOLD if np.asarray(mask).dtype != bool else np.asarray(mask)
    if mask.ndim != 3:
        raise CsaError(f"a mask must be 3D, got shape {mask.shape}")
    affine = np.asarray(affine, float)
    normal, voxel_area = _slice_geometry(affine)
    counts = mask.sum(axis=(0, 1))
    present = counts > 0
    slices = np.nonzero(present)[0]
    z_mm = np.full(mask.shape[2], math.nan)
    cos_angle = np.ones(mask.shape[2])
    if slices.size:
        points, tangents = _centreline(mask, affine, slices)
        z_mm[slices] = points[:, 2]
        cos_angle[slices] = np.abs(tangents @ normal)
        # empty slices between present ones still have a scanner z: interpolate along k
        inside = np.arange(slices[0], slices[-1] + 1)
        z_mm[inside] = np.interp(inside, slices, points[:, 2])
    return CsaProfile(z_mm, counts * voxel_area, cos_angle, present)


def load_canonical_mask(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A NIfTI mask as (bool array, affine) in the closest canonical orientation."""
    try:
        image = nib.as_closest_canonical(nib.load(str(path)))
    except (OSError, ValueError) as error:
        raise CsaError(f"{path}: cannot read mask ({error})") from error
    data = np.asarray(image.dataobj, dtype=np.float32)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise CsaError(f"{path}: a mask must be 3D, got shape {data.shape}")
    return data >= MASK_THRESHOLD, image.affine


def csa_profile_file(path: Path) -> CsaProfile:
    mask, affine = load_canonical_mask(path)
    try:
        return csa_profile(mask, affine)
    except CsaError as error:
        raise CsaError(f"{path}: {error}") from error


def common_range(extents: Iterable[tuple[float, float] | None]) -> tuple[float, float] | None:
    """The scanner-z range every extent covers, or None when one is missing or they do not overlap."""
    listed = list(extents)
    if not listed or any(extent is None for extent in listed):
        return None
    low = max(extent[0] for extent in listed)
    high = min(extent[1] for extent in listed)
    return (low, high) if low <= high + RANGE_TOLERANCE_MM else None


def mean_csa_in_range(profile: CsaProfile, z_range: tuple[float, float], reference: CsaProfile | None = None) -> float:
    """Mean angle-corrected CSA over the slices whose scanner z lies in ``z_range``.

    The slices are chosen by ``reference`` (same grid, e.g. the ground truth of a prediction) when given, else by
    ``profile`` itself; chosen slices where ``profile`` is empty count as 0. NaN when no slice is chosen.
    """
    chooser = reference if reference is not None else profile
    z = chooser.z_mm
    low, high = z_range
    chosen = np.isfinite(z) & (z >= low - RANGE_TOLERANCE_MM) & (z <= high + RANGE_TOLERANCE_MM)
    if not chosen.any():
        return math.nan
    if reference is not None and reference.z_mm.shape != profile.z_mm.shape:
        raise CsaError(f"prediction and reference have {profile.z_mm.size} and {reference.z_mm.size} slices")
    values = np.where(profile.present[chosen], profile.csa_mm2[chosen], 0.0)
    return float(values.mean())


# ------------------------------------------------------------------ scoring hook: one range per person and session


def _extent_or_none(path: Path, load: Callable[[Path], CsaProfile]) -> tuple[float, float] | None:
    """A reference mask's extent; None (no CSA for its group) when the mask cannot be measured."""
    try:
        return load(path).extent()
    except CsaError:
        return None


def scan_ranges(groups: Mapping[str, tuple], reference_paths: Mapping[str, Path],
                load: Callable[[Path], CsaProfile] = csa_profile_file) -> dict[str, tuple[float, float] | None]:
    """case id -> the scanner-z range its CSA is averaged over.

    ``groups`` maps case id -> a key shared by the images of one person in one session (e.g. (dataset, subject,
    session)). A case whose group has >= 2 images gets the range all their reference masks cover (None when they
    do not overlap); a case alone in its group gets its own reference mask's extent. ``load`` reads a mask's
    profile (a caller scoring the same masks afterwards passes a memo).
    """
    extents = {case_id: _extent_or_none(path, load) for case_id, path in reference_paths.items()}
    members: dict[tuple, list[str]] = {}
    for case_id, key in groups.items():
        members.setdefault(key, []).append(case_id)
    ranges: dict[str, tuple[float, float] | None] = {}
    for case_ids in members.values():
        shared = common_range(extents.get(case_id) for case_id in case_ids)
        for case_id in case_ids:
            ranges[case_id] = shared
    return ranges


def case_csa(prediction: Path | None, reference: Path, z_range: tuple[float, float] | None,
             load: Callable[[Path], CsaProfile] = csa_profile_file) -> dict[str, float | None]:
    """``csa_mm2`` of the prediction (None when it failed or there is no range; 0 for an empty prediction) and
    ``csa_reference_mm2`` of the reference mask, both over ``z_range`` on the reference's slices (its profile read
    with ``load``)."""
    if z_range is None:
        return {"csa_mm2": None, "csa_reference_mm2": None}
    reference_profile = load(reference)
    reference_value = mean_csa_in_range(reference_profile, z_range)
    predicted = None
    if prediction is not None:
        try:
            profile = csa_profile_file(prediction)
            predicted = mean_csa_in_range(profile, z_range, reference=reference_profile)
        except CsaError:
            predicted = None  # an unreadable or mismatched prediction: no measurement, as for a failed one
    clean = {"csa_mm2": predicted, "csa_reference_mm2": reference_value}
    return {key: (None if value is None or not math.isfinite(value) else round(value, 4)) for key, value in clean.items()}


__all__ = [
    "CsaError", "CsaProfile", "case_csa", "common_range", "csa_profile", "csa_profile_file", "load_canonical_mask",
    "mean_csa_in_range", "scan_ranges",
]
