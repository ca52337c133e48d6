"""Does the CPU's instruction set change a seeded, single-threaded nnU-Net training step? (docs/nnunet.md)

Trains the ``2d_quick`` network (the quick profile's plain U-Net: 5 stages, 16-128 features, instance norm,
deep supervision, SGD with Nesterov momentum 0.99 as nnU-Net) for a few iterations on a fixed random batch,
1 torch thread, seed 0, and prints the loss of every step (float hex) and a sha256 of the final weights.

Run it once per environment to compare, e.g.::

    ATEN_CPU_CAPABILITY=avx2 python tools/cpu_isa_determinism.py
    ONEDNN_MAX_CPU_ISA=AVX2 python tools/cpu_isa_determinism.py

``--all`` runs every variant below in fresh processes and prints one table (the environment variables are
read once, when torch / oneDNN / MKL / numpy load, so each variant needs its own process).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

VARIANTS: dict[str, dict[str, str]] = {
    "as installed": {},
    "ATEN_CPU_CAPABILITY=avx512": {"ATEN_CPU_CAPABILITY": "avx512"},
    "ATEN_CPU_CAPABILITY=avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "ATEN_CPU_CAPABILITY=default": {"ATEN_CPU_CAPABILITY": "default"},
    "ONEDNN_MAX_CPU_ISA=AVX2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    "ONEDNN_MAX_CPU_ISA=SSE41": {"ONEDNN_MAX_CPU_ISA": "SSE41"},
    "MKL_ENABLE_INSTRUCTIONS=AVX2": {"MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "oneDNN off (torch.backends.mkldnn)": {"CORDBENCH_NO_MKLDNN": "1"},
    "ATEN avx2 + oneDNN AVX2 + MKL AVX2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
                                           "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    # numpy >= 2.4 names its AVX-512 levels X86_V4, AVX512_ICL, AVX512_SPR and ignores names it does not know (the
    # older AVX512F ... names alone disable nothing there); numpy.show_runtime() lists what is in effect
    "numpy without AVX-512 (NPY_DISABLE_CPU_FEATURES)": {
        "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL"},
    "OpenBLAS as Haswell (OPENBLAS_CORETYPE)": {"OPENBLAS_CORETYPE": "Haswell"},
    "cordbench pinned (benchmark.kernels)": {"CORDBENCH_APPLY_KERNELS": "pinned"},
}


def train_steps(steps: int = 4) -> dict:
    if os.environ.get("CORDBENCH_APPLY_KERNELS"):
        from benchmark import kernels

        kernels.apply(os.environ["CORDBENCH_APPLY_KERNELS"])
    import numpy as np
    import torch
    from dynamic_network_architectures.architectures.unet import PlainConvUNet

    torch.set_num_threads(1)
    if os.environ.get("CORDBENCH_NO_MKLDNN"):
        torch.backends.mkldnn.enabled = False
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    network = PlainConvUNet(1, 5, [16, 32, 64, 128, 128], torch.nn.Conv2d, 3, [1, 2, 2, 2, 2], 2, 2, 2,
                            conv_bias=True, norm_op=torch.nn.InstanceNorm2d,
                            norm_op_kwargs={"eps": 1e-5, "affine": True}, nonlin=torch.nn.LeakyReLU,
                            nonlin_kwargs={"inplace": True}, deep_supervision=True)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.01, momentum=0.99, nesterov=True, weight_decay=3e-5)
    images = torch.from_numpy(rng.standard_normal((8, 1, 128, 128), dtype=np.float32))
    yy, xx = np.mgrid[:128, :128]
    disc = ((yy - 64) ** 2 + (xx - 60) ** 2 < 15 ** 2).astype(np.int64)
    target = torch.from_numpy(np.broadcast_to(disc, (8, 128, 128)).copy())
    images = images + 2.0 * target[:, None].float()
    # numpy's own SIMD dispatch: a float32 reduction as nnU-Net's z-score normalisation does it
    numpy_mean = float(np.asarray(images.numpy(), dtype=np.float32).mean(dtype=np.float32))
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        outputs = network(images)
        loss = torch.nn.functional.cross_entropy(outputs[0], target)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()).hex())
    digest = hashlib.sha256()
    for name, tensor in sorted(network.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    return {"capability": torch.backends.cpu.get_cpu_capability(), "losses": losses,
            "weights_sha256": digest.hexdigest()[:16], "numpy_mean": numpy_mean.hex()}


def main() -> None:
    if "--all" not in sys.argv:
        print(json.dumps(train_steps()))
        return
    base_env = {key: value for key, value in os.environ.items()
                if key not in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS",
                               "CORDBENCH_CPU_KERNELS", "CORDBENCH_HOST", "NPY_DISABLE_CPU_FEATURES",
                               "OPENBLAS_CORETYPE")}
    base_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                           base_env.get("PYTHONPATH")]))
    base_env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    reference = None
    for name, extra in VARIANTS.items():
        output = subprocess.run([sys.executable, __file__], env={**base_env, **extra}, capture_output=True,
                                text=True, check=True).stdout.strip().splitlines()[-1]
        result = json.loads(output)
        reference = reference or result
        same = {key: result[key] == reference[key] for key in ("losses", "weights_sha256", "numpy_mean")}
        print(f"{name:48s} aten={result['capability']:8s} weights={result['weights_sha256']} "
              f"step1 loss={result['losses'][0]} last loss={result['losses'][-1]} "
              f"same as installed: losses {same['losses']}, weights {same['weights_sha256']}, "
              f"numpy mean {same['numpy_mean']}", flush=True)


if __name__ == "__main__":
    main()
