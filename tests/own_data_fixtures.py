"""Small BIDS datasets a new user brings: real-looking names (``desc-``, ``acq-``, ``run-``, ``ses-`` entities,
``_label-SC_seg`` and ``_seg-manual`` masks), tiny volumes a cord-like bright disk on a darker background, so that
the built-in threshold baseline finds it (its Dice is high but not 1: the reference disk is a little larger).

- :func:`write_epi_dataset`: ``func/*_task-rest_desc-mocomean_bold`` images of three participant ids, two of whom
  (``sub-p01``, ``sub-p01rescan``) are one person scanned twice: the same grid and near-identical content. No
  participants.tsv.
- :func:`write_anat_dataset`: ``ses-1/anat/*_acq-axial_run-1_T2w`` images of two people, ``_seg-manual`` masks,
  a participants.tsv with a site column.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

SHAPE = (40, 40, 6)
ZOOMS = (1.0, 1.0, 3.0)
EPI_IMAGE = "sub-{sub}_task-rest_desc-mocomean_bold"
EPI_MASK = "derivatives/labels/sub-{sub}/func/sub-{sub}_task-rest_desc-mocomean_bold_label-SC_seg.nii.gz"
ANAT_IMAGE = "sub-{sub}_ses-1_acq-axial_run-1_T2w"
ANAT_MASK = "derivatives/labels/sub-{sub}/ses-1/anat/sub-{sub}_ses-1_acq-axial_run-1_T2w_seg-manual.nii.gz"


def affine(origin: tuple[float, float, float]) -> np.ndarray:
    matrix = np.diag([*ZOOMS, 1.0])
    matrix[:3, 3] = origin
    return matrix


def disk(center: tuple[float, float], radius: float) -> np.ndarray:
    x, y = np.mgrid[: SHAPE[0], : SHAPE[1]]
    inside = (x - center[0]) ** 2 + (y - center[1]) ** 2 <= radius**2
    return np.repeat(inside[:, :, None], SHAPE[2], axis=2)


def volume(center: tuple[float, float], seed: int, noise: float = 6.0, cord: float = 300.0) -> np.ndarray:
    """A dark background with noise and a bright cord-sized disk (50 mm^2) in every axial slice."""
    rng = np.random.default_rng(seed)
    data = np.full(SHAPE, 100.0, dtype=np.float32) + rng.normal(0.0, noise, SHAPE).astype(np.float32)
    data[disk(center, 4.0)] += cord - 100.0
    return data


def save(path: Path, data: np.ndarray, matrix: np.ndarray, dtype=np.float32) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = nib.Nifti1Image(np.asarray(data, dtype=dtype), matrix)
    image.header.set_zooms(ZOOMS)
    nib.save(image, str(path))
    return path


def _description(root: Path, name: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": name, "BIDSVersion": "1.9.0",
                                                               "License": "CC0"}))


def write_subject(root: Path, image_name: str, mask_template: str, sub: str, center, origin, seed: int,
                  datatype: str, session: str | None = None, data: np.ndarray | None = None) -> np.ndarray:
    folder = root / f"sub-{sub}" / (f"ses-{session}" if session else "") / datatype
    data = volume(center, seed) if data is None else data
    save(folder / f"{image_name.format(sub=sub)}.nii.gz", data, affine(origin))
    save(root / mask_template.format(sub=sub), disk(center, 4.5), affine(origin), dtype=np.uint8)
    return data


def write_epi_dataset(root: Path) -> Path:
    """EPI mean images with a ``desc-`` entity; sub-p01 and sub-p01rescan are one person (same grid, near-identical
    content); no participants.tsv."""
    root = Path(root)
    _description(root, "My EPI scans")
    first = write_subject(root, EPI_IMAGE, EPI_MASK, "p01", (20, 20), (-20, -20, 0), seed=1, datatype="func")
    rescan = first + np.random.default_rng(2).normal(0.0, 1.0, SHAPE).astype(np.float32)  # the same scan again
    write_subject(root, EPI_IMAGE, EPI_MASK, "p01rescan", (20, 20), (-20, -20, 0), seed=2, datatype="func",
                  data=rescan)
    write_subject(root, EPI_IMAGE, EPI_MASK, "p02", (19, 21), (-18, -21, 5), seed=3, datatype="func")
    return root


ANAT_SUBJECTS = {"a1": ((21, 19), (-21, -19, 10), 11, "geneva"), "a2": ((18, 20), (-17, -22, 0), 12, "zurich"),
                 "a3": ((20, 21), (-19, -20, 4), 13, "geneva")}


def write_anat_dataset(root: Path, subjects: tuple[str, ...] = ("a1", "a2")) -> Path:
    """T2w axial images with ``ses-``, ``acq-`` and ``run-`` entities and ``_seg-manual`` masks; a participants.tsv."""
    root = Path(root)
    _description(root, "My T2w scans")
    rows = ["participant_id\tsite"]
    for sub in subjects:
        center, origin, seed, site = ANAT_SUBJECTS[sub]
        write_subject(root, ANAT_IMAGE, ANAT_MASK, sub, center, origin, seed=seed, datatype="anat", session="1")
        rows.append(f"sub-{sub}\t{site}")
    (root / "participants.tsv").write_text("\n".join(rows) + "\n")
    return root


def write_command_submission(root: Path, name: str, script: str) -> Path:
    """A command submission whose program is ``script`` (Python source), run as ``{python} model.py IN OUT``."""
    import yaml

    folder = Path(root) / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.py").write_text(script)
    manifest = {"name": name, "description": "a test model", "authors": ["t"], "licence": "MIT",
                "model": {"type": "command", "command": "{python} model.py {input} {output}", "timeout_s": 120},
                "training": {"datasets": []}}
    (folder / "submission.yaml").write_text(yaml.safe_dump(manifest))
    return folder
