"""Which volumes a dataset has, how each subject and volume is seeded, and rendering one planned volume."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from benchmark.data.synth.anatomy import Anatomy, sample_anatomy
from benchmark.data.synth.render import RenderedVolume, render_volume
from benchmark.data.synth.specs import Acquisition, DatasetSpec, Site, dataset_spec


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


def seeded_rng(seed: int, *keys: int) -> np.random.Generator:
    """The generator of one subject or volume: ``keys`` name it (dataset key, subject, session, acquisition)."""
    return np.random.default_rng([seed, *keys])


def dataset_key(dataset_id: str) -> int:
    """A stable integer for ``dataset_id`` (its CRC-32), the first key of every generator of that dataset."""
    return zlib.crc32(dataset_id.encode("utf-8"))


def subject_pathology(spec: DatasetSpec, subject_index: int) -> str:
    """The pathology of one subject; a mixed "HC/MS" dataset alternates, starting with HC."""
    options = spec.pathology.split("/")
    return options[subject_index % len(options)]


def subject_anatomy(dataset_id: str, subject_index: int, seed: int = 0) -> Anatomy:
    """The anatomy of 0-based subject ``subject_index`` of a dataset for ``seed`` (shared by its sessions)."""
    spec = dataset_spec(dataset_id)
    return sample_anatomy(seeded_rng(seed, dataset_key(dataset_id), subject_index, 0),
                          subject_pathology(spec, subject_index))


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


def count_volumes(dataset_id: str) -> int:
    """How many images a dataset has."""
    return len(plan_dataset(dataset_id))


def render_job(dataset_id: str, job: VolumeJob, seed: int = 0) -> RenderedVolume:
    """Render one planned volume (deterministic in ``seed``), oriented as its site stores it."""
    spec = dataset_spec(dataset_id)
    acq = spec.acquisitions[job.acquisition_index]
    anat = subject_anatomy(dataset_id, job.subject_index, seed)
    session_number = int(job.session) if job.session else 0
    rng = seeded_rng(seed, dataset_key(dataset_id), job.subject_index, 1 + session_number, job.acquisition_index)
    # a later session repositions the subject: a few mm shift of the field of view
    offset = tuple(float(v) for v in rng.uniform(-4, 4, size=3)) if session_number > 1 else (0.0, 0.0, 0.0)
    volume = render_volume(anat, acq, job.site, rng, offset)  # type: ignore[arg-type]
    volume.orientation = job.site.axial_orientation if acq.plane == "axial" else job.site.sagittal_orientation
    volume.parameters["orientation"] = volume.orientation
    return volume
