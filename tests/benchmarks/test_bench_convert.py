"""Conversion throughput (cases/s) on the synthetic suite: `convert_suite` vs the loop a user would write.

The reference is the usual hand-written converter: for each training case, nib.load image and mask,
reorient, binarize, nib.save into imagesTr/labelsTr, one case after the other, with none of the checks.
`convert_suite` does more per case (checksums, shape/affine/NaN checks, provenance) but converts each case
once for both the aggregated and the specific dataset and spreads cases over the cores.
Run: pytest tests/benchmarks/test_bench_convert.py --benchmark-enable -s
"""

import shutil
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from benchmark.data.bids_index import index_dataset
from benchmark.training.convert import convert_suite
from benchmark.data.registry import load_dataset, load_suite
from benchmark.data.splits import load_split


@pytest.fixture(scope="module")
def synthetic_data(synthetic_suite):
    return synthetic_suite


def hand_written_loop(data_root: Path, out: Path) -> int:
    """What a user writes without cordbench: every train case into aggregated and specific folders."""
    split = load_split("synthetic")
    written = 0
    for dataset_id in load_suite("synthetic").ids("in-domain"):
        train = set(split.datasets[dataset_id].train)
        for case in index_dataset(data_root / dataset_id, load_dataset(dataset_id)).pairs:
            if case.subject not in train:
                continue
            image = nib.as_closest_canonical(nib.load(data_root / dataset_id / case.image.path))
            label = nib.as_closest_canonical(nib.load(data_root / dataset_id / case.label.path))
            mask = (np.asarray(label.dataobj) >= 0.5).astype(np.uint8)
            name = f"{dataset_id}_{Path(case.image.path).name[:-7]}"
            for folder in (out / "aggregated", out / dataset_id):
                (folder / "imagesTr").mkdir(parents=True, exist_ok=True)
                (folder / "labelsTr").mkdir(parents=True, exist_ok=True)
                nib.save(nib.Nifti1Image(np.asarray(image.dataobj, np.float32), image.affine),
                         folder / "imagesTr" / f"{name}_0000.nii.gz")
                nib.save(nib.Nifti1Image(mask, image.affine), folder / "labelsTr" / f"{name}.nii.gz")
            written += 1
    return written


def test_conversion_throughput(benchmark, synthetic_data, tmp_path):
    started = time.perf_counter()
    reference_cases = hand_written_loop(synthetic_data, tmp_path / "reference")
    reference_seconds = time.perf_counter() - started

    def ours():
        out = tmp_path / "ours"
        shutil.rmtree(out, ignore_errors=True)
        return convert_suite("synthetic", data_root=synthetic_data, out=out, with_test=False, progress=False)

    report = benchmark.pedantic(ours, rounds=3, iterations=1)
    ours_seconds = min(benchmark.stats.stats.data) if benchmark.stats else None
    if ours_seconds is None:
        started = time.perf_counter()
        ours()
        ours_seconds = time.perf_counter() - started
    cases = sum(outcome.status == "converted" for outcome in report.outcomes)
    assert cases == reference_cases == 58  # multicontrast 6 subjects x 4 contrasts (24) + 11 + 11 + 12
    benchmark.extra_info.update(cases=cases, ours_cases_per_s=round(cases / ours_seconds, 1),
                                loop_cases_per_s=round(cases / reference_seconds, 1))
    print(f"\nconvert_suite: {cases / ours_seconds:.1f} cases/s; hand-written loop: "
          f"{cases / reference_seconds:.1f} cases/s ({cases} train cases, aggregated + specific)")
