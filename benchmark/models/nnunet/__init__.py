"""nnU-Net checkpoints as cordbench models: the batched predictor (load once, predict one image)."""

from benchmark.compat import allow_missing_simpleitk

allow_missing_simpleitk()  # nnU-Net imports SimpleITK; cordbench never uses it (benchmark/compat)
