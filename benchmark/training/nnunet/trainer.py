"""cordbench's nnU-Net trainer: short, seeded, resumable runs whose checkpoints load with ``weights_only=True``.

``CordbenchTrainer`` subclasses ``nnUNetTrainer`` and changes only:

- run length (epochs, iterations per epoch, validation iterations) via :meth:`CordbenchTrainer.configure_run`;
- seeding of ``random``, ``numpy`` and ``torch`` before the network is built, and saving/restoring those RNG
  states in every checkpoint so an interrupted run continues on the same random stream (bit-identical to an
  uninterrupted run when data augmentation runs in-process, ``nnUNet_n_proc_DA=0``);
- checkpointing every epoch (``save_every = 1``), written atomically, with numpy scalars converted to Python
  numbers so that ``torch.load(..., weights_only=True)`` accepts the file;
- :meth:`load_checkpoint` refuses checkpoints that need full unpickling (:class:`UnsafeCheckpointError`);
- the large ``progress.png`` is drawn once at the end of training instead of after every epoch.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from nnunetv2.training.logging.nnunet_logger import MetaLogger
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.training.nnUNetTrainer.variants.data_augmentation.nnUNetTrainerDA5 import nnUNetTrainerDA5
from torch._dynamo import OptimizedModule

from benchmark import kernels
from benchmark.errors import CordbenchError
from benchmark.io import atomic_write_bytes

# torch intra-op threads on CPU unless the caller says otherwise. One thread: on the shared 2-core machine a
# training step took 0.9 s with 1 thread but 6-8 s with 2 while another process was busy (OpenMP threads wait
# for each other), and results depend on the thread count, so a fixed count keeps runs reproducible.
DEFAULT_CPU_THREADS = 1

CHECKPOINT_FINAL = "checkpoint_final.pth"
CHECKPOINT_LATEST = "checkpoint_latest.pth"
CHECKPOINT_BEST = "checkpoint_best.pth"


class UnsafeCheckpointError(CordbenchError, RuntimeError):
    """A checkpoint cannot be loaded with ``torch.load(weights_only=True)``: it needs arbitrary unpickling."""


def load_checkpoint_dict(
    path: Path, *, trust_checkpoint: bool = False, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Load a checkpoint dict; only tensors and plain Python containers unless ``trust_checkpoint``.

    Raises :class:`UnsafeCheckpointError` naming the file when it contains other objects (anything that would
    run code while unpickling), and ``FileNotFoundError`` when it does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=not trust_checkpoint)
    except pickle.UnpicklingError as error:
        first_line = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise UnsafeCheckpointError(
            f"{path}: refusing to load, the checkpoint contains objects that torch.load(weights_only=True) "
            f"does not allow ({first_line}). Pass trust_checkpoint=True only if you trust its source."
        ) from error
    if not isinstance(checkpoint, dict) or "network_weights" not in checkpoint:
        raise ValueError(f"{path}: not an nnU-Net checkpoint (no 'network_weights' entry)")
    return checkpoint


def to_weights_only_safe(value: Any, where: str = "checkpoint") -> Any:
    """Return ``value`` with numpy scalars/arrays turned into Python numbers/lists (tensors are kept).

    Raises TypeError naming the offending key for anything else that ``weights_only`` loading would reject.
    """
    # np.float64 subclasses float, so numpy scalars must be caught before the plain Python types
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor, torch.device, torch.dtype)):
        return value
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return {key: to_weights_only_safe(item, f"{where}[{key!r}]") for key, item in value.items()}
    if isinstance(value, tuple):
        return tuple(to_weights_only_safe(item, f"{where}[{i}]") for i, item in enumerate(value))
    if isinstance(value, list):
        return [to_weights_only_safe(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise TypeError(f"{where}: {type(value).__name__} cannot be stored in a weights_only checkpoint")


def weights_sha256(state_dict: Mapping[str, torch.Tensor]) -> str:
    """Hash of a network's weights (names, dtypes, shapes, bytes) - unlike the checkpoint file's hash it does not
    depend on timestamps or optimizer state, so two runs with the same seed on the same machine give the same."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.numpy().tobytes() if tensor.dtype != torch.bfloat16 else tensor.float().numpy().tobytes())
    return digest.hexdigest()


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators (nnU-Net's data loading uses the global ones)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """The global RNG states as weights_only-safe values."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, list(internal), gauss],
        "numpy": [name, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore the states produced by :func:`rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])


class _FinalPlotLogger(MetaLogger):
    """nnU-Net's logger, but ``progress.png`` (a 3000x5400 px figure) is only drawn when ``plot_now`` is set."""

    plot_now = False

    def plot_progress_png(self, output_folder: str) -> None:
        if self.plot_now:
            super().plot_progress_png(output_folder)


class CordbenchTrainer(nnUNetTrainer):
    """nnU-Net's default trainer with configurable run length, seeding, per-epoch safe checkpoints.

    The constructor signature must stay identical to ``nnUNetTrainer`` (nnU-Net records it for checkpoints);
    call :meth:`configure_run` right after construction, before ``initialize``/``load_checkpoint``.
    """

    def __init__(
        self,
        plans: dict,
        configuration: str,
        fold: int,
        dataset_json: dict,
        device: torch.device = torch.device("cuda"),
    ):
        resume = bool(plans.get("continue_training", False))
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.logger = _FinalPlotLogger(self.output_folder, resume)
        self.save_every = 1
        self.seed = 0
        self._rng_state_to_restore: Mapping[str, Any] | None = None
        kernel_note = ""
        if self.device.type == "cpu":
            setting = kernels.current()
            kernel_note = f", CPU kernels {setting.label} ({setting.note})"
        self.print_to_log_file(f"cordbench: training on device {self.device}{kernel_note}", also_print_to_console=True)

    def configure_run(
        self,
        *,
        num_epochs: int,
        iterations_per_epoch: int,
        val_iterations_per_epoch: int,
        seed: int,
    ) -> None:
        """Set the run length and seed all generators; must be called before the network is built."""
        if self.was_initialized:
            raise RuntimeError("configure_run must be called before initialize()/load_checkpoint()")
        for name, number in (("num_epochs", num_epochs), ("iterations_per_epoch", iterations_per_epoch),
                             ("val_iterations_per_epoch", val_iterations_per_epoch)):
            if number < 1:
                raise ValueError(f"{name} must be >= 1, got {number}")
        self.num_epochs = int(num_epochs)
        self.num_iterations_per_epoch = int(iterations_per_epoch)
        self.num_val_iterations_per_epoch = int(val_iterations_per_epoch)
        self.seed = int(seed)
        seed_everything(self.seed)
        self.print_to_log_file(
            f"cordbench run: {self.num_epochs} epochs x {self.num_iterations_per_epoch} iterations "
            f"(+{self.num_val_iterations_per_epoch} validation iterations), seed {self.seed}"
        )

    def run_settings(self) -> dict[str, Any]:
        """The settings a checkpoint must share with the current run for training to resume from it."""
        return {
            "num_epochs": self.num_epochs,
            "iterations_per_epoch": self.num_iterations_per_epoch,
            "val_iterations_per_epoch": self.num_val_iterations_per_epoch,
            "seed": self.seed,
            "configuration": self.configuration_name,
        }

    def _unwrapped_network(self) -> torch.nn.Module:
        module = self.network.module if self.is_ddp else self.network
        return module._orig_mod if isinstance(module, OptimizedModule) else module

    def save_checkpoint(self, filename: str) -> None:
        if self.local_rank != 0:
            return
        if self.disable_checkpointing:
            self.print_to_log_file("No checkpoint written, checkpointing is disabled")
            return
        checkpoint = {
            "network_weights": self._unwrapped_network().state_dict(),
            "optimizer_state": self.optimizer.state_dict(),
            "grad_scaler_state": self.grad_scaler.state_dict() if self.grad_scaler is not None else None,
            "logging": self.logger.get_checkpoint(),
            "_best_ema": self._best_ema,
            "current_epoch": self.current_epoch + 1,
            "init_args": self.my_init_kwargs,
            "trainer_name": self.__class__.__name__,
            "inference_allowed_mirroring_axes": self.inference_allowed_mirroring_axes,
            "cordbench": {"run_settings": self.run_settings(), "rng_state": rng_state()},
        }
        buffer = io.BytesIO()
        torch.save(to_weights_only_safe(checkpoint), buffer)
        atomic_write_bytes(Path(filename), buffer.getvalue())

    def load_checkpoint(self, filename_or_checkpoint: dict | str) -> None:
        if not self.was_initialized:
            self.initialize()
        if isinstance(filename_or_checkpoint, (str, Path)):
            checkpoint = load_checkpoint_dict(Path(filename_or_checkpoint), map_location=self.device)
        else:
            checkpoint = filename_or_checkpoint
        state = {}
        own_keys = self._unwrapped_network().state_dict().keys()
        for key, value in checkpoint["network_weights"].items():
            if key not in own_keys and key.startswith("module."):
                key = key[len("module."):]
            state[key] = value
        self.my_init_kwargs = checkpoint["init_args"]
        self.current_epoch = checkpoint["current_epoch"]
        self.logger.load_checkpoint(checkpoint["logging"])
        self._best_ema = checkpoint["_best_ema"]
        self.inference_allowed_mirroring_axes = checkpoint.get(
            "inference_allowed_mirroring_axes", self.inference_allowed_mirroring_axes
        )
        self._unwrapped_network().load_state_dict(state)
        self.optimizer.load_state_dict(checkpoint["optimizer_state"])
        if self.grad_scaler is not None and checkpoint.get("grad_scaler_state") is not None:
            self.grad_scaler.load_state_dict(checkpoint["grad_scaler_state"])
        self._rng_state_to_restore = checkpoint.get("cordbench", {}).get("rng_state")
        self.print_to_log_file(f"cordbench: resumed at epoch {self.current_epoch}")

    def on_train_start(self) -> None:
        super().on_train_start()
        # Starting the data loaders draws warm-up batches; restoring afterwards puts the generators exactly where
        # the interrupted run was at the start of this epoch.
        if self._rng_state_to_restore is not None:
            set_rng_state(self._rng_state_to_restore)
            self._rng_state_to_restore = None

    def on_train_end(self) -> None:
        self.logger.plot_now = True
        try:
            self.logger.plot_progress_png(self.output_folder)
        finally:
            self.logger.plot_now = False
        super().on_train_end()


class CordbenchTrainerDA5(CordbenchTrainer):
    """``CordbenchTrainer`` with the stronger data augmentation of nnU-Net's own ``nnUNetTrainerDA5`` variant.

    Its two augmentation methods are taken as they are from nnunetv2 (rotations up to 180 degrees in 2D, mirroring
    on both axes, wider scaling, additive brightness gradients, local gamma, sharpening, median filter, blank
    rectangles and more); everything else is ``CordbenchTrainer``. It costs about 15% more time per iteration.
    """

    configure_rotation_dummyDA_mirroring_and_inital_patch_size = (
        nnUNetTrainerDA5.configure_rotation_dummyDA_mirroring_and_inital_patch_size
    )
    get_training_transforms = staticmethod(nnUNetTrainerDA5.get_training_transforms)


#: ``--augmentation`` choices -> trainer class.
TRAINERS: dict[str, type[CordbenchTrainer]] = {"default": CordbenchTrainer, "da5": CordbenchTrainerDA5}
