"""A tiny nnU-Net results folder written directly (no training): plans, dataset.json and seeded weights.

Laid out as nnU-Net writes it (``nnUNet_results/DatasetXXX_Name/Trainer__Plans__Config/fold_N/...``) so that
nnU-Net's own exporter (``nnunetv2.model_sharing.model_export.export_pretrained_model``) can pack it. The network is
a two-stage 2D PlainConvUNet with random (seeded) weights: the tests compare an imported model's masks with the
same folder loaded directly, which needs no training. ``stock_checkpoint=True`` stores numpy values in the
checkpoint's logging, as nnU-Net's own trainer does, so that ``torch.load(weights_only=True)`` refuses it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

CONFIGURATION = "2d"
TRAINER = "nnUNetTrainer"
PLANS = "nnUNetPlans"


def tiny_plans(dataset_name: str) -> dict:
    architecture = {
        "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
        "arch_kwargs": {
            "n_stages": 2, "features_per_stage": [4, 8], "conv_op": "torch.nn.modules.conv.Conv2d",
            "kernel_sizes": [[3, 3], [3, 3]], "strides": [[1, 1], [2, 2]], "n_conv_per_stage": [1, 1],
            "n_conv_per_stage_decoder": [1], "conv_bias": True,
            "norm_op": "torch.nn.modules.instancenorm.InstanceNorm2d", "norm_op_kwargs": {"eps": 1e-05, "affine": True},
            "dropout_op": None, "dropout_op_kwargs": None, "nonlin": "torch.nn.LeakyReLU",
            "nonlin_kwargs": {"inplace": True},
        },
        "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
    }
    resampling = {"is_seg": False, "order": 1, "order_z": 0, "force_separate_z": None}
    configuration = {
        "data_identifier": f"{PLANS}_{CONFIGURATION}", "preprocessor_name": "DefaultPreprocessor", "batch_size": 2,
        "patch_size": [32, 32], "median_image_size_in_voxels": [32.0, 32.0], "spacing": [1.0, 1.0],
        "normalization_schemes": ["ZScoreNormalization"], "use_mask_for_norm": [False],
        "resampling_fn_data": "resample_data_or_seg_to_shape", "resampling_fn_data_kwargs": resampling,
        "resampling_fn_seg": "resample_data_or_seg_to_shape", "resampling_fn_seg_kwargs": {**resampling, "is_seg": True},
        "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
        "resampling_fn_probabilities_kwargs": resampling, "architecture": architecture, "batch_dice": True,
    }
    return {
        "dataset_name": dataset_name, "plans_name": PLANS, "original_median_spacing_after_transp": [3.0, 1.0, 1.0],
        "original_median_shape_after_transp": [8, 32, 32], "image_reader_writer": "NibabelIO",
        "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2], "experiment_planner_used": "ExperimentPlanner",
        "label_manager": "LabelManager", "configurations": {CONFIGURATION: configuration},
        "foreground_intensity_properties_per_channel": {"0": {"max": 400.0, "mean": 300.0, "median": 300.0, "min": 200.0,
                                                              "percentile_00_5": 210.0, "percentile_99_5": 390.0,
                                                              "std": 20.0}},
    }


def write_tiny_results(results_root: Path, *, dataset: str = "Dataset991_TinyResults", fold: int | str = 0,
                       seed: int = 0, stock_checkpoint: bool = False) -> Path:
    """Write ``results_root/<dataset>/nnUNetTrainer__nnUNetPlans__2d`` with one fold; return that model folder."""
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    folder = Path(results_root) / dataset / f"{TRAINER}__{PLANS}__{CONFIGURATION}"
    fold_dir = folder / ("fold_all" if fold == "all" else f"fold_{fold}")
    (fold_dir / "validation").mkdir(parents=True)
    plans = tiny_plans(dataset)
    dataset_json = {"channel_names": {"0": "MRI"}, "labels": {"background": 0, "cord": 1}, "numTraining": 1,
                    "file_ending": ".nii.gz", "overwrite_image_reader_writer": "NibabelIO"}
    (folder / "plans.json").write_text(json.dumps(plans, indent=1))
    (folder / "dataset.json").write_text(json.dumps(dataset_json, indent=1))
    (folder / "dataset_fingerprint.json").write_text(json.dumps({"spacings": [[3.0, 1.0, 1.0]]}))
    torch.manual_seed(seed)
    arch = plans["configurations"][CONFIGURATION]["architecture"]
    network = get_network_from_plans(arch["network_class_name"], arch["arch_kwargs"], arch["_kw_requires_import"],
                                     1, 2, allow_init=True, deep_supervision=False)
    ema = np.float64(0.5) if stock_checkpoint else 0.5
    checkpoint = {
        "network_weights": network.state_dict(), "optimizer_state": None, "grad_scaler_state": None,
        "logging": {"ema_fg_dice": [ema], "mean_fg_dice": [ema]}, "_best_ema": ema, "current_epoch": 1,
        "init_args": {"plans": plans, "configuration": CONFIGURATION, "fold": fold, "dataset_json": dataset_json},
        "trainer_name": TRAINER, "inference_allowed_mirroring_axes": (0, 1),
    }
    torch.save(checkpoint, fold_dir / "checkpoint_final.pth")
    # what nnU-Net's training leaves next to the weights (its exporter packs both)
    (fold_dir / "progress.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (fold_dir / "validation" / "summary.json").write_text(json.dumps({"foreground_mean": {"Dice": 0.5}}))
    return folder


def export_with_nnunet(results_root: Path, dataset: str, out_zip: Path, *, folds=(0,),
                       configuration: str = CONFIGURATION, trainer: str = TRAINER) -> Path:
    """Pack a model with nnU-Net's own exporter (what ``nnUNetv2_export_model_to_zip`` runs)."""
    from benchmark.training.nnunet.plans import nnunet_environment
    from nnunetv2.model_sharing.model_export import export_pretrained_model

    with nnunet_environment(results=results_root):
        export_pretrained_model(dataset, str(out_zip), configurations=(configuration,), trainer=trainer, folds=folds)
    return out_zip
