"""Submission manifests: ``submissions/<name>/submission.yaml``.

A submission says what the model is (an nnU-Net folder or exported archive, a command, or a Python
function), what it was trained on (the DECLARED training data, from which out-of-domain and leakage are
derived) and how to run it. Manifests are validated with pydantic; unknown fields are rejected and every
error names the file and the field path.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from benchmark import workspace
from benchmark.errors import CordbenchError
from benchmark.io import describe_validation_error, read_yaml_mapping, sha256_file
from benchmark.data.registry import Postprocessing

#: The built-in reference submissions (read-only at run time); the user's live in the active workspace.
SUBMISSIONS_DIR = workspace.builtin_submissions_dir()
MANIFEST_NAME = "submission.yaml"


class SubmissionError(CordbenchError, ValueError):
    """A manifest is missing or invalid, or its files do not match it."""


DEFAULT_MEMORY_MB = 16384
MEMORY_HELP = ("Address-space limit (RLIMIT_AS) of the model's processes in MiB; null: none (CUDA maps large "
               "virtual ranges: GPU models may need null)")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NnunetModelSpec(_Strict):
    """A trained nnU-Net model: its results folder (or an exported zip) and the checkpoint's sha256."""

    type: Literal["nnunet"] = Field(description="nnunet: a trained nnU-Net v2 model")
    folder: str | None = Field(default=None, description="Trained model folder (relative to the submission or absolute)")
    archive: str | None = Field(default=None, description="A zip made by `cordbench export`")
    archive_sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$",
        description="sha256 of the archive file: pins it (the archive is then 'verified', see docs/scoring.md)")
    checkpoint: str = Field(default="checkpoint_final.pth", description="Checkpoint file name inside fold_<f>/")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the checkpoint file")
    configuration: str = Field(description="nnU-Net configuration, e.g. 2d or 3d_fullres")
    folds: list[Union[int, Literal["all"]]] = Field(default_factory=lambda: ["all"],
                                                    description="Folds to ensemble (0-4 or all)")
    trainer: str | None = Field(default=None, description="nnU-Net trainer class name")
    plans: str | None = Field(default=None, description="nnU-Net plans identifier, e.g. nnUNetPlans")
    files: dict[str, str] | None = Field(
        default=None,
        description="sha256 of every file of the model folder (path relative to it), recorded by `cordbench import` "
                    "of an nnU-Net zip or results folder; checked before the model is loaded")


DEFAULT_MAX_PROCESSES = 512
MAX_PROCESSES_HELP = ("Processes and threads the model may run at once (the kernel counts threads too); a fork "
                      "beyond it fails and the case is named process-limit. null: no cap")
PLACEHOLDERS = ("input", "output", "python")
_TEMPLATE_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


def render_command(template: str, values: dict[str, str]) -> str:
    """A command line from its template: ``{input}``, ``{output}``, ``{python}`` replaced, ``{{``/``}}`` made
    single braces, every other brace kept as it is (``awk '{print $1}'`` works). Unknown ``{name}`` placeholders
    are refused when the manifest is read (:func:`template_problems`)."""
    def replace(match: re.Match) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        name = match.group(1)
        return values[name] if name in values else token
    return _TEMPLATE_TOKEN.sub(replace, template)


def template_problems(template: str) -> list[str]:
    """Why a command template would not run as meant: a missing {input}/{output}, an unknown {name}."""
    names = [match.group(1) for match in _TEMPLATE_TOKEN.finditer(template) if match.group(1)]
    problems = [f"command must contain {{{name}}}" for name in ("input", "output") if name not in names]
    for name in dict.fromkeys(names):
        if name not in PLACEHOLDERS:
            problems.append(f"unknown placeholder {{{name}}}: only {{input}}, {{output}} and {{python}} are replaced "
                            f"(any other brace is kept as it is; write {{{{{name}}}}} for a literal {{{name}}})")
    return problems


class CommandModelSpec(_Strict):
    """Any program: ``command`` is run with ``{input}`` and ``{output}`` replaced by NIfTI paths.

    ``{python}`` is replaced by the interpreter running cordbench; any other brace is kept as it is
    (``awk '{print $1}'``), ``{{``/``}}`` give a single brace. The program runs in the submission's folder, in a
    subprocess with a time limit, on a read-only copy of the input, writing to a fresh folder.
    """

    type: Literal["command"] = Field(description="command: any program run once per image")
    command: str = Field(description="Command line with {input} and {output} (NIfTI paths) and optionally {python}; "
                                     "other braces are kept as they are")
    timeout_s: float = Field(default=600, gt=0, description="Per image; the whole process tree is killed after it")
    memory_mb: int | None = Field(default=DEFAULT_MEMORY_MB, gt=0, description=MEMORY_HELP)
    max_processes: int | None = Field(default=DEFAULT_MAX_PROCESSES, ge=1, description=MAX_PROCESSES_HELP)
    orientation: Literal["native", "RAS"] = Field(
        default="native", description="Orientation the program expects its input in")

    @field_validator("command")
    @classmethod
    def _has_placeholders(cls, command: str) -> str:
        problems = template_problems(command)
        if problems:
            raise ValueError("; ".join(problems))
        return command


class PythonModelSpec(_Strict):
    """A Python function ``module:function(image_ras, spacing_ras) -> probabilities`` (same grid)."""

    type: Literal["python"] = Field(description="python: a function called in a separate process")
    entrypoint: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
                            description="module:function; the module is imported from the submission folder")
    timeout_s: float = Field(default=600, gt=0, description="Per image; the whole process tree is killed after it")
    memory_mb: int | None = Field(default=DEFAULT_MEMORY_MB, gt=0, description=MEMORY_HELP)
    max_processes: int | None = Field(default=DEFAULT_MAX_PROCESSES, ge=1, description=MAX_PROCESSES_HELP)


#: How the leaderboard and the gate describe a predictions submission: its masks were computed elsewhere.
PREDICTIONS_NOTE = "predictions supplied, not reproduced here"


class PredictionsModelSpec(_Strict):
    """Masks computed elsewhere, supplied as a BIDS derivatives folder and scored like any model's output.

    Each test image is matched to one mask by its BIDS entities and suffix: ``sub-01_acq-ax_T2w.nii.gz`` matches
    ``sub-01_acq-ax_T2w_label-SC_seg.nii.gz`` anywhere below the folder. A mask must be on the image's grid (shape,
    and affine within 1e-3 mm); values are binarized at 0.5. A test image without a mask is a named failure,
    scored as the worst case, never dropped.
    """

    type: Literal["predictions"]
    folder: str | None = Field(
        default=None, description="BIDS derivatives folder holding the masks (relative to the submission or absolute)")
    folders: dict[str, str] = Field(
        default_factory=dict,
        description="dataset id -> derivatives folder for that dataset's test images (instead of, or overriding, "
                    "folder; use it when two datasets have images of the same name)")
    label: str | None = Field(
        default="SC", description="Only masks whose `label` entity is this (e.g. label-SC); null: any mask file")
    generated_by: str | None = Field(
        default=None, description="The tool or model that computed the masks, as the supplier states it")

    @model_validator(mode="after")
    def _folder_given(self) -> "PredictionsModelSpec":
        if not self.folders and not self.folder:
            raise ValueError("a predictions model needs folder (or folders: {dataset id: folder})")
        return self


ModelSpec = Annotated[Union[NnunetModelSpec, CommandModelSpec, PythonModelSpec, PredictionsModelSpec],
                      Field(discriminator="type")]


class TrainingData(_Strict):
    """What the model was trained on: datasets (required), subjects or a split version (optional)."""

    datasets: list[str] = Field(default_factory=list, description="Registered dataset ids the model was trained on "
                                                                  "(decides in-domain vs zero-shot)")
    subjects: dict[str, list[str]] | None = Field(
        default=None, description="dataset id -> exact subject list used for training")
    split: str | None = Field(default=None, description="'<suite>@<benchmark version>': trained on that split's train subjects")
    adapted_from: list[str] = Field(default_factory=list, description="Submissions this one was fine-tuned from")
    training_time_s: float | None = Field(default=None, description="Training wall time, in seconds")
    cpu_kernels: str | None = Field(
        default=None, description="CPU kernels the weights were trained with (benchmark.kernels): pinned-avx2 "
                                  "(the same on every x86-64 CPU with AVX2), native-<isa> (this CPU's own), "
                                  "unpinned-<isa> (pinned asked for, not in effect), cuda; null: not recorded")
    packages: dict[str, str] = Field(default_factory=dict, description="Package versions used for training")
    git_revision: str | None = Field(default=None, description="cordbench revision used for training")
    reproduce: str | None = Field(default=None, description="The command that retrains this model")


class InferenceSpec(_Strict):
    """How the model is run when scored."""

    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="auto: GPU when present")
    test_time_augmentation: bool = Field(default=False, description="nnU-Net mirroring at inference")
    runtime: Literal["auto", "openvino", "onnxruntime", "torch"] = Field(
        default="auto",
        description="What runs an nnU-Net network: 'auto' is OpenVINO on CPU when installed, else ONNX Runtime, "
                    "else PyTorch, and PyTorch on CUDA (benchmark.models.runtime; `--runtime` overrides it).",
    )
    postprocessing: Postprocessing = Field(
        default="none",
        description="Applied to the binary mask before it is scored: 'largest-component' keeps only the largest "
                    "3D connected component (26-connectivity), as the Spinal Cord Toolbox's keep_largest does.",
    )
    precision: Literal["float32", "bfloat16", "int8"] = Field(
        default="float32",
        description="What an nnU-Net network computes in on CPU (opt-in levers, docs/performance.md): bfloat16 where "
                    "the CPU has it natively; int8 on OpenVINO or ONNX Runtime, quantized with ONNX Runtime's "
                    "quantize_static and calibrated on calibration_images. On CUDA nnU-Net's float16 autocast applies.",
    )
    calibration_images: list[str] = Field(
        default_factory=list,
        description="int8 only: NIfTI images of the model's TRAINING cases, or folders of them (relative to the "
                    "submission or absolute); cordbench refuses to score any of them",
    )

    @model_validator(mode="after")
    def _int8_is_calibrated(self) -> "InferenceSpec":
        if self.precision == "int8" and not self.calibration_images:
            raise ValueError("precision int8 needs calibration_images: NIfTI images (or folders) of the model's "
                             "training cases")
        if self.calibration_images and self.precision != "int8":
            raise ValueError("calibration_images is used only with precision: int8")
        return self


class Submission(_Strict):
    """A model: what it is, what it was trained on, how to run it."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", description="Unique name; equals the folder name")
    description: str = Field(description="What the model is")
    authors: list[str] = Field(min_length=1, description="Who made it")
    licence: str = Field(description="Licence of the model and its weights")
    model: ModelSpec = Field(description="The model (discriminated by type: nnunet, command, python)")
    training: TrainingData = Field(default=TrainingData(), description="The DECLARED training data")
    inference: InferenceSpec = Field(default=InferenceSpec(), description="How it is run when scored")
    parameters: int | None = Field(default=None, ge=0, description="Number of trainable parameters")
    family: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9._-]*$",
                               description="Name shared by the submissions that differ only in their training seed")
    seed: int | None = Field(default=None, ge=0, description="Training seed of this member of its family")
    folder: Path | None = Field(default=None, exclude=True)

    def resolve(self, relative: str) -> Path:
        path = Path(relative).expanduser()
        return path if path.is_absolute() else (self.folder or Path.cwd()) / path


def parse_manifest(path: Path) -> Submission:
    raw = read_yaml_mapping(path, SubmissionError)
    try:
        submission = Submission.model_validate(raw)
    except ValidationError as error:
        raise SubmissionError(describe_validation_error(path, error, "submission manifest")) from error
    if submission.name != Path(path).parent.name:
        raise SubmissionError(f"{path}: name: {submission.name!r} must equal its folder name {Path(path).parent.name!r}")
    submission.folder = Path(path).parent.resolve()
    return submission


def submission_roots() -> list[Path]:
    """Where submissions are looked up by name: the built-in ones, then the active workspace's."""
    active = workspace.active()
    return [SUBMISSIONS_DIR] + ([active.submissions_dir] if active else [])


def load_submission(name_or_path: str | Path, root: Path | None = None) -> Submission:
    """A submission by name (built-in or in the active workspace's ``submissions/``), by folder, or by manifest
    path. A name defined both as built-in and in the workspace is an error naming both manifests."""
    candidate = Path(name_or_path)
    if candidate.is_file():
        return parse_manifest(candidate)
    if (candidate / MANIFEST_NAME).is_file():
        return parse_manifest(candidate / MANIFEST_NAME)
    roots = [root] if root is not None else submission_roots()
    found = [folder / str(name_or_path) / MANIFEST_NAME for folder in roots
             if (folder / str(name_or_path) / MANIFEST_NAME).is_file()]
    if not found:
        import difflib

        where = " or ".join(str(folder / str(name_or_path) / MANIFEST_NAME) for folder in roots)
        names = sorted({manifest.parent.name for folder in roots for manifest in folder.glob(f"*/{MANIFEST_NAME}")})
        close = difflib.get_close_matches(str(name_or_path), names, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "see `cordbench submissions list`"
        raise SubmissionError(f"{where}: no such submission; {hint}")
    if len(found) > 1:
        raise SubmissionError(f"submission {str(name_or_path)!r} is defined twice: {found[0]} and {found[1]}; rename "
                              "the workspace's one (a workspace submission never overrides a built-in one)")
    return parse_manifest(found[0])


def list_submissions(root: Path | None = None) -> tuple[list[Submission], dict[Path, str]]:
    """Every valid submission under root (default: built-in, then the workspace's), plus the invalid ones with
    their error."""
    valid, invalid = [], {}
    names: dict[str, Path] = {}
    for folder in [root] if root is not None else submission_roots():
        for manifest in sorted(folder.glob(f"*/{MANIFEST_NAME}")):
            if manifest.parent.name in names:
                invalid[manifest] = (f"{manifest}: name: {manifest.parent.name!r} is already a submission "
                                     f"({names[manifest.parent.name]}); rename this one")
                continue
            try:
                valid.append(parse_manifest(manifest))
            except SubmissionError as error:
                invalid[manifest] = str(error)
            names[manifest.parent.name] = manifest
    return valid, invalid


def origin(submission: Submission) -> workspace.Origin:
    """built-in (a reference submission shipped with cordbench) or workspace (the user's)."""
    return workspace.origin_of(submission.folder) if submission.folder else "workspace"


def output_dir(submission: Submission) -> Path:
    """Where scoring writes a submission's results, predictions and cases index: its own folder, except for a
    built-in submission, whose outputs go to the active workspace (the package is never written)."""
    if submission.folder is not None and origin(submission) == "workspace":
        return submission.folder
    return workspace.require(f"scoring {submission.name}").submission_dir(submission.name)


OUTPUT_FOLDERS = {"results": "results", "predictions": "prediction cache"}


def output_subfolder(submission: Submission, name: str, *, create: bool = True) -> Path:
    """``results/`` or ``predictions/`` of the submission's output folder, created by cordbench as a real folder (or
    only checked, with ``create=False``): one the submission shipped as a link (into another submission's folder,
    say) or as a file is refused by name."""
    from benchmark.safepaths import output_folder

    return output_folder(output_dir(submission), name, what=f"{OUTPUT_FOLDERS[name]} of {submission.name}",
                         create=create)


def check_output_folders(submission: Submission) -> None:
    """Refuse, before anything runs, a submission whose ``results/`` or ``predictions/`` is a link or a file (they
    are checked again, and created, when written)."""
    for name in OUTPUT_FOLDERS:
        output_subfolder(submission, name, create=False)


def training_datasets(submission: Submission, root: Path | None = None) -> set[str]:
    """Declared training datasets, including those of every submission it was adapted from (the one rule:
    :func:`benchmark.data.declaration.training_declaration`)."""
    from benchmark.data.declaration import training_declaration

    return set(training_declaration(submission, root).datasets)


def checkpoint_path(submission: Submission) -> Path | None:
    model = submission.model
    if not isinstance(model, NnunetModelSpec) or model.folder is None:
        return None
    fold = model.folds[0]
    fold_dir = "fold_all" if fold == "all" else f"fold_{fold}"
    return submission.resolve(model.folder) / fold_dir / model.checkpoint


def check_submission(submission: Submission) -> list[str]:
    """Problems with the files a manifest points to (empty list: all good)."""
    problems: list[str] = []
    model = submission.model
    if isinstance(model, NnunetModelSpec):
        if model.archive:
            archive = submission.resolve(model.archive)
            if not archive.exists():
                problems.append(f"model.archive: {archive} does not exist")
        elif model.folder:
            checkpoint = checkpoint_path(submission)
            if not checkpoint.exists():
                problems.append(f"model.folder: checkpoint {checkpoint} does not exist "
                                f"(weights are not in git; reproduce with: {submission.training.reproduce or 'n/a'})")
            elif sha256_file(checkpoint) != model.sha256:
                problems.append(f"model.sha256: {checkpoint} does not match the manifest's sha256")
        else:
            problems.append("model: an nnunet model needs folder or archive")
    if isinstance(model, PythonModelSpec) and submission.folder is not None:
        # static: importing would run the submission's code in this process (it only ever runs in the sandbox)
        module_name, _, function = model.entrypoint.partition(":")
        relative = Path(*module_name.split("."))
        candidates = [submission.folder / relative.with_suffix(".py"), submission.folder / relative / "__init__.py"]
        if not any(candidate.is_file() for candidate in candidates):
            problems.append(f"model.entrypoint: module {module_name!r} is not in the submission folder "
                            f"({candidates[0]} or {candidates[1]}); the sandbox imports it from there")
    if isinstance(model, PredictionsModelSpec):
        problems += _predictions_problems(submission)
    if isinstance(model, NnunetModelSpec) and model.files and model.folder:
        problems += [f"model.files: {problem}" for problem in model_files_problems(submission)]
    for parent in submission.training.adapted_from:
        try:
            load_submission(parent, submission.folder.parent if submission.folder else None)
        except SubmissionError as error:
            problems.append(f"training.adapted_from: {error}")
    problems += [f"training.datasets: {problem}" for problem in unregistered_datasets(submission.training.datasets)]
    return problems


def _predictions_problems(submission: Submission) -> list[str]:
    from benchmark.data.derivatives import mask_files

    problems = [f"model.folders: {problem}" for problem in unregistered_datasets(submission.model.folders)]
    for dataset_id, folder in supplied_folders(submission).items():
        field = "model.folder" if dataset_id is None else f"model.folders.{dataset_id}"
        if not folder.is_dir():
            problems.append(f"{field}: {folder} is not a folder")
        elif not mask_files(folder, submission.model.label):
            problems.append(f"{field}: {folder} holds no mask (*_label-{submission.model.label or 'SC'}_seg.nii.gz)")
    return problems


def supplied_folders(submission: Submission) -> dict[str | None, Path]:
    """A predictions submission's derivatives folders: ``None`` -> model.folder, dataset id -> model.folders[id]."""
    spec = submission.model
    folders: dict[str | None, Path] = {}
    if spec.folder:
        folders[None] = submission.resolve(spec.folder)
    for dataset_id, folder in spec.folders.items():
        folders[dataset_id] = submission.resolve(folder)
    return folders


def model_files_problems(submission: Submission) -> list[str]:
    """Files of an imported nnU-Net model folder that are missing or differ from the sha256 recorded at import."""
    model = submission.model
    folder = submission.resolve(model.folder)
    problems = []
    for relative, expected in sorted((model.files or {}).items()):
        path = folder / relative
        if not path.is_file():
            problems.append(f"{path} is missing")
        elif sha256_file(path) != expected:
            problems.append(f"{path} differs from the sha256 recorded at import")
    return problems


def unregistered_datasets(declared: list[str] | set[str]) -> list[str]:
    """One message per declared dataset id that is not registered, naming the closest registered id."""
    import difflib

    from benchmark.data.registry import dataset_ids

    registered = dataset_ids()
    problems = []
    for dataset_id in sorted(set(declared) - set(registered)):
        close = difflib.get_close_matches(dataset_id, registered, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"registered: {', '.join(registered)}"
        problems.append(f"{dataset_id!r} is not a registered dataset id; {hint}")
    return problems


HASH_EXCLUDED = ("results/", "predictions/", "cases_index", "audit.json")
"""The scorer's own outputs in a submission folder; the sandbox hides them from the model."""


def submission_hash(submission: Submission) -> str:
    """Identifies the model's behaviour: the manifest's model (command line included) and inference sections,
    for nnU-Net models the plans, dataset.json, fingerprint and checkpoints (``nnunet_model_digests``),
    and for command/python models every file the model can read: the whole submission folder except the
    scorer's outputs (``HASH_EXCLUDED``) and ``__pycache__`` folders, all hidden from the model in the sandbox
    (benchmark.models.sandbox). Symbolic links are hashed by their target text."""
    digest = hashlib.sha256()
    digest.update(json.dumps(submission.model.model_dump(mode="json"), sort_keys=True).encode())
    inference = submission.inference.model_dump(mode="json")
    for key, default in _INFERENCE_FIELDS_ADDED_LATER.items():  # at their defaults, the hash stays what it was
        if inference.get(key) == default:
            inference.pop(key)
    digest.update(json.dumps(inference, sort_keys=True).encode())
    for path in calibration_images(submission):  # int8 ranges depend on the images' content, not their names
        digest.update(f"calibration {sha256_file(path)}".encode())
    if submission.folder is not None and not isinstance(submission.model, (NnunetModelSpec, PredictionsModelSpec)):
        for path in sorted(submission.folder.rglob("*")):
            relative = path.relative_to(submission.folder).as_posix()
            if relative.startswith(HASH_EXCLUDED) or "__pycache__" in path.parts:
                continue
            if path.is_symlink():
                digest.update(f"{relative} -> {os.readlink(path)}".encode())
            elif path.is_file():
                digest.update(relative.encode())
                digest.update(sha256_file(path).encode())
    if isinstance(submission.model, NnunetModelSpec):
        for relative, file_digest in nnunet_model_digests(submission).items():
            digest.update(f"{relative}:{file_digest}".encode())
    if isinstance(submission.model, PredictionsModelSpec):
        from benchmark.data.derivatives import folder_digest

        for dataset_id, folder in sorted(supplied_folders(submission).items(), key=lambda item: item[0] or ""):
            digest.update(f"{dataset_id}:{folder_digest(folder, submission.model.label)}".encode())
    return digest.hexdigest()


NNUNET_MODEL_FILES = ("plans.json", "dataset.json", "dataset_fingerprint.json")
"""The files of an nnU-Net model folder besides the checkpoints that change what the model predicts."""


def nnunet_model_digests(submission: Submission) -> dict[str, str]:
    """sha256 of every file an nnU-Net model's predictions depend on: plans.json, dataset.json and the
    fingerprint, and each chosen fold's checkpoint (a model folder), or the archive file; "missing" for an absent
    one. Editing the plans with the same weights changes them, so cached predictions and finished work units are
    not reused."""
    model = submission.model
    assert isinstance(model, NnunetModelSpec)
    files = nnunet_model_files(submission) if model.folder else {}
    if not model.folder and model.archive:
        files["archive"] = submission.resolve(model.archive)
    return {relative: _file_digest(path) for relative, path in files.items()}


def nnunet_model_files(submission: Submission) -> dict[str, Path]:
    """The files of an nnU-Net model folder that cordbench reads (relative path -> path): plans, dataset.json,
    fingerprint and each chosen fold's checkpoint. Each is refused by :func:`check_nnunet_links` when it is a
    link out of the model folder (a plans file that is really /etc/shadow would be read, or exported)."""
    model = submission.model
    assert isinstance(model, NnunetModelSpec) and model.folder
    folder = submission.resolve(model.folder)
    files = {name: folder / name for name in NNUNET_MODEL_FILES}
    for fold in model.folds:
        fold_dir = "fold_all" if fold == "all" else f"fold_{fold}"
        files[f"{fold_dir}/{model.checkpoint}"] = folder / fold_dir / model.checkpoint
    return files


def check_nnunet_links(submission: Submission) -> None:
    """Refuse, by name, a file of the nnU-Net model folder that links out of it."""
    from benchmark.safepaths import refuse_link_out

    folder = submission.resolve(submission.model.folder)
    for path in nnunet_model_files(submission).values():
        if path.exists() or path.is_symlink():
            refuse_link_out(path, folder, what="model file")


def _file_digest(path: Path) -> str:
    try:
        info = path.stat()
    except OSError:
        return "missing"
    return _sha256_of(str(path), info.st_size, info.st_mtime_ns, info.st_ino)


@functools.lru_cache(maxsize=256)
def _sha256_of(path: str, _size: int, _mtime_ns: int, _inode: int) -> str:
    """A file's sha256, computed once per (path, size, mtime, inode): planning many units hashes a checkpoint once."""
    return sha256_file(Path(path))


# inference fields added after submissions were hashed (predictions cached, units planned): left out at their
# defaults so that existing hashes stay valid
_INFERENCE_FIELDS_ADDED_LATER: dict[str, Any] = {"precision": "float32", "calibration_images": []}


def calibration_images(submission: Submission) -> list[Path]:
    """The int8 calibration images of a submission: each listed file, and the .nii/.nii.gz files of each listed
    folder (sorted); a listed path that does not exist is an error naming it."""
    images: list[Path] = []
    for entry in submission.inference.calibration_images:
        path = submission.resolve(entry)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.name.endswith((".nii", ".nii.gz")) and p.is_file())
            if not found:
                raise SubmissionError(f"{path}: inference.calibration_images: no .nii or .nii.gz file in this folder")
            images.extend(found)
        elif path.is_file():
            images.append(path)
        else:
            raise SubmissionError(f"{path}: inference.calibration_images: no such file or folder")
    return images


def model_sha256(submission: Submission) -> str:
    """The weights' sha256 for nnU-Net models; the submission hash for other kinds."""
    model = submission.model
    return model.sha256 if isinstance(model, NnunetModelSpec) else submission_hash(submission)


def write_manifest(submission: Submission, folder: Path) -> Path:
    from benchmark.io import atomic_write_text

    data = submission.model_dump(mode="json", exclude_none=True)
    path = Path(folder) / MANIFEST_NAME
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path
