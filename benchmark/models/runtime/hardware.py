"""What the CPU running inference offers: usable cores, its model name, native bfloat16.

``CORDBENCH_HOST=least-capable`` (benchmark.kernels) reports no native bfloat16 whatever the CPU, as on an
AVX2-only CPU; so does a process whose oneDNN is capped at AVX2 (pinned kernels), where bfloat16 would be
emulated.
"""

from __future__ import annotations

import os
import platform
from functools import lru_cache
from pathlib import Path

from benchmark import kernels
from benchmark.environment import available_cores
from benchmark.errors import CordbenchError

# /proc/cpuinfo flags meaning the CPU computes bfloat16 natively (AVX512-BF16 dot products, AMX tiles).
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def _onednn_has_bf16() -> bool:
    """oneDNN's own answer (it honours ONEDNN_MAX_CPU_ISA); False where torch has no such probe."""
    try:
        import torch

        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # an old torch without the probe
        return False


#: Default inference threads of this process when set (the local pool sets it for its workers; the test suite for
#: each of its processes, one per core), else the cores it may run on.
ENV_THREADS = "CORDBENCH_THREADS"


class ThreadSettingError(CordbenchError, ValueError):
    """$CORDBENCH_THREADS is not a whole number >= 1."""


def default_threads() -> int:
    """``$CORDBENCH_THREADS`` when set, else the cores this process may run on (its CPU affinity, which respects
    taskset/cgroups/SLURM), else all cores."""
    value = os.environ.get(ENV_THREADS, "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ThreadSettingError(f"${ENV_THREADS}={value!r}: expected a whole number of threads >= 1")
        return int(value)
    return available_cores()


def _cpuinfo_field(name: str) -> str | None:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return None


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's marketing name ('AMD EPYC 9654 96-Core Processor'), or the best the platform says."""
    return _cpuinfo_field("model name") or platform.processor() or platform.machine() or "unknown CPU"


def gpu_model() -> str | None:
    """The CUDA device's name ('NVIDIA H100 80GB HBM3'), or None without CUDA."""
    import torch

    return torch.cuda.get_device_name(torch.cuda.current_device()) if torch.cuda.is_available() else None


@lru_cache(maxsize=1)
def native_bf16() -> tuple[bool, str]:
    """(does this CPU compute bfloat16 natively, in this process, why we think so)."""
    flags = (_cpuinfo_field("flags") or "").split()
    found = [flag for flag in NATIVE_BF16_FLAGS if flag in flags]
    if found and kernels.least_capable():
        return False, (f"{kernels.ENV_HOST}={kernels.LEAST_CAPABLE}: treated as a CPU without native bfloat16 "
                       f"(the CPU reports {', '.join(found)})")
    if found and kernels.current().label.endswith(f"-{kernels.PINNED_ISA}"):
        return False, (f"oneDNN is capped at AVX2 (pinned CPU kernels), so bfloat16 would be emulated although the "
                       f"CPU reports {', '.join(found)}; {kernels.ENV_KERNELS}=native uses them")
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip()
    if found and cap and cap.upper() != "ALL" and not _onednn_has_bf16():
        # capped below its bfloat16 kernels (e.g. AVX2, to compute what an AVX2-only CPU computes): emulated, slow
        return False, f"the CPU reports {', '.join(found)} but ONEDNN_MAX_CPU_ISA={cap} keeps oneDNN from using it"
    if found:
        return True, f"the CPU reports {', '.join(found)}"
    if flags:
        return False, f"the CPU reports none of {', '.join(NATIVE_BF16_FLAGS)} (bfloat16 would be emulated, slower)"
    try:  # no /proc/cpuinfo (macOS): ask oneDNN through torch
        import torch

        if torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return True, "oneDNN reports native bfloat16 support"
    except Exception:  # an old torch without the probe: treat as unsupported
        pass
    return False, "no native bfloat16 support found"
