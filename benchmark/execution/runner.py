"""Run a plan with an executor: canaries first, the rest after, one retry of a failed unit, then the report.

- Units already done are skipped (a re-run does only what is missing).
- Scoring: each submission's canary unit (its first case, alone) runs before its other units; when it fails
  (the model cannot load, the output is not on the image's grid, a supplied mask is missing, ...) the
  submission's other units are not started, no results file is written for it (a failed canary is never a row of
  Dice 0 for a working model) and the reason is reported once; the command exits 1. The next run of the same
  command runs the canary again (it may have failed for a reason fixed since, e.g. a missing library).
- A unit that fails is run once more; failing again, it is reported with its log path while the other units
  complete. Results files are only merged for submissions whose every unit is done.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from benchmark.execution.local import Failure
from benchmark.execution.planner import Plan
from benchmark.execution.units import UnitStore, canary_failure

STATES = ("done", "running", "interrupted", "failed", "pending")


@dataclass
class RunReport:
    skipped: int = 0
    failed: dict[str, Failure] = field(default_factory=dict)
    stopped: dict[str, str] = field(default_factory=dict)
    submitted_jobs: list[str] = field(default_factory=list)


def state_counts(store: UnitStore, uids: list[str]) -> Counter:
    return Counter(store.state(uid) for uid in uids)


def describe_counts(counts: Counter) -> str:
    return ", ".join(f"{counts.get(state, 0)} {state}" for state in STATES)


def shard_units(plan: Plan, index: int, count: int) -> list[str]:
    """Units of shard ``index`` of ``count`` (1-based): every count-th unit of the plan, starting at index."""
    from benchmark.execution.units import UnitError

    uids = plan.unit_ids()
    if count < 1 or not 1 <= index <= count:
        raise UnitError(f"--shard {index}/{count}: expected i/N with 1 <= i <= N")
    if count > len(uids):
        raise UnitError(f"--shard {index}/{count}: the plan has only {len(uids)} units")
    return uids[index - 1::count]


class _Progress:
    """A rich bar over the plan's units: done / running / failed, recomputed from the unit files."""

    def __init__(self, store: UnitStore, uids: list[str], title: str, enabled: bool):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.store, self.uids = store, uids
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[states]}"), TimeElapsedColumn(), disable=not enabled)
        self.task = self.bar.add_task(title, total=len(uids), states="")

    def __enter__(self):
        self.bar.__enter__()
        self.update()
        return self

    def __exit__(self, *exc):
        self.update()
        self.bar.__exit__(*exc)

    def update(self) -> None:
        counts = state_counts(self.store, self.uids)
        self.bar.update(self.task, completed=counts["done"],
                        states=f"{counts['running']} running, {counts['failed']} failed")


def _run_and_record(executor, store: UnitStore, uids: list[str], on_change, retries: int) -> dict[str, Failure]:
    failed: dict[str, Failure] = {}
    todo = [uid for uid in uids if not store.is_done(uid)]
    for attempt in range(retries + 1):
        if not todo:
            break
        outcome = executor.run(store, todo, on_change)
        failed = {uid: failure for uid, failure in outcome.items() if failure is not None}
        for uid, failure in failed.items():
            store.record_failure(uid, failure.reason, failure.log)
        on_change()
        todo = list(failed)
    return failed


def execute_plan(store: UnitStore, plan: Plan, executor, *, units: list[str] | None = None, retries: int = 1,
                 progress: bool = True, wait: bool = True) -> RunReport:
    """Run the plan's units (or the given subset, e.g. one shard) that are not done yet."""
    selected = units if units is not None else plan.unit_ids()
    retry_failed_canaries(store, plan, canaries_done_with_failure(store, plan, selected))
    todo = [uid for uid in selected if not store.is_done(uid)]
    report = RunReport(skipped=len(selected) - len(todo))
    group_of = {uid: group for group, uids in plan.groups.items() for uid in uids}
    canaries = [uid for uid in plan.canaries() if uid in todo]
    rest = [uid for uid in todo if uid not in canaries]
    if not wait:
        first = executor.submit(store, canaries)
        after = sorted({job.job_id.split("_")[0] for job in first.values()})  # the canary array as a whole
        second = executor.submit(store, rest, after=after or None)
        report.submitted_jobs = sorted({job.job_id.split("_")[0] for job in [*first.values(), *second.values()]})
        return report
    executor.open(store, len(todo))  # a pool stays warm from the canaries to the retries
    try:
        with _Progress(store, selected, f"{plan.kind} {plan.suite} ({executor.name})", progress) as bar:
            report.failed.update(_run_and_record(executor, store, canaries, bar.update, retries=0))
            for group, uids in plan.groups.items():
                if plan.kind == "score":
                    reason = canary_failure(store, uids[0])
                    if reason is not None:
                        report.stopped[group] = reason
            rest = [uid for uid in rest if group_of[uid] not in report.stopped]
            report.failed.update(_run_and_record(executor, store, rest, bar.update, retries=retries))
    finally:
        executor.close()
    for uid in list(report.failed):
        if group_of[uid] in report.stopped and uid in plan.canaries():
            del report.failed[uid]  # reported once, as the submission's canary failure
    return report


def canaries_done_with_failure(store: UnitStore, plan: Plan, selected: list[str]) -> list[str]:
    """Canary units of the selection that finished with a failed case (what stopped their submission last time)."""
    return [uid for uid in plan.canaries() if uid in selected and store.is_done(uid) and canary_failure(store, uid)]


def retry_failed_canaries(store: UnitStore, plan: Plan, uids: list[str]) -> None:
    """Make finished-but-failed canaries pending again (their reason kept in ``failures.json``): a canary stops its
    submission, so each run tries it again instead of stopping on a failure that may have been fixed since."""
    for uid in uids:
        store.record_failure(uid, canary_failure(store, uid), None)
        (store.folder(uid) / "done.json").unlink()


def stopped_groups(store: UnitStore, plan: Plan) -> dict[str, str]:
    """Scoring groups whose canary failed -> the reason (from the unit files alone)."""
    if plan.kind != "score":
        return {}
    reasons = {group: canary_failure(store, uids[0]) for group, uids in plan.groups.items()}
    return {group: reason for group, reason in reasons.items() if reason is not None}


def status_rows(store: UnitStore, plans: list[Plan]) -> list[dict]:
    """Per plan and group: unit counts by state, from the unit files alone (what `cordbench status` shows)."""
    rows = []
    for plan in plans:
        for group, uids in plan.groups.items():
            states = {uid: store.state(uid) for uid in uids}
            counts = Counter(states.values())
            rows.append({"plan": plan.request_id, "kind": plan.kind, "suite": plan.suite, "group": group,
                         "units": len(uids), **{state: counts.get(state, 0) for state in STATES},
                         "problem": _group_problem(store, plan, uids, states)})
    return rows


def _group_problem(store: UnitStore, plan: Plan, uids: list[str], states: dict[str, str]) -> str:
    """What `cordbench status` says is wrong with a group: a failed canary, a failed unit, or interrupted units."""
    canary = canary_failure(store, uids[0]) if plan.kind == "score" else None
    if canary is not None:
        return f"stopped, its canary case failed: {canary}"
    failed = [uid for uid in uids if states[uid] == "failed"]
    if failed:
        last = store.failures(failed[0])[-1]
        return f"{last['reason']} (log: {last['log']})"
    interrupted = [uid for uid in uids if states[uid] == "interrupted"]
    if interrupted:
        return (f"{len(interrupted)} unit(s) interrupted (their process is gone, e.g. {store.folder(interrupted[0])}); "
                "run the same command again to redo them")
    return ""


def failure_lines(report: RunReport, store: UnitStore) -> list[str]:
    lines = [f"{group}: stopped, its canary case failed (no results file written; run the same command again once "
             f"fixed): {reason}" for group, reason in report.stopped.items()]
    for uid, failure in report.failed.items():
        lines.append(f"unit {uid} failed: {failure.reason}; log: {failure.log or store.folder(uid)}")
    return lines

