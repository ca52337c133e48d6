"""Run untrusted code (``command`` and ``python`` submissions) in a bubblewrap sandbox.

What the program sees (see docs/scoring.md, "Threat model"): a fresh root file system holding, read-only,
the system directories (/usr, /bin, /lib...), a few files of /etc the dynamic loader needs, the Python
environment cordbench runs in (the venv and its base interpreter), the submission's own folder (with its
``results/``, ``predictions/`` and ``cases_index_*.json`` hidden) and the ONE input image under /input; a
writable /output (a fresh, empty folder) and a private /tmp. The submission's ``__pycache__`` folders are
hidden (compiled code there could differ from the hashed sources). It runs in new PID, network, IPC, UTS, user
and cgroup namespaces (no network at all, no other process visible), with a cleared environment (an
explicit allow-list), in a new session, and dies with the scorer. The time limit kills the whole process
tree (the PID namespace dies with its first process); memory and file size are limited with rlimits, and the
number of processes and threads (``model.max_processes``) with RLIMIT_NPROC inside the user namespace or a pids
cgroup (:mod:`benchmark.models.process_cap`).

Where bubblewrap is missing (or cannot create namespaces) untrusted code is refused unless the caller
asks for ``--no-sandbox``; such runs still get a cleared environment and a process-group kill, and their
results are marked ``sandbox: none``.
"""

from __future__ import annotations

import ctypes
import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from benchmark.errors import CordbenchError
from benchmark.models import process_cap

SandboxMode = Literal["bubblewrap", "none", "not-needed"]
"""How a results file's model was isolated: bubblewrap; none (``--no-sandbox``); not-needed (nnU-Net
checkpoints, rebuilt by cordbench itself from an allow-listed network class)."""

INPUT_DIR = "/input"
OUTPUT_DIR = "/output"
CODE_DIR = "/opt/cordbench"  # the benchmark package, read-only, for the python runner
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_ENTRIES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/alternatives",
               "/etc/passwd", "/etc/group", "/etc/nsswitch.conf")
HIDDEN_FOLDERS = ("results", "predictions")  # the scorer's own outputs inside a submission folder
ENV_PASSED = ("LANG", "LC_ALL", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "CUDA_VISIBLE_DEVICES")
# passed too when the GPU is shown: where the host finds the CUDA driver's libraries (read-only under /usr or the
# interpreter's folders in the sandbox) and which devices the container runtime exposed
GPU_ENV_PASSED = ("LD_LIBRARY_PATH", "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES")
TMP_SIZE_BYTES = 2 << 30
FILE_SIZE_LIMIT_BYTES = 4 << 30
TAIL_BYTES = 4096


class SandboxError(CordbenchError, RuntimeError):
    """Untrusted code cannot be run safely (no working bubblewrap and no ``--no-sandbox``)."""


@dataclass(frozen=True)
class SandboxRun:
    """How one sandboxed program ended."""

    returncode: int | None
    stdout_tail: str
    stderr_tail: str
    timed_out: bool
    process_cap: int | None = None  # the cap on processes and threads this run had (None: none applied)
    process_cap_hit: bool = False  # a fork or thread was refused because the cap was reached

    def describe_crash(self) -> str:
        lines = (self.stderr_tail or self.stdout_tail).strip().splitlines()[-3:]
        if self.process_cap_hit:
            return (f"process-limit: a new process or thread was refused at the cap of {self.process_cap} running at "
                    f"once (model.max_processes); exit code {self.returncode}: {' | '.join(lines)}")
        return f"crash: exit code {self.returncode}: {' | '.join(lines)}"

    def describe_timeout(self, timeout_s: float) -> str:
        cap = f" (after reaching its cap of {self.process_cap} processes)" if self.process_cap_hit else ""
        return f"timeout: no result within {timeout_s:g} s{cap}"


@dataclass(frozen=True)
class SandboxSpec:
    """One run: what is bound where, and the limits."""

    folder: Path  # the submission folder: read-only, the working directory
    inputs: dict[str, Path]  # name under /input -> host file (read-only)
    output_dir: Path  # host folder bound writable at /output (fresh and empty)
    timeout_s: float
    memory_mb: int | None = None
    gpu: bool = False
    python_path: tuple[str, ...] = ()
    readonly_extra: tuple[Path, ...] = ()  # further host paths bound read-only at the same place
    env: dict[str, str] = field(default_factory=dict)
    max_processes: int | None = None  # processes and threads at once (benchmark.models.process_cap)


@functools.lru_cache(maxsize=1)
def bwrap_executable() -> str | None:
    """The bwrap binary, when it exists AND can create its namespaces here (probed once)."""
    found = shutil.which("bwrap")
    if found is None:
        return None
    probe = [found, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"]
    try:
        completed = subprocess.run(probe, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return found if completed.returncode == 0 else None


def sandbox_available() -> bool:
    return bwrap_executable() is not None


def untrusted_mode(allow_unsandboxed: bool) -> SandboxMode:
    """"bubblewrap" when it works; "none" only when the caller allowed it; otherwise a SandboxError."""
    if sandbox_available():
        return "bubblewrap"
    if allow_unsandboxed:
        return "none"
    raise SandboxError("bubblewrap (bwrap) is missing or cannot create namespaces on this machine: cordbench refuses "
                       "to run untrusted submission code without it. Install it (`apt-get install bubblewrap`) or "
                       "pass --no-sandbox (the results are then marked `sandbox: none`).")


def visible_input(mode: SandboxMode, spec: SandboxSpec, name: str) -> str:
    """The path under which the program sees input ``name``."""
    return f"{INPUT_DIR}/{name}" if mode == "bubblewrap" else str(spec.inputs[name])


def visible_output(mode: SandboxMode, spec: SandboxSpec) -> str:
    return OUTPUT_DIR if mode == "bubblewrap" else str(spec.output_dir)


def python_code_path(mode: SandboxMode) -> str:
    """Where the benchmark package (for ``python -m benchmark.models.runner``) is importable from."""
    return CODE_DIR if mode == "bubblewrap" else str(Path(__file__).resolve().parents[2])


def _interpreter_dirs() -> list[Path]:
    # the venv, its base interpreter, and site-packages folders a .pth file adds (an environment layered over
    # another one: its packages are part of "the Python environment cordbench runs in")
    site_folders = [Path(entry) for entry in sys.path
                    if entry and Path(entry).name in ("site-packages", "dist-packages") and Path(entry).is_dir()]
    dirs = [Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent.parent, *site_folders]
    unique: list[Path] = []
    for directory in dirs:
        resolved = directory.resolve()
        if not any(resolved == kept or kept in resolved.parents for kept in unique) and not str(resolved).startswith("/usr/"):
            unique = [kept for kept in unique if resolved not in kept.parents] + [resolved]
    return unique


def _environment(mode: SandboxMode, spec: SandboxSpec, home: str) -> dict[str, str]:
    passed = ENV_PASSED + (GPU_ENV_PASSED if spec.gpu else ())
    env = {key: os.environ[key] for key in passed if key in os.environ}
    env.setdefault("LANG", "C.UTF-8")
    env.update({
        "PATH": f"{Path(sys.prefix) / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": home,
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    if spec.python_path:
        env["PYTHONPATH"] = ":".join(spec.python_path)
    env.update(spec.env)
    return env


def bwrap_arguments(spec: SandboxSpec) -> list[str]:
    """The bwrap command line (without the program) for one run."""
    bwrap = bwrap_executable()
    assert bwrap is not None
    args = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--clearenv",
            "--hostname", "cordbench-sandbox", "--proc", "/proc", "--dev", "/dev",
            "--size", str(TMP_SIZE_BYTES), "--tmpfs", "/tmp"]
    for directory in SYSTEM_DIRS:
        if os.path.islink(directory):
            args += ["--symlink", os.readlink(directory), directory]
        elif os.path.isdir(directory):
            args += ["--ro-bind", directory, directory]
    for entry in ETC_ENTRIES:
        args += ["--ro-bind-try", entry, entry]
    for directory in _interpreter_dirs():
        args += ["--ro-bind", str(directory), str(directory)]
    args += ["--ro-bind", str(Path(__file__).resolve().parents[1]), f"{CODE_DIR}/benchmark"]
    folder = Path(spec.folder).resolve()
    args += ["--ro-bind", str(folder), str(folder)]
    for hidden in HIDDEN_FOLDERS:
        if (folder / hidden).is_dir():
            args += ["--tmpfs", str(folder / hidden)]
    for index_file in sorted(folder.glob("cases_index*")):
        args += ["--ro-bind", "/dev/null", str(index_file)]
    for cache in sorted(folder.rglob("__pycache__")):
        # bytecode planted next to the hashed sources could run instead of them ("unchecked-hash" .pyc files are
        # used without looking at the source): the submission's own caches are hidden, the venv's are used
        if cache.is_dir() and not cache.is_symlink():
            args += ["--tmpfs", str(cache)]
    for extra in spec.readonly_extra:
        args += ["--ro-bind", str(Path(extra).resolve()), str(Path(extra).resolve())]
    for name, host_file in spec.inputs.items():
        args += ["--ro-bind", str(Path(host_file).resolve()), f"{INPUT_DIR}/{name}"]
    args += ["--bind", str(Path(spec.output_dir).resolve()), OUTPUT_DIR]
    if spec.gpu:
        for device in sorted(Path("/dev").glob("nvidia*")):
            args += ["--dev-bind", str(device), str(device)]
    args += ["--remount-ro", "/"]
    for key, value in _environment("bubblewrap", spec, "/tmp").items():
        args += ["--setenv", key, value]
    args += ["--chdir", str(folder)]
    return args


_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _limits(memory_mb: int | None, cgroup_procs: str | None = None):
    def apply() -> None:  # runs in the child between fork and exec: no locks, only system calls
        if cgroup_procs is not None:  # join the run's pids cgroup first: every descendant is counted and capped
            with open(cgroup_procs, "w") as handle:
                handle.write("0")
        if _LIBC is not None:  # killed with the scorer: a worker killed with -9 leaves no program running
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if memory_mb is not None:
            limit = int(memory_mb) * 2**20
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT_BYTES, FILE_SIZE_LIMIT_BYTES))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


def _tail(path: Path) -> str:
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - TAIL_BYTES))
        return handle.read().decode("utf-8", errors="replace")


def run_program(mode: SandboxMode, spec: SandboxSpec, argv: list[str], log_dir: Path) -> SandboxRun:
    """Run ``argv`` under ``mode`` with the spec's limits; stdout/stderr go to files in ``log_dir`` (host only).

    On timeout the whole process group is killed; inside bubblewrap that ends the PID namespace, so no
    descendant survives (one that called setsid() included). Without the sandbox a descendant that left the
    process group can survive: one more reason the sandbox is the default.
    """
    cap = spec.max_processes
    cgroup = process_cap.new_cgroup(cap) if cap is not None else None
    if mode == "bubblewrap":
        if cap is not None and cgroup is None and process_cap.cap_method() == "rlimit":
            argv = process_cap.launcher_argv(sys.executable, cap, list(argv))
        command, env, cwd = bwrap_arguments(spec) + ["--", *argv], {}, None
    else:
        home = Path(log_dir) / "home"
        home.mkdir(exist_ok=True)
        command, env, cwd = list(argv), _environment(mode, spec, str(home)), spec.folder
    applied = cap if cgroup is not None or (mode == "bubblewrap" and process_cap.cap_method() == "rlimit") else None
    stdout_path, stderr_path = Path(log_dir) / "stdout.txt", Path(log_dir) / "stderr.txt"
    try:
        with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, env=env,
                                       cwd=cwd, start_new_session=True,
                                       preexec_fn=_limits(spec.memory_mb, cgroup.procs_file if cgroup else None))
            timed_out = False
            try:
                process.wait(timeout=spec.timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                _kill_group(process.pid)
                process.wait()
        hit = cgroup.limit_hit() if cgroup is not None else False
    finally:
        if cgroup is not None:
            cgroup.kill_and_remove()
    stderr_tail = _tail(stderr_path)
    if applied is not None and cgroup is None:  # the rlimit leaves no count: the program's own words say it
        hit = process_cap.refused_fork(stderr_tail)
    return SandboxRun(None if timed_out else process.returncode, _tail(stdout_path), stderr_tail, timed_out,
                      process_cap=applied, process_cap_hit=hit)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
