"""Results files: one versioned JSON file per (submission, suite version).

Layout: ``submissions/<name>/results/<suite>_<benchmark_version>.json``. A file holds a header (which
benchmark version, which code, which model, which environment) and one row per test case with every
metric. Files are written atomically and validated on load; files written with an older schema are
upgraded on load (see ``_UPGRADERS``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Callable, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from benchmark.errors import CordbenchError
from benchmark.io import atomic_write_json, describe_validation_error
from benchmark.evaluation.metrics import METRIC_NAMES

SCHEMA_VERSION = 3
Role = Literal["in-domain", "ood"]


class ResultsError(CordbenchError, ValueError):
    """A results file that cannot be read; the message names the file and the bad field."""


class CaseResult(BaseModel):
    """Scores of one submission on one test case."""

    model_config = ConfigDict(extra="forbid")

    case_id: str = Field(description="'<dataset>:<image path relative to the dataset root>'")
    dataset: str
    subject: str
    person: str | None = Field(default=None, description="The person the scan belongs to: the subject merged across "
                               "the dataset's same_person groups and subject_grouping (sessions and rescans of one "
                               "human being are one person). The unit of every interval and test "
                               "(docs/metrics.md); derived from the registry on load when a file lacks it")
    session: str | None = None
    contrast: str
    image_sha256: str
    site: str | None = None
    vendor: str | None = None
    pathology: str | None = None
    suite_role: Role = Field(description="The suite's role for the dataset (in-domain test or OOD test)")
    gt_provenance: str | None = Field(default=None, description="How the mask was made, e.g. manual / automated")
    dataset_in_training: bool = Field(description="Dataset is in the model's declared training data")
    subject_in_training: bool = Field(description="This subject is in the model's declared training data (leak)")
    dice: float
    nsd: float
    hd95: float
    rve: float
    csa_error: float
    csa_mm2: float | None = Field(default=None, description="Prediction's angle-corrected cord CSA (mm²), averaged "
                                  "over the scanner-z range all images of this person and session cover "
                                  "(benchmark.evaluation.csa); 0 for an empty prediction, None when it failed")
    csa_reference_mm2: float | None = Field(default=None, description="The same on the reference mask")
    runtime_s: float | None = None
    peak_memory_mb: float | None = None
    failure: str | None = Field(default=None, description="Why no valid prediction was produced, if so")


class ResultsFile(BaseModel):
    """A submission's scores on one suite version."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    submission: str
    suite: str
    benchmark_version: str = Field(description="Content hash of the suite's split file")
    cordbench_version: str
    model_sha256: str
    model_type: str
    licence: str | None = None
    parameters: int | None = None
    declared_training_datasets: list[str]
    family: str | None = Field(default=None, description="The submission's seed family (submission.yaml `family`)")
    seed: int | None = Field(default=None, description="The submission's training seed (submission.yaml `seed`)")
    created_utc: str
    environment: dict[str, str] = Field(default_factory=dict)
    sandbox: Literal["bubblewrap", "none", "not-needed"] | None = Field(
        default=None, description="How the model was isolated: bubblewrap; none (--no-sandbox); not-needed (nnU-Net "
                                  "checkpoints rebuilt by cordbench from allow-listed classes); null: not recorded")
    runtime: str | None = Field(default=None, description="What ran the network (openvino, onnxruntime, torch); "
                                                          "None for models that do not say or older files")
    threads: int | None = Field(default=None, description="Inference thread count")
    cpu_model: str | None = Field(default=None, description="CPU the per-case runtime_s were measured on")
    inference_device: str | None = Field(default=None, description="cpu or cuda: where the network ran")
    gpu_model: str | None = Field(default=None, description="GPU the per-case runtime_s were measured on (cuda)")
    precision: str | None = Field(default=None, description="float32, bfloat16 or int8: what the network computed "
                                                            "in (nnU-Net models; int8 and bfloat16 are opt-in)")
    test_time_augmentation: bool | None = Field(default=None, description="Test-time mirroring on or off "
                                                                          "(nnU-Net models)")
    cpu_kernels: str | None = Field(
        default=None, description="CPU kernels the network ran with (benchmark.kernels): pinned-avx2 (the same "
                                  "masks on every x86-64 CPU with AVX2), native-<isa> (this CPU's own choice), "
                                  "unpinned-<isa> (pinned asked for, not in effect), cuda; several joined by ' | '; "
                                  "None: no network run by cordbench, or an older file")
    cases: list[CaseResult]

    @model_validator(mode="after")
    def _derive_persons(self) -> "ResultsFile":
        """Rows written before the person was recorded get it from the registry (subject when not registered)."""
        missing = [case for case in self.cases if case.person is None]
        if missing:
            person_of = _person_rule()
            for case in missing:
                case.person = person_of(case.dataset, case.subject)
        return self

    def median_runtime_s(self) -> float | None:
        """Median per-case inference seconds over the file's cases that have one (None when none has)."""
        seconds = sorted(case.runtime_s for case in self.cases if case.runtime_s is not None)
        if not seconds:
            return None
        middle = len(seconds) // 2
        return seconds[middle] if len(seconds) % 2 else (seconds[middle - 1] + seconds[middle]) / 2

    def hardware(self) -> str | None:
        """Where runtime_s was measured, the device first: 'GPU: <model>' on CUDA, 'CPU: <model>, N threads,
        <kernels> kernels' otherwise (None when the file does not say). Speeds compare only where this is the same:
        pinned kernels are slower than native ones on the same CPU, so they are other hardware here."""
        if self.inference_device and self.inference_device != "cpu":
            return f"GPU: {self.gpu_model}" if self.gpu_model else None
        if self.cpu_model is None:
            return None
        parts = [f"CPU: {self.cpu_model}"]
        if self.threads is not None:
            parts.append(f"{self.threads} thread{'s' if self.threads != 1 else ''}")
        if self.cpu_kernels:
            parts.append(f"{self.cpu_kernels} kernels")
        return ", ".join(parts)

    def frame(self) -> pd.DataFrame:
        """Per-case rows with the header fields the leaderboard groups by."""
        frame = pd.DataFrame([case.model_dump() for case in self.cases])
        if frame.empty:
            frame = pd.DataFrame(columns=list(CaseResult.model_fields))
        frame.insert(0, "submission", self.submission)
        frame["suite"] = self.suite
        frame["benchmark_version"] = self.benchmark_version
        frame["model_type"] = self.model_type
        return frame


def _person_rule():
    """(dataset, subject) -> person id, by the registry's grouping; a dataset the registry does not know (or
    cannot read) keeps the subject as the person."""
    from benchmark.data.registry import load_dataset

    datasets: dict[str, Any] = {}

    def person_of(dataset_id: str, subject: str) -> str:
        if dataset_id not in datasets:
            try:
                datasets[dataset_id] = load_dataset(dataset_id)
            except CordbenchError:
                datasets[dataset_id] = None
        dataset = datasets[dataset_id]
        return dataset.person_of(subject) if dataset is not None else subject

    return person_of


def results_path(submission_dir: Path, suite: str, benchmark_version: str) -> Path:
    """Where the results of a submission on one suite and benchmark version live: ``results/<suite>_<version>.json``."""
    return Path(submission_dir) / "results" / f"{suite}_{benchmark_version}.json"


def write_results(path: Path, results: ResultsFile) -> Path:
    atomic_write_json(path, results.model_dump(mode="json"))
    return path


def _upgrade_v1(raw: dict[str, Any]) -> dict[str, Any]:
    """v1 (the seed prototype's format) nested metrics under ``metrics`` and had no provenance/leak fields."""
    upgraded = {key: value for key, value in raw.items() if key != "cases"}
    upgraded["cases"] = []
    for case in raw.get("cases", []):
        row = {key: value for key, value in case.items() if key != "metrics"}
        row.update(case.get("metrics", {}))
        row.setdefault("gt_provenance", None)
        row.setdefault("subject_in_training", False)
        upgraded["cases"].append(row)
    upgraded["schema_version"] = 2
    return upgraded


def _upgrade_v2(raw: dict[str, Any]) -> dict[str, Any]:
    """v2 had no ``person`` per case (derived on validation from the registry's same-person groups and sessions,
    :meth:`ResultsFile._derive_persons`) and no header fields for the CPU kernels, GPU model, precision and
    mirroring (None: not recorded)."""
    return {**raw, "schema_version": 3}


_UPGRADERS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _upgrade_v1, 2: _upgrade_v2}


def load_results(path: Path) -> ResultsFile:
    """Read, upgrade and validate one results file; errors name the file and the field path."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ResultsError(f"{path}: cannot read results file ({error.strerror or error})") from error
    if data.startswith(b"PAR1") or data.endswith(b"PAR1"):
        raise ResultsError(f"{path}: cannot read results file: a Parquet file; cordbench results files are JSON "
                           "(results/<suite>_<version>.json, written by `cordbench score`)")
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ResultsError(f"{path}: cannot read results file: not JSON ({error}); truncated, or not written by "
                           "cordbench") \
            from error
    if not isinstance(raw, dict):
        raise ResultsError(f"{path}: results file must hold a JSON object")
    version = raw.get("schema_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or not (version in _UPGRADERS or version == SCHEMA_VERSION):
        raise ResultsError(f"{path}: schema_version {version!r} is not supported (newest: {SCHEMA_VERSION})")
    while version < SCHEMA_VERSION:
        raw = _UPGRADERS[version](raw)
        version = raw["schema_version"]
    try:
        results = ResultsFile.model_validate(raw)
    except ValidationError as error:
        raise ResultsError(describe_validation_error(path, error, "results file")) from error
    problems = value_problems(results)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ResultsError(f"{path}: {problems[0]}{more}; a results file cordbench wrote never holds this: "
                           "edited or damaged, score again")
    return results


#: The range of each metric (docs/metrics.md): Dice and NSD are fractions; distances, volume and area errors are
#: non-negative (the worst values of an empty mask are finite, so +inf only ever comes from an older file).
METRIC_RANGES: dict[str, tuple[float, float]] = {"dice": (0.0, 1.0), "nsd": (0.0, 1.0), "hd95": (0.0, math.inf),
                                                 "rve": (0.0, math.inf), "csa_error": (0.0, math.inf)}
_NON_NEGATIVE = ("csa_mm2", "csa_reference_mm2", "runtime_s", "peak_memory_mb")
MAX_NAME_LENGTH = 200  # a submission name is a folder name (at most 255 bytes on common file systems)


def value_problems(results: ResultsFile) -> list[str]:
    """What a results file holds that scoring never writes: a metric outside its range (NaN included), a negative
    area or time, a case id twice, a submission name that is no folder name. Empty when it is well-formed."""
    problems = []
    name = results.submission
    if not name or len(name.encode("utf-8")) > MAX_NAME_LENGTH or "/" in name or "\0" in name:
        problems.append(f"submission: {name[:40]!r}{'...' if len(name) > 40 else ''} ({len(name)} characters) is not "
                        f"a submission name (a folder name of at most {MAX_NAME_LENGTH} bytes)")
    first_row: dict[str, int] = {}
    for number, case in enumerate(results.cases, start=1):
        for name, (low, high) in METRIC_RANGES.items():
            value = getattr(case, name)
            if not low <= value <= high:  # False for NaN
                problems.append(f"case {case.case_id}: {name} is {value}, outside [{low:g}, {high:g}]")
        for name in _NON_NEGATIVE:
            value = getattr(case, name)
            if value is not None and not value >= 0:
                problems.append(f"case {case.case_id}: {name} is {value}, not a non-negative number")
        if case.case_id in first_row:
            problems.append(f"case {case.case_id} appears twice (rows {first_row[case.case_id]} and {number})")
        first_row.setdefault(case.case_id, number)
    return problems


def find_results_files(*roots: Path) -> list[Path]:
    """Every ``results/*.json`` below the given roots (submissions folders or extra folders), sorted."""
    found: set[Path] = set()
    for root in roots:
        root = Path(root)
        if root.is_file():
            found.add(root)
        elif root.is_dir():
            # hidden folders (submissions/.replaced/: models moved aside by `train --replace`) are not results
            found.update(path for path in root.rglob("results/*.json")
                         if not any(part.startswith(".") for part in path.relative_to(root).parts))
    return sorted(found)


def load_many(paths: list[Path]) -> tuple[list[ResultsFile], dict[Path, str]]:
    """Load every file; return the valid ones and, for each skipped file, why it was skipped."""
    loaded: list[ResultsFile] = []
    skipped: dict[Path, str] = {}
    for path in paths:
        try:
            loaded.append(load_results(path))
        except ResultsError as error:
            skipped[path] = str(error)
    return loaded, skipped


def load_cases_index(
    files: Iterable[tuple[str | None, Path | str]], *, base: Path | None = None
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Merge cases-index JSON files into ``{case_id: {"image", "label", "prediction": {submission: path}}}``.

    ``files`` holds ``(submission, path)`` pairs. Scoring writes one index per submission and suite,
    ``submissions/<name>/cases_index_<suite>.json``, mapping ``case_id`` to ``{"image", "label",
    "prediction"}``; a string ``prediction`` belongs to that file's submission. A file given without a
    submission (``--cases-index``) may map ``prediction`` to ``{submission: path}``. Relative paths are
    taken relative to ``base`` (default: the current folder, where scoring ran). Absent files are
    ignored; unreadable ones are reported, never fatal.
    """
    root = Path(base) if base is not None else Path.cwd()
    index: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for submission, path in files:
        path = Path(path)
        if not path.is_file():
            continue
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            problems.append(f"{path}: cannot read cases index ({error})")
            continue
        if not isinstance(raw, dict):
            problems.append(f"{path}: a cases index must be a JSON object mapping case_id to {{image, label, prediction}}")
            continue
        for case_id, entry in raw.items():
            if not isinstance(entry, Mapping):
                continue
            target = index.setdefault(str(case_id), {"prediction": {}})
            for key in ("image", "label"):
                if entry.get(key) and key not in target:
                    target[key] = root / str(entry[key])
            prediction = entry.get("prediction")
            if isinstance(prediction, str) and prediction and submission is not None:
                target["prediction"][submission] = root / prediction
            elif isinstance(prediction, Mapping):
                for name, value in prediction.items():
                    if value:
                        target["prediction"][str(name)] = root / str(value)
    return index, problems


def cases_frame(results: list[ResultsFile]) -> pd.DataFrame:
    """All per-case rows of several results files in one table."""
    frames = [result.frame() for result in results]
    if not frames:
        return pd.DataFrame(columns=["submission", *CaseResult.model_fields])
    return pd.concat(frames, ignore_index=True)


__all__ = [
    "SCHEMA_VERSION",
    "METRIC_NAMES",
    "CaseResult",
    "ResultsFile",
    "ResultsError",
    "results_path",
    "write_results",
    "load_results",
    "value_problems",
    "find_results_files",
    "load_many",
    "cases_frame",
    "load_cases_index",
]
