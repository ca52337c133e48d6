"""nnU-Net planning and preprocessing through nnU-Net's own Python API, plus cordbench's ``2d_quick`` configuration.

Profiles:

- ``full``: nnU-Net's defaults untouched; trains ``3d_fullres`` when the planner produces it, else ``2d``.
- ``quick``: a configuration ``2d_quick`` derived from nnU-Net's generated ``2d`` configuration and added to the
  same plans file. Every change is listed in :func:`derive_quick_configuration` and in ``docs/nnunet.md``.

nnU-Net finds its folders through the ``nnUNet_raw`` / ``nnUNet_preprocessed`` / ``nnUNet_results`` environment
variables. :func:`nnunet_environment` sets them for the duration of one call and restores them afterwards; this
relies on nnunetv2 >= 2.6 reading them lazily (``nnunetv2.paths._EnvPath``), which :func:`nnunet_environment`
checks instead of assuming.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from copy import deepcopy
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from benchmark.environment import available_cores
from benchmark.errors import CordbenchError
from benchmark.io import atomic_write_json, sha256_bytes, sha256_file

Profile = Literal["quick", "full"]

PLANS_IDENTIFIER = "nnUNetPlans"
QUICK_CONFIGURATION = "2d_quick"

# Bump when derive_quick_configuration changes, so that existing preprocessed folders are re-planned.
QUICK_PLAN_VERSION = 1
QUICK_MAX_PATCH = 128
QUICK_MIN_PATCH = 64
QUICK_FEATURES = (16, 32, 64, 128, 128)
QUICK_BATCH_SIZE = 8

_STAMP_NAME = "cordbench_plan_stamp_{configuration}.json"
_DATASET_FOLDER_RE = re.compile(r"^Dataset(\d{3})_[A-Za-z0-9_\-]+$")
_ENV_NAMES = ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")


class PlanningError(CordbenchError, RuntimeError):
    """Raised when a raw dataset cannot be planned (bad folder name, missing dataset.json, ...)."""


@dataclass(frozen=True)
class PlanResult:
    """Where the plans and preprocessed data of one dataset/configuration are, and whether work was skipped."""

    dataset_id: int
    dataset_name: str
    configuration: str
    plans_path: Path
    dataset_json_path: Path
    preprocessed_folder: Path
    inputs_sha256: str
    skipped: bool


@contextmanager
def nnunet_environment(
    raw: Path | None = None, preprocessed: Path | None = None, results: Path | None = None
) -> Iterator[None]:
    """Point nnU-Net's three folder variables at the given folders for the duration of the block.

    Variables passed as None are left as they are. The previous values are restored on exit.
    """
    wanted = dict(zip(_ENV_NAMES, (raw, preprocessed, results)))
    saved = {name: os.environ.get(name) for name in _ENV_NAMES}
    try:
        for name, folder in wanted.items():
            if folder is not None:
                os.environ[name] = str(Path(folder).resolve())
        _check_nnunet_reads_env_lazily(wanted)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _check_nnunet_reads_env_lazily(wanted: dict[str, Path | None]) -> None:
    import nnunetv2.paths

    for name, folder in wanted.items():
        if folder is None:
            continue
        seen = getattr(nnunetv2.paths, name)
        if seen is None or os.fspath(seen) != str(Path(folder).resolve()):
            raise RuntimeError(
                f"nnunetv2 {metadata.version('nnunetv2')} read {name} at import time ({seen!r}) and ignores "
                f"the per-call folder {folder}; cordbench needs nnunetv2 >= 2.6 (lazy nnunetv2.paths)."
            )


def parse_dataset_folder(raw_dataset_folder: Path) -> tuple[int, str]:
    """Return (dataset id, dataset name) for an nnU-Net raw folder named ``DatasetXXX_Name``."""
    folder = Path(raw_dataset_folder)
    match = _DATASET_FOLDER_RE.match(folder.name)
    if match is None:
        raise PlanningError(f"{folder}: not an nnU-Net raw dataset folder name (expected DatasetXXX_Name)")
    if not (folder / "dataset.json").is_file():
        raise PlanningError(f"{folder / 'dataset.json'}: missing; every nnU-Net raw dataset needs one")
    if not (folder / "imagesTr").is_dir() or not (folder / "labelsTr").is_dir():
        raise PlanningError(f"{folder}: imagesTr/ and labelsTr/ are both required")
    return int(match.group(1)), folder.name


def raw_inputs_sha256(raw_dataset_folder: Path) -> str:
    """Content hash of dataset.json plus every training image and label (names and bytes)."""
    folder = Path(raw_dataset_folder)
    lines = [f"dataset.json {sha256_file(folder / 'dataset.json')}"]
    for sub in ("imagesTr", "labelsTr"):
        for path in sorted((folder / sub).iterdir()):
            if path.is_file() and not path.name.startswith("."):
                lines.append(f"{sub}/{path.name} {sha256_file(path)}")
    return sha256_bytes("\n".join(lines).encode("utf-8"))


def _ceil_to(value: float, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple)


def derive_quick_configuration(plans: dict[str, Any], base: str = "2d") -> dict[str, Any]:
    """Derive cordbench's reduced ``2d_quick`` configuration from nnU-Net's generated ``base`` configuration.

    Changes (everything else, including target spacing, normalisation, resampling and batch Dice, is inherited):

    - ``patch_size``: each axis min(128, max(64, median image size rounded up to a multiple of 16)); nnU-Net's
      default 2D patch covers the whole median slice (e.g. 384x320), which costs ~15 s/iteration on 2 CPU cores.
    - ``batch_size``: 8 (nnU-Net derives it from a GPU memory budget).
    - network: 5 stages (4 poolings of stride 2, 3x3 convolutions, 2 convs per stage) with features
      16-32-64-128-128 instead of 32→512 over up to 7 stages.
    - ``data_identifier``: kept equal to the base one, so the preprocessed arrays are shared with ``2d``
      (preprocessing depends only on spacing, normalisation and resampling, which are unchanged).
    """
    if base not in plans["configurations"]:
        raise PlanningError(f"plans {plans.get('dataset_name')}: no '{base}' configuration to derive 2d_quick from")
    config = deepcopy(plans["configurations"][base])
    if "inherits_from" in config:
        raise PlanningError(f"plans {plans.get('dataset_name')}: '{base}' inherits from another configuration")
    n_stages = len(QUICK_FEATURES)
    divisor = 2 ** (n_stages - 1)
    median = config["median_image_size_in_voxels"]
    config["patch_size"] = [
        min(QUICK_MAX_PATCH, max(QUICK_MIN_PATCH, _ceil_to(float(m), divisor))) for m in median
    ]
    config["batch_size"] = QUICK_BATCH_SIZE
    arch = config["architecture"]["arch_kwargs"]
    arch.update(
        {
            "n_stages": n_stages,
            "features_per_stage": list(QUICK_FEATURES),
            "kernel_sizes": [[3, 3]] * n_stages,
            "strides": [[1, 1]] + [[2, 2]] * (n_stages - 1),
            "n_conv_per_stage": [2] * n_stages,
            "n_conv_per_stage_decoder": [2] * (n_stages - 1),
        }
    )
    config["cordbench"] = {"derived_from": base, "quick_plan_version": QUICK_PLAN_VERSION}
    return config


def add_quick_configuration(plans_path: Path) -> dict[str, Any]:
    """Add (or replace) ``2d_quick`` in the plans file at ``plans_path``; returns the new configuration."""
    plans = json.loads(Path(plans_path).read_text())
    config = derive_quick_configuration(plans)
    plans["configurations"][QUICK_CONFIGURATION] = config
    atomic_write_json(plans_path, plans)
    return config


def full_configuration(plans: dict[str, Any]) -> str:
    """The configuration the ``full`` profile trains: ``3d_fullres`` when planned, else ``2d``."""
    return "3d_fullres" if "3d_fullres" in plans["configurations"] else "2d"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, ValueError):
        return None


def _stamp(inputs_sha256: str, configuration: str) -> dict[str, Any]:
    return {
        "inputs_sha256": inputs_sha256,
        "configuration": configuration,
        "nnunetv2": metadata.version("nnunetv2"),
        "quick_plan_version": QUICK_PLAN_VERSION,
    }


def plan_and_preprocess(
    raw_dataset_folder: Path,
    preprocessed_root: Path,
    *,
    profile: Profile = "quick",
    configuration: str | None = None,
    num_processes: int | None = None,
    verify_dataset_integrity: bool = True,
) -> PlanResult:
    """Fingerprint, plan and preprocess one raw dataset with nnU-Net's API; skip work already done for these inputs.

    ``preprocessed_root`` plays the role of ``nnUNet_preprocessed``. ``configuration`` overrides the profile's
    configuration (it must exist in the plans, or be ``2d_quick``). When the training images, labels or
    dataset.json change, the dataset's preprocessed folder is deleted and everything is redone; a stamp file per
    configuration (written last) records which inputs the preprocessed data belongs to.
    """
    dataset_id, dataset_name = parse_dataset_folder(raw_dataset_folder)
    raw_root = Path(raw_dataset_folder).resolve().parent
    preprocessed_root = Path(preprocessed_root).resolve()
    dataset_pre = preprocessed_root / dataset_name
    plans_path = dataset_pre / f"{PLANS_IDENTIFIER}.json"
    n_proc = num_processes or available_cores()
    inputs_sha256 = raw_inputs_sha256(raw_dataset_folder)

    wanted = configuration
    if wanted is None and profile == "quick":
        wanted = QUICK_CONFIGURATION
    if wanted is None and plans_path.is_file():
        wanted = full_configuration(_read_json(plans_path) or {"configurations": {}})
    if wanted is not None:
        stamp = _read_json(dataset_pre / _STAMP_NAME.format(configuration=wanted))
        if stamp == _stamp(inputs_sha256, wanted) and plans_path.is_file():
            return _result(dataset_id, dataset_name, wanted, dataset_pre, inputs_sha256, skipped=True)

    with nnunet_environment(raw=raw_root, preprocessed=preprocessed_root):
        from nnunetv2.experiment_planning.plan_and_preprocess_api import (
            extract_fingerprints,
            plan_experiments,
            preprocess,
        )

        fingerprint_stamp = dataset_pre / "cordbench_inputs.json"
        if _read_json(fingerprint_stamp) != {"inputs_sha256": inputs_sha256} or not plans_path.is_file():
            if dataset_pre.exists():
                shutil.rmtree(dataset_pre)
            extract_fingerprints(
                [dataset_id],
                num_processes=n_proc,
                check_dataset_integrity=verify_dataset_integrity,
                clean=True,
                verbose=False,
                show_progress_bar=False,
            )
            plan_experiments([dataset_id])
            atomic_write_json(fingerprint_stamp, {"inputs_sha256": inputs_sha256})

        plans = _read_json(plans_path)
        if plans is None:
            raise PlanningError(f"{plans_path}: nnU-Net planning did not write a readable plans file")
        if profile == "quick" or wanted == QUICK_CONFIGURATION:
            add_quick_configuration(plans_path)
            plans = _read_json(plans_path)
        if configuration is None and profile == "full":
            wanted = full_configuration(plans)
        if wanted not in plans["configurations"]:
            raise PlanningError(
                f"{plans_path}: configuration '{wanted}' not planned; available: {sorted(plans['configurations'])}"
            )
        preprocess([dataset_id], PLANS_IDENTIFIER, configurations=(wanted,), num_processes=[n_proc],
                   verbose=False, show_progress_bar=False)
    atomic_write_json(dataset_pre / _STAMP_NAME.format(configuration=wanted), _stamp(inputs_sha256, wanted))
    return _result(dataset_id, dataset_name, wanted, dataset_pre, inputs_sha256, skipped=False)


def _result(
    dataset_id: int, dataset_name: str, configuration: str, dataset_pre: Path, inputs_sha256: str, *, skipped: bool
) -> PlanResult:
    plans = _read_json(dataset_pre / f"{PLANS_IDENTIFIER}.json") or {}
    data_identifier = plans.get("configurations", {}).get(configuration, {}).get("data_identifier", configuration)
    return PlanResult(
        dataset_id=dataset_id,
        dataset_name=dataset_name,
        configuration=configuration,
        plans_path=dataset_pre / f"{PLANS_IDENTIFIER}.json",
        dataset_json_path=dataset_pre / "dataset.json",
        preprocessed_folder=dataset_pre / data_identifier,
        inputs_sha256=inputs_sha256,
        skipped=skipped,
    )
