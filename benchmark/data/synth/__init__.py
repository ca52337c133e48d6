"""Synthetic BIDS datasets of phantom cervical spinal cord MRI, with exact cord masks.

A *phantom* is an analytic description of one neck (:class:`Anatomy`, ``anatomy.py``): an elliptical cord
following a smooth lordotic path, with a cervical enlargement and a grey-matter butterfly, a CSF-filled
canal, vertebral bodies, discs, posterior elements, vessels, trachea, muscle and fat. A dataset
(``specs.py``) lists its sites, vendors and acquisitions. An *acquisition* samples the phantom on an
axis-aligned grid (``render.py``): tissue labels are evaluated at supersampled points, mapped to signal by
a per-contrast lookup table (``contrasts.py``), reduced to the voxel grid (slice profile = box average;
in-plane = k-space truncation, so edges ring like real MR), then a receive bias field, vendor
reconstruction and complex Gaussian noise (Rician magnitude) are applied. The cord mask is the
supersampled cord fraction thresholded at 0.5 on the same grid. ``plan.py`` lists a dataset's volumes and
seeds each one; ``writer.py`` writes the BIDS files; ``figure.py`` draws the contrast figure.

Arrays are built in canonical RAS+ order and reoriented to the acquisition's declared orientation
(LAS, RPI, LPS, PSR) with nibabel, so image and mask share one affine and ``as_closest_canonical``
brings both back to RAS+. Images are stored as int16 without scaling (as scanners store magnitude
data); masks are uint8 0/1. Files are gzip-compressed with mtime 0, so a seed gives byte-identical
files. See ``docs/synthetic.md``.

Public API: :data:`SYNTHETIC_DATASET_IDS`, :func:`generate_suite`, :func:`generate_dataset`,
:func:`render_contrast_figure`; the rest below is for tests and for reading one volume at a time.
"""

from benchmark.data.synth.anatomy import Anatomy, label_volume, profiles
from benchmark.data.synth.contrasts import Tissue
from benchmark.data.synth.figure import render_contrast_figure
from benchmark.data.synth.plan import VolumeJob, count_volumes, plan_dataset, render_job, subject_anatomy
from benchmark.data.synth.render import EpiArtefacts, RenderedVolume, render_volume
from benchmark.data.synth.specs import GENERATOR_VERSION, SYNTHETIC_DATASET_IDS, DatasetSpec, dataset_spec
from benchmark.data.synth.writer import STAMP_NAME, generate_dataset, generate_suite

__all__ = [
    "GENERATOR_VERSION", "STAMP_NAME", "SYNTHETIC_DATASET_IDS", "Anatomy", "DatasetSpec", "EpiArtefacts",
    "RenderedVolume", "Tissue", "VolumeJob", "count_volumes", "dataset_spec", "generate_dataset", "generate_suite",
    "label_volume", "plan_dataset", "profiles", "render_contrast_figure", "render_job", "render_volume",
    "subject_anatomy",
]
