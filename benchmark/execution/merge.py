"""Deterministic merge: finished scoring units -> the usual results file (benchmark/results.py) per submission.

Rows are concatenated in plan order (the suite's fixed case order), never in finishing order; each unit brings
them already rendered (``merge.txt``), so merging joins bytes without parsing rows. The header's
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
    """The units' inference headers (runtime, threads, device, CPU model, CPU kernels) as scoring's
    ``inference_header`` gives them for all records at once: runtimes joined with '+', kernels with ' | ', the rest
    from the first unit that names a runtime."""
    described = [header for header in headers if header.get("runtime")]
    merged: dict[str, Any] = {}
    if described:
        runtimes = sorted({part for header in described for part in header["runtime"].split("+")})
        merged = {**described[0], "runtime": "+".join(runtimes)}
        labels = sorted({part for header in described for part in (header.get("cpu_kernels") or "").split(" | ")
                         if part})
        if labels:
            merged["cpu_kernels"] = " | ".join(labels)
    elif headers and "cpu_model" in headers[0]:
        merged = {"cpu_model": headers[0]["cpu_model"]}
    return merged


def missing_units(store: UnitStore, plan: Plan, group: str) -> list[str]:
    return [uid for uid in plan.groups[group] if not store.is_done(uid)]


def unit_part(store: UnitStore, uid: str) -> tuple[dict[str, Any], bytes]:
    """A finished unit's (head, rows text) as in its ``merge.txt``; a unit finished before units wrote one is read
    from its ``rows.json`` (its rows rendered here when it has no ``rendered``)."""
    from benchmark.execution.units import render_row

    part = store.merge_part(uid)
    if part is not None:
        return part
    output = store.output(uid)
    rendered = output.get("rendered") or [render_row(row) for row in output["rows"]]
    head = {"index": output["index"], "sandbox": output.get("sandbox"), "inference": output.get("inference")}
    return head, ",\n".join(rendered).encode("utf-8")


def merge_group(store: UnitStore, plan: Plan, group: str, *, out_path: Path | None = None) -> Path:
    """Write one submission's results file (and its cases index) from its finished units; returns the path."""
    from benchmark.io import atomic_write_bytes, atomic_write_json
    from benchmark.evaluation.results import results_path
    from benchmark.evaluation.scoring import cases_index_path, results_file
    from benchmark.data.submissions import load_submission, output_dir, output_subfolder, training_datasets

    uids = plan.groups[group]
    # reading done.json (written last) is the done check: no separate stat of each unit
    done = [store.read_done(uid) for uid in uids]
    missing = [uid for uid, info in zip(uids, done) if info is None]
    if missing:
        raise MergeError(f"{store.work}: {group}: {len(missing)} of {len(uids)} units are not done "
                         f"(first: {store.folder(missing[0])}); run the request again to finish them")
    spec = store.load_spec(uids[0])
    submission = load_submission(Path(spec.submission))
    root = Path(spec.submissions_root) if spec.submissions_root else None
    parts = [unit_part(store, uid) for uid in uids]
    heads = [head for head, _rows in parts]
    index: dict[str, Any] = {}
    for head in heads:
        index.update(head["index"])
    environment = merged_environment([info.get("environment", {}) for info in done])
    sandboxes = sorted({str(head.get("sandbox")) for head in heads})
    sandbox = heads[0].get("sandbox") if len(sandboxes) == 1 else " | ".join(sandboxes)
    header = results_file(submission, plan.suite, spec.benchmark_version, training_datasets(submission, root), [],
                          created_utc=plan.created_utc, environment_info=environment, sandbox=sandbox,
                          inference=merged_inference([head.get("inference") or {} for head in heads]))
    path = out_path or results_path(output_subfolder(submission, "results").parent, plan.suite, spec.benchmark_version)
    atomic_write_bytes(path, results_bytes(header.model_dump(mode="json"), [rows for _head, rows in parts]))
    if out_path is None:
        atomic_write_json(cases_index_path(output_dir(submission), plan.suite), index)
    return path


_EMPTY_CASES = b'\n  "cases": [],'


def results_bytes(header: dict[str, Any], unit_rows: list[bytes]) -> bytes:
    """The results file's bytes, byte for byte what ``write_results`` writes for the header with these rows: the
    header is rendered with an empty ``cases`` list and the units' rendered rows (each unit's joined by ",\\n",
    as in ``merge.txt``) are put in its place, in one join (no search-and-replace over the whole text)."""
    text = (json.dumps(header, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8")
    unit_rows = [rows for rows in unit_rows if rows]
    if not unit_rows:
        return text
    at = text.index(_EMPTY_CASES)  # unique: "cases" is a top-level key, and JSON strings hold no raw newline
    pieces = [text[:at], b'\n  "cases": [\n']
    for rows in unit_rows:
        pieces += (rows, b",\n")
    pieces[-1] = b"\n  ],"
    pieces.append(text[at + len(_EMPTY_CASES):])
    return b"".join(pieces)


def merge_plan(store: UnitStore, plan: Plan) -> dict[str, Path]:
    """Every submission of a scoring plan whose units are all done and whose canary passed -> its results file path.
    A submission stopped by its canary gets no results file, even when the canary was its only unit (a one-case
    suite): its rows would show a model that did not run as one that scored worst."""
    from benchmark.execution.units import canary_failure

    return {group: merge_group(store, plan, group) for group in plan.groups
            if not missing_units(store, plan, group) and canary_failure(store, plan.groups[group][0]) is None}
