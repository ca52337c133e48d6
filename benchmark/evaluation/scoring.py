"""Score a submission on every test split of a suite and write its versioned results file.

Out-of-domain is derived, not declared: a dataset counts as seen by a model when it is in the model's
declared training datasets (including those of the submissions it was adapted from). Leakage is checked
per person: a test row whose person (see the registry's subject grouping) is in the declared training
subjects is flagged ``subject_in_training``.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import nibabel as nib
import numpy as np

from benchmark import __version__
from benchmark.data.bids_index import Case, index_dataset, participant_field
from benchmark.training.convert import LABEL_THRESHOLD
from benchmark.errors import CordbenchError
from benchmark.evaluation.csa import case_csa, csa_profile_file, scan_ranges
from benchmark.evaluation.inference import ModelLoadError, PredictionRecord, ScorerFaultError
from benchmark.environment import environment
from benchmark.evaluation.supplied import predictor_for
from benchmark.io import atomic_write_json
from benchmark.evaluation.metrics import compute_metrics, scored_region
from benchmark.data.registry import ScoredRegion, load_dataset, load_suite
from benchmark.evaluation.results import CaseResult, ResultsFile, results_path, write_results
from benchmark.data.splits import (SplitFile, VerifyReport, check_split_covers_suite, dataset_folder, file_checksum,
                                   load_split, verify_split)
from benchmark.data.declaration import training_declaration
from benchmark.data.submissions import (Submission, check_output_folders, load_submission, model_sha256, output_dir,
                                        output_subfolder, training_datasets, unregistered_datasets)


class ScoringError(CordbenchError, ValueError):
    """Scoring cannot start: data missing or different from the split, bad declared training data."""


class DataChangedError(ScoringError):
    """The local test data differ from the frozen split; ``report`` is what `splits verify` shows."""

    exit_code = 1

    def __init__(self, message: str, report: VerifyReport):
        super().__init__(message)
        self.report = report


CHANGED_DATA_MARK = "+changed-data-"
"""Results scored with --allow-changed-data carry the version '<split version>+changed-data-<digest>'."""


@dataclass(frozen=True)
class TestCase:
    case: Case
    root: Path
    image_sha256: str
    role: str
    scored_region: ScoredRegion = "whole-image"

    @property
    def image_path(self) -> Path:
        return self.root / self.case.image.path

    @property
    def label_path(self) -> Path:
        return self.root / self.case.label.path


def test_cases(suite_id: str, split: SplitFile, data_root: Path | None,
               overrides: dict[str, Path] | None = None, *, check_checksums: bool = True) -> list[TestCase]:
    """Every labelled image of every test subject of the suite, checked against the split's checksums."""
    suite = load_suite(suite_id)
    check_split_covers_suite(suite, split)
    cases: list[TestCase] = []
    for entry in suite.datasets:
        folder = dataset_folder(entry.id, data_root, overrides)
        if folder is None:
            raise ScoringError(f"dataset {entry.id!r} not found under {data_root}; every test set of the suite "
                               "is needed (a partial score would be shown as incomplete)")
        split_entry = split.datasets[entry.id]
        if split_entry.status != "fixed":
            raise ScoringError(f"split of {entry.id!r} is not frozen: run `cordbench splits make --suite {suite_id}`")
        test_subjects = set(split_entry.test)
        for case in index_dataset(folder, load_dataset(entry.id)).pairs:
            if case.subject not in test_subjects:
                continue
            if not (case.image.downloaded and case.label.downloaded):
                raise ScoringError(f"{folder / case.image.path}: not downloaded; {('git annex get / datalad get')}")
            digest = file_checksum(folder, case.image)
            expected = split_entry.files.get(case.image.path)
            if check_checksums and expected is not None and digest != expected:
                raise ScoringError(f"{folder / case.image.path}: content differs from the split's checksum; "
                                   f"run `cordbench splits verify --suite {suite_id}`")
            cases.append(TestCase(case, folder, digest, entry.role, split_entry.scored_region))
    return cases


def declared_training_people(submission: Submission, root: Path | None = None) -> dict[str, set[str]] | None:
    """dataset id -> people the model (or any submission it was adapted from) was trained on, when subjects or a
    split are declared (:func:`benchmark.data.declaration.training_declaration`, the one rule the audit, the
    planner and the results' leak flags share); a training.split that cannot be resolved is a ScoringError."""
    declaration = training_declaration(submission, root)
    if declaration.split_problems:
        raise ScoringError("; ".join(declaration.split_problems))
    people = declaration.people()
    return {dataset_id: set(listed) for dataset_id, listed in people.items()} or None


def _ground_truth(label_path: Path) -> tuple[np.ndarray, tuple[float, float, float]]:
    label = nib.as_closest_canonical(nib.load(str(label_path)))
    data = np.asarray(label.dataobj, dtype=np.float32)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    spacing = tuple(float(value) for value in label.header.get_zooms()[:3])
    return (data >= LABEL_THRESHOLD).astype(np.uint8), spacing


def case_metrics(test_case: TestCase, record: PredictionRecord) -> dict[str, float]:
    """Metrics in canonical RAS+ within the case's scored region; a failed or missing prediction is scored as an
    empty mask."""
    gt, spacing = _ground_truth(test_case.label_path)
    if record.ok:
        pred = np.asarray(nib.as_closest_canonical(nib.load(record.prediction)).dataobj, dtype=np.uint8)
    else:
        pred = np.zeros_like(gt)  # what worst_metrics scores
    return compute_metrics(*scored_region(pred, gt, test_case.scored_region), spacing)


def case_row(test_case: TestCase, record: PredictionRecord, metrics: dict[str, float], trained_on: set[str],
             trained_people: dict[str, set[str]] | None) -> CaseResult:
    case = test_case.case
    dataset = load_dataset(case.dataset)
    provenance = participant_field(case, dataset, "gt_provenance")
    people = (trained_people or {}).get(case.dataset, set())
    return CaseResult(
        case_id=case.case_id,
        dataset=case.dataset,
        subject=case.subject,
        person=case.person,
        session=case.session,
        contrast=case.contrast,
        image_sha256=test_case.image_sha256,
        site=participant_field(case, dataset, "site"),
        vendor=participant_field(case, dataset, "vendor"),
        pathology=participant_field(case, dataset, "pathology"),
        suite_role=test_case.role,
        gt_provenance=provenance.lower() if provenance else "manual",
        dataset_in_training=case.dataset in trained_on,
        subject_in_training=case.person in people,
        runtime_s=record.runtime_s,
        peak_memory_mb=record.peak_memory_mb,
        failure=record.failure,
        **{name: round(float(value), 6) for name, value in metrics.items()},
    )


def score_cases(predictor, cases: list[TestCase], trained_on: set[str], trained_people: dict[str, set[str]] | None,
                on_case=None, range_cases: list[TestCase] | None = None,
                ) -> tuple[list[CaseResult], dict[str, dict[str, str | None]], list[PredictionRecord]]:
    """Predict and score ``cases`` in order with one predictor (the model loads once): the per-case rows,
    cases-index entries and prediction records. A model that cannot be loaded raises ScoringError; a failed case
    is scored as worst. ``range_cases`` (default: ``cases``) are the test cases whose reference masks set each
    person's CSA range: a work unit scoring one shard passes its whole dataset, so shards do not change the CSA."""
    rows: list[CaseResult] = []
    records: list[PredictionRecord] = []
    index: dict[str, dict[str, str | None]] = {}
    # CSA is averaged over the scanner-z range all images of a person (and session) among ``range_cases`` cover:
    # only the masks of the people (and sessions) in ``cases`` are read, each once
    def person(tc: TestCase) -> tuple:
        return tc.case.dataset, tc.case.subject, tc.case.session

    scored_people = {person(tc) for tc in cases}
    basis = [tc for tc in (range_cases if range_cases is not None else cases) if person(tc) in scored_people]
    reference_profiles = functools.lru_cache(maxsize=None)(csa_profile_file)
    csa_ranges = scan_ranges({tc.case.case_id: person(tc) for tc in basis},
                             {tc.case.case_id: tc.label_path for tc in basis}, load=reference_profiles)
    for test_case in cases:
        try:
            record = predictor.predict(test_case.image_path, test_case.image_sha256)
            metrics = case_metrics(test_case, record)
        except ModelLoadError as error:
            raise ScoringError(str(error)) from error
        except ScorerFaultError:
            raise
        except OSError as error:  # the scorer's, never the model's: stop without recording anything
            raise ScorerFaultError(f"{test_case.case.case_id}: scorer fault (not the model's; nothing recorded): "
                                   f"{error}") from error
        records.append(record)
        csa = case_csa(Path(record.prediction) if record.ok else None, test_case.label_path,
                       csa_ranges[test_case.case.case_id], load=reference_profiles)
        rows.append(case_row(test_case, record, metrics, trained_on, trained_people).model_copy(update=csa))
        index[test_case.case.case_id] = {"image": str(test_case.image_path), "label": str(test_case.label_path),
                                         "prediction": record.prediction}
        if on_case is not None:
            on_case(test_case)
    return rows, index, records


def results_file(submission: Submission, suite_id: str, benchmark_version: str, trained_on: set[str],
                 rows: list[CaseResult], *, created_utc: str, environment_info: dict[str, str],
                 sandbox, inference: dict | None = None) -> ResultsFile:
    """The results file of a submission's scored rows (the header every scoring path writes)."""
    return ResultsFile(
        submission=submission.name,
        suite=suite_id,
        benchmark_version=benchmark_version,
        cordbench_version=__version__,
        model_sha256=model_sha256(submission),
        model_type=submission.model.type,
        licence=submission.licence,
        parameters=submission.parameters,
        family=submission.family,
        seed=submission.seed,
        declared_training_datasets=sorted(trained_on),
        created_utc=created_utc,
        environment=environment_info,
        sandbox=sandbox,
        **(inference or {}),
        cases=rows,
    )


def score_submission(
    name: str | Path,
    suite_id: str,
    *,
    data_root: Path | None,
    overrides: dict[str, Path] | None = None,
    device: str | None = None,
    trust_checkpoint: bool = False,
    submissions_root: Path | None = None,
    progress: bool = True,
    out_path: Path | None = None,
    cache_dir: Path | None = None,
    sandbox: bool = True,
    allow_changed_data: bool = False,
    runtime: str | None = None,
    threads: int | None = None,
) -> tuple[ResultsFile, Path]:
    """Predict and score every test case of the suite; write and return the results file.

    Before anything runs, every file of the frozen split is verified (DataChangedError, unless
    ``allow_changed_data``: then the results carry a marked version). ``sandbox=False`` is ``--no-sandbox``:
    command/python models run without bubblewrap and the results say ``sandbox: none``.

    ``out_path`` and ``cache_dir`` redirect the results file and the prediction cache (the reproducibility
    gate re-scores from scratch into a scratch folder, never over the stored results). ``runtime`` overrides
    the manifest's ``inference.runtime``; ``threads`` is the inference thread count (default: available cores).
    """
    from rich.progress import Progress

    submission = load_submission(name, submissions_root)
    split = load_split(suite_id)
    data_changed = _verify_data(split, data_root, overrides, allow_changed_data)
    cases = test_cases(suite_id, split, data_root, overrides, check_checksums=not data_changed)
    version = _changed_data_version(split.version, cases) if data_changed else split.version
    trained_on = training_datasets(submission, submissions_root)
    check_declared_datasets(submission.name, trained_on)
    check_supplied_folders(submission)
    trained_people = declared_training_people(submission, submissions_root)
    # the submission's own folder, or the workspace's for a built-in one (not needed when both are redirected)
    outputs = output_dir(submission) if out_path is None or cache_dir is None else None
    if outputs is not None:
        check_output_folders(submission)
    cache = cache_dir or output_subfolder(submission, "predictions", create=False)
    predictor = predictor_for(submission, cache, cases=cases, device=device, trust_checkpoint=trust_checkpoint,
                              sandbox=sandbox, runtime=runtime, threads=threads)
    with Progress(disable=not progress) as bar:
        task = bar.add_task(f"scoring {submission.name} on {suite_id}", total=len(cases))
        rows, index, records = score_cases(predictor, cases, trained_on, trained_people,
                                           on_case=lambda _case: bar.advance(task))
    results = results_file(submission, suite_id, version, trained_on, rows,
                           created_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                           environment_info=environment(), sandbox=predictor.sandbox_mode,
                           inference=inference_header(records))
    path = out_path or results_path(output_subfolder(submission, "results").parent, suite_id, version)
    try:
        write_results(path, results)
        if out_path is None:
            atomic_write_json(cases_index_path(outputs, suite_id), index)
    except OSError as error:
        raise ScorerFaultError(f"{path}: the results file cannot be written ({error})") from error
    return results, path


def _verify_data(split: SplitFile, data_root: Path | None, overrides: dict[str, Path] | None,
                 allow_changed_data: bool) -> bool:
    """Check every file of the split (test images and masks included) before anything runs; True when the data
    differ and that was allowed. Masks off their image's grid are never allowed (they cannot be scored)."""
    report = verify_split(split, data_root=data_root, overrides=overrides)
    if report.ok:
        return False
    if report.grid_problems:
        return _refuse_off_grid(split, report)
    if allow_changed_data:
        return True
    raise DataChangedError(f"suite {split.suite} (benchmark version {split.version}): the local data differ from the "
                           f"frozen split; nothing was scored. See `cordbench splits verify --suite {split.suite}`; "
                           "--allow-changed-data scores them under a separate, marked version.", report)


def _refuse_off_grid(split: SplitFile, report: VerifyReport) -> bool:
    """Masks off their image's grid: say which and how to fix them; --allow-changed-data cannot help."""
    count = len(report.grid_problems)
    first, problem = next(iter(report.grid_problems.items()))
    others = any(any(problem.values()) for problem in (report.missing_subjects, report.extra_subjects,
                                                       report.missing_files, report.changed_files, report.extra_files))
    also = (" The local data also differ from the frozen split in other ways (see `cordbench splits verify --suite "
            f"{split.suite}`).") if others else ""
    raise DataChangedError(
        f"suite {split.suite} (benchmark version {split.version}): {count} mask(s) not on their image's grid, which "
        f"cannot be scored; nothing was scored. First: {first}: {problem}. Put the masks on their images' grid, then "
        f"make a new version of the split: `cordbench splits make --suite {split.suite} --refreeze`.{also}", report)


def _changed_data_version(version: str, cases: list[TestCase]) -> str:
    """'<split version>+changed-data-<digest of the test images and masks actually scored>'."""
    digest = hashlib.sha256()
    for test_case in sorted(cases, key=lambda case: case.case.case_id):
        digest.update(f"{test_case.case.case_id} {test_case.image_sha256} "
                      f"{file_checksum(test_case.root, test_case.case.label)}\n".encode())
    return f"{version}{CHANGED_DATA_MARK}{digest.hexdigest()[:12]}"


def check_declared_datasets(submission_name: str, declared: set[str]) -> None:
    """Every declared training dataset must be a registered id (a typo would turn in-domain into zero-shot)."""
    problems = unregistered_datasets(declared)
    if problems:
        raise ScoringError(f"{submission_name}: training.datasets: " + "; ".join(problems))


def check_supplied_folders(submission: Submission) -> None:
    """A predictions submission's ``model.folders`` keys are registered dataset ids (a mistyped key would leave that
    dataset's test images without masks: every case scored worst)."""
    from benchmark.data.submissions import PredictionsModelSpec

    if isinstance(submission.model, PredictionsModelSpec):
        problems = unregistered_datasets(submission.model.folders)
        if problems:
            raise ScoringError(f"{submission.folder}/submission.yaml: model.folders: {'; '.join(problems)}")


def inference_header(records: list[PredictionRecord]) -> dict:
    """The results header's runtime, threads, device, CPU (and GPU) model, precision, mirroring and CPU kernels,
    from the records that name them (kernels of records that differ, e.g. masks cached by an earlier run, joined by
    " | ")."""
    from benchmark.models.runtime.hardware import cpu_model, gpu_model

    described = [record for record in records if record.runtime is not None]
    if not described:
        return {"cpu_model": cpu_model()}
    first = described[0]
    runtimes = sorted({record.runtime for record in described})
    labels = sorted({record.cpu_kernels or "unrecorded" for record in described})
    header = {"runtime": "+".join(runtimes), "threads": first.threads, "inference_device": first.device,
              "cpu_model": cpu_model(), "cpu_kernels": " | ".join(labels)}
    if first.device == "cuda":
        header["gpu_model"] = gpu_model()
    for key in ("precision", "test_time_augmentation"):  # absent from records cached before they were recorded
        if getattr(first, key) is not None:
            header[key] = getattr(first, key)
    return header


def cases_index_path(submission_folder: Path, suite_id: str) -> Path:
    """Where scoring records, per case id, the image, mask and cached prediction paths on this machine."""
    return Path(submission_folder) / f"cases_index_{suite_id}.json"
