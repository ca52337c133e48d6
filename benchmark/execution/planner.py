"""Requests -> work units with stable ids, and the plan that lists them in merge order.

A scoring request (N submissions on a suite) gives, per submission: the canary unit (the suite's first test case,
alone), then the remaining cases of each dataset in the suite's fixed case order, cut into shards of
``shard_size`` cases. A training request gives one unit per baseline model. The plan's id is the hash of its
units' ids, so planning the same request again (a re-run, another shard, another executor) finds the same plan
and the same unit folders; what is done is not done again.

The plan is saved once (``plans/<id>.json``; the first writer wins) and keeps its ``created_utc``: the merged
results file takes its creation time from the plan, so re-runs, shards and executors of one plan write the same
bytes. ``SOURCE_DATE_EPOCH`` (the reproducible-builds convention), when set, pins that time instead.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from benchmark.execution.units import (CaseRef, ScoreUnit, TrainUnit, UnitError, UnitStore, cases_key, unit_id,
                                      utc_now)
from benchmark.io import atomic_write_json

DEFAULT_SHARD_SIZE = 25


class Plan(BaseModel):
    """One request's units: per group (submission or model), its unit ids in merge order."""

    model_config = ConfigDict(extra="forbid")

    request_id: str
    kind: Literal["score", "train"]
    suite: str
    created_utc: str = Field(description="When the plan was first made (or SOURCE_DATE_EPOCH): the merged "
                                         "results files' created_utc")
    groups: dict[str, list[str]] = Field(description="group -> unit ids; for scoring the first is the canary")

    def unit_ids(self) -> list[str]:
        return [uid for uids in self.groups.values() for uid in uids]

    def canaries(self) -> list[str]:
        return [uids[0] for uids in self.groups.values()] if self.kind == "score" else []


class SubmissionRef(BaseModel):
    """What the planner needs of a submission: its name, folder and identity hash."""

    model_config = ConfigDict(extra="forbid")

    name: str
    folder: str
    identity: str


def plan_time() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        return datetime.fromtimestamp(int(epoch), timezone.utc).isoformat(timespec="seconds")
    return utc_now()


def shard(items: Sequence, size: int) -> list[list]:
    return [list(items[start:start + size]) for start in range(0, len(items), size)]


def plan_scoring_units(submissions: Sequence[SubmissionRef], cases: Sequence[tuple[str, CaseRef]], *, suite: str,
                       benchmark_version: str, shard_size: int = DEFAULT_SHARD_SIZE, **settings
                       ) -> tuple[dict[str, list[str]], dict[str, ScoreUnit]]:
    """Pure planning: (group -> unit ids in merge order, unit id -> unit). ``cases`` are (dataset, case) pairs in
    the suite's order; ``settings`` are the ScoreUnit fields shared by every unit (data_root, device, ...)."""
    if shard_size < 1:
        raise UnitError(f"shard size must be >= 1, got {shard_size}")
    if not cases:
        raise UnitError(f"suite {suite!r} has no test case to score")
    by_dataset: dict[str, list[CaseRef]] = {}
    for dataset, case in cases[1:]:
        by_dataset.setdefault(dataset, []).append(case)
    # the shards are the same for every submission: cut them (and their part of the ids) once
    shards = [(cases[0][0], [cases[0][1]])] + [(dataset, part) for dataset, dataset_cases in by_dataset.items()
                                               for part in shard(dataset_cases, shard_size)]
    keys = [cases_key(part) for _dataset, part in shards]
    defaults = ScoreUnit.model_validate({"group": "x", "submission": "x", "submission_identity": "x", "suite": suite,
                                         "benchmark_version": benchmark_version, "dataset": "x", "cases": [],
                                         **settings}).model_dump()
    groups: dict[str, list[str]] = {}
    units: dict[str, ScoreUnit] = {}
    for submission in submissions:
        if submission.name in groups:
            raise UnitError(f"submission {submission.name!r} is named twice in the request")
        ids: list[str] = []
        for number, ((dataset, part), key) in enumerate(zip(shards, keys)):
            fields = {**defaults, "group": submission.name, "submission": submission.folder,
                      "submission_identity": submission.identity, "dataset": dataset, "cases": part,
                      "canary": number == 0, "canary_unit": ids[0] if ids else None}
            unit = ScoreUnit.model_construct(**fields)  # every field was validated above (defaults, CaseRefs)
            uid = unit_id(unit, key)
            ids.append(uid)
            units[uid] = unit
        groups[submission.name] = ids
    return groups, units


def make_plan(kind: Literal["score", "train"], suite: str, groups: dict[str, list[str]]) -> Plan:
    text = json.dumps({"kind": kind, "suite": suite, "groups": groups}, sort_keys=True)
    request_id = f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
    return Plan(request_id=request_id, kind=kind, suite=suite, created_utc=plan_time(), groups=groups)


def plan_path(work: Path, request_id: str) -> Path:
    return Path(work) / "plans" / f"{request_id}.json"


def save_plan(store: UnitStore, plan: Plan, units: dict[str, ScoreUnit | TrainUnit]) -> Plan:
    """Write every unit's spec and the plan (once: an existing plan of the same id is kept, with its creation
    time). Returns the plan as stored."""
    for uid, unit in units.items():
        store.save_spec(uid, unit)
    path = plan_path(store.work, plan.request_id)
    if not path.exists():
        atomic_write_json(path, plan.model_dump(mode="json"))
    return load_plan(path)


def load_plan(path: Path) -> Plan:
    try:
        return Plan.model_validate_json(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UnitError(f"{path}: cannot read the plan ({error})") from error


def list_plans(work: Path) -> list[Plan]:
    return [load_plan(path) for path in sorted((Path(work) / "plans").glob("*.json"))]


# ---------------------------------------------------------------------------- from the registry
def submission_ref(name: str | Path, submissions_root: Path | None) -> SubmissionRef:
    """A submission's planning identity: its model, inference settings and declared training data."""
    from benchmark.data.declaration import training_declaration
    from benchmark.data.submissions import check_output_folders, load_submission, submission_hash
    from benchmark.evaluation.scoring import ScoringError, check_declared_datasets, check_supplied_folders

    submission = load_submission(name, submissions_root)
    check_output_folders(submission)
    declaration = training_declaration(submission, submissions_root)  # the rule scoring and the audit use
    check_declared_datasets(submission.name, set(declaration.datasets))
    check_supplied_folders(submission)
    if declaration.split_problems:
        raise ScoringError("; ".join(declaration.split_problems))
    declared = {"hash": submission_hash(submission), "manifest": submission.model_dump(mode="json"),
                **declaration.identity()}
    identity = hashlib.sha256(json.dumps(declared, sort_keys=True).encode()).hexdigest()
    return SubmissionRef(name=submission.name, folder=str(submission.folder), identity=identity)


def plan_score_request(names: Sequence[str | Path], suite: str, *, data_root: Path | None,
                       overrides: dict[str, Path] | None = None, device: str | None = None,
                       trust_checkpoint: bool = False, submissions_root: Path | None = None,
                       cache_dir: Path | None = None, shard_size: int = DEFAULT_SHARD_SIZE, sandbox: bool = True,
                       runtime: str | None = None, threads: int = 1) -> tuple[Plan, dict[str, ScoreUnit]]:
    """Plan the scoring of ``names`` on every test case of ``suite``: every file of the frozen split is verified
    first (DataChangedError, as ``score_submission``); checksums are read now and a unit refuses data that changed
    since."""
    from benchmark.data.splits import load_split
    from benchmark.evaluation.scoring import _verify_data, test_cases

    split = load_split(suite)
    _verify_data(split, data_root, overrides, allow_changed_data=False)
    cases = [(case.case.dataset, CaseRef(case_id=case.case.case_id, image_sha256=case.image_sha256))
             for case in test_cases(suite, split, data_root, overrides)]
    refs = [submission_ref(name, submissions_root) for name in names]
    groups, units = plan_scoring_units(
        refs, cases, suite=suite, benchmark_version=split.version, shard_size=shard_size,
        data_root=str(Path(data_root).resolve()) if data_root else None,
        overrides={key: str(Path(value).resolve()) for key, value in (overrides or {}).items()},
        device=device, trust_checkpoint=trust_checkpoint, sandbox=sandbox, runtime=runtime, threads=threads,
        submissions_root=str(Path(submissions_root).resolve()) if submissions_root else None,
        cache_dir=str(Path(cache_dir).resolve()) if cache_dir else None)
    return make_plan("score", suite, groups), units


def raw_digest(raw_folder: Path) -> str:
    """Names and sizes of a raw dataset's files: a cheap stand-in for its content (the trainer checks more)."""
    digest = hashlib.sha256()
    for path in sorted(Path(raw_folder).rglob("*")):
        if path.is_file():
            digest.update(f"{path.relative_to(raw_folder).as_posix()}:{path.stat().st_size}\n".encode())
    return digest.hexdigest()


def plan_train_request(suite: str, *, raw_root: Path, work_dir: Path, profile: Literal["quick", "full"] = "quick",
                       only: Literal["aggregated", "specific"] | None = None, datasets: list[str] | None = None,
                       seed: int = 0, device: str | None = None, epochs: int | None = None,
                       iterations: int | None = None, configuration: str | None = None, fold: str = "all",
                       base_id: int | None = None, augmentation: str | None = None,
                       postprocessing: str | None = None, submissions_root: Path | None = None,
                       num_threads: int | None = None, name: str | None = None, replace: bool = False,
                       seeds: list[int] | None = None) -> tuple[Plan, dict[str, TrainUnit]]:
    """One training unit per baseline of the suite (same models, options and recipe as ``train_baselines``), per
    seed of ``seeds`` (default ``[seed]``; seed N > 0 is named ``<family>-seed<N>``)."""
    from benchmark.training.baselines import check_names_free, plan_baselines, training_recipe

    recipe = training_recipe(suite, profile, epochs=epochs, iterations=iterations, augmentation=augmentation,
                             postprocessing=postprocessing)
    groups: dict[str, list[str]] = {}
    units: dict[str, TrainUnit] = {}
    baselines = [baseline for run_seed in (seeds or [seed])
                 for baseline in plan_baselines(suite, raw_root, profile, only=only, base_id=base_id,
                                                datasets=datasets, name=name, seed=run_seed)]
    if submissions_root is None:
        check_names_free(baselines, replace=replace)
    for baseline in baselines:
        unit = TrainUnit(group=baseline.submission_name, raw_folder=str(baseline.raw_folder.resolve()),
                         work_dir=str(Path(work_dir).resolve()), inputs_digest=raw_digest(baseline.raw_folder),
                         suite=suite, plan_kind=baseline.kind, datasets=list(baseline.datasets),
                         submissions_root=str(Path(submissions_root).resolve()) if submissions_root else None,
                         profile=profile, seed=baseline.seed or seed, epochs=recipe.epochs, iterations=recipe.iterations,
                         augmentation=recipe.augmentation, postprocessing=recipe.postprocessing,
                         configuration=configuration, fold=str(fold), device=device, num_threads=num_threads,
                         replace=replace)
        uid = unit_id(unit)
        groups[baseline.submission_name] = [uid]
        units[uid] = unit
    return make_plan("train", suite, groups), units
