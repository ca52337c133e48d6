"""nnU-Net checkpoints as cordbench models: the batched predictor (load once, predict one image)."""
