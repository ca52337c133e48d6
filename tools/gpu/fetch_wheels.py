"""Download the wheels a CUDA machine with PyTorch preinstalled lacks to run cordbench (run here, with the registries).

The GPU machines lent to this project (Python 3.12, torch 2.11 + CUDA 13, numpy/scipy/pandas/scikit-image/typer/
rich/pytest, no network) have no nnunetv2, nibabel or pydantic. This script walks the dependency tree of
cordbench's runtime requirements (pyproject.toml) as installed in THIS environment (the tested versions), drops
what the GPU image already has (tools/gpu/preinstalled.txt) and torch and CUDA themselves, and downloads each
remaining package, at the version installed here, as a wheel for x86-64 Linux / CPython 3.12 into an ignored
folder (default .gpu-kit/wheels). Packages published only as source (pure Python, e.g. acvl-utils) are built into
a py3-none-any wheel here. It also fetches bubblewrap's Debian package (the sandbox) when apt-get exists.

Left out on purpose (OPTIONAL below): SimpleITK (~50 MB, over the 60 MiB budget): nnU-Net imports it at module
level but cordbench reads images with NibabelIO only; cordbench puts a stand-in on the import path when it is
missing (benchmark/compat) that raises a clear error where SimpleITK is really used. The CPU-only runtimes
(openvino) and the leaderboard's web stack (streamlit, plotly) are not needed on a GPU machine.

    .venv/bin/python tools/gpu/fetch_wheels.py            # prints each wheel and the total size (<= 60 MiB)
    .venv/bin/python tools/gpu/fetch_wheels.py --python-version 3.11 --out /tmp/kit311   # this machine's Python

Then see tools/gpu/on_device.sh (docs/performance.md, "GPU") for the run on a lent machine.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
BUDGET_MIB = 60
# never carried: the GPU machine's own torch/CUDA stack must be used
NEVER = re.compile(r"^(torch|torchvision|torchaudio|triton|nvidia-.*|cuda-.*)$")
# runtime requirements of cordbench not needed on a GPU machine (CPU runtimes, the leaderboard's web app)
NOT_ON_GPU = {"openvino", "onnxruntime", "onnx", "streamlit", "plotly"}
# not carried: too big for the budget or never imported on cordbench's paths; why, for the summary
OPTIONAL = {
    "simpleitk": "~50 MB; nnU-Net imports it, cordbench reads NIfTI with NibabelIO (benchmark/compat stand-in)",
    "imagecodecs": "tifffile's optional codecs; cordbench reads NIfTI only",
    "unittest2": "declared by batchgenerators, never imported by it on Python 3",
    "future": "declared by batchgenerators, never imported on Python 3",
}
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux_2_5_x86_64", "manylinux1_x86_64")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def preinstalled() -> set[str]:
    lines = (HERE / "preinstalled.txt").read_text().splitlines()
    return {normalise(line) for line in lines if line.strip() and not line.startswith("#")}


def cordbench_requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return [Requirement(text) for text in project["dependencies"]]


def target_environment(python_version: str) -> dict[str, str]:
    environment = dict(default_environment())
    environment.update(python_version=python_version, python_full_version=f"{python_version}.0",
                       sys_platform="linux", platform_system="Linux", platform_machine="x86_64",
                       implementation_name="cpython", platform_python_implementation="CPython", os_name="posix")
    return environment


def closure(roots: list[Requirement], skip: set[str], environment: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """name -> installed version here, for every package reachable from ``roots`` that is not skipped; plus the
    requirements that are neither installed here nor skipped (to report)."""
    found: dict[str, str] = {}
    unresolved: list[str] = []
    todo = list(roots)
    while todo:
        requirement = todo.pop()
        name = normalise(requirement.name)
        if requirement.marker is not None and not requirement.marker.evaluate({**environment, "extra": ""}):
            continue
        if name in found or name in skip or NEVER.match(name):
            continue
        try:
            distribution = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            unresolved.append(str(requirement))
            continue
        found[name] = distribution.version
        todo.extend(Requirement(text) for text in distribution.requires or [])
    return found, unresolved


def download(name: str, version: str, out: Path, python_version: str) -> Path:
    """The package's wheel for the target (binary from the registry, else built here if pure Python)."""
    before = set(out.iterdir())
    platform_args = [argument for platform in PLATFORMS for argument in ("--platform", platform)]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
               "--python-version", python_version, "--implementation", "cp", *platform_args, "-d", str(out),
               f"{name}=={version}"]
    if subprocess.run(command, capture_output=True, text=True).returncode != 0:
        with tempfile.TemporaryDirectory() as scratch:  # source only: build it (pure Python) and check it is
            built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", scratch,
                                    f"{name}=={version}"], capture_output=True, text=True)
            wheels = list(Path(scratch).glob("*.whl"))
            if built.returncode != 0 or len(wheels) != 1:
                raise SystemExit(f"{name}=={version}: no wheel for CPython {python_version} x86-64 Linux and building "
                                 f"one failed:\n{built.stderr[-2000:]}")
            if not wheels[0].name.endswith("-none-any.whl"):
                raise SystemExit(f"{name}=={version}: only a source release, and it is not pure Python "
                                 f"({wheels[0].name}): it cannot be built here for the GPU machine")
            shutil.move(str(wheels[0]), out / wheels[0].name)
    new = sorted(set(out.iterdir()) - before)
    if len(new) != 1:
        existing = sorted(out.glob(f"{re.sub('[-_.]+', '_', name)}-{version}-*.whl"), key=str.lower)
        if existing:
            return existing[0]
        raise SystemExit(f"{name}=={version}: expected one wheel, got {[path.name for path in new]}")
    return new[0]


def debian_packages(out: Path) -> list[Path]:
    """bubblewrap's .deb (the sandbox), for dpkg -x on the GPU machine; none without apt-get."""
    if shutil.which("apt-get") is None:
        return []
    completed = subprocess.run(["apt-get", "download", "bubblewrap"], cwd=out, capture_output=True, text=True)
    if completed.returncode != 0:
        print(f"note: bubblewrap's .deb not fetched ({completed.stderr.strip()[-300:]}); the sandbox step will "
              "be skipped where the GPU machine has no bwrap")
    return sorted(out.glob("bubblewrap_*.deb"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / ".gpu-kit", help="kit folder (wheels/ and debs/ in it)")
    parser.add_argument("--python-version", default="3.12", help="the GPU machine's Python (default 3.12)")
    parser.add_argument("--budget-mib", type=float, default=BUDGET_MIB)
    args = parser.parse_args(argv)
    wheels, debs = args.out / "wheels", args.out / "debs"
    shutil.rmtree(wheels, ignore_errors=True)
    shutil.rmtree(debs, ignore_errors=True)
    wheels.mkdir(parents=True)
    debs.mkdir(parents=True)
    skip = preinstalled() | NOT_ON_GPU | set(OPTIONAL)
    roots = [requirement for requirement in cordbench_requirements() if normalise(requirement.name) not in skip]
    packages, unresolved = closure(roots, skip, target_environment(args.python_version))
    if unresolved:
        raise SystemExit(f"not installed here, so no tested version to carry: {', '.join(unresolved)}")
    total = 0
    for name, version in sorted(packages.items()):
        wheel = download(name, version, wheels, args.python_version)
        total += wheel.stat().st_size
        print(f"{wheel.stat().st_size / 2**20:7.2f} MiB  {wheel.name}")
    for deb in debian_packages(debs):
        total += deb.stat().st_size
        print(f"{deb.stat().st_size / 2**20:7.2f} MiB  {deb.name}")
    (args.out / "requirements.txt").write_text("".join(f"{name}=={version}\n" for name, version in sorted(packages.items())))
    print(f"total {total / 2**20:.1f} MiB in {args.out} ({len(packages)} wheels; budget {args.budget_mib:g} MiB)")
    for name, why in sorted(OPTIONAL.items()):
        print(f"not carried: {name}: {why}")
    if total > args.budget_mib * 2**20:
        print(f"error: the kit is over its budget of {args.budget_mib:g} MiB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
