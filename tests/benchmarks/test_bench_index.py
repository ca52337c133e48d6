"""BIDS indexing speed: cordbench's index vs pybids' BIDSLayout on the real spine-generic layout.

Both sides must find the same image/mask pairs. pybids needs two layouts (the raw tree and the
derivatives/labels tree, which has no dataset_description.json and so is indexed as its own tree), then
the masks are joined to images the way a pybids user would: build the expected mask name from the
image's path and look it up in the derivative layout.
Run: pytest tests/benchmarks/test_bench_index.py --benchmark-enable -s
"""

import time
import warnings
from pathlib import Path

import pytest

from benchmark.data.bids_index import glob_to_regex, index_dataset
from benchmark.data.registry import load_dataset

LAYOUT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "bids" / "spine-generic-layout"


@pytest.fixture(scope="module")
def layout_root() -> Path:
    if not (LAYOUT / "participants.tsv").is_file():
        pytest.skip(f"real layout not available: expected {LAYOUT}")
    return LAYOUT


def ours(root: Path) -> set[tuple[str, str]]:
    index = index_dataset(root, load_dataset("spine-generic"))
    return {(case.image.path, case.label.path) for case in index.pairs}


def with_pybids(root: Path) -> set[tuple[str, str]]:
    from bids import BIDSLayout

    dataset = load_dataset("spine-generic")
    rules = [glob_to_regex(rule.glob) for rule in dataset.images]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = BIDSLayout(str(root), validate=False)
        labels = BIDSLayout(str(root / "derivatives" / "labels"), validate=False)
    label_files = {Path(path).relative_to(root).as_posix()
                   for path in labels.get(extension=".nii.gz", return_type="filename")}
    pairs = set()
    for path in raw.get(extension=".nii.gz", return_type="filename"):
        relative = Path(path).relative_to(root).as_posix()
        if not any(rule.match(relative) for rule in rules):
            continue
        folder, _, name = relative.rpartition("/")
        label = f"derivatives/labels/{folder}/{name[:-len('.nii.gz')]}_label-SC_seg.nii.gz"
        if label in label_files:
            pairs.add((relative, label))
    return pairs


def test_index_vs_pybids(benchmark, layout_root):
    started = time.perf_counter()
    reference = with_pybids(layout_root)
    pybids_seconds = time.perf_counter() - started

    found = benchmark.pedantic(ours, args=(layout_root,), rounds=5, iterations=1, warmup_rounds=1)
    ours_seconds = min(benchmark.stats.stats.data) if benchmark.stats else None
    if ours_seconds is None:  # --benchmark-disable: time one call ourselves
        started = time.perf_counter()
        ours(layout_root)
        ours_seconds = time.perf_counter() - started
    ratio = pybids_seconds / ours_seconds
    benchmark.extra_info.update(pybids_s=round(pybids_seconds, 3), cordbench_s=round(ours_seconds, 4),
                                speedup=round(ratio, 1), pairs=len(found))
    print(f"\nspine-generic layout: pybids {pybids_seconds:.2f} s, cordbench {ours_seconds * 1000:.0f} ms, "
          f"{ratio:.0f}x faster, {len(found)} pairs")
    assert found == reference
    assert len(found) == 1573
