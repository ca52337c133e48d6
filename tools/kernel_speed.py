"""What pinned CPU kernels cost (docs/reproducibility.md): training seconds per epoch and inference seconds per
volume, pinned vs native, each setting in its own fresh process (the kernels are fixed at torch's first
computation), the two settings alternated ``--rounds`` times so that a busy machine slows both alike.

Data: the real gmchallenge T2*w scans (../shared/data/bids/gmchallenge, as tests/nnunet_testdata.py builds them),
the quick profile's ``2d_quick`` network, 1 torch thread, seed 0. Training: ``--epochs`` epochs of 12 + 2
iterations; inference: held-out sub-9709Ses1 (256x192x20), one untimed warm-up volume, then one timed, with
``runtime=auto`` (pinned: PyTorch; native: OpenVINO when installed) and with PyTorch under native kernels (what the
cap alone costs). Times are process CPU seconds (user + system, one thread: the work, whatever else runs) and wall
seconds.

    .venv/bin/python tools/kernel_speed.py --rounds 2 --epochs 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def measure(setting: str, raw: Path, work: Path, epochs: int) -> dict:
    """In this (fresh) process: pin or not, train, predict; the timings."""
    from benchmark import kernels

    applied = kernels.apply(setting)
    import nibabel as nib
    import numpy as np

    from benchmark.models.nnunet.predict import load_model
    from benchmark.models.runtime.hardware import cpu_model
    from benchmark.training.nnunet.train import train_model

    cpu, wall = time.process_time(), time.perf_counter()
    trained = train_model(raw, work, seed=0, num_epochs=epochs, resume=False, num_processes=1)
    train_cpu, train_wall = time.process_time() - cpu, time.perf_counter() - wall
    image = nib.load(raw / "imagesTs" / "sub9709Ses1_0000.nii.gz")
    array, spacing = image.get_fdata(dtype=np.float32), image.header.get_zooms()[:3]
    inference = {}
    for runtime in ("auto", "torch"):
        model = load_model(trained.model_folder, runtime=runtime, num_threads=1,
                           runtime_cache_dir=work / "runtime-cache")
        model.predict_probabilities(array, spacing)  # warm-up: export, compile, first allocation
        cpu, wall = time.process_time(), time.perf_counter()
        model.predict_probabilities(array, spacing)
        inference[runtime] = {"runtime": model.runtime, "cpu_s": time.process_time() - cpu,
                              "wall_s": time.perf_counter() - wall}
    return {"setting": setting, "label": applied.label, "cpu": cpu_model(), "epochs": epochs,
            "train_cpu_s_per_epoch": train_cpu / epochs, "train_wall_s_per_epoch": train_wall / epochs,
            "epoch_s_nnunet": trained.training_seconds / epochs, "inference": inference}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--child", nargs=3, metavar=("SETTING", "RAW", "WORK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        setting, raw, work = args.child
        print("RESULT " + json.dumps(measure(setting, Path(raw), Path(work), args.epochs)), flush=True)
        return
    sys.path.insert(0, str(REPO / "tests"))
    from nnunet_testdata import build_raw_dataset

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory(prefix="kernel-speed-") as scratch:
        raw = build_raw_dataset(Path(scratch) / "raw")
        rows = []
        for _round in range(args.rounds):
            for setting in ("pinned", "native"):
                completed = subprocess.run(
                    [sys.executable, __file__, "--epochs", str(args.epochs), "--child", setting, str(raw),
                     str(Path(scratch) / setting)], capture_output=True, text=True, env=env, check=True)
                line = next(line for line in completed.stdout.splitlines() if line.startswith("RESULT "))
                rows.append(json.loads(line.removeprefix("RESULT ")))
                row = rows[-1]
                print(f"{row['label']:14s} train {row['train_cpu_s_per_epoch']:.2f} CPU s/epoch "
                      f"({row['train_wall_s_per_epoch']:.2f} wall, nnU-Net's epoch {row['epoch_s_nnunet']:.2f}); "
                      + "; ".join(f"inference {name}->{value['runtime']} {value['cpu_s']:.2f} CPU s/volume "
                                  f"({value['wall_s']:.2f} wall)" for name, value in row["inference"].items()),
                      flush=True)
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
