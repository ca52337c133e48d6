"""What each synthetic dataset is: its sites, vendors, acquisitions and subjects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

GENERATOR_VERSION = "2"
SYNTHETIC_DATASET_IDS: tuple[str, ...] = (
    "synth-multicontrast",
    "synth-compression",
    "synth-injury",
    "synth-ms",
    "synth-mp2rage",
    "synth-epi",
)

Plane = Literal["axial", "sagittal"]


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


VENDORS: dict[str, Vendor] = {
    "Siemens": Vendor(bias_strength=0.15, noise_factor=1.0, acquired_fraction=1.0, apodisation=0.0, scale=900.0),
    "GE": Vendor(bias_strength=0.25, noise_factor=1.15, acquired_fraction=1.0, apodisation=0.5, scale=1500.0),
    "Philips": Vendor(bias_strength=0.20, noise_factor=0.9, acquired_fraction=0.8, apodisation=0.2, scale=600.0),
}
LOW_FIELD_NOISE = 1.7  # noise factor at 1.5 T relative to 3 T


@dataclass(frozen=True)
class Acquisition:
    """One sequence of a dataset and how it is sampled and named."""

    contrast: str  # key of SIGNAL, or "MP2RAGE"
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
