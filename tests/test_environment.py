"""benchmark.environment: the cores a process may use, on Linux and where there is no affinity mask (macOS)."""

from __future__ import annotations

import os

import pytest

from benchmark.environment import available_cores


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="this OS has no CPU affinity mask")
def test_available_cores_follows_the_affinity_mask(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3})
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert available_cores() == 2


def test_available_cores_without_sched_getaffinity_falls_back_to_cpu_count(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)  # as on macOS and Windows
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert available_cores() == 6
    monkeypatch.setattr(os, "cpu_count", lambda: None)  # "undeterminable"
    assert available_cores() == 1


def test_device_without_importing_torch_agrees_with_torch(tmp_path):
    """environment() names the device torch would use (``torch.cuda.is_available()``) without importing torch:
    checked in a fresh interpreter, against torch itself imported afterwards; once on this machine as it is and
    once with every GPU hidden (CUDA_VISIBLE_DEVICES='')."""
    import json
    import subprocess
    import sys

    pytest.importorskip("torch")
    script = ("import json, sys\nfrom benchmark.environment import environment\ninfo = environment()\n"
              "loaded = 'torch' in sys.modules\nimport torch\n"
              "print(json.dumps([info['device'], loaded, 'cuda' if torch.cuda.is_available() else 'cpu']))")
    for hidden in (None, ""):
        env = dict(os.environ)
        if hidden is not None:
            env["CUDA_VISIBLE_DEVICES"] = hidden
        completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                                   check=True)
        ours, loaded, torch_says = json.loads(completed.stdout.strip().splitlines()[-1])
        assert loaded is False
        assert ours == torch_says
        if hidden == "":
            assert ours == "cpu"


def test_torch_build_is_read_from_its_version_file():
    from benchmark.environment import torch_build_accelerators

    torch = pytest.importorskip("torch")
    assert torch_build_accelerators() == {"cuda": torch.version.cuda, "hip": torch.version.hip}
