"""The one inference path: orientation round trip, named failures, command sandbox, caching."""

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from benchmark.evaluation.inference import Predictor, to_canonical
from benchmark.data.submissions import Submission

from conftest import orientation_affine, save_nifti

TESTS = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def importable_fixtures(monkeypatch):
    monkeypatch.syspath_prepend(str(TESTS))


def python_submission(tmp_path: Path, function: str) -> Submission:
    folder = tmp_path / "subs" / function.replace("_", "-")
    folder.mkdir(parents=True)
    shutil.copyfile(TESTS / "model_fixtures.py", folder / "model_fixtures.py")  # importable in the sandbox
    submission = Submission(name=folder.name, description="test", authors=["t"], licence="MIT",
                            model={"type": "python", "entrypoint": f"model_fixtures:{function}"})
    submission.folder = folder
    return submission


def command_submission(tmp_path: Path, script: str, **model) -> Submission:
    folder = tmp_path / "subs" / "cmd"
    folder.mkdir(parents=True)
    (folder / "run.py").write_text(script)
    submission = Submission(name="cmd", description="test", authors=["t"], licence="MIT",
                            model={"type": "command", "command": "{python} run.py {input} {output}", **model})
    submission.folder = folder
    return submission


def asymmetric_mask(shape=(12, 10, 6)) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    mask[2:5, 3:8, 1:4] = 1
    mask[9, 1, 5] = 1  # a lone voxel near one corner makes every flip visible
    return mask


@pytest.mark.parametrize("codes", ["LAS", "RPI", "LPS", "PSR", "RAS"])
@pytest.mark.sandbox
def test_orientation_round_trip_returns_masks_on_the_native_grid(tmp_path, codes):
    mask = asymmetric_mask()
    affine = orientation_affine(codes, spacing=(0.5, 0.7, 3.0), origin=(10, -20, 5))
    image_path = save_nifti(tmp_path / f"img_{codes}.nii.gz", mask.astype(np.float32), affine)
    record = Predictor(python_submission(tmp_path, "identity"), tmp_path / "cache").predict(image_path, f"sha-{codes}")
    assert record.failure is None
    predicted = nib.load(record.prediction)
    assert np.array_equal(np.asarray(predicted.dataobj), mask)
    assert np.allclose(predicted.affine, affine)
    assert predicted.get_data_dtype() == np.uint8


def test_model_sees_canonical_ras_with_matching_spacing():
    affine = orientation_affine("PSR", spacing=(0.5, 0.7, 3.0))
    canonical, spacing, _ = to_canonical(np.zeros((4, 5, 6), np.float32), affine)
    # PSR: voxel axis 0 is A-P (0.5 mm), 1 is S-I (0.7 mm), 2 is L-R (3 mm)
    assert canonical.shape == (6, 4, 5)
    assert spacing == (3.0, 0.5, 0.7)


@pytest.mark.parametrize("function, failure", [
    ("wrong_shape", "shape-mismatch: model returned (13, 11, 7) for input (12, 10, 6)"),
    ("crashes", "crash: RuntimeError: out of memory (simulated)"),
])
@pytest.mark.sandbox
def test_violations_are_named_failures(tmp_path, function, failure):
    image_path = save_nifti(tmp_path / "img.nii.gz", asymmetric_mask().astype(np.float32), orientation_affine("RAS"))
    record = Predictor(python_submission(tmp_path, function), tmp_path / "cache").predict(image_path, "sha")
    assert record.failure == failure
    assert record.prediction is None


COPY_SCRIPT = """
import sys, shutil, os, stat
src, dst = sys.argv[1], sys.argv[2]
# the mode bits say read-only (root ignores them, which is why the input is a copy of the source)
assert os.stat(src).st_mode & 0o222 == 0, "input must be read-only"
assert os.path.dirname(src) != os.path.dirname(dst), "output goes to a fresh folder"
shutil.copyfile(src, dst)
"""


@pytest.mark.sandbox
def test_command_model_gets_a_read_only_copy_and_its_output_is_validated(tmp_path):
    mask = asymmetric_mask()
    affine = orientation_affine("LPS", spacing=(0.5, 0.5, 2.0))
    image_path = save_nifti(tmp_path / "img.nii.gz", mask.astype(np.float32), affine)
    before = image_path.read_bytes()
    record = Predictor(command_submission(tmp_path, COPY_SCRIPT), tmp_path / "cache").predict(image_path, "sha")
    assert record.failure is None, record.failure
    assert np.array_equal(np.asarray(nib.load(record.prediction).dataobj), mask)
    assert image_path.read_bytes() == before


@pytest.mark.sandbox
def test_command_model_in_ras(tmp_path):
    script = COPY_SCRIPT
    mask = asymmetric_mask()
    image_path = save_nifti(tmp_path / "img.nii.gz", mask.astype(np.float32), orientation_affine("LPS"))
    record = Predictor(command_submission(tmp_path, script, orientation="RAS"), tmp_path / "cache").predict(
        image_path, "sha")
    assert record.failure is None, record.failure
    assert np.array_equal(np.asarray(nib.load(record.prediction).dataobj), mask)


@pytest.mark.parametrize("script, failure", [
    ("import time; time.sleep(30)", "timeout: no result within 1 s"),
    ("import sys; sys.exit(3)", "crash: exit code 3"),
    ("pass", "missing-output: the command wrote no prediction"),
    ("import sys, nibabel as nib, numpy as np\n"
     "nib.save(nib.Nifti1Image(np.zeros((12, 10, 6), np.uint8), np.eye(4) * 2), sys.argv[2])",
     "affine-mismatch: the prediction is not on the image's grid"),
])
@pytest.mark.sandbox
def test_command_failures_are_named(tmp_path, script, failure):
    image_path = save_nifti(tmp_path / "img.nii.gz", asymmetric_mask().astype(np.float32), orientation_affine("RAS"))
    timeout_s = 1 if failure.startswith("timeout") else 60  # importing nibabel can take over 1 s on a busy machine
    record = Predictor(command_submission(tmp_path, script, timeout_s=timeout_s), tmp_path / "cache").predict(image_path, "sha")
    assert record.failure.startswith(failure), record.failure


def test_predictions_are_cached_by_submission_and_image_checksum(tmp_path, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("CORDBENCH_TEST_CALL_LOG", str(log))
    image_path = save_nifti(tmp_path / "img.nii.gz", asymmetric_mask().astype(np.float32), orientation_affine("RAS"))
    submission = python_submission(tmp_path, "counting_blank")  # in-process: it counts calls in this process's env
    first = Predictor(submission, tmp_path / "cache", sandbox=False).predict(image_path, "sha-a")
    again = Predictor(submission, tmp_path / "cache", sandbox=False).predict(image_path, "sha-a")
    Predictor(submission, tmp_path / "cache", sandbox=False).predict(image_path, "sha-b")
    assert first == again
    assert len(log.read_text().splitlines()) == 2
    cached = json.loads((Path(first.prediction).with_suffix("").with_suffix(".json")).read_text())
    assert cached["failure"] is None and cached["peak_memory_mb"] > 0


@pytest.mark.sandbox
def test_a_model_that_cannot_be_loaded_stops_the_run_instead_of_failing_cases(tmp_path):
    from benchmark.evaluation.inference import ModelLoadError

    image_path = save_nifti(tmp_path / "img.nii.gz", asymmetric_mask().astype(np.float32), orientation_affine("RAS"))
    with pytest.raises(ModelLoadError, match="the model could not be loaded: AttributeError"):
        Predictor(python_submission(tmp_path, "no_such_function"), tmp_path / "cache").predict(image_path, "sha")
    assert not list((tmp_path / "cache").rglob("*.json"))


def test_failed_cases_are_retried_on_the_next_run(tmp_path, monkeypatch):
    image_path = save_nifti(tmp_path / "img.nii.gz", asymmetric_mask().astype(np.float32), orientation_affine("RAS"))
    submission = python_submission(tmp_path, "crashes")  # in-process (sandbox=False): the fix is a monkeypatch
    assert Predictor(submission, tmp_path / "cache", sandbox=False).predict(image_path, "sha").failure.startswith("crash")
    import model_fixtures

    monkeypatch.setattr(model_fixtures, "crashes", model_fixtures.identity)
    assert Predictor(submission, tmp_path / "cache", sandbox=False).predict(image_path, "sha").failure is None


@pytest.mark.parametrize("codes", ["LPS", "PSR"])
@pytest.mark.sandbox
def test_largest_component_postprocessing_keeps_the_cord_and_drops_far_blobs(tmp_path, codes):
    from benchmark.data.submissions import submission_hash

    mask = asymmetric_mask()  # a 3x5x3 block (45 voxels) and a lone voxel far from it
    diagonal_neighbour = mask.copy()
    diagonal_neighbour[5, 8, 4] = 1  # touches the block's corner (2:5, 3:8, 1:4) only diagonally: 26-connected
    affine = orientation_affine(codes, spacing=(0.5, 0.7, 3.0))
    plain = python_submission(tmp_path, "identity")
    kept = plain.model_copy(update={"inference": plain.inference.model_copy(update={"postprocessing": "largest-component"})})
    kept.folder = plain.folder
    assert submission_hash(kept) != submission_hash(plain)  # cached predictions are not shared between the two
    for name, volume, expected in (("lone", mask, mask.sum() - 1), ("diagonal", diagonal_neighbour, mask.sum())):
        image_path = save_nifti(tmp_path / f"{name}.nii.gz", volume.astype(np.float32), affine)
        predicted = np.asarray(nib.load(Predictor(kept, tmp_path / "cache").predict(image_path, name).prediction).dataobj)
        assert predicted.sum() == expected
        assert predicted[9, 1, 5] == 0 and np.array_equal(predicted[2:5, 3:8, 1:4], mask[2:5, 3:8, 1:4])
        unprocessed = np.asarray(nib.load(Predictor(plain, tmp_path / "cache").predict(image_path, name).prediction).dataobj)
        assert np.array_equal(unprocessed, volume)


def test_largest_component_of_an_empty_mask_is_empty():
    from benchmark.evaluation.inference import largest_component

    assert not largest_component(np.zeros((3, 4, 5), bool)).any()


def test_a_process_loads_an_nnunet_model_once_for_consecutive_predictors(tmp_path, monkeypatch):
    """Work units of one submission run one after another in a worker: the model is loaded (exported, verified)
    once; a replaced checkpoint file or another thread count loads it again."""
    import os

    import yaml

    from benchmark.data.submissions import load_submission
    from benchmark.evaluation import inference

    folder = tmp_path / "nn"
    checkpoint = folder / "model" / "fold_all" / "checkpoint_final.pth"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"weights")
    (folder / "submission.yaml").write_text(yaml.safe_dump({
        "name": "nn", "description": "d", "authors": ["a"], "licence": "MIT",
        "model": {"type": "nnunet", "folder": "model", "sha256": "0" * 64, "configuration": "2d"}}))
    loads = []
    monkeypatch.setattr(inference, "load_array_model", lambda submission, **kwargs: loads.append(kwargs) or object())
    monkeypatch.setattr(inference, "_LAST_LOADED", {})
    submission = load_submission(folder)

    def loaded(threads=1):
        return inference.Predictor(submission, tmp_path / "cache", threads=threads).array_model()

    first = loaded()
    assert loaded() is first and len(loads) == 1
    os.utime(checkpoint, ns=(0, 12345))  # the file was replaced
    assert loaded() is not first and len(loads) == 2
    assert loaded(threads=2) is not None and len(loads) == 3 and loads[-1]["threads"] == 2
