"""Regression and reproducibility gates over two results files.

Regression gate (:func:`compare_results`): does a candidate submission score worse than a baseline
on the same cases? Per dataset, with cases paired by ``case_id``, over PEOPLE (each person's scans averaged
first; :func:`benchmark.analysis.family.compare_family`, the path every comparison shares), with
``d_p = candidate_p - baseline_p`` the per-person mean difference of the chosen metric, the dataset **fails** when both

1. the candidate's mean over people is worse by more than the margin (in the metric's units):
   ``drop = s * (mean(baseline) - mean(candidate)) > margin``, ``s = +1`` if higher is better
   (dice, nsd) else ``-1`` (hd95, rve, csa_error); and
2. the one-sided Wilcoxon signed-rank test of "candidate worse" on the ``d_p`` (``alternative="less"``
   if higher is better, ``"greater"`` otherwise) is significant: its p-value, Holm-adjusted over the
   tested datasets of the comparison, is ``<= alpha``.

A dataset with fewer than ``MIN_PEOPLE`` people is not tested (its reason says "too few people") and a scan whose
person is in either model's declared training data (leaked) is left out of the pair, as everywhere.

The whole gate also fails, with its own message, when the two files are not comparable: different
suite, different ``benchmark_version`` (split hash), cases missing on one side, duplicated case ids,
or a case id whose image hash or dataset differs. Verdicts are still computed on the shared cases
(for information) but ``passed`` is false. Rows of failed predictions are never dropped: they are
scored worst in the results file and count like any other case.

Speed (``max_slowdown``, off by default): the candidate also fails when its median per-case inference
seconds (``runtime_s``, over all cases of the file) is more than ``max_slowdown`` (0.2 = 20 %) above the
baseline's, provided both were measured on the same hardware (from the results headers: CPU against the same
CPU model and thread count, GPU against the same GPU model). Otherwise (CPU against GPU, different or unknown
hardware) the speed is reported as not comparable and does not fail the gate.

Reproducibility gate (:func:`reproduce_check`): a re-scored run of a registered model must reproduce
every per-dataset mean of the stored results within ``tolerance`` (``|mean_rescored - mean_stored| <=
tolerance`` for each metric asked for), on the same cases, suite, benchmark version and model. When the two runs
name other CPU kernels (``cpu_kernels``: pinned-avx2, native-<isa>, ...) the report says so in a note.

Exit codes (:func:`exit_code`, :func:`run_gate`): 0 pass, 1 fail, 2 unusable input
(:class:`GateInputError`: unreadable/invalid results file, unknown metric, bad margin/alpha).
"""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence, TextIO


from benchmark.errors import CordbenchError
from benchmark.io import atomic_write_json, atomic_write_text
from benchmark.evaluation.metrics import HIGHER_IS_BETTER, METRIC_NAMES
from benchmark.evaluation.results import CaseResult, ResultsError, ResultsFile, load_results
from benchmark.analysis.family import FamilyRow, compare_family, pairs_from_cases
from benchmark.analysis.labels import PEOPLE_SCANS, TOO_FEW_PEOPLE, format_p
from benchmark.analysis.stats import MeanCI
from benchmark.analysis.summary import MIN_PEOPLE

Verdict = Literal["pass", "fail"]
GateKind = Literal["regression", "reproduce"]

#: Case ids listed in a coverage message (the rest are counted).
MAX_LISTED_CASES = 10
#: Slack for comparing a drop with the margin: a drop equal to the margin up to rounding passes.
_FLOAT_SLACK = 1e-12


class GateInputError(CordbenchError, ValueError):
    """The gate cannot run on this input (unreadable file, unknown metric, bad option): exit 2."""


@dataclass
class DatasetVerdict:
    """The gate's verdict on one dataset (and one metric).

    ``difference`` is the paired bootstrap CI over people of ``mean(candidate - baseline)``; ``p_value`` is the
    one-sided (candidate worse) Wilcoxon p-value of the per-person differences, Holm-adjusted across the tested
    datasets of the report (NaN when not tested, and in a reproducibility report, which uses a tolerance instead of a
    test). ``n`` counts people, ``scans`` the paired scans behind them, ``leaked`` the pairs left out.
    """

    dataset: str
    n: int
    baseline_mean: float
    candidate_mean: float
    difference: MeanCI
    p_value: float
    verdict: Verdict
    reason: str
    metric: str = "dice"
    scans: int | None = None
    leaked: int = 0
    status: str = "tested"


def family_verdict_fields(row: FamilyRow) -> dict[str, Any]:
    """The :class:`DatasetVerdict` fields a compared row gives (people, scans, leaked, status, means, difference)."""
    return {"dataset": row.dataset, "n": row.people, "scans": row.scans, "leaked": row.leaked, "status": row.status,
            "baseline_mean": row.b.mean, "candidate_mean": row.a.mean, "difference": row.difference}


@dataclass
class SpeedVerdict:
    """The speed rule: candidate's median s/volume against the baseline's, on the same hardware."""

    baseline_median_s: float | None
    candidate_median_s: float | None
    max_slowdown: float
    verdict: Literal["pass", "fail", "not comparable"]
    reason: str
    hardware: str | None = None


@dataclass
class GateReport:
    """All verdicts of one gate run; ``passed`` is false on any failed verdict or any problem."""

    verdicts: list[DatasetVerdict]
    passed: bool
    problems: list[str]
    metric: str
    margin: float
    alpha: float
    kind: GateKind = "regression"
    candidate: str = ""
    baseline: str = ""
    suite: str = ""
    benchmark_version: str = ""
    speed: SpeedVerdict | None = None
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- checks


def _check_metric(metric: str) -> None:
    if metric not in METRIC_NAMES:
        raise GateInputError(f"unknown metric {metric!r}; choose one of {', '.join(METRIC_NAMES)}")


def _list_ids(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:MAX_LISTED_CASES])
    more = len(ids) - MAX_LISTED_CASES
    return shown + (f" (and {more} more)" if more > 0 else "")


def _index_cases(results: ResultsFile, role: str, problems: list[str]) -> dict[str, CaseResult]:
    """Cases by ``case_id``; a duplicated id is a problem (pairing would be ambiguous)."""
    by_id: dict[str, CaseResult] = {}
    duplicates: list[str] = []
    for case in results.cases:
        if case.case_id in by_id:
            duplicates.append(case.case_id)
        by_id[case.case_id] = case
    if duplicates:
        problems.append(f"{role} lists {len(duplicates)} case id(s) twice: {_list_ids(sorted(set(duplicates)))}")
    return by_id


def _header_problems(first: ResultsFile, second: ResultsFile, names: tuple[str, str], suite: str | None) -> list[str]:
    problems: list[str] = []
    first_name, second_name = names
    if first.suite != second.suite:
        problems.append(f"different suites: {first_name} {first.suite!r}, {second_name} {second.suite!r}")
    if suite is not None:
        for name, results in ((first_name, first), (second_name, second)):
            if results.suite != suite:
                problems.append(f"{name} was scored on suite {results.suite!r}, the gate asks for {suite!r}")
    if first.benchmark_version != second.benchmark_version:
        problems.append(
            "different benchmark versions (split hashes): "
            f"{first_name} {first.benchmark_version!r}, {second_name} {second.benchmark_version!r}; "
            "re-score both on the same version"
        )
    return problems


def _pair_cases(
    candidate: ResultsFile, baseline: ResultsFile, names: tuple[str, str], problems: list[str]
) -> dict[str, list[tuple[CaseResult, CaseResult]]]:
    """Shared cases grouped by dataset, as ``(candidate, baseline)`` pairs sorted by case id."""
    candidate_name, baseline_name = names
    by_candidate = _index_cases(candidate, candidate_name, problems)
    by_baseline = _index_cases(baseline, baseline_name, problems)
    missing = sorted(set(by_baseline) - set(by_candidate))
    extra = sorted(set(by_candidate) - set(by_baseline))
    if missing:
        problems.append(
            f"{candidate_name} is missing {len(missing)} case(s) that {baseline_name} has: {_list_ids(missing)}"
        )
    if extra:
        problems.append(f"{candidate_name} has {len(extra)} case(s) that {baseline_name} lacks: {_list_ids(extra)}")
    shared = sorted(set(by_candidate) & set(by_baseline))
    if not shared and not (missing or extra):
        problems.append("no cases to compare: both results files are empty")
    changed_images = [cid for cid in shared if by_candidate[cid].image_sha256 != by_baseline[cid].image_sha256]
    if changed_images:
        problems.append(
            f"{len(changed_images)} case(s) were scored on different images (image_sha256 differs): "
            f"{_list_ids(changed_images)}"
        )
    moved = [cid for cid in shared if by_candidate[cid].dataset != by_baseline[cid].dataset]
    if moved:
        problems.append(f"{len(moved)} case(s) belong to different datasets in the two files: {_list_ids(moved)}")
    grouped: dict[str, list[tuple[CaseResult, CaseResult]]] = defaultdict(list)
    for cid in shared:
        grouped[by_baseline[cid].dataset].append((by_candidate[cid], by_baseline[cid]))
    return {dataset: grouped[dataset] for dataset in sorted(grouped)}


def _family(grouped: dict[str, list[tuple[CaseResult, CaseResult]]], value) -> list:
    return [pairs_from_cases(dataset, pairs, value) for dataset, pairs in grouped.items()]


def _counted(pairs: list[tuple[CaseResult, CaseResult]]) -> list[tuple[CaseResult, CaseResult]]:
    """The pairs a verdict counts: neither side leaked (the one rule of benchmark.analysis.family)."""
    return [pair for pair in pairs if not (pair[0].subject_in_training or pair[1].subject_in_training)]


def _failure_note(pairs: list[tuple[CaseResult, CaseResult]]) -> str:
    candidate_failed = sum(pair[0].failure is not None for pair in pairs)
    baseline_failed = sum(pair[1].failure is not None for pair in pairs)
    if candidate_failed == baseline_failed == 0:
        return ""
    return f"; failed predictions (scored worst): candidate {candidate_failed}, baseline {baseline_failed}"


def _new_failures(pairs: list[tuple[CaseResult, CaseResult]]) -> int:
    """Cases where the candidate produced no valid prediction and the baseline did."""
    return sum(pair[0].failure is not None and pair[1].failure is None for pair in pairs)


def _regression_reason(drop: float, p_value: float, margin: float, alpha: float, fails: bool,
                       row: FamilyRow | None = None) -> str:
    if row is not None and not row.tested:
        if row.people == 0:
            return "no paired cases (not tested)"
        size = f"worse by {drop:.4f}" if drop > 0 else f"not worse (better by {-drop:.4f})"
        return f"{size}; {TOO_FEW_PEOPLE} ({row.people} < {MIN_PEOPLE}) for a test"
    p_text = f"p (Holm) = {format_p(p_value)}"
    if fails:
        return f"worse by {drop:.4f} > margin {margin:.4g} and significant ({p_text} <= {alpha:g})"
    if drop <= 0:
        return f"not worse (better by {-drop:.4f})"
    if drop <= margin + _FLOAT_SLACK:
        return f"worse by {drop:.4f}, within margin {margin:.4g}"
    return f"worse by {drop:.4f} > margin {margin:.4g} but not significant ({p_text} > {alpha:g})"


def _leak_note(row: FamilyRow) -> str:
    return f"; {row.leaked} leaked pair(s) left out (person in training data)" if row.leaked else ""


# --------------------------------------------------------------------------- speed


def speed_check(candidate: ResultsFile, baseline: ResultsFile, max_slowdown: float) -> SpeedVerdict:
    """Fail when the candidate's median s/volume exceeds the baseline's by more than ``max_slowdown`` (a fraction),
    on the same hardware: CPU against the same CPU model and thread count, GPU against the same GPU model
    (``ResultsFile.hardware``); CPU against GPU, different or unknown hardware, or no timings, is 'not comparable',
    never a failure."""
    if not (max_slowdown >= 0 and math.isfinite(max_slowdown)):
        raise GateInputError(f"max_slowdown must be a finite number >= 0, got {max_slowdown}")
    base_s, cand_s = baseline.median_runtime_s(), candidate.median_runtime_s()
    base_hw, cand_hw = baseline.hardware(), candidate.hardware()

    def verdict(kind: Literal["pass", "fail", "not comparable"], reason: str) -> SpeedVerdict:
        return SpeedVerdict(base_s, cand_s, float(max_slowdown), kind, reason, base_hw if kind != "not comparable" else None)

    if base_s is None or cand_s is None:
        return verdict("not comparable", "no per-case runtime_s in " + ("the baseline" if base_s is None else "the candidate"))
    if base_hw is None or cand_hw is None or base_hw != cand_hw:
        return verdict("not comparable", f"measured on different hardware: baseline {base_hw or 'unknown'}, "
                                         f"candidate {cand_hw or 'unknown'}")
    limit = base_s * (1 + max_slowdown)
    change = cand_s / base_s - 1 if base_s > 0 else math.inf
    if cand_s > limit + _FLOAT_SLACK:
        return verdict("fail", f"median {cand_s:.3g} s/volume is {change:+.0%} vs the baseline's {base_s:.3g} s "
                               f"(> +{max_slowdown:.0%} allowed)")
    return verdict("pass", f"median {cand_s:.3g} s/volume, {change:+.0%} vs the baseline's {base_s:.3g} s "
                           f"(<= +{max_slowdown:.0%} allowed)")


# --------------------------------------------------------------------------- regression gate


def compare_results(
    candidate: ResultsFile,
    baseline: ResultsFile,
    *,
    metric: str = "dice",
    margin: float = 0.01,
    alpha: float = 0.05,
    seed: int = 0,
    suite: str | None = None,
    max_slowdown: float | None = None,
) -> GateReport:
    """Regression gate of ``candidate`` against ``baseline`` (see the module docstring).

    ``suite``, when given, must be the suite of both files (a mismatch is a problem). ``seed`` feeds
    the bootstrap of the difference CI; the verdict itself does not depend on it.
    """
    _check_metric(metric)
    if not (margin >= 0 and math.isfinite(margin)):
        raise GateInputError(f"margin must be a finite number >= 0, got {margin}")
    if not 0 < alpha < 1:
        raise GateInputError(f"alpha must be in (0, 1), got {alpha}")
    names = (f"candidate {candidate.submission!r}", f"baseline {baseline.submission!r}")
    problems = _header_problems(candidate, baseline, names, suite)
    grouped = _pair_cases(candidate, baseline, names, problems)
    higher = HIGHER_IS_BETTER[metric]
    sign = 1.0 if higher else -1.0
    compared = compare_family(_family(grouped, lambda case: float(getattr(case, metric))),
                              alternative="less" if higher else "greater", seed=seed)
    verdicts = []
    for row, pairs in zip(compared, grouped.values()):
        counted = _counted(pairs)
        drop = sign * (row.b.mean - row.a.mean) if row.people else 0.0
        regressed = row.tested and drop > margin + _FLOAT_SLACK and row.p_holm <= alpha
        new_failures = _new_failures(counted)
        fails = regressed or new_failures > 0
        reason = (_regression_reason(drop, row.p_holm, margin, alpha, regressed, row) + _failure_note(counted)
                  + _leak_note(row))
        if new_failures:
            reason = f"fail: {new_failures} case(s) with no valid prediction where the baseline had one; " + reason
        verdicts.append(DatasetVerdict(**family_verdict_fields(row), p_value=row.p_holm,
                                       verdict="fail" if fails else "pass", reason=reason, metric=metric))
    speed = speed_check(candidate, baseline, max_slowdown) if max_slowdown is not None else None
    return GateReport(
        verdicts=verdicts,
        passed=not problems and all(v.verdict == "pass" for v in verdicts) and not (speed and speed.verdict == "fail"),
        problems=problems,
        metric=metric,
        margin=float(margin),
        alpha=float(alpha),
        speed=speed,
        kind="regression",
        candidate=candidate.submission,
        baseline=baseline.submission,
        suite=baseline.suite,
        benchmark_version=baseline.benchmark_version,
    )


# --------------------------------------------------------------------------- reproducibility gate


def reproduce_check(
    stored: ResultsFile,
    rescored: ResultsFile,
    *,
    tolerance: float = 0.005,
    metrics: Sequence[str] = ("dice",),
) -> GateReport:
    """Does ``rescored`` reproduce every per-dataset mean of ``stored`` within ``tolerance``?

    A (dataset, metric) fails when ``|mean(rescored) - mean(stored)| > tolerance``. Problems
    (coverage, suite, benchmark version, image hashes, and a different submission name or
    ``model_sha256``) fail the check too. The report's ``candidate`` is the rescored run, ``baseline``
    the stored one; ``margin`` holds the tolerance and ``alpha`` is NaN (no test).
    """
    metrics = tuple(metrics)
    if not metrics:
        raise GateInputError("reproduce_check needs at least one metric")
    for metric in metrics:
        _check_metric(metric)
    if not (tolerance >= 0 and math.isfinite(tolerance)):
        raise GateInputError(f"tolerance must be a finite number >= 0, got {tolerance}")
    names = (f"rescored {rescored.submission!r}", f"stored {stored.submission!r}")
    problems = _header_problems(rescored, stored, names, None)
    if rescored.submission != stored.submission:
        problems.append(f"different submissions: stored {stored.submission!r}, rescored {rescored.submission!r}")
    if rescored.model_sha256 != stored.model_sha256:
        problems.append(
            f"different model weights: stored model_sha256 {stored.model_sha256[:12]}, "
            f"rescored {rescored.model_sha256[:12]}"
        )
    grouped = _pair_cases(rescored, stored, names, problems)
    notes = kernel_notes(stored, rescored)

    verdicts = []
    for metric in metrics:
        compared = compare_family(_family(grouped, lambda case: float(getattr(case, metric))))
        for row, pairs in zip(compared, grouped.values()):
            shift = row.a.mean - row.b.mean if row.people else 0.0
            largest_case = max((abs(float(getattr(first, metric)) - float(getattr(second, metric)))
                                for first, second in pairs), default=0.0)
            fails = abs(shift) > tolerance + _FLOAT_SLACK
            relation = ">" if fails else "<="
            verdicts.append(DatasetVerdict(
                **family_verdict_fields(row), p_value=math.nan, verdict="fail" if fails else "pass",
                reason=(f"mean moved by {shift:+.4f}, |shift| {relation} tolerance {tolerance:g}; "
                        f"largest per-case change {largest_case:.4f}"),
                metric=metric))
    order = {dataset: position for position, dataset in enumerate(grouped)}
    verdicts.sort(key=lambda verdict: order[verdict.dataset])  # per dataset, its metrics in the order asked
    return GateReport(
        verdicts=verdicts,
        passed=not problems and all(v.verdict == "pass" for v in verdicts),
        problems=problems,
        metric=",".join(metrics),
        margin=float(tolerance),
        alpha=math.nan,
        kind="reproduce",
        candidate=rescored.submission,
        baseline=stored.submission,
        suite=stored.suite,
        benchmark_version=stored.benchmark_version,
        notes=notes,
    )


def kernel_notes(stored: ResultsFile, rescored: ResultsFile) -> list[str]:
    """Say when the two runs computed with other CPU kernels (benchmark.kernels): their masks may then differ in
    a few voxels, so a small shift is expected; equal pinned kernels should reproduce every case exactly."""
    before, now = stored.cpu_kernels, rescored.cpu_kernels
    if before == now or now is None:
        return []
    return [f"CPU kernels differ: stored `{before or 'not recorded'}`, rescored `{now}`; masks computed with other "
            "kernels may differ in a few voxels (docs/reproducibility.md). Re-score with the stored setting "
            "(CORDBENCH_CPU_KERNELS) for an exact comparison."]


# --------------------------------------------------------------------------- output


def exit_code(report: GateReport) -> int:
    """0 when the gate passed, 1 when it failed (2, unusable input, is :class:`GateInputError`)."""
    return 0 if report.passed else 1


def _format_difference(ci: MeanCI) -> str:
    if ci.interval_withheld:
        return f"{ci.mean:+.4f} ({TOO_FEW_PEOPLE})"
    if not math.isfinite(ci.mean):
        return "–"
    return f"{ci.mean:+.4f} [{ci.low:+.4f}, {ci.high:+.4f}]"


def _people(verdict: DatasetVerdict) -> str:
    return f"{verdict.n} ({verdict.scans})" if verdict.scans is not None else str(verdict.n)


def _mean(value: float) -> str:
    return f"{value:.4f}" if math.isfinite(value) else "–"


def _direction_text(metric: str) -> str:
    return "higher is better" if HIGHER_IS_BETTER[metric] else "lower is better"


def problem_lines(problems: list[str]) -> list[str]:
    """Markdown lines listing what makes a gate fail regardless of the numbers."""
    return ["**Problems (the gate fails on each):**", *(f"- {problem}" for problem in problems)]


def gate_markdown(report: GateReport) -> str:
    """The report as Markdown for a pull-request comment or a job summary: headline, table, notes.

    Regression columns: dataset | n | baseline mean | candidate mean | difference [95% CI] |
    p (Holm) | verdict. Numbers have 4 decimals; the difference is candidate - baseline.
    """
    status = "PASS" if report.passed else "FAIL"
    failed = [v for v in report.verdicts if v.verdict == "fail"]
    lines: list[str] = []
    if report.kind == "regression":
        lines.append(
            f"## cordbench gate: **{status}** - candidate `{report.candidate}` vs baseline `{report.baseline}`"
        )
        lines.append("")
        lines.append(
            f"Suite `{report.suite}` (benchmark version `{report.benchmark_version}`); metric `{report.metric}` "
            f"({_direction_text(report.metric)}); a dataset fails when the candidate is worse by more than "
            f"{report.margin:g} and the one-sided Wilcoxon test of the per-person differences, Holm-corrected over "
            f"{sum(v.status == 'tested' for v in report.verdicts)} tested dataset(s), gives p <= {report.alpha:g}, or "
            f"when the candidate has no valid prediction for a case the baseline predicted. Means are over people "
            f"(each person's scans averaged first); a dataset with fewer than {MIN_PEOPLE} people is not tested. "
            f"{len(failed)} of {len(report.verdicts)} dataset(s) fail; {len(report.problems)} problem(s)."
        )
        lines.append("")
        lines.append(f"| dataset | {PEOPLE_SCANS} | baseline mean | candidate mean | difference [95% CI] | p (Holm) "
                     "| verdict |")
        lines.append("|---|---:|---:|---:|---|---:|---|")
        for v in report.verdicts:
            lines.append(
                f"| {v.dataset} | {_people(v)} | {_mean(v.baseline_mean)} | {_mean(v.candidate_mean)} | "
                f"{_format_difference(v.difference)} | {format_p(v.p_value)} | {v.verdict.upper()} |"
            )
    else:
        lines.append(
            f"## cordbench reproduce: **{status}** - rescored `{report.candidate}` vs stored results"
        )
        lines.append("")
        lines.append(
            f"Suite `{report.suite}` (benchmark version `{report.benchmark_version}`); metrics "
            f"`{report.metric}`; every per-dataset mean must be reproduced within {report.margin:g}. "
            f"{len(failed)} of {len(report.verdicts)} check(s) fail; {len(report.problems)} problem(s)."
        )
        lines.append("")
        lines.append(f"| dataset | metric | {PEOPLE_SCANS} | stored mean | rescored mean | difference [95% CI] | "
                     "verdict |")
        lines.append("|---|---|---:|---:|---:|---|---|")
        for v in report.verdicts:
            lines.append(
                f"| {v.dataset} | {v.metric} | {_people(v)} | {_mean(v.baseline_mean)} | {_mean(v.candidate_mean)} | "
                f"{_format_difference(v.difference)} | {v.verdict.upper()} |"
            )
    if not report.verdicts:
        lines.append("| (no shared cases) | | | | | | |")
    lines.append("")
    if report.speed is not None:
        lines.append(f"**Speed ({report.speed.verdict.upper()}):** {report.speed.reason}.")
        lines.append("")
    if report.problems:
        lines += [*problem_lines(report.problems), ""]
    lines += [line for note in report.notes for line in (f"**Note:** {note}", "")]
    if report.verdicts:
        lines.append("<details><summary>Reasons</summary>")
        lines.append("")
        lines.extend(f"- {v.dataset} ({v.metric}): {v.verdict}: {v.reason}" for v in report.verdicts)
        lines.append("")
        lines.append("</details>")
        lines.append("")
    return "\n".join(lines)


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def gate_json(report: GateReport) -> dict[str, Any]:
    """The report as a JSON-ready dict (NaN becomes ``null``); keys follow the dataclass fields."""
    verdicts = []
    for verdict in report.verdicts:
        row = asdict(verdict)
        difference = row["difference"]
        row["difference"] = {
            "mean": _json_number(difference["mean"]),
            "low": _json_number(difference["low"]),
            "high": _json_number(difference["high"]),
            "n": difference["n"],
        }
        for key in ("baseline_mean", "candidate_mean", "p_value"):
            row[key] = _json_number(row[key])
        verdicts.append(row)
    return {
        "kind": report.kind,
        "passed": report.passed,
        "exit_code": exit_code(report),
        "candidate": report.candidate,
        "baseline": report.baseline,
        "suite": report.suite,
        "benchmark_version": report.benchmark_version,
        "metric": report.metric,
        "margin": report.margin,
        "alpha": _json_number(report.alpha),
        "problems": list(report.problems),
        "verdicts": verdicts,
        "speed": asdict(report.speed) if report.speed is not None else None,
        "notes": list(report.notes),
    }


# --------------------------------------------------------------------------- entry points


def load_gate_input(path: Path) -> ResultsFile:
    """Load a results file for the gate; anything unreadable is a :class:`GateInputError`."""
    path = Path(path)
    if not path.is_file():
        raise GateInputError(f"{path}: results file not found")
    try:
        results = load_results(path)
    except ResultsError as error:
        raise GateInputError(str(error)) from error
    for case in results.cases:  # every metric is finite by construction (worst values for empty masks)
        for name in METRIC_NAMES:
            value = getattr(case, name)
            if not math.isfinite(value):
                raise GateInputError(f"{path}: case {case.case_id}: {name} is {value}; results with non-finite "
                                     "metrics cannot be compared (re-score the submission)")
    return results


def _emit(report: GateReport, markdown_path: Path | None, json_path: Path | None, out: TextIO) -> int:
    markdown = gate_markdown(report)
    out.write(markdown + ("" if markdown.endswith("\n") else "\n"))
    if markdown_path is not None:
        atomic_write_text(Path(markdown_path), markdown)
    if json_path is not None:
        atomic_write_json(Path(json_path), gate_json(report))
    return exit_code(report)


def run_gate(
    candidate: Path,
    baseline: Path,
    *,
    suite: str | None = None,
    metric: str = "dice",
    margin: float = 0.01,
    alpha: float = 0.05,
    seed: int = 0,
    markdown_path: Path | None = None,
    json_path: Path | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    max_slowdown: float | None = None,
) -> int:
    """``cordbench gate`` without the CLI: load both files, compare, print Markdown, return the exit code.

    Markdown goes to ``out`` (stdout) and, if asked, to ``markdown_path``; the JSON report to
    ``json_path`` (both written atomically). Returns 0 pass, 1 fail, 2 unusable input (message on
    ``err``, stderr).
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    try:
        report = compare_results(
            load_gate_input(candidate),
            load_gate_input(baseline),
            metric=metric,
            margin=margin,
            alpha=alpha,
            seed=seed,
            suite=suite,
            max_slowdown=max_slowdown,
        )
    except GateInputError as error:
        err.write(f"cordbench gate: error: {error}\n")
        return 2
    return _emit(report, markdown_path, json_path, out)


def run_reproduce(
    stored: Path,
    rescored: Path,
    *,
    tolerance: float = 0.005,
    metrics: Sequence[str] = ("dice",),
    markdown_path: Path | None = None,
    json_path: Path | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Reproducibility check of two results files; same outputs and exit codes as :func:`run_gate`."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    try:
        report = reproduce_check(
            load_gate_input(stored), load_gate_input(rescored), tolerance=tolerance, metrics=metrics
        )
    except GateInputError as error:
        err.write(f"cordbench gate: error: {error}\n")
        return 2
    return _emit(report, markdown_path, json_path, out)


__all__ = [
    "DatasetVerdict",
    "GateReport",
    "SpeedVerdict",
    "speed_check",
    "GateInputError",
    "compare_results",
    "reproduce_check",
    "gate_markdown",
    "gate_json",
    "exit_code",
    "load_gate_input",
    "run_gate",
    "run_reproduce",
]
