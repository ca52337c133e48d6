"""Which runtime runs the network: the caller's choice, or on CPU the fastest installed one."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Literal, get_args

from benchmark.errors import CordbenchError

Runtime = Literal["auto", "openvino", "onnxruntime", "torch"]
RUNTIMES: tuple[str, ...] = get_args(Runtime)
# "auto" on CPU: the first installed of these (measured fastest first, docs/nnunet.md). On CUDA: torch. With pinned
# CPU kernels (benchmark.kernels): torch, the only one whose every kernel the AVX2 cap reaches (OpenVINO keeps
# AVX-512 kernels for instance norm, ONNX Runtime has no cap; docs/reproducibility.md).
CPU_PREFERENCE: tuple[str, ...] = ("openvino", "onnxruntime", "torch")
_MODULES = {"openvino": "openvino", "onnxruntime": "onnxruntime", "torch": "torch"}


class RuntimeSelectionError(CordbenchError, ValueError):
    """The runtime asked for is unknown, not installed, or cannot run on the device."""


def installed(runtime: str) -> bool:
    """Is the runtime's Python package importable here (found without importing it)?"""
    return importlib.util.find_spec(_MODULES[runtime]) is not None


def select_runtime(requested: str, device_type: str, *, is_installed: Callable[[str], bool] = installed,
                   pinned_kernels: bool = False) -> str:
    """The runtime that will run the network: ``requested`` checked, or ``auto`` resolved for the device (torch
    where the CPU kernels are pinned)."""
    if requested not in RUNTIMES:
        raise RuntimeSelectionError(f"unknown runtime {requested!r}; choose one of {', '.join(RUNTIMES)}")
    if requested == "auto":
        if device_type != "cpu" or pinned_kernels:
            return "torch"
        return next(runtime for runtime in CPU_PREFERENCE if runtime == "torch" or is_installed(runtime))
    if requested != "torch" and device_type != "cpu":
        raise RuntimeSelectionError(f"runtime {requested!r} runs on the CPU only, the device is {device_type!r}; "
                                    "use --device cpu or --runtime torch")
    if not is_installed(requested):
        raise RuntimeSelectionError(f"runtime {requested!r} is not installed (pip install {_MODULES[requested]}), "
                                    "or use --runtime auto")
    return requested
