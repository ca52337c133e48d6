"""Per-case cost of the bubblewrap sandbox vs a plain subprocess, for the same command program.

Target: under 50 ms of overhead per case (a case's model run takes seconds).

    .venv/bin/pytest tests/benchmarks/test_bench_sandbox.py --benchmark-enable -s

Both ``benchmark`` tests run one case the way the scorer does (benchmark.models.sandbox.run_program: the same
limits, environment allow-list and process-group kill; only the sandbox differs), in the group
``sandbox-per-case``, so pytest-benchmark prints them side by side. ``test_overhead_per_case`` times both in
the same process (median of N), prints and stores the difference, and asserts the target only when
benchmarking is enabled (with the default ``--benchmark-disable`` every test still runs once).
"""

from __future__ import annotations

import statistics
import time

import pytest

from benchmark.models.sandbox import SandboxSpec, run_program, sandbox_available

pytestmark = pytest.mark.skipif(not sandbox_available(), reason="needs bubblewrap with user namespaces")

GROUP = "sandbox-per-case"
TARGET_OVERHEAD_S = 0.050
REPEATS = 15


@pytest.fixture
def case(tmp_path):
    folder, output, logs = tmp_path / "submission", tmp_path / "output", tmp_path / "logs"
    for path in (folder, output, logs):
        path.mkdir()
    image = tmp_path / "image.nii.gz"
    image.write_bytes(b"\x00" * 65536)
    spec = SandboxSpec(folder=folder, inputs={"image.nii.gz": image}, output_dir=output, timeout_s=30, memory_mb=4096)

    def run(mode: str) -> None:
        source = "/input/image.nii.gz" if mode == "bubblewrap" else str(image)
        target = "/output/prediction.nii.gz" if mode == "bubblewrap" else str(output / "prediction.nii.gz")
        result = run_program(mode, spec, ["/bin/sh", "-c", f"cp {source} {target}"], logs)
        assert result.returncode == 0, result.stderr_tail
        assert (output / "prediction.nii.gz").stat().st_size == 65536

    return run


@pytest.mark.benchmark(group=GROUP)
def test_plain_subprocess(benchmark, case):
    benchmark(case, "none")


@pytest.mark.benchmark(group=GROUP)
def test_bubblewrap(benchmark, case):
    benchmark(case, "bubblewrap")


def _median_s(run, mode: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run(mode)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def test_overhead_per_case(benchmark, case):
    repeats = 3 if benchmark.disabled else REPEATS  # a correctness run only, unless benchmarking
    plain, sandboxed = _median_s(case, "none", repeats), _median_s(case, "bubblewrap", repeats)
    overhead = sandboxed - plain
    print(f"\nper case: plain subprocess {plain * 1000:.1f} ms, bubblewrap {sandboxed * 1000:.1f} ms, "
          f"overhead {overhead * 1000:.1f} ms (target < {TARGET_OVERHEAD_S * 1000:.0f} ms)")
    benchmark.extra_info.update(plain_ms=plain * 1000, bubblewrap_ms=sandboxed * 1000, overhead_ms=overhead * 1000)
    benchmark(case, "bubblewrap")
    if not benchmark.disabled:
        assert overhead < TARGET_OVERHEAD_S
