"""Rehearse the GPU check on this CPU machine, install path included, before spending device time.

Builds a Python environment shaped like the lent GPU machine's (the packages of tools/gpu/preinstalled.txt, torch
included, linked from this environment, and nothing else: no nnunetv2, nibabel, pydantic or SimpleITK), downloads
the kit for THIS Python (tools/gpu/fetch_wheels.py --python-version of this interpreter; the GPU machine's is
3.12), then runs tools/gpu/on_device.sh with that environment's interpreter: the wheels are installed with
pip --no-index --no-deps --target, and tools/gpu/check.py runs its CUDA steps on the CPU at the smallest size.

    .venv/bin/python tools/gpu/cpu_rehearsal.py --work /tmp/gpu-rehearsal     # ~5 min on 2 cores

The result is WORK/out/gpu-check.json and gpu-check.log, as the device tool would bring back.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
import fetch_wheels  # noqa: E402


def gpu_image_distributions(kit: set[str]) -> list[metadata.Distribution]:
    """The distributions installed here that the GPU image has (its list, and what those need), minus the kit's."""
    environment = fetch_wheels.target_environment(f"{sys.version_info.major}.{sys.version_info.minor}")
    wanted = [Requirement(name) for name in fetch_wheels.preinstalled()]
    found: dict[str, metadata.Distribution] = {}
    while wanted:
        requirement = wanted.pop()
        name = fetch_wheels.normalise(requirement.name)
        if name in found or name in kit:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate({**environment, "extra": ""}):
            continue
        try:
            distribution = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            continue  # on the GPU image, not here (e.g. jax): nothing cordbench needs
        found[name] = distribution
        wanted.extend(Requirement(text) for text in distribution.requires or [])
    return list(found.values())


def link_site(distributions: list[metadata.Distribution], site: Path) -> None:
    """``site`` holding a link to every top-level file or folder of the distributions."""
    site.mkdir(parents=True, exist_ok=True)
    for distribution in distributions:
        base = Path(distribution.locate_file(""))
        tops = {Path(str(path)).parts[0] for path in distribution.files or [] if not str(path).startswith("..")}
        for top in tops:
            source, target = base / top, site / top
            if source.exists() and not target.exists() and top not in ("bin", "__pycache__"):
                target.symlink_to(source)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--budget-s", default="900", help="check.py's budget (the CPU is slower than the GPU)")
    args = parser.parse_args()
    work = args.work.resolve()
    kit = work / "kit"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    subprocess.run([sys.executable, str(HERE / "fetch_wheels.py"), "--python-version", version, "--out", str(kit)],
                   check=True)
    carried = {fetch_wheels.normalise(line.split("==")[0]) for line in (kit / "requirements.txt").read_text().split()}
    environment = work / "gpu-like-python"
    if not (environment / "bin" / "python").exists():
        subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(environment)], check=True)
    site = work / "gpu-image-packages"
    link_site(gpu_image_distributions(carried), site)
    site_packages = next((environment / "lib").glob("python3*/site-packages"))
    (site_packages / "gpu_image.pth").write_text(f"{site}\n")
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(KIT=str(kit), SITE=str(work / "site"), PYTHON=str(environment / "bin" / "python"),
               OUT=str(work / "out"), BUDGET_S=args.budget_s)
    return subprocess.run(["bash", str(HERE / "on_device.sh")], env=env, cwd=REPO).returncode


if __name__ == "__main__":
    sys.exit(main())
