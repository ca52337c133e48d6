"""Submissions of type `predictions`: masks computed elsewhere, scored through the same checks and metrics."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from benchmark import cli
from benchmark.evaluation.predict import predict
from benchmark.data.derivatives import image_key, mask_key
from benchmark.models.predictions import PredictionsIndex
from benchmark.evaluation.scoring import score_submission
from benchmark.data.submissions import PREDICTIONS_NOTE, SubmissionError, check_submission, load_submission, parse_manifest

TESTS = Path(__file__).resolve().parent


def write_manifest(root: Path, name: str, model: dict, **extra) -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"name": name, "description": "test", "authors": ["t"], "licence": "MIT", "model": model, **extra}
    (folder / "submission.yaml").write_text(yaml.safe_dump(manifest))
    return folder


# ------------------------------------------------------------------------------------------ matching by name


def test_masks_match_images_by_bids_entities_and_suffix(tmp_path):
    assert mask_key("sub-01_ses-2_acq-ax_T2w_label-SC_seg.nii.gz") == image_key("sub-01_ses-2_acq-ax_T2w.nii.gz")
    assert mask_key("sub-01_acq-ax_T2w_label-SC_seg.nii.gz") != image_key("sub-01_acq-sag_T2w.nii.gz")
    assert mask_key("sub-01_T2w.nii.gz") is None  # an image, not a mask
    for name in ("sub-01/anat/sub-01_T2w_label-SC_seg.nii.gz", "sub-01/anat/sub-01_T1w_label-SC_seg.nii.gz",
                 "sub-01/anat/sub-01_T2w_label-GM_seg.nii.gz", "sub-02/anat/sub-02_label-SC_seg.nii.gz",
                 "sub-03/sub-03_T2w_label-SC_seg.nii.gz", "other/sub-03_T2w_label-SC_seg.nii.gz",
                 "sub-04/func/sub-04_task-rest_bold_desc-spinalcordmask.nii.gz"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"\x1f\x8b" + b"0" * 2000)  # present (not an annex pointer); never read
    index = PredictionsIndex(tmp_path)
    assert index.find("sub-01_T2w.nii.gz").path == tmp_path / "sub-01/anat/sub-01_T2w_label-SC_seg.nii.gz"  # not GM
    assert index.find("sub-01_T1w.nii.gz").path == tmp_path / "sub-01/anat/sub-01_T1w_label-SC_seg.nii.gz"
    assert index.find("sub-02_T2w.nii.gz").path == tmp_path / "sub-02/anat/sub-02_label-SC_seg.nii.gz"  # no suffix
    assert index.find("sub-03_T2w.nii.gz").failure.startswith("ambiguous-prediction: 2 masks")
    missing = index.find("sub-05_T2w.nii.gz")
    assert missing.path is None and missing.failure == (
        f"missing-prediction: no mask for sub-05_T2w.nii.gz in {tmp_path} (expected e.g. sub-05_T2w_label-SC_seg.nii.gz)")
    assert PredictionsIndex(tmp_path, label=None).find("sub-04_task-rest_bold.nii.gz").path is not None


def test_manifest_needs_a_folder_and_check_names_empty_ones(tmp_path):
    write_manifest(tmp_path, "nofolder", {"type": "predictions"})
    with pytest.raises(SubmissionError, match="model.predictions: .*needs folder"):
        parse_manifest(tmp_path / "nofolder" / "submission.yaml")
    write_manifest(tmp_path, "empty", {"type": "predictions", "folder": "derivatives", "folders": {"sct-testing": "/nope"}})
    (tmp_path / "empty" / "derivatives").mkdir()
    problems = check_submission(load_submission("empty", tmp_path))
    assert problems == [f"model.folder: {tmp_path / 'empty' / 'derivatives'} holds no mask (*_label-SC_seg.nii.gz)",
                        "model.folders.sct-testing: /nope is not a folder"]


# ----------------------------------------------------------------- scoring (real-mini: gmchallenge, sct-testing)


@pytest.fixture(scope="module")
def predicted(tmp_path_factory) -> tuple[Path, Path]:
    """(submissions root with `blob` and `blob-masks`, derivatives folder) after `predict` on both test datasets."""
    root = tmp_path_factory.mktemp("predictions")
    bids = TESTS.parent.parent / "shared" / "data" / "bids"
    if not (bids / "gmchallenge" / "dataset_description.json").is_file():
        pytest.skip(f"real data not available: expected ../shared/data/bids at {bids}")
    import sys

    sys.path.insert(0, str(TESTS))  # model_fixtures
    subs = root / "subs"
    blob = write_manifest(subs, "blob", {"type": "python", "entrypoint": "model_fixtures:centre_blob"},
                          training={"datasets": ["gmchallenge"]})
    shutil.copyfile(TESTS / "model_fixtures.py", blob / "model_fixtures.py")  # importable in the sandbox
    for dataset in ("gmchallenge", "sct-testing"):
        predict("blob", bids / dataset, root / "masks", submissions_root=subs, progress=False)
    derivatives = root / "masks" / "derivatives" / "cordbench-blob"
    write_manifest(subs, "blob-masks", {"type": "predictions", "folder": str(derivatives)},
                   training={"datasets": ["gmchallenge"]})
    return subs, derivatives


def _score(name: str, subs: Path):
    return score_submission(name, "real-mini", data_root=TESTS.parent.parent / "shared" / "data" / "bids",
                            submissions_root=subs, progress=False)[0]


@pytest.mark.real_data
@pytest.mark.sandbox
def test_supplied_masks_score_exactly_like_the_model_that_made_them(predicted):
    subs, _derivatives = predicted
    direct, supplied = _score("blob", subs), _score("blob-masks", subs)
    assert supplied.model_type == "predictions" and direct.model_type == "python"
    assert [case.case_id for case in supplied.cases] == [case.case_id for case in direct.cases]
    assert len(supplied.cases) == 7 and all(case.failure is None for case in supplied.cases)
    for ours, theirs in zip(supplied.cases, direct.cases):
        for metric in ("dice", "nsd", "hd95", "rve", "csa_error"):
            assert getattr(ours, metric) == getattr(theirs, metric)
    assert {case.dataset: case.dataset_in_training for case in supplied.cases} == {"gmchallenge": True,
                                                                                 "sct-testing": False}
    assert sorted({round(case.dice, 4) for case in supplied.cases}) == [0.0, 0.3759, 0.3972, 0.4338, 0.4651,
                                                                       0.4743, 0.5314]

    from leaderboard.data import NOTES_COLUMN, cases_from_results
    from leaderboard.tables import build_main_table

    table = build_main_table(cases_from_results([direct, supplied]), n_resamples=100).set_index("submission")
    assert table.loc["blob-masks", NOTES_COLUMN].startswith(PREDICTIONS_NOTE)
    assert PREDICTIONS_NOTE not in table.loc["blob", NOTES_COLUMN]


@pytest.mark.real_data
@pytest.mark.sandbox
def test_missing_off_grid_and_probabilistic_masks(predicted, tmp_path):
    subs, derivatives = predicted
    broken = Path(shutil.copytree(derivatives, tmp_path / "broken"))
    for other in broken.glob("sub-9*"):  # gmchallenge's subjects: their masks must come from model.folder
        shutil.rmtree(other)
    anat = broken / "sub-errsm30" / "anat"
    (anat / "sub-errsm30_T2w_label-SC_seg.nii.gz").unlink()
    cropped = nib.load(anat / "sub-errsm30_T1w_label-SC_seg.nii.gz")
    nib.save(nib.Nifti1Image(np.asarray(cropped.dataobj)[:-1], cropped.affine), anat / "sub-errsm30_T1w_label-SC_seg.nii.gz")
    shifted = nib.load(anat / "sub-errsm30_acq-MTon_MTS_label-SC_seg.nii.gz")
    moved = shifted.affine.copy()
    moved[0, 3] += 1.0
    nib.save(nib.Nifti1Image(np.asarray(shifted.dataobj), moved), anat / "sub-errsm30_acq-MTon_MTS_label-SC_seg.nii.gz")
    soft = nib.load(anat / "sub-errsm30_T2starw_label-SC_seg.nii.gz")
    probabilities = np.where(np.asarray(soft.dataobj) > 0, 0.6, 0.4).astype(np.float32)
    nib.save(nib.Nifti1Image(probabilities, soft.affine), anat / "sub-errsm30_T2starw_label-SC_seg.nii.gz")
    # gmchallenge's masks from the intact folder, sct-testing's from the broken copy
    write_manifest(subs, "broken", {"type": "predictions", "folder": str(derivatives), "folders": {"sct-testing": str(broken)}})

    results = _score("broken", subs)
    reference = {case.case_id: case for case in _score("blob-masks", subs).cases}
    by_name = {case.case_id.rsplit("/", 1)[1]: case for case in results.cases}
    assert len(results.cases) == 7  # nothing dropped
    assert by_name["sub-errsm30_T2w.nii.gz"].failure == (
        f"missing-prediction: no mask for sub-errsm30_T2w.nii.gz in {broken} "
        "(expected e.g. sub-errsm30_T2w_label-SC_seg.nii.gz)")
    assert by_name["sub-errsm30_T1w.nii.gz"].failure.startswith("shape-mismatch: prediction")
    assert by_name["sub-errsm30_acq-MTon_MTS.nii.gz"].failure.startswith("affine-mismatch")
    for name in ("sub-errsm30_T2w.nii.gz", "sub-errsm30_T1w.nii.gz", "sub-errsm30_acq-MTon_MTS.nii.gz"):
        assert by_name[name].dice == 0.0 and by_name[name].rve == 1.0  # scored as the worst case
    for name in ("sub-errsm30_T2starw.nii.gz", "sub-9669_T2starw.nii.gz"):  # binarized at 0.5; gmchallenge intact
        case = by_name[name]
        assert case.failure is None and case.dice == reference[case.case_id].dice > 0


def test_gate_refuses_to_reproduce_supplied_predictions(tmp_path, monkeypatch):
    write_manifest(tmp_path, "masks", {"type": "predictions", "folder": "derivatives"})
    monkeypatch.setattr(cli.shell, "err_console", Console(width=300, no_color=True, stderr=True))
    result = CliRunner().invoke(cli.app, ["gate", "--reproduce", str(tmp_path / "masks"), "--suite", "real-mini"])
    assert result.exit_code == 2
    assert f"{PREDICTIONS_NOTE}: a predictions submission holds masks computed elsewhere" in result.output
