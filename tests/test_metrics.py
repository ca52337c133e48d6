"""Tests for benchmark.evaluation.metrics: hand-computed cases, empty-mask policy, input errors, NIfTI I/O,
and a cross-check against MONAI on real spinal cord masks."""

from __future__ import annotations

import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from monai_reference import as_monai_tensors, monai_dice_hd95_nsd

from benchmark.evaluation.metrics import (
    MetricInputError,
    HIGHER_IS_BETTER,
    METRIC_NAMES,
    METRIC_UNITS,
    compute_metrics,
    metrics_for_files,
    worst_hd95,
    worst_metrics,
)

DATA_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"
GMCHALLENGE_LABELS = DATA_ROOT / "bids" / "gmchallenge" / "derivatives" / "labels"
GMCHALLENGE_SUBJECTS = (
    "sub-10062Ses1",
    "sub-10062Ses2",
    "sub-9418",
    "sub-9584",
    "sub-9604",
    "sub-9669",
    "sub-9709Ses1",
    "sub-9709Ses2",
)


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def _volume(shape: tuple[int, int, int], voxels: list[tuple[int, int, int]]) -> np.ndarray:
    arr = np.zeros(shape, dtype=np.uint8)
    for v in voxels:
        arr[v] = 1
    return arr


def _gmchallenge_mask(subject: str, kind: str) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Canonical uint8 mask and header spacing of a gmchallenge label (kind: seg or gmseg)."""
    path = GMCHALLENGE_LABELS / subject / "anat" / f"{subject}_T2starw_{kind}-manual.nii.gz"
    if not path.is_file():
        pytest.skip(f"real masks not available: {path} is missing (expected ../shared/data next to the repo)")
    img = nib.as_closest_canonical(nib.load(str(path)))
    data = np.asanyarray(img.dataobj)
    assert set(np.unique(data).tolist()) <= {0.0, 1.0}
    spacing = tuple(float(z) for z in img.header.get_zooms()[:3])
    return (data == 1).astype(np.uint8), spacing  # type: ignore[return-value]


def _monai_metrics(
    pred: np.ndarray, gt: np.ndarray, spacing: tuple[float, ...], tau: float = 1.0
) -> dict[str, float]:
    """dice, hd95, nsd from MONAI (independent implementation), same definitions as ours."""
    pytest.importorskip("torch")
    pytest.importorskip("monai.metrics")
    return monai_dice_hd95_nsd(*as_monai_tensors(pred, gt), spacing, tau)


# ------------------------------------------------------------------------------------------
# constants
# ------------------------------------------------------------------------------------------


def test_metric_tables() -> None:
    assert METRIC_NAMES == ("dice", "nsd", "hd95", "rve", "csa_error")
    assert HIGHER_IS_BETTER == {"dice": True, "nsd": True, "hd95": False, "rve": False, "csa_error": False}
    assert METRIC_UNITS == {"dice": "", "nsd": "", "hd95": "mm", "rve": "", "csa_error": "mm²"}


# ------------------------------------------------------------------------------------------
# hand-computed cases
# ------------------------------------------------------------------------------------------


def _offset_squares() -> tuple[np.ndarray, np.ndarray]:
    """Two 3x3x1 squares offset by one voxel along axis 0 (overlap: 2 rows = 6 voxels)."""
    pred = np.zeros((6, 5, 1), dtype=np.uint8)
    gt = np.zeros((6, 5, 1), dtype=np.uint8)
    pred[1:4, 1:4, 0] = 1
    gt[2:5, 1:4, 0] = 1
    return pred, gt


def test_offset_squares_hand_values() -> None:
    # Single-slice masks: every voxel is a border voxel (its z neighbours are background).
    # P->G: 6 voxels at 0, 3 voxels (row 1) at one voxel = 0.8 mm along axis 0; G->P symmetric.
    # q95 of [0]*6 + [0.8]*3: position 0.95 * 8 = 7.6 -> d[7] + 0.6 (d[8] - d[7]) = 0.8.
    pred, gt = _offset_squares()
    m = compute_metrics(pred, gt, (0.8, 0.5, 2.0))
    assert list(m) == list(METRIC_NAMES)
    assert m["dice"] == pytest.approx(2 * 6 / 18, abs=1e-12)
    assert m["nsd"] == pytest.approx(1.0, abs=1e-12)  # 0.8 mm <= 1 mm
    assert m["hd95"] == pytest.approx(0.8, abs=1e-12)
    assert m["rve"] == 0.0
    assert m["csa_error"] == 0.0


def test_offset_squares_nsd_below_offset() -> None:
    # tau = 0.5 mm < 0.8 mm: only the 6 + 6 overlapping border voxels count -> 12 / 18.
    pred, gt = _offset_squares()
    m = compute_metrics(pred, gt, (0.8, 0.5, 2.0), nsd_tolerance_mm=0.5)
    assert m["nsd"] == pytest.approx(12 / 18, abs=1e-12)
    assert m["dice"] == pytest.approx(2 / 3, abs=1e-12)


def test_hd95_line_anisotropic_hand_value() -> None:
    # G: a line of 20 voxels (i, 0, 0). P: the same line minus its last voxel, which is moved to
    # (19, 0, 2). Spacing (1.0, 0.5, 2.0) mm.
    # P->G: 19 zeros and (19,0,2)->(19,0,0) = 2 * 2.0 = 4.0 mm  => q95 = d[18] + 0.05 * (4.0 - 0) = 0.2
    # G->P: 19 zeros and (19,0,0)->(18,0,0) = 1.0 mm (the moved voxel is 4.0 mm away) => q95 = 0.05
    # hd95 = max(0.2, 0.05) = 0.2 mm.
    gt = _volume((20, 2, 3), [(i, 0, 0) for i in range(20)])
    pred = _volume((20, 2, 3), [(i, 0, 0) for i in range(19)] + [(19, 0, 2)])
    m = compute_metrics(pred, gt, (1.0, 0.5, 2.0))
    assert m["hd95"] == pytest.approx(0.2, abs=1e-12)
    # NSD: P: 19 of 20 within 1 mm; G: 20 of 20 (the 1.0 mm one is exactly at tau) -> 39 / 40.
    assert m["nsd"] == pytest.approx(39 / 40, abs=1e-12)
    assert m["dice"] == pytest.approx(2 * 19 / 40, abs=1e-12)
    # Slice 0: |19 - 20| voxels, slice 2: |1 - 0| voxel; pixel area 1.0 * 0.5 = 0.5 mm².
    assert m["csa_error"] == pytest.approx(0.5, abs=1e-12)
    assert m["rve"] == 0.0


def test_hd95_line_matches_monai() -> None:
    gt = _volume((20, 2, 3), [(i, 0, 0) for i in range(20)])
    pred = _volume((20, 2, 3), [(i, 0, 0) for i in range(19)] + [(19, 0, 2)])
    ref = _monai_metrics(pred, gt, (1.0, 0.5, 2.0))
    assert ref["hd95"] == pytest.approx(0.2, abs=1e-6)
    assert ref["nsd"] == pytest.approx(39 / 40, abs=1e-6)


def test_nsd_distance_exactly_at_tolerance_counts() -> None:
    # Two single voxels two voxels apart at 0.5 mm: distance exactly 1.0 mm = tau -> counted.
    pred = _volume((5, 1, 1), [(2, 0, 0)])
    gt = _volume((5, 1, 1), [(0, 0, 0)])
    assert compute_metrics(pred, gt, (0.5, 1.0, 1.0))["nsd"] == 1.0
    assert compute_metrics(pred, gt, (0.5, 1.0, 1.0), nsd_tolerance_mm=0.999)["nsd"] == 0.0


def test_nsd_tolerance_epsilon() -> None:
    # d = 2 * 0.5000001 = 1.0000002 mm: within tau + 1e-6, so it still counts (float32 header
    # zooms give such spacings); d = 2 * 0.5000006 = 1.0000012 mm is beyond the epsilon.
    pred = _volume((5, 1, 1), [(2, 0, 0)])
    gt = _volume((5, 1, 1), [(0, 0, 0)])
    assert compute_metrics(pred, gt, (0.5000001, 1.0, 1.0))["nsd"] == 1.0
    assert compute_metrics(pred, gt, (0.5000006, 1.0, 1.0))["nsd"] == 0.0


def test_csa_error_and_rve_hand_values() -> None:
    # Slice 0: P 4 voxels, G 2; slice 1: both empty (excluded); slice 2: P 0, G 3.
    # pixel area 0.5 * 0.4 = 0.2 mm² -> mean(|4-2| * 0.2, |0-3| * 0.2) = (0.4 + 0.6) / 2 = 0.5 mm².
    pred = _volume((4, 4, 3), [(0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 1, 0)])
    gt = _volume((4, 4, 3), [(0, 0, 0), (0, 1, 0), (0, 0, 2), (1, 0, 2), (2, 0, 2)])
    m = compute_metrics(pred, gt, (0.5, 0.4, 3.0))
    assert m["csa_error"] == pytest.approx(0.5, abs=1e-12)
    assert m["rve"] == pytest.approx(1 / 5, abs=1e-12)  # |4 - 5| / 5
    assert m["dice"] == pytest.approx(2 * 2 / 9, abs=1e-12)


def test_mask_filling_the_volume_edge_is_border() -> None:
    # G fills the whole 3x3x3 volume; the volume edge is background, so its border is the 26
    # outer voxels. P is the centre voxel.
    # P->G: 1 mm. G->P: 6 faces at 1, 12 edges at sqrt(2), 8 corners at sqrt(3) mm;
    # q95 position 0.95 * 25 = 23.75 lies among the corners -> sqrt(3).
    # NSD(tau=1): P 1/1, G 6/26 -> 7 / 27.
    gt = np.ones((3, 3, 3), dtype=np.uint8)
    pred = _volume((3, 3, 3), [(1, 1, 1)])
    m = compute_metrics(pred, gt, (1.0, 1.0, 1.0))
    assert m["hd95"] == pytest.approx(math.sqrt(3), abs=1e-12)
    assert m["nsd"] == pytest.approx(7 / 27, abs=1e-12)
    assert m["dice"] == pytest.approx(2 / 28, abs=1e-12)
    assert m["rve"] == pytest.approx(26 / 27, abs=1e-12)
    assert m["csa_error"] == pytest.approx((9 + 8 + 9) / 3, abs=1e-12)
    ref = _monai_metrics(pred, gt, (1.0, 1.0, 1.0))
    assert ref["hd95"] == pytest.approx(math.sqrt(3), abs=1e-6)
    assert ref["nsd"] == pytest.approx(7 / 27, abs=1e-6)


def test_identical_masks() -> None:
    gt = np.zeros((8, 8, 4), dtype=np.uint8)
    gt[2:6, 3:7, 1:3] = 1
    assert compute_metrics(gt, gt.copy(), (0.5, 0.5, 3.0)) == {
        "dice": 1.0,
        "nsd": 1.0,
        "hd95": 0.0,
        "rve": 0.0,
        "csa_error": 0.0,
    }


def test_anisotropic_spacing_changes_only_distance_metrics() -> None:
    # Same voxels, shift of one voxel along axis 2 (slice axis): hd95 follows spacing[2].
    gt = np.zeros((10, 10, 6), dtype=np.uint8)
    gt[3:7, 3:7, 1:4] = 1
    pred = np.roll(gt, 1, axis=2)
    iso = compute_metrics(pred, gt, (1.0, 1.0, 1.0))
    aniso = compute_metrics(pred, gt, (0.5, 0.5, 3.0))
    assert iso["dice"] == aniso["dice"] == pytest.approx(2 * 32 / 96, abs=1e-12)
    assert iso["hd95"] == pytest.approx(1.0, abs=1e-12)
    assert aniso["hd95"] == pytest.approx(3.0, abs=1e-12)
    # csa: slice 1 |0-16|, slices 2,3 equal, slice 4 |16-0| -> 32 / 4 voxels * pixel area.
    assert iso["csa_error"] == pytest.approx(8.0, abs=1e-12)
    assert aniso["csa_error"] == pytest.approx(8.0 * 0.25, abs=1e-12)


def test_memory_layout_does_not_change_values() -> None:
    rng = np.random.default_rng(3)
    gt = (ndimage.gaussian_filter(rng.random((40, 30, 12)), 2) > 0.5).astype(np.uint8)
    pred = (ndimage.gaussian_filter(rng.random((40, 30, 12)), 2) > 0.5).astype(np.uint8)
    spacing = (0.6, 0.7, 2.5)
    ref = compute_metrics(pred, gt, spacing)
    assert 0.0 < ref["dice"] < 1.0
    assert compute_metrics(np.asfortranarray(pred), np.asfortranarray(gt), spacing) == ref
    assert compute_metrics(pred.astype(bool), gt.astype(np.int64), spacing) == ref
    # Non-contiguous views (flips) of flipped copies give the same values.
    flipped = compute_metrics(
        np.ascontiguousarray(pred[::-1, :, ::-1])[::-1, :, ::-1],
        np.ascontiguousarray(gt[::-1, :, ::-1])[::-1, :, ::-1],
        spacing,
    )
    assert flipped == ref


def test_random_masks_match_monai() -> None:
    rng = np.random.default_rng(7)
    for trial in range(3):
        gt = (ndimage.gaussian_filter(rng.random((36, 28, 10)), 1.5) > 0.52).astype(np.uint8)
        pred = (ndimage.gaussian_filter(rng.random((36, 28, 10)), 1.5) > 0.52).astype(np.uint8)
        spacing = (0.45, 0.7, 2.5 + trial)
        ours = compute_metrics(pred, gt, spacing)
        ref = _monai_metrics(pred, gt, spacing)
        for name in ("dice", "hd95", "nsd"):
            assert ours[name] == pytest.approx(ref[name], abs=1e-6), (trial, name)


# ------------------------------------------------------------------------------------------
# empty-mask policy
# ------------------------------------------------------------------------------------------


def test_both_empty() -> None:
    z = np.zeros((4, 5, 6), dtype=np.uint8)
    assert compute_metrics(z, z, (1.0, 1.0, 1.0)) == {
        "dice": 1.0,
        "nsd": 1.0,
        "hd95": 0.0,
        "rve": 0.0,
        "csa_error": 0.0,
    }


def test_empty_prediction() -> None:
    gt = np.zeros((10, 20, 4), dtype=np.uint8)
    gt[2:4, 2:5, 1] = 1  # 6 voxels in slice 1
    gt[2:4, 2:4, 2] = 1  # 4 voxels in slice 2
    spacing = (0.5, 0.5, 3.0)
    m = compute_metrics(np.zeros_like(gt), gt, spacing)
    # diagonal of the field of view: sqrt(5^2 + 10^2 + 12^2) = sqrt(269) mm
    assert m == {
        "dice": 0.0,
        "nsd": 0.0,
        "hd95": pytest.approx(math.sqrt(269), abs=1e-12),
        "rve": 1.0,
        "csa_error": pytest.approx((6 + 4) / 2 * 0.25, abs=1e-12),
    }
    assert worst_metrics(gt, spacing) == m


def test_empty_ground_truth_caps_rve() -> None:
    pred = np.zeros((10, 20, 4), dtype=np.uint8)
    pred[0:3, 0:3, 0] = 1  # 9 voxels
    m = compute_metrics(pred, np.zeros_like(pred), (1.0, 2.0, 2.0))
    assert m == {
        "dice": 0.0,
        "nsd": 0.0,
        "hd95": pytest.approx(math.sqrt(10**2 + 40**2 + 8**2), abs=1e-12),
        "rve": 1.0,
        "csa_error": pytest.approx(9 * 2.0, abs=1e-12),
    }


def test_worst_hd95_is_worse_than_any_real_distance() -> None:
    # Opposite corners: the largest real distance, sqrt(sum(((n-1) s)^2)), stays below WORST_HD95.
    shape, spacing = (5, 6, 7), (0.5, 0.5, 3.0)
    pred = _volume(shape, [(0, 0, 0)])
    gt = _volume(shape, [(4, 5, 6)])
    far = compute_metrics(pred, gt, spacing)["hd95"]
    assert far == pytest.approx(math.sqrt(2.0**2 + 2.5**2 + 18.0**2), abs=1e-12)
    assert worst_hd95(shape, spacing) == pytest.approx(math.sqrt(2.5**2 + 3.0**2 + 21.0**2), abs=1e-12)
    assert worst_metrics(gt, spacing)["hd95"] > far


def test_worst_metrics_are_never_better_than_a_real_prediction() -> None:
    gt = np.zeros((12, 12, 3), dtype=np.uint8)
    gt[4:8, 4:8, :] = 1
    poor = np.zeros_like(gt)
    poor[0, 0, 0] = 1  # one far false-positive voxel
    worst = worst_metrics(gt, (1.0, 1.0, 1.0))
    real = compute_metrics(poor, gt, (1.0, 1.0, 1.0))
    assert worst["dice"] == real["dice"] == 0.0
    assert worst["nsd"] == real["nsd"] == 0.0
    assert worst["hd95"] == pytest.approx(math.sqrt(12**2 + 12**2 + 3**2), abs=1e-12)
    # P->G: (0,0,0)->(4,4,0) = sqrt(32). G->P: the 44 border voxels of the 4x4x3 block (all but
    # the 2x2x1 core at z=1) to the origin; q95 of those dominates.
    block = [(i, j, k) for i in range(4, 8) for j in range(4, 8) for k in range(3)]
    border = [v for v in block if not (v[0] in (5, 6) and v[1] in (5, 6) and v[2] == 1)]
    assert len(border) == 44
    g_to_p = np.percentile([math.dist(v, (0, 0, 0)) for v in border], 95)
    assert g_to_p > math.sqrt(32)
    assert real["hd95"] == pytest.approx(g_to_p, abs=1e-12)
    assert real["hd95"] == pytest.approx(9.8296679, abs=1e-7)
    assert worst["rve"] == 1.0 and real["rve"] == pytest.approx(47 / 48, abs=1e-12)
    # csa_error is not part of this ordering: an empty prediction scores the mean GT area,
    # a prediction with large false positives can score worse.


# ------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------


def test_non_binary_values_are_named() -> None:
    gt = np.zeros((3, 3, 3), dtype=np.int16)
    pred = gt.copy()
    pred[0, 0, 0] = 2
    pred[1, 0, 0] = 7
    with pytest.raises(ValueError, match=r"pred must be binary.*2, 7"):
        compute_metrics(pred, gt, (1, 1, 1))
    gt[2, 2, 2] = -1
    with pytest.raises(ValueError, match=r"gt must be binary.*-1"):
        compute_metrics(gt.copy() * 0, gt, (1, 1, 1))


def test_float_masks_are_rejected() -> None:
    with pytest.raises(TypeError, match="float64"):
        compute_metrics(np.zeros((2, 2, 2)), np.zeros((2, 2, 2), dtype=np.uint8), (1, 1, 1))


def test_shape_and_dimension_errors() -> None:
    a = np.zeros((2, 2, 2), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"same shape.*\(2, 2, 2\).*\(2, 2, 3\)"):
        compute_metrics(a, np.zeros((2, 2, 3), dtype=np.uint8), (1, 1, 1))
    with pytest.raises(ValueError, match="3D"):
        compute_metrics(np.zeros((2, 2), dtype=np.uint8), np.zeros((2, 2), dtype=np.uint8), (1, 1, 1))
    with pytest.raises(ValueError, match="no voxels"):
        compute_metrics(np.zeros((0, 2, 2), dtype=np.uint8), np.zeros((0, 2, 2), dtype=np.uint8), (1, 1, 1))
    with pytest.raises(TypeError, match="numpy array"):
        compute_metrics([[[0]]], a, (1, 1, 1))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spacing", "message"),
    [
        ((1.0, 1.0), "3 values"),
        ((1.0, 0.0, 1.0), "> 0"),
        ((1.0, -1.0, 1.0), "> 0"),
        ((1.0, float("nan"), 1.0), "finite"),
    ],
)
def test_bad_spacing(spacing: tuple[float, ...], message: str) -> None:
    a = np.zeros((2, 2, 2), dtype=np.uint8)
    with pytest.raises(ValueError, match=message):
        compute_metrics(a, a, spacing)


def test_bad_tolerance() -> None:
    a = np.zeros((2, 2, 2), dtype=np.uint8)
    with pytest.raises(ValueError, match="nsd_tolerance_mm"):
        compute_metrics(a, a, (1, 1, 1), nsd_tolerance_mm=-0.1)


# ------------------------------------------------------------------------------------------
# NIfTI files
# ------------------------------------------------------------------------------------------


def _save(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


def test_metrics_for_files_reorients_to_canonical(tmp_path: Path) -> None:
    # The csa/rve hand case, stored with the slice (S) axis first: data axes (S, R, A).
    pred = _volume((4, 4, 3), [(0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 1, 0)])
    gt = _volume((4, 4, 3), [(0, 0, 0), (0, 1, 0), (0, 0, 2), (1, 0, 2), (2, 0, 2)])
    affine = np.array(
        [[0.0, 0.5, 0.0, -10.0], [0.0, 0.0, 0.4, 5.0], [3.0, 0.0, 0.0, 2.0], [0.0, 0.0, 0.0, 1.0]]
    )
    assert nib.aff2axcodes(affine) == ("S", "R", "A")
    p = _save(tmp_path / "pred.nii.gz", pred.transpose(2, 0, 1).astype(np.float32), affine)
    g = _save(tmp_path / "gt.nii.gz", gt.transpose(2, 0, 1).astype(np.float64), affine)
    m = metrics_for_files(p, g)
    assert m["csa_error"] == pytest.approx(0.5, abs=1e-6)  # per canonical axial slice, 0.5 * 0.4 mm²
    assert m["rve"] == pytest.approx(0.2, abs=1e-12)
    assert m["dice"] == pytest.approx(4 / 9, abs=1e-12)


def test_metrics_for_files_different_affines(tmp_path: Path) -> None:
    data = np.zeros((4, 4, 2), dtype=np.uint8)
    data[1:3, 1:3, :] = 1
    a = _save(tmp_path / "case_pred.nii.gz", data, np.diag([0.5, 0.5, 3.0, 1.0]))
    b = _save(tmp_path / "case_gt.nii.gz", data, np.diag([0.5, 0.5, 3.01, 1.0]))
    with pytest.raises(ValueError, match=r"case_pred\.nii\.gz.*case_gt\.nii\.gz.*different affines"):
        metrics_for_files(a, b)
    # A difference below 1e-3 mm is the same grid.
    c = _save(tmp_path / "case_gt2.nii.gz", data, np.diag([0.5, 0.5, 3.0005, 1.0]))
    assert metrics_for_files(a, c)["dice"] == 1.0


def test_metrics_for_files_different_shapes(tmp_path: Path) -> None:
    a = _save(tmp_path / "p.nii.gz", np.zeros((4, 4, 2), dtype=np.uint8), np.eye(4))
    b = _save(tmp_path / "g.nii.gz", np.zeros((4, 4, 3), dtype=np.uint8), np.eye(4))
    with pytest.raises(ValueError, match=r"p\.nii\.gz.*\(4, 4, 2\).*g\.nii\.gz.*\(4, 4, 3\)"):
        metrics_for_files(a, b)


def test_metrics_for_files_non_binary(tmp_path: Path) -> None:
    good = np.zeros((4, 4, 2), dtype=np.float32)
    good[1, 1, 1] = 1.0
    bad = good.copy()
    bad[2, 2, 0] = 0.5
    g = _save(tmp_path / "gt.nii.gz", good, np.eye(4))
    p = _save(tmp_path / "soft_pred.nii.gz", bad, np.eye(4))
    with pytest.raises(ValueError, match=r"prediction .*soft_pred\.nii\.gz.*0\.5"):
        metrics_for_files(p, g)
    labels = good.astype(np.uint8) * 2
    g2 = _save(tmp_path / "labels_gt.nii.gz", labels, np.eye(4))
    with pytest.raises(ValueError, match=r"ground truth .*labels_gt\.nii\.gz.*\b2\b"):
        metrics_for_files(_save(tmp_path / "ok.nii.gz", good, np.eye(4)), g2)


def test_metrics_for_files_missing(tmp_path: Path) -> None:
    g = _save(tmp_path / "gt.nii.gz", np.zeros((2, 2, 2), dtype=np.uint8), np.eye(4))
    with pytest.raises(MetricInputError, match="nope.nii.gz"):
        metrics_for_files(tmp_path / "nope.nii.gz", g)


# ------------------------------------------------------------------------------------------
# real masks (../shared/data) and MONAI
# ------------------------------------------------------------------------------------------


def _shift(mask: np.ndarray, axis: int) -> np.ndarray:
    """Shift by one voxel towards higher indices along ``axis``; what leaves the volume is lost."""
    out = np.zeros_like(mask)
    src = [slice(None)] * 3
    dst = [slice(None)] * 3
    src[axis], dst[axis] = slice(0, -1), slice(1, None)
    out[tuple(dst)] = mask[tuple(src)]
    return out


def _perturb(cord: np.ndarray, subject: str, kind: str) -> np.ndarray:
    if kind == "shift_x":
        return _shift(cord, 0)
    if kind == "shift_z":
        return _shift(cord, 2)
    if kind == "eroded":
        return ndimage.binary_erosion(cord).astype(np.uint8)
    if kind == "dilated":
        return ndimage.binary_dilation(cord).astype(np.uint8)
    if kind == "grey_matter":
        return _gmchallenge_mask(subject, "gmseg")[0]
    raise AssertionError(kind)


@pytest.mark.real_data
@pytest.mark.parametrize("kind", ["shift_x", "shift_z", "eroded", "dilated", "grey_matter"])
@pytest.mark.parametrize("subject", GMCHALLENGE_SUBJECTS)
def test_real_masks_match_monai(subject: str, kind: str) -> None:
    cord, spacing = _gmchallenge_mask(subject, "seg")
    pred = _perturb(cord, subject, kind)
    ours = compute_metrics(pred, cord, spacing)
    ref = _monai_metrics(pred, cord, spacing)
    for name in ("dice", "hd95", "nsd"):
        assert ours[name] == pytest.approx(ref[name], abs=1e-6), name


@pytest.mark.real_data
def test_real_cord_vs_grey_matter_values() -> None:
    # sub-9418, 384x384x17 at 0.5x0.5x3 mm; values cross-checked with MONAI 1.6.1 (dice, hd95, nsd).
    cord, spacing = _gmchallenge_mask("sub-9418", "seg")
    gm, _ = _gmchallenge_mask("sub-9418", "gmseg")
    assert spacing == (0.5, 0.5, 3.0)
    m = compute_metrics(gm, cord, spacing)
    assert m["dice"] == pytest.approx(0.2455617, abs=1e-7)
    assert m["nsd"] == pytest.approx(0.2110020, abs=1e-7)
    assert m["hd95"] == pytest.approx(4.0, abs=1e-7)
    assert m["rve"] == pytest.approx(0.8600340, abs=1e-7)  # |906 - 6473| / 6473
    assert m["csa_error"] == pytest.approx(81.8676471, abs=1e-7)


@pytest.mark.real_data
def test_real_nsd_epsilon_keeps_float32_spacing_stable() -> None:
    # Cord vs the cord dilated twice: many border distances are exactly 1.0 mm at 0.5 mm spacing.
    # A +1e-7 mm spacing change (float32 header noise) leaves our NSD unchanged; MONAI compares
    # d <= tau without tolerance and drops from 0.9772 to 0.6523.
    cord, spacing = _gmchallenge_mask("sub-9418", "seg")
    pred = ndimage.binary_dilation(cord, iterations=2).astype(np.uint8)
    noisy = (spacing[0] + 1e-7, spacing[1] + 1e-7, spacing[2])
    exact_ours = compute_metrics(pred, cord, spacing)["nsd"]
    noisy_ours = compute_metrics(pred, cord, noisy)["nsd"]
    assert exact_ours == pytest.approx(0.9772, abs=1e-4)
    assert noisy_ours == exact_ours
    assert _monai_metrics(pred, cord, spacing)["nsd"] == pytest.approx(exact_ours, abs=1e-6)
    assert _monai_metrics(pred, cord, noisy)["nsd"] == pytest.approx(0.6523, abs=1e-4)


def _label_path(subject: str, kind: str) -> Path:
    path = GMCHALLENGE_LABELS / subject / "anat" / f"{subject}_T2starw_{kind}-manual.nii.gz"
    if not path.is_file():
        pytest.skip(f"real masks not available: {path} is missing (expected ../shared/data next to the repo)")
    return path


@pytest.mark.real_data
def test_metrics_for_files_real_masks() -> None:
    from_files = metrics_for_files(_label_path("sub-9418", "gmseg"), _label_path("sub-9418", "seg"))
    cord, spacing = _gmchallenge_mask("sub-9418", "seg")
    gm, _ = _gmchallenge_mask("sub-9418", "gmseg")
    assert from_files == compute_metrics(gm, cord, spacing)
    assert from_files["dice"] == pytest.approx(0.2455617, abs=1e-7)


@pytest.mark.real_data
def test_metrics_for_files_accepts_float_noise_in_real_affines() -> None:
    # sub-9604's grey-matter mask carries a slightly rotated sform (entries differ by 2.2e-4 mm from the
    # cord mask's): the same voxel grid within the project's 1e-3 mm tolerance.
    gm_path, cord_path = _label_path("sub-9604", "gmseg"), _label_path("sub-9604", "seg")
    values = metrics_for_files(gm_path, cord_path)
    cord, spacing = _gmchallenge_mask("sub-9604", "seg")
    gm, _ = _gmchallenge_mask("sub-9604", "gmseg")
    assert values == compute_metrics(gm, cord, spacing)


def test_label_extent_region_hand_values() -> None:
    from benchmark.evaluation.metrics import label_extent, restrict_to_label_extent, scored_region

    gt = np.zeros((5, 5, 8), dtype=np.uint8)
    gt[1:4, 1:4, 2:5] = 1  # a 3x3 square on slices 2-4
    pred = np.zeros_like(gt)
    pred[1:4, 1:4, 0:7] = 1  # the same square on slices 0-6
    assert label_extent(gt) == (2, 4)
    assert compute_metrics(pred, gt, (1, 1, 1))["dice"] == pytest.approx(2 * 27 / (27 + 63))  # 0.6
    cut_pred, cut_gt = restrict_to_label_extent(pred, gt)
    assert cut_pred.shape == cut_gt.shape == (5, 5, 3)
    assert compute_metrics(cut_pred, cut_gt, (1, 1, 1)) == compute_metrics(gt[:, :, 2:5], gt[:, :, 2:5], (1, 1, 1))
    # a prediction missing part of the labelled range is still penalised inside it
    pred[:, :, 3] = 0
    assert compute_metrics(*scored_region(pred, gt, "label-extent"), (1, 1, 1))["dice"] == pytest.approx(2 * 18 / 45)
    # an empty reference leaves both masks whole, so a non-empty prediction still scores 0
    empty = np.zeros_like(gt)
    assert label_extent(empty) is None
    assert restrict_to_label_extent(pred, empty)[0].shape == pred.shape
    assert compute_metrics(*scored_region(pred, empty, "label-extent"), (1, 1, 1))["dice"] == 0.0
    with pytest.raises(ValueError, match="unknown scored region 'slab'"):
        scored_region(pred, gt, "slab")
