"""The local executor: a pool of worker processes on this machine.

``workers`` processes (default: cores // threads per worker) each run one unit at a time, loading Python and the
libraries once; their OpenMP/BLAS/torch threads are capped at ``threads``, so the pool never oversubscribes the
cores. A worker that dies (kill -9, the OOM killer, a crash in native code) fails only the unit it was running;
a fresh worker takes its place.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import benchmark
from benchmark.execution.units import UnitStore
from benchmark.execution.worker import PRIVATE_TMPDIR, run_logged, thread_environment
from benchmark.io import remove_stale_temp_files

PACKAGE_PARENT = Path(benchmark.__file__).resolve().parents[1]


@dataclass
class Failure:
    reason: str
    log: Path | None


def default_workers(threads: int = 1) -> int:
    """Cores this process may use // threads per worker (at least one worker)."""
    from benchmark.environment import available_cores

    return max(1, available_cores() // max(1, threads))


def worker_environment(threads: int) -> dict[str, str]:
    """This process's environment with the thread caps, the CPU kernels asked for (each worker pins them itself
    before torch loads: benchmark.kernels), and the package importable from where it is."""
    from benchmark import kernels, workspace

    env = dict(os.environ)
    env.update(thread_environment(threads))
    env.update(kernels.child_environment())
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_PARENT), env.get("PYTHONPATH")]))
    active = workspace.active()
    if active is not None:  # `--workspace DIR` holds in this process only: the workers get it from the environment
        env[workspace.ENV_WORKSPACE] = str(active.root)
    return env


def exit_reason(returncode: int) -> str:
    if returncode < 0:
        return f"the unit's worker process was killed by signal {-returncode}"
    return f"the unit's worker process exited with code {returncode}"


#: How long a worker asked to stop (SIGTERM) may take to kill its model and delete its files before SIGKILL.
STOP_GRACE_S = 10.0


class _Worker:
    """One worker process and the unit it is running.

    Each worker gets its own temporary folder (``TMPDIR``, under ``work/tmp/``): the sandbox's scratch copies of
    test images go there, and it is deleted when the worker ends, however it ends (by the worker itself, or by the
    executor when the worker was killed)."""

    def __init__(self, work: Path, threads: int, env: dict[str, str]):
        log = Path(work) / "logs" / "local-workers.log"  # what a worker prints outside of any unit
        log.parent.mkdir(parents=True, exist_ok=True)
        (Path(work) / "tmp").mkdir(exist_ok=True)
        self.tmpdir = Path(tempfile.mkdtemp(prefix="worker-", dir=Path(work) / "tmp"))
        env = {**env, "TMPDIR": str(self.tmpdir), PRIVATE_TMPDIR: str(self.tmpdir)}
        read_fd, write_fd = os.pipe()
        with open(log, "a", encoding="utf-8") as handle:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "benchmark.execution.worker", str(work), str(threads), str(write_fd)],
                stdin=subprocess.PIPE, stdout=handle, stderr=handle, pass_fds=(write_fd,), env=env, text=True)
        os.close(write_fd)
        self.replies = os.fdopen(read_fd, "r", encoding="utf-8")
        self.unit: tuple[str, Path] | None = None
        self.store: UnitStore | None = None

    last_unit: str | None = None

    def send(self, uid: str, log: Path) -> None:
        self.unit = (uid, log)
        self.last_unit = uid
        try:
            self.process.stdin.write(f"{uid}\t{log}\n")
            self.process.stdin.flush()
        except OSError:  # the process died just now: the executor sees it exit and fails the unit
            pass

    def stop(self, kill: bool = False) -> None:
        """End the worker: its stdin closed (it finishes and exits), or with ``kill`` (an interrupted run) SIGTERM,
        which makes it kill its model and delete its files, and SIGKILL after ``STOP_GRACE_S``. Whatever it left
        (its temporary folder; temporary files of a write it died in) is removed after."""
        if kill and self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.stdin.close()
        except OSError:  # the process is gone and the pipe broken
            pass
        try:
            self.process.wait(timeout=STOP_GRACE_S if kill else None)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.replies.close()
        self.clean_up()

    def clean_up(self) -> None:
        """Remove what the (ended) worker may have left: its temporary folder, and temporary files of its pid in its
        last unit's folder and that submission's prediction cache (a write it was killed in)."""
        from benchmark.models.process_cap import sweep_stale_cgroups

        shutil.rmtree(self.tmpdir, ignore_errors=True)
        sweep_stale_cgroups(pid=self.process.pid)  # the pids cgroup of a model it was killed in (root only)
        if self.store is not None and self.last_unit is not None:
            for folder in _written_by_unit(self.store, self.last_unit):
                remove_stale_temp_files(folder, self.process.pid)


def _written_by_unit(store: UnitStore, uid: str) -> list[Path]:
    """The folders a unit writes into: its own, and for a scoring unit its submission's prediction cache folders."""
    from benchmark.data.submissions import load_submission, output_dir
    from benchmark.execution.units import ScoreUnit

    folders = [store.folder(uid)]
    try:
        spec = store.load_spec(uid)
        if not isinstance(spec, ScoreUnit):
            return folders
        cache = Path(spec.cache_dir) if spec.cache_dir else output_dir(load_submission(Path(spec.submission))) / \
            "predictions"
        if cache.is_dir() and not cache.is_symlink():
            folders += [cache] + [path for path in cache.iterdir() if path.is_dir() and not path.is_symlink()]
    except Exception:  # an unreadable spec or manifest: the unit's own folder is what is known
        pass
    return folders


class LocalExecutor:
    """Runs units on a pool of ``workers`` long-lived worker processes.

    Between ``open`` and ``close`` (``execute_plan`` brackets a whole request with them) the pool stays up, so a
    request's phases (the canaries, then the rest, then the retries) reuse warm workers: the second worker starts
    and loads its libraries while the canary runs instead of after it.
    """

    name = "local"

    def __init__(self, workers: int | None = None, threads: int = 1, poll_s: float = 0.2):
        self.threads = max(1, threads)
        self.workers = workers or default_workers(self.threads)
        self.poll_s = poll_s
        self._pool: list[_Worker] = []
        self._work: Path | None = None

    def open(self, store: UnitStore, expected_units: int) -> None:
        """Start the workers a request of ``expected_units`` units will use (at most ``workers``)."""
        self._grow(store, expected_units)

    def close(self) -> None:
        """Stop every worker; one still running a unit (an interrupted run) is killed."""
        pool, self._pool = self._pool, []
        for worker in pool:  # every busy worker is asked to stop at once, then each is waited for
            if worker.unit is not None and worker.process.poll() is None:
                worker.process.terminate()
        for worker in pool:
            worker.stop(kill=worker.unit is not None)

    def _grow(self, store: UnitStore, wanted: int) -> None:
        """Drop idle workers that died (between two runs, say), then start workers up to ``wanted``."""
        if self._work is not None and self._work != store.work:
            self.close()
        for worker in [worker for worker in self._pool if worker.unit is None and worker.process.poll() is not None]:
            worker.stop()
            self._pool.remove(worker)
        self._work = store.work
        env = None
        while len(self._pool) < min(self.workers, wanted):
            env = env or worker_environment(self.threads)
            worker = _Worker(store.work, self.threads, env)
            worker.store = store
            self._pool.append(worker)

    def run(self, store: UnitStore, uids: list[str], on_change: Callable[[], None] = lambda: None
            ) -> dict[str, Failure | None]:
        """Run every unit of ``uids`` (in order); returns unit id -> None (done) or its Failure. Without ``open``
        the pool lives for this call only."""
        owned = not self._pool
        pending = list(uids)
        outcome: dict[str, Failure | None] = {}
        try:
            while pending or any(worker.unit for worker in self._pool):
                self._grow(store, len(pending) + sum(1 for worker in self._pool if worker.unit))
                for worker in self._pool:
                    if worker.unit is None and pending:
                        uid = pending.pop(0)
                        worker.send(uid, store.attempt_log(uid))
                on_change()
                readable = self._collect(store, outcome)
                time.sleep(0 if readable else 0.01)
        except BaseException:
            self.close()
            raise
        if owned:
            self.close()
        on_change()
        return outcome

    def _collect(self, store: UnitStore, outcome: dict[str, Failure | None]) -> list[int]:
        """Read the replies of workers that finished a unit; replace workers that died (their unit failed)."""
        busy = {worker.replies.fileno(): worker for worker in self._pool if worker.unit}
        readable, _, _ = select.select(list(busy), [], [], self.poll_s)
        for fd in readable:
            worker = busy[fd]
            line = worker.replies.readline()
            if not line:  # the process died: its unit failed
                continue
            status, uid, *reason = line.rstrip("\n").split("\t")
            log = worker.unit[1]
            outcome[uid] = None if status == "ok" and store.is_done(uid) else Failure(
                reason[0] if reason else "the unit did not finish", log)
            worker.unit = None
        for worker in list(self._pool):
            if worker.process.poll() is not None:
                if worker.unit is not None:
                    uid, log = worker.unit
                    outcome[uid] = Failure(exit_reason(worker.process.returncode), log)
                worker.unit = None
                worker.stop()
                self._pool.remove(worker)
        return readable


class InProcessExecutor:
    """Runs units one after another in this process (a `--shard i/N` command: the job is the worker)."""

    name = "local"

    def open(self, store: UnitStore, expected_units: int) -> None:
        pass

    def close(self) -> None:
        pass

    def run(self, store: UnitStore, uids: list[str], on_change: Callable[[], None] = lambda: None
            ) -> dict[str, Failure | None]:
        outcome: dict[str, Failure | None] = {}
        for uid in uids:
            log = store.attempt_log(uid)
            reason = run_logged(str(store.work), uid, str(log))
            outcome[uid] = None if reason is None else Failure(reason, log)
            on_change()
        return outcome
