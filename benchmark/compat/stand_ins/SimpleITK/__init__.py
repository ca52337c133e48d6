"""Stand-in for SimpleITK where it is not installed (see benchmark/compat/__init__.py): importable, unusable."""

CORDBENCH_STAND_IN = True


def __getattr__(name: str):
    if name.startswith("__"):  # the import system, pickle and inspect probe dunders: answer as a module would
        raise AttributeError(name)
    from benchmark.compat import OptionalDependencyError

    raise OptionalDependencyError(
        f"SimpleITK is not installed, and nnU-Net needs it here (SimpleITK.{name}): it reads and writes images "
        "through SimpleITKIO (cordbench itself uses NibabelIO for NIfTI). Install it: pip install SimpleITK")
