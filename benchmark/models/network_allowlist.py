"""The classes an untrusted nnU-Net plans file may name, as exact strings, checked before anything is imported.

nnU-Net rebuilds the network with ``pydoc.locate(name)``, which imports modules AND follows attributes:
``torch.nn.modules.module.torch.hub.load`` is ``torch.hub.load``, which runs a ``hubconf.py``. A prefix test
(``startswith("torch.nn.")``) therefore lets any code run. Here a name is accepted only when it is one of
the fully qualified names below, character for character; anything else needs ``--trust-checkpoint``.
"""

from __future__ import annotations

from collections.abc import Iterable

_UNET_MODULE = "dynamic_network_architectures.architectures.unet"
NETWORK_CLASSES = frozenset({
    # the U-Nets nnU-Net's experiment planners write into plans (default and residual-encoder planners)
    f"{_UNET_MODULE}.PlainConvUNet",
    f"{_UNET_MODULE}.ResidualEncoderUNet",
    f"{_UNET_MODULE}.ResidualUNet",
})


def _torch_names(module: str, classes: Iterable[str]) -> set[str]:
    """A torch layer by its defining module (what nnU-Net's planner writes) and by its ``torch.nn`` alias."""
    return {f"torch.nn.modules.{module}.{name}" for name in classes} | {f"torch.nn.{name}" for name in classes}


LAYER_CLASSES = frozenset(
    _torch_names("conv", ("Conv1d", "Conv2d", "Conv3d"))
    | _torch_names("instancenorm", ("InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"))
    | _torch_names("batchnorm", ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d"))
    | _torch_names("normalization", ("GroupNorm", "LayerNorm"))
    | _torch_names("dropout", ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d"))
    | _torch_names("activation", ("LeakyReLU", "ReLU", "PReLU", "ELU", "GELU", "SiLU"))
)
"""Layer classes a plans file passes as keyword arguments that need an import (conv_op, norm_op, dropout_op,
nonlin)."""


def refused_names(network_class: str, imported_kwargs: Iterable[object]) -> list[str]:
    """The names in a configuration that are not on the lists (empty: safe to build without trusting)."""
    refused = [] if network_class in NETWORK_CLASSES else [network_class]
    refused += [str(name) for name in imported_kwargs if name is not None and str(name) not in LAYER_CLASSES]
    return refused
