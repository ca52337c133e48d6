"""Seed-aware comparison of the aggregated model with the specific ones: a verdict that survives retraining.

One training seed is one draw: nnU-Net's training is not deterministic across machines (docs/nnunet.md) and
retraining with another seed moved per-dataset means by 0.03-0.19 Dice in this project. A *family* is the set
of submissions that differ only in their training seed (``family`` and ``seed`` in ``submission.yaml`` and in
the results file; a name ending ``-seed<N>`` is read as seed N of the name without it).

For a dataset k and a family F with seeds s = 1..S_F that all scored the same scans i, of people p = 1..P (the
unit of analysis is the person, :mod:`benchmark.analysis.summary`; ``mean_p`` is the mean over people of the
per-person mean of a person's scans):

* seed-averaged score of a scan: ``xbar_F(i) = (1/S_F) sum_s x_{F,s}(i)``;
* per-seed mean over people ``m_{F,s} = mean_p x_{F,s}`` and the between-seed SD ``sd_F = std_s(m_{F,s}, ddof=1)``
  (NaN with one seed): the **person-level seed spread**, in the units of the difference below;
* difference ``D = mean_p(xbar_A - xbar_B)`` (aggregated A minus reference B), its paired percentile bootstrap 95 %
  CI resampling people and the two-sided Wilcoxon p of the per-person differences, Holm-adjusted over the tested
  rows (:func:`benchmark.analysis.family.compare_family`; shown, not used for the verdict);
* **seed spread** ``sqrt(sd_A^2 + sd_B^2)``: the SD of the difference between ONE seed of each family, i.e. how
  far the single-seed answer moves when both models are retrained.

Verdict: "aggregated better" / "aggregated worse" (in the metric's better direction) only when the CI of D
excludes 0 AND ``|D| > seed spread``; otherwise "not separable (seed spread X)". With fewer than two seeds on
either side the spread is unknown: the row is then called exactly as the single-draw comparison table calls it
(:func:`benchmark.analysis.summary.significant_direction`: Holm-adjusted paired Wilcoxon p <= 0.05), so the two
tables of a one-seed run never disagree, and the verdict says "(single seed)". With fewer than
:data:`benchmark.analysis.summary.MIN_PEOPLE` people there is no CI and no verdict: "too few people".

The reference is chosen as in the report: the specialist family (the specific one trained on this dataset) on
an in-domain dataset, else the specific family with the best seed-averaged mean on the paired cases.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmark.evaluation.metrics import HIGHER_IS_BETTER, METRIC_NAMES
from benchmark.evaluation.results import ResultsFile
from benchmark.analysis.family import compare_family
from benchmark.analysis.labels import TOO_FEW_PEOPLE
from benchmark.analysis.report.tables import paired_metric, pairs_of, person_column, person_keys, reference_model
from benchmark.analysis.summary import person_means, significant_direction

SEED_SUFFIX = re.compile(r"^(?P<family>.+)-seed(?P<seed>\d+)$")
VERDICT_BETTER = "aggregated better"
VERDICT_WORSE = "aggregated worse"
NOT_SEPARABLE = "not separable"
SINGLE_SEED = "single seed"

SEED_COMPARISON_COLUMNS = [
    "dataset", "suite_role", "aggregated", "reference", "people", "scans", "aggregated_seeds", "reference_seeds",
    "aggregated_mean", "reference_mean", "difference", "difference_low", "difference_high",
    "aggregated_seed_sd", "reference_seed_sd", "seed_spread", "p", "p_holm", "verdict",
]


def family_and_seed(submission: str, family: str | None = None, seed: int | None = None) -> tuple[str, int]:
    """(family, seed) of a submission: the declared ones, else read from a ``-seed<N>`` suffix, else (name, 0)."""
    match = SEED_SUFFIX.match(submission)
    if family is None:
        family = match.group("family") if match else submission
    if seed is None:
        seed = int(match.group("seed")) if match else 0
    return family, seed


def families(results: Sequence[ResultsFile]) -> dict[str, tuple[str, int]]:
    """submission -> (family, seed) for every results file."""
    return {result.submission: family_and_seed(result.submission, result.family, result.seed) for result in results}


@dataclass(frozen=True)
class SeedSummary:
    """One family on one dataset: seed-averaged mean over people, per-seed means over people and their SD."""

    family: str
    dataset: str
    people: int
    scans: int
    seeds: tuple[int, ...]
    seed_means: tuple[float, ...]
    mean: float
    seed_sd: float


def _seed_sd(means: Sequence[float]) -> float:
    return float(np.std(np.asarray(means, float), ddof=1)) if len(means) >= 2 else math.nan


def seed_averaged_cases(cases: pd.DataFrame, family_of: Mapping[str, tuple[str, int]], metric: str) -> pd.DataFrame:
    """Per (family, case) the metric averaged over the family's seeds, on the cases EVERY seed scored.

    ``cases`` holds per-case rows (``submission``, ``case_id``, ``dataset``, ``person``, ``suite_role``,
    ``model_role``, ``trained_on`` and the metric), e.g. :func:`benchmark.analysis.report.report_cases`. Output
    columns: ``family``, ``case_id``, ``dataset``, ``suite_role``, ``model_role``, ``person``, ``trained_on``,
    ``seeds`` (how many), the metric.
    """
    if metric not in METRIC_NAMES:
        raise ValueError(f"unknown metric {metric!r}; one of {', '.join(METRIC_NAMES)}")
    frame = cases.copy()
    frame["family"] = [family_of.get(name, (name, 0))[0] for name in frame["submission"]]
    frame["person"] = person_column(frame)
    members = frame.groupby("family")["submission"].nunique()
    keys = ["family", "case_id", "dataset", "suite_role", "model_role"]
    grouped = frame.groupby(keys, sort=True, dropna=False)
    averaged = grouped.agg(**{metric: (metric, "mean"), "seeds": ("submission", "nunique"),
                              "person": ("person", "first"), "trained_on": ("trained_on", "first")}).reset_index()
    complete = averaged["seeds"].to_numpy() == averaged["family"].map(members).to_numpy()
    return averaged[complete].reset_index(drop=True)


def seed_summaries(cases: pd.DataFrame, family_of: Mapping[str, tuple[str, int]], metric: str) -> list[SeedSummary]:
    """Per (family, dataset): the seed-averaged mean over people, each seed's mean over people and the
    between-seed SD (all on the scans every seed of the family scored)."""
    averaged = seed_averaged_cases(cases, family_of, metric)
    frame = cases.copy()
    frame["family"] = [family_of.get(name, (name, 0))[0] for name in frame["submission"]]
    frame["seed"] = [family_of.get(name, (name, 0))[1] for name in frame["submission"]]
    summaries = []
    for (family, dataset), here in averaged.groupby(["family", "dataset"], sort=True):
        rows = frame[(frame["family"] == family) & frame["case_id"].isin(here["case_id"])]
        per_seed = {int(seed): float(person_means(own[metric].to_numpy(float), person_keys(own))[1].mean())
                    for seed, own in rows.groupby("seed", sort=True)}
        people = person_means(here[metric].to_numpy(float), person_keys(here))[1]
        summaries.append(SeedSummary(family, dataset, int(people.size), int(here.shape[0]), tuple(per_seed),
                                     tuple(per_seed.values()), float(people.mean()),
                                     _seed_sd(list(per_seed.values()))))
    return summaries


def seed_verdict(difference: float, low: float, high: float, spread: float, metric: str, *,
                 p_holm: float = math.nan) -> str:
    """The rule of the module docstring, for one row (``p_holm`` decides only single-seed rows); an interval
    withheld (too few people) gives no verdict."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return TOO_FEW_PEOPLE
    better = difference > 0 if HIGHER_IS_BETTER[metric] else difference < 0
    called = VERDICT_BETTER if better else VERDICT_WORSE
    if not math.isfinite(spread):
        significant = significant_direction(difference, p_holm, higher_is_better=HIGHER_IS_BETTER[metric]) != 0
        return f"{called} ({SINGLE_SEED})" if significant else f"{NOT_SEPARABLE} ({SINGLE_SEED})"
    excludes_zero = low > 0 or high < 0
    if excludes_zero and abs(difference) > spread:
        return called
    return f"{NOT_SEPARABLE} (seed spread {spread:.3f})"


def seed_comparison_table(cases: pd.DataFrame, family_of: Mapping[str, tuple[str, int]], *, metric: str = "dice",
                          seed: int = 0) -> pd.DataFrame:
    """Aggregated family vs reference family per dataset, on seed-averaged cases (columns:
    :data:`SEED_COMPARISON_COLUMNS`). ``seed`` seeds the bootstrap, not the training."""
    averaged = seed_averaged_cases(cases, family_of, metric)
    sd = {(summary.family, summary.dataset): (summary.seed_sd, len(summary.seeds))
          for summary in seed_summaries(cases, family_of, metric)}
    chosen, family = [], []
    datasets = averaged[["dataset", "suite_role"]].drop_duplicates()
    order = sorted(datasets.itertuples(index=False), key=lambda row: (row.suite_role != "in-domain", row.dataset))
    aggregated_families = sorted(set(averaged.loc[averaged["model_role"] == "aggregated", "family"]))
    for dataset, suite_role in ((row.dataset, row.suite_role) for row in order):
        here = averaged[averaged["dataset"] == dataset]
        for aggregated in aggregated_families:
            if here[here["family"] == aggregated].empty:
                continue
            reference = reference_model(here, dataset, suite_role, aggregated, metric, key="family")
            if reference is None:
                continue
            chosen.append((dataset, suite_role, aggregated, reference[0]))
            family.append(pairs_of(paired_metric(here, aggregated, reference[0], metric, key="family"), dataset))
    rows = []
    for (dataset, suite_role, aggregated, reference), compared in zip(chosen, compare_family(family, seed=seed)):
        sd_a, seeds_a = sd.get((aggregated, dataset), (math.nan, 1))
        sd_b, seeds_b = sd.get((reference, dataset), (math.nan, 1))
        spread = math.sqrt(sd_a ** 2 + sd_b ** 2)
        diff = compared.difference
        verdict = ("no paired cases" if compared.people == 0 else
                   seed_verdict(diff.mean, diff.low, diff.high, spread, metric, p_holm=compared.p_holm))
        rows.append({
            "dataset": dataset, "suite_role": suite_role, "aggregated": aggregated, "reference": reference,
            "people": compared.people, "scans": compared.scans, "aggregated_seeds": seeds_a,
            "reference_seeds": seeds_b, "aggregated_mean": compared.a.mean, "reference_mean": compared.b.mean,
            "difference": diff.mean, "difference_low": diff.low, "difference_high": diff.high,
            "aggregated_seed_sd": sd_a, "reference_seed_sd": sd_b, "seed_spread": spread,
            "p": compared.p, "p_holm": compared.p_holm, "verdict": verdict,
        })
    return pd.DataFrame(rows, columns=SEED_COMPARISON_COLUMNS)


def is_single_seed(table: pd.DataFrame) -> bool:
    """True when some row of a seed comparison rests on one seed of a family (the spread is unknown)."""
    return bool((table["aggregated_seeds"] < 2).any() or (table["reference_seeds"] < 2).any()) if len(table) else True


__all__ = [
    "SEED_COMPARISON_COLUMNS", "SeedSummary", "family_and_seed", "families", "seed_averaged_cases", "seed_summaries",
    "seed_verdict", "seed_comparison_table", "is_single_seed",
]
