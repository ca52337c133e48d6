"""A plain (non-editable) install works away from the repository: wheel -> fresh venv -> empty folder ->
`cordbench init`, `cordbench demo --help`, the built-in registry and reference submissions, and the leaderboard
answers its health check.

The wheel is built offline from a copy of the working tree (no build isolation, no dependencies); the fresh venv
reaches the already installed dependencies (torch, nnU-Net, streamlit...) through a .pth file, so nothing is
downloaded. Skipped, with the reason, when the wheel cannot be built offline.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def build_wheel(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for relative in filter(None, listed):
        if (REPO / relative).is_file():
            (source / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / relative, source / relative)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True)
    if built.returncode != 0:
        pytest.skip(f"cannot build the wheel offline: {built.stderr.strip()[-500:]}")
    return next((tmp_path / "dist").glob("cordbench-*.whl"))


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_from_an_empty_folder(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    wheel = build_wheel(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                                "--no-index", str(wheel)], capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    # the dependencies: the test interpreter's site-packages, after the venv's own (so the wheel's benchmark wins)
    Path(site, "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    empty = tmp_path / "empty"
    empty.mkdir()
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("PYTHONPATH", "CORDBENCH_WORKSPACE", "nnUNet_raw")}
    environment["OMP_NUM_THREADS"] = "1"
    cordbench = str(venv / "bin" / "cordbench")

    def run(*args: str) -> str:
        completed = subprocess.run([cordbench, *args], cwd=empty, env=environment, capture_output=True, text=True,
                                   timeout=300)
        assert completed.returncode == 0, f"cordbench {' '.join(args)}: {completed.stdout}{completed.stderr}"
        return completed.stdout

    where = subprocess.run([str(python), "-c", "import benchmark, leaderboard; print(benchmark.__file__); "
                            "print(leaderboard.__file__)"], cwd=empty, env=environment, check=True,
                           capture_output=True, text=True).stdout.split()
    assert all(path.startswith(site) for path in where), where
    run("init")
    assert (empty / "cordbench.yaml").is_file() and (empty / "submissions").is_dir()
    assert "Run the seed experiment end to end" in run("demo", "--help")
    assert "real-mini" in run("datasets", "list")
    listed = run("submissions", "list")
    assert "threshold-baseline" in listed and "built-in" in listed

    port = free_port()
    server = subprocess.Popen([cordbench, "leaderboard", "--port", str(port)], cwd=empty, env=environment,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, health = time.monotonic() + 120, None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as answer:
                    health = answer.read().decode()
                    break
            except OSError:
                time.sleep(0.5)
        assert health == "ok", f"no health answer; leaderboard output:\n{server.stdout.read() if server.poll() is not None else ''}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    # `cordbench leaderboard` is the server process itself: stopping it by PID left nothing listening
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
    assert not any(empty.joinpath(name).exists() for name in ("benchmark", "leaderboard"))
