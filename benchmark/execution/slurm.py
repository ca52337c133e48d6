"""The SLURM executor: one submitit job array per batch of units, resources from a named profile.

Profiles live in ``cordbench.yaml`` (current folder, or ``$CORDBENCH_WORKSPACE``)::

    executors:
      slurm-gpu:
        partition: gpu
        gpus_per_task: 1
        cpus_per_task: 8
        mem: 32G
        time: "24:00:00"
        array_parallelism: 16
        units_per_task: auto      # pack tiny scoring units into one array task (see arrays.py)

Units go into as few job arrays as the cluster's ``MaxArraySize`` (read with ``scontrol show config``) allows,
several tiny units per array task where measured to be tiny (benchmark.execution.arrays); the results are the
same bytes whatever the grouping.

Every job runs ``run_unit`` (the same code as the local executor) inside a ``submitit.helpers.Checkpointable``:
when SLURM pre-empts a job or its time runs out, submitit requeues it and the unit starts again; a training unit
continues from nnU-Net's latest checkpoint (``train_model(resume=True)``), a scoring unit from the prediction
cache. Job files and logs go to ``<work>/slurm/<request id>/``.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from benchmark.errors import CordbenchError
from benchmark.execution import arrays
from benchmark.execution.local import PACKAGE_PARENT, Failure
from benchmark.execution.units import UnitStore
from benchmark.execution.worker import thread_environment
from benchmark.io import atomic_write_json, describe_validation_error, read_yaml_mapping

CONFIG_NAME = "cordbench.yaml"


class ExecutorConfigError(CordbenchError, ValueError):
    """cordbench.yaml is missing, or names no such profile, or a profile has a bad field."""


class SlurmProfile(BaseModel):
    """Resources of every job of a request (sbatch options)."""

    model_config = ConfigDict(extra="forbid")

    partition: str | None = Field(default=None, description="sbatch --partition")
    time: str | int = Field(default="04:00:00", description="Time limit per job: minutes, HH:MM:SS or D-HH:MM:SS")
    mem: str | None = Field(default=None, description="Memory per node, e.g. 16G")
    cpus_per_task: int = Field(default=1, ge=1, description="CPUs per job; also each job's thread count")
    gpus_per_task: int | None = Field(default=None, ge=0, description="GPUs per job")
    array_parallelism: int = Field(default=64, ge=1, description="Jobs of an array running at once")
    account: str | None = None
    qos: str | None = None
    signal_delay_s: int = Field(default=90, ge=0, description="SIGUSR2 this long before the time limit: "
                                                             "checkpoint and requeue")
    max_requeues: int = Field(default=3, ge=0, description="Requeues after running out of time")
    max_array_size: int | None = Field(default=None, ge=1, description="Array tasks per submission at most "
                                       "(default: the cluster's MaxArraySize, from `scontrol show config`)")
    units_per_task: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        default="auto", description="Units each array task runs one after another: a number, or auto (pack "
                                    "scoring units whose canary took under pack_below_s per case)")
    pack_below_s: float = Field(default=30.0, gt=0, description="auto: a unit estimated under this many seconds "
                                                               "is tiny")
    pack_target_s: float = Field(default=300.0, gt=0, description="auto: seconds of work per packed array task")
    additional: dict[str, str | int] = Field(default_factory=dict, description="Further sbatch options")

    def minutes(self) -> int:
        if isinstance(self.time, int):
            return self.time
        match = re.fullmatch(r"(?:(\d+)-)?(\d+):(\d{2})(?::(\d{2}))?", self.time)
        if not match:
            raise ExecutorConfigError(f"time: {self.time!r} is not minutes, HH:MM:SS or D-HH:MM:SS")
        days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
        return days * 1440 + hours * 60 + minutes + (1 if seconds else 0)

    def submitit_parameters(self) -> dict:
        parameters = {"time": self.minutes(), "cpus_per_task": self.cpus_per_task,
                      "array_parallelism": self.array_parallelism, "signal_delay_s": self.signal_delay_s}
        for name in ("partition", "mem", "gpus_per_task", "account", "qos"):
            value = getattr(self, name)
            if value is not None:
                parameters[name] = value
        if self.additional:
            parameters["additional_parameters"] = dict(self.additional)
        return parameters


def load_profile(name: str, folder: Path) -> SlurmProfile:
    """The named profile of ``<folder>/cordbench.yaml``'s ``executors`` (``slurm`` alone: defaults if absent)."""
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        if name == "slurm":
            return SlurmProfile()
        raise ExecutorConfigError(f"{path}: not found; profile {name!r} must be defined under executors:")
    profiles = read_yaml_mapping(path, ExecutorConfigError).get("executors") or {}
    if not isinstance(profiles, dict):
        raise ExecutorConfigError(f"{path}: executors: must map profile names to sbatch settings")
    if name not in profiles:
        if name == "slurm":
            return SlurmProfile()
        raise ExecutorConfigError(f"{path}: executors: no profile {name!r} (have: {', '.join(profiles) or 'none'})")
    try:
        profile = SlurmProfile.model_validate(profiles[name] or {})
    except ValidationError as error:
        raise ExecutorConfigError(describe_validation_error(path, error, f"executor profile {name!r}")) from error
    profile.minutes()
    return profile


class PackFailed(RuntimeError):
    """Units of a packed array task failed; one line per unit: ``unit <id>: <reason>``."""


class UnitJob:
    """The callable a SLURM array task runs: one unit, or several tiny ones one after another. Checkpointable, so
    a pre-empted or timed-out job is requeued and resumes (units already done are skipped)."""

    def __init__(self, work: str, uids: str | list[str], threads: int):
        self.work, self.threads = work, threads
        self.uids = [uids] if isinstance(uids, str) else list(uids)

    def __call__(self) -> str:
        import signal

        from benchmark import kernels
        from benchmark.execution.units import run_unit
        from benchmark.execution.worker import failure_reason, limit_threads

        kernels.apply()  # on the node that runs the job (its CPU may differ from the submitting host's)
        # submitit ignores SIGTERM in the job's process (it waits for SIGUSR2 to checkpoint). Forked children
        # (nnU-Net's multiprocessing pools) would inherit that and survive Pool.terminate(): the pool then
        # waits for them forever. Children get the default back.
        os.register_at_fork(after_in_child=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))
        limit_threads(self.threads)
        if len(self.uids) == 1:
            return run_unit(self.work, self.uids[0])
        import traceback

        failures = []
        for uid in self.uids:  # one failing unit does not stop the others of its task
            try:
                print(f"unit {uid}: {run_unit(self.work, uid)}", flush=True)
            except Exception as error:
                traceback.print_exc()
                failures.append(f"unit {uid}: {failure_reason(error)}")
        if failures:
            raise PackFailed("\n".join(failures))
        return f"{len(self.uids)} units done"

    def checkpoint(self):
        """Called by submitit on SIGUSR2 (pre-emption, time limit): requeue the same units. Their own state
        (nnU-Net's latest checkpoint, the prediction cache, done.json) is already on disk."""
        import submitit

        return submitit.helpers.DelayedSubmission(UnitJob(self.work, self.uids, self.threads))


def job_setup(threads: int) -> list[str]:
    """The ``export`` lines every job runs before Python starts, explicit whatever sbatch's ``--export`` default:
    thread caps, the CPU kernels asked for (the job pins them on its own node: benchmark.kernels), where the package
    and the workspace are."""
    from benchmark import kernels, workspace

    exports = {**thread_environment(threads), **kernels.child_environment(),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(PACKAGE_PARENT), os.environ.get("PYTHONPATH")]))}
    active = workspace.active()
    if active is not None:
        exports[workspace.ENV_WORKSPACE] = str(active.root)
    return [f"export {key}={json.dumps(value)}" for key, value in sorted(exports.items())]


class SlurmExecutor:
    """Submits units as a job array and (unless ``wait`` is False) follows them to the end."""

    name = "slurm"

    def __init__(self, profile: SlurmProfile, folder: Path, *, poll_s: float = 2.0):
        self.profile = profile
        self.folder = Path(folder)
        self.poll_s = poll_s
        self._tasks_per_array: int | None = None

    def tasks_per_array(self) -> int:
        """Array tasks per submission: the cluster's MaxArraySize (read once), lowered by the profile's cap."""
        if self._tasks_per_array is None:
            cluster, _ = arrays.cluster_max_array_size()
            wanted = min(cluster, self.profile.max_array_size or cluster)
            self._tasks_per_array = arrays.tasks_per_array(wanted)
        return self._tasks_per_array

    def units_per_task(self, store: UnitStore, uids: list[str]) -> int:
        if self.profile.units_per_task != "auto":
            return int(self.profile.units_per_task)
        return arrays.auto_units_per_task([estimated_seconds(store, uid) for uid in uids],
                                          parallelism=self.profile.array_parallelism,
                                          pack_below_s=self.profile.pack_below_s,
                                          pack_target_s=self.profile.pack_target_s)

    def _executor(self, dependency: str | None):
        import submitit

        executor = submitit.SlurmExecutor(folder=self.folder / "%j", max_num_timeout=self.profile.max_requeues,
                                          python=sys.executable)
        parameters = self.profile.submitit_parameters()
        parameters["setup"] = job_setup(self.profile.cpus_per_task)
        parameters["job_name"] = "cordbench"
        if dependency:
            parameters.setdefault("additional_parameters", {})["dependency"] = dependency
        executor.update_parameters(**parameters)
        return executor

    def submit(self, store: UnitStore, uids: list[str], after: list[str] | None = None) -> dict[str, object]:
        """Submit the units as job arrays within the cluster's cap (after the given jobs ended, when ``after``);
        unit id -> submitit job (units packed into one task share its job)."""
        if not uids:
            return {}
        tasks = arrays.pack(uids, self.units_per_task(store, uids))
        submitted: dict[str, object] = {}
        for array in arrays.split(tasks, self.tasks_per_array()):
            executor = self._executor(f"afterany:{':'.join(after)}" if after else None)
            with executor.batch():
                jobs = [executor.submit(UnitJob(str(store.work), task, self.profile.cpus_per_task))
                        for task in array]
            submitted.update({uid: job for task, job in zip(array, jobs) for uid in task})
        self._record(store, submitted)
        return submitted

    def _record(self, store: UnitStore, submitted: dict[str, object]) -> None:
        path = self.folder / "jobs.json"
        known = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        known.update({uid: job.job_id for uid, job in submitted.items()})
        atomic_write_json(path, known)

    def wait(self, store: UnitStore, submitted: dict[str, object], on_change: Callable[[], None] = lambda: None
             ) -> dict[str, Failure | None]:
        """Follow the jobs until each has ended; unit id -> None (done) or its Failure with the job's log."""
        if not submitted:
            return {}
        watcher = next(iter(submitted.values())).watcher
        outcome: dict[str, Failure | None] = {}
        while len(outcome) < len(submitted):
            time.sleep(self.poll_s)
            watcher.update()
            for uid, job in submitted.items():
                if uid in outcome:
                    continue
                if job.paths.result_pickle.exists() or watcher.is_done(job.job_id, mode="cache"):
                    outcome[uid] = self._outcome(store, uid, job)
            on_change()
        return outcome

    def run(self, store: UnitStore, uids: list[str], on_change: Callable[[], None] = lambda: None
            ) -> dict[str, Failure | None]:
        return self.wait(store, self.submit(store, uids), on_change)

    def open(self, store: UnitStore, expected_units: int) -> None:
        pass  # each job array is submitted by `run`

    def close(self) -> None:
        pass

    @staticmethod
    def _outcome(store: UnitStore, uid: str, job) -> Failure | None:
        if store.is_done(uid):
            return None
        log = job.paths.stderr
        try:
            error = job.exception()
        except Exception as problem:  # the job left no result (cancelled, node failure, OOM)
            error = problem
        state = job.watcher.get_state(job.job_id, mode="cache")
        if error is None:
            return Failure(f"job {job.job_id} ended ({state}) without finishing the unit", log)
        lines = [line for line in str(error).strip().splitlines() if line.strip()]
        own = [line for line in lines if line.startswith(f"unit {uid}: ")]  # a packed task names each unit
        if own:
            return Failure(f"job {job.job_id} {state}: {own[-1][len(f'unit {uid}: '):].strip()[:300]}", log)
        detail = next((line for line in reversed(lines) if "Error" in line or "error" in line), lines[-1] if lines else "")
        return Failure(f"job {job.job_id} {state}: {detail.strip()[:300]}", log)


def estimated_seconds(store: UnitStore, uid: str) -> float | None:
    """A scoring unit's expected run time: its canary's measured seconds per case (model loading included, so
    it errs long) times its cases; None for training units and units whose canary has not finished."""
    from benchmark.execution.units import ScoreUnit

    try:
        unit = store.load_spec(uid)
    except CordbenchError:
        return None
    if not isinstance(unit, ScoreUnit):
        return None
    canary = unit.canary_unit or uid
    if not store.is_done(canary):
        return None
    try:
        seconds = float(store.done_info(canary)["seconds"])
        canary_cases = len(store.load_spec(canary).cases)  # type: ignore[union-attr]
    except (OSError, ValueError, KeyError, CordbenchError):
        return None
    return seconds / max(1, canary_cases) * len(unit.cases)
