"""The seed-experiment report (a package: inputs -> tables -> figures -> overlays -> page): does an aggregated nnU-Net generalize better than dataset-specific ones?

:func:`write_report` writes ONE self-contained HTML file (plotly.js inlined once, overlay PNGs as
base64; it opens offline) with:

1. the metric per model on each out-of-domain (OOD) dataset, mean over people with bootstrap 95 % CI;
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
* paired on the cases both models have (same ``case_id``), over PEOPLE (docs/metrics.md): difference =
  aggregated - reference averaged per person, its percentile-bootstrap 95 % CI resampling people, the two-sided
  Wilcoxon signed-rank p-value of the per-person differences, and Holm's adjustment over the tested rows of the
  table (:func:`benchmark.analysis.family.compare_family`, the path the seed table, the gates and the leaderboard
  share); verdict at ``alpha`` on the Holm-adjusted p-value, in the metric's better direction; "too few people"
  below ``MIN_PEOPLE`` people (no interval, no test).

Every table function is pure (pandas in, DataFrame out) so that ``leaderboard/seed_experiment.ipynb``
reuses them. Output is deterministic for a seed: no timestamps, fixed plot element ids.
"""

from __future__ import annotations

from benchmark.analysis.report.inputs import ReportError, model_role, select_results, report_cases, leaked_counts, model_order, VERDICT_AGGREGATED, VERDICT_SPECIFIC, VERDICT_NONE, VERDICT_NO_CASES, SPECIALIST_RULE, BEST_SPECIFIC_RULE
from benchmark.analysis.report.tables import model_means, comparison_table, contrast_table, overlay_cases, statistics_table, COMPARISON_COLUMNS
from benchmark.analysis.report.figures import figure_titles, figure_ood, figure_in_domain, figure_contrast
from benchmark.analysis.report.overlays import case_images_from_cases_index, load_canonical, render_overlay
from benchmark.analysis.report.page import overlay_for_case, render_report, write_report

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
    "COMPARISON_COLUMNS",
    "VERDICT_AGGREGATED",
    "VERDICT_SPECIFIC",
    "VERDICT_NONE",
    "VERDICT_NO_CASES",
    "SPECIALIST_RULE",
    "BEST_SPECIFIC_RULE",
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
