"""What produced a number: package versions, git revision, device. Shared by training and scoring."""

from __future__ import annotations

import os
import platform
import subprocess
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


def git_revision() -> str | None:
    """The checkout's commit, or None outside a git checkout."""
    try:
        completed = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                                   text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (completed.stdout.strip() or None) if completed.returncode == 0 else None


def environment() -> dict[str, str]:
    info = {"python": platform.python_version(), "platform": platform.platform(), "cordbench": __version__}
    info.update(package_versions(("nnunetv2", "torch", "numpy", "nibabel")))
    try:
        import torch

        info["device"] = "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        pass
    revision = git_revision()
    if revision:
        info["git_revision"] = revision
    return info
