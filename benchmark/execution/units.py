"""Work units: the only thing an executor runs. A unit's outputs appear atomically or not at all.

A scoring unit is (submission, dataset, a shard of its test cases in a fixed order): one process loads the model
once and scores those cases. A training unit is one model (and seed). Each unit lives in ``units/<id>/``:

- ``unit.json``   its spec, written when planned (the id is a hash of its inputs, so re-planning finds it);
- ``running.json`` written when an attempt starts (host, pid, SLURM job);
- ``merge.txt``   (scoring) what the merge reads, and only that: see ``merge_part_text``;
- ``rows.json``   the outputs (per-case rows and cases-index entries, or the registered model);
- ``done.json``   written LAST: finish time and environment. Only a unit with ``done.json`` counts as done;
  an attempt killed at any point (kill -9, scancel, OOM) leaves no ``done.json`` and the unit is re-run;
- ``failures.json`` one entry per failed attempt (reason, log path), written by the executor.
"""

from __future__ import annotations

import re

import hashlib
import json
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from benchmark import __version__
from benchmark.errors import CordbenchError
from benchmark.io import atomic_write_json, atomic_write_text


class UnitError(CordbenchError, RuntimeError):
    """A work unit cannot run: its spec is missing or unreadable, or its inputs changed since it was planned."""


class CanaryStopped(UnitError):
    """The submission's canary case failed: its other units are not run."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _requested_kernels() -> str:
    from benchmark import kernels

    return kernels.current().requested


def _kernels_field() -> Any:
    """The CPU kernels a unit is run with (benchmark.kernels): part of its identity, since pinned and native kernels
    give other weights and masks; the planning process's choice unless given."""
    return Field(default_factory=_requested_kernels, description="pinned | native (CORDBENCH_CPU_KERNELS)")


class CaseRef(_Strict):
    """One test case as planned: its id and the checksum of its image (the unit id depends on both)."""

    case_id: str = Field(description="'<dataset>:<image path relative to the dataset root>'")
    image_sha256: str


class ScoreUnit(_Strict):
    """Predict and score a fixed list of cases of one dataset with one submission."""

    kind: Literal["score"] = "score"
    group: str = Field(description="The submission's name: the results file this unit's rows are merged into")
    submission: str = Field(description="Absolute folder of the submission")
    submissions_root: str | None = Field(default=None, description="Where adapted_from parents are looked up")
    submission_identity: str = Field(description="Hash of the model, its inference settings and its declared "
                                                 "training data (everything a row depends on)")
    suite: str
    benchmark_version: str
    dataset: str
    cases: list[CaseRef]
    canary: bool = Field(default=False, description="The submission's first case, run alone before its other units")
    canary_unit: str | None = Field(default=None, description="Id of the submission's canary unit (None: this is it)")
    data_root: str | None = None
    overrides: dict[str, str] = Field(default_factory=dict)
    device: str | None = None
    trust_checkpoint: bool = False
    sandbox: bool = Field(default=True, description="Run command/python models in the bubblewrap sandbox "
                                                    "(False: --no-sandbox)")
    runtime: str | None = Field(default=None, description="Inference runtime (default: the manifest's)")
    threads: int = Field(default=1, ge=1, description="Inference threads of the unit")
    cache_dir: str | None = Field(default=None, description="Prediction cache (default: <submission>/predictions)")
    cpu_kernels: Literal["pinned", "native"] = _kernels_field()

    def identity(self) -> dict[str, Any]:
        """What the unit's outputs depend on besides its cases (paths to the data are not: the checksums stand
        for the content): the submission's identity (model files, manifest, declared training data), the code
        (``code_digest``), the settings, and where its outputs go (the submission's folder and the prediction
        cache): the same submission copied to a second folder is a different unit, merged into that folder."""
        from benchmark.environment import code_digest

        return {"kind": self.kind, "cordbench": __version__, "code": code_digest(),
                "submission": self.submission_identity, "folder": self.submission, "cache_dir": self.cache_dir,
                "suite": self.suite, "benchmark_version": self.benchmark_version, "dataset": self.dataset,
                "device": self.device, "trust_checkpoint": self.trust_checkpoint, "sandbox": self.sandbox,
                "runtime": self.runtime, "threads": self.threads, "cpu_kernels": self.cpu_kernels}


class TrainUnit(_Strict):
    """Train (or resume) one nnU-Net model; register it as a baseline submission when ``suite`` is set."""

    kind: Literal["train"] = "train"
    group: str = Field(description="The model's submission name")
    raw_folder: str = Field(description="nnU-Net raw dataset folder (DatasetXXX_Name)")
    work_dir: str = Field(description="nnU-Net preprocessed/results folder (checkpoints live here)")
    inputs_digest: str = Field(description="Hash of the raw dataset's file names and sizes")
    suite: str | None = None
    plan_kind: Literal["aggregated", "specific"] | None = None
    datasets: list[str] = Field(default_factory=list)
    submissions_root: str | None = None
    profile: Literal["quick", "full"] = "quick"
    seed: int = 0
    epochs: int | None = None
    iterations: int | None = None
    augmentation: str = "default"
    postprocessing: str = "none"
    configuration: str | None = None
    fold: str = "all"
    device: str | None = None
    num_threads: int | None = None
    replace: bool = Field(default=False, description="Register over a workspace submission of the same name")
    cpu_kernels: Literal["pinned", "native"] = _kernels_field()

    def identity(self) -> dict[str, Any]:
        return {key: value for key, value in self.model_dump(mode="json").items()
                if key not in ("device", "num_threads", "replace")}


Unit = Annotated[Union[ScoreUnit, TrainUnit], Field(discriminator="kind")]
_UNIT_ADAPTER: TypeAdapter = TypeAdapter(Unit)


def cases_key(cases: list[CaseRef]) -> str:
    """The cases' part of a scoring unit's id (computed once per shard when planning many submissions)."""
    return "\n".join(f"{case.case_id}\t{case.image_sha256}" for case in cases)


def unit_id(unit: ScoreUnit | TrainUnit, cases_text: str | None = None) -> str:
    """Stable id: the hash of the unit's inputs (same inputs, same id, on any machine). ``cases_text`` is
    ``cases_key(unit.cases)`` when the caller has it already."""
    text = json.dumps(unit.identity(), sort_keys=True, separators=(",", ":"))
    if isinstance(unit, ScoreUnit):
        text += "\n" + (cases_text if cases_text is not None else cases_key(unit.cases))
    return f"{unit.kind}-{hashlib.sha256(text.encode()).hexdigest()[:20]}"


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class UnitStore:
    """The unit folders under ``<work>/units``; every write is atomic."""

    def __init__(self, work: Path):
        self.work = Path(work).resolve()
        self.root = self.work / "units"
        self._root_text = str(self.root)

    def folder(self, uid: str) -> Path:
        return self.root / uid

    def save_spec(self, uid: str, unit: ScoreUnit | TrainUnit) -> None:
        """Write (or refresh: the data may have moved) a unit's spec; a finished unit's is left alone."""
        path = self.folder(uid) / "unit.json"
        spec = unit.model_dump(mode="json")
        if self.is_done(uid) or (path.is_file() and json.loads(path.read_text(encoding="utf-8")) == spec):
            return
        atomic_write_json(path, spec)

    def load_spec(self, uid: str) -> ScoreUnit | TrainUnit:
        path = self.folder(uid) / "unit.json"
        try:
            return _UNIT_ADAPTER.validate_python(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as error:
            raise UnitError(f"{path}: cannot read the unit's spec ({error})") from error

    def is_done(self, uid: str) -> bool:
        return (self.folder(uid) / "done.json").is_file()

    def done_info(self, uid: str) -> dict[str, Any]:
        return json.loads((self.folder(uid) / "done.json").read_text(encoding="utf-8"))

    def output(self, uid: str) -> dict[str, Any]:
        """The outputs of a finished unit (only read after ``done.json`` exists)."""
        return json.loads((self.folder(uid) / "rows.json").read_text(encoding="utf-8"))

    def _read(self, uid: str, name: str) -> bytes | None:
        # plain string paths: merging reads two files of each of thousands of units, and pathlib costs more than the
        # reads; trying the read also replaces a separate exists() check
        try:
            with open(os.path.join(self._root_text, uid, name), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None

    def read_done(self, uid: str) -> dict[str, Any] | None:
        """``done.json`` of a unit, or None when it is not done."""
        data = self._read(uid, "done.json")
        return None if data is None else json.loads(data)

    def merge_part(self, uid: str) -> tuple[dict[str, Any], bytes] | None:
        """A finished scoring unit's ``merge.txt`` as (head, rows text); None for a unit finished before units
        wrote one (its ``rows.json`` has everything: see ``merge.unit_part``)."""
        data = self._read(uid, MERGE_PART)
        if data is None:
            return None
        head_text, _newline, rows_text = data.partition(b"\n")
        try:
            head = json.loads(head_text)
        except ValueError as error:
            head = {"error": str(error)}
        if not isinstance(head, dict) or head.get("format") != MERGE_PART_FORMAT:
            raise UnitError(f"{self.folder(uid) / MERGE_PART}: line 1 is not a format-{MERGE_PART_FORMAT} head "
                            f"({str(head)[:200]}); delete the unit's folder and run the request again")
        return head, rows_text

    def failures(self, uid: str) -> list[dict[str, str]]:
        path = self.folder(uid) / "failures.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []

    def record_failure(self, uid: str, reason: str, log: Path | str | None) -> None:
        entries = self.failures(uid) + [{"reason": reason, "log": str(log) if log else None, "utc": utc_now()}]
        atomic_write_json(self.folder(uid) / "failures.json", entries)

    def state(self, uid: str) -> Literal["done", "failed", "running", "interrupted", "pending"]:
        """From the files: done, failed (last attempt failed), running (an attempt started, has not finished and its
        process is alive, or runs on another host where this cannot be checked), interrupted (an attempt started on
        this host and its process is gone: Ctrl-C, kill -9, a reboot; the next run redoes it) or pending."""
        folder = self.folder(uid)
        if (folder / "done.json").is_file():
            return "done"
        running, failed = folder / "running.json", folder / "failures.json"
        if failed.is_file() and (not running.is_file() or failed.stat().st_mtime >= running.stat().st_mtime):
            return "failed"
        if not running.is_file():
            return "pending"
        return "interrupted" if self.attempt_alive(uid) is False else "running"

    def attempt_alive(self, uid: str) -> bool | None:
        """Whether the process of the unit's last attempt (``running.json``: host, pid, start) still runs; None when
        that cannot be told from here (another host, an unreadable file). A pid the system gave to a newer process
        since is not the attempt's: the process must have started before the attempt did."""
        import psutil

        try:
            info = json.loads((self.folder(uid) / "running.json").read_text(encoding="utf-8"))
            started = datetime.fromisoformat(info["started_utc"]).timestamp()
            host, pid = info["host"], int(info["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if host != socket.gethostname():
            return None
        try:
            process = psutil.Process(pid)
            return process.status() != psutil.STATUS_ZOMBIE and process.create_time() < started + 2
        except psutil.NoSuchProcess:
            return False
        except psutil.Error:  # e.g. access denied: it exists
            return True

    def attempt_log(self, uid: str) -> Path:
        """A fresh log file for the next attempt of a unit."""
        folder = self.folder(uid)
        folder.mkdir(parents=True, exist_ok=True)
        number = len(list(folder.glob("attempt-*.log"))) + 1
        return folder / f"attempt-{number}.log"


def run_unit(work: Path, uid: str) -> str:
    """Run one unit in this process unless it is done; returns 'done' or 'skipped'. Raises on failure (the
    executor records it)."""
    store = UnitStore(work)
    if store.is_done(uid):
        return "skipped"
    unit = store.load_spec(uid)
    _check_kernels(uid, unit)
    folder = store.folder(uid)
    atomic_write_json(folder / "running.json", {"host": socket.gethostname(), "pid": os.getpid(), "started_utc": utc_now(),
                                                "slurm_job": os.environ.get("SLURM_JOB_ID")})
    started = time.perf_counter()
    if isinstance(unit, ScoreUnit):
        _check_canary(store, unit)
        output = _run_score(unit)
        atomic_write_text(folder / MERGE_PART, merge_part_text(output))
    else:
        output = _run_train(unit)
    atomic_write_json(folder / "rows.json", output)
    from benchmark import kernels
    from benchmark.environment import environment

    atomic_write_json(folder / "done.json", {"finished_utc": utc_now(), "seconds": round(time.perf_counter() - started, 3),
                                             "host": socket.gethostname(), "environment": environment(),
                                             "cpu_kernels": kernels.current().label})
    return "done"


def _check_kernels(uid: str, unit: ScoreUnit | TrainUnit) -> None:
    """A unit runs only in a process with the CPU kernels it was planned with (they decide its outputs)."""
    from benchmark import kernels

    running = kernels.current().requested
    if unit.cpu_kernels != running:
        raise UnitError(f"unit {uid} was planned with {unit.cpu_kernels} CPU kernels, this process runs {running} "
                        f"ones ({kernels.ENV_KERNELS}); run it with the same setting as the request")


def canary_failure(store: UnitStore, canary_uid: str) -> str | None:
    """Why a submission's canary failed (its unit failed, or its one case has a failure), or None."""
    if store.is_done(canary_uid):
        rows = store.output(canary_uid).get("rows", [])
        failed = [row for row in rows if row.get("failure")]
        return f"{failed[0]['case_id']}: {failed[0]['failure']}" if failed else None
    failures = store.failures(canary_uid)
    if failures and store.state(canary_uid) == "failed":
        return failures[-1]["reason"]
    return None


def _check_canary(store: UnitStore, unit: ScoreUnit) -> None:
    if unit.canary_unit is None:
        return
    reason = canary_failure(store, unit.canary_unit)
    if reason is not None:
        raise CanaryStopped(f"{unit.group}: not run, its canary case failed: {reason}")


def unit_test_cases(unit: ScoreUnit) -> tuple[list, list]:
    """The unit's cases, found in its dataset and checked against the checksums they were planned with, and every
    test case of that dataset (a person's CSA range spans the images of all shards, so it is computed over them)."""
    from benchmark.data.bids_index import index_dataset
    from benchmark.data.registry import load_dataset, load_suite
    from benchmark.evaluation.scoring import ScoringError, TestCase
    from benchmark.data.splits import dataset_folder, file_checksum, load_split

    split = load_split(unit.suite)
    if split.version != unit.benchmark_version:
        raise ScoringError(f"split of {unit.suite!r} is now version {split.version}; this unit was planned for "
                           f"{unit.benchmark_version}: plan again")
    overrides = {key: Path(value) for key, value in unit.overrides.items()}
    folder = dataset_folder(unit.dataset, Path(unit.data_root) if unit.data_root else None, overrides)
    if folder is None:
        raise ScoringError(f"dataset {unit.dataset!r} not found under {unit.data_root}")
    role = {entry.id: entry.role for entry in load_suite(unit.suite).datasets}[unit.dataset]
    region = split.datasets[unit.dataset].scored_region
    pairs = {case.case_id: case for case in index_dataset(folder, load_dataset(unit.dataset)).pairs}
    cases = []
    for ref in unit.cases:
        case = pairs.get(ref.case_id)
        if case is None:
            raise ScoringError(f"{folder}: case {ref.case_id} is missing (it was there when the run was planned)")
        digest = file_checksum(folder, case.image)
        if digest != ref.image_sha256:
            raise ScoringError(f"{folder / case.image.path}: content changed since the run was planned")
        cases.append(TestCase(case, folder, digest, role, region))
    test_subjects = set(split.datasets[unit.dataset].test)
    dataset_cases = [TestCase(case, folder, "", role, region) for case in pairs.values() if case.subject in test_subjects]
    return cases, dataset_cases


def _run_score(unit: ScoreUnit) -> dict[str, Any]:
    from benchmark.data.submissions import load_submission, output_subfolder, training_datasets
    from benchmark.evaluation.scoring import declared_training_people, inference_header, score_cases
    from benchmark.evaluation.supplied import predictor_for

    submission = load_submission(Path(unit.submission))
    root = Path(unit.submissions_root) if unit.submissions_root else None
    cache = Path(unit.cache_dir) if unit.cache_dir else output_subfolder(submission, "predictions", create=False)
    cases, dataset_cases = unit_test_cases(unit)
    predictor = predictor_for(submission, cache, cases=cases, device=unit.device,
                              trust_checkpoint=unit.trust_checkpoint, sandbox=unit.sandbox, runtime=unit.runtime,
                              threads=unit.threads)
    rows, index, records = score_cases(predictor, cases, training_datasets(submission, root),
                                       declared_training_people(submission, root), range_cases=dataset_cases)
    dumped = [row.model_dump(mode="json") for row in rows]
    return {"rows": dumped, "index": index, "sandbox": predictor.sandbox_mode, "inference": inference_header(records)}


def render_row(row: dict[str, Any]) -> str:
    """One case row exactly as it appears in a results file (``atomic_write_json``'s format, inside "cases"):
    rendered by the unit so that merging 100,000 rows is a concatenation."""
    return "\n".join("    " + line for line in json.dumps(row, indent=2, sort_keys=True, default=str).splitlines())


MERGE_PART = "merge.txt"
MERGE_PART_FORMAT = 1


def merge_part_text(output: dict[str, Any]) -> str:
    """A scoring unit's ``merge.txt``: line 1 is compact JSON (format, cases-index entries, sandbox, inference, row
    count; JSON escapes every newline in it), the rest the unit's rows exactly as they appear inside a results
    file's "cases", joined by ",\\n". Merging reads this and nothing else of the unit besides ``done.json``: it
    neither parses nor renders rows (``rows.json`` has them as data, for everything else)."""
    head = {"format": MERGE_PART_FORMAT, "index": output["index"], "sandbox": output.get("sandbox"),
            "inference": output.get("inference"), "rows": len(output["rows"])}
    return (json.dumps(head, sort_keys=True, separators=(",", ":"), default=str) + "\n"
            + ",\n".join(render_row(row) for row in output["rows"]))


def _run_train(unit: TrainUnit) -> dict[str, Any]:
    from benchmark.training.baselines import BaselinePlan, train_one_baseline
    from benchmark.data.registry import QuickRecipe

    recipe = QuickRecipe(epochs=unit.epochs, iterations=unit.iterations, augmentation=unit.augmentation,
                         postprocessing=unit.postprocessing)
    fold: int | str = unit.fold if unit.fold == "all" else int(unit.fold)
    if unit.suite is None:  # a bare model (no registration): train only
        from benchmark.training.nnunet.train import train_model

        trained = train_model(Path(unit.raw_folder), Path(unit.work_dir), profile=unit.profile,
                              configuration=unit.configuration, fold=fold, num_epochs=unit.epochs,
                              iterations_per_epoch=unit.iterations, device=unit.device, seed=unit.seed, resume=True,
                              augmentation=unit.augmentation, num_threads=unit.num_threads)
        return {"checkpoint": str(trained.checkpoint), "checkpoint_sha256": trained.checkpoint_sha256,
                "epochs": trained.epochs}
    family = re.sub(r"-seed\d+$", "", unit.group)  # seed N > 0 of a family is named <family>-seed<N>
    plan = BaselinePlan(unit.group, Path(unit.raw_folder), unit.plan_kind or "specific", tuple(unit.datasets),
                        family, unit.seed)
    trained, submission = train_one_baseline(
        plan, unit.suite, work_dir=Path(unit.work_dir), profile=unit.profile, recipe=recipe,
        configuration=unit.configuration, fold=fold, device=unit.device, seed=unit.seed,
        submissions_root=Path(unit.submissions_root) if unit.submissions_root else None,
        num_threads=unit.num_threads, replace=unit.replace)
    return {"checkpoint": str(trained.checkpoint), "checkpoint_sha256": trained.checkpoint_sha256,
            "epochs": trained.epochs, "submission": str(submission.folder)}
