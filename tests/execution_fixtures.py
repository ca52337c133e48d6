"""Array models for the execution tests (importable as `execution_fixtures:<name>` from worker processes)."""

import os
import time

import numpy as np


def centre_blob(image_ras: np.ndarray, spacing_ras) -> np.ndarray:
    """A 6 mm disc at the image centre on every axial slice (deterministic)."""
    nx, ny, _ = image_ras.shape
    x = (np.arange(nx) - nx / 2) * spacing_ras[0]
    y = (np.arange(ny) - ny / 2) * spacing_ras[1]
    disc = (x[:, None] ** 2 + y[None, :] ** 2) <= 3.0 ** 2
    return np.repeat(disc[:, :, None], image_ras.shape[2], axis=2).astype(np.float32)


def slow_blob(image_ras: np.ndarray, spacing_ras) -> np.ndarray:
    """centre_blob after sleeping CORDBENCH_TEST_SLEEP seconds: an inference-bound model."""
    time.sleep(float(os.environ.get("CORDBENCH_TEST_SLEEP", "1")))
    return centre_blob(image_ras, spacing_ras)


def dies_on_t1w(image_ras: np.ndarray, spacing_ras) -> np.ndarray:
    """Kills its own process (like a segfault or the OOM killer) on sct-testing's T1w image (42x76x77 in RAS)."""
    if image_ras.shape == (42, 76, 77):
        os._exit(3)
    return centre_blob(image_ras, spacing_ras)


def wrong_shape(image_ras: np.ndarray, spacing_ras) -> np.ndarray:
    """An output one voxel larger than the input on every axis: not on the image's grid."""
    return np.zeros(tuple(size + 1 for size in image_ras.shape), dtype=np.float32)
