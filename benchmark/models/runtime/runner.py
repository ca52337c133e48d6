"""One network, one runtime, checked against PyTorch before it is trusted; PyTorch when the check fails."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import torch

from benchmark.models.runtime.export import ExportedModel, export_onnx
from benchmark.models.runtime.torch_runner import TorchRunner
from benchmark.models.runtime.verify import (BFLOAT16_TOLERANCE, FLOAT32_TOLERANCE, INT8_MIN_AGREEMENT, Agreement,
                                             compare_logits, compare_masks, random_tiles)

if TYPE_CHECKING:
    import numpy as np

# Tiles in the random verification batch: more than one, so that the dynamic batch axis is exercised.
VERIFY_BATCH = 2


class RuntimeFallbackWarning(UserWarning):
    """A runtime's logits differ from PyTorch's beyond the tolerance: the model runs on PyTorch instead."""


class TileRunner(Protocol):
    """The one interface of every backend: logits (float32, B x K x tile) for a batch of tiles (B x C x tile)."""

    name: str
    threads: int

    def run(self, tiles: torch.Tensor) -> torch.Tensor: ...


def build_backend(runtime: str, onnx_path: Path, threads: int, bfloat16: bool) -> TileRunner:
    if runtime == "openvino":
        from benchmark.models.runtime.openvino_runner import OpenVinoRunner

        return OpenVinoRunner(onnx_path, threads, bfloat16=bfloat16)
    if runtime == "onnxruntime":
        from benchmark.models.runtime.onnxruntime_runner import OnnxRuntimeRunner

        return OnnxRuntimeRunner(onnx_path, threads)
    raise ValueError(f"no ONNX backend named {runtime!r}")


class VerifiedRunner:
    """Runs tiles on the selected runtime once its logits matched PyTorch's on a fixed random batch (at load)
    and on the first real batch (at first use); otherwise on PyTorch, with a :class:`RuntimeFallbackWarning`
    naming the largest difference. ``network`` must hold this runner's weights whenever :meth:`run` is called.
    """

    def __init__(self, network: torch.nn.Module, *, runtime: str, device: torch.device, threads: int,
                 bfloat16: bool, weights_sha256: str, tile_shape: tuple[int, ...], in_channels: int,
                 cache_dir: Path, label: str = "model", int8_tiles: "np.ndarray | None" = None):
        """``int8_tiles`` (N x C x tile, from training images): run the network quantized to int8 with them as the
        calibration set (ONNX runtimes only); checked on the first real batch by mask agreement."""
        self.requested = runtime
        self.threads = threads
        self.label = label
        self.torch = TorchRunner(network, device, threads, bfloat16=False)
        self.exported: ExportedModel | None = None
        self.int8 = False
        self.fallback_reason: str | None = None
        self.checks: list[Agreement] = []
        self._verified_on_real_tiles = runtime == "torch"
        self._tolerance = BFLOAT16_TOLERANCE if bfloat16 else FLOAT32_TOLERANCE
        self.backend: TileRunner
        if runtime == "torch":
            self.backend = TorchRunner(network, device, threads, bfloat16=bfloat16)
            return
        self.exported = export_onnx(network, weights_sha256=weights_sha256, tile_shape=tile_shape,
                                    in_channels=in_channels, cache_dir=cache_dir)
        self.int8 = int8_tiles is not None
        if self.int8:
            from benchmark.models.runtime.quantize import quantize_int8

            int8_path = quantize_int8(self.exported.path, int8_tiles, float_key=self.exported.key,
                                      cache_dir=cache_dir)
            self.backend = build_backend(runtime, int8_path, threads, False)
            return  # random tiles are outside the calibrated ranges: checked on the first real batch only
        self.backend = build_backend(runtime, self.exported.path, threads, bfloat16)
        self._bfloat16 = bfloat16
        tiles = random_tiles(VERIFY_BATCH, in_channels, tile_shape)
        self._check(self.backend.run(tiles), tiles, "a fixed random batch")

    @property
    def name(self) -> str:
        """The runtime actually used (``torch`` after a fallback)."""
        return self.backend.name

    def _check(self, logits: torch.Tensor, tiles: torch.Tensor, where: str) -> torch.Tensor:
        reference = self.torch.run(tiles)
        agreement = (compare_masks(logits, reference, INT8_MIN_AGREEMENT, where) if self.int8
                     else compare_logits(logits, reference, self._tolerance, where))
        self.checks.append(agreement)
        if not agreement.ok:
            self.fallback_reason = f"{self.requested} disagrees with PyTorch: {agreement.describe()}"
            warnings.warn(f"{self.label}: {self.fallback_reason}; running on PyTorch instead",
                          RuntimeFallbackWarning, stacklevel=3)
            self.backend = TorchRunner(self.torch.network, self.torch.device, self.threads,
                                       bfloat16=self._tolerance is BFLOAT16_TOLERANCE)
            self.int8 = False
            self._verified_on_real_tiles = True
        return reference

    def run(self, tiles: torch.Tensor) -> torch.Tensor:
        logits = self.backend.run(tiles)
        if not self._verified_on_real_tiles:
            self._verified_on_real_tiles = True
            reference = self._check(logits, tiles, "the first real batch")
            if self.fallback_reason is not None:
                return reference
        return logits
