"""cordbench's GPU check, in one prepared run (tools/gpu/on_device.sh installs the kit, then runs this).

Steps, each recorded in one JSON file (``--out``/gpu-check.json) with its status, seconds and numbers; a step
that cannot run says why (``skipped``) and the run goes on; the whole run keeps within ``--budget-s``:

1. environment: Python, torch and its CUDA, the GPU (name, memory, driver via nvidia-smi), cordbench's imports
   (nnunetv2, nibabel, pydantic, and whether SimpleITK is the real one or cordbench's stand-in);
2. ``pytest -m gpu``: the tests that need a CUDA GPU (they skip, saying why, without one);
3. training: a quick 2D nnU-Net (cordbench's ``2d_quick``) and nnU-Net's ``3d_fullres``, a few epochs each, on CUDA,
   on a synthetic dataset written here (no data travels);
4. inference: cordbench's predictor against nnU-Net's ``nnUNetPredictor`` on the same weights and the same
   settings (tile step 0.5, Gaussian weighting, test-time mirroring on, nnU-Net's float16 autocast on CUDA,
   everything on the device), file -> mask, one untimed warm-up, then the held-out volumes timed; Dice between
   the two predictors' masks (target >= 0.999);
5. the sandbox: a ``command`` submission with ``inference.device: cuda`` scored through bubblewrap, which must see
   the GPU (skipped, saying why, where bwrap is missing or cannot run).

Without CUDA (this script's rehearsal on a CPU machine, tools/gpu/cpu_rehearsal.py) steps 3-5 run on the CPU at
the smallest size, so every code path of the script runs; their numbers then say ``"device": "cpu"`` and mean
nothing for speed.

    python3 tools/gpu/check.py --out OUT [--budget-s 480]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
DICE_TARGET = 0.999


class Deadline:
    def __init__(self, budget_s: float):
        self.end = time.monotonic() + budget_s

    def left(self) -> float:
        return self.end - time.monotonic()


class Report:
    """The JSON written after every step (a run cut short still leaves what it did)."""

    def __init__(self, out: Path):
        self.path = out / "gpu-check.json"
        self.data: dict = {"started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "steps": {}}

    def step(self, name: str, result: dict) -> None:
        self.data["steps"][name] = result
        self.write()

    def write(self) -> None:
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.data, indent=2, default=str))
        os.replace(temporary, self.path)


def run_step(report: Report, name: str, deadline: Deadline, needs_s: float, function, *args) -> dict | None:
    """Run one step unless too little time is left; record its outcome (an exception fails only that step)."""
    if deadline.left() < needs_s:
        report.step(name, {"status": "skipped", "reason": f"{deadline.left():.0f} s left of the budget, the step "
                                                          f"needs about {needs_s:.0f} s"})
        return None
    print(f"\n=== {name} ({deadline.left():.0f} s left)", flush=True)
    started = time.perf_counter()
    try:
        result = function(*args)
    except Exception as error:  # one failing step must not hide the others' results
        traceback.print_exc()
        result = {"status": "failed", "error": f"{type(error).__name__}: {error}"[:2000]}
    result.setdefault("status", "ok")
    result["seconds"] = round(time.perf_counter() - started, 2)
    print(json.dumps(result, indent=1, default=str)[:4000], flush=True)
    report.step(name, result)
    return result


# ------------------------------------------------------------------------------------------------ steps
def environment() -> dict:
    import torch

    info: dict = {"python": platform.python_version(), "torch": torch.__version__, "torch_cuda": torch.version.cuda,
                  "cuda_available": torch.cuda.is_available(), "cpu_count": os.cpu_count()}
    if torch.cuda.is_available():
        properties = torch.cuda.get_device_properties(0)
        info.update(gpu=properties.name, gpu_memory_gib=round(properties.total_memory / 2**30, 1),
                    multiprocessors=properties.multi_processor_count,
                    cudnn=torch.backends.cudnn.version())
    if shutil.which("nvidia-smi"):
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=60)
        info["nvidia_smi"] = smi.stdout.strip() or smi.stderr.strip()
    import benchmark.models.nnunet.predict  # noqa: F401  (puts the SimpleITK stand-in in place where needed)
    import nibabel
    import nnunetv2  # noqa: F401
    import pydantic
    import SimpleITK

    from benchmark.environment import package_versions

    info.update(nibabel=nibabel.__version__, pydantic=pydantic.__version__,
                simpleitk="cordbench stand-in (not installed)" if getattr(SimpleITK, "CORDBENCH_STAND_IN", False)
                else getattr(SimpleITK, "__version__", "installed"),
                packages=package_versions())
    from benchmark.models.sandbox import bwrap_executable

    info["bwrap"] = bwrap_executable()
    return info


def gpu_test_files() -> list[str]:
    """The test modules that mark tests ``gpu``: only these are collected, since other modules import packages a
    GPU machine does not have (streamlit, playwright, monai...)."""
    return sorted(str(path.relative_to(REPO)) for path in TESTS.rglob("test_*.py")
                  if "mark.gpu" in path.read_text(encoding="utf-8", errors="replace"))


def gpu_tests(out: Path, deadline: Deadline) -> dict:
    junit = out / "gpu-tests.xml"
    files = gpu_test_files()
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-rs", "-p", "no:cacheprovider",
               f"--junitxml={junit}", *files]
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                               timeout=max(30, deadline.left() - 200))
    print(completed.stdout[-6000:], completed.stderr[-3000:], sep="\n")
    summary = next((line for line in reversed(completed.stdout.splitlines())
                    if re.search(r"\d+ (passed|failed|skipped|error|deselected)", line)), "")
    skipped = [line for line in completed.stdout.splitlines() if line.startswith("SKIPPED")]
    ran = any(word in summary for word in (" passed", " failed", " error"))
    status = ("failed" if completed.returncode not in (0, 5) else "ok" if ran else "skipped")  # 5: none collected
    return {"status": status, "returncode": completed.returncode, "summary": summary.strip("= "),
            "files": files, "skipped": skipped[:20]}


def _sizes(cuda: bool) -> dict:
    """Dataset and run length: on CUDA a volume like gmchallenge's; on the CPU rehearsal the smallest that runs."""
    if cuda:
        return {"shape": (256, 192, 20), "n_train": 6, "n_test": 2, "epochs_2d": 5, "iterations_2d": 25,
                "epochs_3d": 5, "iterations_3d": 25}
    return {"shape": (64, 56, 8), "n_train": 4, "n_test": 1, "epochs_2d": 1, "iterations_2d": 2,
            "epochs_3d": 1, "iterations_3d": 1}


def dataset(work: Path, cuda: bool) -> Path:
    sys.path.insert(0, str(TESTS))
    from nnunet_testdata import write_synthetic_raw_dataset

    sizes = _sizes(cuda)
    return write_synthetic_raw_dataset(work / "nnUNet_raw", dataset_id=995, name="GpuCheck", n_train=sizes["n_train"],
                                       n_test=sizes["n_test"], shape=sizes["shape"], seed=0)


def train(raw: Path, work: Path, cuda: bool, models: dict) -> dict:
    from benchmark.training.nnunet.train import train_model

    sizes = _sizes(cuda)
    device = "cuda" if cuda else "cpu"
    results = {}
    for key, profile, configuration in (("2d", "quick", None), ("3d", "full", "3d_fullres")):
        started = time.perf_counter()
        trained = train_model(raw, work / f"train-{key}", profile=profile, configuration=configuration, device=device,
                              num_epochs=sizes[f"epochs_{key}"], iterations_per_epoch=sizes[f"iterations_{key}"],
                              val_iterations_per_epoch=2, num_processes=2, seed=0)
        models[key] = trained.model_folder
        results[key] = {"configuration": trained.configuration, "device": trained.device, "epochs": trained.epochs,
                        "iterations_per_epoch": trained.iterations_per_epoch,
                        "training_seconds": round(trained.training_seconds, 2),
                        "wall_seconds": round(time.perf_counter() - started, 2),
                        "final_pseudo_dice": trained.final_pseudo_dice}
    return {"device": device, "models": results}


def _dice(a, b) -> float:
    import numpy as np

    a, b = np.asarray(a, bool), np.asarray(b, bool)
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def inference(raw: Path, work: Path, cuda: bool, models: dict) -> dict:
    import nibabel as nib
    import numpy as np
    import torch

    from benchmark.models.nnunet.predict import load_model, nnunet_reference_predictor

    device = "cuda" if cuda else "cpu"
    images = sorted((raw / "imagesTs").glob("*_0000.nii.gz"))
    results: dict = {"device": device, "settings": {"tile_step_size": 0.5, "mirroring": True, "gaussian": True,
                                                     "precision": "nnU-Net's float16 autocast" if cuda else "float32"}}
    for key, folder in models.items():
        model = load_model(folder, device=device, runtime="torch", use_mirroring=True, tile_step_size=0.5,
                           runtime_cache_dir=work / "runtime")
        reference = nnunet_reference_predictor(model, use_mirroring=True, tile_step_size=0.5)

        def nnunet_masks(out: Path) -> list:
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            reference.predict_from_files_sequential([[str(path)] for path in images], str(out),
                                                    save_probabilities=False)
            return [np.asarray(nib.load(out / path.name.replace("_0000", "")).dataobj) > 0 for path in images]

        def cordbench_masks(out: Path) -> list:
            out.mkdir(parents=True, exist_ok=True)
            masks = []
            for path in images:
                image = nib.as_closest_canonical(nib.load(path))
                mask = model.predict_probabilities(image.get_fdata(dtype=np.float32), image.header.get_zooms()[:3]) > 0.5
                nib.save(nib.Nifti1Image(mask.astype(np.uint8), image.affine), out / path.name.replace("_0000", ""))
                masks.append(mask)
            return masks

        timings = {}
        masks = {}
        for name, run in (("nnunet", nnunet_masks), ("cordbench", cordbench_masks)):
            run(work / f"warm-{key}-{name}")  # warm-up: cuDNN autotuning, first-batch verification
            if cuda:
                torch.cuda.synchronize()
            started = time.perf_counter()
            masks[name] = run(work / f"pred-{key}-{name}")
            if cuda:
                torch.cuda.synchronize()
            timings[name] = (time.perf_counter() - started) / len(images)
        dice = [_dice(ours, theirs) for ours, theirs in zip(masks["cordbench"], masks["nnunet"])]
        results[key] = {"nnunet_s_per_volume": round(timings["nnunet"], 4),
                        "cordbench_s_per_volume": round(timings["cordbench"], 4),
                        "speedup": round(timings["nnunet"] / timings["cordbench"], 3),
                        "dice_vs_nnunet": [round(value, 5) for value in dice],
                        "foreground_voxels": [int(mask.sum()) for mask in masks["nnunet"]],
                        "runtime": model.runtime, "volumes": len(images),
                        "shape": list(nib.load(images[0]).shape)}
        if cuda and min(dice) < DICE_TARGET:
            results["status"] = "failed"
            results.setdefault("why", []).append(f"{key}: Dice {min(dice):.5f} < {DICE_TARGET}")
    if not cuda:  # models of 1-2 iterations: probabilities sit near 0.5, where float16 rounding in nnU-Net flips voxels
        results["dice_target"] = f"{DICE_TARGET} on CUDA only (not applied to the CPU rehearsal's barely trained models)"
    return results


CPU_COMMAND_SCRIPT = r'''"""The CPU rehearsal's command submission: the sandboxed path without a GPU (copies its input)."""
import shutil, sys
shutil.copyfile(sys.argv[1], sys.argv[2])
'''

GPU_COMMAND_SCRIPT = r'''"""A command submission for the GPU check: fails unless CUDA is visible inside the sandbox."""
import shutil, sys
import torch
if not torch.cuda.is_available():
    sys.exit("CUDA is not visible inside the sandbox (torch.cuda.is_available() is False)")
volume = torch.ones((64, 64, 64), device="cuda")
assert float((volume * 2).sum()) == 2 * 64 ** 3
print("sandboxed GPU:", torch.cuda.get_device_name(0), file=sys.stderr)
shutil.copyfile(sys.argv[1], sys.argv[2])  # the input itself: a valid image on the input's grid
'''


def sandbox(raw: Path, work: Path, cuda: bool) -> dict:
    import yaml

    from benchmark.data.submissions import load_submission
    from benchmark.evaluation.inference import Predictor
    from benchmark.io import sha256_file
    from benchmark.models.sandbox import bwrap_executable

    if bwrap_executable() is None:
        return {"status": "skipped", "reason": "bubblewrap (bwrap) is missing or cannot create namespaces here"}
    folder = work / "gpu-command"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "segment.py").write_text(GPU_COMMAND_SCRIPT if cuda else CPU_COMMAND_SCRIPT)
    manifest = {"name": "gpu-command", "description": "GPU check", "authors": ["cordbench"], "licence": "MIT",
                "model": {"type": "command", "command": "{python} segment.py {input} {output}", "timeout_s": 120,
                          "orientation": "native"},
                "training": {"datasets": []}, "inference": {"device": "cuda" if cuda else "cpu"}}
    (folder / "submission.yaml").write_text(yaml.safe_dump(manifest))
    submission = load_submission(folder)
    predictor = Predictor(submission, work / "gpu-command-cache", device="cuda" if cuda else "cpu", sandbox=True)
    image = sorted((raw / "imagesTs").glob("*_0000.nii.gz"))[0]
    record = predictor.predict(image, sha256_file(image))
    result = {"sandbox": predictor.sandbox_mode, "gpu_visible": cuda and record.failure is None,
              "failure": record.failure, "runtime_s": record.runtime_s}
    if record.failure is not None:
        result["status"] = "failed"
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="cordbench's GPU check (see the module docstring)")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu-check-out")))
    parser.add_argument("--budget-s", type=float, default=480.0, help="the whole run's time budget (default 8 min)")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    deadline = Deadline(args.budget_s)
    report = Report(args.out)
    os.environ.setdefault("nnUNet_compile", "false")  # torch.compile's minutes of compilation do not fit the budget
    report.data["settings"] = {"budget_s": args.budget_s, "nnUNet_compile": os.environ["nnUNet_compile"],
                               "commit": _git_commit()}
    env = run_step(report, "environment", deadline, 10, environment)
    cuda = bool(env and env.get("cuda_available"))
    report.data["cuda"] = cuda
    run_step(report, "gpu_tests", deadline, 240, gpu_tests, args.out, deadline)
    with (contextlib.nullcontext(str(args.work)) if args.work else tempfile.TemporaryDirectory()) as scratch:
        work = Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        raw = dataset(work, cuda)
        models: dict = {}
        run_step(report, "training", deadline, 60, train, raw, work, cuda, models)
        if models:
            run_step(report, "inference", deadline, 40, inference, raw, work, cuda, models)
        else:
            report.step("inference", {"status": "skipped", "reason": "no trained model"})
        run_step(report, "sandbox", deadline, 15, sandbox, raw, work, cuda)
    statuses = {name: step["status"] for name, step in report.data["steps"].items()}
    report.data.update(finished_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), statuses=statuses)
    report.write()
    print(f"\nGPU check: {json.dumps(statuses)} -> {report.path}")
    return 1 if "failed" in statuses.values() else 0


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              timeout=10).stdout.strip() or None
    except OSError:
        return None


if __name__ == "__main__":
    sys.exit(main())
