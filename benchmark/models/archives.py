"""One policy for every zip cordbench reads: `cordbench export` archives and nnU-Net's own export zips.

Checked from the central directory, before anything is extracted (zipfile never reads more than a member's
declared size, so the declared sizes bound what extraction writes):

- at most ``MAX_MEMBERS`` members, ``MAX_TOTAL_BYTES`` uncompressed in all and ``MAX_MEMBER_BYTES`` per member;
- no member of more than ``RATIO_FLOOR_BYTES`` that expands more than ``MAX_RATIO`` times (a zip bomb: a
  checkpoint compresses ~1:1, JSON ~10:1, a GiB of zeros ~1000:1);
- no symbolic link, no absolute path, no ``..``, backslash or drive letter, no member named twice.

Reading a member that is damaged (a flipped byte: CRC mismatch, invalid deflate data, a truncated archive) is a
named error saying which member, never a traceback. Every check raises the caller's error type, so each import
path keeps its own error name.
"""

from __future__ import annotations

import shutil
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from benchmark.errors import CordbenchError

MAX_MEMBERS = 10_000
MAX_TOTAL_BYTES = 16 << 30
MAX_MEMBER_BYTES = 8 << 30
MAX_RATIO = 200
RATIO_FLOOR_BYTES = 1 << 20
#: What zipfile raises on a damaged member: bad CRC or header (BadZipFile), invalid deflate data (zlib.error),
#: a truncated archive (EOFError), an unsupported compression or encryption (NotImplementedError, RuntimeError).
DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError)


def open_zip(path: Path, error: type[CordbenchError]) -> zipfile.ZipFile:
    """The archive opened for reading, or ``error`` naming it when it is not a readable zip."""
    try:
        return zipfile.ZipFile(path)
    except (OSError, *DAMAGED) as problem:
        raise error(f"{path}: not a readable zip archive ({problem})") from problem


def safe_member_name(name: str, path: Path, error: type[CordbenchError]) -> str:
    """``name`` when extracting it stays inside the target folder; ``error`` otherwise."""
    parts = PurePosixPath(name).parts
    if (PurePosixPath(name).is_absolute() or ".." in parts or "\\" in name or "\0" in name
            or (parts and ":" in parts[0])):
        raise error(f"{path}: member {name!r} would be written outside the target folder")
    return name


def checked_members(archive: zipfile.ZipFile, path: Path, error: type[CordbenchError]) -> dict[str, zipfile.ZipInfo]:
    """The archive's file members (folders left out) by name, once every one passed the policy (module docstring);
    ``error`` naming the archive and the member otherwise."""
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise error(f"{path}: {len(infos)} members, more than the limit of {MAX_MEMBERS}")
    members: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in infos:
        safe_member_name(info.filename, path, error)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise error(f"{path}: member {info.filename!r} is a symbolic link; links are refused")
        if info.is_dir():
            continue
        if info.filename in members:
            raise error(f"{path}: member {info.filename!r} appears twice")
        if info.file_size > MAX_MEMBER_BYTES:
            raise error(f"{path}: member {info.filename!r} unpacks to {info.file_size} bytes, more than the limit of "
                        f"{MAX_MEMBER_BYTES} per member")
        if info.file_size > RATIO_FLOOR_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise error(f"{path}: member {info.filename!r} expands {info.file_size} bytes from {info.compress_size} "
                        f"(ratio over {MAX_RATIO}): refused as a possible zip bomb")
        total += info.file_size
        members[info.filename] = info
    if total > MAX_TOTAL_BYTES:
        raise error(f"{path}: {total} bytes uncompressed, more than the limit of {MAX_TOTAL_BYTES}")
    return members


def _damaged(path: Path, name: str, problem: BaseException, error: type[CordbenchError]) -> CordbenchError:
    return error(f"{path}: member {name} is damaged ({type(problem).__name__}: {problem}); the archive is corrupt: "
                 "download or copy it again")


def read_member(archive: zipfile.ZipFile, name: str, path: Path, error: type[CordbenchError]) -> bytes:
    """A member's bytes (its CRC checked by zipfile); a damaged member is ``error`` naming it."""
    try:
        return archive.read(name)
    except DAMAGED as problem:
        raise _damaged(path, name, problem, error) from problem


def copy_member(archive: zipfile.ZipFile, name: str, destination: Path, path: Path,
                error: type[CordbenchError]) -> Path:
    """Stream one member to ``destination`` (folders made); a damaged member is ``error`` naming it."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        with archive.open(name) as reader, open(destination, "wb") as writer:
            shutil.copyfileobj(reader, writer, 1 << 20)
    except DAMAGED as problem:
        raise _damaged(path, name, problem, error) from problem
    return destination


def extract_members(archive: zipfile.ZipFile, names: list[str], target: Path, path: Path,
                    error: type[CordbenchError]) -> None:
    """Extract ``names`` (checked by :func:`checked_members`) below ``target``, each through
    :func:`copy_member`."""
    for name in names:
        copy_member(archive, name, Path(target) / safe_member_name(name, path, error), path, error)
