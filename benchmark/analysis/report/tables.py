"""Report tables: per-model means with CIs, aggregated vs reference specific comparison, by contrast (via
benchmark.analysis.summary and benchmark.analysis.family: everything over people, with "people (scans)" counts)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from benchmark.evaluation.metrics import HIGHER_IS_BETTER
from benchmark.analysis.family import NO_PAIRS, Pairs, compare_family
from benchmark.analysis.labels import PEOPLE_SCANS, TOO_FEW_PEOPLE, format_ci, format_p, format_people
from benchmark.analysis.summary import mean_ci, person_means, significant_direction
from benchmark.analysis.report.inputs import ALPHA, BEST_SPECIFIC_RULE, SPECIALIST_RULE, VERDICT_AGGREGATED, VERDICT_NONE, VERDICT_NO_CASES, VERDICT_SPECIFIC, _check_metric, _dataset_order, model_order


def person_column(cases: pd.DataFrame) -> pd.Series:
    """Each row's person: the ``person`` column of results rows; a table without one (built by hand) falls back to
    ``subject``, else every scan is its own person."""
    for column in ("person", "subject", "case_id"):
        if column in cases:
            return cases[column].astype(str)
    raise KeyError("a cases table needs a person, subject or case_id column")


def person_keys(cases: pd.DataFrame) -> np.ndarray:
    """Each row's person as ``<dataset>:<person>`` (people of different datasets never merge)."""
    if cases.empty:
        return np.empty(0, dtype=object)
    return (cases["dataset"].astype(str) + ":" + person_column(cases)).to_numpy(dtype=object)


def _model_ci_rows(cases: pd.DataFrame, groups, metric: str, seed: int, describe) -> list[dict[str, Any]]:
    """For each (keys, rows) group and each model with rows there: keys, description, people, scans, mean over
    people and its 95 % CI (people resampled)."""
    order = model_order(cases) if not cases.empty else []
    rows = []
    for keys, here in groups:
        for submission in order:
            own = here[here["submission"] == submission]
            if own.empty:
                continue
            ci = mean_ci(own[metric].to_numpy(float), dataset=str(keys.get("dataset", keys.get("contrast"))), seed=seed,
                         persons=person_keys(own))
            rows.append({**keys, "submission": submission, **describe(own),
                         "people": ci.n, "scans": ci.scans, "mean": ci.mean, "low": ci.low, "high": ci.high})
    return rows


def model_means(cases: pd.DataFrame, *, metric: str = "dice", seed: int = 0) -> pd.DataFrame:
    """Per (dataset, model): people, scans, mean over people and bootstrap 95 % CI of ``metric``."""
    _check_metric(metric)
    groups = [({"dataset": dataset, "suite_role": suite_role}, cases[cases["dataset"] == dataset])
              for dataset, suite_role in _dataset_order(cases)]
    rows = _model_ci_rows(cases, groups, metric, seed,
                          lambda own: {"model_role": own.iloc[0]["model_role"], "trained_on": own.iloc[0]["trained_on"]})
    columns = ["dataset", "suite_role", "submission", "model_role", "trained_on", "people", "scans", "mean", "low",
               "high"]
    return pd.DataFrame(rows, columns=columns)


def paired_metric(cases: pd.DataFrame, first: str, second: str, metric: str, key: str = "submission") -> pd.DataFrame:
    """Metric of two models (values of column ``key``) side by side on the case ids both have, sorted by case id,
    with each case's ``person`` (``<dataset>:<person>``)."""
    keep = cases[cases[key].isin([first, second])]
    frame = keep[["case_id", key, metric]].assign(person=person_keys(keep))
    a = frame.loc[frame[key] == first, ["case_id", "person", metric]].rename(columns={metric: "a"})
    b = frame.loc[frame[key] == second, ["case_id", metric]].rename(columns={metric: "b"})
    return a.merge(b, on="case_id").sort_values("case_id", kind="stable").reset_index(drop=True)


def pairs_of(pairs: pd.DataFrame, dataset: str) -> Pairs:
    """A :func:`paired_metric` table as one row of a comparison family."""
    return Pairs(dataset, pairs["person"].to_numpy(dtype=object), pairs["a"].to_numpy(float),
                 pairs["b"].to_numpy(float))


def reference_model(here: pd.DataFrame, dataset: str, suite_role: str, aggregated: str, metric: str,
                    key: str = "submission") -> tuple[str, str] | None:
    """(reference model, rule) the aggregated model is compared with on one dataset: the specialist in-domain,
    else the specific model with the best mean over people on the cases both have. Models are the values of column
    ``key`` (``submission``, or ``family`` for seed-averaged cases)."""
    specific = here[here["model_role"] == "specific"]
    if specific.empty:
        return None
    if suite_role == "in-domain":
        specialists = sorted(set(specific.loc[specific["trained_on"] == dataset, key]))
        if specialists:
            return specialists[0], SPECIALIST_RULE
    direction = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    best: tuple[float, str] | None = None
    for model in sorted(set(specific[key])):
        pairs = paired_metric(here, aggregated, model, metric, key)
        if pairs.empty:
            continue
        _, people, _ = person_means(pairs["b"].to_numpy(float), pairs["person"])
        rank = (-direction * float(people.mean()), model)
        best = rank if best is None or rank < best else best
    return (best[1], BEST_SPECIFIC_RULE) if best else None


def _verdict(difference: float, p_holm: float, metric: str, alpha: float) -> str:
    direction = significant_direction(difference, p_holm, higher_is_better=HIGHER_IS_BETTER[metric], alpha=alpha)
    return {1: VERDICT_AGGREGATED, -1: VERDICT_SPECIFIC, 0: VERDICT_NONE}[direction]


def family_verdict(row, metric: str, alpha: float) -> str:
    """The verdict of a compared row (:class:`benchmark.analysis.family.FamilyRow`): none without pairs or with too
    few people, else the Holm-adjusted two-sided test in the metric's better direction."""
    if row.status == NO_PAIRS:
        return VERDICT_NO_CASES
    if row.status == TOO_FEW_PEOPLE:
        return TOO_FEW_PEOPLE
    return _verdict(row.difference.mean, row.p_holm, metric, alpha)


COMPARISON_COLUMNS = [
    "dataset", "suite_role", "aggregated", "reference", "reference_rule", "people", "scans",
    "aggregated_mean", "aggregated_low", "aggregated_high", "reference_mean", "reference_low", "reference_high",
    "difference", "difference_low", "difference_high", "p", "p_holm", "verdict",
]


def comparison_table(cases: pd.DataFrame, *, metric: str = "dice", seed: int = 0, alpha: float = ALPHA) -> pd.DataFrame:
    """Aggregated vs reference specific model on every dataset (see module doc): one family
    (:func:`benchmark.analysis.family.compare_family`), Holm over its tested rows."""
    _check_metric(metric)
    chosen: list[dict[str, Any]] = []
    family: list[Pairs] = []
    aggregated_models = sorted(set(cases.loc[cases["model_role"] == "aggregated", "submission"])) if not cases.empty else []
    for dataset, suite_role in _dataset_order(cases) if not cases.empty else []:
        here = cases[cases["dataset"] == dataset]
        for aggregated in aggregated_models:
            if here[here["submission"] == aggregated].empty:
                continue
            reference = reference_model(here, dataset, suite_role, aggregated, metric)
            if reference is None:
                continue
            chosen.append({"dataset": dataset, "suite_role": suite_role, "aggregated": aggregated,
                           "reference": reference[0], "reference_rule": reference[1]})
            family.append(pairs_of(paired_metric(here, aggregated, reference[0], metric), dataset))
    rows = []
    for keys, compared in zip(chosen, compare_family(family, seed=seed)):
        rows.append({
            **keys, "people": compared.people, "scans": compared.scans,
            "aggregated_mean": compared.a.mean, "aggregated_low": compared.a.low, "aggregated_high": compared.a.high,
            "reference_mean": compared.b.mean, "reference_low": compared.b.low, "reference_high": compared.b.high,
            "difference": compared.difference.mean, "difference_low": compared.difference.low,
            "difference_high": compared.difference.high, "p": compared.p, "p_holm": compared.p_holm,
            "verdict": family_verdict(compared, metric, alpha),
        })
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def contrast_table(cases: pd.DataFrame, *, metric: str = "dice", seed: int = 0) -> pd.DataFrame:
    """Per (contrast, model): people, scans, mean over people and bootstrap 95 % CI over every test scan of that
    contrast (a person is ``<dataset>:<person>``)."""
    _check_metric(metric)
    groups = [({"contrast": contrast}, cases[cases["contrast"] == contrast])
              for contrast in (sorted(set(cases["contrast"])) if not cases.empty else [])]
    rows = _model_ci_rows(cases, groups, metric, seed,
                          lambda own: {"model_role": own.iloc[0]["model_role"], "trained_on": own.iloc[0]["trained_on"],
                                       "datasets": ", ".join(sorted(set(own["dataset"])))})
    return pd.DataFrame(rows, columns=["contrast", "submission", "model_role", "trained_on", "datasets", "people",
                                       "scans", "mean", "low", "high"])


def overlay_cases(cases: pd.DataFrame, *, metric: str = "dice") -> pd.DataFrame:
    """Best, median and worst case of each OOD dataset by the aggregated model's ``metric``.

    Cases are ordered best first (ties by case id); the median is the ``(n - 1) // 2``-th. With
    several aggregated models the first by name decides. Empty without an aggregated model.
    """
    _check_metric(metric)
    columns = ["dataset", "which", "case_id", "value"]
    if cases.empty:
        return pd.DataFrame(columns=columns)
    aggregated = sorted(set(cases.loc[cases["model_role"] == "aggregated", "submission"]))
    if not aggregated:
        return pd.DataFrame(columns=columns)
    rows = []
    own = cases[(cases["submission"] == aggregated[0]) & (cases["suite_role"] == "ood")]
    direction = -1.0 if HIGHER_IS_BETTER[metric] else 1.0
    for dataset in sorted(set(own["dataset"])):
        here = own[own["dataset"] == dataset]
        ranked = sorted(zip(here[metric].astype(float), here["case_id"]), key=lambda item: (direction * item[0], item[1]))
        for which, position in (("best", 0), ("median", (len(ranked) - 1) // 2), ("worst", len(ranked) - 1)):
            value, case_id = ranked[position]
            rows.append({"dataset": dataset, "which": which, "case_id": case_id, "value": value})
    return pd.DataFrame(rows, columns=columns)


def statistics_table(means: pd.DataFrame, comparison: pd.DataFrame, *, metric: str = "dice") -> pd.DataFrame:
    """Display table per dataset: people (scans), mean [CI] per model, aggregated - reference [CI], p, Holm p,
    verdict."""
    models = list(dict.fromkeys(means["submission"])) if not means.empty else []
    rows = []
    for dataset, suite_role in dict.fromkeys(zip(means["dataset"], means["suite_role"])) if not means.empty else []:
        here = means[means["dataset"] == dataset].set_index("submission")
        widest = here.sort_values(["people", "scans"]).iloc[-1]
        row: dict[str, Any] = {"dataset": dataset, "role": "OOD" if suite_role == "ood" else suite_role,
                               PEOPLE_SCANS: format_people(widest["people"], widest["scans"])}
        for submission in models:
            row[submission] = (format_ci(*here.loc[submission, ["mean", "low", "high"]], metric)
                               if submission in here.index else "–")
        compared = comparison[comparison["dataset"] == dataset]
        if compared.empty:
            row.update({"aggregated − reference": "–", "difference [95% CI]": "–", "p": "–", "p (Holm)": "–",
                        "verdict": "no aggregated/specific pair"})
        else:
            first = compared.iloc[0]
            row.update({
                "aggregated − reference": f"{first['aggregated']} − {first['reference']} ({first['reference_rule']}, "
                                          f"{format_people(first['people'], first['scans'])} paired)",
                "difference [95% CI]": format_ci(first["difference"], first["difference_low"],
                                                 first["difference_high"], metric, signed=True),
                "p": format_p(first["p"]), "p (Holm)": format_p(first["p_holm"]), "verdict": first["verdict"],
            })
        rows.append(row)
    return pd.DataFrame(rows)
