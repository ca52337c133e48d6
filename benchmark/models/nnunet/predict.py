"""Load a trained nnU-Net model safely and predict cord probabilities on canonical-RAS arrays, fast on CPU.

The network is rebuilt from the model folder's plans with nnU-Net's helper (``get_network_from_plans``) and
wrapped in a subclass of ``nnUNetPredictor`` initialised with ``manual_initialization``; no trainer class is
looked up by name and checkpoints are read with ``torch.load(weights_only=True)``.

Changes to ``nnUNetPredictor``'s sliding window (see docs/nnunet.md for measurements): tiles are predicted in
batches (``tile_batch_size`` tiles per forward, mirrored copies in the same forward) instead of one tile per
forward, logits are accumulated in float32 directly into the output (nnU-Net uses float16 buffers), and the
network call goes through a runtime (benchmark.models.runtime): on CPU with pinned kernels (benchmark.kernels, the
default) PyTorch, with native kernels OpenVINO when installed, else ONNX Runtime, else PyTorch; on CUDA PyTorch.
The ONNX export is cached and checked against PyTorch before use.
``num_threads`` (default: the cores available) applies to the runtime, torch and nnU-Net's resampling.
Test-time mirroring is off by default (nnU-Net's default is on). Pre- and post-processing (crop, normalise,
resample, softmax, resample back) are nnU-Net's own functions, so outputs agree with nnU-Net's predictor.
``precision="bfloat16"`` (opt-in) is used only on CPUs with native bfloat16 (AVX512-BF16, AMX), else ignored
with a warning; on CUDA nnU-Net's own float16 autocast applies either way. ``precision="int8"`` (opt-in, ONNX
runtimes on CPU) quantizes the network with ONNX Runtime's tooling, calibrated on the given training images
(benchmark.models.runtime.quantize).
"""

from __future__ import annotations

import json
import logging
import math
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from itertools import combinations

import numpy as np
import torch
from nnunetv2.inference.export_prediction import convert_predicted_logits_to_segmentation_with_correct_shape
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
from nnunetv2.inference.sliding_window_prediction import compute_gaussian
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from benchmark import kernels
from benchmark.errors import CordbenchError
from benchmark.models.runtime.hardware import default_threads, native_bf16
from benchmark.models.runtime.runner import VerifiedRunner
from benchmark.models.runtime.quantize import MAX_CALIBRATION_TILES
from benchmark.models.runtime.selection import RuntimeSelectionError, select_runtime
from benchmark.training.nnunet.train import resolve_device
from benchmark.training.nnunet.trainer import UnsafeCheckpointError, load_checkpoint_dict, weights_sha256

# Voxels fed to the network per forward pass (tiles x mirrors x tile voxels): 2**17 = 8 tiles of 128x128, or 2
# tiles x 4 mirrorings. On the 2-core CPU measured, 4-8 tiles per forward were fastest and 32+ slower again
# (cache); 3D tiles are usually larger than the budget and then go one per forward (docs/nnunet.md).
DEFAULT_VOXELS_PER_FORWARD = 2**17

logger = logging.getLogger(__name__)

Precision = Literal["float32", "bfloat16", "int8"]
PRECISIONS: tuple[str, ...] = ("float32", "bfloat16", "int8")


class ModelFolderError(CordbenchError, ValueError):
    """A model folder is incomplete or inconsistent (missing plans/dataset.json, unknown configuration, ...)."""


class CalibrationError(CordbenchError, ValueError):
    """int8 was asked for without calibration images, or with images that cannot be used."""


class BatchedPredictor(nnUNetPredictor):
    """``nnUNetPredictor`` whose sliding window predicts many tiles per forward pass."""

    def __init__(
        self, *args: Any, tile_batch_size: int | None = None, precision: Precision = "float32", **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.tile_batch_size = tile_batch_size
        self.precision = precision
        # one runner per entry of list_of_parameters (fold), set by load_model; None: the network itself
        self.runners: list[VerifiedRunner] | None = None
        self._active_runner: VerifiedRunner | None = None

    def _tiles_per_forward(self) -> int:
        if self.tile_batch_size is not None:
            return max(1, int(self.tile_batch_size))
        n_mirrors = 2 ** len(self.allowed_mirroring_axes) if self.use_mirroring and self.allowed_mirroring_axes else 1
        tile_voxels = math.prod(self.configuration_manager.patch_size)
        return max(1, DEFAULT_VOXELS_PER_FORWARD // (tile_voxels * n_mirrors))

    def _mirror_combinations(self, ndim: int) -> list[tuple[int, ...]]:
        if not self.use_mirroring or not self.allowed_mirroring_axes:
            return []
        axes = [m + 2 for m in self.allowed_mirroring_axes]
        if max(axes) > ndim - 1:
            raise ValueError(f"mirror axes {self.allowed_mirroring_axes} do not fit {ndim - 2}D tiles")
        return [c for i in range(len(axes)) for c in combinations(axes, i + 1)]

    @torch.inference_mode()
    def _predict_tiles(self, tiles: torch.Tensor) -> torch.Tensor:
        """Network output for a batch of tiles, averaged over mirrorings in one forward pass."""
        combos = self._mirror_combinations(tiles.ndim)
        stacked = torch.cat([tiles] + [torch.flip(tiles, axes) for axes in combos]) if combos else tiles
        if self._active_runner is not None:
            output = self._active_runner.run(stacked).to(tiles.device)
        else:
            output = self.network(stacked)
        if not combos:
            return output
        outputs = output.split(tiles.shape[0])
        prediction = outputs[0].clone()
        for axes, output in zip(combos, outputs[1:]):
            prediction += torch.flip(output, axes)
        prediction /= len(combos) + 1
        return prediction

    @torch.inference_mode()
    def predict_logits_from_preprocessed_data(self, data: torch.Tensor) -> torch.Tensor:
        """nnU-Net's fold loop (weights loaded, logits averaged), with each fold's runner active in turn."""
        if self.runners is None:
            return super().predict_logits_from_preprocessed_data(data)
        prediction = None
        for params, runner in zip(self.list_of_parameters, self.runners):
            self.network.load_state_dict(params)  # the runner's PyTorch reference and fallback use it
            self._active_runner = runner
            try:
                logits = self.predict_sliding_window_return_logits(data).to("cpu")
            finally:
                self._active_runner = None
            prediction = logits if prediction is None else prediction + logits
        if len(self.list_of_parameters) > 1:
            prediction /= len(self.list_of_parameters)
        return prediction

    @torch.inference_mode()
    def _internal_predict_sliding_window_return_logits(
        self, data: torch.Tensor, slicers: list, do_on_device: bool = True
    ) -> torch.Tensor:
        results_device = self.device if do_on_device else torch.device("cpu")
        data = data.to(results_device)
        logits = torch.zeros((self.label_manager.num_segmentation_heads, *data.shape[1:]),
                             dtype=torch.float32, device=results_device)
        weights = torch.zeros(data.shape[1:], dtype=torch.float32, device=results_device)
        patch_size = tuple(self.configuration_manager.patch_size)
        if self.use_gaussian:
            gaussian = compute_gaussian(patch_size, sigma_scale=1.0 / 8, value_scaling_factor=10,
                                        dtype=torch.float32, device=results_device)
        else:
            gaussian = torch.ones(patch_size, dtype=torch.float32, device=results_device)
        step = self._tiles_per_forward()
        for start in range(0, len(slicers), step):
            chunk = slicers[start:start + step]
            tiles = torch.stack([data[s] for s in chunk]).to(self.device)
            prediction = self._predict_tiles(tiles).to(results_device, torch.float32)
            prediction *= gaussian
            for tile_logits, s in zip(prediction, chunk):
                logits[s] += tile_logits
                weights[s[1:]] += gaussian
        logits /= weights
        if not bool(torch.isfinite(logits).all()):
            raise RuntimeError("non-finite logits in sliding-window prediction (check the input image)")
        return logits


def to_nnunet_input(image_ras: np.ndarray, spacing_ras: Sequence[float]) -> tuple[np.ndarray, dict]:
    """What NibabelIO.read_images returns for a NIfTI holding this array: (1, z, y, x) float32, spacing z,y,x."""
    image = np.asarray(image_ras)
    if image.ndim != 3:
        raise ValueError(f"image_ras must be 3D (x, y, z), got shape {image.shape}")
    spacing = tuple(float(s) for s in spacing_ras)
    if len(spacing) != 3 or not all(math.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(f"spacing_ras must be three positive finite numbers, got {spacing_ras!r}")
    if not np.all(np.isfinite(image)):
        raise ValueError("image_ras contains NaN or infinite values")
    data = image.astype(np.float32).transpose((2, 1, 0))[None]
    return np.ascontiguousarray(data), {"spacing": [spacing[2], spacing[1], spacing[0]]}


def calibration_tiles(predictor: BatchedPredictor, images: Sequence[Path], *, limit: int) -> np.ndarray:
    """The network's inputs on the given images (N x C x tile, float32): each NIfTI read in canonical RAS+ as
    scoring reads it, nnU-Net's preprocessing, padding and sliding-window tiles; at most ``limit`` tiles, evenly
    spread over all of them (deterministic)."""
    import nibabel as nib
    from acvl_utils.cropping_and_padding.padding import pad_nd_image

    from benchmark.models.runtime.quantize import spread

    patch_size = tuple(predictor.configuration_manager.patch_size)
    preprocessor = predictor.configuration_manager.preprocessor_class(verbose=False)
    tiles: list[np.ndarray] = []
    for path in images:
        image = nib.as_closest_canonical(nib.load(str(path)))
        data, properties = to_nnunet_input(image.get_fdata(dtype=np.float32), image.header.get_zooms()[:3])
        preprocessed, _, _ = preprocessor.run_case_npy(data, None, properties, predictor.plans_manager,
                                                       predictor.configuration_manager, predictor.dataset_json)
        padded, _ = pad_nd_image(preprocessed, patch_size, "constant", {"value": 0}, True, None)
        tiles.extend(np.asarray(padded[slicer], dtype=np.float32)
                     for slicer in predictor._internal_get_sliding_window_slicers(padded.shape[1:]))
    if not tiles:
        raise ModelFolderError("int8 calibration: the calibration images gave no tiles")
    return np.stack([tiles[index] for index in spread(len(tiles), limit)])


def _check_plans_imports(plans: dict[str, Any], plans_path: Path) -> None:
    """Every configuration's network and layer classes must be on benchmark.models.network_allowlist (exact
    strings), checked before the checkpoint is read or anything the plans name is imported."""
    from benchmark.models.network_allowlist import refused_names

    configurations = plans.get("configurations") if isinstance(plans, dict) else None
    if not isinstance(configurations, dict):
        raise ModelFolderError(f"{plans_path}: configurations: missing or not a mapping")
    for name in configurations:
        try:
            config = PlansManager(plans).get_configuration(name)
            network_class = config.network_arch_class_name
            kwargs = config.network_arch_init_kwargs
            imported = [kwargs.get(key) for key in config.network_arch_init_kwargs_req_import]
        except (KeyError, TypeError, AttributeError, ValueError) as error:
            raise ModelFolderError(f"{plans_path}: configuration '{name}' is malformed ({error!r})") from error
        refused = refused_names(str(network_class), imported)
        if refused:
            raise UnsafeCheckpointError(
                f"{plans_path}: configuration '{name}' names {refused}, not on cordbench's list of nnU-Net network "
                "and layer classes (benchmark/models/network_allowlist.py); pass --trust-checkpoint only if you "
                "trust this model folder (building it runs whatever those names import)"
            )


def _normalise_folds(folds: int | str | Sequence[int | str]) -> tuple[int | str, ...]:
    if isinstance(folds, (int, str)):
        folds = (folds,)
    out: list[int | str] = []
    for fold in folds:
        out.append("all" if fold == "all" else int(fold))
    if not out:
        raise ValueError("folds must name at least one fold")
    return tuple(out)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ModelFolderError(f"{path}: missing (a model folder needs plans.json and dataset.json)")
    try:
        return json.loads(path.read_text())
    except ValueError as error:
        raise ModelFolderError(f"{path}: not valid JSON ({error})") from error


@dataclass
class NnunetModel:
    """A loaded nnU-Net model; predictions take and return arrays on the caller's canonical-RAS grid."""

    predictor: BatchedPredictor
    model_folder: Path
    checkpoints: tuple[Path, ...]
    configuration: str
    folds: tuple[int | str, ...]
    device: torch.device
    num_threads: int = 1
    calibration_sha256: frozenset[str] = frozenset()  # images the int8 ranges were calibrated on (never scored)

    @property
    def runtime(self) -> str:
        """The runtime running the network (``torch`` for folds that fell back; several folds: joined by '+')."""
        names = sorted({runner.name for runner in self.predictor.runners or []}) or ["torch"]
        return "+".join(names)

    @property
    def precision(self) -> str:
        """The precision the network runs in: int8 only where every fold's runner kept its int8 model."""
        runners = self.predictor.runners or []
        if self.predictor.precision == "int8":
            return "int8" if runners and all(runner.int8 for runner in runners) else "float32"
        return self.predictor.precision

    @property
    def runtime_fallbacks(self) -> list[str]:
        """Why a fold runs on PyTorch instead of the runtime asked for (empty when none fell back)."""
        return [runner.fallback_reason for runner in self.predictor.runners or [] if runner.fallback_reason]

    @property
    def foreground_channel(self) -> int:
        """Probability channel of the cord label (``labels["cord"]`` in dataset.json, else label 1)."""
        labels = self.predictor.dataset_json["labels"]
        return int(labels.get("cord", 1))

    def _to_nnunet(self, image_ras: np.ndarray, spacing_ras: Sequence[float]) -> tuple[np.ndarray, dict]:
        return to_nnunet_input(image_ras, spacing_ras)

    def predict_probabilities(self, image_ras: np.ndarray, spacing_ras: tuple[float, float, float]) -> np.ndarray:
        """Cord foreground probability (float32, same shape as ``image_ras``) for a canonical-RAS (x, y, z) array."""
        data, properties = self._to_nnunet(image_ras, spacing_ras)
        predictor = self.predictor
        preprocessor = predictor.configuration_manager.preprocessor_class(verbose=False)
        saved_threads = torch.get_num_threads()
        torch.set_num_threads(self.num_threads)
        try:
            preprocessed, _, properties = preprocessor.run_case_npy(
                data, None, properties, predictor.plans_manager, predictor.configuration_manager,
                predictor.dataset_json,
            )
            logits = predictor.predict_logits_from_preprocessed_data(torch.from_numpy(preprocessed)).cpu()
            _, probabilities = convert_predicted_logits_to_segmentation_with_correct_shape(
                logits, predictor.plans_manager, predictor.configuration_manager, predictor.label_manager,
                properties, return_probabilities=True, num_threads_torch=self.num_threads,
            )
        finally:
            torch.set_num_threads(saved_threads)
        foreground = np.asarray(probabilities[self.foreground_channel], dtype=np.float32)
        return np.ascontiguousarray(foreground.transpose((2, 1, 0)))

    def predict_many(
        self, cases: Iterable[tuple[np.ndarray, tuple[float, float, float]]]
    ) -> Iterator[np.ndarray]:
        """Probabilities for each (image_ras, spacing_ras) in turn, with the model loaded once."""
        for image_ras, spacing_ras in cases:
            yield self.predict_probabilities(image_ras, spacing_ras)


def nnunet_reference_predictor(
    model: NnunetModel, *, use_mirroring: bool = True, tile_step_size: float = 0.5
) -> nnUNetPredictor:
    """nnU-Net's own ``nnUNetPredictor`` (its defaults unless overridden) on the same network and weights.

    Used to validate and benchmark :class:`BatchedPredictor`; its ``predict_from_files_sequential`` reads
    NIfTI files through NibabelIO exactly as ``nnUNetv2_predict`` does.
    """
    ours = model.predictor
    reference = nnUNetPredictor(
        tile_step_size=tile_step_size, use_gaussian=True, use_mirroring=use_mirroring,
        perform_everything_on_device=model.device.type == "cuda", device=model.device, verbose=False,
        verbose_preprocessing=False, allow_tqdm=False,
    )
    reference.manual_initialization(
        ours.network, ours.plans_manager, ours.configuration_manager, ours.list_of_parameters, ours.dataset_json,
        ours.trainer_name, ours.allowed_mirroring_axes,
    )
    return reference


def load_model(
    model_folder: Path,
    *,
    checkpoint: str = "checkpoint_final.pth",
    folds: int | str | Sequence[int | str] = "all",
    device: str | None = None,
    trust_checkpoint: bool = False,
    use_mirroring: bool = False,
    tile_step_size: float = 0.5,
    tile_batch_size: int | None = None,
    num_threads: int | None = None,
    precision: Precision = "float32",
    runtime: str = "auto",
    runtime_cache_dir: Path | None = None,
    calibration_images: Sequence[Path] = (),
) -> NnunetModel:
    """Load a model folder written by nnU-Net training (``.../Trainer__Plans__configuration``).

    ``folds`` follows nnU-Net: ``"all"`` is the ``fold_all`` model; several folds are ensembled (logits
    averaged). Checkpoints are loaded with ``weights_only=True``; one that needs full unpickling raises
    :class:`UnsafeCheckpointError` unless ``trust_checkpoint``. ``use_mirroring`` enables nnU-Net's test-time
    mirroring (2**n_axes forwards per tile; nnU-Net's default is on, cordbench's is off). ``num_threads`` is
    the thread count of the runtime, of torch and of nnU-Net's resampling while predicting (default: the cores
    available to this process; torch's count is restored afterwards).

    ``runtime`` (``auto|openvino|onnxruntime|torch``) runs the network: ``auto`` is PyTorch where this process's CPU
    kernels are pinned (benchmark.kernels), else OpenVINO on CPU when installed, else ONNX Runtime, else PyTorch,
    and PyTorch on CUDA. ONNX runtimes use the network exported
    once per fold into ``runtime_cache_dir`` (default: ``$XDG_CACHE_HOME/cordbench/runtime``, else
    ``~/.cache/cordbench/runtime``; scoring uses ``runtime/`` beside its prediction cache), verified against PyTorch before use (benchmark.models.runtime).
    ``precision="bfloat16"`` is used only when the CPU computes bfloat16 natively, else ignored with a warning.
    ``precision="int8"`` (CPU, OpenVINO or ONNX Runtime) quantizes each fold with ONNX Runtime's quantize_static,
    calibrated on ``calibration_images`` (NIfTI files of TRAINING cases, required); on CUDA it is ignored with a
    warning. The model's ``calibration_sha256`` lists their checksums (scoring refuses to predict one of them).
    """
    model_folder = Path(model_folder)
    plans_path = model_folder / "plans.json"
    plans = _read_json(plans_path)
    if not trust_checkpoint:
        _check_plans_imports(plans, plans_path)
    dataset_json = _read_json(model_folder / "dataset.json")
    fold_list = _normalise_folds(folds)
    torch_device = resolve_device(device)
    threads = num_threads if num_threads is not None else default_threads()
    if threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {threads}")
    selected_runtime = select_runtime(runtime, torch_device.type, pinned_kernels=kernels.current().pinned)
    precision = _fenced_precision(precision, torch_device, selected_runtime)
    if precision == "int8" and not calibration_images:
        raise CalibrationError("precision int8 needs calibration images: NIfTI files of the model's training cases")

    paths = tuple(model_folder / f"fold_{fold}" / checkpoint for fold in fold_list)
    loaded = [load_checkpoint_dict(path, trust_checkpoint=trust_checkpoint) for path in paths]
    configuration = loaded[0]["init_args"]["configuration"]
    for path, ckpt in zip(paths, loaded):
        if ckpt["init_args"]["configuration"] != configuration:
            raise ModelFolderError(f"{path}: configuration {ckpt['init_args']['configuration']!r} differs from "
                                   f"{paths[0]}'s {configuration!r}")
    if configuration not in plans["configurations"]:
        raise ModelFolderError(f"{plans_path}: no configuration {configuration!r} (named by {paths[0]})")

    plans_manager = PlansManager(plans)
    configuration_manager = plans_manager.get_configuration(configuration)
    label_manager = plans_manager.get_label_manager(dataset_json)
    network = get_network_from_plans(
        configuration_manager.network_arch_class_name,
        configuration_manager.network_arch_init_kwargs,
        configuration_manager.network_arch_init_kwargs_req_import,
        determine_num_input_channels(plans_manager, configuration_manager, dataset_json),
        label_manager.num_segmentation_heads,
        allow_init=False,
        deep_supervision=False,
    )
    parameters = [ckpt["network_weights"] for ckpt in loaded]
    try:
        network.load_state_dict(parameters[0])
    except RuntimeError as error:
        raise ModelFolderError(f"{paths[0]}: weights do not fit the network in {plans_path}: {error}") from error
    network.eval()

    mirror_axes = loaded[0].get("inference_allowed_mirroring_axes")
    predictor = BatchedPredictor(
        tile_step_size=tile_step_size, use_gaussian=True, use_mirroring=use_mirroring,
        perform_everything_on_device=torch_device.type == "cuda", device=torch_device, verbose=False, verbose_preprocessing=False,
        allow_tqdm=False, tile_batch_size=tile_batch_size, precision=precision,
    )
    predictor.manual_initialization(
        network.to(torch_device), plans_manager, configuration_manager, parameters, dataset_json,
        loaded[0]["trainer_name"], tuple(mirror_axes) if mirror_axes is not None else None,
    )
    in_channels = determine_num_input_channels(plans_manager, configuration_manager, dataset_json)
    saved_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        int8_tiles = (calibration_tiles(predictor, [Path(path) for path in calibration_images],
                                        limit=MAX_CALIBRATION_TILES) if precision == "int8" else None)
        runners = []
        for path, params in zip(paths, parameters):
            network.load_state_dict(params)
            runners.append(VerifiedRunner(
                network, runtime=selected_runtime, device=torch_device, threads=threads,
                bfloat16=precision == "bfloat16", weights_sha256=weights_sha256(params),
                tile_shape=tuple(configuration_manager.patch_size), in_channels=in_channels,
                cache_dir=_runtime_cache_dir(runtime_cache_dir, path), label=str(path), int8_tiles=int8_tiles,
            ))
        network.load_state_dict(parameters[0])
    finally:
        torch.set_num_threads(saved_threads)
    predictor.runners = runners
    from benchmark.io import sha256_file

    return NnunetModel(
        predictor=predictor, model_folder=model_folder, checkpoints=paths, configuration=configuration,
        folds=fold_list, device=torch_device, num_threads=threads,
        calibration_sha256=frozenset(sha256_file(Path(path)) for path in calibration_images)
        if precision == "int8" else frozenset(),
    )


def _fenced_precision(precision: Precision, device: torch.device, runtime: str) -> Precision:
    """bfloat16 only where it is native and the runtime has it, int8 only on an ONNX runtime on CPU; otherwise
    float32, saying why."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "int8":
        if device.type != "cpu":
            warnings.warn("precision int8 ignored on CUDA: nnU-Net's float16 autocast applies", UserWarning,
                          stacklevel=3)
            return "float32"
        if runtime == "torch":
            raise RuntimeSelectionError("precision int8 runs on an ONNX runtime (openvino or onnxruntime), not on "
                                        "PyTorch: use --runtime openvino, onnxruntime or auto")
        return precision
    if precision == "float32" or device.type != "cpu":
        return precision
    native, why = native_bf16()
    if not native:
        warnings.warn(f"precision bfloat16 ignored, running float32: {why}", UserWarning, stacklevel=3)
        return "float32"
    if runtime == "onnxruntime":
        warnings.warn("precision bfloat16 ignored, running float32: ONNX Runtime's CPU provider has no bfloat16 "
                      "convolutions", UserWarning, stacklevel=3)
        return "float32"
    logger.info("using bfloat16 on %s: %s", runtime, why)
    return precision


def _runtime_cache_dir(requested: Path | None, checkpoint: Path) -> Path:
    """Where exported networks are cached: the caller's folder, else the user cache. Never inside the model folder:
    imported and extracted model folders are re-checked file by file, and a file added there is refused as planted
    (benchmark.models.packaging.verify_extracted); the key (weights sha256 + versions) makes a shared cache safe."""
    if requested is not None:
        return Path(requested)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cordbench" / "runtime"
