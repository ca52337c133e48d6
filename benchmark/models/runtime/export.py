"""Export a network once to ONNX (opset 17, dynamic batch, fixed tile size) and cache it by what produced it.

The cache key is the sha256 of: the weights' sha256, the tile shape, the input channels, the network class,
the torch version, the ONNX opset and :data:`RUNTIME_VERSION`. Any change to one of them gives a new file;
a file whose key matches is reused without exporting again when its sidecar carries cordbench's seal
(benchmark.seals: a graph planted in the cache is exported again) and it is still verified before use (verify.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmark.io import TEMP_SUFFIX, atomic_write_json, sha256_file, temp_prefix
from benchmark.seals import is_sealed, seal

# Bump when the export (arguments, graph names, wrapper) changes, so that cached files are exported again.
RUNTIME_VERSION = "1"
ONNX_OPSET = 17
INPUT_NAME = "tiles"
OUTPUT_NAME = "logits"


@dataclass(frozen=True)
class ExportedModel:
    """An ONNX file on disk and whether it came from the cache."""

    path: Path
    key: str
    reused: bool


def export_key(*, weights_sha256: str, tile_shape: tuple[int, ...], in_channels: int, network_class: str) -> dict:
    """Everything the exported graph depends on (written next to the file, hashed into its name)."""
    return {
        "weights_sha256": weights_sha256,
        "tile_shape": [int(size) for size in tile_shape],
        "in_channels": int(in_channels),
        "network_class": network_class,
        "torch": torch.__version__,
        "opset": ONNX_OPSET,
        "cordbench_runtime": RUNTIME_VERSION,
    }


def _export(network: torch.nn.Module, example: torch.Tensor, destination: Path) -> None:
    """torch.onnx.export (TorchScript exporter: robust for nnU-Net's conv nets) into a temp file, then rename."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    # named with this process's pid: the executor removes it when a worker is killed mid-export
    handle, temporary = tempfile.mkstemp(dir=destination.parent, prefix=temp_prefix(destination.name),
                                         suffix=TEMP_SUFFIX)
    os.close(handle)
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                network, (example,), temporary, opset_version=ONNX_OPSET, dynamo=False,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            )
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def export_onnx(
    network: torch.nn.Module, *, weights_sha256: str, tile_shape: tuple[int, ...], in_channels: int, cache_dir: Path
) -> ExportedModel:
    """The network as ONNX in ``cache_dir``, exported now or reused from an earlier export with the same key."""
    key_fields = export_key(weights_sha256=weights_sha256, tile_shape=tuple(tile_shape), in_channels=in_channels,
                            network_class=type(network).__qualname__)
    key = hashlib.sha256(json.dumps(key_fields, sort_keys=True).encode()).hexdigest()
    path = Path(cache_dir) / f"network-{key[:24]}.onnx"
    if _sealed_export(path, key):
        return ExportedModel(path, key, reused=True)
    example = torch.zeros((1, in_channels, *tile_shape), dtype=torch.float32)
    network_device = next(network.parameters()).device
    was_training = network.training
    network.eval()
    try:
        _export(network.cpu(), example, path)
    finally:
        network.to(network_device)
        network.train(was_training)
    digest = sha256_file(path)
    atomic_write_json(path.with_suffix(".json"), {**key_fields, "key": key, "sha256": digest,
                                                  "seal": seal("onnx-export", key, digest)})
    return ExportedModel(path, key, reused=False)


def _sealed_export(path: Path, key: str) -> bool:
    """Whether ``path`` is an export cordbench made in this workspace (its sidecar's seal) and is unchanged: the
    runtime cache is in the submission's folder, so a graph shipped there is exported again, never run."""
    sidecar = path.with_suffix(".json")
    if not path.is_file() or path.is_symlink() or sidecar.is_symlink():
        return False
    try:
        recorded = json.loads(sidecar.read_text(encoding="utf-8"))
        digest = recorded["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return is_sealed(recorded.get("seal"), "onnx-export", key, str(digest)) and sha256_file(path) == digest
