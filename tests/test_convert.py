import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from benchmark.training.convert import CaseSource, ConvertError, _run_cases, convert_case, convert_suite, dataset_names
from benchmark.io import sha256_file
from benchmark.data.splits import load_split

from conftest import orientation_affine, save_nifti


def _tree_checksums(root: Path) -> dict[str, str]:
    return {str(path.relative_to(root)): sha256_file(path) for path in sorted(root.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    bids = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bids"
    if not (bids / "gmchallenge").is_dir():
        pytest.skip(f"real data not available: expected ../shared/data/bids at {bids}")
    before = {name: _tree_checksums(bids / name) for name in ("gmchallenge", "spinegeneric-unf01", "sct-testing")}
    out = tmp_path_factory.mktemp("nnUNet_raw")
    report = convert_suite("real-mini", data_root=bids, out=out, workers=2, progress=False)
    after = {name: _tree_checksums(bids / name) for name in before}
    return bids, out, report, before, after


@pytest.mark.real_data
def test_sources_are_byte_identical_after_conversion(converted):
    _bids, _out, _report, before, after = converted
    assert before == after
    assert sum(len(files) for files in before.values()) == 52


@pytest.mark.real_data
def test_counts_and_names(converted):
    _bids, out, report, _before, _after = converted
    summary = {dataset.name: (dataset.num_training, dataset.num_test) for dataset in report.datasets}
    assert summary == {"Dataset520_real-mini-aggregated": (9, 2), "Dataset521_real-mini-gmchallenge": (6, 2),
                       "Dataset522_real-mini-spinegeneric-unf01": (3, 0)}
    dataset_json = json.loads((out / "Dataset520_real-mini-aggregated/dataset.json").read_text())
    assert dataset_json["numTraining"] == 9
    assert dataset_json["labels"] == {"background": 0, "cord": 1}
    assert dataset_json["channel_names"] == {"0": "MRI"}
    assert dataset_json["file_ending"] == ".nii.gz"
    assert dataset_json["cordbench"]["benchmark_version"] == load_split("real-mini").version
    assert len(list((out / "Dataset520_real-mini-aggregated/imagesTr").glob("*_0000.nii.gz"))) == 9


@pytest.mark.real_data
def test_no_test_subject_in_any_training_set(converted):
    _bids, out, _report, _before, _after = converted
    split = load_split("real-mini")
    test_subjects = set(split.datasets["gmchallenge"].test) | set(split.datasets["sct-testing"].test)
    for folder in out.iterdir():
        for path in (folder / "imagesTr").glob("*.nii.gz"):
            assert not any(f"_{subject}_" in path.name for subject in test_subjects), path
    assert sorted(path.name for path in (out / "Dataset521_real-mini-gmchallenge/imagesTs").iterdir()) == [
        "gmchallenge_sub-9604_T2starw_0000.nii.gz", "gmchallenge_sub-9669_T2starw_0000.nii.gz"]


@pytest.mark.real_data
def test_orientation_binary_labels_and_provenance(converted):
    bids, out, _report, _before, _after = converted
    folder = out / "Dataset521_real-mini-gmchallenge"
    image = nib.load(folder / "imagesTs/gmchallenge_sub-9604_T2starw_0000.nii.gz")
    label = nib.load(folder / "labelsTs/gmchallenge_sub-9604_T2starw.nii.gz")
    assert nib.aff2axcodes(image.affine) == ("R", "A", "S")
    assert np.array_equal(np.unique(np.asarray(label.dataobj)), [0, 1])
    source_label = nib.load(bids / "gmchallenge/derivatives/labels/sub-9604/anat/sub-9604_T2starw_seg-manual.nii.gz")
    assert int(np.asarray(label.dataobj).sum()) == int((np.asarray(source_label.dataobj) >= 0.5).sum())
    provenance = json.loads((folder / "provenance.json").read_text())["cases"]["gmchallenge_sub-9604_T2starw"]
    assert provenance["source_orientation"] == "LPS"
    assert provenance["subject"] == "sub-9604" and provenance["split"] == "test"
    assert provenance["image_sha256"] == sha256_file(bids / "gmchallenge/sub-9604/anat/sub-9604_T2starw.nii.gz")


@pytest.mark.real_data
def test_rerun_skips_unchanged_cases(converted):
    bids, out, _report, _before, _after = converted
    again = convert_suite("real-mini", data_root=bids, out=out, workers=1, progress=False)
    assert {outcome.status for outcome in again.outcomes} == {"unchanged"}


@pytest.mark.slow
@pytest.mark.real_data
def test_nnunet_verify_dataset_integrity_passes(converted):
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

    _bids, out, _report, _before, _after = converted
    verify_dataset_integrity(str(out / "Dataset520_real-mini-aggregated"), num_processes=1)


def test_dataset_number_clash_is_refused(tmp_path):
    (tmp_path / "Dataset520_something-else").mkdir()
    with pytest.raises(ConvertError, match="number 520 is already used"):
        convert_suite("real-mini", data_root=tmp_path, out=tmp_path)


def test_default_names():
    assert dataset_names("synthetic", ["synth-ms", "synth-injury"]) == {
        "aggregated": "Dataset500_synthetic-aggregated", "synth-ms": "Dataset501_synthetic-synth-ms",
        "synth-injury": "Dataset502_synthetic-synth-injury"}


# ---- every bad input is a reported skip with its reason, and sources stay untouched ----------------

def _pair(tmp_path: Path, image: np.ndarray, label: np.ndarray | None, *, label_affine=None, image_affine=None):
    affine = orientation_affine("LPS", (0.5, 0.5, 3.0)) if image_affine is None else image_affine
    image_path = save_nifti(tmp_path / "src/sub-01/anat/sub-01_T2w.nii.gz", image, affine)
    label_path = None
    if label is not None:
        label_path = save_nifti(tmp_path / "src/derivatives/labels/sub-01/anat/sub-01_T2w_seg-manual.nii.gz", label,
                                affine if label_affine is None else label_affine)
    return CaseSource("synth-ms_sub-01_T2w", "synth-ms", "sub-01", None, "T2w", "train", str(image_path),
                      str(label_path) if label_path else None, "present", "present" if label_path else None)


def _convert(tmp_path, source):
    targets = [(tmp_path / "out/imagesTr/x_0000.nii.gz", tmp_path / "out/labelsTr/x.nii.gz")]
    before = _tree_checksums(tmp_path / "src")
    outcome = convert_case(source, targets, None)
    assert _tree_checksums(tmp_path / "src") == before
    return outcome, targets[0]


def test_default_workers_without_sched_getaffinity(tmp_path, monkeypatch):
    """macOS has no os.sched_getaffinity: the default number of workers comes from os.cpu_count()."""
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)  # one core: cases are converted in this process
    image = np.random.default_rng(0).random((8, 6, 4)).astype(np.float32)
    source = _pair(tmp_path, image, (image > 0.5).astype(np.uint8))
    [outcome] = _run_cases([source], {"synth-ms": [tmp_path / "out"]}, {}, None, False)
    assert outcome.status == "converted"
    assert (tmp_path / "out" / "labelsTr" / "synth-ms_sub-01_T2w.nii.gz").is_file()


def test_soft_label_is_binarized_into_a_new_file(tmp_path):
    image = np.random.default_rng(0).random((8, 6, 4)).astype(np.float32)
    label = np.zeros((8, 6, 4), np.float32)
    label[2:4, 2:4, :] = 0.7
    label[4, 2:4, :] = 0.3
    outcome, (image_out, label_out) = _convert(tmp_path, _pair(tmp_path, image, label))
    assert outcome.status == "converted"
    written = np.asarray(nib.load(label_out).dataobj)
    assert written.dtype == np.uint8 and int(written.sum()) == 16
    assert nib.aff2axcodes(nib.load(image_out).affine) == ("R", "A", "S")
    # LPS -> RAS flips the first two axes: the voxel at LPS (2, 2, 0) is at RAS (5, 3, 0)
    assert written[5, 3, 0] == 1 and written[2, 2, 0] == 0


@pytest.mark.parametrize("case, reason", [
    ("missing label", "missing label"),
    ("shape", "shape mismatch: image (8, 6, 4) vs mask (8, 6, 5)"),
    ("affine", "affine mismatch: image and mask differ by up to 0.5 mm"),
    ("4d", "4D image with 3 volumes"),
    ("nan", "image has 1 NaN/inf voxels"),
])
def test_bad_inputs_are_skipped_with_reason(tmp_path, case, reason):
    image = np.ones((8, 6, 4), np.float32)
    label = np.zeros((8, 6, 4), np.uint8)
    kwargs = {}
    if case == "missing label":
        label = None
    elif case == "shape":
        label = np.zeros((8, 6, 5), np.uint8)
    elif case == "affine":
        shifted = orientation_affine("LPS", (0.5, 0.5, 3.0))
        shifted[0, 3] += 0.5
        kwargs["label_affine"] = shifted
    elif case == "4d":
        image = np.ones((8, 6, 4, 3), np.float32)
    elif case == "nan":
        image[1, 1, 1] = np.nan
    outcome, (image_out, label_out) = _convert(tmp_path, _pair(tmp_path, image, label, **kwargs))
    assert outcome.status == "skipped"
    assert reason in outcome.reason
    assert not image_out.exists() and not label_out.exists()


def test_not_downloaded_is_skipped_with_the_fetch_hint(tmp_path):
    source = CaseSource("c", "synth-ms", "sub-01", None, "T2w", "train", str(tmp_path / "a.nii.gz"),
                        str(tmp_path / "b.nii.gz"), "annex-pointer", "present")
    outcome = convert_case(source, [(tmp_path / "i.nii.gz", tmp_path / "l.nii.gz")], None)
    assert outcome.status == "skipped" and "not downloaded (annex-pointer)" in outcome.reason
    assert "git annex get" in outcome.reason
