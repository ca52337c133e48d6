"""``python -m benchmark.execution.worker WORK THREADS REPLY_FD``: a local worker process serving work units.

The local executor starts ``workers`` such processes; each runs the units it is sent one after another. Thread
limits are set before numpy/torch load so that N workers with T threads each use N x T cores, no more, and the CPU
kernels are pinned (or not: ``CORDBENCH_CPU_KERNELS``) before torch computes (benchmark.kernels). Each
unit's output goes to its own log (``units/<id>/attempt-N.log``).
"""

from __future__ import annotations

import os
import signal
import sys
import traceback

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS")


def thread_environment(threads: int) -> dict[str, str]:
    """Environment variables that cap every runtime's threads (OpenMP, BLAS). nnU-Net's augmentation workers are
    set by the trainer itself (in-process by default)."""
    values = {name: str(threads) for name in THREAD_VARIABLES}
    values["CORDBENCH_THREADS"] = str(threads)
    return values


def limit_threads(threads: int) -> None:
    """Cap this process's threads: environment (for libraries not loaded yet), threadpoolctl, torch if loaded."""
    os.environ.update(thread_environment(threads))
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def failure_reason(error: BaseException) -> str:
    from benchmark.errors import CordbenchError

    message = str(error).strip().splitlines()
    text = message[0] if message else ""
    return text if isinstance(error, CordbenchError) else f"{type(error).__name__}: {text}"


def run_logged(work: str, uid: str, log: str) -> str | None:
    """Run one unit with this process's stdout/stderr (file descriptors too) going to ``log``; the failure reason
    or None."""
    from benchmark.execution.units import run_unit

    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, "a", encoding="utf-8") as handle:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
        try:
            print(f"unit {uid}: {run_unit(work, uid)}", flush=True)
            return None
        except Exception as error:  # reported to the executor, which records it with this log's path
            traceback.print_exc()
            return failure_reason(error)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def preload() -> None:
    """Import what every scoring unit needs (~1 s) before the first unit arrives: a worker started beside a
    running canary is warm when the canary passes."""
    import benchmark.evaluation.scoring  # noqa: F401
    import benchmark.execution.units  # noqa: F401


PRIVATE_TMPDIR = "CORDBENCH_WORKER_TMPDIR"  # the worker's own temporary folder, removed when it ends


def _stop_on_signal(signum, _frame) -> None:
    """SIGTERM (the pool closing, Ctrl-C on the scorer, the scorer's death) ends the worker like an exception: the
    running unit's finally blocks kill its model and delete its temporary files before the process exits."""
    raise SystemExit(128 + signum)


def die_with_parent() -> None:
    """SIGTERM this worker when the process that started it dies (even by kill -9), so no worker and no model
    outlives the scorer (Linux; elsewhere the closed stdin ends the worker after its unit)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before prctl took effect
        raise SystemExit(143)


def serve(work: str, threads: int, reply_fd: int) -> int:
    """Run the units named on stdin (``<unit id> TAB <log path>`` lines), one after another, answering
    ``ok TAB <id>`` or ``fail TAB <id> TAB <reason>`` on ``reply_fd``. One process serves many units: the
    interpreter and libraries load once."""
    signal.signal(signal.SIGTERM, _stop_on_signal)
    die_with_parent()
    try:
        limit_threads(threads)
        preload()
        with os.fdopen(reply_fd, "w", buffering=1, encoding="utf-8") as replies:
            for line in sys.stdin:
                uid, log = line.rstrip("\n").split("\t")
                reason = run_logged(work, uid, log)
                replies.write(f"ok\t{uid}\n" if reason is None else f"fail\t{uid}\t{reason}\n")
    finally:
        private = os.environ.get(PRIVATE_TMPDIR)
        if private:
            import shutil

            shutil.rmtree(private, ignore_errors=True)
    return 0


def main(argv: list[str]) -> int:
    from benchmark import kernels

    kernels.apply()  # before anything loads torch: the kernels the executor's environment asks for
    work, threads, reply_fd = argv[0], int(argv[1]), int(argv[2])
    return serve(work, threads, reply_fd)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
