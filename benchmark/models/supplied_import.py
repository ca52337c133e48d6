"""Register masks computed elsewhere (or by ``cordbench predict``) as a ``predictions`` submission, without writing
its manifest by hand: ``cordbench submissions add-predictions NAME FOLDER [ID=FOLDER ...]``.

The mask files (and their JSON sidecars and the folder's ``dataset_description.json``) are copied into the
submission's ``masks/`` folder, so that what is scored cannot change behind the submission's back (its hash covers
every mask anyway). What the masks were trained on is declared like any model's: ``--trained-on``, or, for masks
written by ``cordbench predict``, taken from the model their sidecars name when it is registered here (its
declared training data and the models it was adapted from): scoring them then derives the same in-domain /
zero-shot and leakage flags as scoring that model.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from benchmark import workspace
from benchmark.data.derivatives import CORD_LABEL, mask_files
from benchmark.data.submissions import (MANIFEST_NAME, Submission, SubmissionError, load_submission, training_datasets,
                                        unregistered_datasets, write_manifest)
from benchmark.io import atomic_write_bytes

MASKS_FOLDER = "masks"


@dataclass(frozen=True)
class MaskSource:
    """What the sidecars of a folder of masks say made them (``cordbench predict`` writes ``Model``)."""

    models: tuple[str, ...]  # model names the sidecars give
    described: str | None  # the folder's dataset_description GeneratedBy, as text


def mask_source(folder: Path, label: str | None) -> MaskSource:
    models = set()
    for mask in mask_files(folder, label):
        sidecar = mask.with_name(mask.name.removesuffix(".gz").removesuffix(".nii") + ".json")
        try:
            model = json.loads(sidecar.read_text(encoding="utf-8")).get("Model") or {}
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(model, dict) and model.get("Name"):
            models.add(f"{model['Name']}")
    described = None
    try:
        generated = json.loads((folder / "dataset_description.json").read_text(encoding="utf-8")).get("GeneratedBy")
        if isinstance(generated, list) and generated and isinstance(generated[0], dict):
            described = generated[0].get("Description") or generated[0].get("Name")
    except (OSError, ValueError, AttributeError):
        pass
    return MaskSource(tuple(sorted(models)), described)


def _copy_masks(source: Path, target: Path, label: str | None) -> int:
    """Copy every mask (with its sidecar) of ``source`` to ``target``, keeping relative paths; the count."""
    masks = mask_files(source, label)
    for mask in masks:
        relative = mask.relative_to(source)
        atomic_write_bytes(target / relative, mask.read_bytes())
        sidecar = mask.with_name(mask.name.removesuffix(".gz").removesuffix(".nii") + ".json")
        if sidecar.is_file():
            atomic_write_bytes(target / relative.with_name(sidecar.name), sidecar.read_bytes())
    description = source / "dataset_description.json"
    if description.is_file():
        atomic_write_bytes(target / description.name, description.read_bytes())
    return len(masks)


def declared_training(sources: list[MaskSource], trained_on: list[str] | None) -> tuple[list[str], str]:
    """(training datasets, where they come from): ``trained_on`` when given (``[]`` for none), else the training
    data of the one registered model every sidecar names."""
    if trained_on is not None:
        problems = unregistered_datasets(trained_on)
        if problems:
            raise SubmissionError(f"--trained-on: {'; '.join(problems)}")
        return sorted(trained_on), "--trained-on"
    models = sorted({model for source in sources for model in source.models})
    if len(models) != 1:
        found = f"the sidecars name {', '.join(models)}" if models else "no sidecar names the model that made them"
        raise SubmissionError(f"what were these masks' model trained on? {found}; give --trained-on ID[,ID] (or "
                              "--trained-on none)")
    try:
        model = load_submission(models[0])
    except SubmissionError as error:
        raise SubmissionError(f"the masks were made by {models[0]!r}, which is not registered here ({error}); give "
                              "--trained-on ID[,ID] (or --trained-on none)") from error
    return sorted(training_datasets(model)), f"the training data declared by {models[0]}"


def register_predictions(name: str, folders: dict[str | None, Path], *, trained_on: list[str] | None = None,
                         authors: list[str] | None = None, licence: str = "unknown", description: str | None = None,
                         generated_by: str | None = None, label: str | None = CORD_LABEL,
                         overwrite: bool = False) -> tuple[Submission, str]:
    """Write ``submissions/<name>/`` of the active workspace: the masks copied under ``masks/`` and a manifest of type
    ``predictions`` (``folder`` for ``None``, ``folders`` for dataset ids). Returns (submission, where the training
    data come from)."""
    root = workspace.require("`cordbench submissions add-predictions`").submissions_dir
    target = root / name
    if (target / MANIFEST_NAME).exists() and not overwrite:
        raise SubmissionError(f"{target / MANIFEST_NAME}: a submission {name!r} exists; pass --overwrite to replace it")
    for dataset_id, folder in folders.items():
        if not Path(folder).is_dir():
            raise SubmissionError(f"{folder}: not a folder" + (f" (for {dataset_id})" if dataset_id else ""))
        if not mask_files(Path(folder), label):
            raise SubmissionError(f"{folder}: no mask file (*_label-{label or 'SC'}_seg.nii.gz or another derivative "
                                  "name: docs/predict.md)")
    unknown = unregistered_datasets([dataset_id for dataset_id in folders if dataset_id is not None])
    if unknown:
        raise SubmissionError("; ".join(unknown))
    sources = [mask_source(Path(folder), label) for folder in folders.values()]
    datasets, origin = declared_training(sources, trained_on)
    if target.exists() and overwrite:
        shutil.rmtree(target)
    spec: dict = {"type": "predictions", "label": label}
    for dataset_id, folder in folders.items():
        relative = f"{MASKS_FOLDER}/{dataset_id or 'all'}"
        _copy_masks(Path(folder), target / relative, label)
        if dataset_id is None:
            spec["folder"] = relative
        else:
            spec.setdefault("folders", {})[dataset_id] = relative
    made_by = generated_by or "; ".join(sorted({text for source in sources for text in
                                                ([source.described] if source.described else [])})) or None
    models = sorted({model for source in sources for model in source.models})
    submission = Submission.model_validate({
        "name": name,
        "description": description or ("Masks supplied as predictions" + (f", computed with cordbench predict by "
                                                                           f"{', '.join(models)}" if models else "")),
        "authors": authors or ["unknown"],
        "licence": licence,
        "model": {**spec, **({"generated_by": made_by} if made_by else {})},
        "training": {"datasets": datasets},
    })
    write_manifest(submission, target)
    return load_submission(target), origin
