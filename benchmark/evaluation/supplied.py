"""Scoring supplied predictions: masks computed elsewhere go through the same checks as a model's output.

For each test case the mask is found by BIDS entities (:mod:`benchmark.models.predictions`), read, checked
against the image's grid (shape, affine within ``AFFINE_TOLERANCE_MM``, finite values), binarized at 0.5 and
post-processed as the manifest declares, exactly as :class:`benchmark.evaluation.inference.Predictor` treats the output of
a command model. A missing, ambiguous or off-grid mask is that case's named failure, scored as the worst case.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import nibabel as nib
import numpy as np

from benchmark.evaluation.inference import (BINARY_THRESHOLD, PredictionRecord, Predictor, largest_component, load_native,
                                 validate_prediction, write_mask)
from benchmark.models.predictions import PredictionsIndex, check_supplied_folder, supplied_folders
from benchmark.models.sandbox import SandboxMode
from benchmark.safepaths import output_folder
from benchmark.data.submissions import (PredictionsModelSpec, Submission, SubmissionError, submission_hash,
                                        unregistered_datasets)

if TYPE_CHECKING:
    from benchmark.evaluation.scoring import TestCase


class CasePredictor(Protocol):
    """What scoring asks of a model: the binary mask (or the named failure) of one image."""

    sandbox_mode: SandboxMode  # how the model's code was isolated (the results header's `sandbox`)

    def predict(self, image_path: Path, image_sha256: str) -> PredictionRecord: ...


class SuppliedPredictor:
    """A :class:`CasePredictor` that reads supplied masks instead of running a model."""

    sandbox_mode: SandboxMode = "not-needed"  # no submitted code runs: masks are read and checked

    def __init__(self, submission: Submission, cache_dir: Path, cases: Sequence["TestCase"]):
        spec = submission.model
        if not isinstance(spec, PredictionsModelSpec):
            raise SubmissionError(f"{submission.name}: model type {spec.type!r} is not 'predictions'")
        self.submission = submission
        self.hash = submission_hash(submission)
        self._dataset_of = {str(case.image_path): case.case.dataset for case in cases}
        self._indexes: dict[Path, PredictionsIndex] = {}
        self._folders = supplied_folders(submission)
        unknown = unregistered_datasets(spec.folders)
        if unknown:  # a mistyped key would leave its dataset's images without masks: every case worst, silently
            raise SubmissionError(f"{submission.folder}/submission.yaml: model.folders: {'; '.join(unknown)}")
        for dataset_id, folder in self._folders.items():
            if not folder.is_dir():
                field = "model.folder" if dataset_id is None else f"model.folders.{dataset_id}"
                raise SubmissionError(f"{submission.folder}/submission.yaml: {field}: {folder} is not a folder")
        # every mask is checked before any is read: a link to the ground truth would score it against itself
        data_folders = {case.root for case in cases}
        references = [case.label_path for case in cases]
        for folder in dict.fromkeys(self._folders.values()):
            check_supplied_folder(self._index(folder), data_folders, references)
        self.cache_dir = output_folder(Path(cache_dir), self.hash[:16], what="prediction cache", create=False)

    def _index(self, folder: Path) -> PredictionsIndex:
        if folder not in self._indexes:
            self._indexes[folder] = PredictionsIndex(folder, self.submission.model.label)
        return self._indexes[folder]

    def _index_for(self, image_path: Path) -> PredictionsIndex | None:
        dataset_id = self._dataset_of.get(str(image_path))
        folder = self._folders.get(dataset_id) or self._folders.get(None)
        if folder is None:
            return None
        return self._index(folder)

    def predict(self, image_path: Path, image_sha256: str) -> PredictionRecord:
        image_path = Path(image_path)
        out_path = self.cache_dir / f"{image_sha256}.nii.gz"
        index = self._index_for(image_path)
        if index is None:
            dataset_id = self._dataset_of.get(str(image_path))
            failure = f"missing-prediction: no folder for dataset {dataset_id!r} in model.folders and no model.folder"
        else:
            match = index.find(image_path.name)
            failure = match.failure or self._accept(match.path, image_path, out_path)
        return PredictionRecord(image_sha256=image_sha256, prediction=None if failure else str(out_path),
                                failure=failure, runtime_s=None, peak_memory_mb=None)

    def _accept(self, mask_path: Path, image_path: Path, out_path: Path) -> str | None:
        image, data = load_native(image_path)
        try:
            supplied = nib.load(str(mask_path))
            values = np.asarray(supplied.dataobj, dtype=np.float32)
        except Exception as error:  # any unreadable file is this case's failure, whatever nibabel raises
            return f"unreadable-prediction: {mask_path}: {error}"
        if values.ndim == 4 and values.shape[3] == 1:
            values = values[..., 0]
        failure = validate_prediction(values, supplied.affine, image, data.shape)
        if failure:
            return f"{failure} ({mask_path})"
        mask = values >= BINARY_THRESHOLD
        if self.submission.inference.postprocessing == "largest-component":
            mask = largest_component(mask)
        write_mask(mask, image, out_path)
        return None


def predictor_for(submission: Submission, cache_dir: Path, *, cases: Sequence["TestCase"], device: str | None = None,
                  trust_checkpoint: bool = False, sandbox: bool = True, runtime: str | None = None,
                  threads: int | None = None) -> CasePredictor:
    """The predictor scoring uses for a submission: supplied masks, or the model run by :class:`Predictor`
    (``sandbox=False`` is ``--no-sandbox``, see benchmark.models.sandbox)."""
    if isinstance(submission.model, PredictionsModelSpec):
        return SuppliedPredictor(submission, cache_dir, cases)
    return Predictor(submission, cache_dir, device=device, trust_checkpoint=trust_checkpoint, sandbox=sandbox,
                     runtime=runtime, threads=threads)


def supplied_mask_problems(submission: Submission, images: Sequence[tuple[str, Path]], *, every_image: bool
                           ) -> tuple[list[str], int]:
    """Check a predictions submission's masks against images, without scoring: (problems, masks found). ``images``
    are (dataset id, image path); each image's mask is found as scoring finds it and must be on the image's grid
    (shapes and affines in the message). With ``every_image`` (a suite's test images) a missing or ambiguous mask is
    a problem too; without it (every image of a dataset) only masks that are found are judged."""
    from benchmark.data.grids import grid_problem

    folders = supplied_folders(submission)
    indexes: dict[Path, PredictionsIndex] = {}
    problems: list[str] = []
    found = 0
    for dataset_id, image in images:
        folder = folders.get(dataset_id) or folders.get(None)
        if folder is None or not folder.is_dir():
            if every_image:
                problems.append(f"{dataset_id}: {image.name}: no folder for dataset {dataset_id!r} in model.folders "
                                "and no model.folder")
            continue
        index = indexes.setdefault(folder, PredictionsIndex(folder, submission.model.label))
        match = index.find(image.name)
        if match.path is None:
            if every_image or match.failure.startswith("ambiguous"):
                problems.append(f"{dataset_id}: {match.failure}")
            continue
        found += 1
        problem = grid_problem(image, match.path)
        if problem is not None:
            problems.append(f"{dataset_id}: {match.path}: {problem}")
    return problems, found
