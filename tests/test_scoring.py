"""Scoring on the real-mini suite with small deterministic models: values, leakage, OOD derivation, resume."""

import json
import shutil
from pathlib import Path

import pytest
import yaml

from benchmark.evaluation.results import load_results
from benchmark.analysis.summary import dataset_summaries
from benchmark.evaluation.scoring import score_submission
from benchmark.data.splits import load_split

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


@pytest.fixture(autouse=True)
def importable_fixtures(monkeypatch):
    monkeypatch.syspath_prepend(str(TESTS))


def write_submission(root: Path, name: str, function: str, **training) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    manifest = {"name": name, "description": "test model", "authors": ["t"], "licence": "MIT",
                "model": {"type": "python", "entrypoint": f"model_fixtures:{function}"},
                "training": {"datasets": [], **training}}
    (folder / "submission.yaml").write_text(yaml.safe_dump(manifest))
    shutil.copyfile(TESTS / "model_fixtures.py", folder / "model_fixtures.py")  # importable in the sandbox
    return folder


def score(root, name, shared_bids, sandbox=True):
    return score_submission(name, "real-mini", data_root=shared_bids, submissions_root=root, progress=False,
                            sandbox=sandbox)


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.sandbox
def test_blank_model_scores_worst_and_nothing_is_dropped(tmp_path, shared_bids):
    write_submission(tmp_path, "blank", "blank")
    results, path = score(tmp_path, "blank", shared_bids)
    assert path == tmp_path / "blank" / "results" / f"real-mini_{load_split('real-mini').version}.json"
    assert len(results.cases) == 7  # gmchallenge test: 2 subjects; sct-testing: 5 images
    assert {case.dice for case in results.cases} == {0.0}
    assert {case.rve for case in results.cases} == {1.0}
    assert all(case.failure is None for case in results.cases)
    assert load_results(path) == results
    rows = {row["dataset"]: row for row in dataset_summaries(results)}
    # gmchallenge: 2 people, one scan each; sct-testing: one person, five contrasts
    assert (rows["gmchallenge"]["people"], rows["gmchallenge"]["scans"]) == (2, 2)
    assert (rows["sct-testing"]["people"], rows["sct-testing"]["scans"]) == (1, 5)


@pytest.mark.real_data
@pytest.mark.sandbox
def test_centre_blob_values_are_reproducible(tmp_path, shared_bids):
    write_submission(tmp_path, "blob", "centre_blob")
    results, _ = score(tmp_path, "blob", shared_bids)
    dice = {case.case_id.split(":")[1].split("/")[-1]: round(case.dice, 4) for case in results.cases}
    again, _ = score(tmp_path, "blob", shared_bids)  # from the prediction cache
    assert [case.dice for case in again.cases] == [case.dice for case in results.cases]
    # a 6 mm disc at the image centre, scored in canonical RAS+ against the real masks
    assert dice == {"sub-9604_T2starw.nii.gz": 0.0, "sub-9669_T2starw.nii.gz": 0.3759,
                    "sub-errsm30_T1w.nii.gz": 0.5314, "sub-errsm30_T2starw.nii.gz": 0.4651,
                    "sub-errsm30_T2w.nii.gz": 0.4743, "sub-errsm30_acq-MToff_MTS.nii.gz": 0.4338,
                    "sub-errsm30_acq-MTon_MTS.nii.gz": 0.3972}
    assert round(results.cases[3].hd95, 3) == 4.225


@pytest.mark.real_data
@pytest.mark.sandbox
def test_failures_score_worst(tmp_path, shared_bids):
    write_submission(tmp_path, "crash", "crashes")
    results, _ = score(tmp_path, "crash", shared_bids)
    assert {case.failure for case in results.cases} == {"crash: RuntimeError: out of memory (simulated)"}
    assert {case.dice for case in results.cases} == {0.0}
    assert all(case.hd95 > 50 for case in results.cases)  # the field-of-view diagonal, never 0


@pytest.mark.real_data
@pytest.mark.sandbox
def test_ood_is_derived_from_declared_training_and_leaks_are_flagged(tmp_path, shared_bids):
    write_submission(tmp_path, "parent", "blank", datasets=["sct-testing"])
    write_submission(tmp_path, "child", "blank", datasets=["gmchallenge"],
                     subjects={"gmchallenge": ["sub-9418", "sub-9604"]}, adapted_from=["parent"])
    results, _ = score(tmp_path, "child", shared_bids)
    assert results.declared_training_datasets == ["gmchallenge", "sct-testing"]
    by_case = {case.case_id: case for case in results.cases}
    assert by_case["gmchallenge:sub-9604/anat/sub-9604_T2starw.nii.gz"].subject_in_training is True
    assert by_case["gmchallenge:sub-9669/anat/sub-9669_T2starw.nii.gz"].subject_in_training is False
    assert all(case.dataset_in_training for case in results.cases)  # sct-testing comes through adapted_from
    parent, _ = score(tmp_path, "parent", shared_bids)
    assert {case.dataset: case.dataset_in_training for case in parent.cases} == {"gmchallenge": False,
                                                                              "sct-testing": True}


@pytest.mark.real_data
def test_person_level_leak_through_a_second_session(tmp_path, shared_bids):
    # trained on sub-9709Ses1 only: its second session is the same person
    write_submission(tmp_path, "ses", "blank", datasets=["gmchallenge"], subjects={"gmchallenge": ["sub-9709Ses1"]})
    from benchmark.evaluation.scoring import declared_training_people
    from benchmark.data.submissions import load_submission

    people = declared_training_people(load_submission("ses", tmp_path))
    assert people == {"gmchallenge": {"sub-9709"}}


@pytest.mark.real_data
def test_interrupted_run_resumes_with_identical_results(tmp_path, shared_bids, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("CORDBENCH_TEST_CALL_LOG", str(log))
    write_submission(tmp_path / "a", "count", "counting_blank")
    monkeypatch.setenv("CORDBENCH_TEST_INTERRUPT_AFTER", "3")
    with pytest.raises(KeyboardInterrupt):  # in-process (sandbox=False): the model counts calls via this env
        score(tmp_path / "a", "count", shared_bids, sandbox=False)
    assert len(log.read_text().splitlines()) == 3
    monkeypatch.delenv("CORDBENCH_TEST_INTERRUPT_AFTER")
    resumed, _ = score(tmp_path / "a", "count", shared_bids, sandbox=False)
    assert len(log.read_text().splitlines()) == 7  # only the 4 remaining cases were predicted

    log.unlink()
    write_submission(tmp_path / "b", "count", "counting_blank")
    clean, _ = score(tmp_path / "b", "count", shared_bids, sandbox=False)
    strip = lambda results: [case.model_dump(exclude={"runtime_s", "peak_memory_mb"}) for case in results.cases]
    assert strip(resumed) == strip(clean)


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.sandbox
def test_threshold_baseline_command_submission_through_the_same_path(tmp_path, shared_bids):
    shutil.copytree(REPO / "submissions/threshold-baseline", tmp_path / "threshold-baseline",
                    ignore=shutil.ignore_patterns("results", "predictions", "cases_index*.json"))
    results, _ = score(tmp_path, "threshold-baseline", shared_bids)
    assert results.model_type == "command"
    dice = {case.case_id.rsplit("/", 1)[1]: round(case.dice, 3) for case in results.cases}
    assert dice["sub-errsm30_T2starw.nii.gz"] == pytest.approx(0.765, abs=0.002)
    assert dice["sub-errsm30_T1w.nii.gz"] == pytest.approx(0.763, abs=0.002)
    index = json.loads((tmp_path / "threshold-baseline/cases_index_real-mini.json").read_text())
    assert len(index) == 7 and all(Path(entry["prediction"]).exists() for entry in index.values())


@pytest.mark.slow
@pytest.mark.real_data
def test_gmchallenge_is_scored_within_the_slices_its_masks_span(tmp_path, shared_bids, monkeypatch):
    import nibabel as nib
    import numpy as np

    from benchmark.evaluation.metrics import metrics_for_files

    assert load_split("real-mini").datasets["gmchallenge"].scored_region == "label-extent"
    assert load_split("real-mini").datasets["sct-testing"].scored_region == "whole-image"
    monkeypatch.setenv("CORDBENCH_TEST_GT_ROOT", str(shared_bids / "gmchallenge"))
    write_submission(tmp_path, "oracle", "gmchallenge_oracle_full_length")
    # the oracle reads the ground truth, which only an unsandboxed model can (tests/test_adversarial.py)
    results, _ = score(tmp_path, "oracle", shared_bids, sandbox=False)
    by_subject = {case.subject: case for case in results.cases if case.dataset == "gmchallenge"}
    # sub-9604's mask spans slices 0-13 of 20: the oracle's cord in slices 14-19 is outside the scored region
    assert by_subject["sub-9604"].dice == 1.0 and by_subject["sub-9604"].hd95 == 0.0
    assert by_subject["sub-9669"].dice == 1.0  # labelled on all 15 slices: nothing changes
    assert all(case.dice == 0.0 for case in results.cases if case.dataset == "sct-testing")

    # the same prediction over the whole image, computed independently with numpy
    label = shared_bids / "gmchallenge/derivatives/labels/sub-9604/anat/sub-9604_T2starw_seg-manual.nii.gz"
    canonical = nib.as_closest_canonical(nib.load(label))
    gt = np.asarray(canonical.dataobj) > 0.5
    extended = gt.copy()
    extended[:, :, 14:] = gt[:, :, 13:14]
    whole_image_dice = 2 * gt.sum() / (gt.sum() + extended.sum())
    assert round(float(whole_image_dice), 4) == 0.8233
    prediction, reference = tmp_path / "pred.nii.gz", tmp_path / "gt.nii.gz"
    nib.save(nib.Nifti1Image(extended.astype(np.uint8), canonical.affine), prediction)
    nib.save(nib.Nifti1Image(gt.astype(np.uint8), canonical.affine), reference)
    assert metrics_for_files(prediction, reference)["dice"] == pytest.approx(whole_image_dice, abs=1e-12)
    assert metrics_for_files(prediction, reference, "label-extent")["dice"] == 1.0
