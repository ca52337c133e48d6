"""MONAI's dice, hd95 and NSD: the independent implementation the project's metrics are checked against."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np


def as_monai_tensors(pred: np.ndarray, gt: np.ndarray):
    """MONAI's input format: float tensors [B=1, C=1, X, Y, Z]."""
    import torch

    return (torch.as_tensor(pred[None, None].astype(np.float32)),
            torch.as_tensor(gt[None, None].astype(np.float32)))


def monai_dice_hd95_nsd(pred, gt, spacing: Sequence[float], tau: float = 1.0) -> dict[str, float]:
    """dice, hd95 (percentile=95, max of the directed ones) and voxel-count NSD (use_subvoxels=False)."""
    from monai import metrics as monai_metrics

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dice = monai_metrics.compute_dice(pred, gt, include_background=True)
        hd95 = monai_metrics.compute_hausdorff_distance(pred, gt, include_background=True, percentile=95,
                                                        spacing=list(spacing))
        nsd = monai_metrics.compute_surface_dice(pred, gt, class_thresholds=[tau], include_background=True,
                                                 spacing=list(spacing), use_subvoxels=False)
    return {"dice": float(dice.item()), "hd95": float(hd95.item()), "nsd": float(nsd.item())}
