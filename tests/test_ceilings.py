"""One-voxel-ring ceilings of the reference masks, stored next to the split and keyed by its version."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.evaluation.ceilings import (CeilingsError, CeilingsFile, DatasetCeiling, load_ceilings, read_ceilings,
                                           ring_dice, write_ceilings)
from benchmark.data.splits import load_split


def test_ring_dice_of_a_square_by_hand():
    mask = np.zeros((9, 9, 3), bool)
    mask[3:6, 3:6, 1] = True  # 9 voxels on one slice
    dilated, eroded = ring_dice(mask)
    assert dilated == pytest.approx(2 * 9 / (9 + 21))   # the cross adds 3 voxels on each side: 21
    assert eroded == pytest.approx(2 * 1 / (9 + 1))     # only the centre survives
    assert ring_dice(np.zeros((4, 4, 4), bool)) == (1.0, 1.0)
    tall = np.zeros((9, 9, 5), bool)
    tall[3:6, 3:6, :] = True
    assert ring_dice(tall) == pytest.approx((0.6, 0.2))  # in-plane only: the slices above/below do not grow


def _ceilings(version: str) -> CeilingsFile:
    ring = DatasetCeiling(n=2, dilated_dice=0.9, eroded_dice=0.88, one_voxel_dice=0.89, one_voxel_dice_min=0.88,
                          one_voxel_dice_max=0.9, within_one_voxel=0.11)
    return CeilingsFile(suite="real-mini", benchmark_version=version, datasets={"gmchallenge": ring})


def test_ceilings_are_keyed_by_the_split_version(tmp_path):
    current = load_split("real-mini").version
    path = write_ceilings(_ceilings(current), tmp_path / "real-mini.ceilings.json")
    assert load_ceilings("real-mini", path=path).datasets["gmchallenge"].within_one_voxel == 0.11
    stale = write_ceilings(_ceilings("0ld0ld0ld0ld"), tmp_path / "stale.json")
    assert load_ceilings("real-mini", path=stale) is None
    assert load_ceilings("real-mini", path=tmp_path / "absent.json") is None
    (tmp_path / "bad.json").write_text('{"suite": "real-mini"}')
    with pytest.raises(CeilingsError, match="bad.json"):
        read_ceilings(tmp_path / "bad.json")


@pytest.mark.parametrize("suite", ["real-mini", "synthetic"])
def test_committed_ceilings_match_the_current_split(suite):
    ceilings = load_ceilings(suite)
    assert ceilings is not None, f"benchmark/splits/{suite}.ceilings.json is missing or stale: `cordbench ceilings`"
    split = load_split(suite)
    tested = {dataset for dataset, entry in split.datasets.items() if entry.test}
    assert set(ceilings.datasets) == tested
    for ring in ceilings.datasets.values():
        assert 0 < ring.eroded_dice < ring.one_voxel_dice < ring.dilated_dice < 1


@pytest.mark.slow
def test_cli_writes_the_ceilings_of_a_suite(tmp_path):
    from pathlib import Path

    from typer.testing import CliRunner

    from benchmark.cli import app

    shared = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bids"
    if not (shared / "sct-testing").is_dir():
        pytest.skip(f"real data not available at {shared}")
    out = tmp_path / "ceilings.json"
    result = CliRunner().invoke(app, ["splits", "ceilings", "--suite", "real-mini", "--data-root", str(shared),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = read_ceilings(out)
    assert written.model_dump() == load_ceilings("real-mini").model_dump()  # the committed file is reproducible
