"""benchmark.models.runtime: runtime selection, ONNX export cache, verification and fallback, threads, bfloat16
fence, deterministic masks and agreement with nnU-Net's predictor; the results header and the gate's speed rule.

Model tests share one tiny nnU-Net (2d_quick) trained for a few iterations on the synthetic dataset of
tests/nnunet_testdata.py; the rest use a small PlainConvUNet built here.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import get_args

import nibabel as nib
import numpy as np
import pytest
import torch
from dynamic_network_architectures.architectures.unet import PlainConvUNet

from benchmark import kernels
from benchmark.analysis.gate import compare_results, gate_json, gate_markdown, speed_check
from benchmark.models.runtime import hardware
from benchmark.models.runtime.export import export_onnx
from benchmark.models.runtime.runner import RuntimeFallbackWarning, VerifiedRunner
from benchmark.models.runtime.selection import RUNTIMES, RuntimeSelectionError, installed, select_runtime
from benchmark.evaluation.results import CaseResult, ResultsFile, load_results
from benchmark.data.submissions import InferenceSpec
from nnunet_testdata import dice, write_synthetic_raw_dataset

TILE = (32, 32)
ONNX_RUNTIMES = [name for name in ("onnxruntime", "openvino") if installed(name)]


def _network(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    network = PlainConvUNet(
        1, 3, (8, 16, 32), torch.nn.Conv2d, 3, (1, 2, 2), (2, 2, 2), 2, (2, 2), conv_bias=True,
        norm_op=torch.nn.InstanceNorm2d, norm_op_kwargs={"eps": 1e-5, "affine": True},
        nonlin=torch.nn.LeakyReLU, nonlin_kwargs={"inplace": True},
    )
    return network.eval()


def _runner(network: torch.nn.Module, runtime: str, cache: Path, sha: str = "a" * 64) -> VerifiedRunner:
    return VerifiedRunner(network, runtime=runtime, device=torch.device("cpu"), threads=1, bfloat16=False,
                          weights_sha256=sha, tile_shape=TILE, in_channels=1, cache_dir=cache)


# ------------------------------------------------------------------------------------------ selection


@pytest.mark.parametrize(
    ("present", "device", "expected"),
    [({"openvino", "onnxruntime"}, "cpu", "openvino"), ({"onnxruntime"}, "cpu", "onnxruntime"),
     (set(), "cpu", "torch"), ({"openvino", "onnxruntime"}, "cuda", "torch")],
)
def test_auto_picks_openvino_then_onnxruntime_then_torch_on_cpu_and_torch_on_cuda(present, device, expected):
    assert select_runtime("auto", device, is_installed=lambda name: name in present) == expected


def test_auto_is_torch_where_the_cpu_kernels_are_pinned():
    """OpenVINO keeps AVX-512 kernels for instance norm and ONNX Runtime has no cap at all, so only PyTorch gives the
    same masks on every AVX2 CPU; an explicit choice is kept (and recorded as unpinned: benchmark.kernels)."""
    everything = lambda name: True  # noqa: E731
    assert select_runtime("auto", "cpu", is_installed=everything, pinned_kernels=True) == "torch"
    assert select_runtime("openvino", "cpu", is_installed=everything, pinned_kernels=True) == "openvino"
    assert select_runtime("auto", "cpu", is_installed=everything, pinned_kernels=False) == "openvino"


def test_explicit_runtime_is_checked():
    assert select_runtime("onnxruntime", "cpu", is_installed=lambda name: True) == "onnxruntime"
    assert select_runtime("torch", "cuda") == "torch"
    with pytest.raises(RuntimeSelectionError, match="not installed.*pip install openvino"):
        select_runtime("openvino", "cpu", is_installed=lambda name: False)
    with pytest.raises(RuntimeSelectionError, match="CPU only"):
        select_runtime("openvino", "cuda", is_installed=lambda name: True)
    with pytest.raises(RuntimeSelectionError, match="unknown runtime 'tensorrt'"):
        select_runtime("tensorrt", "cpu")


def test_manifest_runtime_field_takes_the_runtimes_and_nothing_else():
    assert get_args(InferenceSpec.model_fields["runtime"].annotation) == RUNTIMES
    assert InferenceSpec().runtime == "auto"
    assert InferenceSpec(runtime="onnxruntime").runtime == "onnxruntime"
    with pytest.raises(ValueError, match="runtime"):
        InferenceSpec(runtime="tensorrt")


# ------------------------------------------------------------------------------------------ hardware


def test_default_threads_is_the_affinity_else_cpu_count(monkeypatch):
    monkeypatch.delenv(hardware.ENV_THREADS, raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    assert hardware.default_threads() == 3
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert hardware.default_threads() == 6
    monkeypatch.setenv(hardware.ENV_THREADS, "1")  # the local pool's workers, the test suite's processes
    assert hardware.default_threads() == 1
    monkeypatch.setenv(hardware.ENV_THREADS, "two")
    with pytest.raises(ValueError, match=r"\$CORDBENCH_THREADS='two': expected a whole number of threads >= 1"):
        hardware.default_threads()


@pytest.mark.parametrize(("flags", "native"), [("fpu sse avx512f avx512_bf16", True), ("fpu amx_bf16 avx2", True),
                                               ("fpu sse avx2 avx512f", False)])
def test_native_bf16_reads_the_cpu_flags(monkeypatch, flags, native):
    monkeypatch.delenv(kernels.ENV_HOST, raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)  # about the flags alone, not an ISA cap
    monkeypatch.setattr(kernels, "current", lambda: kernels.KernelSetting("native", "native-avx512", "asked"))
    found, why = _native_bf16_with_flags(monkeypatch, flags)
    assert found is native
    assert ("reports" in why) and (("bf16" in why) if native else "emulated" in why)


@pytest.mark.parametrize(("host", "label", "reason"), [
    (kernels.LEAST_CAPABLE, "native-avx512", "CORDBENCH_HOST=least-capable: treated as a CPU without native bfloat16"),
    (None, kernels.PINNED_LABEL, "oneDNN is capped at AVX2 (pinned CPU kernels), so bfloat16 would be emulated")])
def test_native_bf16_is_absent_on_the_least_capable_host_and_under_the_avx2_cap(monkeypatch, host, label, reason):
    """The flags of a bfloat16 CPU, but the process computes as an AVX2-only CPU: no bfloat16 (OpenVINO asked for
    it under the cap failed to compile the network: "could not create a primitive descriptor for the
    deconvolution forward propagation primitive")."""
    if host:
        monkeypatch.setenv(kernels.ENV_HOST, host)
    else:
        monkeypatch.delenv(kernels.ENV_HOST, raising=False)
    monkeypatch.setattr(kernels, "current", lambda: kernels.KernelSetting("pinned", label, "test"))
    found, why = _native_bf16_with_flags(monkeypatch, "fpu avx2 avx512f avx512_bf16")
    assert found is False and why.startswith(reason) and "avx512_bf16" in why


def _native_bf16_with_flags(monkeypatch, flags: str) -> tuple[bool, str]:
    monkeypatch.setattr(hardware, "_cpuinfo_field", lambda name: flags if name == "flags" else None)
    hardware.native_bf16.cache_clear()
    try:
        return hardware.native_bf16()
    finally:
        hardware.native_bf16.cache_clear()


@pytest.mark.parametrize(("cap", "onednn_bf16", "native"), [("AVX2", False, False), ("AVX512_CORE_BF16", True, True),
                                                           ("ALL", False, True)])
def test_a_onednn_isa_cap_below_bfloat16_makes_it_not_native(monkeypatch, cap, onednn_bf16, native):
    """ONEDNN_MAX_CPU_ISA=AVX2 makes this CPU compute what an AVX2-only one computes: bfloat16 is emulated there."""
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    monkeypatch.delenv(kernels.ENV_HOST, raising=False)  # the test is about the cap alone, not the host mode
    monkeypatch.setattr(kernels, "current", lambda: kernels.KernelSetting("native", "native-avx512", "asked"))
    monkeypatch.setattr(hardware, "_onednn_has_bf16", lambda: onednn_bf16)
    found, why = _native_bf16_with_flags(monkeypatch, "fpu avx2 avx512f avx512_bf16")
    assert found is native
    assert (f"ONEDNN_MAX_CPU_ISA={cap} keeps oneDNN from using it" in why) is (not native)


def test_bfloat16_is_ignored_with_a_message_without_native_support(monkeypatch):
    from benchmark.models.nnunet import predict

    cpu = torch.device("cpu")
    monkeypatch.setattr(predict, "native_bf16", lambda: (False, "the CPU reports none of avx512_bf16, amx_bf16"))
    with pytest.warns(UserWarning, match="bfloat16 ignored.*avx512_bf16"):
        assert predict._fenced_precision("bfloat16", cpu, "openvino") == "float32"
    monkeypatch.setattr(predict, "native_bf16", lambda: (True, "the CPU reports avx512_bf16"))
    assert predict._fenced_precision("bfloat16", cpu, "openvino") == "bfloat16"
    with pytest.warns(UserWarning, match="ONNX Runtime"):
        assert predict._fenced_precision("bfloat16", cpu, "onnxruntime") == "float32"
    assert predict._fenced_precision("float32", cpu, "openvino") == "float32"


# ------------------------------------------------------------------------------------------ export, verification


@pytest.mark.skipif(not ONNX_RUNTIMES, reason="neither onnxruntime nor openvino is installed")
def test_export_is_cached_and_reused_without_exporting_again(tmp_path, monkeypatch):
    network = _network()
    first = export_onnx(network, weights_sha256="a" * 64, tile_shape=TILE, in_channels=1, cache_dir=tmp_path)
    assert not first.reused and first.path.is_file()
    meta = json.loads(first.path.with_suffix(".json").read_text())
    assert meta["opset"] >= 17 and meta["weights_sha256"] == "a" * 64 and meta["torch"] == torch.__version__

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(torch.onnx, "export", no_export)
    runner = _runner(network, ONNX_RUNTIMES[0], tmp_path)
    assert runner.exported is not None and runner.exported.reused and runner.exported.path == first.path
    assert runner.name == ONNX_RUNTIMES[0] and runner.fallback_reason is None
    with pytest.raises(AssertionError, match="exported again"):  # other weights: another key, another export
        export_onnx(network, weights_sha256="b" * 64, tile_shape=TILE, in_channels=1, cache_dir=tmp_path)


@pytest.mark.parametrize("runtime", ONNX_RUNTIMES)
def test_runtime_logits_match_torch_on_a_dynamic_batch(tmp_path, runtime):
    network = _network()
    runner = _runner(network, runtime, tmp_path)
    tiles = torch.randn((5, 1, *TILE), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = network(tiles)
    logits = runner.run(tiles)
    assert runner.name == runtime and logits.shape == (5, 2, *TILE)  # two classes
    assert float((logits - reference).abs().max()) < 1e-3
    assert [check.ok for check in runner.checks] == [True, True]  # random batch at load, first real batch


@pytest.mark.parametrize("runtime", ONNX_RUNTIMES)
def test_a_wrong_export_falls_back_to_torch_with_the_max_difference(tmp_path, runtime):
    stale = export_onnx(_network(seed=1), weights_sha256="a" * 64, tile_shape=TILE, in_channels=1,
                        cache_dir=tmp_path)  # other weights cached under this key: a stale or tampered cache
    network = _network(seed=0)
    with pytest.warns(RuntimeFallbackWarning, match=r"max \|logit difference\| [0-9.e+-]+ > .* fixed random batch"):
        runner = _runner(network, runtime, tmp_path)
    assert runner.exported.path == stale.path and runner.name == "torch"
    tiles = torch.randn((2, 1, *TILE))
    with torch.no_grad():
        assert torch.equal(runner.run(tiles), network(tiles))


@pytest.mark.parametrize("runtime", ONNX_RUNTIMES)
def test_a_mismatch_on_the_first_real_batch_falls_back_and_returns_torch_logits(tmp_path, runtime):
    network = _network()
    runner = _runner(network, runtime, tmp_path)
    correct = runner.backend.run
    runner.backend.run = lambda tiles: correct(tiles) + 0.5
    tiles = torch.randn((3, 1, *TILE))
    with pytest.warns(RuntimeFallbackWarning, match="first real batch"):
        logits = runner.run(tiles)
    with torch.no_grad():
        assert torch.equal(logits, network(tiles))
    assert runner.name == "torch" and "0.5" in runner.fallback_reason


# ------------------------------------------------------------------------------------------ results header, gate


def _case(index: int, seconds: float | None) -> CaseResult:
    case_id = f"synth-a:sub-{index:03d}/anat/sub-{index:03d}_T2w.nii.gz"
    return CaseResult(case_id=case_id, dataset="synth-a", subject=f"sub-{index:03d}", contrast="T2w",
                      image_sha256=hashlib.sha256(case_id.encode()).hexdigest(), suite_role="in-domain",
                      dataset_in_training=True, subject_in_training=False, dice=0.9, nsd=0.9, hd95=1.0, rve=0.01,
                      csa_error=0.1, runtime_s=seconds)


def _results(name: str, seconds: list[float | None], cpu: str | None = "AMD EPYC 9654", threads: int = 2,
             runtime: str = "openvino") -> ResultsFile:
    return ResultsFile(submission=name, suite="synthetic", benchmark_version="v1", cordbench_version="0.1.0",
                       model_sha256="0" * 64, model_type="nnunet", declared_training_datasets=["synth-a"],
                       created_utc="2026-01-01T00:00:00Z", runtime=runtime, threads=threads, cpu_model=cpu,
                       inference_device="cpu", cases=[_case(i, s) for i, s in enumerate(seconds)])


def test_median_seconds_and_hardware_of_a_results_file():
    results = _results("a", [4.0, 1.0, None, 2.0, 3.0])
    assert results.median_runtime_s() == 2.5
    assert results.hardware() == "CPU: AMD EPYC 9654, 2 threads"
    assert _results("b", [None]).median_runtime_s() is None
    assert _results("c", [1.0], cpu=None).hardware() is None


@pytest.mark.parametrize(("candidate_seconds", "verdict"), [([2.5, 2.5, 2.5], "fail"), ([2.3, 2.4, 2.3], "pass"),
                                                             ([1.0, 1.0, 1.0], "pass")])
def test_gate_fails_a_candidate_more_than_20_percent_slower_on_the_same_hardware(candidate_seconds, verdict):
    baseline = _results("base", [2.0, 2.0, 2.0])
    candidate = _results("cand", candidate_seconds, runtime="torch")  # another runtime: same hardware
    report = compare_results(candidate, baseline, max_slowdown=0.2)
    assert report.speed.verdict == verdict
    assert report.passed is (verdict == "pass")
    assert f"Speed ({verdict.upper()})" in gate_markdown(report)
    assert gate_json(report)["speed"]["verdict"] == verdict


@pytest.mark.parametrize(("cpu", "threads", "why"), [("Intel Xeon 8480", 2, "different hardware"),
                                                     ("AMD EPYC 9654", 8, "different hardware"),
                                                     (None, 2, "unknown")])
def test_gate_speed_on_other_hardware_is_not_comparable_and_does_not_fail(cpu, threads, why):
    report = compare_results(_results("cand", [9.0, 9.0], cpu=cpu, threads=threads), _results("base", [1.0, 1.0]),
                             max_slowdown=0.2)
    assert report.speed.verdict == "not comparable" and why in report.speed.reason
    assert report.passed


def _on_gpu(name: str, seconds: list[float], gpu: str | None = "NVIDIA H100 80GB HBM3") -> ResultsFile:
    return _results(name, seconds, runtime="torch").model_copy(update={"inference_device": "cuda", "gpu_model": gpu})


def test_gate_compares_gpu_with_the_same_gpu_and_never_cpu_with_gpu():
    slower = compare_results(_on_gpu("cand", [1.3, 1.3]), _on_gpu("base", [1.0, 1.0]), max_slowdown=0.2)
    assert slower.speed.verdict == "fail" and slower.speed.hardware == "GPU: NVIDIA H100 80GB HBM3"
    # the same CPU model in both headers does not make a GPU run comparable with a CPU run
    for candidate, baseline in ((_on_gpu("cand", [9.0]), _results("base", [1.0])),
                                (_results("cand", [9.0]), _on_gpu("base", [1.0])),
                                (_on_gpu("cand", [9.0], gpu="NVIDIA H200"), _on_gpu("base", [1.0])),
                                (_on_gpu("cand", [9.0], gpu=None), _on_gpu("base", [1.0]))):
        report = compare_results(candidate, baseline, max_slowdown=0.2)
        assert report.speed.verdict == "not comparable" and report.passed, report.speed.reason


def test_gate_without_max_slowdown_ignores_speed():
    report = compare_results(_results("cand", [9.0, 9.0]), _results("base", [1.0, 1.0]))
    assert report.speed is None and report.passed
    assert speed_check(_results("cand", [None]), _results("base", [1.0]), 0.2).verdict == "not comparable"


def test_results_files_without_the_runtime_fields_still_load(tmp_path):
    raw = _results("old", [1.0]).model_dump(mode="json")
    for key in ("runtime", "threads", "cpu_model", "inference_device"):
        raw.pop(key)
    path = tmp_path / "old.json"
    path.write_text(json.dumps(raw))
    loaded = load_results(path)
    assert loaded.runtime is None and loaded.cpu_model is None and loaded.hardware() is None


# ------------------------------------------------------------------------------------------ nnU-Net model


PATCH = [32, 32]
ARCHITECTURE = {
    "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
    "arch_kwargs": {
        "n_stages": 3, "features_per_stage": [8, 16, 32], "conv_op": "torch.nn.modules.conv.Conv2d",
        "kernel_sizes": [[3, 3]] * 3, "strides": [[1, 1], [2, 2], [2, 2]], "n_conv_per_stage": [2, 2, 2],
        "n_conv_per_stage_decoder": [2, 2], "conv_bias": True,
        "norm_op": "torch.nn.modules.instancenorm.InstanceNorm2d", "norm_op_kwargs": {"eps": 1e-5, "affine": True},
        "dropout_op": None, "dropout_op_kwargs": None, "nonlin": "torch.nn.LeakyReLU",
        "nonlin_kwargs": {"inplace": True},
    },
    "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
}


def _plans() -> dict:
    """nnU-Net plans with one small 2D configuration for the synthetic volumes (spacing 0.8 x 0.8 x 3 mm)."""
    resampling = {"resampling_fn_data": "resample_data_or_seg_to_shape",
                  "resampling_fn_data_kwargs": {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None},
                  "resampling_fn_seg": "resample_data_or_seg_to_shape",
                  "resampling_fn_seg_kwargs": {"is_seg": True, "order": 1, "order_z": 0, "force_separate_z": None},
                  "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
                  "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, "order_z": 0,
                                                         "force_separate_z": None}}
    return {
        "dataset_name": "Dataset990_TinySynth", "plans_name": "nnUNetPlans", "label_manager": "LabelManager",
        "image_reader_writer": "NibabelIO", "experiment_planner_used": "ExperimentPlanner",
        "original_median_spacing_after_transp": [3.0, 0.8, 0.8], "original_median_shape_after_transp": [8, 56, 64],
        "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2],
        "foreground_intensity_properties_per_channel": {"0": {"max": 450.0, "mean": 400.0, "median": 400.0,
                                                              "min": 350.0, "percentile_00_5": 360.0,
                                                              "percentile_99_5": 440.0, "std": 15.0}},
        "configurations": {"2d": {
            "data_identifier": "nnUNetPlans_2d", "preprocessor_name": "DefaultPreprocessor", "batch_size": 8,
            "patch_size": PATCH, "median_image_size_in_voxels": [56.0, 64.0], "spacing": [0.8, 0.8],
            "normalization_schemes": ["ZScoreNormalization"], "use_mask_for_norm": [False], "batch_dice": True,
            "architecture": ARCHITECTURE, **resampling,
        }},
    }


def _train_small_network(images: list[Path], labels: list[Path], steps: int = 80) -> dict:
    """A few Adam steps on z-scored 32x32 crops of the axial slices: enough for clear, not borderline, masks."""
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    torch.manual_seed(0)
    network = get_network_from_plans(ARCHITECTURE["network_class_name"], ARCHITECTURE["arch_kwargs"],
                                     ARCHITECTURE["_kw_requires_import"], 1, 2, deep_supervision=False)
    slices, targets = [], []
    for image_path, label_path in zip(images, labels):
        image = np.asarray(nib.load(image_path).dataobj, dtype=np.float32).transpose(2, 1, 0)  # z, y, x
        image = (image - image.mean()) / max(float(image.std()), 1e-8)
        slices.append(image)
        targets.append(np.asarray(nib.load(label_path).dataobj, dtype=np.int64).transpose(2, 1, 0))
    data = torch.from_numpy(np.concatenate(slices))[:, None]
    target = torch.from_numpy(np.concatenate(targets))
    generator = np.random.default_rng(0)
    optimizer = torch.optim.Adam(network.parameters(), lr=3e-3)
    for _ in range(steps):
        index = generator.integers(0, data.shape[0], 16)
        y0 = int(generator.integers(0, data.shape[2] - PATCH[0] + 1))
        x0 = int(generator.integers(0, data.shape[3] - PATCH[1] + 1))
        crop = (slice(None), slice(None), slice(y0, y0 + PATCH[0]), slice(x0, x0 + PATCH[1]))
        loss = torch.nn.functional.cross_entropy(network(data[index][crop]), target[index][crop[0:1] + crop[2:]])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {name: tensor.detach().clone() for name, tensor in network.state_dict().items()}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """An nnU-Net model folder (plans, dataset.json, fold_all checkpoint) without nnU-Net's planner and trainer,
    whose multiprocessing costs minutes on a busy 2-core machine; the checkpoint has nnU-Net's layout."""
    raw = write_synthetic_raw_dataset(tmp_path_factory.mktemp("runtime_raw"), n_train=4, n_test=2)
    folder = tmp_path_factory.mktemp("runtime_model") / "CordbenchTrainer__nnUNetPlans__2d"
    (folder / "fold_all").mkdir(parents=True)
    (folder / "plans.json").write_text(json.dumps(_plans()))
    shutil.copyfile(raw / "dataset.json", folder / "dataset.json")
    weights = _train_small_network(sorted((raw / "imagesTr").glob("*.nii.gz")),
                                   sorted((raw / "labelsTr").glob("*.nii.gz")))
    torch.save({"network_weights": weights, "init_args": {"configuration": "2d"},
                "trainer_name": "CordbenchTrainer", "inference_allowed_mirroring_axes": [0, 1]},
               folder / "fold_all" / "checkpoint_final.pth")
    return folder, sorted((raw / "imagesTs").glob("*.nii.gz"))


def _masks(model, images: list[Path]) -> list[np.ndarray]:
    masks = []
    for path in images:
        image = nib.load(path)
        probabilities = model.predict_probabilities(image.get_fdata(dtype=np.float32), image.header.get_zooms()[:3])
        masks.append((probabilities >= 0.5).astype(np.uint8))
    return masks


@pytest.mark.slow
def test_runtimes_agree_with_nnunet_predictor_and_rerun_byte_identical(tiny_model, tmp_path):
    """Every runtime's masks: Dice >= 0.999 per case against nnU-Net's own predictor (same weights, same
    mirroring), and byte-identical when the same runtime and thread count runs again on a fresh load."""
    from benchmark.models.nnunet.predict import load_model, nnunet_reference_predictor

    folder, images = tiny_model
    reference_model = load_model(folder, runtime="torch", num_threads=1, use_mirroring=False)
    torch.set_num_threads(1)
    nnunet = nnunet_reference_predictor(reference_model, use_mirroring=False)
    out = tmp_path / "nnunet"
    out.mkdir()
    nnunet.predict_from_files_sequential([[str(path)] for path in images], str(out), save_probabilities=False)
    expected = [np.asarray(nib.load(out / path.name.replace("_0000", "")).dataobj) > 0 for path in images]
    assert all(mask.sum() > 50 for mask in expected)

    cache = tmp_path / "cache"
    for runtime in ["torch", *ONNX_RUNTIMES]:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeFallbackWarning)
            first = load_model(folder, runtime=runtime, num_threads=1, use_mirroring=False, runtime_cache_dir=cache)
        assert first.runtime == runtime and first.num_threads == 1
        masks = _masks(first, images)
        for mask, reference in zip(masks, expected):
            assert dice(mask, reference) >= 0.999, runtime
        again = _masks(load_model(folder, runtime=runtime, num_threads=1, use_mirroring=False,
                                  runtime_cache_dir=cache), images)
        assert [mask.tobytes() for mask in again] == [mask.tobytes() for mask in masks], runtime
    assert len(list(cache.glob("*.onnx"))) == (1 if ONNX_RUNTIMES else 0)  # exported once, reused after


def test_leaderboard_shows_median_seconds_with_the_device_and_runtime():
    from leaderboard import data as board_data, tables

    measured = _results("fast", [3.0, 1.0, 2.0])
    old = _results("old", [5.0, 5.0, 5.0], cpu=None)
    on_gpu = _results("gpu", [0.5, 0.5, 0.5], runtime="torch").model_copy(
        update={"inference_device": "cuda", "gpu_model": "NVIDIA H100 80GB HBM3"})
    unnamed_gpu = _results("gpu-old", [0.5]).model_copy(update={"inference_device": "cuda"})
    int8 = _results("int8", [1.0]).model_copy(update={"precision": "int8"})
    table = tables.build_main_table(board_data.cases_from_results([measured, old, on_gpu, unnamed_gpu, int8]),
                                    n_resamples=200)
    column = dict(zip(table["submission"], table["s/volume (device, runtime)"]))
    assert column == {"fast": "2.00 (CPU: AMD EPYC 9654, 2 threads, openvino)", "old": "",
                      "gpu": "0.50 (GPU: NVIDIA H100 80GB HBM3, torch)", "gpu-old": "",
                      "int8": "1.00 (CPU: AMD EPYC 9654, 2 threads, openvino, int8)"}


@pytest.mark.slow
def test_predictor_records_runtime_and_threads_and_caches_each_runtime_apart(tiny_model, tmp_path):
    from benchmark.evaluation.inference import Predictor
    from benchmark.io import sha256_file
    from benchmark.evaluation.scoring import inference_header
    from benchmark.data.submissions import Submission

    folder, images = tiny_model
    submission = Submission.model_validate({
        "name": "tiny", "description": "tiny", "authors": ["test"], "licence": "MIT",
        "model": {"type": "nnunet", "folder": str(folder), "configuration": "2d",
                  "sha256": sha256_file(folder / "fold_all" / "checkpoint_final.pth")},
    })
    submission.folder = tmp_path
    runtime = ONNX_RUNTIMES[0] if ONNX_RUNTIMES else "torch"
    predictor = Predictor(submission, tmp_path / "predictions", device="cpu", runtime=runtime, threads=1)
    record = predictor.predict(images[0], "a" * 64)
    assert record.ok and (record.runtime, record.threads, record.device) == (runtime, 1, "cpu")
    header = inference_header([record])
    assert header["runtime"] == runtime and header["threads"] == 1 and header["cpu_model"] == hardware.cpu_model()
    assert header["cpu_kernels"] == record.cpu_kernels == kernels.label_for(runtime, "cpu")
    assert Predictor(submission, tmp_path / "predictions", runtime="torch").cache_dir != predictor.cache_dir
    assert not list(folder.rglob("*.onnx"))  # never planted in the model folder (imports are re-checked)
    assert len(list((tmp_path / "predictions" / "runtime").glob("*.onnx"))) == (runtime != "torch")
    assert inference_header([]) == {"cpu_model": hardware.cpu_model()}  # e.g. command models: CPU only


@pytest.mark.skipif("openvino" not in ONNX_RUNTIMES, reason="OpenVINO is not installed")
def test_openvino_threads_are_not_pinned_to_cores(tmp_path):
    """Pinned (OpenVINO's default), two worker processes with one thread each ran on the same core; the speed-up
    itself is measured in tests/benchmarks/test_bench_tile_forward.py."""
    runner = _runner(_network(), "openvino", tmp_path)
    assert runner.name == "openvino"
    compiled = runner.backend.compiled
    assert compiled.get_property("ENABLE_CPU_PINNING") is False
    assert compiled.get_property("INFERENCE_NUM_THREADS") == 1
