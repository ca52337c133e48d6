"""What pinned CPU kernels cost and change (docs/reproducibility.md): training seconds per epoch and inference
seconds per volume, pinned vs native, and how far each runtime's probabilities move between the two. Each setting
runs in its own fresh process (the kernels are fixed at torch's first computation), the two settings alternated
``--rounds`` times so that a busy machine slows both alike.

Data: the real gmchallenge T2*w scans (../shared/data/bids/gmchallenge, as tests/nnunet_testdata.py builds them),
the quick profile's ``2d_quick`` network, 1 torch thread, seed 0. Training: ``--epochs`` epochs of 12 + 2
iterations (planning not timed). Inference: one model (trained first, pinned), held-out sub-9709Ses1 (256x192x20),
one untimed warm-up, then one timed prediction per runtime (torch, openvino, onnxruntime where installed).
Times are process CPU seconds (user + system of the one-thread process: the work, whatever else runs on the
machine) and wall seconds.

    .venv/bin/python tools/kernel_speed.py --rounds 2 --epochs 3
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNTIMES = [name for name in ("torch", "openvino", "onnxruntime") if name == "torch" or importlib.util.find_spec(name)]


def child(setting: str, raw: Path, work: Path, epochs: int, model: Path | None, out: Path) -> dict:
    """In this (fresh) process: pin or not, train (timed), predict with ``model`` on every runtime (timed; the
    probabilities saved under ``out``)."""
    from benchmark import kernels

    applied = kernels.apply(setting)
    import nibabel as nib
    import numpy as np

    from benchmark.models.nnunet.predict import load_model
    from benchmark.models.runtime.hardware import cpu_model
    from benchmark.training.nnunet.plans import plan_and_preprocess
    from benchmark.training.nnunet.train import train_model

    plan_and_preprocess(raw, work / "nnUNet_preprocessed", num_processes=1)  # not timed (the same for both)
    cpu, wall = time.process_time(), time.perf_counter()
    trained = train_model(raw, work, seed=0, num_epochs=epochs, resume=False, num_processes=1)
    row = {"setting": setting, "label": applied.label, "cpu": cpu_model(), "epochs": epochs,
           "model": str(trained.model_folder), "weights": trained.weights_sha256,
           "train_cpu_s_per_epoch": (time.process_time() - cpu) / epochs,
           "train_wall_s_per_epoch": (time.perf_counter() - wall) / epochs, "inference": {}}
    if model is None:
        return row
    image = nib.load(raw / "imagesTs" / "sub9709Ses1_0000.nii.gz")
    array, spacing = image.get_fdata(dtype=np.float32), image.header.get_zooms()[:3]
    for runtime in RUNTIMES:
        loaded = load_model(model, runtime=runtime, num_threads=1, runtime_cache_dir=work / "runtime-cache")
        loaded.predict_probabilities(array, spacing)  # warm-up: export, compile, first allocation
        cpu, wall = time.process_time(), time.perf_counter()
        probabilities = loaded.predict_probabilities(array, spacing)
        row["inference"][runtime] = {"ran": loaded.runtime, "cpu_s": time.process_time() - cpu,
                                     "wall_s": time.perf_counter() - wall}
        np.save(out / f"{setting}-{runtime}.npy", probabilities)
    return row


def run_child(setting: str, raw: Path, work: Path, epochs: int, model: Path | None, out: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    command = [sys.executable, __file__, "--epochs", str(epochs), "--child", setting, str(raw), str(work),
               str(model or ""), str(out)]
    completed = subprocess.run(command, capture_output=True, text=True, env=env)
    if completed.returncode:
        raise SystemExit(completed.stderr[-3000:])
    line = next(line for line in completed.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def compare(out: Path) -> list[str]:
    """Per runtime: how far the pinned process's probabilities are from the native one's, on the same model."""
    import numpy as np

    lines = []
    for runtime in RUNTIMES:
        pinned, native = np.load(out / f"pinned-{runtime}.npy"), np.load(out / f"native-{runtime}.npy")
        flipped = int(((pinned > 0.5) != (native > 0.5)).sum())
        lines.append(f"{runtime}: pinned vs native probabilities {'identical' if np.array_equal(pinned, native) else 'differ'}"
                     f", max |dp| {float(np.abs(pinned - native).max()):.2e}, mask voxels that differ {flipped} "
                     f"of {pinned.size}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--child", nargs=5, metavar=("SETTING", "RAW", "WORK", "MODEL", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        setting, raw, work, model, out = args.child
        row = child(setting, Path(raw), Path(work), args.epochs, Path(model) if model else None, Path(out))
        print("RESULT " + json.dumps(row), flush=True)
        return
    sys.path.insert(0, str(REPO / "tests"))
    from nnunet_testdata import build_raw_dataset

    with tempfile.TemporaryDirectory(prefix="kernel-speed-") as scratch:
        root = Path(scratch)
        raw = build_raw_dataset(root / "raw")
        model = Path(run_child("pinned", raw, root / "model", args.epochs, None, root)["model"])
        rows = []
        for _round in range(args.rounds):
            for setting in ("pinned", "native"):
                rows.append(run_child(setting, raw, root / setting, args.epochs, model, root))
                row = rows[-1]
                print(f"{row['label']:14s} train {row['train_cpu_s_per_epoch']:.2f} CPU s/epoch "
                      f"({row['train_wall_s_per_epoch']:.2f} wall); "
                      + "; ".join(f"{name}->{value['ran']} {value['cpu_s']:.2f} CPU s/volume ({value['wall_s']:.2f} "
                                  "wall)" for name, value in row["inference"].items()), flush=True)
        print("\n".join(compare(root)))
        print(json.dumps({"cpu": rows[0]["cpu"], "rows": rows}))


if __name__ == "__main__":
    main()
