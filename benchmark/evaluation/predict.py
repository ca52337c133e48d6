"""`cordbench predict`: run a registered model on images that have no mask; write a BIDS derivatives dataset.

The images go through the same inference path as scoring (:class:`benchmark.evaluation.inference.Predictor`: orientation,
output validation, binarization, the manifest's post-processing). Masks are written under
``<out>/derivatives/cordbench-<name>/`` at the image's place in the BIDS tree, named
``<image stem>_label-SC_seg.nii.gz`` (:func:`benchmark.data.derivatives.mask_filename`: the rule
``predictions`` submissions find masks by), each with a JSON sidecar saying which model (name, weights sha256),
which cordbench version and which inference settings made it, and from which image (its sha256). The folder
gets a ``dataset_description.json`` (``DatasetType: derivative``, ``GeneratedBy: cordbench``).

Files are written atomically, the mask before its sidecar; a re-run skips every mask whose sidecar matches the
current model, settings and image, so an interrupted run resumes where it stopped. Such a folder is exactly
what a ``predictions`` submission reads (:mod:`benchmark.evaluation.supplied`).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from benchmark import __version__
from benchmark.data.bids_index import classify_file, glob_to_regex, strip_nifti
from benchmark.errors import CordbenchError
from benchmark.evaluation.inference import BINARY_THRESHOLD, ModelLoadError, Predictor
from benchmark.io import atomic_write_bytes, atomic_write_json, sha256_file
from benchmark.data.derivatives import CORD_LABEL, NameParts, mask_filename
from benchmark.data.submissions import PredictionsModelSpec, Submission, load_submission, model_sha256

LABEL = CORD_LABEL
BIDS_VERSION = "1.10.0"
DATATYPES = frozenset({"anat", "func", "dwi", "fmap", "perf", "pet", "micr", "nirs", "motion"})
#: sidecar keys that identify how a mask was made; a re-run recomputes a mask when any of them changed
IDENTITY_KEYS = ("SourceSHA256", "Model", "CordbenchVersion", "Inference", "Label")

Status = Literal["predicted", "unchanged", "failed", "not-downloaded"]


class PredictError(CordbenchError, ValueError):
    """`predict` cannot start: bad input path, no image found, a submission without a model to run."""


@dataclass(frozen=True)
class ImageTarget:
    """One input image and where its mask goes, relative to the derivatives folder."""

    image: Path
    mask: PurePosixPath
    source: str  # how the sidecar's Sources names the image

    @property
    def sidecar(self) -> PurePosixPath:
        return self.mask.with_name(strip_nifti(self.mask.name) + ".json")


@dataclass
class Outcome:
    image: Path
    mask: Path | None
    status: Status
    reason: str | None = None


@dataclass
class PredictReport:
    """What `predict` did, per image."""

    derivatives: Path
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(outcome.status == status for outcome in self.outcomes)

    @property
    def failed(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.status in ("failed", "not-downloaded")]


def derivatives_folder(out_dir: Path, name: str) -> Path:
    return Path(out_dir) / "derivatives" / f"cordbench-{name}"


def _is_nifti(name: str) -> bool:
    return name.endswith((".nii", ".nii.gz")) and not name.startswith(".")


def _bids_root_of(image: Path) -> Path | None:
    for parent in image.parents:
        if (parent / "dataset_description.json").is_file() and image.relative_to(parent).parts[0].startswith("sub-"):
            return parent
    return None


def single_image_target(image: Path) -> ImageTarget:
    """Where a lone file's mask goes: its place in its BIDS dataset, else sub-*/[ses-*/]<datatype>/ from its name."""
    image = Path(image).resolve()
    root = _bids_root_of(image)
    if root is not None:
        relative = PurePosixPath(image.relative_to(root).as_posix())
        return ImageTarget(image, relative.parent / mask_filename(image.name), f"bids:raw:{relative}")
    parts = NameParts.of(image.name)
    subject, session = parts.entity("sub"), parts.entity("ses")
    folder = PurePosixPath()
    if subject:
        folder = folder / f"sub-{subject}"
        if session:
            folder = folder / f"ses-{session}"
        folder = folder / (image.parent.name if image.parent.name in DATATYPES else "anat")
    return ImageTarget(image, folder / mask_filename(image.name), str(image))


def bids_targets(root: Path, include: Sequence[str] | None = None) -> list[ImageTarget]:
    """Every NIfTI under the dataset's ``sub-*`` folders (optionally only paths matching an ``include`` glob)."""
    root = Path(root).resolve()
    patterns = [glob_to_regex(pattern) for pattern in include or []]
    targets: list[ImageTarget] = []
    for subject in sorted(path for path in root.iterdir() if path.name.startswith("sub-") and path.is_dir()):
        for parent, subfolders, files in os.walk(subject):
            subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
            for name in sorted(files):
                if not _is_nifti(name):
                    continue
                relative = PurePosixPath((Path(parent) / name).relative_to(root).as_posix())
                if patterns and not any(pattern.match(str(relative)) for pattern in patterns):
                    continue
                targets.append(ImageTarget(Path(parent) / name, relative.parent / mask_filename(name),
                                           f"bids:raw:{relative}"))
    return targets


def find_targets(input_path: Path, include: Sequence[str] | None = None) -> list[ImageTarget]:
    input_path = Path(input_path)
    if input_path.is_file():
        if not _is_nifti(input_path.name):
            raise PredictError(f"{input_path}: not a NIfTI file (.nii or .nii.gz)")
        return [single_image_target(input_path)]
    if not input_path.is_dir():
        raise PredictError(f"{input_path}: no such file or folder")
    if not any(path.name.startswith("sub-") for path in input_path.iterdir()):
        raise PredictError(f"{input_path}: not a BIDS folder (no sub-* folder); give a BIDS dataset root or one NIfTI file")
    targets = bids_targets(input_path, include)
    if not targets:
        wanted = f" matching {', '.join(include)}" if include else ""
        raise PredictError(f"{input_path}: no NIfTI image{wanted} under sub-*/")
    return targets


def inference_settings(submission: Submission, device: str | None) -> dict[str, Any]:
    """The settings that shape a mask, as recorded in every sidecar (``precision`` only when not float32, so
    that sidecars written before it was recorded still match)."""
    settings = {"device": device or submission.inference.device,
                "test_time_augmentation": submission.inference.test_time_augmentation,
                "runtime": submission.inference.runtime,
                "postprocessing": submission.inference.postprocessing,
                "threshold": BINARY_THRESHOLD}
    if submission.inference.precision != "float32":
        settings["precision"] = submission.inference.precision
    return settings


def model_identity(submission: Submission) -> dict[str, str]:
    return {"Name": submission.name, "Type": submission.model.type, "SHA256": model_sha256(submission)}


def sidecar_for(model: dict[str, str], target: ImageTarget, image_sha256: str, settings: dict[str, Any]) -> dict:
    return {
        "Description": f"Spinal cord mask predicted by cordbench with the model {model['Name']}",
        "Sources": [target.source],
        "SourceSHA256": image_sha256,
        "Label": LABEL,
        "Model": model,
        "CordbenchVersion": __version__,
        "Inference": settings,
    }


def dataset_description(model: dict[str, str]) -> dict:
    return {
        "Name": f"cordbench-{model['Name']}",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "cordbench", "Version": __version__,
                         "Description": f"spinal cord masks of the model {model['Name']} (sha256 {model['SHA256']})"}],
    }


def _unchanged(mask: Path, sidecar: Path, expected: dict) -> bool:
    if not (mask.is_file() and sidecar.is_file()):
        return False
    try:
        written = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return all(written.get(key) == expected[key] for key in IDENTITY_KEYS)


def predict(
    name: str | Path,
    input_path: Path,
    out_dir: Path,
    *,
    include: Sequence[str] | None = None,
    device: str | None = None,
    trust_checkpoint: bool = False,
    submissions_root: Path | None = None,
    progress: bool = True,
    sandbox: bool = True,
    runtime: str | None = None,
    threads: int | None = None,
) -> PredictReport:
    """Predict a cord mask for every image of ``input_path`` (a NIfTI file or a BIDS folder) into ``out_dir``.

    Command and python models run in the bubblewrap sandbox; ``sandbox=False`` is ``--no-sandbox``. ``runtime``
    overrides the manifest's ``inference.runtime`` (recorded in the sidecars); ``threads``: inference threads."""
    from rich.progress import Progress

    submission = load_submission(name, submissions_root)
    if runtime is not None:
        submission = submission.model_copy(
            update={"inference": submission.inference.model_copy(update={"runtime": runtime})})
    if isinstance(submission.model, PredictionsModelSpec):
        raise PredictError(f"{submission.name}: a predictions submission supplies masks; it has no model to run")
    targets = find_targets(input_path, include)
    derivatives = derivatives_folder(out_dir, submission.name)
    description = derivatives / "dataset_description.json"
    model = model_identity(submission)
    wanted = dataset_description(model)
    if not description.is_file() or json.loads(description.read_text(encoding="utf-8")) != wanted:
        atomic_write_json(description, wanted)
    settings = inference_settings(submission, device)
    report = PredictReport(derivatives)
    with tempfile.TemporaryDirectory(prefix="cordbench-predict-") as scratch, Progress(disable=not progress) as bar:
        predictor = Predictor(submission, Path(scratch), device=device, trust_checkpoint=trust_checkpoint,
                              sandbox=sandbox, threads=threads)
        task = bar.add_task(f"predicting with {submission.name}", total=len(targets))
        for target in targets:
            report.outcomes.append(_predict_one(predictor, model, target, derivatives, settings))
            bar.advance(task)
    return report


def _predict_one(predictor: Predictor, model: dict[str, str], target: ImageTarget, derivatives: Path,
                 settings: dict[str, Any]) -> Outcome:
    state, _digest, _size = classify_file(target.image)
    if state != "present":
        return Outcome(target.image, None, "not-downloaded", f"{target.image} is {state}: fetch it first")
    image_sha256 = sha256_file(target.image)
    mask, sidecar = derivatives / target.mask, derivatives / target.sidecar
    expected = sidecar_for(model, target, image_sha256, settings)
    if _unchanged(mask, sidecar, expected):
        return Outcome(target.image, mask, "unchanged")
    try:
        record = predictor.predict(target.image, image_sha256)
    except ModelLoadError as error:
        raise PredictError(str(error)) from error
    if not record.ok:
        return Outcome(target.image, None, "failed", record.failure)
    atomic_write_bytes(mask, Path(record.prediction).read_bytes())
    atomic_write_json(sidecar, expected)
    return Outcome(target.image, mask, "predicted")
