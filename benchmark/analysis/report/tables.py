"""Report tables: per-model means with CIs, aggregated vs reference specific comparison, by contrast (via benchmark.analysis.summary)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from benchmark.evaluation.metrics import HIGHER_IS_BETTER
from benchmark.analysis.labels import format_ci, format_p
from benchmark.analysis.summary import holm_adjust, mean_ci, paired_comparison, significant_direction
from benchmark.analysis.report.inputs import ALPHA, BEST_SPECIFIC_RULE, SPECIALIST_RULE, VERDICT_AGGREGATED, VERDICT_NONE, VERDICT_NO_CASES, VERDICT_SPECIFIC, _check_metric, _dataset_order, model_order


def _model_ci_rows(cases: pd.DataFrame, groups, metric: str, seed: int, describe) -> list[dict[str, Any]]:
    """For each (keys, rows) group and each model with rows there: keys, description, n, mean and 95 % CI."""
    order = model_order(cases) if not cases.empty else []
    rows = []
    for keys, here in groups:
        for submission in order:
            own = here[here["submission"] == submission]
            if own.empty:
                continue
            ci = mean_ci(own[metric].to_numpy(float), dataset=str(keys.get("dataset", keys.get("contrast"))), seed=seed)
            rows.append({**keys, "submission": submission, **describe(own),
                         "n": ci.n, "mean": ci.mean, "low": ci.low, "high": ci.high})
    return rows


def model_means(cases: pd.DataFrame, *, metric: str = "dice", seed: int = 0) -> pd.DataFrame:
    """Per (dataset, model): n, mean and bootstrap 95 % CI of ``metric`` over the model's cases."""
    _check_metric(metric)
    groups = [({"dataset": dataset, "suite_role": suite_role}, cases[cases["dataset"] == dataset])
              for dataset, suite_role in _dataset_order(cases)]
    rows = _model_ci_rows(cases, groups, metric, seed,
                          lambda own: {"model_role": own.iloc[0]["model_role"], "trained_on": own.iloc[0]["trained_on"]})
    columns = ["dataset", "suite_role", "submission", "model_role", "trained_on", "n", "mean", "low", "high"]
    return pd.DataFrame(rows, columns=columns)


def paired_metric(cases: pd.DataFrame, first: str, second: str, metric: str, key: str = "submission") -> pd.DataFrame:
    """Metric of two models (values of column ``key``) side by side on the case ids both have, sorted by case id."""
    a = cases.loc[cases[key] == first, ["case_id", metric]].rename(columns={metric: "a"})
    b = cases.loc[cases[key] == second, ["case_id", metric]].rename(columns={metric: "b"})
    return a.merge(b, on="case_id").sort_values("case_id", kind="stable").reset_index(drop=True)


def reference_model(here: pd.DataFrame, dataset: str, suite_role: str, aggregated: str, metric: str,
                    key: str = "submission") -> tuple[str, str] | None:
    """(reference model, rule) the aggregated model is compared with on one dataset: the specialist in-domain,
    else the specific model with the best mean on the cases both have. Models are the values of column ``key``
    (``submission``, or ``family`` for seed-averaged cases)."""
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
        rank = (-direction * float(pairs["b"].mean()), model)
        best = rank if best is None or rank < best else best
    return (best[1], BEST_SPECIFIC_RULE) if best else None


def _verdict(difference: float, p_holm: float, metric: str, alpha: float) -> str:
    direction = significant_direction(difference, p_holm, higher_is_better=HIGHER_IS_BETTER[metric], alpha=alpha)
    return {1: VERDICT_AGGREGATED, -1: VERDICT_SPECIFIC, 0: VERDICT_NONE}[direction]


COMPARISON_COLUMNS = [
    "dataset", "suite_role", "aggregated", "reference", "reference_rule", "n",
    "aggregated_mean", "aggregated_low", "aggregated_high", "reference_mean", "reference_low", "reference_high",
    "difference", "difference_low", "difference_high", "p", "p_holm", "verdict",
]


def comparison_table(cases: pd.DataFrame, *, metric: str = "dice", seed: int = 0, alpha: float = ALPHA) -> pd.DataFrame:
    """Aggregated vs reference specific model on every dataset (see module doc); Holm over all rows."""
    _check_metric(metric)
    rows: list[dict[str, Any]] = []
    aggregated_models = sorted(set(cases.loc[cases["model_role"] == "aggregated", "submission"])) if not cases.empty else []
    for dataset, suite_role in _dataset_order(cases) if not cases.empty else []:
        here = cases[cases["dataset"] == dataset]
        for aggregated in aggregated_models:
            if here[here["submission"] == aggregated].empty:
                continue
            chosen = reference_model(here, dataset, suite_role, aggregated, metric)
            if chosen is None:
                continue
            reference, rule = chosen
            pairs = paired_metric(here, aggregated, reference, metric)
            a, b = pairs["a"].to_numpy(float), pairs["b"].to_numpy(float)
            ci_a = mean_ci(a, dataset=dataset, seed=seed)
            ci_b = mean_ci(b, dataset=dataset, seed=seed)
            paired = paired_comparison(a, b, dataset=dataset, seed=seed)
            diff = paired.difference
            rows.append({
                "dataset": dataset, "suite_role": suite_role, "aggregated": aggregated, "reference": reference,
                "reference_rule": rule, "n": int(pairs.shape[0]),
                "aggregated_mean": ci_a.mean, "aggregated_low": ci_a.low, "aggregated_high": ci_a.high,
                "reference_mean": ci_b.mean, "reference_low": ci_b.low, "reference_high": ci_b.high,
                "difference": diff.mean, "difference_low": diff.low, "difference_high": diff.high,
                "p": paired.p_value,
            })
    table = pd.DataFrame(rows, columns=[c for c in COMPARISON_COLUMNS if c not in ("p_holm", "verdict")])
    tested = table["p"].notna().to_numpy(bool) if not table.empty else np.zeros(0, bool)
    adjusted = np.full(len(table), np.nan)
    if tested.any():
        adjusted[tested] = holm_adjust(table.loc[tested, "p"].to_numpy(float))
    table["p_holm"] = adjusted
    table["verdict"] = [
        VERDICT_NO_CASES if n == 0 else _verdict(d, p, metric, alpha)
        for n, d, p in zip(table["n"], table["difference"], table["p_holm"])
    ]
    return table[COMPARISON_COLUMNS]


def contrast_table(cases: pd.DataFrame, *, metric: str = "dice", seed: int = 0) -> pd.DataFrame:
    """Per (contrast, model): n, mean and bootstrap 95 % CI over every test case of that contrast."""
    _check_metric(metric)
    groups = [({"contrast": contrast}, cases[cases["contrast"] == contrast])
              for contrast in (sorted(set(cases["contrast"])) if not cases.empty else [])]
    rows = _model_ci_rows(cases, groups, metric, seed,
                          lambda own: {"model_role": own.iloc[0]["model_role"], "trained_on": own.iloc[0]["trained_on"],
                                       "datasets": ", ".join(sorted(set(own["dataset"])))})
    return pd.DataFrame(rows, columns=["contrast", "submission", "model_role", "trained_on", "datasets", "n", "mean",
                                       "low", "high"])


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
    """Display table per dataset: n, mean [CI] per model, aggregated - reference [CI], p, Holm p, verdict."""
    models = list(dict.fromkeys(means["submission"])) if not means.empty else []
    rows = []
    for dataset, suite_role in dict.fromkeys(zip(means["dataset"], means["suite_role"])) if not means.empty else []:
        here = means[means["dataset"] == dataset].set_index("submission")
        row: dict[str, Any] = {"dataset": dataset, "role": "OOD" if suite_role == "ood" else suite_role,
                               "n": int(here["n"].max())}
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
                                          f"n={first['n']})",
                "difference [95% CI]": format_ci(first["difference"], first["difference_low"],
                                                 first["difference_high"], metric, signed=True),
                "p": format_p(first["p"]), "p (Holm)": format_p(first["p_holm"]), "verdict": first["verdict"],
            })
        rows.append(row)
    return pd.DataFrame(rows)
