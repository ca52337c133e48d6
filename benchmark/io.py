"""Atomic writes and checksums: every file cordbench writes goes through here."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from benchmark.errors import CordbenchError

# Two NIfTI files are on the same voxel grid when their affines agree to within this (mm). Real datasets
# carry float noise in sform/qform (gmchallenge sub-9604: 2.2e-4 mm between its two masks).
AFFINE_TOLERANCE_MM = 1e-3


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class WriteError(CordbenchError, OSError):
    """A file cannot be written (read-only or full file system, a file where a folder belongs, a name too long):
    names the file and the system's reason. Still an OSError, with the original errno."""

    def __init__(self, path: Path, error: OSError):
        super().__init__(error.errno, error.strerror)
        self.filename = str(path)
        reason = error.strerror or str(error)
        if error.errno in (errno.EEXIST, errno.ENOTDIR):  # mkdir of a parent that is a file
            reason = f"{error.filename or 'a parent'} is a file where a folder is expected"
        elif error.filename is not None and str(error.filename) != str(path):
            reason += f" ({error.filename})"
        self.message = f"{path}: cannot be written: {reason}"

    def __str__(self) -> str:
        return self.message


TEMP_SUFFIX = ".tmp"


def temp_prefix(name: str, pid: int | None = None) -> str:
    """How an atomic write's temporary file beside ``name`` starts: ``.<name>.<pid>.`` (the writer's process id,
    so a process that finds the writer dead can remove it: ``remove_stale_temp_files``)."""
    return f".{name}.{os.getpid() if pid is None else pid}."


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one. A file system
    fault is a :class:`WriteError` naming the file; no temporary file is left behind."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path.name), suffix=TEMP_SUFFIX)
    except OSError as error:
        raise WriteError(path, error) from error
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o666 & ~_current_umask())
        os.replace(tmp_name, path)
    except BaseException as error:
        Path(tmp_name).unlink(missing_ok=True)
        if isinstance(error, OSError) and not isinstance(error, WriteError):
            raise WriteError(path, error) from error
        raise


def remove_stale_temp_files(folder: Path, pid: int) -> list[Path]:
    """Remove the temporary files process ``pid`` left in ``folder`` (it died mid-write); returns them."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        if not (name.startswith(".") and name.endswith(TEMP_SUFFIX)):
            continue
        parts = name[1:-len(TEMP_SUFFIX)].rsplit(".", 2)  # <name>.<pid>.<random>
        if len(parts) == 3 and parts[1] == str(pid):
            path = Path(folder) / name
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def replace_folder(staged: Path, target: Path) -> Path:
    """Put a fully written folder in ``target``'s place, replacing what was there; returns ``target`` resolved.

    The old folder is first moved aside (into a hidden folder beside it: a rename), then the staged one renamed in,
    then the old one deleted: an interruption leaves the old folder whole (in place or beside it) or the new one,
    never a half-deleted one.
    """
    target = Path(target)
    aside = None
    if target.exists():
        aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.replaced-", dir=target.parent))
        target.rename(aside / target.name)
    Path(staged).rename(target)
    if aside is not None:
        import shutil

        shutil.rmtree(aside)
    return target.resolve()


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def describe_validation_error(path: Path, error, what: str) -> str:
    """A pydantic ValidationError as 'FILE: invalid WHAT' plus one 'field.path: message' line per problem."""
    lines = [f"{path}: invalid {what}"]
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"  {location}: {item['msg']}")
    return "\n".join(lines)


def read_yaml_mapping(path: Path, error_type: type[Exception]) -> dict:
    """The YAML mapping in ``path``; ``error_type`` naming the file when it cannot be read or is no mapping."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise error_type(f"{path}: cannot read YAML ({error})") from error
    if not isinstance(data, dict):
        raise error_type(f"{path}: expected a mapping at the top level")
    return data
