"""A regression gate against a band of reference seeds, robust to the machine a model is retrained on.

A retrained nnU-Net is one draw from a distribution: another seed, or the same seed on another CPU (oneDNN picks
its convolution kernels by instruction set, which changes float summation order; docs/nnunet.md), moves the
per-dataset means, by up to 0.19 Dice on out-of-domain data. Gating a retrained model against ONE reference run
with a fixed margin therefore fails on some machines. Here the reference is S >= 2 runs that differ only in
their seed (a family; :mod:`benchmark.analysis.seeds`).

Every mean is over people (each person's scans averaged first, :func:`benchmark.analysis.summary.person_means`;
leaked scans left out as everywhere). For dataset k with reference seed means ``m_1..m_S`` (mean ``mu``, SD ``sd``
with ddof=1) the band is the
two-sided ``confidence`` prediction interval for the mean of ONE more run of the same recipe:

    mu +- t_{S-1, (1+confidence)/2} * sd * sqrt(1 + 1/S)

(normal model of the seed means). The candidate **fails** on k when its mean is worse than the band's worse
bound by more than ``margin`` (in the metric's units): ``s * (bound - mean) > margin`` with ``s = +1`` when
higher is better. A dataset whose seeds scatter widely gets a wide band: the gate cannot see a regression
smaller than the seed noise there, and the report says how wide each band is (``tolerance``).

The gate also fails when the candidate and the references were scored on different suites or benchmark
versions, or do not cover the same cases.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as scipy_stats

from benchmark.analysis.gate import problem_lines
from benchmark.analysis.summary import person_means
from benchmark.errors import CordbenchError
from benchmark.evaluation.metrics import HIGHER_IS_BETTER, METRIC_NAMES
from benchmark.evaluation.results import ResultsFile


class SeedBandError(CordbenchError, ValueError):
    """The band cannot be built: fewer than two reference seeds, or an unknown metric."""


@dataclass(frozen=True)
class BandVerdict:
    """One dataset: the reference seeds' means, the band's worse bound, the candidate's mean, pass/fail."""

    dataset: str
    n: int  # people
    seed_means: tuple[float, ...]
    bound: float
    tolerance: float
    candidate_mean: float
    verdict: str
    reason: str
    scans: int | None = None


@dataclass
class BandReport:
    """All verdicts; ``passed`` is false on any failing dataset or any coverage problem."""

    metric: str
    margin: float
    confidence: float
    references: list[str]
    candidate: str
    verdicts: list[BandVerdict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems and all(verdict.verdict == "pass" for verdict in self.verdicts)

    @property
    def failing(self) -> list[str]:
        return [verdict.dataset for verdict in self.verdicts if verdict.verdict == "fail"]


def _dataset_means(result: ResultsFile, metric: str) -> dict[str, tuple[float, int, int]]:
    """dataset -> (mean over people, people, scans) of the counted (not leaked) scans."""
    values: dict[str, list[float]] = defaultdict(list)
    persons: dict[str, list[str]] = defaultdict(list)
    for case in result.cases:
        if not case.subject_in_training:
            values[case.dataset].append(float(getattr(case, metric)))
            persons[case.dataset].append(str(case.person))
    means = {}
    for dataset, listed in values.items():
        _, people, _ = person_means(listed, persons[dataset])
        means[dataset] = (float(people.mean()), int(people.size), len(listed))
    return means


def _coverage_problems(candidate: ResultsFile, references: Sequence[ResultsFile]) -> list[str]:
    problems = []
    wanted = {case.case_id for case in candidate.cases}
    for reference in references:
        if (reference.suite, reference.benchmark_version) != (candidate.suite, candidate.benchmark_version):
            problems.append(f"{reference.submission} was scored on {reference.suite} {reference.benchmark_version}, "
                            f"the candidate on {candidate.suite} {candidate.benchmark_version}")
            continue
        have = {case.case_id for case in reference.cases}
        if have != wanted:
            problems.append(f"{reference.submission} and the candidate differ in {len(have ^ wanted)} case(s), "
                            f"e.g. {sorted(have ^ wanted)[0]}")
    return problems


def seed_band_gate(candidate: ResultsFile, references: Sequence[ResultsFile], *, metric: str = "dice",
                   margin: float = 0.01, confidence: float = 0.95) -> BandReport:
    """Gate ``candidate`` against the prediction band of ``references`` (S >= 2 seeds of one recipe)."""
    if metric not in METRIC_NAMES:
        raise SeedBandError(f"unknown metric {metric!r}; one of {', '.join(METRIC_NAMES)}")
    if len(references) < 2:
        raise SeedBandError(f"a seed band needs at least 2 reference runs, got {len(references)}")
    if margin < 0 or not 0 < confidence < 1:
        raise SeedBandError(f"margin must be >= 0 and confidence in (0, 1), got {margin}, {confidence}")
    report = BandReport(metric, margin, confidence, [reference.submission for reference in references],
                        candidate.submission, problems=_coverage_problems(candidate, references))
    direction = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    seeds = len(references)
    t_quantile = float(scipy_stats.t.ppf((1 + confidence) / 2, seeds - 1))
    reference_means = [_dataset_means(reference, metric) for reference in references]
    for dataset, (candidate_mean, n, scans) in sorted(_dataset_means(candidate, metric).items()):
        means = tuple(means[dataset][0] for means in reference_means if dataset in means)
        if len(means) < 2:
            report.problems.append(f"{dataset}: fewer than 2 reference seeds scored it")
            continue
        half_width = t_quantile * float(np.std(means, ddof=1)) * math.sqrt(1 + 1 / len(means))
        bound = float(np.mean(means)) - direction * half_width
        drop = direction * (bound - candidate_mean)
        failed = drop > margin
        reason = (f"mean {candidate_mean:.4f} vs the band's worse bound {bound:.4f} (seed means "
                  f"{', '.join(f'{mean:.4f}' for mean in means)}): "
                  + (f"worse by {drop:.4f} > margin {margin}" if failed else "within the band and margin"))
        report.verdicts.append(BandVerdict(dataset, n, means, bound, half_width + margin, candidate_mean,
                                           "fail" if failed else "pass", reason, scans))
    return report


def restrict_to_datasets(result: ResultsFile, datasets: set[str]) -> ResultsFile:
    """A copy of ``result`` holding only the cases of ``datasets``."""
    return result.model_copy(update={"cases": [case for case in result.cases if case.dataset in datasets]})


def trained_datasets(result: ResultsFile) -> set[str]:
    """The datasets a model was trained on that the results score (its in-training test splits): where a retrained
    model is expected to match its reference within a small margin on any machine."""
    return {case.dataset for case in result.cases if case.dataset_in_training}


def band_markdown(report: BandReport) -> str:
    """The report as a Markdown table (for a job summary)."""
    status = "PASS" if report.passed else "FAIL"
    lines = [f"## seed-band gate: **{status}** - `{report.candidate}` vs {len(report.references)} reference seeds",
             "",
             f"Metric `{report.metric}`; band = {report.confidence:.0%} prediction interval of one more seed's mean; "
             f"a dataset fails when the candidate is worse than the band by more than {report.margin}.",
             "", "| dataset | people (scans) | seed means | band bound | tolerance | candidate | verdict |",
             "|---|---:|---|---:|---:|---:|---|"]
    for verdict in report.verdicts:
        lines.append(f"| {verdict.dataset} | {verdict.n} ({verdict.scans}) | "
                     f"{', '.join(f'{m:.3f}' for m in verdict.seed_means)} | "
                     f"{verdict.bound:.3f} | {verdict.tolerance:.3f} | {verdict.candidate_mean:.3f} | "
                     f"{verdict.verdict.upper()} |")
    if report.problems:
        lines += ["", *problem_lines(report.problems)]
    return "\n".join(lines) + "\n"


__all__ = ["BandReport", "BandVerdict", "SeedBandError", "band_markdown", "restrict_to_datasets", "seed_band_gate",
           "trained_datasets"]
