"""Case overlays: best, median and worst cases drawn over their image (matplotlib PNG)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from benchmark.evaluation.results import load_cases_index
from benchmark.analysis.labels import METRIC_LABELS
from benchmark.analysis.report.inputs import ReportError


def case_images_from_cases_index(indexes: Mapping[str, Path], *, base: Path | None = None) -> dict[str, dict]:
    """Merge submissions' ``cases_index.json`` files (written by scoring) into :func:`write_report`'s
    ``case_images``: ``{case_id: {"image", "label", "prediction": {submission: path}}}``.

    ``indexes`` maps a submission name to its ``cases_index.json``; relative paths in them are taken
    relative to ``base`` (default: the current folder, where scoring ran). Missing index files are skipped.
    """
    merged, problems = load_cases_index(sorted(indexes.items()), base=base)
    if problems:
        raise ReportError(problems[0])
    return merged


def load_canonical(path: Path) -> tuple[np.ndarray, tuple[float, ...]]:
    """A NIfTI volume as float32 in canonical RAS+ (extra dimensions: their first volume) and its spacing in mm."""
    import nibabel as nib

    image = nib.as_closest_canonical(nib.load(str(path)))
    data = np.asarray(image.dataobj, dtype=np.float32)
    while data.ndim > 3:
        data = data[..., 0]
    return data, tuple(float(z) for z in image.header.get_zooms()[:3])


def _centre_slice(label: np.ndarray) -> int:
    """The axial index through the mask's centre of mass (the middle slice for an empty mask)."""
    z = np.nonzero(label > 0.5)[2]
    return int(round(float(z.mean()))) if z.size else label.shape[2] // 2


def render_overlay(image: Path, label: Path, predictions: Mapping[str, Path], values: Mapping[str, float],
                   *, metric: str = "dice", dpi: int = 80) -> bytes:
    """PNG: the axial slice through the mask centre, one panel per prediction, contours of the ground
    truth (green) and of the prediction (magenta), the model's ``metric`` for this case in the title."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    volume, zooms = load_canonical(image)
    truth, _ = load_canonical(label)
    if truth.shape != volume.shape:
        raise ReportError(f"{label}: grid {truth.shape} differs from the image's {volume.shape}")
    k = _centre_slice(truth)
    plane = volume[:, :, k].T
    low, high = np.percentile(plane, [1, 99]) if plane.size else (0.0, 1.0)
    names = list(predictions) or ["ground truth"]
    figure = Figure(figsize=(2.4 * len(names), 2.8), dpi=dpi)
    FigureCanvasAgg(figure)
    for position, name in enumerate(names, start=1):
        axes = figure.add_subplot(1, len(names), position)
        axes.imshow(plane, cmap="gray", vmin=low, vmax=high if high > low else low + 1, origin="lower",
                    aspect=zooms[1] / zooms[0], interpolation="nearest")
        _contour(axes, truth[:, :, k].T, "#00c000")
        if name in predictions:
            predicted, _ = load_canonical(predictions[name])
            if predicted.shape != volume.shape:
                raise ReportError(f"{predictions[name]}: grid {predicted.shape} differs from the image's {volume.shape}")
            _contour(axes, predicted[:, :, k].T, "#ff00ff")
            value = values.get(name)
            axes.set_title(f"{name}\n{METRIC_LABELS.get(metric, metric)} "
                           f"{'n/a' if value is None else f'{value:.3f}'}", fontsize=7)
        axes.set_axis_off()
    figure.suptitle(f"axial slice {k} (RAS+): ground truth green, prediction magenta", fontsize=7)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _contour(axes, plane: np.ndarray, colour: str) -> None:
    mask = plane > 0.5
    if mask.any() and not mask.all():  # a contour needs both sides of the level
        axes.contour(mask.astype(np.float32), levels=[0.5], colors=[colour], linewidths=1.0)


def _overlay_inputs(case_id: str, entry: Mapping | None, models: Sequence[str]) -> tuple[dict[str, Path], list[str]]:
    """Files for one case and what is missing (named); ``image``/``label`` keys when present."""
    if entry is None:
        return {}, [f"{case_id}: no entry in case_images (image, label and predictions unknown)"]
    found: dict[str, Path] = {}
    missing: list[str] = []
    for key in ("image", "label"):
        path = entry.get(key)
        if path is None:
            missing.append(f"{case_id}: no {key} path given")
        elif not Path(path).is_file():
            missing.append(f"{case_id}: {key} not found at {path}")
        else:
            found[key] = Path(path)
    predictions = entry.get("prediction") or {}
    for submission in models:
        path = predictions.get(submission)
        if path is None:
            missing.append(f"{case_id}: no prediction path for {submission}")
        elif not Path(path).is_file():
            missing.append(f"{case_id}: prediction of {submission} not found at {path}")
        else:
            found[f"prediction:{submission}"] = Path(path)
    return found, missing
