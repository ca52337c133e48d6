"""`cordbench predict`: masks for images without one, written as a BIDS derivatives dataset, resumable."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from benchmark import __version__, cli
from benchmark.evaluation.predict import PredictError, predict
from benchmark.io import sha256_file
from benchmark.data.submissions import load_submission, model_sha256
from conftest import BIDS, orientation_affine, save_nifti

TESTS = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def importable_fixtures(monkeypatch):
    monkeypatch.syspath_prepend(str(TESTS))


def python_submission(root: Path, name: str, function: str, **inference) -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"name": name, "description": "test model", "authors": ["t"], "licence": "MIT",
                "model": {"type": "python", "entrypoint": f"model_fixtures:{function}"}, "inference": inference}
    (folder / "submission.yaml").write_text(yaml.safe_dump(manifest))
    shutil.copyfile(TESTS / "model_fixtures.py", folder / "model_fixtures.py")  # importable in the sandbox
    return folder


def sct_testing_copy(tmp_path: Path) -> Path:
    source = BIDS / "sct-testing"
    if not (source / "dataset_description.json").is_file():
        pytest.skip(f"real data not available: expected the sct-testing BIDS dataset at {source}")
    return Path(shutil.copytree(source, tmp_path / "sct-testing", ignore=shutil.ignore_patterns("derivatives")))


@pytest.mark.sandbox
def test_single_nifti_keeps_its_grid_and_gets_a_bids_place_and_sidecar(tmp_path):
    subs = tmp_path / "subs"
    python_submission(subs, "ident", "identity")
    data = np.zeros((12, 10, 6), dtype=np.float32)
    data[4:8, 3:7, :] = 0.9
    data[0, 0, 0] = 0.4  # below the 0.5 threshold
    affine = orientation_affine("LPS", spacing=(0.5, 0.6, 2.0), origin=(10.0, -4.0, 7.0))
    image = save_nifti(tmp_path / "scans" / "sub-07_ses-2_T2w.nii.gz", data, affine)

    report = predict("ident", image, tmp_path / "out", submissions_root=subs, progress=False)

    derivatives = tmp_path / "out" / "derivatives" / "cordbench-ident"
    mask_path = derivatives / "sub-07" / "ses-2" / "anat" / "sub-07_ses-2_T2w_label-SC_seg.nii.gz"
    assert report.derivatives == derivatives and [o.mask for o in report.outcomes] == [mask_path]
    mask = nib.load(mask_path)
    assert np.allclose(mask.affine, affine) and mask.get_data_dtype() == np.uint8
    assert np.array_equal(np.asarray(mask.dataobj), (data >= 0.5).astype(np.uint8))
    sidecar = json.loads(mask_path.with_name("sub-07_ses-2_T2w_label-SC_seg.json").read_text())
    submission = load_submission("ident", subs)
    assert sidecar["Model"] == {"Name": "ident", "Type": "python", "SHA256": model_sha256(submission)}
    assert sidecar["CordbenchVersion"] == __version__
    assert sidecar["Inference"] == {"device": "auto", "test_time_augmentation": False, "runtime": "auto",
                                    "postprocessing": "none",
                                    "threshold": 0.5}
    assert sidecar["SourceSHA256"] == sha256_file(image) and sidecar["Sources"] == [str(image.resolve())]
    assert sidecar["Label"] == "SC"
    description = json.loads((derivatives / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative" and description["Name"] == "cordbench-ident"
    assert description["GeneratedBy"][0]["Name"] == "cordbench"
    assert description["GeneratedBy"][0]["Version"] == __version__

    lone = save_nifti(tmp_path / "scan.nii.gz", data, affine)  # no BIDS entities: top of the derivatives folder
    report = predict("ident", lone, tmp_path / "out", submissions_root=subs, progress=False)
    assert report.outcomes[0].mask == derivatives / "scan_label-SC_seg.nii.gz"


@pytest.mark.sandbox
def test_bids_folder_is_predicted_with_sidecars_and_resumes(tmp_path):
    dataset = sct_testing_copy(tmp_path)
    subs = tmp_path / "subs"
    python_submission(subs, "blob", "centre_blob")
    out = tmp_path / "out"

    first = predict("blob", dataset, out, submissions_root=subs, progress=False)

    anat = out / "derivatives" / "cordbench-blob" / "sub-errsm30" / "anat"
    stems = ["sub-errsm30_T1w", "sub-errsm30_T2starw", "sub-errsm30_T2w", "sub-errsm30_acq-MToff_MTS",
             "sub-errsm30_acq-MTon_MTS"]
    assert [o.mask for o in first.outcomes] == [anat / f"{stem}_label-SC_seg.nii.gz" for stem in stems]
    assert first.count("predicted") == 5 and not first.failed
    submission = load_submission("blob", subs)
    for stem in stems:
        image = dataset / "sub-errsm30" / "anat" / f"{stem}.nii.gz"
        sidecar = json.loads((anat / f"{stem}_label-SC_seg.json").read_text())
        assert sidecar["Sources"] == [f"bids:raw:sub-errsm30/anat/{stem}.nii.gz"]
        assert sidecar["SourceSHA256"] == sha256_file(image)
        assert sidecar["Model"]["SHA256"] == model_sha256(submission)
        mask = nib.load(anat / f"{stem}_label-SC_seg.nii.gz")
        assert mask.shape == nib.load(image).shape[:3] and np.allclose(mask.affine, nib.load(image).affine)
        assert 0 < np.asarray(mask.dataobj).sum() < np.prod(mask.shape)
    stamps = {path: path.stat().st_mtime_ns for path in anat.iterdir()}

    again = predict("blob", dataset, out, submissions_root=subs, progress=False)
    assert again.count("unchanged") == 5
    assert {path: path.stat().st_mtime_ns for path in anat.iterdir()} == stamps

    (anat / "sub-errsm30_T2w_label-SC_seg.json").unlink()  # as if interrupted between mask and sidecar
    resumed = predict("blob", dataset, out, submissions_root=subs, progress=False)
    assert [o.status for o in resumed.outcomes] == ["unchanged", "unchanged", "predicted", "unchanged", "unchanged"]

    python_submission(subs, "blob", "centre_blob", postprocessing="largest-component")  # other settings: redo all
    changed = predict("blob", dataset, out, submissions_root=subs, progress=False)
    assert changed.count("predicted") == 5
    assert json.loads((anat / "sub-errsm30_T1w_label-SC_seg.json").read_text())["Inference"]["postprocessing"] == \
        "largest-component"

    only = predict("blob", dataset, tmp_path / "only", include=["sub-*/anat/*_T2w.nii.gz"], submissions_root=subs,
                   progress=False)
    assert [o.image.name for o in only.outcomes] == ["sub-errsm30_T2w.nii.gz"]


@pytest.mark.sandbox
def test_failures_and_not_downloaded_images_are_reported_and_exit_1(tmp_path, monkeypatch):
    subs = tmp_path / "subs"
    python_submission(subs, "bad", "wrong_shape")
    dataset = tmp_path / "bids"
    affine = orientation_affine("RAS")
    save_nifti(dataset / "sub-01" / "anat" / "sub-01_T2w.nii.gz", np.zeros((6, 6, 4), np.float32), affine)
    pointer = dataset / "sub-02" / "anat" / "sub-02_T2w.nii.gz"
    pointer.parent.mkdir(parents=True)
    pointer.write_text("/annex/objects/SHA256E-s100--" + "a" * 64 + ".nii.gz\n")
    (dataset / "dataset_description.json").write_text('{"Name": "x", "BIDSVersion": "1.10.0"}')

    monkeypatch.setattr(cli.shell, "console", Console(width=220, no_color=True))
    monkeypatch.setattr(cli.shell, "err_console", Console(width=220, no_color=True, stderr=True))
    result = CliRunner().invoke(cli.app, ["predict", str(subs / "bad"), str(dataset), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "shape-mismatch: model returned (7, 7, 5) for input (6, 6, 4)" in result.output
    assert "not-downloaded" in result.output and "annex-pointer" in result.output
    assert not list((tmp_path / "out").rglob("*.nii.gz"))


def test_predict_refuses_what_it_cannot_run(tmp_path):
    subs = tmp_path / "subs"
    (subs / "masks").mkdir(parents=True)
    (subs / "masks" / "submission.yaml").write_text(yaml.safe_dump(
        {"name": "masks", "description": "d", "authors": ["a"], "licence": "MIT",
         "model": {"type": "predictions", "folder": "derivatives"}}))
    image = save_nifti(tmp_path / "sub-01_T2w.nii.gz", np.zeros((4, 4, 4), np.float32), np.eye(4))
    with pytest.raises(PredictError, match="supplies masks; it has no model to run"):
        predict("masks", image, tmp_path / "out", submissions_root=subs, progress=False)
    python_submission(subs, "ident", "identity")
    with pytest.raises(PredictError, match="not a BIDS folder"):
        predict("ident", tmp_path / "subs", tmp_path / "out", submissions_root=subs, progress=False)
    with pytest.raises(PredictError, match="no such file or folder"):
        predict("ident", tmp_path / "nope.nii.gz", tmp_path / "out", submissions_root=subs, progress=False)
