"""The PyTorch backend: the network itself, eager, on CPU or CUDA."""

from __future__ import annotations

import contextlib

import torch


class TorchRunner:
    """``logits = run(tiles)`` with the PyTorch network (bfloat16 autocast on CPU when asked)."""

    name = "torch"

    def __init__(self, network: torch.nn.Module, device: torch.device, threads: int, *, bfloat16: bool = False):
        self.network = network
        self.device = device
        self.threads = threads
        self.bfloat16 = bfloat16 and device.type == "cpu"

    @torch.inference_mode()
    def run(self, tiles: torch.Tensor) -> torch.Tensor:
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if self.bfloat16 else contextlib.nullcontext()
        with autocast:
            return self.network(tiles.to(self.device)).float()
