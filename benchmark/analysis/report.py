"""The seed-experiment report: does an aggregated nnU-Net generalize better than dataset-specific ones?

:func:`write_report` writes ONE self-contained HTML file (plotly.js inlined once, overlay PNGs as
base64; it opens offline) with:

1. the metric per model on each out-of-domain (OOD) dataset, mean with bootstrap 95 % CI;
2. specific vs aggregated on each in-domain dataset (paired difference, CI, Wilcoxon p, Holm);
3. the metric by contrast per model;
4. qualitative overlays: best, median and worst case of each OOD dataset (by the aggregated model);
5. the statistics table;
6. methods: benchmark and cordbench versions, model sha256s, metric and test definitions.

Model roles come from ``ResultsFile.declared_training_datasets`` (:func:`model_role`):
**aggregated** = trained on more than one dataset, every in-domain dataset of the suite among them;
**specific** = trained on exactly one dataset; **other** = anything else (e.g. a training-free baseline).

Comparisons (:func:`comparison_table`), one row per (dataset, aggregated model):

* reference model: on an in-domain dataset the *specialist* (the specific model trained on that
  dataset); on an OOD dataset, or an in-domain one without a specialist, the *best specific* model
  (highest mean on the paired cases; ties by name). Choosing the best specific after seeing the
  data favours the specific side, so "aggregated better" verdicts are conservative;
* paired on the cases both models have (same ``case_id``): difference = aggregated - reference, its
  percentile-bootstrap 95 % CI (:func:`benchmark.analysis.stats.paired_difference_ci`), the two-sided
  :func:`benchmark.analysis.stats.paired_wilcoxon` p-value, and Holm's adjustment over every row of the table
  (:func:`benchmark.analysis.stats.holm_adjust`); verdict at ``alpha`` on the Holm-adjusted p-value, in the
  metric's better direction.

Every table function is pure (pandas in, DataFrame out) so that ``leaderboard/seed_experiment.ipynb``
reuses them. Output is deterministic for a seed: no timestamps, fixed plot element ids.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from benchmark import __version__
from benchmark.errors import CordbenchError
from benchmark.io import atomic_write_text
from benchmark.evaluation.metrics import HIGHER_IS_BETTER, METRIC_NAMES
from benchmark.data.registry import load_suite
from benchmark.data.submissions import PREDICTIONS_NOTE
from benchmark.evaluation.results import ResultsFile, cases_frame, load_cases_index
from benchmark.analysis.labels import METRIC_LABELS, decimals, format_ci, format_p, metric_label
from benchmark.analysis.summary import N_RESAMPLES, holm_adjust, mean_ci, paired_comparison

ModelRole = Literal["aggregated", "specific", "other"]
ROLE_ORDER: dict[str, int] = {"aggregated": 0, "specific": 1, "other": 2}
SUITE_ROLE_ORDER: dict[str, int] = {"in-domain": 0, "ood": 1}
ALPHA = 0.05
AGGREGATED_COLOUR = "#d62728"
SPECIFIC_COLOURS = ("#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b")
OTHER_COLOUR = "#969696"
VERDICT_AGGREGATED = "aggregated better"
VERDICT_SPECIFIC = "specific better"
VERDICT_NONE = "no significant difference"
VERDICT_NO_CASES = "no paired cases"
SPECIALIST_RULE = "specialist (trained on this dataset)"
BEST_SPECIFIC_RULE = "best specific (highest mean here)"


class ReportError(CordbenchError, ValueError):
    """The results cannot make a report (none for the suite, mixed versions, duplicate names)."""


# ---------------------------------------------------------------------------------- inputs
def model_role(declared_training_datasets: Sequence[str], in_domain: Sequence[str]) -> ModelRole:
    """aggregated / specific / other from a model's declared training datasets (see module doc)."""
    declared = set(declared_training_datasets)
    if len(declared) > 1 and set(in_domain) <= declared:
        return "aggregated"
    if len(declared) == 1:
        return "specific"
    return "other"


def select_results(results: Sequence[ResultsFile], suite: str) -> list[ResultsFile]:
    """The results of ``suite``, checked: one benchmark version, one file per submission; sorted by name."""
    chosen = [result for result in results if result.suite == suite]
    if not chosen:
        found = sorted({result.suite for result in results})
        raise ReportError(f"no results for suite {suite!r} (results are for: {', '.join(found) or 'nothing'})")
    versions = sorted({result.benchmark_version for result in chosen})
    if len(versions) > 1:
        by_version = {version: sorted(r.submission for r in chosen if r.benchmark_version == version)
                      for version in versions}
        raise ReportError(f"results of suite {suite!r} mix benchmark versions {by_version}; "
                          "a report compares models on one version: pass the results of one version only")
    names = [result.submission for result in chosen]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ReportError(f"several results files for submission(s) {duplicates} on {suite} {versions[0]}")
    return sorted(chosen, key=lambda result: result.submission)


def report_cases(results: Sequence[ResultsFile], in_domain: Sequence[str], *, exclude_leaked: bool = True) -> pd.DataFrame:
    """Per-case rows of every results file plus ``model_role``, ``trained_on`` and ``declared``.

    ``trained_on`` is the one training dataset of a specific model (None otherwise). Rows whose
    subject is in the model's declared training data (``subject_in_training``) are dropped unless
    ``exclude_leaked`` is False: such a score says nothing about generalization.
    """
    frame = cases_frame(list(results))
    roles = {r.submission: model_role(r.declared_training_datasets, in_domain) for r in results}
    declared = {r.submission: ", ".join(sorted(r.declared_training_datasets)) for r in results}
    single = {r.submission: r.declared_training_datasets[0] if len(set(r.declared_training_datasets)) == 1 else None
              for r in results}
    frame["model_role"] = frame["submission"].map(roles)
    frame["trained_on"] = frame["submission"].map(single)
    frame["declared"] = frame["submission"].map(declared)
    if exclude_leaked and not frame.empty:
        frame = frame[~frame["subject_in_training"].astype(bool)].reset_index(drop=True)
    return frame


def leaked_counts(cases: pd.DataFrame) -> dict[str, int]:
    """Per submission, how many rows score a subject the model declared it was trained on."""
    if cases.empty:
        return {}
    leaked = cases[cases["subject_in_training"].astype(bool)]
    return {name: int(count) for name, count in leaked.groupby("submission").size().items()}


def model_order(cases: pd.DataFrame) -> list[str]:
    """Submissions ordered aggregated first, then specific (by training dataset), then other."""
    models = cases[["submission", "model_role", "trained_on"]].drop_duplicates("submission")
    keyed = sorted(models.itertuples(index=False),
                   key=lambda row: (ROLE_ORDER[row.model_role], row.trained_on or "", row.submission))
    return [row.submission for row in keyed]


def _dataset_order(cases: pd.DataFrame) -> list[tuple[str, str]]:
    pairs = cases[["dataset", "suite_role"]].drop_duplicates()
    return sorted(((row.dataset, row.suite_role) for row in pairs.itertuples(index=False)),
                  key=lambda item: (SUITE_ROLE_ORDER.get(item[1], 9), item[0]))


def _check_metric(metric: str) -> None:
    if metric not in METRIC_NAMES:
        raise ReportError(f"unknown metric {metric!r}; one of {', '.join(METRIC_NAMES)}")


# ---------------------------------------------------------------------------------- tables
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


def _paired(cases: pd.DataFrame, first: str, second: str, metric: str) -> pd.DataFrame:
    """Metric of two submissions side by side on the case ids both have, sorted by case id."""
    a = cases.loc[cases["submission"] == first, ["case_id", metric]].rename(columns={metric: "a"})
    b = cases.loc[cases["submission"] == second, ["case_id", metric]].rename(columns={metric: "b"})
    return a.merge(b, on="case_id").sort_values("case_id", kind="stable").reset_index(drop=True)


def _reference(here: pd.DataFrame, dataset: str, suite_role: str, aggregated: str, metric: str) -> tuple[str, str] | None:
    """(reference submission, rule) for one dataset: the specialist in-domain, else the best specific."""
    specific = here[here["model_role"] == "specific"]
    if specific.empty:
        return None
    if suite_role == "in-domain":
        specialists = sorted(set(specific.loc[specific["trained_on"] == dataset, "submission"]))
        if specialists:
            return specialists[0], SPECIALIST_RULE
    direction = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    best: tuple[float, str] | None = None
    for submission in sorted(set(specific["submission"])):
        pairs = _paired(here, aggregated, submission, metric)
        if pairs.empty:
            continue
        key = (-direction * float(pairs["b"].mean()), submission)
        best = key if best is None or key < best else best
    return (best[1], BEST_SPECIFIC_RULE) if best else None


def _verdict(difference: float, p_holm: float, metric: str, alpha: float) -> str:
    if not np.isfinite(p_holm) or p_holm > alpha or difference == 0:
        return VERDICT_NONE
    aggregated_better = difference > 0 if HIGHER_IS_BETTER[metric] else difference < 0
    return VERDICT_AGGREGATED if aggregated_better else VERDICT_SPECIFIC


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
            chosen = _reference(here, dataset, suite_role, aggregated, metric)
            if chosen is None:
                continue
            reference, rule = chosen
            pairs = _paired(here, aggregated, reference, metric)
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


# ---------------------------------------------------------------------------------- figures


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
            customdata=np.stack([own["n"], own["low"], own["high"]], axis=-1).tolist(),
            hovertemplate="%{x}: %{y:.3f} [%{customdata[1]:.3f}, %{customdata[2]:.3f}], n=%{customdata[0]}"
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


# ---------------------------------------------------------------------------------- overlays
def case_images_from_cases_index(indexes: Mapping[str, Path], *, base: Path | None = None) -> dict[str, dict]:
    """Merge submissions' ``cases_index.json`` files (written by scoring) into :func:`write_report`'s
    ``case_images``: ``{case_id: {"image", "label", "prediction": {submission: path}}}``.

    ``indexes`` maps a submission name to its ``cases_index.json``; relative paths in them are taken
    relative to ``base`` (default: the current folder, where scoring ran). Missing index files are skipped.
    """
    merged, problems = load_cases_index(sorted(indexes.items()), base=base)
    if problems:
        raise ReportError(problems[0])
    return merged


def load_canonical(path: Path) -> tuple[np.ndarray, tuple[float, ...]]:
    """A NIfTI volume as float32 in canonical RAS+ (extra dimensions: their first volume) and its spacing in mm."""
    import nibabel as nib

    image = nib.as_closest_canonical(nib.load(str(path)))
    data = np.asarray(image.dataobj, dtype=np.float32)
    while data.ndim > 3:
        data = data[..., 0]
    return data, tuple(float(z) for z in image.header.get_zooms()[:3])


def _centre_slice(label: np.ndarray) -> int:
    """The axial index through the mask's centre of mass (the middle slice for an empty mask)."""
    z = np.nonzero(label > 0.5)[2]
    return int(round(float(z.mean()))) if z.size else label.shape[2] // 2


def render_overlay(image: Path, label: Path, predictions: Mapping[str, Path], values: Mapping[str, float],
                   *, metric: str = "dice", dpi: int = 80) -> bytes:
    """PNG: the axial slice through the mask centre, one panel per prediction, contours of the ground
    truth (green) and of the prediction (magenta), the model's ``metric`` for this case in the title."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    volume, zooms = load_canonical(image)
    truth, _ = load_canonical(label)
    if truth.shape != volume.shape:
        raise ReportError(f"{label}: grid {truth.shape} differs from the image's {volume.shape}")
    k = _centre_slice(truth)
    plane = volume[:, :, k].T
    low, high = np.percentile(plane, [1, 99]) if plane.size else (0.0, 1.0)
    names = list(predictions) or ["ground truth"]
    figure = Figure(figsize=(2.4 * len(names), 2.8), dpi=dpi)
    FigureCanvasAgg(figure)
    for position, name in enumerate(names, start=1):
        axes = figure.add_subplot(1, len(names), position)
        axes.imshow(plane, cmap="gray", vmin=low, vmax=high if high > low else low + 1, origin="lower",
                    aspect=zooms[1] / zooms[0], interpolation="nearest")
        _contour(axes, truth[:, :, k].T, "#00c000")
        if name in predictions:
            predicted, _ = load_canonical(predictions[name])
            if predicted.shape != volume.shape:
                raise ReportError(f"{predictions[name]}: grid {predicted.shape} differs from the image's {volume.shape}")
            _contour(axes, predicted[:, :, k].T, "#ff00ff")
            value = values.get(name)
            axes.set_title(f"{name}\n{METRIC_LABELS.get(metric, metric)} "
                           f"{'n/a' if value is None else f'{value:.3f}'}", fontsize=7)
        axes.set_axis_off()
    figure.suptitle(f"axial slice {k} (RAS+): ground truth green, prediction magenta", fontsize=7)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _contour(axes, plane: np.ndarray, colour: str) -> None:
    mask = plane > 0.5
    if mask.any() and not mask.all():  # a contour needs both sides of the level
        axes.contour(mask.astype(np.float32), levels=[0.5], colors=[colour], linewidths=1.0)


def _overlay_inputs(case_id: str, entry: Mapping | None, models: Sequence[str]) -> tuple[dict[str, Path], list[str]]:
    """Files for one case and what is missing (named); ``image``/``label`` keys when present."""
    if entry is None:
        return {}, [f"{case_id}: no entry in case_images (image, label and predictions unknown)"]
    found: dict[str, Path] = {}
    missing: list[str] = []
    for key in ("image", "label"):
        path = entry.get(key)
        if path is None:
            missing.append(f"{case_id}: no {key} path given")
        elif not Path(path).is_file():
            missing.append(f"{case_id}: {key} not found at {path}")
        else:
            found[key] = Path(path)
    predictions = entry.get("prediction") or {}
    for submission in models:
        path = predictions.get(submission)
        if path is None:
            missing.append(f"{case_id}: no prediction path for {submission}")
        elif not Path(path).is_file():
            missing.append(f"{case_id}: prediction of {submission} not found at {path}")
        else:
            found[f"prediction:{submission}"] = Path(path)
    return found, missing


# ---------------------------------------------------------------------------------- HTML
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;font-size:.82rem;margin:.6rem 0}th,td{border:1px solid #ddd;padding:.25rem .45rem;text-align:left}
th{background:#f4f4f4}.note{color:#555;font-size:.9rem}.missing{color:#a33}figure{margin:1rem 0}
figcaption{font-size:.85rem;color:#444}code{background:#f4f4f4;padding:0 .2rem}
"""


def _table_html(frame: pd.DataFrame) -> str:
    if frame.empty:
        return '<p class="note">(no rows)</p>'
    return frame.to_html(index=False, border=0, escape=True, na_rep="–", float_format=lambda v: f"{v:.4f}")


def _figure_html(figure: go.Figure, div_id: str, *, with_plotlyjs: bool) -> str:
    return figure.to_html(full_html=False, include_plotlyjs=with_plotlyjs, div_id=div_id, default_height="480px",
                          config={"displaylogo": False, "responsive": True})


def _summary_items(comparison: pd.DataFrame, metric: str) -> list[str]:
    places = decimals(metric)
    items = []
    for row in comparison.itertuples(index=False):
        role = "OOD" if row.suite_role == "ood" else "in-domain"
        items.append(
            f"<li><b>{html.escape(row.dataset)}</b> ({role}): {html.escape(row.aggregated)} − "
            f"{html.escape(row.reference)} = {row.difference:+.{places}f} "
            f"[{row.difference_low:+.{places}f}, {row.difference_high:+.{places}f}], "
            f"Holm p = {format_p(row.p_holm)}: <b>{html.escape(row.verdict)}</b></li>")
    return items


def overlay_for_case(cases: pd.DataFrame, case_id: str, case_images: Mapping | None, *,
                     metric: str = "dice") -> tuple[bytes | None, list[str]]:
    """The overlay PNG of one case (None when the image or the mask is missing) and what is missing.

    One panel per model that scored the case and whose prediction file exists (aggregated first).
    """
    here = cases[cases["case_id"] == case_id]
    present = [m for m in model_order(cases) if m in set(here["submission"])]
    values = dict(zip(here["submission"], here[metric].astype(float)))
    entry = None if case_images is None else case_images.get(case_id)
    files, missing = _overlay_inputs(case_id, entry, present)
    if "image" not in files or "label" not in files:
        return None, missing
    predictions = {m: files[f"prediction:{m}"] for m in present if f"prediction:{m}" in files}
    return render_overlay(files["image"], files["label"], predictions, values, metric=metric), missing


def _overlay_section(cases: pd.DataFrame, case_images: Mapping | None, metric: str) -> str:
    chosen = overlay_cases(cases, metric=metric)
    if chosen.empty:
        return '<p class="note">No overlays: no aggregated model with OOD cases among the results.</p>'
    parts: list[str] = []
    if case_images is None:
        parts.append('<p class="missing">No case images were given (<code>case_images</code>), so no overlay '
                     'could be drawn. Files needed (image, ground truth and each model\'s prediction):</p><ul>')
        parts += [f"<li>{html.escape(row.dataset)} {row.which}: <code>{html.escape(row.case_id)}</code></li>"
                  for row in chosen.itertuples(index=False)]
        return "\n".join(parts + ["</ul>"])
    for row in chosen.itertuples(index=False):
        png, missing = overlay_for_case(cases, row.case_id, case_images, metric=metric)
        caption = (f"{html.escape(row.dataset)} — {row.which} case by the aggregated model "
                   f"({METRIC_LABELS.get(metric, metric)} {row.value:.3f}): <code>{html.escape(row.case_id)}</code>")
        notes = "".join(f"<li>{html.escape(item)}</li>" for item in missing)
        if png is None:
            parts.append(f'<figure><figcaption>{caption}</figcaption><p class="missing">Not drawn; missing files:</p>'
                         f"<ul>{notes}</ul></figure>")
            continue
        note = f'<p class="missing">Missing:</p><ul>{notes}</ul>' if missing else ""
        parts.append(f'<figure><img alt="{html.escape(row.case_id)}" src="data:image/png;base64,'
                     f'{base64.b64encode(png).decode("ascii")}"/><figcaption>{caption}</figcaption>{note}</figure>')
    return "\n".join(parts)


def _methods_section(results: Sequence[ResultsFile], cases: pd.DataFrame, leaks: Mapping[str, int], metric: str,
                     seed: int, in_domain: Sequence[str]) -> str:
    models = pd.DataFrame([{
        "submission": r.submission,
        "role": model_role(r.declared_training_datasets, in_domain),
        "declared training datasets": ", ".join(sorted(r.declared_training_datasets)) or "(none)",
        "model type": r.model_type + (f" ({PREDICTIONS_NOTE})" if r.model_type == "predictions" else ""),
        "model sha256": r.model_sha256, "cordbench version": r.cordbench_version,
        "cases": int((cases["submission"] == r.submission).sum()),
        "leaked rows excluded": int(leaks.get(r.submission, 0)),
    } for r in results])
    versions = sorted({r.benchmark_version for r in results})
    return (
        f"<p>Benchmark version (content hash of the suite's split file): <code>{html.escape(', '.join(versions))}</code>. "
        f"Report made with cordbench {html.escape(__version__)}.</p>"
        + _table_html(models)
        + "<p>Metric definitions (formulas, empty-mask policy): <code>benchmark/evaluation/metrics.py</code> "
          "(and <code>docs/metrics.md</code>). A missing or failed prediction is scored as an empty mask and kept "
          "in every mean. Rows whose subject the model declared as training data are excluded.</p>"
        + f"<p>Metric shown: {html.escape(metric_label(metric))}. Statistics (<code>benchmark/analysis/stats.py</code>): means with percentile-bootstrap 95% CIs "
          f"({N_RESAMPLES} resamples of cases, seed {seed}); aggregated vs specific on the cases both have, paired: "
          "bootstrap CI of the mean difference, two-sided Wilcoxon signed-rank p-value, Holm adjustment over every "
          f"comparison of the table, verdict at alpha = {ALPHA} on the adjusted p-value. Reference model: the "
          "specialist on an in-domain dataset, the best specific model (highest mean) on an OOD dataset. "
          "Model roles from the declared training datasets: aggregated = every in-domain dataset of the suite "
          "(more than one), specific = exactly one, other = anything else.</p>"
    )


def render_report(results: Sequence[ResultsFile], *, suite: str, title: str | None = None,
                  case_images: Mapping | None = None, seed: int = 0, metric: str = "dice") -> str:
    """The report's HTML text (see :func:`write_report`)."""
    _check_metric(metric)
    chosen = select_results(results, suite)
    in_domain = load_suite(suite).ids("in-domain")
    all_rows = report_cases(chosen, in_domain, exclude_leaked=False)
    leaks = leaked_counts(all_rows)
    cases = report_cases(chosen, in_domain)
    means = model_means(cases, metric=metric, seed=seed)
    comparison = comparison_table(cases, metric=metric, seed=seed)
    contrasts = contrast_table(cases, metric=metric, seed=seed)
    titles = figure_titles(metric)
    heading = title or f"Aggregated vs dataset-specific models on {suite}"
    in_domain_rows = comparison[comparison["suite_role"] == "in-domain"]
    no_aggregated = ('<p class="missing">No aggregated model among the results (declared training data covering every '
                     f"in-domain dataset of {html.escape(suite)}: {html.escape(', '.join(in_domain))}).</p>"
                     if not (cases["model_role"] == "aggregated").any() else "")
    body = [
        f"<h1>{html.escape(heading)}</h1>",
        f'<p class="note">Suite <code>{html.escape(suite)}</code>, benchmark version '
        f"<code>{html.escape(chosen[0].benchmark_version)}</code>, metric {html.escape(metric_label(metric))}, "
        f"{len(chosen)} models, {cases['case_id'].nunique()} test cases.</p>",
        no_aggregated,
        "<h2>Summary: aggregated minus specific, per dataset</h2>",
        "<ul>" + "".join(_summary_items(comparison, metric)) + "</ul>" if not comparison.empty
        else '<p class="note">No aggregated/specific pair to compare.</p>',
        _headline_section(chosen, cases, suite, metric, seed),
        f"<h2>1. {html.escape(titles['ood'])}</h2>",
        _figure_html(figure_ood(means, metric=metric), "fig-ood", with_plotlyjs=True),
        f"<h2>2. {html.escape(titles['in_domain'])}</h2>",
        _figure_html(figure_in_domain(comparison, metric=metric), "fig-in-domain", with_plotlyjs=False),
        _table_html(_rounded(in_domain_rows)),
        f"<h2>3. {html.escape(titles['contrast'])}</h2>",
        _figure_html(figure_contrast(contrasts, metric=metric), "fig-contrast", with_plotlyjs=False),
        "<h2>4. Qualitative overlays: best, median and worst OOD case (by the aggregated model)</h2>",
        _overlay_section(cases, case_images, metric),
        "<h2>5. Statistics</h2>",
        _table_html(statistics_table(means, comparison, metric=metric)),
        _csa_section(chosen, seed),
        "<h2>6. Methods</h2>",
        _methods_section(chosen, cases, leaks, metric, seed, in_domain),
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>"
            f"<title>{html.escape(heading)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def _headline_section(chosen: Sequence[ResultsFile], cases: pd.DataFrame, suite: str, metric: str, seed: int) -> str:
    """Seed-aware verdict with seed spread and the one-voxel ceiling (benchmark.analysis.headline)."""
    from benchmark.analysis.headline import headline_table
    from benchmark.analysis.seeds import families, is_single_seed, seed_comparison_table
    from benchmark.evaluation.ceilings import load_ceilings

    if cases.empty or not (cases["model_role"] == "aggregated").any():
        return ""
    ceilings = load_ceilings(suite, chosen[0].benchmark_version)
    table = headline_table(cases, families(chosen), ceilings, metric=metric, seed=seed)
    note = ("A verdict is given only when the paired 95 % CI of the seed-averaged difference excludes 0 AND the "
            "difference exceeds the seed spread (the SD of the difference between one seed of each model). ")
    if is_single_seed(seed_comparison_table(cases, families(chosen), metric=metric, seed=seed)):
        note += "<b>Single-seed verdict:</b> the seed spread is unknown; train with <code>--seeds 0,1,2</code>. "
    if ceilings is not None and metric == "dice":
        note += ("<i>Within one voxel</i>: 1 − the Dice of the reference masks against themselves grown / shrunk by "
                 "one in-plane voxel; Dice differences below it are within one voxel of boundary placement.")
    return ("<h2>Headline: seed-aware verdict, seed spread and one-voxel ceiling</h2>"
            f'<p class="note">{note}</p>' + _table_html(table))


def _csa_section(chosen: Sequence[ResultsFile], seed: int) -> str:
    """CSA consistency across contrasts of one person (benchmark.analysis.csa_consistency), when measured."""
    from benchmark.analysis.csa_consistency import dataset_consistency, person_consistency

    persons = person_consistency(chosen)
    if persons.empty:
        return ""
    table = dataset_consistency(persons, seed=seed)
    figure = go.Figure()
    for submission, rows in table.groupby("submission", sort=False):
        figure.add_bar(name=submission, x=rows["dataset"], y=rows["sd_mm2"],
                       error_y={"type": "data", "symmetric": False, "array": rows["sd_high"] - rows["sd_mm2"],
                                "arrayminus": rows["sd_mm2"] - rows["sd_low"]})
    figure.update_layout(barmode="group", title="CSA spread across one person's contrasts (SD, mm²; lower is better)",
                         yaxis_title="SD of CSA across contrasts (mm²)", height=420)
    shown = table.copy()
    for column in ("sd_mm2", "sd_low", "sd_high"):
        shown[column] = shown[column].round(2)
    for column in ("cv", "cv_low", "cv_high"):
        shown[column] = shown[column].round(4)
    return ("<h2>CSA consistency across contrasts (no ground truth needed)</h2>"
            '<p class="note">Per person with ≥ 2 images: SD and CV across the images of the angle-corrected CSA, '
            "averaged over the scanner-z range all of them cover; per dataset the mean over persons [95 % bootstrap "
            "CI]. The reference masks' own spread is the floor. MS atrophy is ~1.8 %/year (~1.4 mm² of ~80 mm²).</p>"
            + _figure_html(figure, "fig-csa", with_plotlyjs=False) + _table_html(shown))


def _rounded(frame: pd.DataFrame) -> pd.DataFrame:
    shown = frame.drop(columns=["suite_role"])
    for column in ("p", "p_holm"):
        shown[column] = [format_p(value) for value in shown[column]]
    return shown


def write_report(results: list[ResultsFile], out_html: Path, *, suite: str, title: str | None = None,
                 case_images: dict | None = None, seed: int = 0, metric: str = "dice") -> Path:
    """Write the self-contained HTML report of ``results`` on ``suite`` to ``out_html`` (atomically).

    ``case_images`` maps case_id -> ``{"image": path, "label": path, "prediction": {submission: path}}``
    (see :func:`case_images_from_cases_index`); without it the overlay section lists the files it needs.
    Same inputs and seed give a byte-identical file.
    """
    text = render_report(results, suite=suite, title=title, case_images=case_images, seed=seed, metric=metric)
    atomic_write_text(Path(out_html), text)
    return Path(out_html)


__all__ = [
    "ReportError",
    "model_role",
    "select_results",
    "report_cases",
    "leaked_counts",
    "model_order",
    "model_means",
    "comparison_table",
    "contrast_table",
    "overlay_cases",
    "statistics_table",
    "figure_titles",
    "figure_ood",
    "figure_in_domain",
    "figure_contrast",
    "case_images_from_cases_index",
    "load_canonical",
    "render_overlay",
    "overlay_for_case",
    "render_report",
    "write_report",
]
