"""Tissues of the phantom and how each contrast maps them to signal: lookup tables, noise, texture."""

from __future__ import annotations

from enum import IntEnum

import numpy as np

Float = np.float32


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


def lut(values: dict[Tissue, float]) -> np.ndarray:
    table = np.zeros(N_TISSUES, dtype=Float)
    for tissue, value in values.items():
        table[tissue] = value
    return table


# Relative magnitude signal per tissue (CSF on T2w = 1). Chosen from the appearance of clinical
# sequences at 3 T, not fitted to anything.
SIGNAL: dict[str, np.ndarray] = {
    # T2-weighted turbo spin echo: CSF bright, cord grey, fat bright, discs bright, flow voids dark.
    "T2w": lut({_T.FAT: 0.72, _T.MUSCLE: 0.22, _T.CSF: 1.0, _T.WM: 0.33, _T.GM: 0.37, _T.MARROW: 0.42,
                _T.CORTICAL: 0.04, _T.NUCLEUS: 0.80, _T.ANNULUS: 0.16, _T.LIGAMENT: 0.07,
                _T.LESION: 0.72, _T.EDEMA: 0.80, _T.HEMORRHAGE: 0.10, _T.VESSEL: 0.05}),
    # T1-weighted (MPRAGE-like): cord brighter than CSF, fat and marrow bright.
    "T1w": lut({_T.FAT: 0.95, _T.MUSCLE: 0.42, _T.CSF: 0.12, _T.WM: 0.62, _T.GM: 0.54, _T.MARROW: 0.75,
                _T.CORTICAL: 0.04, _T.NUCLEUS: 0.38, _T.ANNULUS: 0.30, _T.LIGAMENT: 0.08,
                _T.LESION: 0.42, _T.EDEMA: 0.45, _T.HEMORRHAGE: 0.80, _T.VESSEL: 0.06}),
    # T2*-weighted multi-echo gradient echo: grey matter brighter than white matter, marrow dark
    # (trabecular susceptibility), inflowing blood bright.
    "T2starw": lut({_T.FAT: 0.45, _T.MUSCLE: 0.26, _T.CSF: 0.95, _T.WM: 0.40, _T.GM: 0.68,
                    _T.MARROW: 0.14, _T.CORTICAL: 0.03, _T.NUCLEUS: 0.58, _T.ANNULUS: 0.18,
                    _T.LIGAMENT: 0.07, _T.LESION: 0.70, _T.EDEMA: 0.75, _T.HEMORRHAGE: 0.04,
                    _T.VESSEL: 0.85}),
    # Mean of diffusion-weighted volumes (b = 800, fat-saturated): cord brightest, CSF attenuated.
    "DWI": lut({_T.FAT: 0.05, _T.MUSCLE: 0.16, _T.CSF: 0.20, _T.WM: 0.55, _T.GM: 0.50, _T.MARROW: 0.06,
                _T.CORTICAL: 0.02, _T.NUCLEUS: 0.24, _T.ANNULUS: 0.10, _T.LIGAMENT: 0.04,
                _T.LESION: 0.45, _T.EDEMA: 0.40, _T.HEMORRHAGE: 0.08, _T.VESSEL: 0.02}),
    # Gradient-echo EPI mean (fat-saturated, T2*-weighted): CSF bright, cord grey, fat dark.
    "EPI": lut({_T.FAT: 0.08, _T.MUSCLE: 0.30, _T.CSF: 0.95, _T.WM: 0.45, _T.GM: 0.52, _T.MARROW: 0.10,
                _T.CORTICAL: 0.02, _T.NUCLEUS: 0.50, _T.ANNULUS: 0.15, _T.LIGAMENT: 0.05,
                _T.LESION: 0.62, _T.EDEMA: 0.66, _T.HEMORRHAGE: 0.05, _T.VESSEL: 0.60}),
}

# MP2RAGE: UNI = Re(S1 conj S2) / (|S1|^2 + |S2|^2) lies in [-0.5, 0.5]. Each tissue is given its
# target UNI value (short T1 -> high) and its INV2 magnitude (~proton density); S1 follows.
_MP2RAGE_UNI = lut({_T.AIR: 0.0, _T.FAT: 0.36, _T.MUSCLE: 0.06, _T.CSF: -0.38, _T.WM: 0.13, _T.GM: 0.03,
                    _T.MARROW: 0.30, _T.CORTICAL: 0.0, _T.NUCLEUS: -0.22, _T.ANNULUS: -0.04,
                    _T.LIGAMENT: -0.10, _T.LESION: -0.12, _T.EDEMA: -0.15, _T.HEMORRHAGE: 0.20,
                    _T.VESSEL: -0.30})
MP2RAGE_INV2 = lut({_T.FAT: 0.90, _T.MUSCLE: 0.70, _T.CSF: 1.00, _T.WM: 0.75, _T.GM: 0.85,
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


MP2RAGE_INV1 = _mp2rage_inv1(_MP2RAGE_UNI, MP2RAGE_INV2)

# Base noise standard deviation relative to the signal scale (CSF on T2w = 1), at 3 T, Siemens-like.
NOISE: dict[str, float] = {"T2w": 0.030, "T1w": 0.022, "T2starw": 0.030, "DWI": 0.045,
                           "EPI": 0.040, "MP2RAGE": 0.012}
# Soft tissue (muscle, fat) gets a smooth multiplicative texture of this relative amplitude.
TEXTURE_AMPLITUDE = 0.08
