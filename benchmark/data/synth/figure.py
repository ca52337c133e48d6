"""The contrast figure of docs/synthetic.md: one slice per dataset and contrast with the cord mask."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from benchmark.data.synth.plan import plan_dataset, render_job, subject_anatomy
from benchmark.data.synth.render import RenderedVolume
from benchmark.io import atomic_write_bytes

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
