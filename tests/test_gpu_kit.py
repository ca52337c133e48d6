"""The GPU device kit (tools/gpu/), tested on this CPU machine: what it carries, the SimpleITK stand-in that lets it
leave SimpleITK out, the supported torch range, the sandbox's GPU environment, and the on-device script run end
to end with its CUDA steps on the CPU (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
sys.path.insert(0, str(REPO / "tools" / "gpu"))
import fetch_wheels  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(REPO)])}


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, cwd=REPO, timeout=300)


def test_without_simpleitk_cordbench_imports_nnunet_and_names_simpleitk_where_it_is_used():
    completed = _python(
        "import hide_simpleitk, importlib.util\n"
        "import benchmark.models.nnunet.predict, benchmark.training.nnunet.train, benchmark.training.nnunet.plans\n"
        "import SimpleITK\n"
        "assert SimpleITK.CORDBENCH_STAND_IN\n"
        "from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO\n"
        "SimpleITKIO().read_images(['x.nrrd'])\n")
    assert completed.returncode == 1, completed.stderr
    last = completed.stderr.strip().splitlines()[-1]
    assert last == ("benchmark.compat.OptionalDependencyError: SimpleITK is not installed, and nnU-Net needs it here "
                    "(SimpleITK.ReadImage): it reads and writes images through SimpleITKIO (cordbench itself uses "
                    "NibabelIO for NIfTI). Install it: pip install SimpleITK")


def test_an_installed_simpleitk_is_used_not_the_stand_in():
    completed = _python("import benchmark.models.nnunet.predict, SimpleITK, sys\n"
                        "from benchmark.compat import STAND_INS\n"
                        "print(hasattr(SimpleITK, 'CORDBENCH_STAND_IN'), str(STAND_INS) in sys.path)")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["False", "False"]


def test_the_kit_carries_nnunet_and_its_needs_but_never_torch_or_what_the_gpu_image_has():
    skip = fetch_wheels.preinstalled() | fetch_wheels.NOT_ON_GPU | set(fetch_wheels.OPTIONAL)
    roots = [requirement for requirement in fetch_wheels.cordbench_requirements()
             if fetch_wheels.normalise(requirement.name) not in skip]
    packages, unresolved = fetch_wheels.closure(roots, skip, fetch_wheels.target_environment("3.12"))
    assert unresolved == []
    assert {"nnunetv2", "nibabel", "pydantic", "pydantic-core", "submitit", "acvl-utils",
            "dynamic-network-architectures", "batchgenerators", "batchgeneratorsv2", "blosc2"} <= set(packages)
    assert not {name for name in packages if fetch_wheels.NEVER.match(name)}
    assert not set(packages) & (fetch_wheels.preinstalled() | {"simpleitk", "openvino", "streamlit"})
    assert "importlib-resources" not in packages  # nibabel needs it only before Python 3.12
    assert "importlib-resources" in fetch_wheels.closure(roots, skip, fetch_wheels.target_environment("3.11"))[0]


def test_pyproject_supports_the_gpu_machines_torch_and_run_sh_installs_the_tested_one():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    torch_requirement = next(Requirement(text) for text in project["dependencies"] if text.startswith("torch"))
    import torch

    installed = Version(torch.__version__.split("+")[0])
    assert Version("2.11.0") in torch_requirement.specifier and installed in torch_requirement.specifier
    assert "torch==2.14.1" in (REPO / "constraints-tested.txt").read_text().splitlines()
    assert "-c constraints-tested.txt" in (REPO / "run.sh").read_text()


def test_the_sandbox_passes_the_cuda_library_path_only_when_the_gpu_is_shown(tmp_path, monkeypatch):
    from benchmark.models.sandbox import SandboxSpec, bwrap_arguments, bwrap_executable

    if bwrap_executable() is None:
        pytest.skip("bubblewrap (bwrap) is missing or cannot create namespaces on this machine")
    monkeypatch.setenv("LD_LIBRARY_PATH", "/usr/local/nvidia/lib64")
    (tmp_path / "out").mkdir()

    def setenv(gpu: bool) -> dict[str, str]:
        args = bwrap_arguments(SandboxSpec(folder=tmp_path, inputs={}, output_dir=tmp_path / "out", timeout_s=1,
                                           gpu=gpu))
        return {args[i + 1]: args[i + 2] for i, arg in enumerate(args) if arg == "--setenv"}

    assert setenv(True)["LD_LIBRARY_PATH"] == "/usr/local/nvidia/lib64"
    assert "LD_LIBRARY_PATH" not in setenv(False)


@pytest.mark.slow
def test_the_on_device_check_runs_end_to_end_on_cpu_without_simpleitk(tmp_path):
    """tools/gpu/check.py as on a GPU machine but with SimpleITK hidden and no CUDA: its CUDA steps run on the CPU at
    the smallest size (training, inference vs nnUNetPredictor, the sandboxed command), so every path runs."""
    out = tmp_path / "out"
    completed = subprocess.run(
        [sys.executable, "-c", "import hide_simpleitk, runpy, sys; sys.argv = sys.argv[1:]; "
                               "runpy.run_path(sys.argv[0], run_name='__main__')",
         str(REPO / "tools" / "gpu" / "check.py"), "--out", str(out), "--budget-s", "900", "--work", str(tmp_path / "w")],
        capture_output=True, text=True, env={**ENV, "CUDA_VISIBLE_DEVICES": ""}, cwd=REPO, timeout=1200)
    report = json.loads((out / "gpu-check.json").read_text())
    steps = report["steps"]
    print(json.dumps(steps, indent=1)[:6000])
    assert report["cuda"] is False, completed.stdout[-3000:]
    assert steps["environment"]["simpleitk"] == "cordbench stand-in (not installed)"
    assert steps["gpu_tests"]["status"] == "skipped" and "no CUDA device" in " ".join(steps["gpu_tests"]["skipped"])
    assert steps["training"]["status"] == "ok", steps["training"]
    assert {model["device"] for model in steps["training"]["models"].values()} == {"cpu"}
    assert steps["inference"]["status"] == "ok", steps["inference"]
    assert {"2d", "3d"} <= set(steps["inference"]) and "CUDA only" in steps["inference"]["dice_target"]
    assert steps["gpu_tests"]["files"] == ["tests/test_gpu.py"]
    assert steps["sandbox"]["status"] in ("ok", "skipped"), steps["sandbox"]
    assert steps["sandbox"]["status"] == "skipped" or steps["sandbox"]["sandbox"] == "bubblewrap"
    assert completed.returncode == 0, completed.stdout[-3000:]
