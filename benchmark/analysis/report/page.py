"""The self-contained HTML page: every table, figure and overlay of the report, written atomically."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from benchmark import __version__
from benchmark.io import atomic_write_text
from benchmark.data.registry import load_suite
from benchmark.data.submissions import PREDICTIONS_NOTE
from benchmark.evaluation.results import ResultsFile
from benchmark.analysis.labels import METRIC_LABELS, format_ci, format_p, format_people, metric_label
from benchmark.analysis.summary import MIN_PEOPLE, N_RESAMPLES
from benchmark.analysis.report.figures import figure_contrast, figure_in_domain, figure_ood, figure_titles
from benchmark.analysis.report.inputs import ALPHA, _check_metric, leaked_counts, model_order, model_role, report_cases, select_results
from benchmark.analysis.report.overlays import _overlay_inputs, render_overlay
from benchmark.analysis.report.tables import comparison_table, contrast_table, model_means, overlay_cases, statistics_table


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
    items = []
    for row in comparison.itertuples(index=False):
        role = "OOD" if row.suite_role == "ood" else "in-domain"
        difference = format_ci(row.difference, row.difference_low, row.difference_high, metric, signed=True)
        items.append(
            f"<li><b>{html.escape(row.dataset)}</b> ({role}, {format_people(row.people, row.scans)}): "
            f"{html.escape(row.aggregated)} − {html.escape(row.reference)} = {html.escape(difference)}, "
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
        "CPU kernels (scoring)": r.cpu_kernels or "not recorded",
        "scans": int((cases["submission"] == r.submission).sum()),
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
        + f"<p>Metric shown: {html.escape(metric_label(metric))}. Statistics (<code>benchmark/analysis/summary.py"
          "</code>, <code>family.py</code>; docs/metrics.md): <b>the unit of analysis is the person</b>: each "
          "person's scans (contrasts, sessions) are averaged first, counts read people (scans). Means over people "
          f"with percentile-bootstrap 95% CIs resampling people ({N_RESAMPLES} resamples, seed {seed}); aggregated "
          "vs specific on the scans both have, paired: bootstrap CI of the mean per-person difference, two-sided "
          "Wilcoxon signed-rank p-value of the per-person differences, Holm adjustment over every tested "
          f"comparison of the table, verdict at alpha = {ALPHA} on the adjusted p-value. With fewer than "
          f"{MIN_PEOPLE} people no interval and no test is given (too few people). Reference model: the "
          "specialist on an in-domain dataset, the best specific model (highest mean) on an OOD dataset. "
          "Model roles from the declared training datasets: aggregated = every in-domain dataset of the suite "
          "(more than one), specific = exactly one, other = anything else.</p>"
    )


def _kernels_note(results: Sequence[ResultsFile]) -> str:
    """Which CPU kernels the models' networks ran with when scored (benchmark.kernels): pinned-avx2 gives the same
    masks on every x86-64 CPU with AVX2."""
    labels = sorted({part for r in results if r.cpu_kernels for part in r.cpu_kernels.split(" | ")})
    unrecorded = sum(1 for r in results if not r.cpu_kernels)
    text = "CPU kernels " + (", ".join(labels) if labels else "not recorded")
    return text + (f" ({unrecorded} model(s) not recorded)" if labels and unrecorded else "")


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
        f"{len(chosen)} models, {_people_text(cases)}, {html.escape(_kernels_note(chosen))}.</p>",
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


def _people_text(cases: pd.DataFrame) -> str:
    if cases.empty:
        return "no test scans"
    people = (cases["dataset"].astype(str) + ":" + cases["person"].astype(str)).nunique()
    return f"{people} people ({cases['case_id'].nunique()} test scans)"


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

