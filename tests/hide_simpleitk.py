"""Run as ``python -c "import hide_simpleitk; ..."``: SimpleITK cannot be imported in this process, as on a machine
without it, except as cordbench's stand-in (benchmark/compat) once that is on sys.path (tests/test_gpu_kit.py)."""

import importlib.abc
import importlib.machinery
import sys


class HideSimpleITK(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "SimpleITK":
            return None
        for entry in sys.path:
            if entry.endswith("stand_ins"):
                return importlib.machinery.PathFinder.find_spec(name, [entry])
        raise ModuleNotFoundError("No module named 'SimpleITK'", name=name)


sys.meta_path.insert(0, HideSimpleITK())
