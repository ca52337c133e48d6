"""What produced a number: package versions, git revision, device. Shared by training and scoring."""

from __future__ import annotations

import ast
import ctypes
import functools
import importlib.util
import os
import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from benchmark import __version__


def available_cores() -> int:
    """CPU cores this process may use: its affinity mask where the OS has one (Linux), else all cores."""
    if hasattr(os, "sched_getaffinity"):  # absent on macOS and Windows
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def package_versions(packages=("cordbench", "nnunetv2", "torch", "numpy", "nibabel")) -> dict[str, str]:
    found = {}
    for package in packages:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found


#: Package folders whose code never changes a score (the command line, developer tools).
_INTERFACE_FOLDERS = ("cli", "devtools")


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """sha256 of the code a score depends on: every ``.py`` file of the benchmark package except its interface
    (``cli/``, ``devtools/``), and the versions of the packages that compute it (``package_versions``). Part of a
    work unit's id: a unit finished by other code is run again. Independent of git (an installed wheel has one
    digest per release; a working checkout, one per edit)."""
    import hashlib
    import json

    package = Path(__file__).resolve().parent
    digest = hashlib.sha256(json.dumps(package_versions(), sort_keys=True).encode())
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        if relative.parts[0] in _INTERFACE_FOLDERS:
            continue
        digest.update(relative.as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def git_revision() -> str | None:
    """The checkout's commit, or None outside a git checkout."""
    try:
        completed = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                                   text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (completed.stdout.strip() or None) if completed.returncode == 0 else None


def torch_build_accelerators() -> dict[str, str | None] | None:
    """What the installed torch was built for, read from its ``torch/version.py`` without importing torch (~2 s and
    ~300 MB per process): {"cuda": "13.0" or None, "hip": ...}; None when torch is not installed."""
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        return None
    try:
        tree = ast.parse((Path(spec.origin).parent / "version.py").read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return None
    found: dict[str, str | None] = {}
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        value = getattr(node, "value", None)
        if isinstance(target, ast.Name) and target.id in ("cuda", "hip") and isinstance(value, ast.Constant):
            found[target.id] = value.value
    return found


def cuda_driver_devices() -> int:
    """GPUs the CUDA driver reports to this process (CUDA_VISIBLE_DEVICES applies); 0 without a driver."""
    names = {"win32": ["nvcuda.dll"], "darwin": []}.get(sys.platform, ["libcuda.so.1", "libcuda.so"])
    for name in names:
        try:
            driver = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        if driver.cuInit(0) != 0 or driver.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return 0
        return count.value
    return 0


def torch_device() -> str | None:
    """The device torch would pick here, "cuda" or "cpu" (as ``torch.cuda.is_available()`` says), without importing
    torch where it is not loaded yet: a CUDA build of torch and a driver that reports a GPU. None without torch."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    build = torch_build_accelerators()
    if build is None:
        return None
    if build.get("hip"):  # ROCm builds answer through torch.cuda too: ask torch itself
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cuda" if build.get("cuda") and cuda_driver_devices() > 0 else "cpu"


def environment() -> dict[str, str]:
    info = {"python": platform.python_version(), "platform": platform.platform(), "cordbench": __version__}
    info.update(package_versions(("nnunetv2", "torch", "numpy", "nibabel")))
    device = torch_device()
    if device is not None:
        info["device"] = device
    revision = git_revision()
    if revision:
        info["git_revision"] = revision
    return info
