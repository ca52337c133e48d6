"""int8 post-training quantization of an exported network with ONNX Runtime's own tooling (opt-in).

``quantize_static`` (onnxruntime.quantization) writes a QDQ model: weights int8, symmetric, per output channel;
activations uint8, asymmetric, their ranges calibrated (min/max) on real tiles. Both ONNX runtimes run the same
file in int8: ONNX Runtime's CPU provider directly, OpenVINO by folding the QDQ pairs into its low-precision
kernels. Calibration tiles are the network's actual inputs (nnU-Net's preprocessing and sliding window) on
TRAINING images only; cordbench refuses to predict an image that was used for calibration
(benchmark.evaluation.inference). The file is cached by the float export's key, the calibration tiles' digest and
the tool's version, and checked against PyTorch on the first real batch (masks, not logits:
benchmark.models.runtime.verify.INT8_MIN_AGREEMENT) before use.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from benchmark.io import atomic_write_json

# Bump when the quantization settings below change, so that cached int8 files are made again.
QUANTIZATION_VERSION = "1"
# Only the convolutions (~2/3 of nnU-Net's time, measured with torch.profiler, docs/nnunet.md) run in int8:
# instance normalisation keeps float32 (its per-instance statistics are what makes quantized convs safe here).
QUANTIZED_OPS = ("Conv", "ConvTranspose")
# Calibration tiles at most (spread evenly over all tiles of all calibration images): MinMax ranges settle with a
# few dozen tiles, and each costs a forward of the float model.
MAX_CALIBRATION_TILES = 64


def calibration_digest(tiles: np.ndarray) -> str:
    """sha256 of the calibration tiles (shape, dtype and bytes): what the int8 ranges depend on."""
    digest = hashlib.sha256(f"{tiles.shape} {tiles.dtype}".encode())
    digest.update(np.ascontiguousarray(tiles).tobytes())
    return digest.hexdigest()


def spread(count: int, limit: int) -> list[int]:
    """At most ``limit`` indices out of ``range(count)``, evenly spread and in order (deterministic)."""
    if count <= limit:
        return list(range(count))
    return sorted({int(round(index)) for index in np.linspace(0, count - 1, limit)})


class _Tiles:
    """ONNX Runtime's CalibrationDataReader over a batch of tiles, one tile per call."""

    def __init__(self, input_name: str, tiles: np.ndarray):
        self._items: Iterator[dict[str, np.ndarray]] = iter(
            [{input_name: np.ascontiguousarray(tile[None], dtype=np.float32)} for tile in tiles])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._items, None)

    def rewind(self) -> None:  # the MinMax calibrator reads the data once
        pass


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_int8(float_onnx: Path, tiles: np.ndarray, *, float_key: str, cache_dir: Path) -> Path:
    """The int8 QDQ model of ``float_onnx`` calibrated on ``tiles`` (N x C x tile), made now or reused."""
    import onnxruntime
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    key_fields = {"float_key": float_key, "calibration": calibration_digest(tiles), "tiles": int(len(tiles)),
                  "onnxruntime": onnxruntime.__version__, "quantization": QUANTIZATION_VERSION}
    key = hashlib.sha256(json.dumps(key_fields, sort_keys=True).encode()).hexdigest()
    path = Path(cache_dir) / f"network-int8-{key[:24]}.onnx"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".int8-") as scratch:
        prepared, quantized = Path(scratch) / "prepared.onnx", Path(scratch) / "int8.onnx"
        quant_pre_process(str(float_onnx), str(prepared), skip_symbolic_shape=True)
        input_name = onnxruntime.InferenceSession(str(prepared), providers=["CPUExecutionProvider"]).get_inputs()[0].name
        with _quiet_root_logger():  # onnxruntime.quantization logs every tensor it inspects on the root logger
            quantize_static(str(prepared), str(quantized), _Tiles(input_name, tiles), quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                            calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=list(QUANTIZED_OPS))
        os.replace(quantized, path)
    atomic_write_json(path.with_suffix(".json"), {**key_fields, "key": key})
    return path
