from pathlib import Path

import pytest

from benchmark.data.registry import (RegistryError, dataset_ids, list_datasets, list_suites, load_dataset,
                                parse_dataset_file, parse_suite_file)

SEED_DATASETS = {"spine-generic", "episeg", "basel-mp2rage", "nih-ms-mp2rage", "marseille-3t-mp2rage",
                 "inspired", "sci-colorado", "canproco", "gmchallenge", "sct-testing", "spinegeneric-unf01"}
SYNTHETIC = {"synth-multicontrast", "synth-compression", "synth-injury", "synth-ms", "synth-mp2rage", "synth-epi"}


def test_every_dataset_of_the_seed_and_the_synthetic_suite_is_registered():
    assert SEED_DATASETS | SYNTHETIC <= set(dataset_ids())
    assert len(list_datasets()) == len(dataset_ids())


def test_pinned_revisions_and_access():
    assert load_dataset("spine-generic").source.revision == "r20250310"
    episeg = load_dataset("episeg")
    assert (episeg.source.openneuro_id, episeg.source.openneuro_version) == ("ds005143", "1.3.1")
    assert episeg.participants.gt_provenance == "segmentation_type"
    assert load_dataset("canproco").access.level == "restricted"
    assert "Marseille" in load_dataset("marseille-3t-mp2rage").access.how_to_obtain


def test_suites_roles():
    suites = {suite.id: suite for suite in list_suites()}
    assert suites["synthetic"].ids("ood") == ["synth-mp2rage", "synth-epi"]
    assert len(suites["synthetic"].ids("in-domain")) == 4
    assert suites["spinalcord-v1"].ids("in-domain") == ["spine-generic", "inspired", "sci-colorado", "canproco"]
    assert set(suites["spinalcord-v1"].ids("ood")) == {"basel-mp2rage", "nih-ms-mp2rage", "marseille-3t-mp2rage",
                                                       "episeg"}


def test_person_grouping_of_gmchallenge():
    dataset = load_dataset("gmchallenge")
    assert dataset.person_of("sub-9709Ses1") == dataset.person_of("sub-9709Ses2") == "sub-9709"
    assert dataset.person_of("sub-9418") == "sub-9418"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def test_unknown_field_is_rejected_with_file_and_field(tmp_path):
    text = Path("benchmark/registry/datasets/gmchallenge.yaml").read_text() + "colour: blue\n"
    path = _write(tmp_path, "gmchallenge", text)
    with pytest.raises(RegistryError) as error:
        parse_dataset_file(path)
    assert str(path) in str(error.value)
    assert "colour: Extra inputs are not permitted" in str(error.value)


def test_bad_nested_field_names_its_path(tmp_path):
    text = Path("benchmark/registry/datasets/spine-generic.yaml").read_text().replace("  revision: r20250310\n", "")
    path = _write(tmp_path, "spine-generic", text)
    with pytest.raises(RegistryError) as error:
        parse_dataset_file(path)
    assert "source: Value error, a git-annex source needs both url and revision" in str(error.value)


def test_suite_with_unknown_dataset_is_rejected(tmp_path):
    path = _write(tmp_path, "mine", "id: mine\ntitle: t\ndescription: d\ndatasets:\n  - {id: nope, role: ood}\n")
    with pytest.raises(RegistryError, match=r"datasets\.0\.id: unknown dataset 'nope'"):
        parse_suite_file(path)


def test_in_domain_without_rule_is_rejected(tmp_path):
    path = _write(tmp_path, "mine", "id: mine\ntitle: t\ndescription: d\ndatasets:\n  - {id: gmchallenge, role: in-domain}\n")
    with pytest.raises(RegistryError, match="datasets.0: Value error, an in-domain dataset needs test_fraction"):
        parse_suite_file(path)


def test_unknown_scored_region_is_rejected_with_its_path(tmp_path):
    path = _write(tmp_path, "mine", "id: mine\ntitle: t\ndescription: d\ndatasets:\n"
                                    "  - {id: sct-testing, role: ood, scored_region: slab}\n")
    with pytest.raises(RegistryError, match=r"datasets\.0\.scored_region: Input should be 'whole-image' or 'label-extent'"):
        parse_suite_file(path)
