import os

import numpy as np
import pytest

from benchmark.data.bids_index import classify_file, glob_to_regex, index_dataset, parse_entities
from benchmark.data.registry import load_dataset

from conftest import orientation_affine, save_nifti


def test_parse_entities():
    assert parse_entities("sub-amu02_flip-1_mt-on_MTS.nii.gz") == ({"sub": "amu02", "flip": "1", "mt": "on"}, "MTS")
    assert parse_entities("sub-Z01_task-rest_rec-MoCoMean_bold.nii.gz")[0] == {"sub": "Z01", "task": "rest",
                                                                               "rec": "MoCoMean"}


def test_glob_semantics():
    regex = glob_to_regex("sub-*/**/anat/*_T2w.nii.gz")
    assert regex.match("sub-01/anat/sub-01_T2w.nii.gz")
    assert regex.match("sub-01/ses-02/anat/sub-01_ses-02_T2w.nii.gz")
    assert not regex.match("sub-01/anat/sub-01_T2w.nii.gz.json")
    assert not glob_to_regex("sub-*/anat/*.nii.gz").match("sub-01/x/anat/a.nii.gz")


@pytest.mark.real_data
def test_small_real_datasets_pairs(shared_bids):
    counts = {}
    for folder, dataset_id in (("gmchallenge", "gmchallenge"), ("sct-testing", "sct-testing"),
                               ("spinegeneric-unf01", "spinegeneric-unf01")):
        index = index_dataset(shared_bids / folder, load_dataset(dataset_id))
        counts[dataset_id] = (len(index.subjects()), len(index.pairs), len(index.images_without_label),
                              len(index.labels_without_image), len(index.not_downloaded()))
    assert counts == {"gmchallenge": (8, 8, 0, 0, 0), "sct-testing": (1, 5, 0, 0, 0),
                      "spinegeneric-unf01": (1, 3, 0, 0, 0)}
    unf = index_dataset(shared_bids / "spinegeneric-unf01", load_dataset("spinegeneric-unf01"))
    assert {case.contrast for case in unf.pairs} == {"T1w", "T2w", "T2starw"}
    assert [case.person for case in index_dataset(shared_bids / "gmchallenge", load_dataset("gmchallenge")).cases
            ].count("sub-9709") == 2


@pytest.mark.real_data
def test_spine_generic_layout_annex_pointers(shared_bids):
    index = index_dataset(shared_bids / "spine-generic-layout", load_dataset("spine-generic"))
    assert len(index.subjects()) == 267
    assert len(index.pairs) == 1573
    assert len(index.images_without_label) == 263
    not_downloaded = index.not_downloaded()
    assert len(not_downloaded) == 1836 + 1573
    assert {info.state for info in not_downloaded} == {"annex-pointer"}
    first = index.cases[0]
    assert first.image.path == "sub-amu01/anat/sub-amu01_T1w.nii.gz"
    assert first.image.annex_sha256 == "66c80142b561cbc866085afe62d39f37e1af8496fc2afba105e686d7083da4f4"
    assert "git annex get" in index.fetch_command()


@pytest.mark.real_data
def test_episeg_layout_broken_symlink_targets(shared_bids):
    index = index_dataset(shared_bids / "episeg-layout", load_dataset("episeg"))
    assert (len(index.cases), len(index.pairs), len(index.images_without_label)) == (397, 395, 2)
    assert {info.state for info in index.not_downloaded()} == {"broken-symlink"}
    first = index.pairs[0]
    assert first.label.path.startswith("derivatives/label/")
    assert first.label.path.endswith("_task-rest_desc-spinalcordmask.nii.gz")
    automated = [case for case in index.pairs if case.participant.get("segmentation_type") == "Automated"]
    assert len(automated) == 68  # 70 in participants.tsv, 2 of them have no mask


def test_real_broken_symlink_and_pointer_are_not_downloaded(tmp_path):
    root = tmp_path / "ds"
    (root / "sub-01" / "anat").mkdir(parents=True)
    key = "SHA256E-s10--" + "ab" * 32 + ".nii.gz"
    os.symlink(f"../../.git/annex/objects/xx/yy/{key}/{key}", root / "sub-01" / "anat" / "sub-01_T2w.nii.gz")
    pointer = root / "derivatives/labels/sub-01/anat/sub-01_T2w_seg-manual.nii.gz"
    pointer.parent.mkdir(parents=True)
    pointer.write_text(f"/annex/objects/{key}\n")
    assert classify_file(root / "sub-01/anat/sub-01_T2w.nii.gz") == ("broken-symlink", "ab" * 32, None)
    assert classify_file(pointer)[:2] == ("annex-pointer", "ab" * 32)
    index = index_dataset(root, load_dataset("synth-ms"))
    assert len(index.pairs) == 1 and not index.pairs[0].usable


def test_images_without_label_and_labels_without_image(tmp_path):
    root = tmp_path / "ds"
    affine = orientation_affine("RAS")
    save_nifti(root / "sub-01/anat/sub-01_T2w.nii.gz", np.zeros((4, 4, 4), np.float32), affine)
    save_nifti(root / "sub-02/anat/sub-02_T2w.nii.gz", np.zeros((4, 4, 4), np.float32), affine)
    save_nifti(root / "derivatives/labels/sub-01/anat/sub-01_T2w_seg-manual.nii.gz", np.zeros((4, 4, 4), np.uint8), affine)
    save_nifti(root / "derivatives/labels/sub-03/anat/sub-03_T2w_seg-manual.nii.gz", np.zeros((4, 4, 4), np.uint8), affine)
    index = index_dataset(root, load_dataset("synth-ms"))
    assert [case.subject for case in index.pairs] == ["sub-01"]
    assert [case.subject for case in index.images_without_label] == ["sub-02"]
    assert index.labels_without_image == ["derivatives/labels/sub-03/anat/sub-03_T2w_seg-manual.nii.gz"]


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="dataset folder for 'synth-ms' does not exist"):
        index_dataset(tmp_path / "nope", load_dataset("synth-ms"))


def test_participants_without_id_column_names_the_file(tmp_path):
    (tmp_path / "participants.tsv").write_text("subject\tage\nsub-01\t3\n")
    with pytest.raises(ValueError, match=r"participants.tsv: no 'participant_id' column"):
        index_dataset(tmp_path, load_dataset("synth-ms"))
