"""nnU-Net engine: planning with a quick profile, a resumable seeded trainer, and a fast batched predictor.

Public API (imported lazily, so ``import benchmark.nnunet`` does not load torch or nnunetv2):

- :func:`benchmark.nnunet.train.train_model` -> :class:`benchmark.nnunet.train.TrainedModel`
- :func:`benchmark.nnunet.predict.load_model` -> :class:`benchmark.nnunet.predict.NnunetModel`
- :func:`benchmark.nnunet.plans.plan_and_preprocess`
- :class:`benchmark.nnunet.trainer.UnsafeCheckpointError`

See docs/nnunet.md.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "train_model": "benchmark.nnunet.train",
    "TrainedModel": "benchmark.nnunet.train",
    "load_model": "benchmark.nnunet.predict",
    "NnunetModel": "benchmark.nnunet.predict",
    "plan_and_preprocess": "benchmark.nnunet.plans",
    "UnsafeCheckpointError": "benchmark.nnunet.trainer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'benchmark.nnunet' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
