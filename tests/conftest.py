"""Shared test fixtures: where ../shared is, the synthetic suite (generated once a session), NIfTI builders."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
# Tests make their own workspaces: one exported in the caller's shell must not receive their files.
os.environ.pop("CORDBENCH_WORKSPACE", None)
SHARED_DATA = REPO.parent / "shared" / "data"
BIDS = SHARED_DATA / "bids"


@pytest.fixture
def shared_bids() -> Path:
    """../shared/data/bids, or skip with a message saying where it was looked for."""
    if not (BIDS / "gmchallenge" / "dataset_description.json").is_file():
        pytest.skip(f"real data not available: expected ../shared/data/bids at {BIDS}")
    return BIDS


#: fixtures that take well over 10 s on 2 cores: a test that needs one is slow (deselected by -m "not slow")
SLOW_FIXTURES = {
    "synthetic_suite": "generates the whole synthetic suite (~30 s, once a session)",
    "tiny_model": "trains a tiny nnU-Net (tests/test_nnunet_engine.py, once a module)",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES.keys() & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def synthetic_suite(tmp_path_factory) -> Path:
    """The whole synthetic suite for seed 0, generated once for the test session. Tests only read it."""
    from benchmark.data.synth import SYNTHETIC_DATASET_IDS, generate_suite

    root = tmp_path_factory.mktemp("synthetic-suite")
    folders = generate_suite(root, seed=0, progress=False)
    assert folders == {dataset_id: root / dataset_id for dataset_id in SYNTHETIC_DATASET_IDS}
    return root


def orientation_affine(codes: str, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0)) -> np.ndarray:
    """An affine whose voxel axes point along ``codes`` (e.g. 'LPS') with the given spacing."""
    ras = nib.orientations.axcodes2ornt(tuple(codes))
    affine = np.eye(4)
    affine[:3, :3] = 0
    for voxel_axis, (world_axis, flip) in enumerate(ras):
        affine[int(world_axis), voxel_axis] = flip * spacing[voxel_axis]
    affine[:3, 3] = origin
    return affine


def save_nifti(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path
