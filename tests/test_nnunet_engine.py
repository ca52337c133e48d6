"""benchmark.training.nnunet: planning (quick profile), CordbenchTrainer (safe checkpoints, resume), batched predictor.

Fast tests run on a tiny synthetic dataset written here (one end-to-end run: plan, train a few iterations,
predict, compare with nnU-Net's own predictor). ``slow`` tests train on the real gmchallenge T2*w scans.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from benchmark.training.nnunet.plans import (
    QUICK_CONFIGURATION,
    PlanningError,
    derive_quick_configuration,
    nnunet_environment,
    parse_dataset_folder,
    plan_and_preprocess,
)
from benchmark.models.nnunet.predict import (
    ModelFolderError,
    NnunetModel,
    UnsafeCheckpointError,
    load_model,
    nnunet_reference_predictor,
)
from benchmark.training.nnunet.train import TrainedModel, resolve_device, train_model
from benchmark.training.nnunet.trainer import (
    load_checkpoint_dict,
    rng_state,
    set_rng_state,
    to_weights_only_safe,
    weights_sha256,
)
from nnunet_testdata import dice, preprocessed_copy

REPO = Path(__file__).resolve().parents[1]
TINY_RUN = {"num_epochs": 5, "iterations_per_epoch": 4, "val_iterations_per_epoch": 1, "num_processes": 1}


# ---------------------------------------------------------------------------------------------- unit tests


def _plans_with_2d(median: list[float]) -> dict:
    return {
        "dataset_name": "Dataset999_X",
        "configurations": {
            "2d": {
                "data_identifier": "nnUNetPlans_2d",
                "batch_size": 5,
                "patch_size": [384, 320],
                "median_image_size_in_voxels": median,
                "spacing": [0.5, 0.5],
                "batch_dice": True,
                "architecture": {
                    "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
                    "arch_kwargs": {
                        "n_stages": 7,
                        "features_per_stage": [32, 64, 128, 256, 512, 512, 512],
                        "kernel_sizes": [[3, 3]] * 7,
                        "strides": [[1, 1]] + [[2, 2]] * 6,
                        "n_conv_per_stage": [2] * 7,
                        "n_conv_per_stage_decoder": [2] * 6,
                        "conv_op": "torch.nn.modules.conv.Conv2d",
                    },
                    "_kw_requires_import": ["conv_op"],
                },
            }
        },
    }


def test_quick_configuration_reduces_nnunets_2d_plan():
    plans = _plans_with_2d([325.5, 308.0])
    quick = derive_quick_configuration(plans)
    assert quick["patch_size"] == [128, 128]
    assert quick["batch_size"] == 8
    arch = quick["architecture"]["arch_kwargs"]
    assert arch["n_stages"] == 5
    assert arch["features_per_stage"] == [16, 32, 64, 128, 128]
    assert arch["strides"] == [[1, 1], [2, 2], [2, 2], [2, 2], [2, 2]]
    assert arch["n_conv_per_stage_decoder"] == [2, 2, 2, 2]
    # inherited unchanged: preprocessed data are shared with '2d'
    assert quick["data_identifier"] == "nnUNetPlans_2d"
    assert quick["spacing"] == [0.5, 0.5]
    assert arch["conv_op"] == "torch.nn.modules.conv.Conv2d"
    # the source configuration is not modified
    assert plans["configurations"]["2d"]["patch_size"] == [384, 320]


def test_quick_patch_follows_small_images():
    quick = derive_quick_configuration(_plans_with_2d([50.0, 81.0]))
    assert quick["patch_size"] == [64, 96]


def test_parse_dataset_folder_errors_name_the_folder(tmp_path):
    bad = tmp_path / "Task01_Cord"
    bad.mkdir()
    with pytest.raises(PlanningError, match="Task01_Cord.*DatasetXXX_Name"):
        parse_dataset_folder(bad)
    no_json = tmp_path / "Dataset012_Cord"
    (no_json / "imagesTr").mkdir(parents=True)
    with pytest.raises(PlanningError, match="Dataset012_Cord/dataset.json"):
        parse_dataset_folder(no_json)
    (no_json / "dataset.json").write_text("{}")
    (no_json / "labelsTr").mkdir()
    assert parse_dataset_folder(no_json) == (12, "Dataset012_Cord")


def test_weights_only_conversion_turns_numpy_into_python_numbers():
    converted = to_weights_only_safe(
        {"loss": [np.float32(0.5), np.float64(0.25)], "dice": np.array([0.75]), "t": torch.ones(2), "n": None}
    )
    assert converted["loss"] == [0.5, 0.25] and all(type(v) is float for v in converted["loss"])
    assert converted["dice"] == [0.75]
    assert torch.equal(converted["t"], torch.ones(2))

    class Opaque:
        pass

    with pytest.raises(TypeError, match=r"checkpoint\['logging'\]\[0\]: Opaque"):
        to_weights_only_safe({"logging": [Opaque()]})


def test_rng_state_roundtrip_restores_all_generators():
    import random

    state = rng_state()
    first = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    set_rng_state(state)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == first


def test_weights_hash_depends_on_values_names_and_dtypes():
    state = {"b": torch.arange(4, dtype=torch.float32), "a": torch.ones(2, 2)}
    reference = weights_sha256(state)
    assert weights_sha256(dict(reversed(list(state.items())))) == reference  # order-independent
    changed = dict(state, b=state["b"].clone())
    changed["b"][3] = 3.5
    assert weights_sha256(changed) != reference
    assert weights_sha256({"c": state["b"], "a": state["a"]}) != reference
    assert weights_sha256(dict(state, b=state["b"].double())) != reference


def test_package_exports_are_lazy():
    import benchmark.training.nnunet as engine

    assert engine.train_model is train_model and engine.plan_and_preprocess is plan_and_preprocess
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        engine.nope  # noqa: B018


def test_nnunet_environment_sets_and_restores(tmp_path, monkeypatch):
    monkeypatch.setenv("nnUNet_raw", "/previous/raw")
    monkeypatch.delenv("nnUNet_results", raising=False)
    import nnunetv2.paths

    with nnunet_environment(raw=tmp_path / "raw", results=tmp_path / "res"):
        assert os.fspath(nnunetv2.paths.nnUNet_raw) == str((tmp_path / "raw").resolve())
        assert os.environ["nnUNet_results"] == str((tmp_path / "res").resolve())
    assert os.environ["nnUNet_raw"] == "/previous/raw"
    assert "nnUNet_results" not in os.environ


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_resolve_device_without_cuda():
    assert resolve_device(None) == torch.device("cpu")
    with pytest.raises(RuntimeError, match="'cuda' requested"):
        resolve_device("cuda")


# ---------------------------------------------------------------- tiny synthetic dataset: plan, train, predict


@pytest.fixture(scope="module")
def tiny_raw(tiny_nnunet) -> Path:
    return tiny_nnunet[0]


@pytest.fixture(scope="module")
def tiny_preprocessed(tiny_nnunet) -> Path:
    return tiny_nnunet[1]


@pytest.fixture(scope="module")
def tiny_work(tiny_preprocessed, tmp_path_factory) -> Path:
    return preprocessed_copy(tiny_preprocessed, tmp_path_factory.mktemp("nnunet_work"))


@pytest.fixture(scope="module")
def tiny_model(tiny_raw, tiny_work) -> TrainedModel:
    return train_model(tiny_raw, tiny_work, seed=3, **TINY_RUN)


@pytest.mark.slow
def test_plan_and_preprocess_writes_quick_plans_and_skips_when_unchanged(tiny_raw, tiny_preprocessed, tmp_path):
    # the session's planning (conftest.tiny_nnunet) ran verify_dataset_integrity, which raises on any problem;
    # planning again on a copy of its output must find everything done
    shutil.copytree(tiny_preprocessed, tmp_path / "pre")
    before = {path: path.stat().st_mtime_ns for path in (tmp_path / "pre").rglob("*")}
    first = plan_and_preprocess(tiny_raw, tmp_path / "pre", num_processes=1)
    assert first.skipped and first.configuration == QUICK_CONFIGURATION
    assert {path: path.stat().st_mtime_ns for path in (tmp_path / "pre").rglob("*")} == before  # nothing redone
    import json

    plans = json.loads(first.plans_path.read_text())
    quick = plans["configurations"][QUICK_CONFIGURATION]
    assert quick["patch_size"] == [64, 64]  # median slice 64x56, rounded up to a multiple of 16
    assert "2d" in plans["configurations"]
    cases = sorted(p.name for p in first.preprocessed_folder.glob("*.b2nd") if not p.name.endswith("_seg.b2nd"))
    assert cases == [f"case{i:03d}.b2nd" for i in range(4)]

    changed = tmp_path / "raw" / tiny_raw.name
    shutil.copytree(tiny_raw, changed)
    image = nib.load(changed / "imagesTr" / "case000_0000.nii.gz")
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj) + 1.0, image.affine), changed / "imagesTr" / "case000_0000.nii.gz")
    third = plan_and_preprocess(changed, tmp_path / "pre", num_processes=1)
    assert not third.skipped and third.inputs_sha256 != first.inputs_sha256
    assert third.configuration == QUICK_CONFIGURATION
    assert sorted(p.name for p in third.preprocessed_folder.glob("*.b2nd") if not p.name.endswith("_seg.b2nd")) == cases
    assert {path: path.stat().st_mtime_ns for path in (tmp_path / "pre").rglob("*")} != before  # preprocessed anew


@pytest.mark.slow
def test_full_profile_trains_and_predicts_3d_fullres(tiny_raw, tmp_path):
    """nnU-Net's defaults (3d_fullres here), one short epoch: exercises 3D tiles in the batched predictor.

    Compared without Gaussian weighting: with it, nnU-Net's float16 buffers quantise the logits where the 3D
    Gaussian underflows (tile corners, e^-24), so the two differ there by design (see docs/nnunet.md).
    """
    trained = train_model(tiny_raw, tmp_path, profile="full", num_epochs=1, iterations_per_epoch=2,
                          val_iterations_per_epoch=1, num_processes=1)
    assert trained.configuration == "3d_fullres"
    assert (tmp_path / "nnUNet_preprocessed" / tiny_raw.name / "nnUNetPlans_3d_fullres" / "case000.b2nd").is_file()
    model = load_model(trained.model_folder)
    model.predictor.use_gaussian = False
    image_path = tiny_raw / "imagesTs" / "case004_0000.nii.gz"
    image = nib.load(image_path)
    ours = model.predict_probabilities(image.get_fdata(dtype=np.float32), image.header.get_zooms()[:3])
    assert ours.shape == image.shape
    reference = nnunet_reference_predictor(model, use_mirroring=False)
    reference.use_gaussian = False
    (tmp_path / "ref").mkdir()
    reference.predict_from_files_sequential([[str(image_path)]], str(tmp_path / "ref"), save_probabilities=True)
    nnunet_prob = np.load(tmp_path / "ref" / "case004.npz")["probabilities"][1].transpose(2, 1, 0)
    assert np.abs(nnunet_prob - ours).max() < 5e-3


@pytest.mark.slow
def test_verify_dataset_integrity_rejects_unexpected_label(tiny_raw, tmp_path):
    broken = tmp_path / "raw" / tiny_raw.name
    shutil.copytree(tiny_raw, broken)
    label_path = broken / "labelsTr" / "case001.nii.gz"
    label = nib.load(label_path)
    data = np.asarray(label.dataobj).copy()
    data[0, 0, 0] = 2
    nib.save(nib.Nifti1Image(data, label.affine), label_path)
    with pytest.raises(RuntimeError, match="unexpected labels"):
        plan_and_preprocess(broken, tmp_path / "pre", num_processes=1)


def test_short_training_writes_weights_only_checkpoint(tiny_model):
    checkpoint = torch.load(tiny_model.checkpoint, map_location="cpu", weights_only=True)
    assert checkpoint["current_epoch"] == TINY_RUN["num_epochs"] == tiny_model.epochs
    assert checkpoint["trainer_name"] == "CordbenchTrainer" == tiny_model.trainer_name
    assert checkpoint["init_args"]["configuration"] == QUICK_CONFIGURATION
    assert len(checkpoint["logging"]["train_losses"]) == TINY_RUN["num_epochs"]
    assert all(type(v) is float for v in checkpoint["logging"]["mean_fg_dice"])
    from benchmark.io import sha256_file

    assert tiny_model.checkpoint_sha256 == sha256_file(tiny_model.checkpoint)
    assert tiny_model.plans_path.is_file() and tiny_model.dataset_json_path.is_file()
    assert tiny_model.device == "cpu" or tiny_model.device.startswith("cuda")
    assert tiny_model.final_pseudo_dice == pytest.approx(checkpoint["logging"]["mean_fg_dice"][-1])
    assert tiny_model.training_seconds > 0
    assert not (tiny_model.checkpoint.parent / "checkpoint_latest.pth").exists()  # nnU-Net removes it at the end


def test_da5_augmentation_trains_in_its_own_folder(tiny_raw, tiny_work, tiny_model):
    from benchmark.training.nnunet.trainer import CordbenchTrainerDA5

    trained = train_model(tiny_raw, tiny_work, seed=3, augmentation="da5", **TINY_RUN)
    assert trained.trainer_name == "CordbenchTrainerDA5"
    assert trained.model_folder.name == "CordbenchTrainerDA5__nnUNetPlans__2d_quick"
    assert trained.model_folder.parent == tiny_model.model_folder.parent
    assert tiny_model.checkpoint.is_file()  # the default-augmentation model is left alone
    assert trained.weights_sha256 != tiny_model.weights_sha256  # same seed, other augmentation: other weights
    transforms = CordbenchTrainerDA5.get_training_transforms((64, 64), (-3.14, 3.14), None, (0, 1), False)
    names = {type(t).__name__ for t in transforms.transforms}
    names |= {type(t.transform).__name__ for t in transforms.transforms if hasattr(t, "transform")}
    assert {"BlankRectangleTransform", "BrightnessAdditiveTransform"} <= names  # DA5's, not in nnU-Net's default
    with pytest.raises(ValueError, match="augmentation must be one of default, da5, got 'heavy'"):
        train_model(tiny_raw, tiny_work, augmentation="heavy", **TINY_RUN)


def test_finished_run_is_returned_without_retraining(tiny_raw, tiny_work, tiny_model):
    again = train_model(tiny_raw, tiny_work, seed=3, **TINY_RUN)
    assert again.checkpoint_sha256 == tiny_model.checkpoint_sha256


def test_predict_probabilities_keeps_the_input_grid_and_matches_nnunet(tiny_raw, tiny_model, tmp_path):
    model = load_model(tiny_model.model_folder)
    assert isinstance(model, NnunetModel)
    image_path = tiny_raw / "imagesTs" / "case004_0000.nii.gz"
    image = nib.load(image_path)
    array = image.get_fdata(dtype=np.float32)
    spacing = tuple(float(z) for z in image.header.get_zooms()[:3])
    ours = model.predict_probabilities(array, spacing)
    assert ours.shape == array.shape == (64, 56, 8)
    assert ours.dtype == np.float32
    assert 0.0 <= ours.min() and ours.max() <= 1.0

    # nnU-Net's own predictor, same network and settings, reading the file through NibabelIO.
    reference = nnunet_reference_predictor(model, use_mirroring=False)
    (tmp_path / "ref").mkdir()
    reference.predict_from_files_sequential([[str(image_path)]], str(tmp_path / "ref"), save_probabilities=True)
    nnunet_mask = nib.load(tmp_path / "ref" / "case004.nii.gz").get_fdata() > 0.5
    nnunet_prob = np.load(tmp_path / "ref" / "case004.npz")["probabilities"][1].transpose(2, 1, 0)
    assert np.abs(nnunet_prob - ours).max() < 5e-3
    assert nnunet_mask.sum() > 0
    assert dice(ours > 0.5, nnunet_mask) >= 0.995

    many = list(model.predict_many([(array, spacing), (array[::-1].copy(), spacing)]))
    np.testing.assert_array_equal(many[0], ours)
    assert many[1].shape == array.shape


_BF16_CHILD = textwrap.dedent(
    """
    import json, sys
    from benchmark import kernels
    kernels.apply("native")  # before torch computes: bfloat16 needs the CPU's own kernels
    import nibabel as nib, numpy as np
    from benchmark.models.nnunet.predict import load_model
    from benchmark.models.runtime.hardware import native_bf16
    image = nib.load({image!r})
    array, spacing = image.get_fdata(dtype=np.float32), image.header.get_zooms()[:3]
    full, half = load_model({model!r}), load_model({model!r}, precision="bfloat16")
    p32, p16 = full.predict_probabilities(array, spacing), half.predict_probabilities(array, spacing)
    np.save({out!r}, np.stack([p32, p16]))
    print(json.dumps([full.predictor.precision, half.predictor.precision, half.runtime, native_bf16()[0]]))
    """
)


def test_bfloat16_precision_is_opt_in(tiny_raw, tiny_model, tmp_path):
    """Where the CPU computes bfloat16 natively, precision="bfloat16" runs it and stays close to float32. Checked in
    a child process with native kernels: the pinned ones (this suite's default) cap oneDNN at AVX2, where bfloat16
    would be emulated (``test_bfloat16_falls_back_to_float32_without_native_support``)."""
    from benchmark import kernels
    from benchmark.models.runtime.hardware import NATIVE_BF16_FLAGS

    if kernels.least_capable():
        pytest.skip(f"{kernels.ENV_HOST}={kernels.LEAST_CAPABLE}: this CPU counts as one without native bfloat16")
    if not set(NATIVE_BF16_FLAGS) & kernels.cpu_flags():
        pytest.skip(f"the CPU has no native bfloat16 (none of {', '.join(NATIVE_BF16_FLAGS)} in /proc/cpuinfo)")
    code = _BF16_CHILD.format(image=str(tiny_raw / "imagesTs" / "case004_0000.nii.gz"),
                              model=str(tiny_model.model_folder), out=str(tmp_path / "p.npy"))
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert completed.returncode == 0, completed.stderr[-3000:]
    precisions = json.loads(completed.stdout.strip().splitlines()[-1])
    assert precisions[:2] == ["float32", "bfloat16"] and precisions[3] is True
    p32, p16 = np.load(tmp_path / "p.npy")
    assert p16.dtype == np.float32 and p16.shape == p32.shape
    assert 0 < np.abs(p16 - p32).max() < 0.2  # bfloat16 really ran, and stayed close
    assert dice(p16 > 0.5, p32 > 0.5) >= 0.98


def test_bfloat16_falls_back_to_float32_without_native_support(tiny_raw, tiny_model, monkeypatch):
    """Without native bfloat16 (an AVX2-only CPU, or oneDNN capped at AVX2 by the pinned kernels, where OpenVINO
    failed with "could not create a primitive descriptor for the deconvolution forward propagation primitive"),
    precision="bfloat16" runs float32, says why, and gives float32's probabilities."""
    from benchmark.models.nnunet import predict

    native, why = predict.native_bf16()
    if native:  # a run of the suite with native kernels on a bfloat16 CPU: the fallback as such a CPU would see it
        why = "the CPU reports none of avx512_bf16, amx_bf16 (bfloat16 would be emulated, slower)"
        monkeypatch.setattr(predict, "native_bf16", lambda: (False, why))
    image = nib.load(tiny_raw / "imagesTs" / "case004_0000.nii.gz")
    array, spacing = image.get_fdata(dtype=np.float32), image.header.get_zooms()[:3]
    full = load_model(tiny_model.model_folder, runtime="openvino" if _openvino_installed() else "auto")
    with pytest.warns(UserWarning, match="precision bfloat16 ignored, running float32"):
        half = load_model(tiny_model.model_folder, precision="bfloat16", runtime=full.runtime)
    assert (full.predictor.precision, half.predictor.precision) == ("float32", "float32")
    np.testing.assert_array_equal(half.predict_probabilities(array, spacing), full.predict_probabilities(array, spacing))
    with pytest.raises(ValueError, match="precision"):
        load_model(tiny_model.model_folder, precision="float16")


def _openvino_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


_KERNELS_CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from benchmark import kernels
    kernels.apply(sys.argv[1])  # a fresh process, as a local worker or a SLURM job: pinned before torch computes
    from benchmark.evaluation.inference import Predictor
    from benchmark.evaluation.scoring import inference_header
    from benchmark.training.baselines import BaselinePlan, register_trained, reproduce_command, training_recipe
    from benchmark.training.nnunet.train import train_model
    raw, work, out = (Path(argument) for argument in sys.argv[2:5])
    trained = train_model(raw, work, seed=3, **{run!r})
    plan = BaselinePlan("tiny-" + sys.argv[1], out / "converted", "specific", ("synth-ms",))
    command = reproduce_command("synthetic", plan, "quick", 3, training_recipe("synthetic", "quick"))
    submission = register_trained(plan, trained, "synthetic", "quick", seed=3, submissions_root=out / "submissions",
                                  reproduce=command)
    record = Predictor(submission, out / "predictions", device="cpu", threads=1).predict(
        raw / "imagesTs" / "case004_0000.nii.gz", "a" * 64)
    run_record = json.loads((trained.checkpoint.parent / "cordbench_run.json").read_text())
    print("RESULT " + json.dumps({{"weights": trained.weights_sha256, "kernels": trained.cpu_kernels,
                                  "run_record": run_record["cpu_kernels"], "reproduce": command,
                                  "manifest": (out / "submissions" / plan.submission_name / "submission.yaml").read_text(),
                                  "results": inference_header([record])}}))
    """
)


@pytest.mark.slow
def test_same_kernels_train_the_same_weights_in_another_process_and_the_opt_out_is_marked(
        tiny_raw, tiny_preprocessed, tiny_model, tmp_path):
    """Two processes with this suite's kernel setting (this one: ``tiny_model``, and a fresh one) train identical
    weights; a process with the other setting records it in the run record, the manifest, its reproduce command and
    the results header (and, where the CPU's own kernels are wider than the pin's, trains other weights)."""
    import yaml

    from benchmark import kernels

    same = kernels.current().requested
    other = "native" if same == "pinned" else "pinned"
    children = {}
    for setting in (same, other):
        converted = tmp_path / setting / "converted"  # what `cordbench convert` writes beside a training set
        converted.mkdir(parents=True)
        (converted / "provenance.json").write_text(json.dumps(
            {"cases": {"case000": {"split": "train", "dataset": "synth-ms", "subject": "sub-01"}}}))
        work = preprocessed_copy(tiny_preprocessed, tmp_path / setting / "work")
        code = _KERNELS_CHILD.format(run=TINY_RUN)
        children[setting] = subprocess.Popen(
            [sys.executable, "-c", code, setting, str(tiny_raw), str(work), str(tmp_path / setting)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
            env={**os.environ, "OMP_NUM_THREADS": "1"})
    results = {}
    for setting, child in children.items():
        stdout, stderr = child.communicate(timeout=600)
        assert child.returncode == 0, stderr[-3000:]
        [line] = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
        results[setting] = json.loads(line.removeprefix("RESULT "))

    assert results[same]["weights"] == tiny_model.weights_sha256
    assert results[same]["kernels"] == tiny_model.cpu_kernels == kernels.current().label
    labels = {setting: (kernels.PINNED_LABEL if setting == "pinned" and kernels.can_pin()[0]
                        else f"native-{kernels.cpu_isa()}") for setting in (same, other)}
    for setting, result in results.items():
        label = labels[setting]
        assert result["kernels"] == result["run_record"] == label
        assert yaml.safe_load(result["manifest"])["training"]["cpu_kernels"] == label
        assert (" --native-kernels" in result["reproduce"]) == (setting == "native")
        assert result["results"]["cpu_kernels"] == label  # auto ran PyTorch pinned, OpenVINO native
        assert result["results"]["runtime"] == ("torch" if label == kernels.PINNED_LABEL
                                                else "openvino" if _openvino_installed() else result["results"]["runtime"])
    if kernels.can_pin()[0] and kernels.cpu_isa() != kernels.PINNED_ISA:
        assert results["native"]["weights"] != results["pinned"]["weights"]  # the pin changes what this CPU computes


def test_predict_rejects_bad_inputs(tiny_model):
    model = load_model(tiny_model.model_folder)
    with pytest.raises(ValueError, match="must be 3D"):
        model.predict_probabilities(np.zeros((4, 4)), (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="spacing_ras"):
        model.predict_probabilities(np.zeros((8, 8, 2)), (1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="NaN"):
        model.predict_probabilities(np.full((8, 8, 2), np.nan), (1.0, 1.0, 1.0))


class Payload:
    """An arbitrary class: unpickling an instance needs a global lookup that weights_only refuses."""

    def __init__(self) -> None:
        self.note = "not a tensor"


def _copy_model(tiny_model: TrainedModel, target: Path) -> Path:
    shutil.copytree(tiny_model.model_folder, target)
    return target


def test_unsafe_checkpoint_is_refused_unless_trusted(tiny_model, tmp_path):
    folder = _copy_model(tiny_model, tmp_path / "model")
    path = folder / "fold_all" / "checkpoint_final.pth"
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["extra"] = Payload()
    torch.save(checkpoint, path)

    with pytest.raises(UnsafeCheckpointError, match=str(path)):
        load_model(folder)
    with pytest.raises(UnsafeCheckpointError):
        load_checkpoint_dict(path)
    trusted = load_model(folder, trust_checkpoint=True)
    array = np.zeros((32, 32, 2), dtype=np.float32)
    assert trusted.predict_probabilities(array, (0.8, 0.8, 3.0)).shape == (32, 32, 2)


def test_plans_naming_foreign_modules_are_refused(tiny_model, tmp_path):
    import json

    folder = _copy_model(tiny_model, tmp_path / "model")
    plans = json.loads((folder / "plans.json").read_text())
    plans["configurations"][QUICK_CONFIGURATION]["architecture"]["network_class_name"] = "os.system"
    (folder / "plans.json").write_text(json.dumps(plans))
    with pytest.raises(UnsafeCheckpointError, match="os.system"):
        load_model(folder)


def test_missing_model_files_are_named(tiny_model, tmp_path):
    folder = _copy_model(tiny_model, tmp_path / "model")
    (folder / "dataset.json").unlink()
    with pytest.raises(ModelFolderError, match="dataset.json: missing"):
        load_model(folder)
    with pytest.raises(FileNotFoundError, match="fold_3"):
        load_model(tiny_model.model_folder, folds=3)


def test_pickle_error_class_is_what_torch_raises(tmp_path):
    # load_checkpoint_dict relies on torch raising pickle.UnpicklingError for disallowed globals
    path = tmp_path / "x.pth"
    torch.save({"network_weights": {}, "x": Payload()}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)


# ------------------------------------------------------------------------------------------- resume (slow)

_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, {repo!r})
    from benchmark.training.nnunet.train import train_model
    if __name__ == "__main__":
        train_model(Path({raw!r}), Path({work!r}), seed=5, **{run!r})
    """
)


@pytest.mark.slow
def test_interrupted_training_resumes_from_its_checkpoint(tiny_raw, tiny_preprocessed, tmp_path):
    run = dict(TINY_RUN, num_epochs=4, iterations_per_epoch=3)
    work = preprocessed_copy(tiny_preprocessed, tmp_path / "interrupted")
    fold = work / "nnUNet_results" / tiny_raw.name / "CordbenchTrainer__nnUNetPlans__2d_quick" / "fold_all"
    code = _CHILD.format(repo=str(REPO), raw=str(tiny_raw), work=str(work), run=run)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not (fold / "checkpoint_latest.pth").exists() and child.poll() is None:
            time.sleep(0.01)
    finally:
        child.kill()  # by PID, like an interrupted job
        child.wait()
    killed_at = time.time()
    assert not (fold / "checkpoint_final.pth").exists(), "the child finished before it could be interrupted"
    interrupted = torch.load(fold / "checkpoint_latest.pth", weights_only=True)
    resume_epoch = interrupted["current_epoch"]
    assert 1 <= resume_epoch < run["num_epochs"]

    resumed = train_model(tiny_raw, work, seed=5, **run)
    final = torch.load(resumed.checkpoint, weights_only=True)
    assert final["current_epoch"] == run["num_epochs"]
    starts = final["logging"]["epoch_start_timestamps"]
    # epochs before the checkpoint were carried over, not re-run; the rest ran after the interruption
    assert starts[:resume_epoch] == interrupted["logging"]["epoch_start_timestamps"][:resume_epoch]
    assert all(t < killed_at for t in starts[:resume_epoch])
    assert all(t > killed_at for t in starts[resume_epoch:])

    # with in-process augmentation the resumed run is bit-identical to an uninterrupted one
    uninterrupted = train_model(tiny_raw, preprocessed_copy(tiny_preprocessed, tmp_path / "uninterrupted"), seed=5,
                                **run)
    assert uninterrupted.weights_sha256 == resumed.weights_sha256
    assert uninterrupted.checkpoint_sha256 != resumed.checkpoint_sha256  # the files hold timestamps
    reference = torch.load(uninterrupted.checkpoint, weights_only=True)
    assert final["logging"]["train_losses"] == reference["logging"]["train_losses"]
    for key, value in reference["network_weights"].items():
        assert torch.equal(final["network_weights"][key], value), key


@pytest.mark.slow
def test_changed_run_settings_start_afresh(tiny_raw, tiny_preprocessed, tmp_path):
    preprocessed_copy(tiny_preprocessed, tmp_path)
    first = train_model(tiny_raw, tmp_path, seed=1, **dict(TINY_RUN, num_epochs=2))
    second = train_model(tiny_raw, tmp_path, seed=2, **dict(TINY_RUN, num_epochs=2))
    first_weights = torch.load(first.checkpoint, weights_only=True)  # same path, overwritten by the new seed
    assert second.seed == 2 and second.weights_sha256 != first.weights_sha256
    assert first_weights["cordbench"]["run_settings"]["seed"] == 2
