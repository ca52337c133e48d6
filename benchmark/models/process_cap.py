"""The sandbox's cap on processes (and threads: the kernel counts both), as it caps memory and time.

Two mechanisms, whichever this machine offers:

- ``rlimit``: RLIMIT_NPROC set INSIDE the sandbox's new user namespace (a tiny launcher sets it, then execs the
  program). Since Linux 5.14 the count is per user namespace, so only the sandbox's own processes count. The
  kernel ignores RLIMIT_NPROC for root, so this is the mechanism for ordinary users.
- ``cgroup``: a pids cgroup (``pids.max``) the program is started in, for root (containers, CI runners) where the
  pids controller's hierarchy is writable (cgroup v1 ``/sys/fs/cgroup/pids`` or a cgroup v2 tree with ``pids``).
  Its ``pids.events`` says whether the cap was hit, and every process in it is killed at the end, one that left the
  process group included.

With neither (root without a writable pids cgroup) the cap is not applied: :func:`cap_method` says so, and the
docs (scoring.md, threat model) list it.
"""

from __future__ import annotations

import functools
import itertools
import os
import signal
import time
from pathlib import Path
from typing import Literal

CapMethod = Literal["rlimit", "cgroup"]
#: The launcher run inside the sandbox: RLIMIT_NPROC, then the program (argv: cap, program, arguments...).
LAUNCHER = ("import os, resource, sys; cap = int(sys.argv[1]); "
            "resource.setrlimit(resource.RLIMIT_NPROC, (cap, cap)); os.execvp(sys.argv[2], sys.argv[2:])")
#: What a program prints when fork or a new thread failed for lack of processes (the rlimit gives no count).
_REFUSED_FORK = ("Resource temporarily unavailable", "[Errno 11]", "can't start new thread", "fork: retry")
_counter = itertools.count()


def _pids_hierarchy() -> Path | None:
    """This process's folder in a pids cgroup hierarchy (v1 ``pids``, or v2 with the pids controller)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None
    own = {}
    for line in lines:
        _number, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            own[controller] = path
    for mount in mounts:
        fields = mount.split()
        if len(fields) < 4:
            continue
        target, kind, options = fields[1], fields[2], fields[3].split(",")
        if kind == "cgroup" and "pids" in options and "pids" in own:
            return Path(target) / own["pids"].lstrip("/")
        if kind == "cgroup2" and "" in own:
            folder = Path(target) / own[""].lstrip("/")
            try:
                if "pids" in (folder / "cgroup.controllers").read_text().split():
                    return folder
            except OSError:
                continue
    return None


class PidsCgroup:
    """One run's pids cgroup: created with its cap, joined by the program before exec, emptied and removed after."""

    def __init__(self, folder: Path, cap: int):
        self.folder = folder
        self.cap = cap

    @classmethod
    def create(cls, parent: Path, cap: int) -> "PidsCgroup":
        folder = parent / f"cordbench-{os.getpid()}-{next(_counter)}"
        folder.mkdir()
        try:
            (folder / "pids.max").write_text(str(cap))
        except OSError:
            folder.rmdir()
            raise
        return cls(folder, cap)

    @property
    def procs_file(self) -> str:
        return str(self.folder / "cgroup.procs")

    def limit_hit(self) -> bool:
        """Whether a fork or clone was refused because the cap was reached (``pids.events``: ``max N``)."""
        try:
            events = dict(line.split() for line in (self.folder / "pids.events").read_text().splitlines() if line)
        except (OSError, ValueError):
            return False
        return int(events.get("max", "0")) > 0

    def kill_and_remove(self) -> None:
        """SIGKILL whatever still runs in it (a descendant that left the process group too), then remove it."""
        for _attempt in range(100):
            try:
                pids = [int(pid) for pid in (self.folder / "cgroup.procs").read_text().split()]
            except OSError:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                self.folder.rmdir()
                return
            except OSError:  # busy until the killed processes are reaped
                time.sleep(0.02)


@functools.lru_cache(maxsize=1)
def _writable_hierarchy() -> Path | None:
    """The pids hierarchy when a child cgroup can be made there (probed once), else None."""
    parent = _pids_hierarchy()
    if parent is None:
        return None
    try:
        probe = PidsCgroup.create(parent, 1)
    except OSError:
        return None
    probe.kill_and_remove()
    return parent


def cap_method() -> CapMethod | None:
    """How this machine caps a sandbox's processes: rlimit (ordinary users), cgroup (root with a writable pids
    cgroup), or None (the cap cannot be applied)."""
    if os.geteuid() != 0:
        return "rlimit"
    return "cgroup" if _writable_hierarchy() is not None else None


def new_cgroup(cap: int) -> PidsCgroup | None:
    """A pids cgroup for one run when that is this machine's method (else None: the rlimit launcher is used)."""
    parent = _writable_hierarchy() if os.geteuid() == 0 else None
    if parent is None:
        return None
    sweep_stale_cgroups(parent)
    try:
        return PidsCgroup.create(parent, cap)
    except OSError:
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_cgroups(parent: Path | None = None, pid: int | None = None) -> list[Path]:
    """The cgroups of runs whose process died before removing them (a worker killed with -9): every
    ``cordbench-<pid>-<n>`` whose creator is gone (or, given ``pid``, that dead process's)."""
    parent = parent or (_writable_hierarchy() if os.geteuid() == 0 else None)
    if parent is None:
        return []
    try:
        names = os.listdir(parent)
    except OSError:
        return []
    stale = []
    for name in names:
        fields = name.split("-")
        if len(fields) != 3 or fields[0] != "cordbench" or not fields[1].isdigit():
            continue
        owner = int(fields[1])
        if (pid is None or owner == pid) and not _alive(owner):
            stale.append(parent / name)
    return stale


def sweep_stale_cgroups(parent: Path | None = None, pid: int | None = None) -> list[Path]:
    """Remove :func:`stale_cgroups` (their processes killed first); returns them."""
    stale = stale_cgroups(parent, pid)
    for folder in stale:
        PidsCgroup(folder, 0).kill_and_remove()
    return stale


def launcher_argv(python: str, cap: int, argv: list[str]) -> list[str]:
    """``argv`` run under RLIMIT_NPROC ``cap`` (set inside the sandbox's user namespace)."""
    return [python, "-S", "-c", LAUNCHER, str(cap), *argv]


def refused_fork(stderr_tail: str) -> bool:
    """Whether a program's last output says a fork or a thread was refused (the rlimit's only trace)."""
    return any(marker in stderr_tail for marker in _REFUSED_FORK)
