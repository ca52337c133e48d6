"""CPU inference: nnU-Net's own ``nnUNetPredictor`` vs cordbench on torch, ONNX Runtime and OpenVINO.

Volumes: the two held-out gmchallenge scans (sub-9709Ses1/Ses2, T2*w 256x192x20, never trained on). Models:
the quick 2D profile (``2d_quick``, 10 epochs x 12 iterations, as in test_bench_nnunet_predict.py) and a small 3D
model: nnU-Net's ``3d_fullres`` configuration of the same plans with 4 stages of 16-128 features and 16x128x128
tiles (nnU-Net's own 3d_fullres here, 7 stages at 20x320x256, takes minutes per tile on this CPU), trained for
a few Adam steps on z-scored patches of the training scans (its speed does not depend on how long it trained). Every predictor uses the same weights, the same mirroring (nnU-Net's default, on, for 2D; off
for 3D, where it would multiply the run time by 8) and the same thread count (torch, runtime and nnU-Net's
resampling), and goes file -> mask:

- nnU-Net: ``predict_from_files_sequential`` (NibabelIO read, preprocessing, its sliding window, export);
- cordbench: nibabel read + canonical RAS, ``predict_probabilities``, threshold, .nii.gz write.

**The target is physical.** At equal settings (same tiles, mirroring, threads, float32) both predictors run the
same network forwards, so cordbench's end-to-end ratio over nnUNetPredictor is bounded by how much faster its
runtime computes one tile's forward than nnU-Net's call does (eager torch, one tile per call): the *ceiling*,
measured in the same run, right before the timed round, on this CPU (``_network_call_ceiling``). Where the
network is not all of nnU-Net's time (3D without mirroring), the bound is that ratio applied to the network's
share only (``_end_to_end_bound``: the forwards both make, counted, times each side's call time; the rest is
nnU-Net's own code on both sides). Each float32 row must reach >= 0.9 x its bound, with masks at Dice >= 0.999
per case against nnUNetPredictor's.

**Levers beyond float32**, each opt-in, each its own row, not held to the ceiling (another amount of work or
another precision), each held to a stated Dice against nnUNetPredictor's float32 masks:

- ``<runtime>-batch1``: one tile per forward (``tile_batch_size=1``) instead of cordbench's default batches
  (2**17 voxels per forward), to show what batching gives each runtime; same precision, Dice >= 0.999 (2D only:
  the 3D tiles already go one per forward);
- ``<runtime>-int8``: int8 post-training quantization with ONNX Runtime's quantize_static, calibrated on the
  six TRAINING scans only (``precision="int8"``), run on ONNX Runtime and on OpenVINO; Dice >= INT8_DICE (2D);
- ``openvino-bf16``: bfloat16 where the CPU computes it natively; Dice >= 0.998 (2D).

**Measured in one run.** Each row times nnUNetPredictor and cordbench alternately, volume by volume (nnU-Net on
volume 1, cordbench on volume 1, nnU-Net on volume 2, ...), right after the ceiling, so that both sides see the
same load; the clock is the process's CPU time (user + sys) with one thread (``CORDBENCH_BENCH_THREADS=1``:
insensitive to other processes on a shared machine) and wall time with several (then the machine must be idle).
Both are recorded; no untimed volume (the ceiling's calls warm the kernels up). The small 3D model is barely trained (probabilities near 0.5), so lower-precision rows say
little there and are skipped with that reason. Every row records its numbers and the CPU (model and the
oneDNN ISA cap, ``ONEDNN_MAX_CPU_ISA``: set it to AVX2 to compute what an AVX2-only CPU computes) in
``benchmark.extra_info``; docs/performance.md holds the measurements.

    .venv/bin/pytest tests/benchmarks/test_bench_runtimes.py --benchmark-enable -s
    ONEDNN_MAX_CPU_ISA=AVX2 .venv/bin/pytest tests/benchmarks/test_bench_runtimes.py --benchmark-enable -s

Set CORDBENCH_BENCH_WORK to a folder to keep the trained models between runs.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from benchmark.models.runtime.hardware import cpu_model, default_threads, native_bf16
from benchmark.models.runtime.selection import installed
from benchmark.models.nnunet.predict import NnunetModel, load_model, nnunet_reference_predictor
from benchmark.training.nnunet.train import train_model

CASES = ("sub9709Ses1", "sub9709Ses2")
CEILING_FRACTION = 0.9  # end to end must reach this share of the network-call ratio measured in the same run
INT8_DICE = 0.99  # int8 masks vs nnUNetPredictor's float32 masks, per case (docs/performance.md)
# Same count for every predictor; CORDBENCH_BENCH_THREADS overrides the default (the cores available).
THREADS = int(os.environ.get("CORDBENCH_BENCH_THREADS", default_threads()))
RUNTIMES = ["torch", *(name for name in ("onnxruntime", "openvino") if installed(name))]
# OpenVINO in bfloat16 (opt-in, `--precision bfloat16`) where the CPU computes it natively: a different precision
# than nnU-Net's float32, so it is reported beside the float32 runs and not counted for the target
BF16 = ["openvino-bf16"] if installed("openvino") and native_bf16()[0] else []
INT8 = [f"{name}-int8" for name in RUNTIMES if name != "torch"]
BATCH1 = [f"{name}-batch1" for name in RUNTIMES]
ISA = os.environ.get("ONEDNN_MAX_CPU_ISA", "native")
MIRRORING = {"2d": True, "3d": False}
DICE_VS_NNUNET = 0.999
DICE_VS_NNUNET_BF16 = 0.998  # bfloat16 keeps 8 bits of mantissa: a few boundary voxels flip (0.99897 measured)

pytestmark = [pytest.mark.slow, pytest.mark.real_data]


@pytest.fixture(scope="module", autouse=True)
def timed_runs_only(request):
    """These models are trained and timed for the comparison only: without --benchmark-enable there is nothing
    to measure (the agreement with nnUNetPredictor is asserted in tests/test_runtime.py)."""
    if request.config.getoption("benchmark_disable") and not request.config.getoption("benchmark_enable"):
        pytest.skip("timing benchmark: run with --benchmark-enable")


import nnunet_testdata as testdata  # noqa: E402  (tests/ is on sys.path: its conftest.py)
# the clock every ratio uses: CPU time of this process with one thread (robust to other load), else wall time
CLOCK = "cpu" if THREADS == 1 else "wall"


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    chosen = os.environ.get("CORDBENCH_BENCH_WORK")
    return Path(chosen) if chosen else tmp_path_factory.mktemp("bench_runtimes")


@pytest.fixture(scope="module")
def raw(work) -> Path:
    return testdata.build_raw_dataset(work / "raw")


SMALL_3D = {"n_stages": 4, "features_per_stage": [16, 32, 64, 128],
            "kernel_sizes": [[1, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]],
            "strides": [[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2]], "n_conv_per_stage": [2, 2, 2, 2],
            "n_conv_per_stage_decoder": [2, 2, 2]}
SMALL_3D_PATCH = [16, 128, 128]


def _small_3d_model(raw: Path, quick_folder: Path, folder: Path, steps: int = 12) -> Path:
    """Model folder (plans, dataset.json, fold_all checkpoint in nnU-Net's layout) of the small 3D network."""
    import json

    import torch
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    checkpoint = folder / "fold_all" / "checkpoint_final.pth"
    if checkpoint.is_file():
        return folder
    plans = json.loads((quick_folder / "plans.json").read_text())
    config = dict(plans["configurations"]["3d_fullres"])
    config["patch_size"] = SMALL_3D_PATCH
    config["spacing"] = plans["original_median_spacing_after_transp"]
    config["architecture"] = {**config["architecture"],
                              "arch_kwargs": {**config["architecture"]["arch_kwargs"], **SMALL_3D}}
    plans["configurations"] = {"3d_small": config}
    arch = config["architecture"]
    torch.manual_seed(0)
    network = get_network_from_plans(arch["network_class_name"], arch["arch_kwargs"], arch["_kw_requires_import"],
                                     1, 2, deep_supervision=False)
    volumes = []
    for image_path in sorted((raw / "imagesTr").glob("*.nii.gz")):
        image = np.asarray(nib.load(image_path).dataobj, dtype=np.float32).transpose(2, 1, 0)
        label = np.asarray(nib.load(raw / "labelsTr" / image_path.name.replace("_0000", "")).dataobj).transpose(2, 1, 0)
        volumes.append(((image - image.mean()) / max(float(image.std()), 1e-8), label.astype(np.int64)))
    generator = np.random.default_rng(0)
    optimizer = torch.optim.Adam(network.parameters(), lr=3e-3)
    for _ in range(steps):
        image, label = volumes[int(generator.integers(len(volumes)))]
        starts = [int(generator.integers(0, max(1, size - patch + 1))) for size, patch in zip(image.shape, SMALL_3D_PATCH)]
        crop = tuple(slice(start, start + patch) for start, patch in zip(starts, SMALL_3D_PATCH))
        x, y = torch.from_numpy(image[crop].copy())[None, None], torch.from_numpy(label[crop].copy())[None]
        pad = [p for size, patch in zip(reversed(x.shape[2:]), reversed(SMALL_3D_PATCH)) for p in (0, patch - size)]
        loss = torch.nn.functional.cross_entropy(network(torch.nn.functional.pad(x, pad)),
                                                 torch.nn.functional.pad(y, pad))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    (folder / "plans.json").write_text(json.dumps(plans))
    shutil.copyfile(quick_folder / "dataset.json", folder / "dataset.json")
    torch.save({"network_weights": network.state_dict(), "init_args": {"configuration": "3d_small"},
                "trainer_name": "CordbenchTrainer", "inference_allowed_mirroring_axes": [0, 1, 2]}, checkpoint)
    return folder


@pytest.fixture(scope="module")
def models(raw, work) -> dict[str, Path]:
    quick = train_model(raw, work / "train", num_epochs=10, iterations_per_epoch=12, seed=0)
    small_3d = _small_3d_model(raw, quick.model_folder, work / "small3d" / "CordbenchTrainer__nnUNetPlans__3d_small")
    return {"2d": quick.model_folder, "3d": small_3d}


@pytest.fixture(scope="module")
def images(raw) -> list[Path]:
    # CORDBENCH_BENCH_VOLUMES=1 times the first volume only (a quicker, noisier run on a busy machine)
    count = int(os.environ.get("CORDBENCH_BENCH_VOLUMES", len(CASES)))
    paths = [raw / "imagesTs" / f"{case}_0000.nii.gz" for case in CASES[:count]]
    assert all(nib.load(path).shape == (256, 192, 20) for path in paths)
    return paths


def _nnunet_masks(model: NnunetModel, images: list[Path], out: Path, mirroring: bool) -> list[np.ndarray]:
    predictor = nnunet_reference_predictor(model, use_mirroring=mirroring)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    predictor.predict_from_files_sequential([[str(path)] for path in images], str(out), save_probabilities=False)
    return [np.asarray(nib.load(out / path.name.replace("_0000", "")).dataobj) > 0 for path in images]


def _cordbench_masks(model: NnunetModel, images: list[Path], out: Path) -> list[np.ndarray]:
    out.mkdir(parents=True, exist_ok=True)
    masks = []
    for path in images:
        case = path.name.replace("_0000.nii.gz", "")
        image = nib.as_closest_canonical(nib.load(path))
        probabilities = model.predict_probabilities(image.get_fdata(dtype=np.float32), image.header.get_zooms()[:3])
        mask = probabilities > 0.5
        nib.save(nib.Nifti1Image(mask.astype(np.uint8), image.affine), out / f"{case}.nii.gz")
        masks.append(mask)
    return masks


def _clock() -> float:
    return time.process_time() if CLOCK == "cpu" else time.perf_counter()


def _interleaved(benchmark, runs: dict, images: list[Path]) -> dict[str, dict]:
    """Each predictor of ``runs`` on each image in turn (image by image, so that both see the same load):
    per predictor its masks and its seconds per volume on the wall clock and in CPU time."""
    results = {name: {"masks": [], "wall": 0.0, "cpu": 0.0} for name in runs}

    def once():
        for image in images:
            for name, run in runs.items():
                wall, cpu = time.perf_counter(), time.process_time()
                results[name]["masks"] += run([image])
                results[name]["wall"] += time.perf_counter() - wall
                results[name]["cpu"] += time.process_time() - cpu

    benchmark.pedantic(once, rounds=1, iterations=1)
    for result in results.values():
        result["wall"] /= len(images)
        result["cpu"] /= len(images)
    return results


def _median_seconds(call, calls: int, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = _clock()
        for _ in range(calls):
            call()
        times.append((_clock() - started) / calls)
    return times


def _network_call_ceiling(model: NnunetModel) -> dict[str, float]:
    """ms per tile forward of nnU-Net's network call (eager torch, one tile per call, as nnUNetPredictor makes it)
    and of cordbench's (its runtime, at the batch its predictor stacks: tiles x mirrorings), measured in
    alternating rounds in this process on random tiles (speed does not depend on the values), and their ratio:
    the most an end-to-end run can gain at equal settings, since both make the same forwards."""
    import torch

    predictor = model.predictor
    patch = tuple(predictor.configuration_manager.patch_size)
    mirrors = len(predictor._mirror_combinations(len(patch) + 2)) + 1
    batch = predictor._tiles_per_forward() * mirrors
    generator = torch.Generator().manual_seed(0)
    one, stacked = (torch.randn((size, 1, *patch), generator=generator) for size in (1, batch))
    backend = predictor.runners[0].backend
    torch.set_num_threads(THREADS)

    def nnunet_call():
        with torch.inference_mode():
            predictor.network(one)

    def cordbench_call():
        backend.run(stacked)

    for call in (nnunet_call, cordbench_call):
        call()
        call()
    nnunet_s, cordbench_s = [], []
    for _ in range(5):  # alternate, so that a change of load hits both sides
        nnunet_s += _median_seconds(nnunet_call, max(1, batch // 2), 1)
        cordbench_s += [seconds / batch for seconds in _median_seconds(cordbench_call, 1, 1)]
    nnunet_ms, cordbench_ms = 1000 * float(np.median(nnunet_s)), 1000 * float(np.median(cordbench_s))
    return {"nnunet_ms_per_tile": nnunet_ms, "cordbench_ms_per_tile": cordbench_ms, "ceiling": nnunet_ms / cordbench_ms,
            "batch": batch}


def _count_tile_forwards(model: NnunetModel) -> dict[str, int]:
    """Counts the tiles (mirrored copies included) cordbench's runner computes from now on: the forwards both
    predictors make for the same volumes."""
    counter = {"tiles": 0}
    runner = model.predictor.runners[0]
    run = runner.run

    def counted(tiles):
        counter["tiles"] += int(tiles.shape[0])
        return run(tiles)

    runner.run = counted
    return counter


def _end_to_end_bound(nnunet_seconds: float, tiles: float, ceiling: dict[str, float]) -> float:
    """The most cordbench can gain end to end at equal settings (Amdahl): nnU-Net's time with its network part
    (tiles x its call time) replaced by cordbench's (tiles x cordbench's call time); the rest (reading,
    preprocessing, resampling back, writing) is nnU-Net's own code on both sides. When the network is nearly all
    of the time (2D with mirroring: ~98 %) this is the network-call ratio itself; in 3D without mirroring less."""
    network = tiles * ceiling["nnunet_ms_per_tile"] / 1000
    rest = max(0.0, nnunet_seconds - network)
    return nnunet_seconds / (rest + tiles * ceiling["cordbench_ms_per_tile"] / 1000)


def _load(models, dim: str, row: str, tmp_path: Path, raw: Path) -> NnunetModel:
    engine, _, lever = row.partition("-")
    options = {"precision": "float32"}
    if lever == "bf16":
        options["precision"] = "bfloat16"
    elif lever == "int8":  # calibrated on the training scans only (the timed volumes are held out)
        options.update(precision="int8", calibration_images=sorted((raw / "imagesTr").glob("*.nii.gz")))
    elif lever == "batch1":
        options["tile_batch_size"] = 1
    return load_model(models[dim], runtime="torch" if engine == "nnunet" else engine, num_threads=THREADS,
                      use_mirroring=MIRRORING[dim], device="cpu", runtime_cache_dir=tmp_path.parent / "onnx",
                      **options)


@pytest.mark.parametrize("dim", ["2d", "3d"])
@pytest.mark.parametrize("row", [*RUNTIMES, *BATCH1, *INT8, *BF16])
def test_cpu_inference(benchmark, models, raw, images, tmp_path, dim, row):
    import torch

    benchmark.group = f"cpu-inference-{dim}-256x192x20"
    mirroring = MIRRORING[dim]
    engine, _, lever = row.partition("-")
    if lever and dim == "3d":
        pytest.skip("3D: the tiles already go one per forward, and the small 3D model is barely trained "
                    "(probabilities near 0.5), so another precision says little: on 2026-11-30 bfloat16 gave 5.5x at "
                    "Dice 0.994 against nnUNetPredictor")
    model = _load(models, dim, row, tmp_path, raw)
    assert model.runtime == engine, model.runtime_fallbacks
    assert model.precision == {"bf16": "bfloat16", "int8": "int8"}.get(lever, "float32")
    torch.set_num_threads(THREADS)  # nnUNetPredictor uses min(8, torch's thread count)
    # the ceiling's calls warm both networks up (kernel selection); nnU-Net's reference runs the same float32
    # network and weights. cordbench's first-batch check against PyTorch (one batch of ~100) stays in its time.
    ceiling = _network_call_ceiling(model)
    runs = {"nnunet": lambda paths: _nnunet_masks(model, paths, tmp_path / "nnunet", mirroring),
            "cordbench": lambda paths: _cordbench_masks(model, paths, tmp_path / "cordbench")}
    forwards = _count_tile_forwards(model)
    timed = _interleaved(benchmark, runs, images)
    nnunet, ours = timed["nnunet"], timed["cordbench"]
    speedup = nnunet[CLOCK] / ours[CLOCK]
    bound = _end_to_end_bound(nnunet[CLOCK], forwards["tiles"] / len(images), ceiling)
    agreement = [testdata.dice(mine, theirs) for mine, theirs in zip(ours["masks"], nnunet["masks"])]
    benchmark.extra_info.update(
        clock=CLOCK, speedup=speedup, ceiling=ceiling["ceiling"], bound=bound, network_call=ceiling,
        tile_forwards_per_volume=forwards["tiles"] / len(images), precision=model.precision,
        seconds_per_volume={"cordbench": {k: ours[k] for k in ("wall", "cpu")},
                            "nnunet": {k: nnunet[k] for k in ("wall", "cpu")}},
        dice_vs_nnunet=agreement, threads=THREADS, mirroring=mirroring, cpu=cpu_model(), onednn_max_cpu_isa=ISA)
    print(f"\n{dim} {row} ({cpu_model()}, oneDNN ISA {ISA}, {THREADS} thread(s), mirroring={mirroring}): "
          f"nnUNetPredictor {nnunet[CLOCK]:.2f} s, cordbench {ours[CLOCK]:.2f} s per volume ({CLOCK} time; wall "
          f"{nnunet['wall']:.1f} / {ours['wall']:.1f} s): {speedup:.2f}x; network call {ceiling['nnunet_ms_per_tile']:.1f}"
          f" vs {ceiling['cordbench_ms_per_tile']:.1f} ms/tile (ceiling {ceiling['ceiling']:.2f}x, batch "
          f"{ceiling['batch']}; with the rest of nnU-Net's time, which no runtime changes: {bound:.2f}x); "
          f"Dice vs nnU-Net {', '.join(f'{d:.5f}' for d in agreement)}")
    if dim == "2d":  # the 3D model is barely trained: its masks may be empty
        assert all(mask.sum() > 100 for mask in nnunet["masks"])
    dice_floor = {"bf16": DICE_VS_NNUNET_BF16, "int8": INT8_DICE}.get(lever, DICE_VS_NNUNET)
    assert min(agreement) >= dice_floor
    if lever in ("", "batch1"):  # float32, the same forwards as nnUNetPredictor: held to the ceiling
        assert speedup >= CEILING_FRACTION * bound, (
            f"{dim} {row}: end to end {speedup:.2f}x < {CEILING_FRACTION} x the bound {bound:.2f}x (network-call "
            f"ratio {ceiling['ceiling']:.2f}x measured in the same run, over the network's share of nnU-Net's time)")
