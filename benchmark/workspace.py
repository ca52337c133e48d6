"""Where cordbench reads and writes: the built-in registry (read-only, inside the package) and the user's workspace.

A workspace is a folder holding ``cordbench.yaml`` and::

    datasets/      the user's dataset YAML files (layered over the built-in registry)
    suites/        the user's suite YAML files
    splits/        split files: of the user's suites, and frozen completions of built-in suites
    submissions/   the user's models, and the results of every model scored here (built-in ones included)
    work/          everything derived: data, nnU-Net raw/preprocessed/results, report, caches

Which workspace is active, first match wins: ``--workspace DIR`` (CLI) or :func:`use`; the environment
variable ``CORDBENCH_WORKSPACE``; the current directory when it holds ``cordbench.yaml``. With none of these,
commands that only read (``datasets list``, ``schema``, ``splits show``) see the built-in registry, and
commands that write stop with an error saying how to make one (``cordbench init``). Nothing is ever written
inside the package or the repository's tracked files.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from benchmark.errors import CordbenchError

CONFIG_NAME = "cordbench.yaml"
ENV_WORKSPACE = "CORDBENCH_WORKSPACE"
PACKAGE_DIR = Path(__file__).resolve().parent
BUILTIN_REGISTRY_DIR = PACKAGE_DIR / "registry"
BUILTIN_SPLITS_DIR = PACKAGE_DIR / "splits"
#: Where an installed wheel carries the reference submissions (see setup.py); a source checkout has them in
#: the repository's submissions/ folder.
_PACKAGED_SUBMISSIONS = PACKAGE_DIR / "reference_submissions"
_SOURCE_SUBMISSIONS = PACKAGE_DIR.parent / "submissions"

Origin = Literal["built-in", "workspace"]


class WorkspaceError(CordbenchError, ValueError):
    """No workspace, or an invalid one; the message says which folder or file and how to fix it."""


def builtin_submissions_dir() -> Path:
    """The reference submissions shipped with cordbench (read-only at run time)."""
    return _PACKAGED_SUBMISSIONS if _PACKAGED_SUBMISSIONS.is_dir() else _SOURCE_SUBMISSIONS


class WorkspaceConfig(BaseModel):
    """The workspace's settings; every field is optional."""

    model_config = ConfigDict(extra="forbid")

    format: int = Field(default=1, description="Format of this file (1).")
    data_root: str | None = Field(
        default=None, description="Default data root (a folder with one sub-folder per dataset) for commands "
                                  "given no --data-root; relative to the workspace.")
    include: list[str] = Field(
        default_factory=list,
        description="More registry folders, each with datasets/, suites/ and splits/ (relative to the workspace or "
                    "absolute), read after the workspace's own. Like lm-evaluation-harness' include_path.")
    nnunet_first_id: int = Field(
        default=600, ge=1, le=999,
        description="First nnU-Net dataset number allocated to this workspace's suites (built-in suites keep theirs).")
    executors: dict[str, dict] = Field(
        default_factory=dict,
        description="Named executor profiles for `--executor NAME` (SLURM: partition, time, mem, cpus_per_task, "
                    "gpus_per_task, array_parallelism, ...); validated by benchmark.execution (docs/execution.md).")


CONFIG_TEMPLATE = """\
# cordbench workspace (see docs/registry.md). Every setting is optional.
format: 1

# Default data root for commands given no --data-root: one sub-folder per dataset id (or its local_path).
# Relative paths are relative to this folder.
# data_root: /data/bids

# More registry folders (each with datasets/, suites/, splits/), read after this workspace's own.
include: []

# First nnU-Net dataset number given to this workspace's suites (each suite gets a block of numbers that no
# other suite of this workspace uses; built-in suites keep 500, 520, 540).
nnunet_first_id: 600
"""

README_TEMPLATE = """\
# cordbench workspace

Made by `cordbench init`. cordbench reads its built-in registry from the installed package and layers this
folder on top; it writes only here.

| folder | what |
|---|---|
| `cordbench.yaml` | settings (data root, extra registry folders, nnU-Net id range) |
| `datasets/` | your dataset YAML files (`cordbench datasets add ID --root BIDS_FOLDER` drafts one) |
| `suites/` | your suites: which datasets are in-domain and which out-of-domain |
| `splits/` | split files (`cordbench splits make --suite ID`) |
| `submissions/` | your models (`cordbench train --name`, `cordbench import`) and every results file scored here |
| `work/` | derived files: data, nnU-Net raw/preprocessed/results, predictions, report, caches (safe to delete) |

An id defined both here and in the built-in registry is an error, never a silent override.
`cordbench schema dataset|suite|submission` prints each file's JSON Schema.
"""


@dataclass(frozen=True)
class Workspace:
    """A workspace folder and every path cordbench writes to."""

    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def datasets_dir(self) -> Path:
        return self.root / "datasets"

    @property
    def suites_dir(self) -> Path:
        return self.root / "suites"

    @property
    def splits_dir(self) -> Path:
        return self.root / "splits"

    @property
    def submissions_dir(self) -> Path:
        return self.root / "submissions"

    @property
    def work_dir(self) -> Path:
        return self.root / "work"

    @property
    def data_dir(self) -> Path:
        """Generated data (the synthetic suite)."""
        return self.work_dir / "data"

    @property
    def nnunet_raw(self) -> Path:
        return self.work_dir / "nnUNet_raw"

    @property
    def nnunet_work(self) -> Path:
        """nnU-Net's preprocessed data and training results (one folder per suite below)."""
        return self.work_dir / "nnunet"

    @property
    def report_dir(self) -> Path:
        return self.work_dir / "report"

    @property
    def leaderboard_cache(self) -> Path:
        return self.work_dir / "leaderboard"

    @property
    def archive_cache(self) -> Path:
        """Verified model archives unpacked for inference, one folder per checkpoint sha256."""
        return self.work_dir / "cache" / "models"

    @property
    def nnunet_ids_path(self) -> Path:
        """The nnU-Net dataset numbers allocated to this workspace's suites."""
        return self.work_dir / "nnunet_ids.json"

    def submission_dir(self, name: str) -> Path:
        """Where a submission's results, predictions and cases index are written (built-in ones included)."""
        return self.submissions_dir / name

    def results_dir(self, name: str) -> Path:
        return self.submission_dir(name) / "results"

    def predictions_dir(self, name: str) -> Path:
        return self.submission_dir(name) / "predictions"

    def config(self) -> WorkspaceConfig:
        try:
            stat = self.config_path.stat()
        except FileNotFoundError:
            raise WorkspaceError(f"{self.config_path}: not a cordbench workspace (run `cordbench init {self.root}`)") \
                from None
        return _read_config(str(self.config_path), stat.st_mtime_ns, stat.st_size)

    def registry_dirs(self) -> list[Path]:
        """The workspace's own registry folder, then each ``include`` folder."""
        included = [Path(entry).expanduser() for entry in self.config().include]
        return [self.root] + [entry if entry.is_absolute() else self.root / entry for entry in included]

    def default_data_root(self) -> Path | None:
        configured = self.config().data_root
        if configured is None:
            return None
        path = Path(configured).expanduser()
        return path if path.is_absolute() else self.root / path


@lru_cache(maxsize=32)
def _read_config(path: str, _mtime_ns: int, _size: int) -> WorkspaceConfig:
    """cordbench.yaml parsed once per content (every registry lookup asks for it)."""
    from benchmark.io import describe_validation_error, read_yaml_mapping

    try:
        return WorkspaceConfig.model_validate(read_yaml_mapping(Path(path), WorkspaceError))
    except ValidationError as error:
        raise WorkspaceError(describe_validation_error(Path(path), error, "workspace file")) from error


def init_workspace(folder: Path) -> Workspace:
    """Create (or complete) a workspace; existing files are kept."""
    from benchmark.io import atomic_write_text

    workspace = Workspace(Path(folder).resolve())
    if workspace.root.exists() and not workspace.root.is_dir():
        raise WorkspaceError(f"{workspace.root}: exists and is not a folder")
    for sub in (workspace.datasets_dir, workspace.suites_dir, workspace.splits_dir, workspace.submissions_dir,
                workspace.work_dir):
        sub.mkdir(parents=True, exist_ok=True)
    if not workspace.config_path.exists():
        atomic_write_text(workspace.config_path, CONFIG_TEMPLATE)
    if not (workspace.root / "README.md").exists():
        atomic_write_text(workspace.root / "README.md", README_TEMPLATE)
    workspace.config()
    return workspace


_explicit: Workspace | None = None


def use(folder: Path | None) -> Workspace | None:
    """Make ``folder`` the active workspace for this process (what ``--workspace`` does); None clears it."""
    global _explicit
    _explicit = None if folder is None else _checked(Path(folder), "--workspace")
    return _explicit


@contextlib.contextmanager
def using(folder: Path | None) -> Iterator[Workspace | None]:
    """Temporarily make ``folder`` the active workspace (tests, notebooks)."""
    global _explicit
    previous = _explicit
    try:
        yield use(folder)
    finally:
        _explicit = previous


def _checked(folder: Path, how: str) -> Workspace:
    workspace = Workspace(folder.expanduser().resolve())
    if not workspace.config_path.is_file():
        raise WorkspaceError(f"{workspace.root} (from {how}): no {CONFIG_NAME} there; create the workspace with "
                             f"`cordbench init {workspace.root}`")
    return workspace


def active(environ: dict[str, str] | None = None, cwd: Path | None = None) -> Workspace | None:
    """The active workspace: ``--workspace``/:func:`use`, else ``$CORDBENCH_WORKSPACE``, else the current
    directory when it holds ``cordbench.yaml``, else None (built-in registry only, nothing can be written)."""
    if _explicit is not None:
        return _explicit
    environ = os.environ if environ is None else environ
    if environ.get(ENV_WORKSPACE):
        return _checked(Path(environ[ENV_WORKSPACE]), f"${ENV_WORKSPACE}")
    here = Path.cwd() if cwd is None else Path(cwd)
    if (here / CONFIG_NAME).is_file():
        return Workspace(here.resolve())
    return None


def require(what: str = "this command") -> Workspace:
    """The active workspace, or an error saying how to make one (every command that writes calls this)."""
    workspace = active()
    if workspace is None:
        raise WorkspaceError(
            f"{what} writes files and there is no workspace: run `cordbench init DIR`, then pass "
            f"`--workspace DIR`, set {ENV_WORKSPACE}=DIR, or run cordbench inside DIR")
    return workspace


def origin_of(path: Path) -> Origin:
    """Whether a registry file or submission folder is built-in (inside the package / reference submissions)."""
    resolved = Path(path).resolve()
    for builtin in (PACKAGE_DIR, builtin_submissions_dir().resolve()):
        if resolved == builtin or builtin in resolved.parents:
            return "built-in"
    return "workspace"
