"""Inference runtimes for nnU-Net networks: torch, onnxruntime, openvino behind ``logits = run(tiles)``."""
