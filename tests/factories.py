"""The one builder of fake results for the tests: scored cases, results files, and writing them to disk.

Every test that needs results files builds them here; the named scenarios whose numbers the tests work
out by hand (``leaderboard_fixtures.py``: hand-computed and demo; ``report_fixtures.py``: the seed
experiment; ``test_gate.py``: candidate vs baseline) only choose the values.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from benchmark.evaluation.results import CaseResult, ResultsFile, results_path, write_results


def case_id_for(dataset: str, subject: str, contrast: str = "T2w") -> str:
    """``<dataset>:<subject>/anat/<subject>_<contrast>.nii.gz``, the case id of an anatomical image."""
    return f"{dataset}:{subject}/anat/{subject}_{contrast}.nii.gz"


def make_case(dataset: str, subject: str, dice: float, *, contrast: str = "T2w", case_id: str | None = None,
              nsd: float | None = None, hd95: float | None = None, rve: float | None = None,
              csa_error: float | None = None, **fields: Any) -> CaseResult:
    """One scored case. Metrics not given follow from ``dice``: nsd = min(1, dice + 0.05),
    hd95 = 10 (1 - dice), rve = |1 - dice| / 2, csa_error = 20 (1 - dice) (rounded to 6 decimals).

    The other fields default to an in-domain, manually segmented, trained-on case of site-1 (Siemens, HC)
    whose image hash is the sha256 of its case id; any :class:`CaseResult` field can be given by keyword.
    """
    case_id = case_id or case_id_for(dataset, subject, contrast)
    row: dict[str, Any] = {
        "image_sha256": hashlib.sha256(case_id.encode()).hexdigest(), "site": "site-1", "vendor": "Siemens",
        "pathology": "HC", "suite_role": "in-domain", "gt_provenance": "manual", "dataset_in_training": True,
        "subject_in_training": False, "runtime_s": 1.5, "peak_memory_mb": 900.0,
    }
    row.update(fields)
    return CaseResult(
        case_id=case_id, dataset=dataset, subject=subject, contrast=contrast, dice=dice,
        nsd=min(1.0, dice + 0.05) if nsd is None else nsd,
        hd95=round(10 * (1 - dice), 6) if hd95 is None else hd95,
        rve=round(abs(1 - dice) / 2, 6) if rve is None else rve,
        csa_error=round(20 * (1 - dice), 6) if csa_error is None else csa_error,
        **row,
    )


def make_results(submission: str, cases: list[CaseResult], *, suite: str = "synthetic",
                 version: str = "f00dfeed1234", declared: Iterable[str] = (), **fields: Any) -> ResultsFile:
    """A results file of ``submission`` holding ``cases``.

    Defaults: model hash = sha256 of the name, an "aggregated" model when it declares more than one
    training dataset (else "specific"), MIT, 30 M parameters, created 2025-01-01; any
    :class:`ResultsFile` field can be given by keyword.
    """
    declared = list(declared)
    header: dict[str, Any] = {
        "cordbench_version": "0.1.0", "model_sha256": hashlib.sha256(submission.encode()).hexdigest(),
        "model_type": "aggregated" if len(declared) > 1 else "specific", "licence": "MIT",
        "parameters": 30_000_000, "created_utc": "2025-01-01T00:00:00Z", "environment": {"python": "3.11"},
    }
    header.update(fields)
    return ResultsFile(submission=submission, suite=suite, benchmark_version=version,
                       declared_training_datasets=declared, cases=cases, **header)


def write_results_files(root: Path, results: Iterable[ResultsFile]) -> list[Path]:
    """Write each file where scoring would: ``<root>/<submission>/results/<suite>_<version>.json``."""
    return [write_results(results_path(Path(root) / result.submission, result.suite, result.benchmark_version), result)
            for result in results]
