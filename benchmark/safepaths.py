"""Folders cordbench writes below an untrusted submission folder, and files it reads from one, checked for links.

A submission folder is its author's: any entry in it may be a symbolic link to somewhere else (another
submission's results, the ground truth of the data root) or a file where cordbench expects a folder. Writing
through such a link would let the submission choose what cordbench overwrites; reading through one would let it
choose what cordbench scores. So:

- :func:`output_folder` creates the folders cordbench writes into (``results/``, ``predictions/<hash>/``) one
  component at a time below a trusted base, and refuses, by name, a component that is a link or not a folder;
- :func:`refuse_link_out` refuses a file that resolves outside the folder it was found in.

The base folder itself (the resolved submission folder, the workspace) is trusted: the submission's author
chose what is inside it, not where it is.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from benchmark.errors import CordbenchError


class UnsafePathError(CordbenchError, ValueError):
    """A path cordbench would write through or read from leads somewhere it must not (a link, a file for a
    folder); the message names the path and what to do."""


def output_folder(base: Path, *parts: str, what: str = "outputs", create: bool = True) -> Path:
    """``base/parts...``, every component below ``base`` a real folder: an existing one must not be a symbolic
    link nor anything but a folder; a missing one is created (with ``create=False`` only checked: it is made when
    something is written there). ``what`` names the outputs in the error."""
    current = Path(base)
    try:
        if create:
            current.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UnsafePathError(f"{current}: cannot create the folder for {what} ({error.strerror or error})") from error
    for part in parts:
        current = current / part
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            if not create:
                continue
            try:
                current.mkdir()
                continue
            except FileExistsError:  # made meanwhile by another process: check what it is
                info = os.lstat(current)
            except OSError as error:
                raise UnsafePathError(f"{current}: cannot create the folder for {what} "
                                      f"({error.strerror or error})") from error
        if stat.S_ISLNK(info.st_mode):
            raise UnsafePathError(f"{current}: is a symbolic link (to {os.readlink(current)}); cordbench writes its "
                                  f"{what} only into a real folder it creates: remove the link")
        if not stat.S_ISDIR(info.st_mode):
            raise UnsafePathError(f"{current}: exists and is not a folder; cordbench writes its {what} there: "
                                  "move the file away")
    return current


def is_within(path: Path, root: Path) -> bool:
    """Whether ``path`` is ``root`` or below it (both taken as they are: resolve them first)."""
    return path == root or root in path.parents


def refuse_link_out(path: Path, folder: Path, *, allowed: tuple[Path, ...] = (), what: str = "file") -> Path:
    """The real path of ``path`` (found below ``folder``), refused when it resolves outside ``folder`` and outside
    every ``allowed`` folder (all resolved here): a link out of where the file may be."""
    real = Path(os.path.realpath(path))
    roots = [Path(os.path.realpath(folder)), *(Path(os.path.realpath(root)) for root in allowed)]
    if not any(is_within(real, root) for root in roots):
        raise UnsafePathError(f"{path}: this {what} is a link to {real}, outside {folder}; links out of the folder "
                              "are refused (copy the file instead)")
    return real
