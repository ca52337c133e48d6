"""Import a model trained with nnU-Net itself: the zip of ``nnUNetv2_export_model_to_zip`` or a results folder.

nnU-Net's exporter writes a zip whose members are paths below ``nnUNet_results``
(``Dataset990_Name/Trainer__Plans__Config/{plans.json, dataset.json, fold_0/checkpoint_final.pth, ...}``); a
trained results folder has the same layout on disk. Neither carries checksums nor says what the model was
trained on, so import:

- refuses unsafe archives by the one archive policy of :mod:`benchmark.models.archives` (absolute or ``..``
  member paths, links, too many or too large members, compression ratios of a zip bomb) and damaged members;
- copies the chosen model folder (one configuration, the chosen folds) into ``submissions/<name>/model/`` and
  records the sha256 of every file in the manifest (``model.files``), checked again before every load;
- loads every checkpoint with ``torch.load(weights_only=True)`` and rebuilds the network from the plans, so a
  checkpoint that needs full unpickling (stock nnU-Net checkpoints hold numpy scalars) is refused unless
  ``trust_checkpoint`` is given, and a broken model is refused before it is registered;
- requires the declared training data (``--trained-on ID[,ID]``): out-of-domain and leakage are derived from it.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from benchmark.errors import CordbenchError
from benchmark.io import replace_folder, sha256_file
from benchmark.models.archives import checked_members, copy_member, open_zip
from benchmark import workspace
from benchmark.data.submissions import (SUBMISSIONS_DIR, NnunetModelSpec, Submission, TrainingData, parse_manifest,
                                   write_manifest)

MODEL_FOLDER_RE = re.compile(r"^(?P<trainer>[^_/][^/]*?)__(?P<plans>[^/]+?)__(?P<configuration>[^/]+)$")
FOLD_RE = re.compile(r"^fold_(?P<fold>\d+|all)$")
DEFAULT_CHECKPOINT = "checkpoint_final.pth"
TRAINED_ON_FLAG = "--trained-on ID[,ID]"
NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]*")


class NnunetImportError(CordbenchError, ValueError):
    """An nnU-Net zip or results folder cannot be imported; the message names the file and what to pass."""


@dataclass(frozen=True)
class ModelFolder:
    """One ``Trainer__Plans__Config`` folder: where it is (a member prefix of a zip, or a path) and what it holds."""

    prefix: str  # POSIX path of the folder inside the zip or below the results folder
    dataset: str  # DatasetXXX_Name, or "" when unknown
    trainer: str
    plans: str
    configuration: str
    files: tuple[str, ...]  # paths relative to the model folder

    @property
    def folds(self) -> dict[str, list[str]]:
        """fold folder -> checkpoint file names in it."""
        found: dict[str, list[str]] = {}
        for relative in self.files:
            parts = PurePosixPath(relative).parts
            if len(parts) == 2 and FOLD_RE.match(parts[0]) and parts[1].endswith(".pth"):
                found.setdefault(parts[0], []).append(parts[1])
        return dict(sorted(found.items()))

    @property
    def label(self) -> str:
        return f"{self.dataset}/{self.prefix.rsplit('/', 1)[-1]}" if self.dataset else self.prefix


def _model_folders(paths: Sequence[str]) -> list[ModelFolder]:
    """Every model folder among relative file paths: a ``Trainer__Plans__Config`` folder holding plans.json."""
    folders = []
    for plans_path in sorted(path for path in paths if PurePosixPath(path).name == "plans.json"):
        folder = PurePosixPath(plans_path).parent
        match = MODEL_FOLDER_RE.match(folder.name)
        if not match:
            continue
        prefix = folder.as_posix()
        files = tuple(sorted(PurePosixPath(path).relative_to(folder).as_posix() for path in paths
                             if PurePosixPath(path).is_relative_to(folder)))
        dataset = folder.parent.name if folder.parent.name.startswith("Dataset") else ""
        folders.append(ModelFolder(prefix, dataset, match["trainer"], match["plans"], match["configuration"], files))
    return folders


def zip_members(source: Path) -> dict[str, zipfile.ZipInfo]:
    """File members of a zip, checked against the one archive policy (benchmark.models.archives: safe names, no
    link, limits on count, sizes and compression ratio)."""
    with open_zip(source, NnunetImportError) as archive:
        return checked_members(archive, source, NnunetImportError)


def folder_files(source: Path) -> list[str]:
    """Files below a results folder as POSIX paths relative to it; links are refused."""
    files = []
    for path in sorted(source.rglob("*")):
        if path.is_symlink():
            raise NnunetImportError(f"{path}: a symbolic link; copy the model folder without links")
        if path.is_file():
            files.append(path.relative_to(source).as_posix())
    return files


def _listing(source: Path) -> tuple[Path, list[str]]:
    """(base, file paths relative to it): a zip, a model folder itself, or a folder above model folders."""
    if source.is_file():
        return source, list(zip_members(source))
    if (source / "plans.json").is_file():
        return source.parent, [f"{source.name}/{relative}" for relative in folder_files(source)]
    return source, folder_files(source)


def _choose(folders: list[ModelFolder], source: Path, configuration: str | None) -> ModelFolder:
    if not folders:
        raise NnunetImportError(f"{source}: no nnU-Net model folder (Trainer__Plans__Config with plans.json) found")
    if configuration is not None:
        chosen = [folder for folder in folders
                  if configuration in (folder.configuration, folder.prefix.rsplit("/", 1)[-1], folder.prefix, folder.label)]
        if len(chosen) != 1:
            listed = ", ".join(folder.label for folder in folders)
            raise NnunetImportError(f"{source}: --configuration {configuration!r} matches {len(chosen)} of the model "
                                    f"folders ({listed})")
        return chosen[0]
    if len(folders) > 1:
        listed = ", ".join(folder.label for folder in folders)
        raise NnunetImportError(f"{source}: holds {len(folders)} models ({listed}); choose one with "
                                f"--configuration {folders[0].configuration}")
    return folders[0]


def _choose_folds(model: ModelFolder, source: Path, folds: Sequence[str] | None) -> list[str]:
    present = model.folds
    if not present:
        raise NnunetImportError(f"{source}: {model.label} has no fold_*/ folder with a checkpoint (*.pth)")
    if not folds:
        return list(present)
    wanted = ["fold_all" if str(fold) == "all" else f"fold_{fold}" for fold in folds]
    missing = [fold for fold in wanted if fold not in present]
    if missing:
        raise NnunetImportError(f"{source}: {model.label} has no {', '.join(missing)} (present: {', '.join(present)})")
    return wanted


def _choose_checkpoint(model: ModelFolder, source: Path, fold_dirs: list[str], checkpoint: str | None) -> str:
    present = [set(model.folds[fold]) for fold in fold_dirs]
    common = set.intersection(*present)
    name = checkpoint or (DEFAULT_CHECKPOINT if DEFAULT_CHECKPOINT in common else None)
    if name is None and len(common) == 1:
        name = next(iter(common))
    if name is None or name not in common:
        raise NnunetImportError(f"{source}: {model.label}: checkpoint {name or DEFAULT_CHECKPOINT!r} is not in every "
                                f"chosen fold ({', '.join(fold_dirs)}); pass --checkpoint, one of: "
                                f"{', '.join(sorted(common)) or 'none in common'}")
    return name


def parse_trained_on(values: Sequence[str] | None, source: Path) -> list[str]:
    """Registered dataset ids from ``--trained-on`` (comma-separated, repeatable); the exact flag when absent."""
    ids = [item.strip() for value in values or [] for item in value.split(",") if item.strip()]
    if not ids:
        raise NnunetImportError(
            f"{source}: an nnU-Net model does not say which data it was trained on, and out-of-domain results are "
            f"derived from that: pass {TRAINED_ON_FLAG} with registered dataset ids (`cordbench datasets list`), "
            "e.g. --trained-on gmchallenge")
    from benchmark.data.registry import RegistryError, load_dataset

    for dataset_id in ids:
        try:
            load_dataset(dataset_id)
        except RegistryError as error:
            raise NnunetImportError(f"--trained-on: {dataset_id!r} is not a registered dataset ({error}); register "
                                    "it first, then import") from error
    return sorted(set(ids))


def default_name(model: ModelFolder) -> str:
    base = f"{model.dataset or model.trainer}-{model.configuration}".lower()
    return re.sub(r"[^a-z0-9.-]+", "-", base).strip("-.") or "nnunet-model"


def _stage_files(source: Path, model: ModelFolder, fold_dirs: list[str], target: Path) -> dict[str, str]:
    """Copy the model folder's files (other folds left out) to ``target``; return relative path -> sha256."""
    keep = [relative for relative in model.files
            if not FOLD_RE.match(PurePosixPath(relative).parts[0]) or PurePosixPath(relative).parts[0] in fold_dirs]
    if source.is_dir():
        for relative in keep:
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / model.prefix / relative, destination)
    else:
        with open_zip(source, NnunetImportError) as archive:
            for relative in keep:
                copy_member(archive, f"{model.prefix}/{relative}", target / relative, source, NnunetImportError)
    return {relative: sha256_file(target / relative) for relative in keep}


def _verify_loads(folder: Path, source: Path, model: ModelFolder, checkpoint: str, folds: list,
                  trust_checkpoint: bool) -> int:
    """Load the model as scoring will (weights_only unless trusted); return its parameter count."""
    from benchmark.models.nnunet.predict import ModelFolderError, UnsafeCheckpointError, load_model

    def named(error: Exception) -> str:  # the member in the source, not the staging copy
        return str(error).replace(str(folder), f"{source}: {model.prefix}")

    try:
        loaded = load_model(folder, checkpoint=checkpoint, folds=folds, device="cpu", trust_checkpoint=trust_checkpoint)
    except UnsafeCheckpointError as error:
        raise NnunetImportError(
            f"{named(error).split(': refusing')[0]}: needs full unpickling (torch.load(weights_only=True) refuses it; "
            "nnU-Net's own trainer stores numpy values in its checkpoints). Pass --trust-checkpoint only if you trust "
            "its source; scoring it then needs --trust-checkpoint too") from error
    except (ModelFolderError, ValueError, KeyError, RuntimeError) as error:
        raise NnunetImportError(f"{source}: the model does not load: {type(error).__name__}: {named(error)}") from error
    return int(sum(parameter.numel() for parameter in loaded.predictor.network.parameters()))


def import_nnunet(
    source: Path,
    *,
    trained_on: Sequence[str] | None,
    name: str | None = None,
    configuration: str | None = None,
    folds: Sequence[str] | None = None,
    checkpoint: str | None = None,
    trust_checkpoint: bool = False,
    submissions_root: Path | None = None,
    overwrite: bool = False,
    authors: Sequence[str] | None = None,
    licence: str = "unknown",
    description: str | None = None,
) -> Submission:
    """Register an nnU-Net export zip or trained results folder as ``submissions/<name>/`` (an ``nnunet`` model)."""
    source = Path(source)
    if not source.exists():
        raise NnunetImportError(f"{source}: no such file or folder")
    base, paths = _listing(source)
    model = _choose(_model_folders(paths), source, configuration)
    if not model.dataset and base.name.startswith("Dataset"):
        model = replace(model, dataset=base.name)
    fold_dirs = _choose_folds(model, source, folds)
    checkpoint_name = _choose_checkpoint(model, source, fold_dirs, checkpoint)
    datasets = parse_trained_on(trained_on, source)
    name = name or default_name(model)
    if not NAME_RE.fullmatch(name):
        raise NnunetImportError(f"--name: {name!r} is not a submission name (lowercase letters, digits, '.', '_' "
                                "and '-', starting with a letter or digit)")
    root = Path(submissions_root or workspace.require("`cordbench import`").submissions_dir)
    target = root / name
    if submissions_root is None and (SUBMISSIONS_DIR / name / "submission.yaml").exists():
        raise NnunetImportError(f"{SUBMISSIONS_DIR / name}: {name!r} is a built-in reference submission; import the "
                                "model under another --name")
    if target.exists() and not overwrite:
        raise NnunetImportError(f"{target}: a submission named {name!r} exists already (use --overwrite, or --name)")
    root.mkdir(parents=True, exist_ok=True)
    fold_values = ["all" if fold == "fold_all" else int(fold.removeprefix("fold_")) for fold in fold_dirs]
    with tempfile.TemporaryDirectory(dir=root, prefix=".import-") as scratch:
        staging = Path(scratch) / name
        files = _stage_files(base, model, fold_dirs, staging / "model")
        parameters = _verify_loads(staging / "model", source, model, checkpoint_name, fold_values, trust_checkpoint)
        first_checkpoint = f"{fold_dirs[0]}/{checkpoint_name}"
        submission = Submission(
            name=name,
            description=description or f"nnU-Net model {model.label} imported from {source.name}",
            authors=list(authors or ["unknown"]),
            licence=licence,
            model=NnunetModelSpec(type="nnunet", folder="model", checkpoint=checkpoint_name,
                                  sha256=files[first_checkpoint], configuration=model.configuration,
                                  folds=fold_values, trainer=model.trainer, plans=model.plans, files=files),
            training=TrainingData(datasets=datasets),
            parameters=parameters,
        )
        write_manifest(submission, staging)
        submission = parse_manifest(staging / "submission.yaml")
        submission.folder = replace_folder(staging, target)
    return submission


def is_cordbench_archive(source: Path) -> bool:
    """A zip written by `cordbench export` (it carries checksums.json and submission.yaml at its top)."""
    if not Path(source).is_file():
        return False
    try:
        with zipfile.ZipFile(source) as archive:
            names = set(archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False
    return {"checksums.json", "submission.yaml"} <= names
