"""Report figures (plotly): OOD means, in-domain differences, per contrast."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from benchmark.analysis.labels import METRIC_LABELS, format_p, metric_label
from benchmark.analysis.report.inputs import AGGREGATED_COLOUR, OTHER_COLOUR, SPECIFIC_COLOURS


def figure_titles(metric: str = "dice") -> dict[str, str]:
    """The title of every figure of the report (also used by the tests and the notebook)."""
    label = METRIC_LABELS.get(metric, metric)
    return {
        "ood": f"{label} per model on each out-of-domain dataset (mean, 95% bootstrap CI)",
        "in_domain": f"Specific vs aggregated on each in-domain dataset ({label})",
        "contrast": f"{label} by contrast per model (all test cases, mean, 95% bootstrap CI)",
    }


def _legend_name(submission: str, role: str, trained_on: str | None) -> str:
    if role == "specific":
        return f"{submission} (specific: {trained_on})"
    return f"{submission} ({role})"


def _colours(models: pd.DataFrame) -> dict[str, str]:
    colours: dict[str, str] = {}
    specific_index = 0
    for row in models.itertuples(index=False):
        if row.model_role == "aggregated":
            colours[row.submission] = AGGREGATED_COLOUR
        elif row.model_role == "specific":
            colours[row.submission] = SPECIFIC_COLOURS[specific_index % len(SPECIFIC_COLOURS)]
            specific_index += 1
        else:
            colours[row.submission] = OTHER_COLOUR
    return colours


def _grouped_bars(table: pd.DataFrame, x_column: str, title: str, metric: str) -> go.Figure:
    """One bar trace per model over ``x_column``, CI error bars, the aggregated model outlined."""
    figure = go.Figure()
    models = table[["submission", "model_role"]].drop_duplicates("submission")
    trained = dict(zip(table["submission"], table["trained_on"])) if "trained_on" in table else {}
    colours = _colours(models)
    for row in models.itertuples(index=False):
        own = table[table["submission"] == row.submission]
        aggregated = row.model_role == "aggregated"
        figure.add_trace(go.Bar(
            name=_legend_name(row.submission, row.model_role, trained.get(row.submission)),
            x=list(own[x_column]), y=list(own["mean"]),
            error_y={"type": "data", "array": list(own["high"] - own["mean"]),
                     "arrayminus": list(own["mean"] - own["low"]), "visible": True},
            marker={"color": colours[row.submission],
                    "line": {"color": "#000000" if aggregated else colours[row.submission],
                             "width": 2 if aggregated else 0}},
            customdata=np.stack([own["people"], own["low"], own["high"], own["scans"]], axis=-1).tolist(),
            hovertemplate="%{x}: %{y:.3f} [%{customdata[1]:.3f}, %{customdata[2]:.3f}], "
                          "%{customdata[0]} people (%{customdata[3]} scans)"
                          f"<extra>{html.escape(row.submission)}</extra>",
        ))
    figure.update_layout(title=title, barmode="group", yaxis_title=metric_label(metric), template="plotly_white",
                         legend_title_text="model", height=480)
    return figure


def figure_ood(means: pd.DataFrame, *, metric: str = "dice") -> go.Figure:
    """The seed's key figure: grouped bars per OOD dataset, one per model, mean with 95 % CI."""
    return _grouped_bars(means[means["suite_role"] == "ood"], "dataset", figure_titles(metric)["ood"], metric)


def figure_in_domain(comparison: pd.DataFrame, *, metric: str = "dice") -> go.Figure:
    """Left: specialist vs aggregated mean per in-domain dataset; right: paired difference with CI."""
    rows = comparison[comparison["suite_role"] == "in-domain"]
    figure = make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4], subplot_titles=(
        f"mean {METRIC_LABELS.get(metric, metric)} on the paired cases (95% CI)",
        "aggregated − specific (95% CI; Holm-adjusted p)"))
    for side, colour in (("reference", SPECIFIC_COLOURS[3]), ("aggregated", AGGREGATED_COLOUR)):
        figure.add_trace(go.Bar(
            name="specialist" if side == "reference" else "aggregated", x=list(rows["dataset"]),
            y=list(rows[f"{side}_mean"]), marker={"color": colour},
            error_y={"type": "data", "array": list(rows[f"{side}_high"] - rows[f"{side}_mean"]),
                     "arrayminus": list(rows[f"{side}_mean"] - rows[f"{side}_low"]), "visible": True},
            text=list(rows[side]), hovertemplate="%{text}: %{y:.3f}<extra></extra>",
        ), row=1, col=1)
    figure.add_trace(go.Scatter(
        name="difference", x=list(rows["difference"]), y=list(rows["dataset"]), mode="markers+text",
        marker={"color": "#000000", "size": 9}, showlegend=False,
        error_x={"type": "data", "array": list(rows["difference_high"] - rows["difference"]),
                 "arrayminus": list(rows["difference"] - rows["difference_low"]), "visible": True},
        text=[f"p={format_p(p)}" for p in rows["p_holm"]], textposition="top center",
    ), row=1, col=2)
    figure.add_vline(x=0.0, line={"color": "#888888", "dash": "dash"}, row=1, col=2)
    figure.update_layout(title=figure_titles(metric)["in_domain"], barmode="group", template="plotly_white", height=480)
    figure.update_yaxes(title_text=metric_label(metric), row=1, col=1)
    return figure


def figure_contrast(contrasts: pd.DataFrame, *, metric: str = "dice") -> go.Figure:
    """Grouped bars per contrast, one per model, mean with 95 % CI."""
    return _grouped_bars(contrasts, "contrast", figure_titles(metric)["contrast"], metric)
