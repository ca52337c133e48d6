"""Test data for the nnU-Net engine: an nnU-Net v2 raw dataset built from the real gmchallenge T2*w scans.

Same conventions as the lead's converter (``benchmark/training/convert.py``): canonical RAS+ images and labels,
``CASE_0000.nii.gz`` / ``CASE.nii.gz`` (uint8 0/1), NibabelIO, labels ``{"background": 0, "cord": 1}``.
Kept independent of the converter so that the engine tests do not depend on it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
GMCHALLENGE = SHARED / "data" / "bids" / "gmchallenge"

# Held out by subject: both sessions of sub-9709 (256x192x20, 0.78x0.78x3 mm) are never trained on.
HELD_OUT_SUBJECTS = ("sub-9709Ses1", "sub-9709Ses2")


def gmchallenge_root() -> Path:
    """The gmchallenge BIDS root, or skip the calling test with a message saying where it was looked for."""
    if not (GMCHALLENGE / "dataset_description.json").is_file():
        pytest.skip(f"real data not available: expected the gmchallenge BIDS dataset at {GMCHALLENGE}")
    return GMCHALLENGE


def gmchallenge_pairs(root: Path) -> dict[str, tuple[Path, Path]]:
    """Map subject -> (T2*w image, manual cord mask) for every subject that has both."""
    pairs: dict[str, tuple[Path, Path]] = {}
    for image in sorted(root.glob("sub-*/anat/*_T2starw.nii.gz")):
        subject = image.name.split("_")[0]
        label = root / "derivatives" / "labels" / subject / "anat" / f"{subject}_T2starw_seg-manual.nii.gz"
        if label.is_file():
            pairs[subject] = (image, label)
    return pairs


def load_canonical(path: Path) -> nib.Nifti1Image:
    """Load a NIfTI and reorient it to the closest canonical (RAS+) orientation."""
    return nib.as_closest_canonical(nib.load(str(path)))


def write_case(image_path: Path, label_path: Path, images_dir: Path, labels_dir: Path, case: str) -> None:
    """Write one case in canonical RAS+: float32 image ``case_0000.nii.gz`` and uint8 0/1 label ``case.nii.gz``."""
    image = load_canonical(image_path)
    label = load_canonical(label_path)
    if image.shape != label.shape:
        raise ValueError(f"{label_path}: label shape {label.shape} differs from image shape {image.shape}")
    images_dir.mkdir(parents=True, exist_ok=True)
    labels_dir.mkdir(parents=True, exist_ok=True)
    image_out = nib.Nifti1Image(np.asarray(image.dataobj, dtype=np.float32), image.affine)
    image_out.set_qform(image.affine, code=1)
    image_out.set_sform(image.affine, code=1)
    nib.save(image_out, str(images_dir / f"{case}_0000.nii.gz"))
    mask = (np.asarray(label.dataobj) > 0.5).astype(np.uint8)
    label_out = nib.Nifti1Image(mask, image.affine)
    label_out.set_qform(image.affine, code=1)
    label_out.set_sform(image.affine, code=1)
    nib.save(label_out, str(labels_dir / f"{case}.nii.gz"))


def build_raw_dataset(
    nnunet_raw: Path,
    *,
    dataset_id: int = 501,
    name: str = "GmchallengeT2s",
    train_subjects: tuple[str, ...] | None = None,
    test_subjects: tuple[str, ...] = HELD_OUT_SUBJECTS,
) -> Path:
    """Build ``nnunet_raw/DatasetXXX_Name`` from gmchallenge; returns the dataset folder.

    ``train_subjects`` defaults to every subject not in ``test_subjects``. Test cases go to imagesTs/labelsTs.
    """
    root = gmchallenge_root()
    pairs = gmchallenge_pairs(root)
    if train_subjects is None:
        train_subjects = tuple(s for s in pairs if s not in test_subjects)
    folder = Path(nnunet_raw) / f"Dataset{dataset_id:03d}_{name}"
    for subject in train_subjects:
        write_case(*pairs[subject], folder / "imagesTr", folder / "labelsTr", subject.replace("-", ""))
    for subject in test_subjects:
        write_case(*pairs[subject], folder / "imagesTs", folder / "labelsTs", subject.replace("-", ""))
    dataset_json = {
        "channel_names": {"0": "MRI"},
        "labels": {"background": 0, "cord": 1},
        "numTraining": len(train_subjects),
        "file_ending": ".nii.gz",
        "overwrite_image_reader_writer": "NibabelIO",
        "name": name,
    }
    (folder / "dataset.json").write_text(json.dumps(dataset_json, indent=2))
    return folder


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two binary masks (1.0 when both are empty)."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    denominator = int(a.sum()) + int(b.sum())
    if denominator == 0:
        return 1.0
    return 2.0 * int(np.logical_and(a, b).sum()) / denominator


def write_synthetic_raw_dataset(
    nnunet_raw: Path,
    *,
    dataset_id: int = 990,
    name: str = "TinySynth",
    n_train: int = 4,
    n_test: int = 1,
    shape: tuple[int, int, int] = (64, 56, 8),
    spacing: tuple[float, float, float] = (0.8, 0.8, 3.0),
    seed: int = 0,
) -> Path:
    """A tiny easy raw dataset (bright elliptic 'cord' in a darker body, noise) in canonical RAS, for fast tests."""
    rng = np.random.default_rng(seed)
    folder = Path(nnunet_raw) / f"Dataset{dataset_id:03d}_{name}"
    affine = np.diag([*spacing, 1.0])
    x, y = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    for index in range(n_train + n_test):
        split = "Tr" if index < n_train else "Ts"
        image = np.zeros(shape, dtype=np.float32)
        label = np.zeros(shape, dtype=np.uint8)
        cx, cy = shape[0] / 2 + rng.uniform(-6, 6), shape[1] / 2 + rng.uniform(-6, 6)
        for z in range(shape[2]):
            cxz, cyz = cx + 0.5 * z * rng.uniform(-1, 1), cy + 0.3 * z * rng.uniform(-1, 1)
            body = ((x - shape[0] / 2) / (0.45 * shape[0])) ** 2 + ((y - shape[1] / 2) / (0.45 * shape[1])) ** 2 < 1
            cord = ((x - cxz) / 5.0) ** 2 + ((y - cyz) / 4.0) ** 2 < 1
            image[:, :, z] = 100.0 * body + 300.0 * cord
            label[:, :, z] = cord
        image += rng.normal(0, 15, shape).astype(np.float32)
        image = np.clip(image, 0, None)
        case = f"case{index:03d}"
        images_dir, labels_dir = folder / f"images{split}", folder / f"labels{split}"
        images_dir.mkdir(parents=True, exist_ok=True)
        labels_dir.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(image, affine), str(images_dir / f"{case}_0000.nii.gz"))
        nib.save(nib.Nifti1Image(label, affine), str(labels_dir / f"{case}.nii.gz"))
    dataset_json = {
        "channel_names": {"0": "MRI"},
        "labels": {"background": 0, "cord": 1},
        "numTraining": n_train,
        "file_ending": ".nii.gz",
        "overwrite_image_reader_writer": "NibabelIO",
        "name": name,
    }
    (folder / "dataset.json").write_text(json.dumps(dataset_json, indent=2))
    return folder


def preprocessed_copy(preprocessed: Path, work: Path) -> Path:
    """``work`` holding a copy of a preprocessed folder: train_model finds its inputs unchanged and skips them."""
    shutil.copytree(preprocessed, Path(work) / "nnUNet_preprocessed")
    return Path(work)
