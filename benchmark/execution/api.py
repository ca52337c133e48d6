"""What the CLI calls: plan a request, run it with the chosen executor, merge; shard commands; status."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.errors import CordbenchError
from benchmark.execution.local import InProcessExecutor, LocalExecutor
from benchmark.execution.merge import merge_plan, missing_units
from benchmark.execution.planner import Plan, list_plans, save_plan
from benchmark.execution.runner import RunReport, execute_plan, shard_units, status_rows, stopped_groups
from benchmark.execution.units import UnitStore
from benchmark.execution.workdir import work_root, workspace_root


class ExecutionError(CordbenchError, RuntimeError):
    """A request cannot be run as asked (unknown executor, bad --shard)."""


@dataclass
class RequestOutcome:
    plan: Plan
    store: UnitStore
    report: RunReport
    written: dict[str, Path] = field(default_factory=dict)
    incomplete: dict[str, int] = field(default_factory=dict)  # group -> units not done


def parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    index, sep, count = text.partition("/")
    if not sep or not index.isdigit() or not count.isdigit():
        raise ExecutionError(f"--shard {text!r}: expected i/N, e.g. 2/8")
    return int(index), int(count)


def make_executor(name: str, store: UnitStore, plan: Plan, *, workers: int | None = None, threads: int = 1):
    """``local``, or a SLURM profile name (``slurm`` or one defined in cordbench.yaml)."""
    if name == "local":
        return LocalExecutor(workers=workers, threads=threads)
    if name == "shards":
        raise ExecutionError("--executor shards prints commands; it runs nothing itself")
    from benchmark.execution.slurm import SlurmExecutor, load_profile

    return SlurmExecutor(load_profile(name, workspace_root()), store.work / "slurm" / plan.request_id)


def run_request(plan: Plan, units: dict, *, executor: str = "local", workers: int | None = None, threads: int = 1,
                shard: str | None = None, wait: bool = True, progress: bool = True, merge: bool = True,
                work: Path | None = None) -> RequestOutcome:
    """Save the plan, run its missing units (or one shard's), then merge every complete scoring group."""
    store = UnitStore(work or work_root("running work units"))
    plan = save_plan(store, plan, units)
    selected = None
    parsed = parse_shard(shard)
    if parsed is not None:
        selected = shard_units(plan, *parsed)
    if executor == "local" and not wait:
        raise ExecutionError("--no-wait needs a SLURM executor (the local pool runs in this process)")
    if parsed is not None and executor in ("local", "shards"):
        from benchmark.execution.worker import limit_threads

        limit_threads(threads)
        runner = InProcessExecutor()  # a shard command is itself the worker
    else:
        runner = make_executor(executor, store, plan, workers=workers, threads=threads)
    report = execute_plan(store, plan, runner, units=selected, progress=progress, wait=wait)
    outcome = RequestOutcome(plan, store, report)
    if wait and merge:
        finish(outcome)
    return outcome


def finish(outcome: RequestOutcome) -> None:
    """Merge the scoring groups that are complete (only when no shard restriction left some out)."""
    plan, store = outcome.plan, outcome.store
    missing = {group: len(missing_units(store, plan, group)) for group in plan.groups}
    outcome.incomplete = {group: count for group, count in missing.items() if count}
    if plan.kind == "score":
        outcome.report.stopped.update(stopped_groups(store, plan))  # `cordbench merge` too: no results for them
        outcome.incomplete = {group: count for group, count in outcome.incomplete.items()
                              if group not in outcome.report.stopped}
        outcome.written = merge_plan(store, plan)


def without_executor(argv: list[str]) -> list[str]:
    """A command line without its ``--executor`` option."""
    kept: list[str] = []
    skip = False
    for argument in argv:
        if skip:
            skip = False
        elif argument == "--executor":
            skip = True
        elif not argument.startswith("--executor="):
            kept.append(argument)
    return kept


def shard_commands(plan: Plan, argv: list[str], *, program: str = "cordbench") -> list[str]:
    """One command per unit: the given command line (``score ...``) without ``--executor``, plus ``--shard i/N``."""
    kept = without_executor(argv)
    count = len(plan.unit_ids())
    return [shlex.join([program, *kept, "--shard", f"{index}/{count}"]) for index in range(1, count + 1)]


def merge_command(argv: list[str], *, program: str = "cordbench") -> str:
    """The ``cordbench merge ...`` that writes the results files once every shard has run."""
    kept = without_executor(argv)
    return shlex.join([program, "merge", *kept[1:]])


def status(work: Path | None = None) -> list[dict]:
    store = UnitStore(work or work_root("`cordbench status`"))
    return status_rows(store, list_plans(store.work))
