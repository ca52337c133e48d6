"""`score` verifies every image and mask of the suite against the frozen split before anything runs.

On a copy of the real-mini data: an emptied mask, a missing case, an extra case and a mask shifted off its
image's grid each stop `score` with the `splits verify` report (exit 1) and nothing written;
`--allow-changed-data` scores changed data under a separate, marked version (never a shifted mask).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from benchmark.evaluation.scoring import CHANGED_DATA_MARK, DataChangedError, score_submission
from benchmark.data.splits import load_split

MASK = "derivatives/labels/sub-9604/anat/sub-9604_T2starw_seg-manual.nii.gz"
IMAGE = "sub-9669/anat/sub-9669_T2starw.nii.gz"


@pytest.fixture
def data_root(tmp_path, shared_bids) -> Path:
    root = tmp_path / "data"
    for dataset_id in load_split("real-mini").datasets:
        shutil.copytree(shared_bids / dataset_id, root / dataset_id)
    return root


@pytest.fixture
def submissions(tmp_path) -> Path:
    folder = tmp_path / "submissions" / "copy-input"
    folder.mkdir(parents=True)
    (folder / "submission.yaml").write_text(yaml.safe_dump({
        "name": "copy-input", "description": "hands the image back (binarised at 0.5 by the scorer)",
        "authors": ["t"], "licence": "MIT", "model": {"type": "command", "command": "cp {input} {output}"}}))
    return folder.parent


def rewrite_mask(path: Path, *, empty: bool = False, shift_mm: float = 0.0) -> None:
    mask = nib.load(str(path))
    data = np.zeros(mask.shape, np.uint8) if empty else np.asarray(mask.dataobj)
    affine = mask.affine.copy()
    affine[0, 3] += shift_mm
    path.unlink()
    nib.save(nib.Nifti1Image(data, affine, mask.header), str(path))


def add_extra_subject(root: Path) -> None:
    for source in ("sub-9604/anat/sub-9604_T2starw.nii.gz", MASK):
        target = root / "gmchallenge" / source.replace("sub-9604", "sub-9999")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / "gmchallenge" / source, target)


CHANGES = {
    "emptied mask": (lambda root: rewrite_mask(root / "gmchallenge" / MASK, empty=True), "changed_files", MASK),
    "missing case": (lambda root: (root / "gmchallenge" / IMAGE).unlink(), "missing_files", IMAGE),
    "extra case": (add_extra_subject, "extra_subjects", "sub-9999"),
    "shifted mask": (lambda root: rewrite_mask(root / "gmchallenge" / MASK, shift_mm=5.0), "off_grid", MASK),
}


@pytest.mark.real_data
@pytest.mark.parametrize("change", list(CHANGES))
def test_score_refuses_data_that_differ_from_the_frozen_split(data_root, submissions, change):
    alter, field, expected = CHANGES[change]
    alter(data_root)
    with pytest.raises(DataChangedError, match="differ from the frozen split") as raised:
        score_submission("copy-input", "real-mini", data_root=data_root, submissions_root=submissions, progress=False)
    assert expected in getattr(raised.value.report, field)["gmchallenge"]
    assert not (submissions / "copy-input" / "results").exists()
    assert not (submissions / "copy-input" / "predictions").exists()  # nothing ran


@pytest.mark.real_data
def test_the_cli_prints_the_splits_verify_report_and_exits_1(data_root, submissions, monkeypatch, tmp_path):
    from benchmark.cli import app
    from benchmark.workspace import ENV_WORKSPACE, init_workspace

    rewrite_mask(data_root / "gmchallenge" / MASK, empty=True)
    monkeypatch.setenv(ENV_WORKSPACE, str(init_workspace(tmp_path / "ws").root))  # score writes only to a workspace
    monkeypatch.chdir(submissions)
    result = CliRunner().invoke(app, ["score", "copy-input", "--suite", "real-mini", "--data-root", str(data_root)])
    assert result.exit_code == 1, result.output
    assert f"changed file gmchallenge: {MASK}" in " ".join(result.output.split())
    assert "differ from the frozen split" in result.output


@pytest.mark.real_data
@pytest.mark.sandbox
def test_allow_changed_data_scores_under_a_marked_version(data_root, submissions):
    split = load_split("real-mini")
    rewrite_mask(data_root / "gmchallenge" / MASK, empty=True)
    results, path = score_submission("copy-input", "real-mini", data_root=data_root, submissions_root=submissions,
                                     progress=False, allow_changed_data=True)
    assert results.benchmark_version.startswith(split.version + CHANGED_DATA_MARK)
    assert path.name == f"real-mini_{results.benchmark_version}.json" and path.exists()
    assert results.sandbox == "bubblewrap" and len(results.cases) == 7

    rewrite_mask(data_root / "gmchallenge" / MASK, shift_mm=5.0)
    with pytest.raises(DataChangedError, match="not on their image's grid"):
        score_submission("copy-input", "real-mini", data_root=data_root, submissions_root=submissions,
                         progress=False, allow_changed_data=True)
