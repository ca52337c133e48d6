"""Train one nnU-Net model on one raw dataset: plan/preprocess (skipped when done), then CordbenchTrainer.

``train_model`` is import-safe and spawns nnU-Net's worker processes (planning, preprocessing, optionally data
augmentation) with the ``spawn`` start method, so callers' entry points need an ``if __name__ == "__main__"``
guard. Data augmentation runs in-process by default (``nnUNet_n_proc_DA=0``): on a 2-core machine worker
processes only compete with the training step for the same cores, and in-process augmentation makes a run with
a given seed repeatable (see docs/nnunet.md for the measurements).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from benchmark import kernels
from benchmark.io import atomic_write_json, sha256_file
from benchmark.data.registry import Augmentation
from benchmark.training.nnunet.plans import (
    PLANS_IDENTIFIER,
    QUICK_CONFIGURATION,
    PlanResult,
    nnunet_environment,
    plan_and_preprocess,
)
from benchmark.training.nnunet.trainer import (
    CHECKPOINT_BEST,
    CHECKPOINT_FINAL,
    CHECKPOINT_LATEST,
    DEFAULT_CPU_THREADS,
    TRAINERS,
    UnsafeCheckpointError,
    load_checkpoint_dict,
    weights_sha256,
)

# quick profile: 40 epochs x 12 iterations = 480 training iterations of batch 8 patches (see docs/nnunet.md:
# ~155 s on gmchallenge T2*w and ~70 s on the synthetic aggregated dataset with 1 CPU thread).
QUICK_NUM_EPOCHS = 40
QUICK_ITERATIONS_PER_EPOCH = 12
QUICK_VAL_ITERATIONS = 2
# full profile: nnU-Net's defaults.
FULL_NUM_EPOCHS = 1000
FULL_ITERATIONS_PER_EPOCH = 250
FULL_VAL_ITERATIONS = 50


@dataclass(frozen=True)
class TrainedModel:
    """A finished training run and everything needed to load and identify it."""

    model_folder: Path
    checkpoint: Path
    checkpoint_sha256: str
    weights_sha256: str
    plans_path: Path
    dataset_json_path: Path
    configuration: str
    folds: tuple[int | str, ...]
    trainer_name: str
    training_seconds: float
    epochs: int
    iterations_per_epoch: int
    final_pseudo_dice: float | None
    final_ema_pseudo_dice: float | None
    device: str
    num_threads: int
    seed: int
    inputs_sha256: str
    cpu_kernels: str = "unrecorded"  # benchmark.kernels: pinned-avx2, native-<isa>, unpinned-<isa>, or cuda


def resolve_device(device: str | None) -> torch.device:
    """``cuda`` when available and not overridden, else ``cpu``; asking for an absent CUDA device is an error."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    chosen = torch.device(device)
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device '{device}' requested but torch.cuda.is_available() is False on this machine")
    return chosen


@contextmanager
def _training_process_settings(device: torch.device, augmentation_workers: int, num_threads: int) -> Iterator[None]:
    """nnUNet_n_proc_DA and torch CPU threads for the duration of a training run, restored afterwards."""
    saved_env = os.environ.get("nnUNet_n_proc_DA")
    saved_threads = torch.get_num_threads()
    os.environ["nnUNet_n_proc_DA"] = str(augmentation_workers)
    if device.type == "cpu":
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        if saved_env is None:
            os.environ.pop("nnUNet_n_proc_DA", None)
        else:
            os.environ["nnUNet_n_proc_DA"] = saved_env
        torch.set_num_threads(saved_threads)


def _run_length(
    profile: str, num_epochs: int | None, iterations_per_epoch: int | None, val_iterations: int | None
) -> tuple[int, int, int]:
    if profile == "quick":
        defaults = (QUICK_NUM_EPOCHS, QUICK_ITERATIONS_PER_EPOCH, QUICK_VAL_ITERATIONS)
    elif profile == "full":
        defaults = (FULL_NUM_EPOCHS, FULL_ITERATIONS_PER_EPOCH, FULL_VAL_ITERATIONS)
    else:
        raise ValueError(f"profile must be 'quick' or 'full', got {profile!r}")
    return (
        num_epochs if num_epochs is not None else defaults[0],
        iterations_per_epoch if iterations_per_epoch is not None else defaults[1],
        val_iterations if val_iterations is not None else defaults[2],
    )


def _parse_fold(fold: int | str) -> int | str:
    if fold == "all":
        return "all"
    try:
        return int(fold)
    except (TypeError, ValueError):
        raise ValueError(f"fold must be 'all' or an integer, got {fold!r}") from None


def _resumable_checkpoint(fold_folder: Path, settings: dict[str, Any], inputs_sha256: str,
                          cpu_kernels: str) -> Path | None:
    """The checkpoint to continue from (final, latest, best, as nnU-Net does), or None to start afresh.

    A checkpoint is only reused when it was written with the same run settings, training inputs and CPU kernels
    (a run begun with pinned kernels and continued with others would be neither); a checkpoint that needs full
    unpickling is never loaded here (it raises UnsafeCheckpointError).
    """
    for name in (CHECKPOINT_FINAL, CHECKPOINT_LATEST, CHECKPOINT_BEST):
        path = fold_folder / name
        if not path.is_file():
            continue
        checkpoint = load_checkpoint_dict(path)
        stored = checkpoint.get("cordbench", {}).get("run_settings")
        record = _read_run_record(fold_folder)
        if (stored == settings and record.get("inputs_sha256") == inputs_sha256
                and _same_kernels(record.get("cpu_kernels"), cpu_kernels)):
            return path
        return None
    return None


def _same_kernels(stored: str | None, now: str) -> bool:
    """Can a run recorded with ``stored`` kernels continue with ``now``? The same label, or native on both sides
    (native kernels differ between hosts anyway: a requeued job may land on another CPU)."""
    return stored == now or (stored or "").startswith("native-") and now.startswith("native-")


def _read_run_record(fold_folder: Path) -> dict[str, Any]:
    try:
        return json.loads((fold_folder / "cordbench_run.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _final_dice(logging: dict[str, Any]) -> tuple[float | None, float | None]:
    dice = logging.get("mean_fg_dice") or []
    ema = logging.get("ema_fg_dice") or []
    return (float(dice[-1]) if dice else None, float(ema[-1]) if ema else None)


def _training_seconds(logging: dict[str, Any]) -> float:
    starts = logging.get("epoch_start_timestamps") or []
    ends = logging.get("epoch_end_timestamps") or []
    return float(sum(end - start for start, end in zip(starts, ends)))


def train_model(
    raw_dataset_folder: Path,
    work_dir: Path,
    *,
    profile: Literal["quick", "full"] = "quick",
    configuration: str | None = None,
    fold: int | str = "all",
    num_epochs: int | None = None,
    iterations_per_epoch: int | None = None,
    device: str | None = None,
    seed: int = 0,
    resume: bool = True,
    num_processes: int | None = None,
    val_iterations_per_epoch: int | None = None,
    augmentation_workers: int = 0,
    num_threads: int | None = None,
    augmentation: Augmentation = "default",
) -> TrainedModel:
    """Plan, preprocess and train one nnU-Net model on ``raw_dataset_folder`` (``.../DatasetXXX_Name``).

    ``work_dir`` receives ``nnUNet_preprocessed/`` and ``nnUNet_results/``. Planning/preprocessing is skipped when
    already done for identical inputs. With ``resume`` an interrupted run continues from its latest checkpoint
    (and a finished one is returned as is) provided the run settings match; otherwise training starts afresh.
    ``augmentation_workers`` is nnU-Net's ``nnUNet_n_proc_DA`` (0 = in-process and reproducible).
    ``num_threads`` is torch's CPU thread count (default :data:`DEFAULT_CPU_THREADS`; results depend on it).
    ``augmentation``: ``default`` (nnU-Net's) or ``da5`` (nnU-Net's stronger ``nnUNetTrainerDA5`` variant); each
    trains in its own nnU-Net results folder, named after the trainer class.
    """
    if augmentation not in TRAINERS:
        raise ValueError(f"augmentation must be one of {', '.join(TRAINERS)}, got {augmentation!r}")
    trainer_class = TRAINERS[augmentation]
    work_dir = Path(work_dir).resolve()
    preprocessed_root = work_dir / "nnUNet_preprocessed"
    results_root = work_dir / "nnUNet_results"
    fold = _parse_fold(fold)
    torch_device = resolve_device(device)
    threads = num_threads if num_threads is not None else DEFAULT_CPU_THREADS
    if threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {threads}")
    cpu_kernels = torch_device.type if torch_device.type != "cpu" else kernels.current().label
    epochs, iterations, val_iterations = _run_length(profile, num_epochs, iterations_per_epoch,
                                                     val_iterations_per_epoch)

    planned: PlanResult = plan_and_preprocess(
        raw_dataset_folder, preprocessed_root, profile=profile, configuration=configuration,
        num_processes=num_processes,
    )
    plans = json.loads(planned.plans_path.read_text())
    dataset_json = json.loads(planned.dataset_json_path.read_text())
    model_folder = results_root / planned.dataset_name / f"{trainer_class.__name__}__{PLANS_IDENTIFIER}__{planned.configuration}"
    fold_folder = model_folder / f"fold_{fold}"
    settings = {
        "num_epochs": epochs,
        "iterations_per_epoch": iterations,
        "val_iterations_per_epoch": val_iterations,
        "seed": seed,
        "configuration": planned.configuration,
    }
    checkpoint_to_resume = (_resumable_checkpoint(fold_folder, settings, planned.inputs_sha256, cpu_kernels)
                            if resume else None)
    if checkpoint_to_resume is None and fold_folder.exists():
        shutil.rmtree(fold_folder)

    with nnunet_environment(raw=Path(raw_dataset_folder).resolve().parent, preprocessed=preprocessed_root,
                            results=results_root), \
            _training_process_settings(torch_device, augmentation_workers, threads):
        plans["continue_training"] = checkpoint_to_resume is not None
        trainer = trainer_class(plans=plans, configuration=planned.configuration, fold=fold,
                                dataset_json=dataset_json, device=torch_device)
        trainer.configure_run(num_epochs=epochs, iterations_per_epoch=iterations,
                              val_iterations_per_epoch=val_iterations, seed=seed)
        atomic_write_json(fold_folder / "cordbench_run.json",
                          {"inputs_sha256": planned.inputs_sha256, "run_settings": settings, "num_threads": threads,
                           "augmentation_workers": augmentation_workers, "cpu_kernels": cpu_kernels,
                           "cpu_kernels_note": kernels.current().note if torch_device.type == "cpu" else ""})
        if checkpoint_to_resume is not None:
            trainer.load_checkpoint(str(checkpoint_to_resume))
        if trainer.current_epoch < trainer.num_epochs or not (fold_folder / CHECKPOINT_FINAL).is_file():
            trainer.run_training()

    final = fold_folder / CHECKPOINT_FINAL
    checkpoint = load_checkpoint_dict(final)
    dice, ema = _final_dice(checkpoint["logging"])
    return TrainedModel(
        model_folder=model_folder,
        checkpoint=final,
        checkpoint_sha256=sha256_file(final),
        weights_sha256=weights_sha256(checkpoint["network_weights"]),
        plans_path=model_folder / "plans.json",
        dataset_json_path=model_folder / "dataset.json",
        configuration=planned.configuration,
        folds=(fold,),
        trainer_name=trainer_class.__name__,
        training_seconds=_training_seconds(checkpoint["logging"]),
        epochs=int(checkpoint["current_epoch"]),
        iterations_per_epoch=iterations,
        final_pseudo_dice=dice,
        final_ema_pseudo_dice=ema,
        device=str(torch_device),
        num_threads=threads,
        seed=seed,
        inputs_sha256=planned.inputs_sha256,
        cpu_kernels=cpu_kernels,
    )


__all__ = ["TrainedModel", "train_model", "resolve_device", "UnsafeCheckpointError", "QUICK_CONFIGURATION"]
