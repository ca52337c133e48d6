"""nnU-Net training engine: planning with a quick profile and a resumable seeded trainer (prediction: benchmark.models.nnunet).

Public API (imported lazily, so ``import benchmark.training.nnunet`` does not load torch or nnunetv2):

- :func:`benchmark.training.nnunet.train.train_model` -> :class:`benchmark.training.nnunet.train.TrainedModel`
- :func:`benchmark.training.nnunet.plans.plan_and_preprocess`
- :class:`benchmark.training.nnunet.trainer.UnsafeCheckpointError`

See docs/nnunet.md.
"""

from __future__ import annotations

from benchmark.compat import allow_missing_simpleitk

allow_missing_simpleitk()  # nnU-Net imports SimpleITK; cordbench never uses it (benchmark/compat)

from importlib import import_module
from typing import Any

_EXPORTS = {
    "train_model": "benchmark.training.nnunet.train",
    "TrainedModel": "benchmark.training.nnunet.train",
    "plan_and_preprocess": "benchmark.training.nnunet.plans",
    "UnsafeCheckpointError": "benchmark.training.nnunet.trainer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'benchmark.training.nnunet' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
