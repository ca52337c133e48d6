"""The ONNX Runtime backend (CPU execution provider)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


class OnnxRuntimeRunner:
    """``logits = run(tiles)`` with an ONNX Runtime session on the exported network.

    One intra-op pool of ``threads`` threads, sequential execution: with a fixed thread count the same input
    gives the same bytes (ONNX Runtime splits convolutions by output, never reorders a sum across threads).
    """

    name = "onnxruntime"

    def __init__(self, onnx_path: Path, threads: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.threads = threads
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self._input = self.session.get_inputs()[0].name

    def run(self, tiles: torch.Tensor) -> torch.Tensor:
        batch = np.ascontiguousarray(tiles.detach().cpu().numpy(), dtype=np.float32)
        (logits,) = self.session.run(None, {self._input: batch})
        return torch.from_numpy(logits)
