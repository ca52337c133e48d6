"""The network call alone: per-tile forward time of the quick 2D nnU-Net network (PlainConvUNet, 16-128 features,
5 stages, 128x128 tiles, random weights: speed does not depend on the weights) on eager torch, ONNX Runtime and
OpenVINO, one thread each, and how each scales when two worker processes run it at once (the local pool's case).

- ``test_tile_forward``: ms per tile, batch of 4 tiles, one thread; the ratio to eager torch is what any
  end-to-end speed-up over nnU-Net's predictor is bounded by at equal settings (the network is ~98 % of it).
- ``test_two_processes_at_once``: the same loop in one process, then in two processes started together; the
  throughput ratio (target >= 1.7x on 2 cores). OpenVINO pins its inference threads to cores by default, and two
  processes with one thread each were pinned to the same core (0.5 CPU each, no speed-up at all); cordbench turns
  pinning off (benchmark.models.runtime.openvino_runner).

    .venv/bin/pytest tests/benchmarks/test_bench_tile_forward.py --benchmark-enable -s
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.models.runtime.selection import installed

RUNTIMES = ["torch", *(name for name in ("onnxruntime", "openvino") if installed(name))]
TILES, BATCH, ROUNDS = (128, 128), 4, 25
TESTS = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow

# One process: build the network, export it once (cached by the weights' digest), time ROUNDS batches on one thread.
SCRIPT = r"""
import json, sys, time
from pathlib import Path
import torch
from dynamic_network_architectures.architectures.unet import PlainConvUNet
from benchmark.models.runtime.runner import VerifiedRunner

runtime, cache, batch, rounds = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.manual_seed(0)
torch.set_num_threads(1)
network = PlainConvUNet(1, 5, (16, 32, 64, 128, 128), torch.nn.Conv2d, 3, (1, 2, 2, 2, 2), 2, 2, 2, conv_bias=True,
                        norm_op=torch.nn.InstanceNorm2d, norm_op_kwargs={"eps": 1e-5, "affine": True},
                        nonlin=torch.nn.LeakyReLU, nonlin_kwargs={"inplace": True}).eval()
runner = VerifiedRunner(network, runtime=runtime, device=torch.device("cpu"), threads=1, bfloat16=False,
                        weights_sha256="5eed0" * 12 + "0000", tile_shape=(128, 128), in_channels=1,
                        cache_dir=cache)
assert runner.name == runtime, runner.fallback_reason
tiles = torch.randn((batch, 1, 128, 128), generator=torch.Generator().manual_seed(1))
with torch.no_grad():
    for _ in range(3):
        runner.run(tiles)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(rounds):
        runner.run(tiles)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
print(json.dumps({"ms_per_tile": 1000 * wall / rounds / batch, "cpu_per_wall": cpu / wall}))
"""


@pytest.fixture(scope="module", autouse=True)
def timed_runs_only(request):
    if request.config.getoption("benchmark_disable") and not request.config.getoption("benchmark_enable"):
        pytest.skip("timing benchmark: run with --benchmark-enable")


def _start(runtime: str, cache: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", SCRIPT, runtime, str(cache), str(BATCH), str(ROUNDS)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=TESTS.parent)


def _results(processes: list[subprocess.Popen]) -> list[dict]:
    results = []
    for process in processes:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


_ALONE: dict[str, float] = {}


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_tile_forward(benchmark, runtime, tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "tile-onnx"
    [result] = benchmark.pedantic(lambda: _results([_start(runtime, cache)]), rounds=1, iterations=1)
    _ALONE[runtime] = result["ms_per_tile"]
    benchmark.extra_info.update(result)
    relative = f", {_ALONE['torch'] / result['ms_per_tile']:.2f}x eager torch" if "torch" in _ALONE else ""
    print(f"\n{runtime}: {result['ms_per_tile']:.1f} ms per 128x128 tile, 1 thread{relative}")


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_two_processes_at_once(benchmark, runtime, tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "tile-onnx"
    [alone] = _results([_start(runtime, cache)])  # also exports, so that the pair below only loads
    pair = benchmark.pedantic(lambda: _results([_start(runtime, cache), _start(runtime, cache)]), rounds=1,
                              iterations=1)
    scaling = sum(alone["ms_per_tile"] / result["ms_per_tile"] for result in pair)
    benchmark.extra_info.update({"alone": alone, "pair": pair, "throughput_scaling": scaling})
    cpu = ", ".join(f"{result['cpu_per_wall']:.2f}" for result in pair)
    print(f"\n{runtime}: two processes at once give {scaling:.2f}x the tiles per second of one "
          f"(CPU per wall: {cpu}; target >= 1.7x)")
    assert scaling >= 1.7
