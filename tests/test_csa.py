"""Angle-corrected CSA, checked on a cylinder whose area is known: radius 4 mm, so CSA = pi * 16 = 50.27 mm².

The cylinder's axis is tilted 20 degrees from scanner z (in the x-z plane). It is voxelised on two grids: an
axial one (0.3 x 0.3 x 1 mm, slices tilted 20 degrees to the cord: raw slice area pi r^2 / cos 20 = 53.5 mm²)
and an oblique one rotated -15 degrees about y (0.4 x 0.4 x 2 mm, saved in LPS so the loader must reorient it;
35 degrees between slices and cord: raw 61.4 mm²). Both must give the same corrected CSA within 2 %.
"""

from __future__ import annotations

import math

import nibabel as nib
import numpy as np
import pytest

from benchmark.evaluation.csa import (case_csa, common_range, csa_profile, csa_profile_file, mean_csa_in_range,
                                      scan_ranges)

RADIUS = 4.0
TILT = math.radians(20)
AXIS = np.array([math.sin(TILT), 0.0, math.cos(TILT)])
TRUE_CSA = math.pi * RADIUS ** 2


def _rotation_y(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def cylinder(shape, spacing, rotation=np.eye(3)):
    """A binary mask of the tilted cylinder on a grid centred on the origin, cut only by the field of view
    (as a scan cuts the cord); returns (mask, affine)."""
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag(spacing)
    affine[:3, 3] = -affine[:3, :3] @ ((np.array(shape) - 1) / 2)
    ijk = np.stack(np.meshgrid(*(np.arange(n) for n in shape), indexing="ij"), axis=-1).reshape(-1, 3)
    xyz = ijk @ affine[:3, :3].T + affine[:3, 3]
    along = xyz @ AXIS
    distance = np.linalg.norm(xyz - along[:, None] * AXIS, axis=1)
    inside = distance <= RADIUS
    return inside.reshape(shape), affine


def test_tilted_cylinder_gives_the_same_corrected_csa_in_two_orientations(tmp_path):
    axial, axial_affine = cylinder((110, 60, 36), (0.3, 0.3, 1.0))
    profile = csa_profile(axial, axial_affine)
    inner = profile.present & (np.abs(profile.z_mm) < 10)  # away from the cut ends
    assert profile.area_mm2[inner].mean() == pytest.approx(TRUE_CSA / math.cos(TILT), rel=0.02)  # raw: an ellipse
    assert profile.angle_deg()[inner] == pytest.approx(20.0, abs=0.5)
    axial_csa = mean_csa_in_range(profile, (-10, 10))
    assert axial_csa == pytest.approx(TRUE_CSA, rel=0.02)

    oblique, oblique_affine = cylinder((100, 45, 18), (0.4, 0.4, 2.0), rotation=_rotation_y(math.radians(-15)))
    lps = np.diag([-1.0, -1.0, 1.0, 1.0])
    flipped = nib.Nifti1Image(oblique[::-1, ::-1, :].astype(np.uint8),
                              oblique_affine @ np.array([[-1, 0, 0, oblique.shape[0] - 1],
                                                         [0, -1, 0, oblique.shape[1] - 1],
                                                         [0, 0, 1, 0], [0, 0, 0, 1]]))
    assert nib.aff2axcodes(flipped.affine) == ("L", "P", "S") and not np.allclose(lps, 0)
    nib.save(flipped, tmp_path / "oblique.nii.gz")
    oblique_profile = csa_profile_file(tmp_path / "oblique.nii.gz")
    inner = oblique_profile.present & (np.abs(oblique_profile.z_mm) < 10)
    assert oblique_profile.angle_deg()[inner] == pytest.approx(35.0, abs=1.0)
    oblique_csa = mean_csa_in_range(oblique_profile, (-10, 10))
    assert oblique_csa == pytest.approx(TRUE_CSA, rel=0.02)
    assert oblique_csa == pytest.approx(axial_csa, rel=0.02)


def test_one_slice_and_straight_cord_need_no_correction():
    mask = np.zeros((20, 20, 3), bool)
    mask[5:10, 5:9, 1] = True
    profile = csa_profile(mask, np.diag([0.5, 0.5, 3.0, 1.0]))
    assert profile.csa_mm2[1] == pytest.approx(20 * 0.25)
    assert profile.cos_angle[1] == 1.0 and profile.extent() == (3.0, 3.0)
    mask[5:10, 5:9, :] = True
    assert csa_profile(mask, np.diag([0.5, 0.5, 3.0, 1.0])).cos_angle.tolist() == pytest.approx([1, 1, 1])


def test_common_range_and_missed_slices_count_as_zero(tmp_path):
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    reference = np.zeros((10, 10, 20), bool)
    reference[3:7, 3:7, 2:18] = True          # 16 mm² on slices 2..17 (z 2..17)
    other = np.zeros((10, 10, 20), bool)
    other[3:7, 3:7, 8:20] = True              # another contrast of the same person: z 8..19
    prediction = reference.copy()
    prediction[:, :, 10:14] = False           # misses 4 of the 10 slices in the common range 8..17
    for name, array in (("ref", reference), ("other", other), ("pred", prediction)):
        nib.save(nib.Nifti1Image(array.astype(np.uint8), affine), tmp_path / f"{name}.nii.gz")
    assert common_range([(2.0, 17.0), (8.0, 19.0)]) == (8.0, 17.0)
    assert common_range([(2.0, 5.0), (8.0, 19.0)]) is None
    assert common_range([(2.0, 5.0), None]) is None
    ranges = scan_ranges({"a": ("d", "sub-1", None), "b": ("d", "sub-1", None), "c": ("d", "sub-2", None)},
                         {"a": tmp_path / "ref.nii.gz", "b": tmp_path / "other.nii.gz", "c": tmp_path / "other.nii.gz"})
    assert {key: tuple(value) for key, value in ranges.items()} == {
        "a": pytest.approx((8.0, 17.0)), "b": pytest.approx((8.0, 17.0)), "c": pytest.approx((8.0, 19.0))}
    values = case_csa(tmp_path / "pred.nii.gz", tmp_path / "ref.nii.gz", ranges["a"])
    assert values == {"csa_mm2": pytest.approx(16.0 * 6 / 10), "csa_reference_mm2": pytest.approx(16.0)}
    assert case_csa(None, tmp_path / "ref.nii.gz", ranges["a"])["csa_mm2"] is None


def test_consistency_across_contrasts_per_person_and_dataset():
    import hashlib

    from benchmark.analysis.csa_consistency import REFERENCE, dataset_consistency, person_consistency
    from benchmark.evaluation.results import CaseResult, ResultsFile

    def case(subject, contrast, csa, reference):
        case_id = f"d:{subject}_{contrast}"
        return CaseResult(case_id=case_id, dataset="d", subject=subject, contrast=contrast,
                          image_sha256=hashlib.sha256(case_id.encode()).hexdigest(), suite_role="ood",
                          dataset_in_training=False, subject_in_training=False, dice=0.9, nsd=0.9, hd95=1, rve=0,
                          csa_error=1, csa_mm2=csa, csa_reference_mm2=reference)

    cases = [case("sub-1", "T1w", 70.0, 78.0), case("sub-1", "T2w", 80.0, 80.0), case("sub-1", "T2starw", 90.0, 82.0),
             case("sub-2", "T1w", 60.0, 60.0), case("sub-2", "T2w", 64.0, 62.0),
             case("sub-3", "T2w", 50.0, 50.0)]  # one image: no spread to measure
    result = ResultsFile(submission="m", suite="s", benchmark_version="v", cordbench_version="0", model_sha256="0",
                         model_type="nnunet", declared_training_datasets=[], created_utc="2026", cases=cases)
    persons = person_consistency([result]).set_index(["submission", "subject"])
    assert persons.loc[("m", "sub-1"), "sd_mm2"] == pytest.approx(10.0)
    assert persons.loc[("m", "sub-1"), "cv"] == pytest.approx(10.0 / 80.0)
    assert persons.loc[(REFERENCE, "sub-1"), "sd_mm2"] == pytest.approx(2.0)
    assert persons.loc[("m", "sub-2"), "sd_mm2"] == pytest.approx(math.sqrt(8.0))
    assert ("m", "sub-3") not in persons.index
    table = dataset_consistency(person_consistency([result])).set_index("submission")
    assert list(table.index) == [REFERENCE, "m"]  # the floor first
    assert table.loc["m", "sd_mm2"] == pytest.approx((10.0 + math.sqrt(8.0)) / 2)
    assert table.loc["m", "persons"] == 2 and table.loc["m", "images"] == 5
    # 2 people (< MIN_PEOPLE): the mean is given, the interval withheld ("too few people")
    assert math.isnan(table.loc["m", "sd_low"]) and math.isnan(table.loc["m", "sd_high"])
