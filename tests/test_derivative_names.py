"""One rule for "which image does this mask belong to", shared by `cordbench predict` (the writer) and the
predictions index (the reader): whatever predict writes is found again, for any BIDS entities.

The user's failure this reproduces: images with a ``desc-`` entity (``*_desc-mocomean_bold``) got masks from
`predict` that the predictions submission then reported as "missing-prediction: no mask for X (expected e.g. Y)",
where Y was the very file predict had written (the mask's key dropped ``desc``, the image's kept it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.data.derivatives import belongs_to, image_key, mask_filename, mask_keys
from benchmark.evaluation.predict import bids_targets
from benchmark.models.predictions import PredictionsIndex

#: image names as real datasets have them (spine-generic, EPISeg, gmchallenge, sct-testing, fMRIPrep-like outputs)
IMAGES = [
    "sub-01/anat/sub-01_T2w.nii.gz",
    "sub-01/anat/sub-01_desc-preproc_T2w.nii.gz",
    "sub-01/anat/sub-01_acq-MTon_MTS.nii.gz",
    "sub-01/anat/sub-01_flip-2_mt-off_MTS.nii.gz",
    "sub-01/ses-2/anat/sub-01_ses-2_acq-ax_T2w.nii.gz",
    "sub-01/ses-2/anat/sub-01_ses-2_acq-ax_run-2_rec-norm_T2starw.nii.gz",
    "sub-01/ses-2/anat/sub-01_ses-2_acq-axial_run-1_desc-denoised_T2w.nii.gz",
    "sub-01/func/sub-01_task-rest_desc-mocomean_bold.nii.gz",
    "sub-01/func/sub-01_task-rest_rec-MoCoMean_bold.nii.gz",
    "sub-01/func/sub-01_task-rest_bold.nii.gz",
    "sub-01/dwi/sub-01_rec-average_dwi.nii.gz",
    "sub-02/anat/sub-02_space-other_desc-crop_UNIT1.nii",
]


def _name(path: str) -> str:
    return path.rpartition("/")[2]


@pytest.mark.parametrize("image", IMAGES)
def test_the_mask_predict_names_belongs_to_its_image_and_to_no_other(image):
    mask = mask_filename(_name(image))
    assert belongs_to(mask, _name(image)), (mask, mask_keys(mask), image_key(_name(image)))
    others = [other for other in IMAGES if other != image and belongs_to(mask, _name(other))]
    assert others == []


@pytest.mark.parametrize(("mask", "image"), [
    ("sub-01_T2w_seg.nii.gz", "sub-01_T2w.nii.gz"),  # SCT's sct_deepseg_sc
    ("sub-01_task-rest_bold_desc-spinalcordmask.nii.gz", "sub-01_task-rest_bold.nii.gz"),
    ("sub-01_task-rest_desc-mocomean_bold_desc-spinalcordmask.nii.gz", "sub-01_task-rest_desc-mocomean_bold.nii.gz"),
    ("sub-01_ses-2_label-SC_seg.nii.gz", "sub-01_ses-2_T2w.nii.gz"),  # no image suffix: any image of the entities
    ("sub-01_desc-preproc_label-SC_seg.nii.gz", "sub-01_desc-preproc_T2w.nii.gz"),  # desc: the image's ...
    ("sub-01_desc-preproc_label-SC_seg.nii.gz", "sub-01_T2w.nii.gz"),  # ... or the mask's own
    ("sub-01_T2w_label-SC_seg.nii", "sub-01_T2w.nii.gz"),
])
def test_masks_named_by_other_tools(mask, image):
    assert belongs_to(mask, image)


@pytest.mark.parametrize(("mask", "image"), [
    ("sub-01_T2w_label-SC_seg.nii.gz", "sub-01_desc-preproc_T2w.nii.gz"),
    ("sub-01_desc-preproc_T2w_label-SC_seg.nii.gz", "sub-01_T2w.nii.gz"),
    ("sub-01_acq-ax_T2w_label-SC_seg.nii.gz", "sub-01_acq-sag_T2w.nii.gz"),
    ("sub-01_task-rest_desc-mocomean_bold_label-SC_seg.nii.gz", "sub-01_task-rest_rec-MoCoMean_bold.nii.gz"),
    ("sub-01_T2w.nii.gz", "sub-01_T2w.nii.gz"),  # an image, not a mask
    ("label-SC_seg.nii.gz", "sub-01_T2w.nii.gz"),  # nothing before the tail
])
def test_names_that_do_not_belong(mask, image):
    assert not belongs_to(mask, image)


def _touch_image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x1f\x8b" + b"0" * 2000)  # present (not a git-annex pointer); names only are read


def test_what_predict_writes_the_predictions_index_finds_for_every_image(tmp_path):
    """predict's own target paths for a BIDS tree holding every image above, then the index over those masks."""
    bids = tmp_path / "bids"
    for image in IMAGES:
        _touch_image(bids / image)
    derivatives = tmp_path / "derivatives" / "cordbench-model"
    targets = bids_targets(bids)
    assert sorted(str(target.image.relative_to(bids)) for target in targets) == sorted(IMAGES)
    for target in targets:
        _touch_image(derivatives / target.mask)
    index = PredictionsIndex(derivatives)
    for target in targets:
        match = index.find(target.image.name)
        assert match.failure is None, match.failure
        assert match.path == derivatives / target.mask


def test_the_missing_prediction_message_names_the_file_predict_would_write(tmp_path):
    _touch_image(tmp_path / "sub-p02" / "func" / "sub-p02_task-rest_desc-mocomean_bold_label-SC_seg.nii.gz")
    index = PredictionsIndex(tmp_path)
    assert index.find("sub-p02_task-rest_desc-mocomean_bold.nii.gz").failure is None
    assert index.find("sub-p03_task-rest_desc-mocomean_bold.nii.gz").failure == (
        f"missing-prediction: no mask for sub-p03_task-rest_desc-mocomean_bold.nii.gz in {tmp_path} "
        "(expected e.g. sub-p03_task-rest_desc-mocomean_bold_label-SC_seg.nii.gz)")
