"""Deterministic merge: finished scoring units -> the usual results file (benchmark/results.py) per submission.

Rows are concatenated in plan order (the suite's fixed case order), never in finishing order. The header's
``created_utc`` is the plan's (see planner); ``environment`` is the units' environment when they agree, else each
key's distinct values joined by " | " in sorted order. So the bytes depend neither on the executor, nor on the
number of shards, nor on the order the units finished in. A submission with any unit not done is not merged:
nothing is ever averaged over missing cases.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmark.errors import CordbenchError
from benchmark.execution.planner import Plan
from benchmark.execution.units import UnitStore


class MergeError(CordbenchError, RuntimeError):
    """A results file cannot be merged: some of its units are not done."""


def merged_environment(environments: list[dict[str, str]]) -> dict[str, str]:
    keys = sorted({key for environment in environments for key in environment})
    merged = {}
    for key in keys:
        values = sorted({environment[key] for environment in environments if key in environment})
        merged[key] = " | ".join(values)
    return merged


def merged_inference(headers: list[dict[str, Any]]) -> dict[str, Any]:
    """The units' inference headers (runtime, threads, device, CPU model) as scoring's ``inference_header`` gives
    them for all records at once: runtimes joined with '+', the rest from the first unit that names a runtime."""
    described = [header for header in headers if header.get("runtime")]
    merged: dict[str, Any] = {}
    if described:
        runtimes = sorted({part for header in described for part in header["runtime"].split("+")})
        merged = {**described[0], "runtime": "+".join(runtimes)}
    elif headers and "cpu_model" in headers[0]:
        merged = {"cpu_model": headers[0]["cpu_model"]}
    return merged


def merged_rows(outputs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows and cases-index entries of a submission's units, in the given (plan) order."""
    rows: list[dict[str, Any]] = []
    index: dict[str, Any] = {}
    for output in outputs:
        rows.extend(output["rows"])
        index.update(output["index"])
    return rows, index


def missing_units(store: UnitStore, plan: Plan, group: str) -> list[str]:
    return [uid for uid in plan.groups[group] if not store.is_done(uid)]


def merge_group(store: UnitStore, plan: Plan, group: str, *, out_path: Path | None = None) -> Path:
    """Write one submission's results file (and its cases index) from its finished units; returns the path."""
    from benchmark.io import atomic_write_json, atomic_write_text
    from benchmark.evaluation.results import results_path
    from benchmark.evaluation.scoring import cases_index_path, results_file
    from benchmark.data.submissions import load_submission, output_dir, training_datasets

    missing = missing_units(store, plan, group)
    if missing:
        raise MergeError(f"{store.work}: {group}: {len(missing)} of {len(plan.groups[group])} units are not done "
                         f"(first: {store.folder(missing[0])}); run the request again to finish them")
    uids = plan.groups[group]
    spec = store.load_spec(uids[0])
    submission = load_submission(Path(spec.submission))
    root = Path(spec.submissions_root) if spec.submissions_root else None
    outputs = [store.output(uid) for uid in uids]
    _rows, index = merged_rows(outputs)
    environment = merged_environment([store.done_info(uid).get("environment", {}) for uid in uids])
    sandboxes = sorted({str(output.get("sandbox")) for output in outputs})
    sandbox = outputs[0].get("sandbox") if len(sandboxes) == 1 else " | ".join(sandboxes)
    header = results_file(submission, plan.suite, spec.benchmark_version, training_datasets(submission, root), [],
                          created_utc=plan.created_utc, environment_info=environment, sandbox=sandbox,
                          inference=merged_inference([output.get("inference") or {} for output in outputs]))
    path = out_path or results_path(output_dir(submission), plan.suite, spec.benchmark_version)
    atomic_write_text(path, results_text(header.model_dump(mode="json"), rendered_rows(outputs)))
    if out_path is None:
        atomic_write_json(cases_index_path(output_dir(submission), plan.suite), index)
    return path


def rendered_rows(outputs: list[dict[str, Any]]) -> list[str]:
    """Every row as its units rendered it (older unit outputs without ``rendered`` are rendered here)."""
    from benchmark.execution.units import render_row

    rendered: list[str] = []
    for output in outputs:
        rendered.extend(output.get("rendered") or [render_row(row) for row in output["rows"]])
    return rendered


def results_text(header: dict[str, Any], rows: list[str]) -> str:
    """The results file's text, byte for byte what ``write_results`` writes for the header with these rows: the
    header is rendered with an empty ``cases`` list and the pre-rendered rows are put in its place."""
    text = json.dumps(header, indent=2, sort_keys=True, default=str) + "\n"
    if rows:
        text = text.replace('\n  "cases": [],', '\n  "cases": [\n' + ",\n".join(rows) + '\n  ],', 1)
    return text


def merge_plan(store: UnitStore, plan: Plan) -> dict[str, Path]:
    """Every submission of a scoring plan whose units are all done -> its results file path."""
    return {group: merge_group(store, plan, group) for group in plan.groups if not missing_units(store, plan, group)}
