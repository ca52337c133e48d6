"""int8 post-training quantization (opt-in): ONNX Runtime's quantize_static calibrated on training images, run on
OpenVINO and ONNX Runtime, checked by mask agreement, recorded in the results header, never scored on its own
calibration images (benchmark.models.runtime.quantize)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from benchmark.data.submissions import InferenceSpec, Submission, submission_hash
from benchmark.models.runtime.runner import RuntimeFallbackWarning, VerifiedRunner
from benchmark.models.runtime.selection import RuntimeSelectionError
from benchmark.models.runtime.verify import compare_masks
from nnunet_testdata import dice
from test_runtime import ONNX_RUNTIMES, TILE, _masks, _network, tiny_model  # noqa: F401  (tiny_model: a fixture)

needs_onnx = pytest.mark.skipif(not ONNX_RUNTIMES, reason="neither OpenVINO nor ONNX Runtime is installed")


def test_int8_needs_calibration_images_and_they_need_int8():
    assert InferenceSpec(precision="int8", calibration_images=["train/"]).precision == "int8"
    with pytest.raises(ValueError, match="precision int8 needs calibration_images"):
        InferenceSpec(precision="int8")
    with pytest.raises(ValueError, match="calibration_images is used only with precision: int8"):
        InferenceSpec(calibration_images=["train/"])


def test_int8_runs_on_onnx_runtimes_only_and_is_ignored_on_cuda():
    from benchmark.models.nnunet.predict import _fenced_precision

    with pytest.raises(RuntimeSelectionError, match="int8 runs on an ONNX runtime"):
        _fenced_precision("int8", torch.device("cpu"), "torch")
    with pytest.warns(UserWarning, match="int8 ignored on CUDA"):
        assert _fenced_precision("int8", torch.device("cuda"), "torch") == "float32"
    assert _fenced_precision("int8", torch.device("cpu"), "openvino") == "int8"


def test_mask_agreement_counts_voxels_of_another_class():
    reference = torch.zeros((1, 2, 4, 4))
    reference[:, 1, :2] = 1.0  # class 1 in the top half
    candidate = reference.clone()
    candidate[0, 1, 0, 0] = -1.0  # one voxel of 16 flips to class 0
    agreement = compare_masks(candidate, reference, 0.99, "a batch")
    assert agreement.max_difference == pytest.approx(1 / 16) and not agreement.ok
    assert "fraction of voxels of another class 0.0625 > 0.01 allowed, on a batch" == agreement.describe()
    assert compare_masks(reference, reference, 0.99, "a batch").ok


@needs_onnx
@pytest.mark.parametrize("runtime", ONNX_RUNTIMES)
def test_a_broken_int8_model_falls_back_to_torch_on_the_first_real_batch(tmp_path, runtime):
    network = _network()
    calibration = np.zeros((2, 1, *TILE), dtype=np.float32)  # all-zero calibration: every activation range is 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runner = VerifiedRunner(network, runtime=runtime, device=torch.device("cpu"), threads=1, bfloat16=False,
                                weights_sha256="b" * 64, tile_shape=TILE, in_channels=1, cache_dir=tmp_path,
                                int8_tiles=calibration)
        assert runner.int8 and runner.name == runtime
        tiles = torch.randn((2, 1, *TILE), generator=torch.Generator().manual_seed(3)) * 5
        logits = runner.run(tiles)
    if runner.fallback_reason is None:  # the quantized model happened to agree: nothing to fall back from
        pytest.skip("the degenerate calibration still agreed on this batch")
    assert runner.name == "torch" and not runner.int8 and "fraction of voxels of another class" in runner.fallback_reason
    assert any(issubclass(warning.category, RuntimeFallbackWarning) for warning in caught)
    with torch.inference_mode():
        assert torch.equal(logits, network(tiles))


@needs_onnx
@pytest.mark.slow
def test_int8_is_calibrated_on_training_images_cached_and_agrees_with_float32(tiny_model, tmp_path):
    from benchmark.models.nnunet.predict import CalibrationError, load_model

    folder, images = tiny_model
    training = sorted((images[0].parent.parent / "imagesTr").glob("*.nii.gz"))
    float32 = _masks(load_model(folder, runtime="torch", num_threads=1), images)
    cache = tmp_path / "cache"
    for runtime in ONNX_RUNTIMES:
        model = load_model(folder, runtime=runtime, num_threads=1, precision="int8", calibration_images=training,
                           runtime_cache_dir=cache)
        masks = _masks(model, images)
        assert (model.runtime, model.precision) == (runtime, "int8"), model.runtime_fallbacks
        assert min(dice(mask, reference) for mask, reference in zip(masks, float32)) >= 0.95
        assert len(model.calibration_sha256) == len(training)
    assert len(list(cache.glob("network-int8-*.onnx"))) == 1  # quantized once, reused by the second runtime
    with pytest.raises(CalibrationError, match="precision int8 needs calibration images"):
        load_model(folder, runtime=ONNX_RUNTIMES[0], precision="int8")


@needs_onnx
@pytest.mark.slow
def test_scoring_records_int8_and_refuses_an_image_the_model_was_calibrated_on(tiny_model, tmp_path):
    from benchmark.evaluation.inference import CalibrationLeakError, Predictor
    from benchmark.evaluation.scoring import inference_header
    from benchmark.io import sha256_file

    folder, images = tiny_model
    training = images[0].parent.parent / "imagesTr"
    manifest = {"name": "tiny-int8", "description": "tiny", "authors": ["test"], "licence": "MIT",
                "model": {"type": "nnunet", "folder": str(folder), "configuration": "2d",
                          "sha256": sha256_file(folder / "fold_all" / "checkpoint_final.pth")},
                "inference": {"precision": "int8", "calibration_images": [str(training)]}}
    submission = Submission.model_validate(manifest)
    submission.folder = tmp_path
    float_twin = Submission.model_validate({**manifest, "inference": {}})
    float_twin.folder = tmp_path
    assert submission_hash(submission) != submission_hash(float_twin)  # cached apart
    predictor = Predictor(submission, tmp_path / "predictions", device="cpu", runtime=ONNX_RUNTIMES[0], threads=1)
    record = predictor.predict(images[0], sha256_file(images[0]))
    assert record.ok and record.precision == "int8" and record.test_time_augmentation is False
    header = inference_header([record])
    assert header["precision"] == "int8" and header["test_time_augmentation"] is False
    calibration_image = sorted(training.glob("*.nii.gz"))[0]
    with pytest.raises(CalibrationLeakError, match="is one of the images its int8 ranges were calibrated on"):
        predictor.predict(calibration_image, sha256_file(calibration_image))
