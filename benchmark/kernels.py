"""Which CPU kernels cordbench's own training and scoring processes run: pinned (the default) or native.

torch computes float32 convolutions on the CPU with oneDNN, which picks its kernels by the instruction set it
finds (AVX-512, AVX2, ...); torch's own vectorised kernels (ATen) do the same. Two kernels add the same products in
another order, and a seeded training amplifies those last-bit differences into another model: the same seed,
packages and thread count gave other weights and other scores on an AVX2-only CPU than on an AVX-512 one
(docs/reproducibility.md). **Pinned** kernels cap both at AVX2, which every x86-64 CPU with AVX2 honours, so the
same inputs and seed give the same weights and scores on all of them; **native** kernels (the opt-out,
``CORDBENCH_CPU_KERNELS=native`` or ``--native-kernels``) let each CPU use its fastest, and say so where they
leave a record.

The libraries read these variables the first time they compute, not when they are imported, so :func:`apply`
must run before the process's first torch kernel: cordbench calls it at the start of every process it starts
(the CLI, local workers, SLURM jobs), and child processes inherit the environment it sets. A process that ran
torch before cordbench could pin it (a notebook) is recorded as ``unpinned-<isa>``, after checking what is in
effect (:func:`kernels_in_effect`).

``CORDBENCH_HOST=least-capable`` makes this machine behave as the least capable CPU cordbench supports
reproducibly (x86-64 with AVX2, no AVX-512, no native bfloat16): the AVX2 cap is always on, and capability checks
(:func:`cpu_isa`, ``benchmark.models.runtime.hardware.native_bf16``) report no AVX-512 and no bfloat16. CI runs
the test suite that way (``.ci/run``).

Base layer: importing this module never imports torch.
"""

from __future__ import annotations

import os
import platform
import re
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from benchmark.errors import CordbenchError

ENV_KERNELS = "CORDBENCH_CPU_KERNELS"
ENV_HOST = "CORDBENCH_HOST"
KERNEL_CHOICES = ("pinned", "native")
LEAST_CAPABLE = "least-capable"
#: The instruction set pinned kernels are capped at: every x86-64 CPU of the last decade has it.
PINNED_ISA = "avx2"
PINNED_LABEL = f"pinned-{PINNED_ISA}"
#: Set before torch computes, in every process cordbench starts. oneDNN (torch's convolutions; OpenVINO's too)
#: and ATen (torch's own vectorised kernels) change a seeded training when their ISA changes
#: (tools/cpu_isa_determinism.py --all); MKL did not in that measurement but is capped for the same price.
PIN_VARIABLES = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
#: /proc/cpuinfo flags a CPU needs to honour the pin (oneDNN's AVX2 kernels use FMA too).
PIN_REQUIRES = ("avx2", "fma")


class KernelSettingError(CordbenchError, ValueError):
    """CORDBENCH_CPU_KERNELS or CORDBENCH_HOST holds a value cordbench does not know."""


@dataclass(frozen=True)
class KernelSetting:
    """What a process asked for and what is in effect.

    ``label`` is what results files and manifests record: ``pinned-avx2``; ``native-<isa>`` (the CPU's own
    choice, asked for, or the only one possible on this CPU); ``unpinned-<isa>`` (pinned was asked for and is not
    in effect: torch computed before cordbench could pin it). ``note`` says why in one sentence.
    """

    requested: str
    label: str
    note: str

    @property
    def pinned(self) -> bool:
        return self.label == PINNED_LABEL


def _read_choice(name: str, allowed: tuple[str, ...], default: str | None) -> str | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if value not in allowed:
        raise KernelSettingError(f"${name}={value!r}: expected one of {', '.join(allowed)}")
    return value


def requested_kernels() -> str:
    """``pinned`` (default) or ``native``, from ``$CORDBENCH_CPU_KERNELS``."""
    return _read_choice(ENV_KERNELS, KERNEL_CHOICES, "pinned")


def least_capable() -> bool:
    """Does ``$CORDBENCH_HOST=least-capable`` ask this machine to behave as an AVX2-only CPU?"""
    return _read_choice(ENV_HOST, (LEAST_CAPABLE,), None) == LEAST_CAPABLE


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none, e.g. macOS)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86 / arm64
            return frozenset(value.split())
    return frozenset()


def _x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64", "i686", "i386")


def cpu_isa() -> str:
    """The widest vector instruction set oneDNN would use here: ``amx``, ``avx512``, ``avx2``, ``sse41``,
    ``x86-64`` (none of those, or unknown), or the machine name elsewhere (``arm64``). With
    ``CORDBENCH_HOST=least-capable`` never more than ``avx2``."""
    if not _x86():
        machine = platform.machine().lower() or "unknown"
        return "arm64" if machine in ("aarch64", "arm64") else machine
    flags = cpu_flags()
    if "amx_tile" in flags:
        isa = "amx"
    elif "avx512f" in flags:
        isa = "avx512"
    elif all(flag in flags for flag in PIN_REQUIRES):
        isa = "avx2"
    elif "sse4_1" in flags:
        isa = "sse41"
    else:
        isa = "x86-64"
    if least_capable() and isa in ("amx", "avx512"):
        return PINNED_ISA
    return isa


def can_pin() -> tuple[bool, str]:
    """(can this CPU honour the AVX2 cap, why not). Setting ATEN_CPU_CAPABILITY=avx2 on a CPU without AVX2 would
    make torch run instructions the CPU does not have, so the pin is only set where the flags say AVX2 and FMA."""
    if not _x86():
        return False, f"{cpu_isa()} CPU: the x86 kernel pin does not apply; its kernels are the CPU's own"
    flags = cpu_flags()
    missing = [flag for flag in PIN_REQUIRES if flag not in flags]
    if not flags:
        return False, "the CPU's instruction set is unknown (no /proc/cpuinfo): kernels left to the CPU"
    if missing:
        return False, f"the CPU lacks {', '.join(missing)}: pinned kernels need AVX2; kernels left to the CPU"
    return True, ""


def pin_wanted(requested: str) -> bool:
    """Is the AVX2 cap set for this request here? Pinned asks for it; least-capable always has it."""
    return (requested == "pinned" or least_capable()) and can_pin()[0]


def child_environment(requested: str | None = None) -> dict[str, str]:
    """What a process cordbench starts must carry: the request (and the host override), from which the child
    sets the pin itself at start (:func:`apply`): the child may run on another CPU (a SLURM node)."""
    values = {ENV_KERNELS: requested or current().requested}
    if least_capable():
        values[ENV_HOST] = LEAST_CAPABLE
    return values


_applied: KernelSetting | None = None


def apply(requested: str | None = None) -> KernelSetting:
    """Set (or clear) the pin variables in this process's environment for ``requested`` (default
    ``$CORDBENCH_CPU_KERNELS``, else pinned) and remember what is in effect. Call it before torch computes;
    calling it again with another choice works only while torch has not computed yet (then it is recorded as not
    in effect)."""
    global _applied
    requested = requested or requested_kernels()
    if requested not in KERNEL_CHOICES:
        raise KernelSettingError(f"CPU kernels {requested!r}: expected one of {', '.join(KERNEL_CHOICES)}")
    wanted = pin_wanted(requested)
    torch_loaded = "torch" in sys.modules
    for name, value in PIN_VARIABLES.items():
        if wanted:
            os.environ[name] = value
        else:
            os.environ.pop(name, None)
    os.environ[ENV_KERNELS] = requested
    _applied = _describe(requested, wanted, torch_loaded)
    return _applied


def current() -> KernelSetting:
    """The setting of this process: the one :func:`apply` made, else applied now from the environment."""
    return _applied if _applied is not None else apply()


def _describe(requested: str, wanted: bool, torch_loaded: bool) -> KernelSetting:
    isa = cpu_isa()
    if torch_loaded:  # the variables are read at torch's first computation: check what it actually runs
        effect = kernels_in_effect() or {}
        capped = effect == {"aten": PINNED_ISA, "onednn": PINNED_ISA}
        seen = ", ".join(f"{key} {value}" for key, value in effect.items()) or "unknown"
        if wanted and not capped:
            actual = effect.get("onednn") if effect.get("onednn") not in (None, "unknown") else isa
            return KernelSetting(requested, f"unpinned-{actual}", "torch computed before cordbench could pin its "
                                 f"kernels (in effect: {seen}); start a fresh Python process to pin them")
        if not wanted and capped and isa != PINNED_ISA:
            return KernelSetting(requested, PINNED_LABEL, "native kernels asked for, but torch had already computed "
                                 "with the pinned ones in this process")
    if wanted:
        why = " (CORDBENCH_HOST=least-capable)" if requested == "native" else ""
        label = PINNED_LABEL if requested == "pinned" else f"native-{PINNED_ISA}"
        return KernelSetting(requested, label, f"oneDNN and ATen capped at AVX2{why}")
    if requested == "pinned":
        return KernelSetting(requested, f"native-{isa}", can_pin()[1])
    return KernelSetting(requested, f"native-{isa}", "native kernels asked for (CORDBENCH_CPU_KERNELS=native)")


def label_for(runtime: str | None, device: str | None) -> str | None:
    """The kernel label of a network run by ``runtime`` on ``device`` in this process: None when cordbench did not
    run a network (command, python and predictions models), ``cuda`` on a GPU (not pinned), and ``native-<isa>``
    or ``unpinned-<isa>`` for OpenVINO and ONNX Runtime, which choose some of their kernels by the CPU whatever the
    cap (measured: OpenVINO's instance norm stays AVX-512; ONNX Runtime has no cap at all)."""
    if runtime is None:
        return None
    if device is not None and device != "cpu":
        return device.split(":")[0]
    setting = current()
    if runtime != "torch" and setting.pinned:
        return f"unpinned-{cpu_isa()}" if setting.requested == "pinned" else f"native-{cpu_isa()}"
    return setting.label


_ONEDNN_IMPLEMENTATION = re.compile(r"onednn_verbose,.*?,exec,cpu,convolution,([^,]+),")


def _isa_name(text: str) -> str:
    text = text.lower()
    for name in ("amx", "avx512", "avx2", "sse41"):
        if name in text:
            return name
    return text


def kernels_in_effect() -> dict[str, str] | None:
    """What torch computes with in this process: ATen's capability and the ISA of oneDNN's convolution kernel
    (from oneDNN's verbose output of one small convolution), e.g. ``{"aten": "avx2", "onednn": "avx2"}``. Uses
    torch only when it is already loaded (None otherwise); fixes the ISA for the rest of the process, as any first
    computation would."""
    global _in_effect
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    if _in_effect is None:  # fixed at torch's first computation, so once a process is enough
        found = {"aten": _isa_name(str(torch.backends.cpu.get_cpu_capability())), "onednn": "unknown"}
        if torch.backends.mkldnn.is_available():
            try:
                found["onednn"] = _onednn_convolution_isa(torch)
            except OSError:  # no file descriptor 1 to redirect (a daemon): the ATen part still says something
                pass
        _in_effect = found
    return dict(_in_effect)


_in_effect: dict[str, str] | None = None


def _onednn_convolution_isa(torch) -> str:
    """Run one convolution large enough for torch to hand it to oneDNN, with oneDNN's verbose output (written by
    the C library to file descriptor 1) caught in a temporary file; the ISA named by its implementation."""
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile(mode="w+b") as caught:
        os.dup2(caught.fileno(), 1)
        try:
            with torch.no_grad(), torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
                torch.nn.functional.conv2d(torch.ones(2, 16, 64, 64), torch.ones(16, 16, 3, 3), padding=1)
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        caught.seek(0)
        text = caught.read().decode("utf-8", "replace")
    match = _ONEDNN_IMPLEMENTATION.search(text)
    return _isa_name(match.group(1)) if match else "unknown"
