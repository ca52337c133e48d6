import json
import shutil
from pathlib import Path

import pytest

from benchmark.data.registry import load_dataset, load_suite
from benchmark.data.splits import (SplitError, assign_people, load_split, make_split, n_test_people, split_path,
                              verify_split, write_split)

from conftest import SHARED_DATA


def _remake(suite_id: str, shared_bids: Path, **kwargs):
    return make_split(load_suite(suite_id), data_root=kwargs.pop("data_root", shared_bids),
                      published_root=SHARED_DATA / "splits", **kwargs)


@pytest.mark.real_data
def test_real_mini_split_reproduces_bit_for_bit(shared_bids, tmp_path):
    remade = write_split(_remake("real-mini", shared_bids), tmp_path / "real-mini.json")
    assert remade.read_bytes() == split_path("real-mini").read_bytes()


@pytest.mark.real_data
def test_spinalcord_v1_split_reproduces_from_the_real_layouts(shared_bids, tmp_path):
    overrides = {"spine-generic": shared_bids / "spine-generic-layout", "episeg": shared_bids / "episeg-layout"}
    remade = write_split(_remake("spinalcord-v1", shared_bids, data_root=None, overrides=overrides),
                         tmp_path / "v1.json")
    assert remade.read_bytes() == split_path("spinalcord-v1").read_bytes()
    split = load_split("spinalcord-v1")
    assert (len(split.datasets["spine-generic"].train), len(split.datasets["spine-generic"].test)) == (214, 53)
    assert len(split.datasets["basel-mp2rage"].test) == 37
    assert len(split.datasets["episeg"].test) == 395
    assert split.datasets["inspired"].status == "rule-only"
    # checksums of not-downloaded files come from their annex keys
    assert split.datasets["spine-generic"].files["sub-amu01/anat/sub-amu01_T1w.nii.gz"] == \
        "66c80142b561cbc866085afe62d39f37e1af8496fc2afba105e686d7083da4f4"


@pytest.mark.real_data
def test_stratified_by_site(shared_bids):
    split = load_split("spinalcord-v1")
    test = set(split.datasets["spine-generic"].test)
    sites = {}
    for line in (shared_bids / "spine-generic-layout/participants.tsv").read_text().splitlines()[1:]:
        fields = line.split("\t")
        sites.setdefault(fields[6], []).append(fields[0])
    # every site with at least 5 people gives at least one test person
    for site, people in sites.items():
        if len(people) >= 5:
            assert test & set(people), site


@pytest.mark.real_data
def test_gmchallenge_repeated_person_stays_in_one_split(shared_bids):
    entry = load_split("real-mini").datasets["gmchallenge"]
    for person in ("sub-9709", "sub-10062"):
        sessions = {f"{person}Ses1", f"{person}Ses2"}
        assert sessions <= set(entry.train) or sessions <= set(entry.test)
    assert entry.test == ["sub-9604", "sub-9669"]


def test_grouping_never_straddles_for_any_seed():
    dataset = load_dataset("gmchallenge")
    subjects = ["sub-10062Ses1", "sub-10062Ses2", "sub-9418", "sub-9584", "sub-9604", "sub-9669",
                "sub-9709Ses1", "sub-9709Ses2"]
    people = {dataset.person_of(subject): () for subject in subjects}
    assert len(people) == 6
    for seed in range(30):
        train, test = assign_people(people, seed=seed, dataset_id="gmchallenge", test_fraction=0.34)
        assert len(test) == 2 and not train & test and train | test == set(people)


def test_test_size_rule():
    assert [n_test_people(n, 0.3) for n in (1, 2, 3, 10, 11)] == [0, 1, 1, 3, 3]


def test_stratified_allocation_is_proportional():
    people = {f"p{i}": ("A",) for i in range(10)} | {f"q{i}": ("B",) for i in range(10)}
    _, test = assign_people(people, seed=0, dataset_id="x", test_fraction=0.3)
    assert sum(person.startswith("p") for person in test) == 3
    assert sum(person.startswith("q") for person in test) == 3


def _copy_gmchallenge(shared_bids: Path, tmp_path: Path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(shared_bids / "gmchallenge", root / "gmchallenge")
    for path in (root / "gmchallenge").rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


@pytest.mark.real_data
def test_verify_reports_missing_extra_and_changed(shared_bids, tmp_path):
    root = _copy_gmchallenge(shared_bids, tmp_path)
    split = load_split("real-mini")
    clean = verify_split(split, data_root=root, only=["gmchallenge"])
    assert clean.ok and clean.checked == ["gmchallenge"]

    shutil.rmtree(root / "gmchallenge/sub-9418")
    shutil.rmtree(root / "gmchallenge/derivatives/labels/sub-9418")
    shutil.copytree(root / "gmchallenge/sub-9584", root / "gmchallenge/sub-9999")
    (root / "gmchallenge/sub-9999/anat/sub-9584_T2starw.nii.gz").rename(root / "gmchallenge/sub-9999/anat/sub-9999_T2starw.nii.gz")
    shutil.copytree(root / "gmchallenge/derivatives/labels/sub-9584", root / "gmchallenge/derivatives/labels/sub-9999")
    (root / "gmchallenge/derivatives/labels/sub-9999/anat/sub-9584_T2starw_seg-manual.nii.gz").rename(
        root / "gmchallenge/derivatives/labels/sub-9999/anat/sub-9999_T2starw_seg-manual.nii.gz")
    with open(root / "gmchallenge/sub-9604/anat/sub-9604_T2starw.nii.gz", "ab") as handle:
        handle.write(b"\0")
    report = verify_split(split, data_root=root, only=["gmchallenge"])
    assert not report.ok
    assert report.missing_subjects["gmchallenge"] == ["sub-9418"]
    assert report.extra_subjects["gmchallenge"] == ["sub-9999"]
    assert report.changed_files["gmchallenge"] == ["sub-9604/anat/sub-9604_T2starw.nii.gz"]
    assert report.missing_files["gmchallenge"] == [
        "derivatives/labels/sub-9418/anat/sub-9418_T2starw_seg-manual.nii.gz",
        "sub-9418/anat/sub-9418_T2starw.nii.gz"]


@pytest.mark.real_data
def test_frozen_split_refuses_to_change(shared_bids, tmp_path):
    root = _copy_gmchallenge(shared_bids, tmp_path)
    shutil.copytree(shared_bids / "spinegeneric-unf01", root / "spinegeneric-unf01")
    shutil.copytree(shared_bids / "sct-testing", root / "sct-testing")
    existing = load_split("real-mini")
    assert make_split(load_suite("real-mini"), data_root=root, published_root=SHARED_DATA / "splits",
                      existing=existing).version == existing.version
    shutil.rmtree(root / "gmchallenge/sub-9418")
    with pytest.raises(SplitError, match="the split of 'gmchallenge' is frozen"):
        make_split(load_suite("real-mini"), data_root=root, published_root=SHARED_DATA / "splits", existing=existing)


def test_hand_edited_split_is_refused(tmp_path):
    data = json.loads(split_path("real-mini").read_text())
    data["datasets"]["gmchallenge"]["test"].append("sub-9418")
    path = tmp_path / "real-mini.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SplitError, match="does not match its content"):
        load_split("real-mini", path)


@pytest.mark.real_data
def test_scored_region_is_versioned_but_leaves_subjects_frozen(shared_bids):
    suite = load_suite("real-mini")
    existing = load_split("real-mini")
    whole_image = suite.model_copy(update={"datasets": [
        entry.model_copy(update={"scored_region": "whole-image"}) for entry in suite.datasets]})
    remade = make_split(whole_image, data_root=shared_bids, published_root=SHARED_DATA / "splits", existing=existing)
    assert remade.datasets["gmchallenge"].scored_region == "whole-image"
    assert remade.datasets["gmchallenge"].test == existing.datasets["gmchallenge"].test == ["sub-9604", "sub-9669"]
    # a different scored region gives different scores, so a different benchmark version ...
    assert remade.version != existing.version
    # ... and the version before scored regions existed (whole-image everywhere) is the one it was then
    assert remade.version == "839cf635d08e"


def test_default_scored_region_does_not_change_existing_versions():
    split = load_split("synthetic")
    assert {entry.scored_region for entry in split.datasets.values()} == {"whole-image"}
    assert split.version == "2f1d4484edef"  # the version the committed synthetic results were scored under
