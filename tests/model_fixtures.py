"""Tiny array models for the inference and scoring tests (importable as `model_fixtures:<name>`)."""

import os
from pathlib import Path

import numpy as np


def identity(image_ras: np.ndarray, spacing_ras) -> np.ndarray:
    """Segments an image whose intensities are its own mask: returns them as probabilities."""
    return image_ras.astype(np.float32)


def blank(image_ras: np.ndarray, spacing_ras) -> np.ndarray:
    return np.zeros_like(image_ras, dtype=np.float32)


def wrong_shape(image_ras: np.ndarray, spacing_ras) -> np.ndarray:
    return np.zeros(tuple(size + 1 for size in image_ras.shape), dtype=np.float32)


def crashes(image_ras: np.ndarray, spacing_ras) -> np.ndarray:
    raise RuntimeError("out of memory (simulated)")


def counting_blank(image_ras: np.ndarray, spacing_ras) -> np.ndarray:
    """Blank prediction that logs each call and can simulate Ctrl-C after N calls (env vars)."""
    log = Path(os.environ["CORDBENCH_TEST_CALL_LOG"])
    calls = len(log.read_text().splitlines()) if log.exists() else 0
    if calls >= int(os.environ.get("CORDBENCH_TEST_INTERRUPT_AFTER", "1000000")):
        raise KeyboardInterrupt
    with open(log, "a") as handle:
        handle.write(f"{image_ras.shape}\n")
    return np.zeros_like(image_ras, dtype=np.float32)


def centre_blob(image_ras: np.ndarray, spacing_ras) -> np.ndarray:
    """A 6 mm disc at the image centre on every axial slice: a crude, deterministic cord guess."""
    nx, ny, _ = image_ras.shape
    x = (np.arange(nx) - nx / 2) * spacing_ras[0]
    y = (np.arange(ny) - ny / 2) * spacing_ras[1]
    disc = (x[:, None] ** 2 + y[None, :] ** 2) <= 3.0 ** 2
    return np.repeat(disc[:, :, None], image_ras.shape[2], axis=2).astype(np.float32)


def gmchallenge_oracle_full_length(image_ras: np.ndarray, spacing_ras) -> np.ndarray:
    """The manual gmchallenge mask of the image (matched by canonical shape, from CORDBENCH_TEST_GT_ROOT),
    with its top labelled slice copied into every slice above it: a perfect cord segmentation that also
    covers the slices the annotators left unlabelled. Blank for any other image."""
    import nibabel as nib

    for label in sorted(Path(os.environ["CORDBENCH_TEST_GT_ROOT"]).glob("derivatives/labels/*/anat/*_seg-manual.nii.gz")):
        mask = np.asarray(nib.as_closest_canonical(nib.load(label)).dataobj) > 0.5
        if mask.shape == image_ras.shape:
            top = int(np.flatnonzero(mask.any(axis=(0, 1)))[-1])
            mask[:, :, top + 1:] = mask[:, :, top:top + 1]
            return mask.astype(np.float32)
    return np.zeros_like(image_ras, dtype=np.float32)
