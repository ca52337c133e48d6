"""Synthetic BIDS datasets of phantom cervical spinal cord MRI, with exact cord masks.

A *phantom* is an analytic description of one neck (:class:`Anatomy`): an elliptical cord following a
smooth lordotic path, with a cervical enlargement and a grey-matter butterfly, a CSF-filled canal,
vertebral bodies, discs, posterior elements, vessels, trachea, muscle and fat. An *acquisition*
(:class:`Acquisition`) samples the phantom on an axis-aligned grid: tissue labels are evaluated at
supersampled points, mapped to signal by a per-contrast lookup table, reduced to the voxel grid
(slice profile = box average; in-plane = k-space truncation, so edges ring like real MR), then a
receive bias field, vendor reconstruction and complex Gaussian noise (Rician magnitude) are applied.
The cord mask is the supersampled cord fraction thresholded at 0.5 on the same grid.

Arrays are built in canonical RAS+ order and reoriented to the acquisition's declared orientation
(LAS, RPI, LPS, PSR) with nibabel, so image and mask share one affine and ``as_closest_canonical``
brings both back to RAS+. Images are stored as int16 without scaling (as scanners store magnitude
data); masks are uint8 0/1. Files are gzip-compressed with mtime 0, so a seed gives byte-identical
files. See ``docs/synthetic.md``.

Public API: :data:`SYNTHETIC_DATASET_IDS`, :func:`generate_suite`, :func:`generate_dataset`,
:func:`render_contrast_figure`.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import shutil
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any, Literal

import nibabel as nib
import numpy as np
import scipy.fft
from scipy import ndimage

from benchmark.io import atomic_write_bytes, atomic_write_json, sha256_bytes, sha256_file

GENERATOR_VERSION = "2"
STAMP_NAME = ".cordbench-synth.json"
SYNTHETIC_DATASET_IDS: tuple[str, ...] = (
    "synth-multicontrast",
    "synth-compression",
    "synth-injury",
    "synth-ms",
    "synth-mp2rage",
    "synth-epi",
)

Plane = Literal["axial", "sagittal"]
Float = np.float32


# --------------------------------------------------------------------------------------------------
# Tissues and contrasts
# --------------------------------------------------------------------------------------------------


class Tissue(IntEnum):
    """Tissue labels of the phantom; the lookup tables below are indexed by these values."""

    AIR = 0
    FAT = 1
    MUSCLE = 2
    CSF = 3
    WM = 4  # cord white matter
    GM = 5  # cord grey matter
    MARROW = 6  # vertebral bone marrow
    CORTICAL = 7  # cortical bone, endplates
    NUCLEUS = 8  # disc nucleus pulposus
    ANNULUS = 9  # disc annulus fibrosus, herniated disc material
    LIGAMENT = 10  # longitudinal ligaments, ligamentum flavum
    LESION = 11  # MS lesion (inside the cord)
    EDEMA = 12  # injury oedema (inside the cord)
    HEMORRHAGE = 13  # injury haemorrhage core (inside the cord)
    VESSEL = 14  # carotid, jugular, vertebral arteries


N_TISSUES = len(Tissue)
CORD_TISSUES = (Tissue.WM, Tissue.GM, Tissue.LESION, Tissue.EDEMA, Tissue.HEMORRHAGE)
_T = Tissue


def _lut(values: dict[Tissue, float]) -> np.ndarray:
    table = np.zeros(N_TISSUES, dtype=Float)
    for tissue, value in values.items():
        table[tissue] = value
    return table


# Relative magnitude signal per tissue (CSF on T2w = 1). Chosen from the appearance of clinical
# sequences at 3 T, not fitted to anything.
_SIGNAL: dict[str, np.ndarray] = {
    # T2-weighted turbo spin echo: CSF bright, cord grey, fat bright, discs bright, flow voids dark.
    "T2w": _lut({_T.FAT: 0.72, _T.MUSCLE: 0.22, _T.CSF: 1.0, _T.WM: 0.33, _T.GM: 0.37, _T.MARROW: 0.42,
                 _T.CORTICAL: 0.04, _T.NUCLEUS: 0.80, _T.ANNULUS: 0.16, _T.LIGAMENT: 0.07,
                 _T.LESION: 0.72, _T.EDEMA: 0.80, _T.HEMORRHAGE: 0.10, _T.VESSEL: 0.05}),
    # T1-weighted (MPRAGE-like): cord brighter than CSF, fat and marrow bright.
    "T1w": _lut({_T.FAT: 0.95, _T.MUSCLE: 0.42, _T.CSF: 0.12, _T.WM: 0.62, _T.GM: 0.54, _T.MARROW: 0.75,
                 _T.CORTICAL: 0.04, _T.NUCLEUS: 0.38, _T.ANNULUS: 0.30, _T.LIGAMENT: 0.08,
                 _T.LESION: 0.42, _T.EDEMA: 0.45, _T.HEMORRHAGE: 0.80, _T.VESSEL: 0.06}),
    # T2*-weighted multi-echo gradient echo: grey matter brighter than white matter, marrow dark
    # (trabecular susceptibility), inflowing blood bright.
    "T2starw": _lut({_T.FAT: 0.45, _T.MUSCLE: 0.26, _T.CSF: 0.95, _T.WM: 0.40, _T.GM: 0.68,
                     _T.MARROW: 0.14, _T.CORTICAL: 0.03, _T.NUCLEUS: 0.58, _T.ANNULUS: 0.18,
                     _T.LIGAMENT: 0.07, _T.LESION: 0.70, _T.EDEMA: 0.75, _T.HEMORRHAGE: 0.04,
                     _T.VESSEL: 0.85}),
    # Mean of diffusion-weighted volumes (b = 800, fat-saturated): cord brightest, CSF attenuated.
    "DWI": _lut({_T.FAT: 0.05, _T.MUSCLE: 0.16, _T.CSF: 0.20, _T.WM: 0.55, _T.GM: 0.50, _T.MARROW: 0.06,
                 _T.CORTICAL: 0.02, _T.NUCLEUS: 0.24, _T.ANNULUS: 0.10, _T.LIGAMENT: 0.04,
                 _T.LESION: 0.45, _T.EDEMA: 0.40, _T.HEMORRHAGE: 0.08, _T.VESSEL: 0.02}),
    # Gradient-echo EPI mean (fat-saturated, T2*-weighted): CSF bright, cord grey, fat dark.
    "EPI": _lut({_T.FAT: 0.08, _T.MUSCLE: 0.30, _T.CSF: 0.95, _T.WM: 0.45, _T.GM: 0.52, _T.MARROW: 0.10,
                 _T.CORTICAL: 0.02, _T.NUCLEUS: 0.50, _T.ANNULUS: 0.15, _T.LIGAMENT: 0.05,
                 _T.LESION: 0.62, _T.EDEMA: 0.66, _T.HEMORRHAGE: 0.05, _T.VESSEL: 0.60}),
}

# MP2RAGE: UNI = Re(S1 conj S2) / (|S1|^2 + |S2|^2) lies in [-0.5, 0.5]. Each tissue is given its
# target UNI value (short T1 -> high) and its INV2 magnitude (~proton density); S1 follows.
_MP2RAGE_UNI = _lut({_T.AIR: 0.0, _T.FAT: 0.36, _T.MUSCLE: 0.06, _T.CSF: -0.38, _T.WM: 0.13, _T.GM: 0.03,
                     _T.MARROW: 0.30, _T.CORTICAL: 0.0, _T.NUCLEUS: -0.22, _T.ANNULUS: -0.04,
                     _T.LIGAMENT: -0.10, _T.LESION: -0.12, _T.EDEMA: -0.15, _T.HEMORRHAGE: 0.20,
                     _T.VESSEL: -0.30})
_MP2RAGE_INV2 = _lut({_T.FAT: 0.90, _T.MUSCLE: 0.70, _T.CSF: 1.00, _T.WM: 0.75, _T.GM: 0.85,
                      _T.MARROW: 0.60, _T.CORTICAL: 0.08, _T.NUCLEUS: 0.90, _T.ANNULUS: 0.60,
                      _T.LIGAMENT: 0.20, _T.LESION: 0.85, _T.EDEMA: 0.90, _T.HEMORRHAGE: 0.50,
                      _T.VESSEL: 0.30})


def _mp2rage_inv1(uni: np.ndarray, inv2: np.ndarray) -> np.ndarray:
    """Signed INV1 signal giving UNI value ``uni`` with INV2 ``inv2`` (root with |S1| < |S2|)."""
    out = np.zeros_like(uni)
    nonzero = np.abs(uni) > 1e-6
    u = uni[nonzero]
    out[nonzero] = inv2[nonzero] * (1.0 - np.sqrt(1.0 - 4.0 * u * u)) / (2.0 * u)
    return out


_MP2RAGE_INV1 = _mp2rage_inv1(_MP2RAGE_UNI, _MP2RAGE_INV2)

# Base noise standard deviation relative to the signal scale (CSF on T2w = 1), at 3 T, Siemens-like.
_NOISE: dict[str, float] = {"T2w": 0.030, "T1w": 0.022, "T2starw": 0.030, "DWI": 0.045,
                            "EPI": 0.040, "MP2RAGE": 0.012}
# Soft tissue (muscle, fat) gets a smooth multiplicative texture of this relative amplitude.
_TEXTURE_AMPLITUDE = 0.08


# --------------------------------------------------------------------------------------------------
# Dataset specifications
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """One scanner: vendor, field strength, how its converter orients files, its image quality."""

    name: str
    manufacturer: str
    field_strength: float
    axial_orientation: str  # axis codes of axial acquisitions, e.g. "LAS"
    sagittal_orientation: str  # axis codes of sagittal acquisitions, e.g. "PSR"
    resolution_index: int  # which entry of an acquisition's resolution choices this site uses


@dataclass(frozen=True)
class Vendor:
    """Vendor-specific image formation."""

    bias_strength: float  # std of the smooth log receive-field coefficients
    noise_factor: float  # multiplies the contrast's base noise
    acquired_fraction: float  # acquired / reconstructed matrix (< 1: zero-filled interpolation)
    apodisation: float  # 0: none; 1: full Hann window on the acquired k-space
    scale: float  # stored-value scale of signal 1.0


_VENDORS: dict[str, Vendor] = {
    "Siemens": Vendor(bias_strength=0.15, noise_factor=1.0, acquired_fraction=1.0, apodisation=0.0, scale=900.0),
    "GE": Vendor(bias_strength=0.25, noise_factor=1.15, acquired_fraction=1.0, apodisation=0.5, scale=1500.0),
    "Philips": Vendor(bias_strength=0.20, noise_factor=0.9, acquired_fraction=0.8, apodisation=0.2, scale=600.0),
}
_LOW_FIELD_NOISE = 1.7  # noise factor at 1.5 T relative to 3 T


@dataclass(frozen=True)
class Acquisition:
    """One sequence of a dataset and how it is sampled and named."""

    contrast: str  # key of _SIGNAL, or "MP2RAGE"
    suffix: str  # BIDS suffix
    datatype: str  # BIDS datatype folder
    entities: tuple[tuple[str, str], ...]  # BIDS entities after sub/ses, in BIDS order
    plane: Plane
    inplane_mm: tuple[float, ...]  # choices, picked by Site.resolution_index
    slice_mm: tuple[float, ...]  # choices, picked by Site.resolution_index
    matrix: tuple[int, int]  # in-plane size: axial (LR, AP); sagittal (AP, SI)
    n_slices: int


@dataclass(frozen=True)
class DatasetSpec:
    """Everything that defines one synthetic dataset."""

    dataset_id: str
    name: str
    description: str
    pathology: str  # "HC", "DCM", "SCI", "MS", or "HC/MS" (mixed)
    domain: Literal["in-domain", "ood"]
    n_subjects: int
    sites: tuple[Site, ...]
    acquisitions: tuple[Acquisition, ...]
    # "all": every subject gets every acquisition; "alternate": subject i gets acquisitions[i % n]
    acquisition_mode: Literal["all", "alternate"] = "all"
    two_session_subject: int | None = None  # 0-based subject scanned twice (ses-01, ses-02)


def _acq(contrast: str, suffix: str, datatype: str, entities: tuple[tuple[str, str], ...], plane: Plane,
         inplane: tuple[float, ...], slices: tuple[float, ...], matrix: tuple[int, int], n_slices: int) -> Acquisition:
    return Acquisition(contrast, suffix, datatype, entities, plane, inplane, slices, matrix, n_slices)


_AX = (("acq", "axial"),)
_SAG = (("acq", "sag"),)

_SPECS: dict[str, DatasetSpec] = {
    spec.dataset_id: spec
    for spec in (
        DatasetSpec(
            "synth-multicontrast", "Synthetic healthy cord, multi-contrast",
            "Healthy phantoms, four contrasts each (T1w, T2w sagittal; T2*w, DWI mean axial), three vendors.",
            "HC", "in-domain", 10,
            (Site("siteA", "Siemens", 3.0, "LAS", "PSR", 0), Site("siteB", "GE", 3.0, "RPI", "RPI", 1),
             Site("siteC", "Philips", 3.0, "LPS", "PSR", 2)),
            (_acq("T1w", "T1w", "anat", _SAG, "sagittal", (1.0, 1.0, 0.9), (1.5, 1.8, 1.5), (96, 128), 24),
             _acq("T2w", "T2w", "anat", _SAG, "sagittal", (0.8, 0.9, 0.8), (2.0, 2.5, 2.2), (112, 128), 16),
             _acq("T2starw", "T2starw", "anat", _AX, "axial", (0.5, 0.6, 0.55), (5.0, 4.0, 5.0), (128, 112), 14),
             _acq("DWI", "dwi", "dwi", (("rec", "average"),), "axial", (1.0, 1.1, 1.2), (5.0, 5.0, 5.0),
                  (64, 64), 14)),
            two_session_subject=2,
        ),
        DatasetSpec(
            "synth-compression", "Synthetic degenerative cervical myelopathy",
            "T2w axial; cord flattened antero-posteriorly and CSF effaced at one or two disc levels.",
            "DCM", "in-domain", 18,
            (Site("siteD", "Siemens", 3.0, "LAS", "PSR", 0), Site("siteE", "GE", 1.5, "RPI", "RPI", 1),
             Site("siteF", "Philips", 3.0, "LPS", "PSR", 2)),
            (_acq("T2w", "T2w", "anat", _AX, "axial", (0.7, 0.8, 0.6), (3.0, 4.0, 3.5), (96, 96), 24),),
        ),
        DatasetSpec(
            "synth-injury", "Synthetic spinal cord injury",
            "T2w sagittal; a swollen cord segment with hyperintense oedema, sometimes a haemorrhagic core.",
            "SCI", "in-domain", 18,
            (Site("siteG", "Siemens", 1.5, "PSR", "PSR", 0), Site("siteH", "Philips", 3.0, "RPI", "RPI", 1),
             Site("siteI", "GE", 3.0, "LPS", "PSR", 2)),
            (_acq("T2w", "T2w", "anat", _SAG, "sagittal", (0.9, 0.8, 1.0), (3.0, 2.5, 3.0), (112, 128), 14),),
        ),
        DatasetSpec(
            "synth-ms", "Synthetic multiple sclerosis",
            "T2w with hyperintense intramedullary lesions; even subjects axial, odd subjects sagittal.",
            "MS", "in-domain", 20,
            (Site("siteJ", "Siemens", 3.0, "LAS", "PSR", 0), Site("siteK", "Philips", 1.5, "LPS", "RPI", 1),
             Site("siteL", "GE", 3.0, "RPI", "PSR", 2)),
            (_acq("T2w", "T2w", "anat", _AX, "axial", (0.7, 0.8, 0.6), (3.0, 3.5, 3.0), (96, 96), 24),
             _acq("T2w", "T2w", "anat", _SAG, "sagittal", (0.9, 0.8, 0.9), (2.5, 3.0, 2.5), (112, 128), 14)),
            acquisition_mode="alternate",
        ),
        DatasetSpec(
            "synth-mp2rage", "Synthetic MP2RAGE UNI (out-of-domain)",
            "MP2RAGE UNI-like sagittal images: CSF dark, cord grey, fat bright, noise amplified to "
            "salt-and-pepper in air. Healthy and MS subjects. Test only.",
            "HC/MS", "ood", 12,
            (Site("siteM", "Siemens", 3.0, "RPI", "PSR", 0), Site("siteN", "Siemens", 3.0, "LAS", "RPI", 1)),
            (_acq("MP2RAGE", "UNIT1", "anat", _SAG, "sagittal", (1.0, 0.9), (1.0, 1.2), (128, 128), 36),),
        ),
        DatasetSpec(
            "synth-epi", "Synthetic gradient-echo EPI mean (out-of-domain)",
            "Axial 1 x 1 x 5 mm GRE-EPI means: distortion along the phase-encoding (AP) axis, signal "
            "drop-out slabs, Nyquist ghost at half the FOV. Test only.",
            "HC", "ood", 12,
            (Site("siteO", "Siemens", 3.0, "LAS", "PSR", 0), Site("siteP", "GE", 3.0, "RPI", "PSR", 0)),
            (_acq("EPI", "bold", "func", (("task", "rest"),), "axial", (1.0,), (5.0,), (72, 72), 14),),
        ),
    )
}
assert tuple(_SPECS) == SYNTHETIC_DATASET_IDS


def dataset_spec(dataset_id: str) -> DatasetSpec:
    """The specification of one synthetic dataset (raises KeyError naming the known ids)."""
    try:
        return _SPECS[dataset_id]
    except KeyError:
        raise KeyError(f"unknown synthetic dataset {dataset_id!r}; known: {', '.join(SYNTHETIC_DATASET_IDS)}") from None


# --------------------------------------------------------------------------------------------------
# Anatomy
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lesion:
    """An ellipsoidal MS lesion in normalised cord coordinates (p = LR / a, q = AP / b) and z in mm."""

    p: float
    q: float
    z: float
    rp: float
    rq: float
    rz: float


@dataclass(frozen=True)
class Injury:
    """A swollen cord segment centred at z with hyperintense oedema; optional haemorrhage core."""

    z: float
    half_length: float  # mm
    swelling: float  # relative increase of both half-axes at the centre
    hemorrhage: bool


@dataclass(frozen=True)
class Compression:
    """Antero-posterior flattening of the cord at a disc level."""

    z: float
    severity: float  # fraction of the AP diameter lost at the centre
    width: float  # mm, Gaussian sigma along z


@dataclass(frozen=True)
class Anatomy:
    """Analytic description of one neck. Lengths in mm; z is inferior -> superior, 0 near C4-C5.

    The cord centre is (xc(z), yc(z)); u = x - xc and v = y - yc are the in-plane offsets
    (v > 0 anterior).
    """

    sex: str
    age: int
    a0: float  # cord LR half-axis
    b0: float  # cord AP half-axis
    enlargement_z: float
    enlargement_sigma: float
    enlargement_lr: float
    enlargement_ap: float
    wobble: tuple[float, float, float]  # amplitude, period (mm), phase of the size variation
    x0: float
    x_amp: float
    x_period: float
    x_phase: float
    lordosis: float  # AP excursion of the path (mm)
    lordosis_z: float
    tilt: float  # AP slope of the path (mm / mm)
    csf_lr: float
    csf_ant: float
    csf_post: float
    level_spacing: float
    level_phase: float
    disc_height: float
    body_half_width: float
    body_half_depth: float
    neck_rx: float
    neck_ry: float
    neck_dv: float
    fat_thickness: float
    fascia_angles: tuple[float, float]  # degrees from the midline of two posterior fat planes
    trachea_radius: float
    spinous_length: float  # mm behind the canal
    disc_hydration: float  # 1 healthy nucleus, lower = degenerated (darker on T2w)
    lesions: tuple[Lesion, ...] = ()
    compressions: tuple[Compression, ...] = ()
    injury: Injury | None = None


_NECK_EXPONENT = 2.6  # superellipse exponent of the neck outline (2 = ellipse)


def sample_anatomy(rng: np.random.Generator, pathology: str) -> Anatomy:
    """Draw one subject's anatomy; ``pathology`` is "HC", "DCM", "SCI" or "MS"."""
    sex = "F" if rng.random() < 0.5 else "M"
    size = 0.95 if sex == "F" else 1.0
    age = int(rng.integers(22, 45) if pathology == "HC" else rng.integers(30, 72))
    spacing = float(rng.uniform(16.5, 19.0))
    phase = float(rng.uniform(0.0, spacing))
    disc_height = float(rng.uniform(4.0, 5.5))
    disc_centres = [phase + disc_height / 2 + k * spacing for k in range(-6, 6)]
    lesions: tuple[Lesion, ...] = ()
    compressions: tuple[Compression, ...] = ()
    injury = None
    if pathology == "MS":
        count = int(rng.integers(1, 5))
        lesions = tuple(
            Lesion(p=float(rng.uniform(-0.55, 0.55)), q=float(rng.uniform(-0.55, 0.45)), z=float(rng.uniform(-45, 35)),
                   rp=float(rng.uniform(0.22, 0.4)), rq=float(rng.uniform(0.25, 0.45)), rz=float(rng.uniform(3.0, 9.0)))
            for _ in range(count)
        )
    elif pathology == "DCM":
        candidates = [z for z in disc_centres if -35.0 <= z <= 15.0]
        count = min(len(candidates), int(rng.integers(1, 3)))
        chosen = rng.choice(len(candidates), size=count, replace=False)
        compressions = tuple(
            Compression(z=float(candidates[i]), severity=float(rng.uniform(0.2, 0.55)),
                        width=float(rng.uniform(3.0, 5.0)))
            for i in sorted(chosen)
        )
    elif pathology == "SCI":
        injury = Injury(z=float(rng.uniform(-30, 15)), half_length=float(rng.uniform(8.0, 16.0)),
                        swelling=float(rng.uniform(0.12, 0.3)), hemorrhage=bool(rng.random() < 0.5))
    return Anatomy(
        sex=sex,
        age=age,
        a0=float(rng.uniform(5.0, 5.9) * size),
        b0=float(rng.uniform(3.3, 3.8) * size),
        enlargement_z=float(rng.uniform(-25.0, -12.0)),
        enlargement_sigma=float(rng.uniform(15.0, 22.0)),
        enlargement_lr=float(rng.uniform(0.10, 0.20)),
        enlargement_ap=float(rng.uniform(0.0, 0.08)),
        wobble=(float(rng.uniform(0.0, 0.04)), float(rng.uniform(25.0, 60.0)), float(rng.uniform(0, 2 * math.pi))),
        x0=float(rng.normal(0.0, 1.0)),
        x_amp=float(rng.uniform(0.0, 2.0)),
        x_period=float(rng.uniform(120.0, 250.0)),
        x_phase=float(rng.uniform(0, 2 * math.pi)),
        lordosis=float(rng.uniform(3.0, 10.0)),
        lordosis_z=float(rng.uniform(-15.0, 10.0)),
        tilt=float(rng.uniform(-0.08, 0.08)),
        csf_lr=float(rng.uniform(2.8, 4.0)),
        csf_ant=float(rng.uniform(1.8, 3.0)),
        csf_post=float(rng.uniform(2.0, 3.5)),
        level_spacing=spacing,
        level_phase=phase,
        disc_height=disc_height,
        body_half_width=float(rng.uniform(7.5, 9.0) * size),
        body_half_depth=float(rng.uniform(6.5, 8.0) * size),
        neck_rx=float(rng.uniform(52.0, 62.0) * size),
        neck_ry=float(rng.uniform(52.0, 60.0) * size),
        neck_dv=float(rng.uniform(4.0, 10.0)),
        fascia_angles=(float(rng.uniform(25.0, 40.0)), float(rng.uniform(55.0, 70.0))),
        fat_thickness=float(rng.uniform(3.0, 8.0)),
        trachea_radius=float(rng.uniform(7.0, 9.0)),
        spinous_length=float(rng.uniform(16.0, 24.0)),
        disc_hydration=float(rng.uniform(0.35, 0.7) if pathology == "DCM" else rng.uniform(0.8, 1.0)),
        lesions=lesions,
        compressions=compressions,
        injury=injury,
    )


def _gauss(z: np.ndarray, centre: float, sigma: float) -> np.ndarray:
    return np.exp(-0.5 * ((z - centre) / sigma) ** 2)


@dataclass(frozen=True)
class Profiles:
    """Per-z quantities of the anatomy (1-D arrays over z), in mm and relative to the path centre."""

    xc: np.ndarray  # path centre, LR
    yc: np.ndarray  # path centre, AP
    a: np.ndarray  # cord LR half-axis
    b: np.ndarray  # cord AP half-axis
    cord_v: np.ndarray  # cord centre AP offset from the path (compression pushes it back)
    canal_a: np.ndarray  # canal LR half-axis
    canal_b: np.ndarray  # canal AP half-axis
    canal_v: np.ndarray  # canal centre AP offset from the path
    body_v: np.ndarray  # AP offset of the vertebral bodies' posterior wall
    disc: np.ndarray  # bool: z is inside a disc
    endplate: np.ndarray  # bool: z is a vertebral endplate (cortical)
    arch: np.ndarray  # bool: z crosses the posterior arch
    pedicle: np.ndarray  # bool: z crosses the pedicles / lateral masses
    level: np.ndarray  # mm above the lower disc's bottom, in [0, level_spacing)


def centreline(anat: Anatomy, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cord path (x, y) in mm for z in mm: lordotic in AP, gently wandering in LR."""
    x = anat.x0 + anat.x_amp * np.sin(2 * np.pi * z / anat.x_period + anat.x_phase)
    y = anat.lordosis * (np.cos(np.pi * (z - anat.lordosis_z) / 150.0) - 1.0) + anat.tilt * z
    return x, y


def profiles(anat: Anatomy, z: np.ndarray) -> Profiles:
    """Evaluate the per-z anatomy along ``z`` (mm)."""
    z = np.asarray(z, dtype=np.float64)
    xc, yc = centreline(anat, z)
    enlargement = _gauss(z, anat.enlargement_z, anat.enlargement_sigma)
    amp, period, phase = anat.wobble
    wobble = amp * np.sin(2 * np.pi * z / period + phase)
    a_base = anat.a0 * (1 + anat.enlargement_lr * enlargement + wobble)
    b_base = anat.b0 * (1 + anat.enlargement_ap * enlargement - 0.5 * wobble)
    a, b = a_base.copy(), b_base.copy()
    cord_ant, cord_post = b_base.copy(), -b_base.copy()
    effacement = np.zeros_like(z)
    for comp in anat.compressions:
        w = _gauss(z, comp.z, comp.width)
        loss = comp.severity * 2 * b_base * w
        cord_ant -= 0.7 * loss  # disc / osteophyte from the front
        cord_post += 0.3 * loss  # ligamentum flavum infolding from the back
        a *= 1 + 0.3 * comp.severity * w
        effacement = np.maximum(effacement, w * min(1.0, comp.severity / 0.2))
    if anat.injury is not None:
        w = np.clip(1 - ((z - anat.injury.z) / (1.4 * anat.injury.half_length)) ** 2, 0, None) ** 2
        a *= 1 + anat.injury.swelling * w
        cord_ant += anat.injury.swelling * w * b_base
        cord_post -= anat.injury.swelling * w * b_base
        effacement = np.maximum(effacement, 0.8 * w)
    b = (cord_ant - cord_post) / 2
    cord_v = (cord_ant + cord_post) / 2
    canal_ant = np.maximum(cord_ant + anat.csf_ant * (1 - effacement) + 0.15, cord_ant + 0.15)
    canal_ant = np.minimum(canal_ant, b_base + anat.csf_ant)
    canal_post = np.minimum(cord_post - anat.csf_post * (1 - 0.8 * effacement) - 0.15, cord_post - 0.15)
    canal_post = np.maximum(canal_post, -b_base - anat.csf_post)
    canal_a = np.maximum(a_base + anat.csf_lr, a + 0.6)
    level = np.mod(z - anat.level_phase, anat.level_spacing)
    disc = level < anat.disc_height
    endplate = ~disc & ((level < anat.disc_height + 0.8) | (level > anat.level_spacing - 0.8))
    arch = (level > 0.5 * anat.disc_height) & (level < anat.level_spacing - 5.0)
    pedicle = (level > anat.disc_height + 2.0) & (level < anat.level_spacing - 3.0)
    return Profiles(
        xc=xc, yc=yc, a=a, b=b, cord_v=cord_v, canal_a=canal_a, canal_b=(canal_ant - canal_post) / 2,
        canal_v=(canal_ant + canal_post) / 2, body_v=b_base + anat.csf_ant + 1.0,
        disc=disc, endplate=endplate, arch=arch, pedicle=pedicle, level=level,
    )


def _level_position(pr: Profiles) -> np.ndarray:
    """Position (mm) within the vertebral level, 0 at the top of the disc below, as (1, 1, nz) float32."""
    return pr.level[None, None, :].astype(Float)


def _span(coords: np.ndarray, lo: float, hi: float) -> slice:
    """Index range of sorted 1-D ``coords`` that lies within [lo, hi]."""
    start = int(np.searchsorted(coords, lo, side="left"))
    stop = int(np.searchsorted(coords, hi, side="right"))
    return slice(start, max(start, stop))


def label_volume(anat: Anatomy, xs: np.ndarray, ys: np.ndarray, zs: np.ndarray) -> np.ndarray:
    """Tissue label (uint8, :class:`Tissue`) at every point of the RAS grid ``xs`` x ``ys`` x ``zs`` (mm).

    ``xs``, ``ys``, ``zs`` are increasing 1-D coordinate arrays; the result has shape
    (len(xs), len(ys), len(zs)). Structures are painted in order, later ones over earlier ones.
    """
    pr = profiles(anat, zs)
    f = Float
    shape = (len(xs), len(ys), len(zs))
    lab = np.zeros(shape, dtype=np.uint8)
    u = (xs[:, None, None] - pr.xc[None, None, :]).astype(f)  # (nx, 1, nz)
    v = (ys[None, :, None] - pr.yc[None, None, :]).astype(f)  # (1, ny, nz)

    # neck: a rounded-box cross-section, subcutaneous fat around muscle, fat planes between muscles
    nv = v - anat.neck_dv
    n = _NECK_EXPONENT
    lab[np.abs(u / anat.neck_rx) ** n + np.abs(nv / anat.neck_ry) ** n <= 1] = _T.FAT
    rx, ry = anat.neck_rx - anat.fat_thickness, anat.neck_ry - anat.fat_thickness
    lab[np.abs(u / rx) ** n + np.abs(nv / ry) ** n <= 1] = _T.MUSCLE
    # fascial fat planes between the paraspinal muscles: oblique sheets running back and outwards
    post = _span(ys, float(pr.yc.min()) - 80.0, float(pr.yc.max()) - 12.0)
    if post.stop > post.start:
        vp, sub = v[:, post], lab[:, post]
        for angle in anat.fascia_angles:
            c, s = np.float32(math.cos(math.radians(angle))), np.float32(math.sin(math.radians(angle)))
            # the quadratic term bends the sheet the way the muscle bellies curve around the neck
            distance = np.abs(np.abs(u) * c + (vp + 16.0) * s - 0.004 * u * u)
            sheet = (distance < 0.4) & (sub == _T.MUSCLE) & (vp < -18.0)
            sub[sheet] = _T.FAT

    body_front = float(np.max(pr.body_v)) + 2 * anat.body_half_depth
    # vessels and airway, evaluated in a box in front of the spine
    sx = _span(xs, float(pr.xc.min()) - 40, float(pr.xc.max()) + 40)
    sy = _span(ys, float(pr.yc.min()) + 8, float(pr.yc.max()) + body_front + 2 * anat.trachea_radius + 12)
    if sx.stop > sx.start and sy.stop > sy.start:
        ub, vb, sub = u[sx], v[:, sy], lab[sx, sy]
        for side in (-1.0, 1.0):
            carotid = (anat.body_half_width + 12, body_front - 3, 3.5)
            jugular = (anat.body_half_width + 19, body_front - 6, 5.0)
            for du, dv, r in (carotid, jugular):
                sub[((ub - side * du) ** 2 + (vb - dv) ** 2) <= r * r] = _T.VESSEL
        sub[(ub**2 + (vb - body_front - anat.trachea_radius - 6) ** 2) <= anat.trachea_radius**2] = _T.AIR

    # spine: posterior elements, pedicles, anterior wall, bodies and discs, epidural fat, canal
    sx = _span(xs, float(pr.xc.min()) - 30, float(pr.xc.max()) + 30)
    sy = _span(ys, float(pr.yc.min()) - 45, float(pr.yc.max()) + body_front + 1)
    if sx.stop > sx.start and sy.stop > sy.start:
        _paint_spine(lab[sx, sy], u[sx], v[:, sy], anat, pr)

    # cord, grey matter and pathology, in a tight box around the canal
    reach_x = float(pr.canal_a.max()) + 1
    reach_y = float(np.max(np.abs(pr.canal_v) + pr.canal_b)) + 1
    sx = _span(xs, float(pr.xc.min()) - reach_x, float(pr.xc.max()) + reach_x)
    sy = _span(ys, float(pr.yc.min()) - reach_y, float(pr.yc.max()) + reach_y)
    if sx.stop > sx.start and sy.stop > sy.start:
        _paint_cord(lab[sx, sy], u[sx], v[:, sy], zs, anat, pr)
    return lab


def _paint_spine(lab: np.ndarray, u: np.ndarray, v: np.ndarray, anat: Anatomy, pr: Profiles) -> None:
    """Paint bone, disc, ligament, epidural fat and CSF into ``lab`` (a view) in place."""
    z3 = (None, None, slice(None))
    canal_a, canal_b, canal_v = (arr[z3].astype(Float) for arr in (pr.canal_a, pr.canal_b, pr.canal_v))
    body_v = pr.body_v[z3].astype(Float)
    vc = v - canal_v
    rho = (u / canal_a) ** 2 + (vc / canal_b) ** 2  # canal ellipse metric

    # posterior arch (laminae + spinous process) and ligamentum flavum between arches
    arch_outer = (u / (canal_a + 4.5)) ** 2 + (vc / (canal_b + 4.0)) ** 2 <= 1
    posterior = vc < 0.3 * canal_b
    ring = arch_outer & posterior & (rho > 1)
    arch = pr.arch[z3]
    lab[ring & arch] = _T.MARROW
    lab[ring & ~arch & ((u / (canal_a + 2.0)) ** 2 + (vc / (canal_b + 2.0)) ** 2 <= 1)] = _T.LIGAMENT
    # spinous process: points back and down (its level phase shifts with depth), tapers, ~2 cm long
    depth = -vc - canal_b  # mm behind the canal, (1, ny, nz)
    along = np.mod(_level_position(pr) + 0.45 * depth, anat.level_spacing)
    within = (along > anat.disc_height + 1.0) & (along < anat.level_spacing - 6.0 + 0.1 * depth)
    spinous = (depth > 2.0) & (depth < anat.spinous_length) & within & (np.abs(u) < 2.4 - 0.05 * depth)
    lab[spinous] = _T.MARROW
    lab[spinous & (np.abs(u) > 1.4 - 0.04 * depth)] = _T.CORTICAL

    # pedicles and lateral masses beside the canal
    lateral = (np.abs(u) > canal_a - 1.0) & (np.abs(u) < canal_a + 6.0) & (v > canal_v - 2.0) & (v < body_v + 3.0)
    lab[lateral & pr.pedicle[z3]] = _T.MARROW

    # anterior wall: posterior longitudinal ligament, or herniated disc at disc levels
    wall = (np.abs(u) < anat.body_half_width) & (v > canal_v) & (v < body_v)
    disc = pr.disc[z3]
    lab[wall & ~disc] = _T.LIGAMENT
    lab[wall & disc] = _T.ANNULUS

    # vertebral bodies (marrow, cortical rim and endplates) and discs (nucleus, annulus)
    m = (u / anat.body_half_width) ** 4 + ((v - body_v - anat.body_half_depth) / anat.body_half_depth) ** 4
    inside = m <= 1
    rim = m > (1 - 1.2 / anat.body_half_depth) ** 4
    lab[inside & ~disc] = _T.MARROW
    lab[inside & ~disc & (rim | pr.endplate[z3])] = _T.CORTICAL
    lab[inside & disc] = _T.ANNULUS
    lab[inside & disc & (m < 0.45)] = _T.NUCLEUS

    # epidural fat behind the dura, then the CSF-filled canal
    lab[posterior & ((u / (canal_a + 1.2)) ** 2 + (vc / (canal_b + 1.6)) ** 2 <= 1) & (rho > 1)] = _T.FAT
    lab[rho <= 1] = _T.CSF


def _paint_cord(lab: np.ndarray, u: np.ndarray, v: np.ndarray, zs: np.ndarray, anat: Anatomy, pr: Profiles) -> None:
    """Paint cord white matter, the grey-matter butterfly and intramedullary pathology in place."""
    z3 = (None, None, slice(None))
    p = u / pr.a[z3].astype(Float)  # (nx, 1, nz)
    q = (v - pr.cord_v[z3].astype(Float)) / pr.b[z3].astype(Float)  # (1, ny, nz)
    r2 = p * p + q * q
    cord = r2 <= 1
    lab[cord] = _T.WM
    ap = np.abs(p)
    ventral = ((ap - 0.36) / 0.21) ** 2 + ((q - 0.28) / 0.30) ** 2 <= 1
    cos_t, sin_t = math.cos(math.radians(25)), math.sin(math.radians(25))
    along = (ap - 0.22) * sin_t - (q + 0.40) * cos_t
    across = (ap - 0.22) * cos_t + (q + 0.40) * sin_t
    dorsal = (along / 0.38) ** 2 + (across / 0.085) ** 2 <= 1
    intermediate = ((ap - 0.22) / 0.16) ** 2 + (q / 0.26) ** 2 <= 1
    commissure = (ap < 0.25) & (np.abs(q - 0.02) < 0.08)
    lab[(ventral | dorsal | intermediate | commissure) & (r2 <= 0.86**2)] = _T.GM

    for lesion in anat.lesions:
        zr = _span(zs, lesion.z - lesion.rz, lesion.z + lesion.rz)
        if zr.stop <= zr.start:
            continue
        dz = ((zs[zr] - lesion.z) / lesion.rz).astype(Float)[None, None, :]
        inside = ((p[:, :, zr] - lesion.p) / lesion.rp) ** 2 + ((q[:, :, zr] - lesion.q) / lesion.rq) ** 2 + dz**2 <= 1
        lab[:, :, zr][inside & cord[:, :, zr]] = _T.LESION
    if anat.injury is not None:
        inj = anat.injury
        zr = _span(zs, inj.z - inj.half_length, inj.z + inj.half_length)
        if zr.stop > zr.start:
            dz2 = (((zs[zr] - inj.z) / inj.half_length) ** 2).astype(Float)[None, None, :]
            sub_r2 = r2[:, :, zr]
            lab[:, :, zr][sub_r2 + dz2 <= 0.85] = _T.EDEMA
            if inj.hemorrhage:
                core = ((p[:, :, zr] / 0.3) ** 2 + ((q[:, :, zr] + 0.1) / 0.35) ** 2 + dz2 / 0.12) <= 1
                lab[:, :, zr][core] = _T.HEMORRHAGE


# --------------------------------------------------------------------------------------------------
# Image formation
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Geometry:
    """An axis-aligned voxel grid in canonical RAS+ order."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]  # mm
    origin: tuple[float, float, float]  # world position (mm) of voxel (0, 0, 0)'s centre
    plane: Plane

    @property
    def slice_axis(self) -> int:
        return 2 if self.plane == "axial" else 0

    @property
    def inplane_axes(self) -> tuple[int, int]:
        return (0, 1) if self.plane == "axial" else (1, 2)

    @property
    def affine(self) -> np.ndarray:
        aff = np.diag([*self.spacing, 1.0])
        aff[:3, 3] = self.origin
        return aff

    def centres(self, axis: int) -> np.ndarray:
        return self.origin[axis] + self.spacing[axis] * np.arange(self.shape[axis])

    def supersampling(self) -> tuple[int, int, int]:
        """Sub-samples per voxel along each axis (at least 2): <= 0.5 mm in plane, <= 1 mm across slices."""
        out = []
        for axis in range(3):
            target = 1.0 if axis == self.slice_axis else 0.5
            out.append(max(2, math.ceil(self.spacing[axis] / target - 1e-6)))
        return tuple(out)  # type: ignore[return-value]

    def fine_centres(self, axis: int, factor: int) -> np.ndarray:
        step = self.spacing[axis] / factor
        start = self.origin[axis] - self.spacing[axis] / 2 + step / 2
        return start + step * np.arange(self.shape[axis] * factor)


@dataclass(frozen=True)
class VolumeJob:
    """One image to generate: who, which session, which sequence, where it goes."""

    subject_index: int
    session: str | None  # "01", "02" or None
    acquisition_index: int
    site: Site
    image_path: str  # relative to the dataset root
    mask_path: str

    @property
    def subject(self) -> str:
        return f"sub-{self.subject_index + 1:02d}"


@dataclass
class RenderedVolume:
    """A generated image and mask in canonical RAS+ order, with the orientation they are stored in."""

    image: np.ndarray  # int16 stored values
    mask: np.ndarray  # uint8 0/1
    geometry: Geometry
    orientation: str
    parameters: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> tuple[bytes, bytes]:
        """(image .nii.gz bytes, mask .nii.gz bytes), reoriented and deterministically compressed."""
        image, affine = reorient(self.image, self.geometry.affine, self.orientation)
        mask, _ = reorient(self.mask, self.geometry.affine, self.orientation)
        return (nifti_bytes(image, affine, f"cordbench synth v{GENERATOR_VERSION} image"),
                nifti_bytes(mask, affine, f"cordbench synth v{GENERATOR_VERSION} cord mask"))


def _block_mean(arr: np.ndarray, factors: tuple[int, int, int]) -> np.ndarray:
    """Average ``arr`` over non-overlapping blocks of ``factors`` voxels."""
    if factors == (1, 1, 1):
        return arr
    nx, ny, nz = (arr.shape[i] // factors[i] for i in range(3))
    view = arr.reshape(nx, factors[0], ny, factors[1], nz, factors[2])
    return view.mean(axis=(1, 3, 5), dtype=Float)


def _kspace_sample(fine: np.ndarray, geom: Geometry, factors: tuple[int, int, int], vendor: Vendor) -> np.ndarray:
    """Complex image on ``geom`` from supersampled ``fine`` signal.

    Across slices the slice profile is a box (block average); in plane the k-space is truncated to
    the acquired matrix (Gibbs ringing), optionally apodised, and zero-filled to the reconstructed one.
    """
    slice_axis = geom.slice_axis
    slice_factors = tuple(factors[i] if i == slice_axis else 1 for i in range(3))
    thick = _block_mean(fine, slice_factors)  # type: ignore[arg-type]
    axes = geom.inplane_axes
    spectrum = scipy.fft.fftshift(scipy.fft.fftn(thick.astype(np.complex64), axes=axes), axes=axes)
    index: list[slice] = [slice(None)] * 3
    for axis in axes:
        n_fine, n_out = spectrum.shape[axis], geom.shape[axis]
        start = n_fine // 2 - n_out // 2
        index[axis] = slice(start, start + n_out)
    spectrum = spectrum[tuple(index)]
    for axis in axes:
        n_out = geom.shape[axis]
        k = np.abs(np.arange(n_out) - n_out // 2) / (n_out / 2 * vendor.acquired_fraction)
        hann = 0.5 * (1 + np.cos(np.pi * np.clip(k, 0, 1)))
        window = np.where(k <= 1.0, (1 - vendor.apodisation) + vendor.apodisation * hann, 0.0)
        shape = [1, 1, 1]
        shape[axis] = n_out
        spectrum *= window.reshape(shape).astype(np.float32)
    image = scipy.fft.ifftn(scipy.fft.ifftshift(spectrum, axes=axes), axes=axes)
    gain = (geom.shape[axes[0]] * geom.shape[axes[1]]) / (thick.shape[axes[0]] * thick.shape[axes[1]])
    return (image * np.float32(gain)).astype(np.complex64)


def _bias_field(geom: Geometry, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Smooth multiplicative receive field: random low-order polynomial plus posterior coil gain."""
    coords = [np.linspace(-1, 1, geom.shape[axis], dtype=Float) for axis in range(3)]
    x, y, z = coords[0][:, None, None], coords[1][None, :, None], coords[2][None, None, :]
    c = rng.normal(0.0, strength, size=7).astype(Float)
    log_field = c[0] * x + c[1] * y + c[2] * z + c[3] * x * x + c[4] * y * y + c[5] * z * z + c[6] * x * y
    coil = np.float32(rng.uniform(0.2, 0.5)) * (-y)  # spine coil behind the neck: posterior brighter
    return np.exp(log_field + coil).astype(Float)


def _texture(geom: Geometry, rng: np.random.Generator) -> np.ndarray:
    """Smooth zero-mean, unit-std random field (~5 mm correlation length) on ``geom``."""
    noise = rng.standard_normal(geom.shape, dtype=Float)
    sigma = [max(0.5, 5.0 / s) for s in geom.spacing]
    smooth = ndimage.gaussian_filter(noise, sigma=sigma, mode="wrap")
    return smooth / np.float32(max(float(smooth.std()), 1e-6))


def _complex_noise(shape: tuple[int, ...], sigma: float, rng: np.random.Generator) -> np.ndarray:
    real = rng.standard_normal(shape, dtype=Float)
    imag = rng.standard_normal(shape, dtype=Float)
    return (real + 1j * imag).astype(np.complex64) * np.float32(sigma)


@dataclass(frozen=True)
class EpiArtefacts:
    """Parameters of the EPI-specific artefacts of one volume."""

    displacement_mm: float  # amplitude of the level-periodic field along the phase-encoding axis
    gradient_mm: float  # shim gradient: displacement change over the slab
    dropout_z: tuple[float, ...]  # centres (mm) of through-plane dephasing slabs
    dropout_depth: tuple[float, ...]
    ghost: float  # Nyquist ghost amplitude relative to the object
    ghost_phase: float


def _sample_epi(rng: np.random.Generator, anat: Anatomy, z_lo: float, z_hi: float) -> EpiArtefacts:
    discs = [anat.level_phase + anat.disc_height / 2 + k * anat.level_spacing for k in range(-8, 8)]
    discs = [z for z in discs if z_lo + 5 <= z <= z_hi - 5]
    count = min(len(discs), int(rng.integers(1, 3)))
    chosen = sorted(rng.choice(len(discs), size=count, replace=False)) if count else []
    return EpiArtefacts(
        displacement_mm=float(rng.uniform(1.5, 3.0)),
        gradient_mm=float(rng.uniform(-1.5, 1.5)),
        dropout_z=tuple(float(discs[i]) for i in chosen),
        dropout_depth=tuple(float(rng.uniform(0.45, 0.8)) for _ in chosen),
        ghost=float(rng.uniform(0.06, 0.14)),
        ghost_phase=float(rng.uniform(0, 2 * math.pi)),
    )


def _epi_displacement(anat: Anatomy, epi: EpiArtefacts, x: np.ndarray, y: np.ndarray, z: np.ndarray,
                      centre: tuple[float, float, float]) -> np.ndarray:
    """Displacement (mm, +y = anterior) of the B0 field map; strongest near bodies, periodic in levels."""
    cx, cy, cz = centre
    lateral = (((x - cx) / 18.0) ** 2)[:, None, None]
    anterior = (((y - cy - 10.0) / 16.0) ** 2)[None, :, None]
    spatial = np.exp(-0.5 * lateral - 0.5 * anterior)
    periodic = np.cos(2 * np.pi * (z - anat.level_phase) / anat.level_spacing)[None, None, :]
    gradient = (epi.gradient_mm * (z - cz) / 35.0)[None, None, :]
    return (epi.displacement_mm * spatial * periodic + gradient).astype(Float)


def _distort_labels(lab: np.ndarray, shift_vox: np.ndarray) -> np.ndarray:
    """Resample labels along axis 1 so that content at y appears at y + shift (nearest neighbour)."""
    ny = lab.shape[1]
    src = np.arange(ny, dtype=Float)[None, :, None] - shift_vox
    idx = np.clip(np.rint(src), 0, ny - 1).astype(np.intp)
    return np.take_along_axis(lab, idx, axis=1)


def plan_geometry(anat: Anatomy, acq: Acquisition, site: Site, rng: np.random.Generator,
                  offset: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> Geometry:
    """Field of view of one acquisition, centred on the cord (as an operator would) with jitter."""
    inplane = acq.inplane_mm[site.resolution_index % len(acq.inplane_mm)]
    thickness = acq.slice_mm[site.resolution_index % len(acq.slice_mm)]
    if acq.plane == "axial":
        shape = (acq.matrix[0], acq.matrix[1], acq.n_slices)
        spacing = (inplane, inplane, thickness)
        if anat.compressions:
            zc = float(np.mean([c.z for c in anat.compressions])) + float(rng.uniform(-8, 8))
        else:
            zc = float(rng.uniform(-22.0, 2.0))
    else:
        shape = (acq.n_slices, acq.matrix[0], acq.matrix[1])
        spacing = (thickness, inplane, inplane)
        zc = float(rng.uniform(-12.0, 4.0))
        if anat.injury is not None:
            zc = float(np.clip(anat.injury.z + rng.uniform(-10, 10), -25, 10))
    xc, yc = centreline(anat, np.array([zc]))
    dv = 0.0 if acq.plane == "axial" else float(rng.uniform(2.0, 8.0))  # sagittal FOVs show more of the neck
    centre = (float(xc[0]) + float(rng.uniform(-3, 3)) + offset[0],
              float(yc[0]) + dv + float(rng.uniform(-3, 3)) + offset[1], zc + offset[2])
    origin = tuple(round(c - (n - 1) / 2 * s, 4) for c, n, s in zip(centre, shape, spacing))
    return Geometry(shape=shape, spacing=spacing, origin=origin, plane=acq.plane)  # type: ignore[arg-type]


def render_volume(anat: Anatomy, acq: Acquisition, site: Site, rng: np.random.Generator,
                  offset: tuple[float, float, float] = (0.0, 0.0, 0.0), *,
                  epi_artefacts: bool | EpiArtefacts = True) -> RenderedVolume:
    """Image and exact cord mask of ``anat`` as acquired by ``acq`` on ``site``.

    ``offset`` moves the field of view (mm, RAS), e.g. to reposition a second session.
    ``epi_artefacts``: for an EPI acquisition, False renders it without distortion, drop-out and
    ghost; an :class:`EpiArtefacts` replaces the randomly drawn ones (the noise stays the same).
    """
    vendor = _VENDORS[site.manufacturer]
    geom = plan_geometry(anat, acq, site, rng, offset)
    factors = geom.supersampling()
    xs, ys, zs = (geom.fine_centres(axis, factors[axis]) for axis in range(3))
    labels = label_volume(anat, xs, ys, zs)
    params: dict[str, Any] = {}
    epi: EpiArtefacts | None = None
    if acq.contrast == "EPI" and epi_artefacts is not False:
        epi = _sample_epi(rng, anat, float(zs[0]), float(zs[-1]))
        if isinstance(epi_artefacts, EpiArtefacts):
            epi = epi_artefacts
        centre = tuple(float(np.mean(c)) for c in (xs, ys, zs))
        field_mm = _epi_displacement(anat, epi, xs, ys, zs, centre)  # type: ignore[arg-type]
        labels = _distort_labels(labels, field_mm / np.float32(ys[1] - ys[0]))
        params["epi"] = {"displacement_mm": round(epi.displacement_mm, 3), "gradient_mm": round(epi.gradient_mm, 3),
                         "dropout_z_mm": [round(z, 2) for z in epi.dropout_z],
                         "dropout_depth": [round(d, 3) for d in epi.dropout_depth],
                         "ghost": round(epi.ghost, 4), "phase_encoding_axis": "AP"}

    cord_fraction = _block_mean(np.isin(labels, CORD_TISSUES).astype(Float), factors)
    mask = (cord_fraction >= 0.5).astype(np.uint8)
    soft = _block_mean(_lut({_T.MUSCLE: 1.0, _T.FAT: 1.0})[labels], factors)
    noise_factor = vendor.noise_factor * (_LOW_FIELD_NOISE if site.field_strength < 2 else 1.0)
    sigma = _NOISE[acq.contrast] * noise_factor
    bias = _bias_field(geom, rng, vendor.bias_strength)
    texture = 1 + np.float32(_TEXTURE_AMPLITUDE) * _texture(geom, rng) * soft
    scale = vendor.scale * float(rng.uniform(0.85, 1.15))

    if acq.contrast == "MP2RAGE":
        s1 = _kspace_sample(_MP2RAGE_INV1[labels], geom, factors, vendor) * texture
        s2 = _kspace_sample(_MP2RAGE_INV2[labels], geom, factors, vendor) * texture
        s1 = s1 * bias + _complex_noise(geom.shape, sigma, rng)
        s2 = s2 * bias + _complex_noise(geom.shape, sigma, rng)
        uni = np.real(s1 * np.conj(s2)) / (np.abs(s1) ** 2 + np.abs(s2) ** 2 + np.float32(1e-12))
        stored = np.clip(np.rint((uni + 0.5) * 4095.0), 0, 4095)
        scale = 4095.0
    else:
        table = _SIGNAL[acq.contrast].copy()
        table[_T.NUCLEUS] *= anat.disc_hydration
        signal = _kspace_sample(table[labels], geom, factors, vendor) * texture
        if acq.contrast == "EPI":
            signal = _epi_image_effects(signal, geom, anat, epi)
        elif acq.contrast == "DWI":
            # residual motion / eddy-current blur left after averaging the diffusion volumes
            signal = ndimage.gaussian_filter(signal.real, sigma=(0.6, 0.6, 0.0)).astype(np.complex64)
        signal = signal * bias
        if epi is not None:
            ghost = np.roll(signal, geom.shape[1] // 2, axis=1) * np.complex64(
                epi.ghost * complex(math.cos(epi.ghost_phase), math.sin(epi.ghost_phase)))
            signal = signal * np.float32(1 - epi.ghost) + ghost
        magnitude = np.abs(signal + _complex_noise(geom.shape, sigma, rng))
        stored = np.clip(np.rint(magnitude * scale), 0, 32767)
    params.update({"contrast": acq.contrast, "plane": acq.plane, "voxel_size_mm": [round(s, 4) for s in geom.spacing],
                   "noise_sigma_relative": round(sigma, 5), "bias_strength": vendor.bias_strength,
                   "signal_scale": round(scale, 3), "supersampling": list(factors),
                   "acquired_fraction": vendor.acquired_fraction})
    return RenderedVolume(image=stored.astype(np.int16), mask=mask, geometry=geom, orientation="RAS", parameters=params)


def _epi_image_effects(signal: np.ndarray, geom: Geometry, anat: Anatomy, epi: EpiArtefacts | None) -> np.ndarray:
    """T2* blurring along phase encoding, intensity pile-up from the distortion, drop-out slabs."""
    out = ndimage.gaussian_filter1d(signal.real, sigma=0.7, axis=1).astype(Float)
    if epi is None:
        return out.astype(np.complex64)
    xs, ys, zs = (geom.centres(axis) for axis in range(3))
    centre = tuple(float(np.mean(c)) for c in (xs, ys, zs))
    field_mm = _epi_displacement(anat, epi, xs, ys, zs, centre)  # type: ignore[arg-type]
    jacobian = 1.0 + np.gradient(field_mm, geom.spacing[1], axis=1)
    out /= np.clip(jacobian, 0.4, 2.5)
    _, yc = centreline(anat, zs)
    for z_drop, depth in zip(epi.dropout_z, epi.dropout_depth):
        along = np.exp(-0.5 * ((zs - z_drop) / 4.0) ** 2)[None, None, :]
        # dephasing is strongest in front, near the bone-disc interfaces
        anterior = 1 / (1 + np.exp(-(ys[None, :, None] - yc[None, None, :] - 4.0) / 5.0))
        out *= (1 - depth * along * (0.35 + 0.65 * anterior)).astype(Float)
    return out.astype(np.complex64)


# --------------------------------------------------------------------------------------------------
# NIfTI encoding
# --------------------------------------------------------------------------------------------------


def reorient(array: np.ndarray, affine: np.ndarray, axcodes: str) -> tuple[np.ndarray, np.ndarray]:
    """Reorder/flip a RAS+ ``array`` and its ``affine`` so the array axes follow ``axcodes`` (e.g. "PSR")."""
    transform = nib.orientations.ornt_transform(nib.orientations.axcodes2ornt(("R", "A", "S")),
                                                nib.orientations.axcodes2ornt(tuple(axcodes)))
    data = np.ascontiguousarray(nib.orientations.apply_orientation(array, transform))
    new_affine = affine @ nib.orientations.inv_ornt_aff(transform, array.shape)
    return data, new_affine


def nifti_bytes(array: np.ndarray, affine: np.ndarray, description: str) -> bytes:
    """Deterministic .nii.gz bytes (gzip mtime 0, no file name, fixed header fields)."""
    img = nib.Nifti1Image(array, affine)
    header = img.header
    header.set_data_dtype(array.dtype)
    header.set_qform(affine, code=1)
    header.set_sform(affine, code=1)
    header.set_xyzt_units("mm", "sec")
    header["descrip"] = description.encode("ascii")[:79]
    raw = img.to_bytes()
    return gzip.compress(raw, compresslevel=6, mtime=0)


# --------------------------------------------------------------------------------------------------
# BIDS datasets
# --------------------------------------------------------------------------------------------------


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, *keys])


def _dataset_key(dataset_id: str) -> int:
    return zlib.crc32(dataset_id.encode("utf-8"))


def _subject_pathology(spec: DatasetSpec, subject_index: int) -> str:
    """The pathology of one subject; a mixed "HC/MS" dataset alternates, starting with HC."""
    options = spec.pathology.split("/")
    return options[subject_index % len(options)]


def subject_anatomy(dataset_id: str, subject_index: int, seed: int = 0) -> Anatomy:
    """The anatomy of 0-based subject ``subject_index`` of a dataset for ``seed`` (shared by its sessions)."""
    spec = dataset_spec(dataset_id)
    return sample_anatomy(_rng(seed, _dataset_key(dataset_id), subject_index, 0),
                          _subject_pathology(spec, subject_index))


def _bids_name(subject: str, session: str | None, acq: Acquisition) -> str:
    parts = [subject] + ([f"ses-{session}"] if session else []) + [f"{k}-{v}" for k, v in acq.entities]
    return "_".join(parts + [acq.suffix])


def plan_dataset(dataset_id: str) -> list[VolumeJob]:
    """Every volume of a dataset, in generation order, with its image and mask paths."""
    spec = dataset_spec(dataset_id)
    jobs: list[VolumeJob] = []
    for subject_index in range(spec.n_subjects):
        site = spec.sites[subject_index % len(spec.sites)]
        sessions: list[str | None] = ["01", "02"] if spec.two_session_subject == subject_index else [None]
        if spec.acquisition_mode == "all":
            acq_indices = list(range(len(spec.acquisitions)))
        else:
            acq_indices = [subject_index % len(spec.acquisitions)]
        for session in sessions:
            for acq_index in acq_indices:
                acq = spec.acquisitions[acq_index]
                subject = f"sub-{subject_index + 1:02d}"
                folder = "/".join([subject] + ([f"ses-{session}"] if session else []) + [acq.datatype])
                stem = _bids_name(subject, session, acq)
                jobs.append(VolumeJob(subject_index, session, acq_index, site, f"{folder}/{stem}.nii.gz",
                                      f"derivatives/labels/{folder}/{stem}_seg-manual.nii.gz"))
    return jobs


def render_job(dataset_id: str, job: VolumeJob, seed: int = 0) -> RenderedVolume:
    """Render one planned volume (deterministic in ``seed``), oriented as its site stores it."""
    spec = dataset_spec(dataset_id)
    acq = spec.acquisitions[job.acquisition_index]
    anat = subject_anatomy(dataset_id, job.subject_index, seed)
    session_number = int(job.session) if job.session else 0
    rng = _rng(seed, _dataset_key(dataset_id), job.subject_index, 1 + session_number, job.acquisition_index)
    # a later session repositions the subject: a few mm shift of the field of view
    offset = tuple(float(v) for v in rng.uniform(-4, 4, size=3)) if session_number > 1 else (0.0, 0.0, 0.0)
    volume = render_volume(anat, acq, job.site, rng, offset)  # type: ignore[arg-type]
    volume.orientation = job.site.axial_orientation if acq.plane == "axial" else job.site.sagittal_orientation
    volume.parameters["orientation"] = volume.orientation
    return volume


def _round_floats(obj: Any, digits: int = 4) -> Any:
    if isinstance(obj, float):
        return round(obj, digits)
    if isinstance(obj, dict):
        return {k: _round_floats(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_round_floats(v, digits) for v in obj]
    return obj


def _sidecar(spec: DatasetSpec, job: VolumeJob, volume: RenderedVolume, seed: int) -> dict[str, Any]:
    """Minimal BIDS sidecar: scanner fields, sequence fields BIDS requires, and the phantom parameters."""
    acq = spec.acquisitions[job.acquisition_index]
    anat = subject_anatomy(spec.dataset_id, job.subject_index, seed)
    sidecar: dict[str, Any] = {
        "Manufacturer": job.site.manufacturer,
        "MagneticFieldStrength": job.site.field_strength,
        "InstitutionName": job.site.name,
    }
    if acq.contrast == "EPI":
        sidecar.update({"TaskName": "rest", "RepetitionTime": 2.5, "EchoTime": 0.03,
                        "PhaseEncodingDirection": _phase_encoding_direction(volume.orientation)})
    if acq.contrast == "DWI":
        sidecar.update({"ImageType": ["DERIVED", "TRACEW", "MEAN"], "Description":
                        "Mean of the diffusion-weighted volumes (b = 800 s/mm2), motion-corrected."})
    if acq.contrast == "MP2RAGE":
        sidecar.update({"ImageType": ["DERIVED", "UNI"], "InversionTime": [0.7, 2.5]})
    pathology = {"lesions": [vars(lesion) for lesion in anat.lesions],
                 "compressions": [vars(c) for c in anat.compressions],
                 "injury": vars(anat.injury) if anat.injury else None}
    sidecar["SyntheticPhantom"] = _round_floats({
        "generator": "cordbench synth", "generator_version": GENERATOR_VERSION, "seed": seed,
        **volume.parameters, "shape_canonical": list(volume.geometry.shape),
        "cord_half_axes_mm": [anat.a0, anat.b0], "pathology": _subject_pathology(spec, job.subject_index),
        **{k: v for k, v in pathology.items() if v},
    })
    return sidecar


def _phase_encoding_direction(orientation: str) -> str:
    """BIDS PhaseEncodingDirection (i/j/k, '-' when reversed) of an anterior-going PE in ``orientation``."""
    for index, code in enumerate(orientation):
        if code in "AP":
            return "ijk"[index] + ("" if code == "A" else "-")
    raise ValueError(f"orientation {orientation!r} has no antero-posterior axis")


def _participants_tsv(spec: DatasetSpec, seed: int) -> str:
    rows = ["participant_id\tsex\tage\tsite\tmanufacturer\tfield_strength\tpathology"]
    for subject_index in range(spec.n_subjects):
        anat = subject_anatomy(spec.dataset_id, subject_index, seed)
        site = spec.sites[subject_index % len(spec.sites)]
        rows.append(f"sub-{subject_index + 1:02d}\t{anat.sex}\t{anat.age}\t{site.name}\t{site.manufacturer}\t"
                    f"{site.field_strength:g}\t{_subject_pathology(spec, subject_index)}")
    return "\n".join(rows) + "\n"


_PARTICIPANTS_JSON = {
    "sex": {"Description": "sex of the phantom", "Levels": {"F": "female", "M": "male"}},
    "age": {"Description": "age of the phantom", "Units": "year"},
    "site": {"Description": "synthetic acquisition site"},
    "manufacturer": {"Description": "vendor whose image formation is mimicked"},
    "field_strength": {"Description": "nominal static field", "Units": "T"},
    "pathology": {"Description": "HC healthy, DCM degenerative compression, SCI injury, MS multiple sclerosis"},
}


def _static_files(spec: DatasetSpec, seed: int) -> dict[str, bytes]:
    """Dataset-level files: descriptions, participants, README."""
    generated_by = [{"Name": "cordbench synth", "Version": GENERATOR_VERSION,
                     "Description": f"benchmark/synth.py, seed {seed}"}]
    description = {"Name": spec.name, "BIDSVersion": "1.9.0", "DatasetType": "raw", "License": "CC0",
                   "Authors": ["cordbench"], "GeneratedBy": generated_by,
                   "HowToAcknowledge": "Synthetic phantoms generated by cordbench (benchmark/synth.py)."}
    labels = {"Name": f"{spec.name}: cord masks", "BIDSVersion": "1.9.0", "DatasetType": "derivative",
              "License": "CC0", "GeneratedBy": [{**generated_by[0], "Description":
                                                 "exact phantom cord region, supersampled, thresholded at 0.5"}]}
    readme = (f"# {spec.name}\n\n{spec.description}\n\nRole: {spec.domain}. Generated by `cordbench synth` "
              f"(generator version {GENERATOR_VERSION}, seed {seed}). Images are int16 magnitude; masks under "
              "derivatives/labels are uint8 0/1 on the image grid. See docs/synthetic.md.\n")

    def js(obj: Any) -> bytes:
        return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8")

    return {
        "dataset_description.json": js(description),
        "participants.tsv": _participants_tsv(spec, seed).encode("utf-8"),
        "participants.json": js(_PARTICIPANTS_JSON),
        "README.md": readme.encode("utf-8"),
        "derivatives/labels/dataset_description.json": js(labels),
    }


def _volume_files(spec: DatasetSpec, job: VolumeJob, seed: int) -> dict[str, bytes]:
    """The image, its sidecar (and bval/bvec for DWI) and its mask, as relative path -> bytes."""
    volume = render_job(spec.dataset_id, job, seed)
    image, mask = volume.encode()
    stem = job.image_path[: -len(".nii.gz")]
    files = {job.image_path: image, job.mask_path: mask,
             f"{stem}.json": (json.dumps(_sidecar(spec, job, volume, seed), indent=2, sort_keys=True) + "\n").encode()}
    if spec.acquisitions[job.acquisition_index].datatype == "dwi":
        # one trace-weighted mean volume: b = 800 with a zero direction, as scanners write TRACEW images
        files[f"{stem}.bval"] = b"800\n"
        files[f"{stem}.bvec"] = b"0\n0\n0\n"
    return files


def _stamp_matches(folder: Path, dataset_id: str, seed: int) -> bool:
    """True when ``folder`` holds this generator version's output for ``seed``, every file unchanged."""
    stamp_path = folder / STAMP_NAME
    try:
        stamp = json.loads(stamp_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    identity = (stamp.get("generator_version"), stamp.get("seed"), stamp.get("dataset_id"))
    if identity != (GENERATOR_VERSION, seed, dataset_id):
        return False
    files = stamp.get("files")
    if not isinstance(files, dict) or not files:
        return False
    for relative, digest in files.items():
        path = folder / relative
        if not path.is_file() or sha256_file(path) != digest:
            return False
    return True


def count_volumes(dataset_id: str) -> int:
    """How many images a dataset has."""
    return len(plan_dataset(dataset_id))


def _generate(dataset_id: str, out_root: Path, seed: int, advance: Callable[[], None]) -> Path:
    spec = dataset_spec(dataset_id)
    out_root = Path(out_root)
    folder = out_root / dataset_id
    jobs = plan_dataset(dataset_id)
    if _stamp_matches(folder, dataset_id, seed):
        for _ in jobs:
            advance()
        return folder
    out_root.mkdir(parents=True, exist_ok=True)
    staging = out_root / f".{dataset_id}.partial-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    digests: dict[str, str] = {}

    def write(relative: str, data: bytes) -> None:
        atomic_write_bytes(staging / relative, data)
        digests[relative] = sha256_bytes(data)

    try:
        for relative, data in _static_files(spec, seed).items():
            write(relative, data)
        for job in jobs:
            for relative, data in _volume_files(spec, job, seed).items():
                write(relative, data)
            advance()
        stamp = {"generator": "cordbench synth", "generator_version": GENERATOR_VERSION, "seed": seed,
                 "dataset_id": dataset_id, "files": dict(sorted(digests.items()))}
        atomic_write_json(staging / STAMP_NAME, stamp)
        _swap_in(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def _swap_in(staging: Path, folder: Path) -> None:
    """Replace ``folder`` by the finished ``staging`` folder (renames; the old tree is removed after)."""
    if folder.exists():
        retired = folder.parent / f".{folder.name}.old-{os.getpid()}"
        if retired.exists():
            shutil.rmtree(retired)
        os.replace(folder, retired)
        os.replace(staging, folder)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(staging, folder)


def generate_dataset(dataset_id: str, out_root: Path, seed: int = 0) -> Path:
    """Write one synthetic BIDS dataset to ``out_root/dataset_id`` and return that folder.

    Idempotent: a folder whose stamp (generator version, seed, sha256 of every file) still matches
    is left untouched; otherwise the dataset is written to a staging folder and swapped in.
    """
    return _generate(dataset_id, Path(out_root), seed, lambda: None)


def generate_suite(out_root: Path, seed: int = 0, *, progress: bool = True) -> dict[str, Path]:
    """Write all :data:`SYNTHETIC_DATASET_IDS` under ``out_root``; dataset id -> folder."""
    out_root = Path(out_root)
    if not progress:
        return {dataset_id: generate_dataset(dataset_id, out_root, seed) for dataset_id in SYNTHETIC_DATASET_IDS}
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    total = sum(count_volumes(dataset_id) for dataset_id in SYNTHETIC_DATASET_IDS)
    folders: dict[str, Path] = {}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task("synthetic volumes", total=total)
        for dataset_id in SYNTHETIC_DATASET_IDS:
            bar.update(task, description=dataset_id)
            folders[dataset_id] = _generate(dataset_id, out_root, seed, lambda: bar.advance(task))
    return folders


# --------------------------------------------------------------------------------------------------
# Figure
# --------------------------------------------------------------------------------------------------

# (dataset, acquisition index, subject index, title) of each panel of the contrast figure
_FIGURE_PANELS: tuple[tuple[str, int, int, str], ...] = (
    ("synth-multicontrast", 1, 0, "T2w sagittal"),
    ("synth-multicontrast", 0, 0, "T1w sagittal"),
    ("synth-multicontrast", 2, 0, "T2*w axial"),
    ("synth-multicontrast", 3, 0, "DWI mean axial"),
    ("synth-compression", 0, 0, "T2w axial, compression"),
    ("synth-injury", 0, 0, "T2w sagittal, injury"),
    ("synth-ms", 1, 1, "T2w sagittal, MS"),
    ("synth-mp2rage", 0, 1, "MP2RAGE UNI (OOD)"),
    ("synth-epi", 0, 0, "GRE-EPI mean (OOD)"),
)


def _panel_slice(volume: RenderedVolume, dataset_id: str, subject_index: int,
                 seed: int) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """A display slice (image, mask, imshow extent) through the cord, radiological axial / anterior-left sagittal."""
    geom = volume.geometry
    anat = subject_anatomy(dataset_id, subject_index, seed)
    if geom.plane == "axial":
        zs = geom.centres(2)
        k = int(np.argmax(volume.mask.sum(axis=(0, 1)) * (np.abs(zs - zs.mean()) < 15)))
        if anat.compressions:
            k = int(np.argmin(np.abs(zs - anat.compressions[0].z)))
        image, mask = volume.image[:, :, k].T[:, ::-1], volume.mask[:, :, k].T[:, ::-1]
        extent = [0, geom.shape[0] * geom.spacing[0], 0, geom.shape[1] * geom.spacing[1]]
    else:
        i = int(np.argmax(volume.mask.sum(axis=(1, 2))))
        image, mask = volume.image[i].T[:, ::-1], volume.mask[i].T[:, ::-1]
        extent = [0, geom.shape[1] * geom.spacing[1], 0, geom.shape[2] * geom.spacing[2]]
    return image, mask, extent


def render_contrast_figure(out_png: Path, seed: int = 0) -> Path:
    """Write a PNG with one slice per contrast / dataset and the cord mask contour; returns ``out_png``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9.0, 9.6), dpi=72)
    FigureCanvasAgg(figure)
    axes = figure.subplots(3, 3)
    for ax, (dataset_id, acq_index, subject_index, title) in zip(axes.ravel(), _FIGURE_PANELS):
        job = next(j for j in plan_dataset(dataset_id)
                   if j.acquisition_index == acq_index and j.subject_index == subject_index)
        volume = render_job(dataset_id, job, seed)
        image, mask, extent = _panel_slice(volume, dataset_id, subject_index, seed)
        vmax = float(np.percentile(image, 99.5))
        ax.imshow(image, cmap="gray", vmin=0, vmax=vmax, origin="lower", extent=extent, interpolation="nearest")
        ax.contour(mask, levels=[0.5], colors="#ff3b30", linewidths=0.9, origin="lower", extent=extent)
        ax.set_title(f"{title}\n{dataset_id}, {volume.orientation}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    figure.suptitle(f"cordbench synthetic phantoms (seed {seed}); red: cord mask", fontsize=11)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    out_png = Path(out_png)
    atomic_write_bytes(out_png, buffer.getvalue())
    return out_png
