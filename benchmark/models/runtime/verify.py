"""Is a runtime's output the network's? Logits compared with PyTorch's on the same tiles.

Tolerance (documented in docs/nnunet.md): the largest absolute difference of any logit must be at most
``atol + rtol * max|logit_torch|``. float32 runtimes: atol = rtol = 1e-3 (measured: 2e-6 for ONNX Runtime and
1e-5 for OpenVINO on nnU-Net networks whose logits reach about 10; an export that is wrong differs by 0.1 to
10s). bfloat16 keeps 8 bits of mantissa, so its logits differ by about 1 %: atol 0.1, rtol 0.05. int8 (opt-in,
benchmark.models.runtime.quantize) is checked on what it is for, the mask: the class chosen per voxel
(argmax of the logits) must agree with PyTorch's on at least 99 % of the voxels of the first real batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float

    def allowed(self, reference: torch.Tensor) -> float:
        return self.atol + self.rtol * float(reference.abs().max())


FLOAT32_TOLERANCE = Tolerance(atol=1e-3, rtol=1e-3)
BFLOAT16_TOLERANCE = Tolerance(atol=0.1, rtol=0.05)
INT8_MIN_AGREEMENT = 0.99


@dataclass(frozen=True)
class Agreement:
    """How far a runtime's logits are from PyTorch's on one batch of tiles."""

    max_difference: float
    allowed: float
    where: str
    measure: str = "max |logit difference|"

    @property
    def ok(self) -> bool:
        return self.max_difference <= self.allowed  # NaN compares false: a NaN output fails

    def describe(self) -> str:
        relation = "<=" if self.ok else ">"
        return f"{self.measure} {self.max_difference:.3g} {relation} {self.allowed:.3g} allowed, on {self.where}"


def compare_logits(candidate: torch.Tensor, reference: torch.Tensor, tolerance: Tolerance, where: str) -> Agreement:
    """The largest absolute difference between two logit tensors of the same shape, against the tolerance."""
    candidate = candidate.detach().float().cpu()
    reference = reference.detach().float().cpu()
    if candidate.shape != reference.shape:
        return Agreement(float("inf"), tolerance.allowed(reference), f"{where} (shape {tuple(candidate.shape)} "
                         f"instead of {tuple(reference.shape)})")
    difference = (candidate - reference).abs().max()
    return Agreement(float(difference) if bool(torch.isfinite(difference)) else float("inf"),
                     tolerance.allowed(reference), where)


def compare_masks(candidate: torch.Tensor, reference: torch.Tensor, min_agreement: float, where: str) -> Agreement:
    """The fraction of voxels whose class (argmax over the logit channels) differs from the reference's."""
    candidate = candidate.detach().float().cpu()
    reference = reference.detach().float().cpu()
    if candidate.shape != reference.shape or not bool(torch.isfinite(candidate).all()):
        return Agreement(1.0, 1 - min_agreement, f"{where} (shape {tuple(candidate.shape)} or non-finite values)",
                         "voxels of another class")
    disagreement = float((candidate.argmax(1) != reference.argmax(1)).float().mean())
    return Agreement(disagreement, 1 - min_agreement, where, "fraction of voxels of another class")


def random_tiles(batch: int, in_channels: int, tile_shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """A fixed batch of standard-normal tiles (the scale of nnU-Net's z-scored inputs)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn((batch, in_channels, *tile_shape), generator=generator, dtype=torch.float32)
