"""Segmentation metrics for cordbench, defined once.

Every score on the leaderboard comes from :func:`compute_metrics`. Inputs are two binary 3D masks
(``pred``, ``gt``) of equal shape in canonical RAS+ orientation (so axial slice ``k`` is
``arr[:, :, k]``) and the voxel spacing in mm. See ``docs/metrics.md`` for the long form.

Notation: ``P``/``G`` are the predicted / ground-truth voxel sets, ``|X|`` a voxel count,
``s = (s0, s1, s2)`` the spacing in mm.

Border
    ``border(X) = X \\ erode6(X)``: the mask minus its binary erosion with the 6-connected (face)
    structuring element, the volume edge treated as background (the mask is zero-padded before
    eroding, so a voxel on the edge of the field of view is a border voxel). This is exactly
    MONAI's ``get_mask_edges`` (``scipy.ndimage.binary_erosion`` with its default cross
    structure and ``border_value=0``, then XOR).

Distances
    Euclidean, in mm, between voxel centres: ``d(a, b) = sqrt(sum(((a - b) * s) ** 2))``.
    ``d(x, Y) = min_{y in Y} d(x, y)``.

Metrics (name: formula [unit], better)
    dice:      2 |P ∩ G| / (|P| + |G|)                                   [unitless], higher
    nsd:       (#{p in bP : d(p, bG) <= tau + eps} + #{g in bG : d(g, bP) <= tau + eps})
               / (|bP| + |bG|),  bX = border(X), tau = 1 mm by default,
               eps = NSD_EPSILON_MM = 1e-6 mm. Voxel-count NSD (every border voxel weighs 1),
               as MONAI ``compute_surface_dice(use_subvoxels=False)``  [unitless], higher
    hd95:      max(q95{d(p, bG) : p in bP}, q95{d(g, bP) : g in bG}), q95 = numpy.percentile(., 95)
               with linear interpolation (MONAI ``compute_hausdorff_distance(percentile=95)``,
               MetricsReloaded); NOT the pooled percentile of both directions (medpy) and NOT
               the surface-area-weighted one (DeepMind surface-distance)           [mm], lower
    rve:       | |P| - |G| | / |G|  (absolute relative volume error)   [unitless], lower
    csa_error: mean_k |A_P(k) - A_G(k)| over axial slices k where P or G is non-empty,
               A_X(k) = |X ∩ slice k| * s0 * s1                                    [mm²], lower

Empty-mask policy (WORST_HD95 = sqrt(sum((shape * s) ** 2)) mm, the diagonal of the field of view,
see :func:`worst_hd95`)

    case                 dice  nsd  hd95        rve              csa_error
    both empty           1     1    0           0                0
    P empty, G not       0     0    WORST_HD95  1 (by formula)   by formula
    G empty, P not       0     0    WORST_HD95  1 (cap)          by formula

A missing or failed prediction is scored as an empty prediction: :func:`worst_metrics`.

Scored region (:data:`SCORED_REGIONS`, chosen per dataset by the suite and versioned with its split)
    whole-image   (default) both masks as they are.
    label-extent  both masks cut to the axial slices k0..k1 (canonical axis 2, inferior->superior)
                  between the first and last slice where G is non-empty, before any metric is
                  computed (:func:`restrict_to_label_extent`). For ground truth that was drawn on
                  only part of the cord's length: outside that range a correct prediction would
                  otherwise count as false positive. G empty: whole image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy.spatial import cKDTree

from benchmark.errors import CordbenchError

METRIC_NAMES: tuple[str, ...] = ("dice", "nsd", "hd95", "rve", "csa_error")

HIGHER_IS_BETTER: dict[str, bool] = {
    "dice": True,
    "nsd": True,
    "hd95": False,
    "rve": False,
    "csa_error": False,
}

#: Units for display; ``""`` means unitless.
METRIC_UNITS: dict[str, str] = {
    "dice": "",
    "nsd": "",
    "hd95": "mm",
    "rve": "",
    "csa_error": "mm²",
}

#: NSD counts a border voxel as "within tolerance" when ``d <= tau + NSD_EPSILON_MM``. Without it,
#: float32 header zooms (0.5000001 instead of 0.5) push distances that are exactly ``tau`` by
#: design just above it and NSD jumps (real sub-9418 cord vs its double dilation: 0.9772 -> 0.6523 for
#: a +1e-7 mm spacing change; with the epsilon both give 0.9772).
NSD_EPSILON_MM: float = 1e-6

#: Tolerance (mm) on every affine entry when checking that a prediction and its ground truth
#: share the same voxel grid.
from benchmark.io import AFFINE_TOLERANCE_MM  # noqa: E402 - one tolerance for the whole project

HD95_PERCENTILE: float = 95.0


class MetricInputError(CordbenchError, ValueError):
    """A mask file given to the metrics cannot be scored (missing, unreadable, not binary, not on the same grid)."""


def _load_nifti(path: Path, role: str) -> nib.Nifti1Image:
    try:
        return nib.load(str(path))
    except Exception as error:  # nibabel raises several types for a file that is not NIfTI
        raise MetricInputError(f"{role} {path}: not a readable NIfTI image ({type(error).__name__}: {error})") from error

#: Where a case is scored; see the module docstring.
SCORED_REGIONS: tuple[str, ...] = ("whole-image", "label-extent")


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


def _check_spacing(spacing: Sequence[float]) -> tuple[float, float, float]:
    """Return spacing as three floats; ValueError unless exactly three finite values > 0."""
    try:
        values = tuple(float(v) for v in spacing)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"spacing must be 3 numbers in mm, got {spacing!r}") from exc
    if len(values) != 3:
        raise ValueError(f"spacing must have 3 values (mm per axis), got {len(values)}: {values}")
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"spacing values must be finite and > 0 mm, got {values}")
    return values  # type: ignore[return-value]


def _check_mask(arr: np.ndarray, name: str) -> None:
    """Type/shape checks for one mask: a 3D numpy array of integer or bool dtype."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(arr).__name__}")
    if arr.ndim != 3:
        raise ValueError(f"{name} must be a 3D array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} has no voxels (shape {arr.shape})")
    if not (arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(
            f"{name} has dtype {arr.dtype}; masks must have an integer or bool dtype with values "
            "{0, 1} (check the values, then cast, e.g. arr.astype(np.uint8))"
        )


def _as_bool(arr: np.ndarray, name: str) -> np.ndarray:
    """Boolean view of a {0, 1} mask; ValueError naming the offending values otherwise.

    The check is ``min >= 0 and max <= 1`` (integer dtypes), so a valid uint8/int8 mask is
    reinterpreted as bool without a copy.
    """
    if arr.dtype == np.bool_:
        return arr
    if arr.size and (arr.min() < 0 or arr.max() > 1):
        offending = np.unique(arr[(arr < 0) | (arr > 1)])
        shown = ", ".join(str(v) for v in offending[:10].tolist())
        more = f" (and {offending.size - 10} more)" if offending.size > 10 else ""
        raise ValueError(f"{name} must be binary with values {{0, 1}}; found value(s) {shown}{more}")
    if arr.dtype.itemsize == 1:
        return arr.view(np.bool_)
    return arr != 0


def _bounding_box(mask: np.ndarray) -> tuple[tuple[int, int], ...] | None:
    """Inclusive (first, last) index per axis of the True voxels of a 3D bool mask; None if empty.

    Reductions follow the memory layout (NIfTI data from nibabel is Fortran-ordered, arrays
    built in numpy are C-ordered): the mask is viewed with its axes in memory order, the
    outermost axis is OR-ed away plane by plane (vectorised), and the outermost extent comes from
    an ``any`` over each contiguous plane. Reducing along a short contiguous axis instead is ~40x
    slower on a 384x384x20 volume.
    """
    order = sorted(range(3), key=lambda ax: -abs(mask.strides[ax]))
    ordered = np.ascontiguousarray(mask.transpose(order))
    outer = np.flatnonzero(ordered.reshape(ordered.shape[0], -1).any(axis=1))
    if outer.size == 0:
        return None
    plane = ordered[outer[0] : outer[-1] + 1].any(axis=0)
    middle = np.flatnonzero(plane.any(axis=1))
    inner = np.flatnonzero(plane.any(axis=0))
    extents = [(int(ax[0]), int(ax[-1])) for ax in (outer, middle, inner)]
    box: list[tuple[int, int]] = [(0, 0)] * 3
    for position, axis in enumerate(order):
        box[axis] = extents[position]
    return tuple(box)


# --------------------------------------------------------------------------------------------
# geometry helpers
# --------------------------------------------------------------------------------------------


def worst_hd95(shape: Sequence[int], spacing: Sequence[float]) -> float:
    """WORST_HD95 = sqrt(sum((shape_i * spacing_i)^2)) mm, the diagonal of the field of view.

    It is larger than any distance between two voxel centres of the volume
    (at most ``sqrt(sum(((shape_i - 1) * spacing_i)^2))``), so an empty mask is never scored better
    than any real prediction.
    """
    s = _check_spacing(spacing)
    return float(math.sqrt(sum((int(n) * v) ** 2 for n, v in zip(shape, s, strict=True))))


def _border_points(mask: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """Border voxel centres of a zero-padded mask, in mm, shape (N, 3).

    ``mask`` carries a one-voxel zero frame on every side (the volume edge counts as background),
    so the 6-connected erosion is the AND of each voxel and its six face neighbours and
    ``border = mask & ~eroded``. Coordinates are relative to the crop: distances
    are translation invariant and both masks share one crop.
    """
    core = mask[1:-1, 1:-1, 1:-1]
    interior = (
        core
        & mask[:-2, 1:-1, 1:-1]
        & mask[2:, 1:-1, 1:-1]
        & mask[1:-1, :-2, 1:-1]
        & mask[1:-1, 2:, 1:-1]
        & mask[1:-1, 1:-1, :-2]
        & mask[1:-1, 1:-1, 2:]
    )
    border = core & ~interior
    points = np.argwhere(border).astype(np.float64)
    points *= np.asarray(spacing, dtype=np.float64)
    return points


def _nearest_distances(sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Euclidean distance (mm) from every source point to its nearest target point."""
    tree = cKDTree(targets, leafsize=32, balanced_tree=False, compact_nodes=False)
    distances, _ = tree.query(sources, k=1)
    return np.asarray(distances, dtype=np.float64)


def _csa_error(pred: np.ndarray, gt: np.ndarray, spacing: tuple[float, float, float]) -> float:
    """mean_k |A_P(k) - A_G(k)| over axial slices k where P or G is non-empty (0 if none).

    ``A_X(k) = |X ∩ slice k| * s0 * s1`` (mm²). ``pred``/``gt`` are boolean arrays whose axis 2
    is the slice axis (crops are fine: slices outside the crop are empty in both masks).
    """
    count_p = np.count_nonzero(pred, axis=(0, 1))
    count_g = np.count_nonzero(gt, axis=(0, 1))
    occupied = (count_p > 0) | (count_g > 0)
    if not occupied.any():
        return 0.0
    diff = np.abs(count_p[occupied].astype(np.int64) - count_g[occupied].astype(np.int64))
    return float(np.mean(diff) * spacing[0] * spacing[1])


def _rve(n_pred: int, n_gt: int) -> float:
    """|V_P - V_G| / V_G; 0 if both empty; 1.0 (cap) if G is empty and P is not."""
    if n_gt == 0:
        return 0.0 if n_pred == 0 else 1.0
    return abs(n_pred - n_gt) / n_gt


def _padded_crop(
    pred: np.ndarray, gt: np.ndarray, boxes: Sequence[tuple[tuple[int, int], ...]]
) -> tuple[np.ndarray, np.ndarray]:
    """Both masks cropped to the union of ``boxes`` (bounding boxes), with a one-voxel zero frame.

    Outside the union of the masks' bounding boxes both masks are empty, so no metric changes.
    """
    window = tuple(
        slice(min(box[axis][0] for box in boxes), max(box[axis][1] for box in boxes) + 1) for axis in range(3)
    )
    return np.pad(pred[window], 1), np.pad(gt[window], 1)


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


def compute_metrics(
    pred: np.ndarray,
    gt: np.ndarray,
    spacing: Sequence[float],
    nsd_tolerance_mm: float = 1.0,
) -> dict[str, float]:
    """All five metrics of ``pred`` against ``gt``, in the order of :data:`METRIC_NAMES`.

    Args:
        pred, gt: 3D masks of equal shape, integer or bool dtype, values in {0, 1}, canonical RAS+.
        spacing: voxel size in mm per axis (3 finite values > 0).
        nsd_tolerance_mm: NSD tolerance ``tau`` in mm (finite, >= 0). A border voxel counts when its
            distance ``d <= tau + NSD_EPSILON_MM``.

    Formulas and the empty-mask policy are in the module docstring. Work is shared: both masks
    are cropped once to the union bounding box, borders come from a 6-connected erosion of the
    zero-padded crop, and the two nearest-neighbour queries between border voxel centres (mm)
    give NSD and both directed HD95 values.

    Raises:
        TypeError: a mask is not a numpy array of integer/bool dtype.
        ValueError: shapes differ or are not 3D, a mask holds values other than 0/1 (named in
            the message), bad spacing or tolerance.
    """
    _check_mask(pred, "pred")
    _check_mask(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt must have the same shape, got {pred.shape} and {gt.shape}")
    s = _check_spacing(spacing)
    tau = float(nsd_tolerance_mm)
    if not (math.isfinite(tau) and tau >= 0):
        raise ValueError(f"nsd_tolerance_mm must be finite and >= 0, got {nsd_tolerance_mm!r}")

    pred_b = _as_bool(pred, "pred")
    gt_b = _as_bool(gt, "gt")
    box_p, box_g = _bounding_box(pred_b), _bounding_box(gt_b)

    if box_p is None and box_g is None:
        return {"dice": 1.0, "nsd": 1.0, "hd95": 0.0, "rve": 0.0, "csa_error": 0.0}
    pred_c, gt_c = _padded_crop(pred_b, gt_b, [box for box in (box_p, box_g) if box is not None])
    n_pred, n_gt = int(np.count_nonzero(pred_c)), int(np.count_nonzero(gt_c))
    if box_p is None or box_g is None:
        return {
            "dice": 0.0,
            "nsd": 0.0,
            "hd95": worst_hd95(gt.shape, s),
            "rve": _rve(n_pred, n_gt),
            "csa_error": _csa_error(pred_c, gt_c, s),
        }

    dice = 2.0 * int(np.count_nonzero(pred_c & gt_c)) / (n_pred + n_gt)

    border_pred = _border_points(pred_c, s)
    border_gt = _border_points(gt_c, s)
    d_pred_to_gt = _nearest_distances(border_pred, border_gt)
    d_gt_to_pred = _nearest_distances(border_gt, border_pred)

    limit = tau + NSD_EPSILON_MM
    within = int(np.count_nonzero(d_pred_to_gt <= limit)) + int(np.count_nonzero(d_gt_to_pred <= limit))
    nsd = within / (d_pred_to_gt.size + d_gt_to_pred.size)
    hd95 = max(
        float(np.percentile(d_pred_to_gt, HD95_PERCENTILE)),
        float(np.percentile(d_gt_to_pred, HD95_PERCENTILE)),
    )
    return {
        "dice": float(dice),
        "nsd": float(nsd),
        "hd95": hd95,
        "rve": _rve(n_pred, n_gt),
        "csa_error": _csa_error(pred_c, gt_c, s),
    }


def label_extent(gt: np.ndarray) -> tuple[int, int] | None:
    """First and last axial slice (canonical axis 2) where ``gt`` is non-empty; None for an empty mask."""
    _check_mask(gt, "gt")
    slices = np.flatnonzero(_as_bool(gt, "gt").any(axis=(0, 1)))
    return (int(slices[0]), int(slices[-1])) if slices.size else None


def restrict_to_label_extent(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both masks cut to the axial slices spanned by ``gt`` (views, no copy); unchanged when ``gt`` is empty."""
    _check_mask(pred, "pred")
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt must have the same shape, got {pred.shape} and {gt.shape}")
    extent = label_extent(gt)
    if extent is None:
        return pred, gt
    first, last = extent
    return pred[:, :, first:last + 1], gt[:, :, first:last + 1]


def scored_region(pred: np.ndarray, gt: np.ndarray, region: str) -> tuple[np.ndarray, np.ndarray]:
    """The part of both masks that is scored under ``region`` (one of :data:`SCORED_REGIONS`)."""
    if region == "whole-image":
        return pred, gt
    if region == "label-extent":
        return restrict_to_label_extent(pred, gt)
    raise MetricInputError(f"unknown scored region {region!r}; choose one of {', '.join(SCORED_REGIONS)}")


def worst_metrics(gt: np.ndarray, spacing: Sequence[float]) -> dict[str, float]:
    """Scores of a missing or failed prediction: ``compute_metrics(zeros_like(gt), gt, spacing)``."""
    _check_mask(gt, "gt")
    return compute_metrics(np.zeros(gt.shape, dtype=np.uint8), gt, spacing)


def _binary_canonical(
    img: nib.spatialimages.SpatialImage, path: Path, role: str
) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Reorient a 3D NIfTI mask to canonical RAS+ and check its values are {0, 1}.

    Returns (uint8 mask, spacing from the canonical header zooms in mm). Files may store the mask
    as floats (0.0/1.0 are accepted exactly; any other value, NaN included, is an error naming
    the file).
    """
    canonical = nib.as_closest_canonical(img)
    data = np.asanyarray(canonical.dataobj)
    if data.ndim != 3:
        raise MetricInputError(f"{role} {path} must be a 3D image, got shape {data.shape}")
    ones = data == 1
    bad = ~(ones | (data == 0))
    if bad.any():
        offending = np.unique(data[bad])
        shown = ", ".join(str(v) for v in offending[:10].tolist())
        raise MetricInputError(f"{role} {path} must be a binary mask with values {{0, 1}}; found value(s) {shown}")
    zooms = tuple(float(z) for z in canonical.header.get_zooms()[:3])
    return ones.astype(np.uint8), zooms  # type: ignore[return-value]


def metrics_for_files(pred_path: Path, gt_path: Path, region: str = "whole-image") -> dict[str, float]:
    """:func:`compute_metrics` for two NIfTI masks on the same voxel grid.

    Both files must have the same shape and affine (every entry within
    ``AFFINE_TOLERANCE_MM`` = 1e-3 mm, see benchmark/io.py), else ValueError naming both files. Both are reoriented to
    canonical RAS+ (``nibabel.as_closest_canonical``); spacing is the ground truth's header zooms.
    Both masks must hold only 0 and 1 (no thresholding): ValueError naming the file otherwise.
    ``region`` is the scored region (:data:`SCORED_REGIONS`, see the module docstring).
    """
    pred_path, gt_path = Path(pred_path), Path(gt_path)
    for role, path in (("prediction", pred_path), ("ground truth", gt_path)):
        if not path.is_file():
            raise MetricInputError(f"{role} file not found: {path}")
    pred_img, gt_img = _load_nifti(pred_path, "prediction"), _load_nifti(gt_path, "ground truth")
    if pred_img.shape != gt_img.shape:
        raise MetricInputError(
            f"prediction {pred_path} has shape {pred_img.shape} but ground truth {gt_path} "
            f"has shape {gt_img.shape}"
        )
    diff = float(np.max(np.abs(np.asarray(pred_img.affine) - np.asarray(gt_img.affine))))
    if not diff <= AFFINE_TOLERANCE_MM:
        raise MetricInputError(
            f"prediction {pred_path} and ground truth {gt_path} have different affines "
            f"(max difference {diff:.3g} mm > {AFFINE_TOLERANCE_MM} mm):\n"
            f"prediction:\n{pred_img.affine}\nground truth:\n{gt_img.affine}"
        )
    pred, _ = _binary_canonical(pred_img, pred_path, "prediction")
    gt, spacing = _binary_canonical(gt_img, gt_path, "ground truth")
    return compute_metrics(*scored_region(pred, gt, region), spacing)
