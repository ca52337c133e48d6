"""The OpenVINO backend (CPU plugin)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


class OpenVinoRunner:
    """``logits = run(tiles)`` with the exported network compiled by OpenVINO for the CPU.

    Precision is set explicitly: OpenVINO's CPU plugin otherwise computes in bfloat16 on CPUs that have it,
    which changes the logits; cordbench uses bfloat16 only when asked and the CPU has it natively. Threads are not
    pinned to cores, so that several worker processes (the local pool, jobs sharing a node) spread over the cores.
    """

    name = "openvino"

    def __init__(self, onnx_path: Path, threads: int, *, bfloat16: bool = False):
        import openvino as ov

        core = ov.Core()
        config = {
            "INFERENCE_NUM_THREADS": threads,
            "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "bf16" if bfloat16 else "f32",
            # pinned (the default), every process with one thread was pinned to the same core: the local pool's
            # workers shared one core (tests/benchmarks/test_bench_tile_forward.py)
            "ENABLE_CPU_PINNING": False,
        }
        self.threads = threads
        self.bfloat16 = bfloat16
        self.compiled = core.compile_model(core.read_model(str(onnx_path)), "CPU", config)
        self.request = self.compiled.create_infer_request()

    def run(self, tiles: torch.Tensor) -> torch.Tensor:
        batch = np.ascontiguousarray(tiles.detach().cpu().numpy(), dtype=np.float32)
        result = self.request.infer({0: batch})
        return torch.from_numpy(np.array(result[0], dtype=np.float32, copy=True))
