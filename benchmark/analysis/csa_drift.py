"""CSA drift gate: does a new model measure a different cord area than the old one, case by case, without labels?

A release-to-release check on a frozen set: clinicians compare a patient's CSA across years, so a model update
must not shift the area it measures by more than the effect being tracked. MS cord atrophy is about 1.8 % per
year, ~1.4 mm² on an ~80 mm² cord; a systematic shift of 0.5 mm² is a third of a year's atrophy, hence the
default margin.

Per dataset, over the cases both results files measured (``csa_mm2`` present on both sides; it needs no ground
truth), ``d_i = csa_candidate_i - csa_baseline_i`` in mm², compared over PEOPLE like every paired comparison
(:func:`benchmark.analysis.family.compare_family`: each person's scans averaged first, leaked pairs left out, a
dataset with fewer than ``MIN_PEOPLE`` people or no pair is not tested and not in the Holm family). The dataset
**fails** when

1. ``|mean over people of d| > margin`` (mm²), and
2. the two-sided Wilcoxon signed-rank p-value of the per-person drifts, Holm-adjusted over the tested datasets,
   is ``<= alpha``;

or when the candidate has no CSA for a case the baseline measured (a new failure). The mean absolute drift and
the bootstrap CI (people resampled) of the mean drift are shown. The files must come from the same suite and
benchmark version and cover the same cases, as for the regression gate.
"""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import TextIO

import numpy as np

from benchmark.analysis.family import compare_family, pairs_from_cases
from benchmark.analysis.gate import (DatasetVerdict, GateInputError, GateReport, exit_code, family_verdict_fields,
                                     gate_json, load_gate_input, problem_lines)
from benchmark.analysis.labels import PEOPLE_SCANS, TOO_FEW_PEOPLE, format_p
from benchmark.analysis.summary import MIN_PEOPLE
from benchmark.io import atomic_write_json, atomic_write_text
from benchmark.evaluation.results import ResultsFile

METRIC = "csa_drift"
#: mm²: a third of one year's MS atrophy on an ~80 mm² cord (1.8 %/yr ~ 1.4 mm²).
DEFAULT_MARGIN_MM2 = 0.5


def _problems(candidate: ResultsFile, baseline: ResultsFile) -> list[str]:
    problems = []
    if (candidate.suite, candidate.benchmark_version) != (baseline.suite, baseline.benchmark_version):
        problems.append(f"candidate scored {candidate.suite} {candidate.benchmark_version}, baseline "
                        f"{baseline.suite} {baseline.benchmark_version}: re-score both on the same version")
    mine = {case.case_id for case in candidate.cases}
    theirs = {case.case_id for case in baseline.cases}
    if mine != theirs:
        problems.append(f"the files differ in {len(mine ^ theirs)} case(s), e.g. {sorted(mine ^ theirs)[0]}")
    if all(case.csa_mm2 is None for case in baseline.cases):
        problems.append(f"baseline {baseline.submission!r} has no csa_mm2: re-score it with this cordbench version")
    return problems


def csa_drift_report(candidate: ResultsFile, baseline: ResultsFile, *, margin: float = DEFAULT_MARGIN_MM2,
                     alpha: float = 0.05, seed: int = 0) -> GateReport:
    """The drift gate of the module docstring as a :class:`benchmark.analysis.gate.GateReport` (metric ``csa_drift``)."""
    if margin < 0 or not 0 < alpha < 1:
        raise GateInputError(f"margin must be >= 0 mm² and alpha in (0, 1), got {margin}, {alpha}")
    problems = _problems(candidate, baseline)
    base = {case.case_id: case for case in baseline.cases}
    pairs: dict[str, list] = defaultdict(list)
    new_failures: dict[str, int] = defaultdict(int)
    for case in candidate.cases:
        other = base.get(case.case_id)
        if other is None or other.csa_mm2 is None:
            continue
        if case.subject_in_training or other.subject_in_training:
            pairs[case.dataset].append((case, other))  # counted as leaked and left out by compare_family
            continue
        if case.csa_mm2 is None:
            new_failures[case.dataset] += 1
            continue
        pairs[case.dataset].append((case, other))
    datasets = sorted(set(pairs) | set(new_failures))
    family = [pairs_from_cases(dataset, pairs[dataset], lambda row: row.csa_mm2) for dataset in datasets]
    verdicts = []
    for dataset, row in zip(datasets, compare_family(family, seed=seed)):
        drift = row.difference
        kept = [(first.csa_mm2, second.csa_mm2) for first, second in pairs[dataset]
                if first.csa_mm2 is not None and not (first.subject_in_training or second.subject_in_training)]
        values = np.asarray(kept, float).reshape(-1, 2)
        mean_abs = float(np.abs(values[:, 0] - values[:, 1]).mean()) if len(values) else math.nan
        shifted = row.tested and abs(drift.mean) > margin
        significant = shifted and row.p_holm <= alpha
        failed = significant or new_failures[dataset] > 0
        if row.tested:
            test = (f"p (Holm) {format_p(row.p_holm)}; " + ("shifted beyond the margin and significant" if significant
                                                           else f"within ±{margin} mm² or not significant"))
        elif row.people:
            test = f"{TOO_FEW_PEOPLE} ({row.people} < {MIN_PEOPLE}) for a test"
        else:
            test = "no paired measurement (not tested)"
        reason = (f"mean drift {drift.mean:+.3f} mm² (mean |drift| {mean_abs:.3f} mm²); "
                  + (f"{new_failures[dataset]} case(s) measured by the baseline have no candidate CSA; "
                     if new_failures[dataset] else "")
                  + (f"{row.leaked} leaked pair(s) left out; " if row.leaked else "") + test)
        verdicts.append(DatasetVerdict(**family_verdict_fields(row), p_value=row.p_holm,
                                       verdict="fail" if failed else "pass", reason=reason, metric=METRIC))
    passed = not problems and all(verdict.verdict == "pass" for verdict in verdicts)
    return GateReport(verdicts, passed, problems, METRIC, margin, alpha, "regression", candidate.submission,
                      baseline.submission, candidate.suite, candidate.benchmark_version)


def _mm2(value: float, spec: str) -> str:
    return format(value, spec) if math.isfinite(value) else "–"


def _drift(ci) -> str:
    if ci.interval_withheld:
        return f"{ci.mean:+.3f} ({TOO_FEW_PEOPLE})"
    if not math.isfinite(ci.mean):
        return "–"
    return f"{ci.mean:+.3f} [{ci.low:+.3f}, {ci.high:+.3f}]"


def drift_markdown(report: GateReport) -> str:
    status = "PASS" if report.passed else "FAIL"
    lines = [f"## cordbench CSA drift: **{status}** - candidate `{report.candidate}` vs baseline `{report.baseline}`",
             "", f"Suite `{report.suite}` (benchmark version `{report.benchmark_version}`); per case the candidate's "
             f"angle-corrected CSA minus the baseline's (no ground truth), averaged per person; a dataset fails when "
             f"|mean drift over people| > {report.margin:g} mm² and the two-sided Wilcoxon test of the per-person "
             f"drifts, Holm-corrected, gives p <= {report.alpha:g}, or when the candidate lost a measurement. A "
             f"dataset with fewer than {MIN_PEOPLE} people is not tested.", "",
             f"| dataset | {PEOPLE_SCANS} | baseline CSA mm² | candidate CSA mm² | drift mm² [95% CI] | p (Holm) | "
             "verdict |",
             "|---|---:|---:|---:|---|---:|---|"]
    for v in report.verdicts:
        lines.append(f"| {v.dataset} | {v.n} ({v.scans}) | {_mm2(v.baseline_mean, '.2f')} | "
                     f"{_mm2(v.candidate_mean, '.2f')} | {_drift(v.difference)} | {format_p(v.p_value)} | "
                     f"{v.verdict.upper()} |")
    if report.problems:
        lines += ["", *problem_lines(report.problems)]
    lines += ["", *(f"- {v.dataset}: {v.verdict}: {v.reason}" for v in report.verdicts)]
    return "\n".join(lines) + "\n"


def run_csa_drift(candidate: Path, baseline: Path, *, margin: float = DEFAULT_MARGIN_MM2, alpha: float = 0.05,
                  seed: int = 0, markdown_path: Path | None = None, json_path: Path | None = None,
                  out: TextIO | None = None, err: TextIO | None = None) -> int:
    """``cordbench gate --metric csa_drift``: print the Markdown, write the files asked for, return 0/1/2."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    try:
        report = csa_drift_report(load_gate_input(candidate), load_gate_input(baseline), margin=margin, alpha=alpha,
                                  seed=seed)
    except GateInputError as error:
        err.write(f"cordbench gate: error: {error}\n")
        return 2
    markdown = drift_markdown(report)
    out.write(markdown)
    if markdown_path is not None:
        atomic_write_text(Path(markdown_path), markdown)
    if json_path is not None:
        atomic_write_json(Path(json_path), gate_json(report))
    return exit_code(report)


__all__ = ["DEFAULT_MARGIN_MM2", "METRIC", "csa_drift_report", "drift_markdown", "run_csa_drift"]
