"""Optional heavy dependencies of nnU-Net that cordbench never uses: stand-ins when they are missing.

nnU-Net imports SimpleITK at module level in its predictor, preprocessor and resampling modules, but cordbench
reads and writes images with nibabel (NibabelIO) only. SimpleITK's wheel is ~50 MB: on a machine where packages
travel by hand (a GPU machine without network, tools/gpu/) it is left out. When it is not installed,
:func:`allow_missing_simpleitk` appends a folder holding a stand-in ``SimpleITK`` module to ``sys.path`` (last, so
an installed SimpleITK always wins, also one installed later). Importing it works; using any of its names raises
:class:`OptionalDependencyError` saying that SimpleITK is needed there and how to install it. Processes nnU-Net
spawns inherit ``sys.path``, so its worker pools see the stand-in too.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from benchmark.errors import CordbenchError

STAND_INS = Path(__file__).resolve().parent / "stand_ins"


class OptionalDependencyError(CordbenchError, ImportError):
    """An optional package that is not installed was really needed (e.g. SimpleITK to read a non-NIfTI image)."""


def allow_missing_simpleitk() -> bool:
    """Put the SimpleITK stand-in on the import path when SimpleITK is not installed; True when it did."""
    if str(STAND_INS) in sys.path:
        return True
    try:
        installed = importlib.util.find_spec("SimpleITK") is not None
    except (ImportError, ValueError):  # a broken install, or a finder refusing it: treat as not installed
        installed = False
    if installed:
        return False
    sys.path.append(str(STAND_INS))
    return True
