"""Speed of synthetic volume generation, beside a plain nibabel save of an equally sized volume.

Run: .venv/bin/pytest tests/benchmarks/test_bench_synth.py --benchmark-enable
Target: a volume (render + encode) in <= ~0.3 s on one core, so the 76-volume suite takes < 30 s.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from benchmark.data import synth

# representative acquisitions: (dataset, index of the job in plan_dataset)
CASES = {
    "t2w-axial-96x96x24": ("synth-compression", 0),
    "t2w-sagittal-14x112x128": ("synth-injury", 0),
    "mp2rage-36x128x128": ("synth-mp2rage", 0),
    "epi-72x72x14": ("synth-epi", 0),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bench_render_and_encode(benchmark, case: str) -> None:
    dataset_id, index = CASES[case]
    job = synth.plan_dataset(dataset_id)[index]

    def one_volume() -> tuple[bytes, bytes]:
        return synth.render_job(dataset_id, job, 0).encode()

    image, mask = benchmark(one_volume)
    assert image[:2] == b"\x1f\x8b" and mask[:2] == b"\x1f\x8b"
    if benchmark.stats is not None:
        benchmark.extra_info["volumes_per_s"] = round(1.0 / benchmark.stats.stats.mean, 2)


def test_bench_reference_nibabel_save(benchmark, tmp_path: Path) -> None:
    """nib.save of a random int16 96x96x24 volume (the T2w axial size) to .nii.gz, for scale."""
    data = np.random.default_rng(0).integers(0, 1500, size=(96, 96, 24), dtype=np.int16)
    img = nib.Nifti1Image(data, np.diag([0.8, 0.8, 4.0, 1.0]))
    target = tmp_path / "reference.nii.gz"
    benchmark(nib.save, img, target)
    assert nib.load(target).shape == (96, 96, 24)
    if benchmark.stats is not None:
        benchmark.extra_info["volumes_per_s"] = round(1.0 / benchmark.stats.stats.mean, 2)


def test_bench_generate_epi_dataset(benchmark, tmp_path: Path) -> None:
    """A whole 7-volume dataset written from scratch (BIDS files, masks, sidecars, stamp)."""
    counter = iter(range(10_000))

    def fresh() -> tuple[tuple[str, Path], dict]:
        return ("synth-epi", tmp_path / f"run{next(counter)}"), {}

    folder = benchmark.pedantic(synth.generate_dataset, setup=fresh, rounds=3, iterations=1)
    assert len(list(folder.rglob("*_bold.nii.gz"))) == 12
