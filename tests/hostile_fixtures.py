"""What the hostile tests (tests/test_adversarial.py) share: the trees that must stay byte-identical, a real-mini
workspace with supplied masks, and the command line run as a user runs it (a separate process, its own output).

Every hostile test hashes three things before and after the attack: the workspace (its user files: everything but
``work/``, where cordbench records the run itself, e.g. the failed unit), the data root and the installed package
(with the repository's tracked files). A test passes only when all three are unchanged and the attack ended in a
named refusal.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml

import benchmark
from benchmark.models.sandbox import sandbox_available
from conftest import BIDS, package_snapshot, snapshot_difference

#: Where the `benchmark` package these tests import lives: the commands they start run the same code.
CODE_ROOT = Path(benchmark.__file__).resolve().parents[1]
SUITE = "real-mini"
DATASETS = ("gmchallenge", "sct-testing", "spinegeneric-unf01")


def tree_digest(root: Path, *, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Every file, link and folder under root with its content hash (a change anywhere changes the dict);
    top-level entries named in ``skip`` are left out."""
    digest = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if relative.parts[0] in skip:
            continue
        if path.is_symlink():
            digest[relative.as_posix()] = f"link:{os.readlink(path)}"
        elif path.is_file():
            digest[relative.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            digest[relative.as_posix()] = "dir"
    return digest


@dataclass
class Mini:
    """A workspace scoring real-mini from a data root (read-only to the tests)."""

    workspace: Path
    data_root: Path
    masks: Path  # zero masks for every image of the data root, named as a BIDS derivatives folder wants them

    @property
    def submissions(self) -> Path:
        return self.workspace / "submissions"

    def protected(self) -> tuple[dict, dict, dict]:
        """(workspace without work/, data root, package) digests."""
        return (tree_digest(self.workspace, skip=("work",)),
                {dataset: tree_digest(self.data_root / dataset) for dataset in DATASETS}, package_snapshot())

    def assert_unchanged(self, before: tuple[dict, dict, dict]) -> None:
        workspace, data, package = before
        now = self.protected()
        assert now[0] == workspace, "the workspace changed"
        assert now[1] == data, "the data root changed"
        assert not snapshot_difference(package, now[2]), snapshot_difference(package, now[2])

    def env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, "CORDBENCH_WORKSPACE": str(self.workspace), **extra}
        env.pop("CORDBENCH_DEBUG", None)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CODE_ROOT), env.get("PYTHONPATH")]))
        return env

    def cli(self, *args: str, wrap: list[str] | None = None, timeout: float = 300, cwd: Path | None = None,
            **env: str) -> subprocess.CompletedProcess:
        """`cordbench ARGS` as its own process (inside ``wrap``, e.g. a bwrap that makes a folder read-only)."""
        command = [*(wrap or []), sys.executable, "-m", "benchmark", *args]
        return subprocess.run(command, capture_output=True, text=True, env=self.env(**env), timeout=timeout,
                              cwd=cwd or self.workspace)

    def score(self, *names: str, wrap: list[str] | None = None, **env: str) -> subprocess.CompletedProcess:
        return self.cli("score", *names, "--suite", SUITE, "--data-root", str(self.data_root), "--workers", "1",
                        wrap=wrap, **env)

    def predictions_submission(self, name: str, masks: Path | str = "masks", copy_masks: bool = True) -> Path:
        """A `predictions` submission; its masks folder a copy of the zero masks unless told otherwise."""
        folder = self.submissions / name
        folder.mkdir(parents=True, exist_ok=True)
        if copy_masks:
            shutil.copytree(self.masks, folder / "masks")
        (folder / "submission.yaml").write_text(yaml.safe_dump({
            "name": name, "description": "supplied masks", "authors": ["t"], "licence": "MIT",
            "model": {"type": "predictions", "folder": str(masks)}, "training": {"datasets": ["gmchallenge"]}}))
        return folder

    def command_submission(self, name: str, command: str, script: str | None = None, **model) -> Path:
        folder = self.submissions / name
        folder.mkdir(parents=True, exist_ok=True)
        if script is not None:
            (folder / "run.py").write_text(script)
        (folder / "submission.yaml").write_text(yaml.safe_dump({
            "name": name, "description": "a command model", "authors": ["t"], "licence": "MIT",
            "model": {"type": "command", "command": command, **model}, "training": {"datasets": ["gmchallenge"]}}))
        return folder

    def results_file(self, name: str) -> Path:
        from benchmark.data.splits import load_split

        return self.submissions / name / "results" / f"{SUITE}_{load_split(SUITE).version}.json"


needs_sandbox = pytest.mark.skipif(not sandbox_available(),
                                   reason="needs bubblewrap (`apt-get install bubblewrap`) and user namespaces")


def real_data_root() -> Path | None:
    return BIDS if all((BIDS / dataset / "dataset_description.json").is_file() for dataset in DATASETS) else None


def zero_masks(data_root: Path, out: Path) -> Path:
    """An all-zero mask on the grid of every image of the data root's real-mini datasets, named
    ``<image>_label-SC_seg.nii.gz`` (what a predictions submission supplies)."""
    for dataset in DATASETS:
        for image in sorted((data_root / dataset).glob("sub-*/anat/*.nii.gz")):
            loaded = nib.load(str(image))
            shape = loaded.shape[:3]
            name = image.name.removesuffix(".nii.gz") + "_label-SC_seg.nii.gz"
            nib.save(nib.Nifti1Image(np.zeros(shape, np.uint8), loaded.affine), str(out / name))
    return out


def single_line_error(completed: subprocess.CompletedProcess) -> str:
    """The command's output when it ended in a named error: no traceback, an `error:` line; returns the output
    with rich's wrapping undone."""
    output = completed.stdout + completed.stderr
    assert "Traceback" not in output, output
    assert "error:" in output, output
    return " ".join(output.split())


def bwrap_wrap(*, read_only: tuple[Path, ...] = (), small_tmpfs: Path | None = None, size: int = 0) -> list[str]:
    """A bwrap command prefix that runs a process with the whole file system as it is, except ``read_only``
    folders bound read-only and ``small_tmpfs`` replaced by a tmpfs of ``size`` bytes (a full disk)."""
    wrap = ["bwrap", "--dev-bind", "/", "/"]
    for folder in read_only:
        wrap += ["--ro-bind", str(folder), str(folder)]
    if small_tmpfs is not None:
        wrap += ["--size", str(size), "--tmpfs", str(small_tmpfs)]
    return wrap


def nnunet_submission(root: Path, name: str) -> Path:
    """An nnU-Net submission's files (a checkpoint of three numbers, plans, dataset.json): enough to plan units."""
    import torch

    from benchmark.io import sha256_file

    folder = root / name
    (folder / "model" / "fold_all").mkdir(parents=True)
    (folder / "model" / "plans.json").write_text(json.dumps({"configurations": {"2d": {"patch_size": [64, 64]}}}))
    (folder / "model" / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "cord": 1}}))
    checkpoint = folder / "model" / "fold_all" / "checkpoint_final.pth"
    torch.save({"network_weights": {"w": torch.ones(3)}}, checkpoint)
    (folder / "submission.yaml").write_text(yaml.safe_dump({
        "name": name, "description": "d", "authors": ["a"], "licence": "MIT",
        "model": {"type": "nnunet", "folder": "model", "sha256": sha256_file(checkpoint), "configuration": "2d"},
        "training": {"datasets": ["gmchallenge"]}}))
    return folder
