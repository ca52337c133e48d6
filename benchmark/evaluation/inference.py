"""One inference path for every model.

For each case: read the image; give the model the orientation it expects (canonical RAS+ for array
models, the file as it is or RAS for command models); map the output back to the image's native grid
and orientation; binarize at 0.5; validate (shape and affine equal to the input's, values in {0, 1}).
A violation is a named failure for that case, never an exception that stops the run.

Predictions are cached by (submission hash, image sha256): an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import importlib
import json
import os
import shlex
import shutil
import stat
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Protocol

import nibabel as nib
import numpy as np

from benchmark import kernels
from benchmark.errors import CordbenchError
from benchmark.io import AFFINE_TOLERANCE_MM, atomic_write_bytes, atomic_write_json, sha256_file
from benchmark.models import runner
from benchmark.safepaths import output_folder
from benchmark.seals import is_sealed, seal
from benchmark.models.sandbox import (SandboxMode, SandboxSpec, python_code_path, run_program, untrusted_mode,
                                      visible_input, visible_output)
from benchmark.data.submissions import (CommandModelSpec, NnunetModelSpec, PythonModelSpec, Submission,
                                   SubmissionError, calibration_images, checkpoint_path, render_command,
                                   submission_hash)

BINARY_THRESHOLD = 0.5


class ModelLoadError(CordbenchError, RuntimeError):
    """A submission's model cannot be loaded (bad checkpoint, unsafe pickle, missing module)."""


class ScorerFaultError(CordbenchError, OSError):
    """The scorer itself failed (disk full, read-only output, missing temporary folder): not the model's fault.

    The run stops and the case is not recorded, so that a machine problem never becomes a model's score."""


class ImageReadError(CordbenchError, ValueError):
    """A test image cannot be read as NIfTI."""


class CalibrationLeakError(CordbenchError, RuntimeError):
    """An image to be scored is one of the images the model's int8 ranges were calibrated on."""


class ArrayModel(Protocol):
    """A model that segments a 3D array given in canonical RAS+ with its voxel spacing (mm)."""

    def predict_probabilities(self, image_ras: np.ndarray, spacing_ras: tuple[float, float, float]) -> np.ndarray: ...


@dataclass
class PredictionRecord:
    """What happened when one case was predicted."""

    image_sha256: str
    prediction: str | None  # path of the binary mask on the native grid
    failure: str | None
    runtime_s: float
    peak_memory_mb: float | None
    prediction_sha256: str | None = None  # checked before a cached prediction is reused
    runtime: str | None = None  # what ran the network (nnU-Net models: openvino, onnxruntime, torch)
    threads: int | None = None
    device: str | None = None
    seal: str | None = None  # cordbench's HMAC over the record (benchmark.seals): a shipped record has none
    precision: str | None = None  # float32, bfloat16 or int8 (nnU-Net models)
    test_time_augmentation: bool | None = None  # mirroring (nnU-Net models)
    cpu_kernels: str | None = None  # benchmark.kernels.label_for: pinned-avx2, native-<isa>, ...; None: not a network

    @property
    def ok(self) -> bool:
        return self.failure is None


class PeakMemory:
    """Samples this process's (and its children's) resident memory while a block runs."""

    def __init__(self, interval_s: float = 0.02):
        import psutil

        self._process = psutil.Process()
        self._interval = interval_s
        self._peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        total = self._process.memory_info().rss
        for child in self._process.children(recursive=True):
            try:
                total += child.memory_info().rss
            except Exception:  # the child may have exited between listing and reading
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self._sample())
            self._stop.wait(self._interval)

    def __enter__(self) -> "PeakMemory":
        self._peak = self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._sample())

    @property
    def peak_mb(self) -> float:
        return round(self._peak / 2**20, 1)


def load_native(image_path: Path) -> tuple[nib.Nifti1Image, np.ndarray]:
    """The image and its data as float32 3D (a single-volume 4D image is squeezed)."""
    try:
        image = nib.load(str(image_path))
        data = np.asarray(image.dataobj, dtype=np.float32)
    except OSError as error:
        raise ScorerFaultError(f"{image_path}: cannot be read ({error})") from error
    except Exception as error:  # nibabel raises ImageFileError, EOFError, zlib errors... for a damaged file
        raise ImageReadError(f"{image_path}: not a readable NIfTI image ({type(error).__name__}: {error})") from error
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f"{image_path}: expected a 3D image, got shape {data.shape}")
    return image, data


def to_canonical(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float], np.ndarray]:
    """(array in RAS+, its spacing, the orientation transform that undoes it)."""
    native = nib.orientations.io_orientation(affine)
    ras = nib.orientations.axcodes2ornt(("R", "A", "S"))
    forward = nib.orientations.ornt_transform(native, ras)
    backward = nib.orientations.ornt_transform(ras, native)
    canonical = nib.orientations.apply_orientation(data, forward)
    zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    return np.ascontiguousarray(canonical), _spacing_after(zooms, forward), backward


def _spacing_after(zooms: np.ndarray, transform: np.ndarray) -> tuple[float, float, float]:
    spacing = [0.0, 0.0, 0.0]
    for input_axis, (output_axis, _flip) in enumerate(transform):
        spacing[int(output_axis)] = float(zooms[input_axis])
    return tuple(spacing)


def from_canonical(data: np.ndarray, backward: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(nib.orientations.apply_orientation(data, backward))


def validate_prediction(prediction: np.ndarray, affine: np.ndarray | None, image: nib.Nifti1Image,
                        reference_shape: tuple[int, ...]) -> str | None:
    """The named failure of an output, or None when it is a valid mask on the input's grid."""
    if prediction.shape != reference_shape:
        return f"shape-mismatch: prediction {prediction.shape} vs image {reference_shape}"
    if affine is not None and not np.allclose(affine, image.affine, atol=AFFINE_TOLERANCE_MM):
        return "affine-mismatch: the prediction is not on the image's grid"
    if not np.all(np.isfinite(prediction)):
        return "non-finite: the prediction has NaN/inf values"
    return None


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 26-connected component of a binary mask (ties: the first in scan order); empty stays empty."""
    from scipy import ndimage

    labels, count = ndimage.label(mask, structure=np.ones((3,) * mask.ndim, dtype=bool))
    if count <= 1:
        return mask.astype(bool)
    sizes = np.bincount(labels.ravel())[1:]
    return labels == int(np.argmax(sizes)) + 1


def write_mask(mask: np.ndarray, image: nib.Nifti1Image, path: Path) -> None:
    import gzip
    import io

    header = image.header.copy()
    header.set_data_dtype(np.uint8)
    out = nib.Nifti1Image(mask.astype(np.uint8), image.affine, header)
    out.header.set_slope_inter(1, 0)
    raw = io.BytesIO()
    out.to_file_map(nib.Nifti1Image.make_file_map({"image": raw, "header": raw}))
    atomic_write_bytes(path, gzip.compress(raw.getvalue(), compresslevel=1, mtime=0))


# The nnU-Net model the last Predictor of this process loaded, with its load key: a worker process that runs the
# work units of one submission one after another (model x dataset x shard) loads, exports and verifies it once.
# One entry, so a process never holds more than one model's weights beyond those in use.
_LAST_LOADED: dict[str, Any] = {}


class Predictor:
    """Runs one submission on images, one case at a time, with the shared checks and caching."""

    def __init__(self, submission: Submission, cache_dir: Path, *, device: str | None = None,
                 trust_checkpoint: bool = False, sandbox: bool = True, runtime: str | None = None,
                 threads: int | None = None):
        """``sandbox=False`` (``--no-sandbox``) runs command and python models without bubblewrap (python ones
        in-process); with ``sandbox=True`` and no working bubblewrap, untrusted models are refused. ``runtime``
        overrides the manifest's ``inference.runtime``; ``threads`` is the nnU-Net inference thread count."""
        if runtime is not None:  # part of the submission hash, so predictions of each runtime are cached apart
            inference = submission.inference.model_copy(update={"runtime": runtime})
            submission = submission.model_copy(update={"inference": inference})
        self.submission = submission
        self.threads = threads
        self.hash = submission_hash(submission)
        self.sandbox_mode: SandboxMode = ("not-needed" if isinstance(submission.model, NnunetModelSpec)
                                          else untrusted_mode(allow_unsandboxed=False) if sandbox else "none")
        # predictions made without the sandbox are never reused by a sandboxed run, nor an nnU-Net model's masks
        # made with native CPU kernels by a run with pinned ones (and the reverse)
        suffix = "-unsandboxed" if self.sandbox_mode == "none" else ""
        if isinstance(submission.model, NnunetModelSpec):
            suffix += f"-{kernels.current().requested}"
        # checked now (a shipped link or file is refused), made when the first prediction is written
        self.cache_dir = output_folder(Path(cache_dir), f"{self.hash[:16]}{suffix}", what="prediction cache",
                                       create=False)
        self.device = device
        self.trust_checkpoint = trust_checkpoint
        self._array_model: ArrayModel | None = None

    # -- model loading (once per submission, and once per process for consecutive work units) ----------
    def array_model(self) -> ArrayModel:
        if self._array_model is None:
            key = self._load_key()
            if key is not None and _LAST_LOADED.get("key") == key:
                self._array_model = _LAST_LOADED["model"]
                return self._array_model
            runtime_cache = output_folder(self.cache_dir.parent, "runtime", what="runtime cache")
            try:
                self._array_model = load_array_model(self.submission, device=self.device,
                                                     trust_checkpoint=self.trust_checkpoint, threads=self.threads,
                                                     runtime_cache_dir=runtime_cache)
            except Exception as error:
                raise ModelLoadError(f"{self.submission.name}: the model could not be loaded: "
                                     f"{type(error).__name__}: {error}") from error
            _LAST_LOADED.clear()
            if key is not None:
                _LAST_LOADED.update(key=key, model=self._array_model)
        return self._array_model

    def _load_key(self) -> tuple | None:
        """What a loaded nnU-Net model depends on: the submission (its hash covers the weights' declared sha256),
        how it is run, and the checkpoint file as it is now (so a replaced file is loaded and checked again).
        None for other models (a python model is cheap to load and may keep state)."""
        if not isinstance(self.submission.model, NnunetModelSpec) or not self.submission.model.folder:
            return None
        try:
            checkpoint = checkpoint_path(self.submission).stat()
        except OSError:
            return None
        return (self.hash, self.device, self.trust_checkpoint, self.threads, str(self.cache_dir.parent),
                checkpoint.st_size, checkpoint.st_mtime_ns)

    # -- cache ------------------------------------------------------------------------------------
    def _runtime_info(self) -> dict:
        """What ran the network and with how many threads, for models that say so (nnU-Net)."""
        model = self._array_model
        if model is None or not hasattr(model, "runtime"):
            return {}
        device = str(model.device.type)
        return {"runtime": model.runtime, "threads": model.num_threads, "device": device,
                "precision": getattr(model, "precision", None),
                "test_time_augmentation": getattr(getattr(model, "predictor", None), "use_mirroring", None),
                "cpu_kernels": kernels.label_for(model.runtime, device)}

    def _seal_parts(self, image_sha256: str, prediction_sha256: str | None) -> tuple[str, ...]:
        return ("prediction", self.hash, self.cache_dir.name, image_sha256, str(prediction_sha256))

    def _cached(self, image_sha256: str) -> PredictionRecord | None:
        """The cached record of an image, when cordbench wrote it here (its seal) and its mask is unchanged; None
        otherwise (predicted again). The mask is read only from its own place in this cache, never from a path
        the record names: the cache is in the submission's folder, which its author controls."""
        record_path = self.cache_dir / f"{image_sha256}.json"
        mask_path = self.cache_dir / f"{image_sha256}.nii.gz"
        if not record_path.is_file() or record_path.is_symlink() or mask_path.is_symlink():
            return None
        try:
            fields = json.loads(record_path.read_text(encoding="utf-8"))
            record = PredictionRecord(**fields)
        except (OSError, ValueError, TypeError):  # unreadable or not a record: predicted again
            return None
        if record.failure is not None:  # failures are retried: a timeout or a crash may not recur
            return None
        if record.prediction_sha256 is None or not mask_path.is_file():
            return None
        if not is_sealed(record.seal, *self._seal_parts(image_sha256, record.prediction_sha256)):
            return None  # not written by cordbench in this workspace (shipped with the submission?)
        if sha256_file(mask_path) != record.prediction_sha256:
            return None  # changed since it was recorded: predicted again
        return replace(record, prediction=str(mask_path))

    @property
    def _runs_in_process(self) -> bool:
        """A python model without the sandbox: its code runs in this process."""
        return isinstance(self.submission.model, PythonModelSpec) and self.sandbox_mode == "none"

    def predict(self, image_path: Path, image_sha256: str) -> PredictionRecord:
        cached = self._cached(image_sha256)
        if cached is not None:
            return cached
        out_path = self.cache_dir / f"{image_sha256}.nii.gz"
        if isinstance(self.submission.model, NnunetModelSpec) or self._runs_in_process:
            model = self.array_model()  # a model that cannot be loaded stops the run (ModelLoadError), it fails no case
            if image_sha256 in getattr(model, "calibration_sha256", ()):
                raise CalibrationLeakError(
                    f"{self.submission.name}: {image_path} is one of the images its int8 ranges were calibrated on "
                    "(inference.calibration_images); a model is never scored on its calibration images: calibrate "
                    "on training cases only")
        started = time.perf_counter()
        with PeakMemory() as memory:
            try:
                failure = self._predict_uncached(Path(image_path), out_path)
            except (ModelLoadError, ImageReadError, ScorerFaultError):
                raise
            except OSError as error:
                if self._runs_in_process:
                    failure = f"crash: {type(error).__name__}: {error}"
                else:  # only the scorer's own code ran in this process
                    raise ScorerFaultError(f"{self.submission.name}: scorer fault while predicting {image_path} "
                                           f"(not the model's; nothing recorded): {error}") from error
            except Exception as error:  # a model crash is that case's failure, not the run's
                failure = f"crash: {type(error).__name__}: {error}"
        record = PredictionRecord(
            image_sha256=image_sha256,
            prediction=str(out_path) if failure is None else None,
            failure=failure,
            runtime_s=round(time.perf_counter() - started, 3),
            peak_memory_mb=memory.peak_mb,
            prediction_sha256=sha256_file(out_path) if failure is None else None,
            **self._runtime_info(),
        )
        if failure is not None:  # only a prediction is ever reused (failures are retried): nothing to keep
            return record
        record.seal = seal(*self._seal_parts(image_sha256, record.prediction_sha256))
        try:
            atomic_write_json(self.cache_dir / f"{image_sha256}.json", asdict(record))
        except OSError as error:
            raise ScorerFaultError(f"{self.cache_dir}: the prediction record cannot be written ({error})") from error
        return record

    def _predict_uncached(self, image_path: Path, out_path: Path) -> str | None:
        model = self.submission.model
        image, data = load_native(image_path)
        if isinstance(model, CommandModelSpec):
            return self._predict_command(model, image, data, image_path, out_path)
        canonical, spacing, backward = to_canonical(data, image.affine)
        if isinstance(model, PythonModelSpec) and not self._runs_in_process:
            probabilities = self._predict_python_sandboxed(model, canonical, spacing)
            if isinstance(probabilities, str):
                return probabilities
        else:
            probabilities = np.asarray(self.array_model().predict_probabilities(canonical, spacing))
        if probabilities.shape != canonical.shape:
            return f"shape-mismatch: model returned {probabilities.shape} for input {canonical.shape}"
        native = from_canonical(probabilities, backward)
        failure = validate_prediction(native, None, image, data.shape)
        if failure:
            return failure
        write_mask(self._postprocess(native >= BINARY_THRESHOLD), image, out_path)
        return None

    def _sandbox_spec(self, model: CommandModelSpec | PythonModelSpec, inputs: dict[str, Path], output_dir: Path,
                      python_path: tuple[str, ...] = ()) -> SandboxSpec:
        wants_gpu = (self.device or self.submission.inference.device) == "cuda"
        return SandboxSpec(folder=self.submission.folder, inputs=inputs, output_dir=output_dir,
                           timeout_s=model.timeout_s, memory_mb=model.memory_mb, gpu=wants_gpu,
                           python_path=python_path, max_processes=model.max_processes)

    def _predict_python_sandboxed(self, model: PythonModelSpec, canonical: np.ndarray,
                                  spacing: tuple[float, float, float]) -> np.ndarray | str:
        """The function's probabilities, computed by ``benchmark.models.runner`` in the sandbox; or a failure."""
        with _scratch("cordbench-py-") as scratch:
            input_dir, output_dir = _fresh_dirs(scratch)
            np.save(input_dir / runner.IMAGE_FILE, canonical.astype(np.float32), allow_pickle=False)
            (input_dir / runner.SPACING_FILE).write_text(json.dumps(list(spacing)))
            inputs = {name: input_dir / name for name in (runner.IMAGE_FILE, runner.SPACING_FILE)}
            spec = self._sandbox_spec(model, inputs, output_dir, (python_code_path(self.sandbox_mode),))
            argv = [sys.executable, "-m", "benchmark.models.runner", model.entrypoint,
                    str(Path(visible_input(self.sandbox_mode, spec, runner.IMAGE_FILE)).parent),
                    visible_output(self.sandbox_mode, spec)]
            run = run_program(self.sandbox_mode, spec, argv, scratch)
            if run.timed_out:
                return run.describe_timeout(model.timeout_s)
            reason = (run.stderr_tail.strip().splitlines() or ["(no message)"])[-1]
            if run.returncode == runner.LOAD_FAILED:
                raise ModelLoadError(f"{self.submission.name}: the model could not be loaded: {reason}")
            if run.returncode == runner.FUNCTION_RAISED:
                return f"crash: {reason}"
            if run.returncode != 0:
                return run.describe_crash()
            produced = output_dir / runner.OUTPUT_FILE
            if not produced.is_file():
                return "missing-output: the runner wrote no probabilities"
            try:
                return np.load(produced, allow_pickle=False)
            except (ValueError, EOFError) as error:
                return f"unreadable-output: {error}"

    def _predict_command(self, model: CommandModelSpec, image: nib.Nifti1Image, data: np.ndarray,
                         image_path: Path, out_path: Path) -> str | None:
        with _scratch("cordbench-cmd-") as scratch:
            input_dir, output_dir = _fresh_dirs(scratch)
            given = input_dir / "image.nii.gz"
            if model.orientation == "RAS":
                nib.save(nib.as_closest_canonical(image), given)
            else:
                shutil.copyfile(image_path, given)
            given.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
            spec = self._sandbox_spec(model, {"image.nii.gz": given}, output_dir)
            produced_visible = f"{visible_output(self.sandbox_mode, spec)}/prediction.nii.gz"
            command = render_command(model.command, {
                "input": shlex.quote(visible_input(self.sandbox_mode, spec, "image.nii.gz")),
                "output": shlex.quote(produced_visible), "python": shlex.quote(sys.executable)})
            given_before = given.stat()
            run = run_program(self.sandbox_mode, spec, ["/bin/sh", "-c", command], scratch)
            if run.timed_out:
                return run.describe_timeout(model.timeout_s)
            changed_input = _input_changed(given, given_before)
            if changed_input:
                return changed_input
            if run.returncode != 0:
                return run.describe_crash()
            produced = output_dir / "prediction.nii.gz"
            if not produced.is_file():
                return "missing-output: the command wrote no prediction"
            return self._accept_command_output(model, image, data, produced, out_path)

    def _accept_command_output(self, model: CommandModelSpec, image: nib.Nifti1Image, data: np.ndarray,
                               produced: Path, out_path: Path) -> str | None:
        try:
            result = nib.load(str(produced))
            values = np.asarray(result.dataobj, dtype=np.float32)
        except Exception as error:
            return f"unreadable-output: {error}"
        if values.ndim == 4 and values.shape[3] == 1:
            values = values[..., 0]
        if model.orientation == "RAS":
            canonical, _spacing, backward = to_canonical(data, image.affine)
            if values.shape != canonical.shape:
                return f"shape-mismatch: prediction {values.shape} vs RAS image {canonical.shape}"
            values = from_canonical(values, backward)
            affine = None
        else:
            affine = result.affine
        failure = validate_prediction(values, affine, image, data.shape)
        if failure:
            return failure
        write_mask(self._postprocess(values >= BINARY_THRESHOLD), image, out_path)
        return None

    def _postprocess(self, mask: np.ndarray) -> np.ndarray:
        if self.submission.inference.postprocessing == "largest-component":
            return largest_component(mask)
        return mask


def _input_changed(given: Path, before: os.stat_result) -> str | None:
    """The named failure of a model that deleted or rewrote the input it was given (possible only without the
    sandbox, which binds it read-only); None when it is as it was."""
    try:
        after = given.stat()
    except FileNotFoundError:
        return f"input-deleted: the model deleted its input image ({given}); it may only read it"
    if (after.st_size, after.st_mtime_ns, after.st_ino) != (before.st_size, before.st_mtime_ns, before.st_ino):
        return f"input-changed: the model rewrote its input image ({given}); it may only read it"
    return None


class _scratch:
    """A temporary folder for one case; failing to create it is a scorer fault, not the model's."""

    def __init__(self, prefix: str):
        self._prefix = prefix

    def __enter__(self) -> Path:
        try:
            self._directory = tempfile.TemporaryDirectory(prefix=self._prefix)
        except OSError as error:
            raise ScorerFaultError(f"{tempfile.gettempdir()}: cannot create a temporary folder ({error}); "
                                   "check TMPDIR and free space") from error
        return Path(self._directory.name)

    def __exit__(self, *exc) -> None:
        self._directory.cleanup()


def _fresh_dirs(scratch: Path) -> tuple[Path, Path]:
    input_dir, output_dir = scratch / "input", scratch / "output"
    input_dir.mkdir()
    output_dir.mkdir()
    return input_dir, output_dir


def load_array_model(submission: Submission, *, device: str | None, trust_checkpoint: bool,
                     threads: int | None = None, runtime_cache_dir: Path | None = None) -> ArrayModel:
    model = submission.model
    if isinstance(model, PythonModelSpec):
        module_name, _, function_name = model.entrypoint.partition(":")
        function: Callable = getattr(importlib.import_module(module_name), function_name)
        return _FunctionModel(function)
    if isinstance(model, NnunetModelSpec):
        from benchmark.models.nnunet.predict import load_model

        folder = _nnunet_folder(submission)
        return load_model(
            folder,
            checkpoint=model.checkpoint,
            folds=model.folds,
            device=_device(device or submission.inference.device),
            trust_checkpoint=trust_checkpoint,
            use_mirroring=submission.inference.test_time_augmentation,
            runtime=submission.inference.runtime,
            precision=submission.inference.precision,
            calibration_images=calibration_images(submission),
            num_threads=threads,
            runtime_cache_dir=runtime_cache_dir,
        )
    raise SubmissionError(f"{submission.name}: model type {model.type!r} is not an array model")


def _nnunet_folder(submission: Submission) -> Path:
    model = submission.model
    assert isinstance(model, NnunetModelSpec)
    if model.folder:
        checkpoint = checkpoint_path(submission)
        from benchmark.data.submissions import check_nnunet_links
        from benchmark.io import sha256_file

        check_nnunet_links(submission)  # a plans file linked to a host file is never read
        if not checkpoint.exists():
            raise SubmissionError(f"{checkpoint}: checkpoint not found; reproduce with: {submission.training.reproduce}")
        if sha256_file(checkpoint) != model.sha256:
            raise SubmissionError(f"{checkpoint}: sha256 differs from the manifest (model.sha256)")
        if model.files:  # an imported nnU-Net model: every file was recorded at import
            from benchmark.data.submissions import model_files_problems

            problems = model_files_problems(submission)
            if problems:
                raise SubmissionError(f"{submission.folder}/submission.yaml: model.files: {'; '.join(problems)}")
        from benchmark.models.packaging import verify_import

        verify_import(submission.folder)  # an imported model: every file as recorded at import time
        return submission.resolve(model.folder)
    from benchmark.models.packaging import extract_verified

    return extract_verified(submission.resolve(model.archive), expected_checkpoint_sha256=model.sha256,
                            expected_archive_sha256=model.archive_sha256)


def _device(preference: str | None) -> str:
    import torch

    if preference in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return preference


class _FunctionModel:
    def __init__(self, function: Callable):
        self._function = function

    def predict_probabilities(self, image_ras: np.ndarray, spacing_ras: tuple[float, float, float]) -> np.ndarray:
        return np.asarray(self._function(image_ras, spacing_ras), dtype=np.float32)
