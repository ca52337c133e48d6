"""CSA drift gate: does a new model measure a different cord area than the old one, case by case, without labels?

A release-to-release check on a frozen set: clinicians compare a patient's CSA across years, so a model update
must not shift the area it measures by more than the effect being tracked. MS cord atrophy is about 1.8 % per
year, ~1.4 mm² on an ~80 mm² cord; a systematic shift of 0.5 mm² is a third of a year's atrophy, hence the
default margin.

Per dataset, over the cases both results files measured (``csa_mm2`` present on both sides; it needs no ground
truth), ``d_i = csa_candidate_i - csa_baseline_i`` in mm². The dataset **fails** when

1. ``|mean(d)| > margin`` (mm²), and
2. the two-sided paired Wilcoxon signed-rank p-value (:func:`benchmark.analysis.stats.paired_wilcoxon`), Holm-adjusted
   over the datasets, is ``<= alpha``;

or when the candidate has no CSA for a case the baseline measured (a new failure). The mean absolute drift and
the bootstrap CI of the mean drift are shown. The files must come from the same suite and benchmark version and
cover the same cases, as for the regression gate.
"""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import TextIO

import numpy as np

from benchmark.analysis.gate import (DatasetVerdict, GateInputError, GateReport, exit_code, gate_json, load_gate_input,
                                     problem_lines)
from benchmark.io import atomic_write_json, atomic_write_text
from benchmark.evaluation.results import ResultsFile
from benchmark.analysis.summary import holm_adjust, paired_comparison

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
    pairs: dict[str, list[tuple[float, float]]] = defaultdict(list)
    new_failures: dict[str, int] = defaultdict(int)
    for case in candidate.cases:
        other = base.get(case.case_id)
        if other is None or other.csa_mm2 is None:
            continue
        if case.csa_mm2 is None:
            new_failures[case.dataset] += 1
            continue
        pairs[case.dataset].append((case.csa_mm2, other.csa_mm2))
    datasets = sorted(set(pairs) | set(new_failures))
    compared = {d: paired_comparison([a for a, _ in pairs[d]], [b for _, b in pairs[d]], dataset=d, seed=seed)
                for d in datasets}
    p_values = [compared[d].p_value if pairs[d] else 1.0 for d in datasets]
    adjusted = holm_adjust(p_values) if p_values else []
    verdicts = []
    for dataset, p_holm in zip(datasets, adjusted):
        values = np.asarray(pairs[dataset], float).reshape(-1, 2)
        drift = compared[dataset].difference
        mean_abs = float(np.abs(values[:, 0] - values[:, 1]).mean()) if len(values) else math.nan
        shifted = abs(drift.mean) > margin if len(values) else False
        failed = (shifted and p_holm <= alpha) or new_failures[dataset] > 0
        reason = (f"mean drift {drift.mean:+.3f} mm² (mean |drift| {mean_abs:.3f} mm²), p (Holm) {p_holm:.3g}; "
                  + (f"{new_failures[dataset]} case(s) measured by the baseline have no candidate CSA; "
                     if new_failures[dataset] else "")
                  + ("shifted beyond the margin and significant" if shifted and p_holm <= alpha
                     else f"within ±{margin} mm² or not significant"))
        verdicts.append(DatasetVerdict(dataset, int(len(values)), float(values[:, 1].mean()) if len(values) else math.nan,
                                       float(values[:, 0].mean()) if len(values) else math.nan, drift, p_holm,
                                       "fail" if failed else "pass", reason, METRIC))
    passed = not problems and all(verdict.verdict == "pass" for verdict in verdicts)
    return GateReport(verdicts, passed, problems, METRIC, margin, alpha, "regression", candidate.submission,
                      baseline.submission, candidate.suite, candidate.benchmark_version)


def drift_markdown(report: GateReport) -> str:
    status = "PASS" if report.passed else "FAIL"
    lines = [f"## cordbench CSA drift: **{status}** - candidate `{report.candidate}` vs baseline `{report.baseline}`",
             "", f"Suite `{report.suite}` (benchmark version `{report.benchmark_version}`); per case the candidate's "
             f"angle-corrected CSA minus the baseline's (no ground truth); a dataset fails when |mean drift| > "
             f"{report.margin:g} mm² and the two-sided paired Wilcoxon test, Holm-corrected, gives p <= "
             f"{report.alpha:g}, or when the candidate lost a measurement.", "",
             "| dataset | n | baseline CSA mm² | candidate CSA mm² | drift mm² [95% CI] | p (Holm) | verdict |",
             "|---|---:|---:|---:|---|---:|---|"]
    for v in report.verdicts:
        lines.append(f"| {v.dataset} | {v.n} | {v.baseline_mean:.2f} | {v.candidate_mean:.2f} | "
                     f"{v.difference.mean:+.3f} [{v.difference.low:+.3f}, {v.difference.high:+.3f}] | "
                     f"{v.p_value:.3g} | {v.verdict.upper()} |")
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
