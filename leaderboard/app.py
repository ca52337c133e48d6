"""cordbench leaderboard: a read-only Streamlit app over results files.

Launch (from the repository root)::

    streamlit run leaderboard/app.py -- [--results-dir DIR ...] [--data-root DIR] [--cases-index FILE ...]

``--results-dir`` (repeatable; a submissions folder, any folder with ``*/results/*.json`` below it, or
one results file) defaults to the active workspace's ``submissions/`` and the built-in reference submissions
(``cordbench leaderboard`` passes both). Each row says where its model comes from (``model from``: a built-in
reference submission or the user's) and where its results file does (``results from``: shipped with cordbench, or
scored by the user). Versions are listed as ``suite@version`` with their origin and marks (superseded, changed
data), and the app opens on the user's newest one (:mod:`leaderboard.versions`). Without command-line arguments (e.g.
under ``streamlit.testing``) the environment is read instead: ``CORDBENCH_RESULTS_DIRS`` (folders
separated by ``os.pathsep``), ``CORDBENCH_DATA_ROOT``, ``CORDBENCH_CASES_INDEX`` (files separated by
``os.pathsep``). Each option given on the command line wins over its environment variable.

The app never writes: it reads results files (``benchmark.evaluation.results``), optional images/masks/cached
predictions for the case view, and renders. All table logic is in :mod:`leaderboard.tables`.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `streamlit run leaderboard/app.py` puts only leaderboard/ on the path
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import plotly.graph_objects as go  # noqa: E402
import streamlit as st  # noqa: E402

from benchmark.analysis import labels as metric_labels, summary  # noqa: E402
from benchmark.evaluation.metrics import HIGHER_IS_BETTER, METRIC_NAMES  # noqa: E402
from benchmark.evaluation.results import find_results_files  # noqa: E402
from leaderboard import data as board_data, tables, versions as board_versions  # noqa: E402
from leaderboard.plain_text import html_literal, markdown_literal as md  # noqa: E402

ENV_RESULTS_DIRS = "CORDBENCH_RESULTS_DIRS"
ENV_DATA_ROOT = "CORDBENCH_DATA_ROOT"
ENV_CASES_INDEX = "CORDBENCH_CASES_INDEX"
MODEL_ORIGIN_COLUMN = "model from"
RESULTS_ORIGIN_COLUMN = "results from"
METRICS_DOC = REPO_ROOT / "docs" / "metrics.md"

VIEW_MAIN = "Main table"
VIEW_DATASET = "Dataset view"
VIEW_COMPARE = "Compare view"
VIEW_CASE = "Case view"
VIEW_METHODS = "Methodology"
VIEWS = (VIEW_MAIN, VIEW_DATASET, VIEW_COMPARE, VIEW_CASE, VIEW_METHODS)



@dataclass(frozen=True)
class Config:
    results_dirs: tuple[str, ...]
    data_root: str | None
    cases_index: tuple[str, ...]


def parse_config(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> Config:
    """Command-line options (after ``--`` of ``streamlit run``) and, where absent, the environment."""
    parser = argparse.ArgumentParser(prog="leaderboard/app.py", allow_abbrev=False, add_help=False)
    parser.add_argument("--results-dir", action="append", default=None)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--cases-index", action="append", default=None)
    args, _unknown = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    environ = os.environ if environ is None else environ

    def env_list(name: str) -> list[str]:
        return [part for part in environ.get(name, "").split(os.pathsep) if part]

    results_dirs = args.results_dir or env_list(ENV_RESULTS_DIRS) or [str(root) for root in default_results_dirs()]
    data_root = args.data_root or environ.get(ENV_DATA_ROOT) or None
    cases_index = args.cases_index or env_list(ENV_CASES_INDEX)
    return Config(tuple(str(Path(p)) for p in results_dirs), data_root, tuple(cases_index))


def default_results_dirs() -> list[Path]:
    """The active workspace's submissions (scored here), then the built-in reference submissions."""
    from benchmark import workspace

    active = workspace.active()
    return ([active.submissions_dir] if active else []) + [workspace.builtin_submissions_dir()]


def submission_origin(name: str) -> str:
    """built-in: a reference submission shipped with cordbench; workspace: anyone else's model."""
    from benchmark.workspace import builtin_submissions_dir

    try:
        return "built-in" if (builtin_submissions_dir() / name / "submission.yaml").is_file() else "workspace"
    except (OSError, ValueError):  # a name no folder can have (too long, a NUL): no built-in submission has it
        return "workspace"


def with_origin(table: pd.DataFrame, results_paths: dict[str, str] | None = None) -> pd.DataFrame:
    """The main table with, after the submission, where its model comes from and where its results file does
    (built-in or workspace): a built-in model scored on the user's data has workspace results."""
    if table.empty or tables.KEY_COLUMN not in table.columns:
        return table
    names = [str(name) for name in table[tables.KEY_COLUMN]]
    frame = table.drop(columns=[MODEL_ORIGIN_COLUMN, RESULTS_ORIGIN_COLUMN], errors="ignore")
    frame.insert(1, MODEL_ORIGIN_COLUMN, [submission_origin(name) for name in names])
    paths = results_paths or {}
    frame.insert(2, RESULTS_ORIGIN_COLUMN, [board_versions.results_origin(paths[name]) if name in paths else ""
                                            for name in names])
    return frame


def metric_label(metric: str) -> str:
    return f"{metric_labels.metric_label(metric)} · {metric_labels.direction_text(metric)}"


# ------------------------------------------------------------------------------------------------
# cached loading
# ------------------------------------------------------------------------------------------------


def _fingerprint(roots: tuple[str, ...]) -> tuple:
    """Which results files exist and their (mtime, size): a changed file invalidates the cache."""
    existing = [Path(root) for root in roots if Path(root).exists()]
    entries = []
    for path in find_results_files(*existing):
        try:
            stat = path.stat()
        except OSError:
            continue
        entries.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(entries)


@st.cache_data(show_spinner="Reading results files…", max_entries=8)
def load_results(roots: tuple[str, ...], fingerprint: tuple) -> board_data.LoadedResults:
    return board_data.load_results_dirs(roots)


@st.cache_data(max_entries=8)
def version_infos(roots: tuple[str, ...], fingerprint: tuple, _loaded: board_data.LoadedResults
                  ) -> list[board_versions.VersionInfo]:
    """The versions in selector order, with their labels' facts (the split files are read once per results set)."""
    return board_versions.version_infos(_loaded)


@st.cache_resource(max_entries=8)
def prepared(roots: tuple[str, ...], fingerprint: tuple, version: str, _cases: pd.DataFrame) -> board_data.Prepared:
    return board_data.prepare(_cases, version)


@st.cache_data(max_entries=64)
def main_table(
    roots: tuple[str, ...], fingerprint: tuple, version: str, metric: str, zero_shot: bool, filters: board_data.Filters,
    ceilings_key: str, results_paths: tuple[tuple[str, str], ...], _prep: board_data.Prepared, _ceilings,
) -> tuple[pd.DataFrame, dict[str, str], list[str]]:
    """(the table with plain column names, the headers shown for them, caption lines): the headers carry the
    one-voxel ceilings and CSA floors, which change with the metric and filters while the chooser's options don't."""
    data = tables.main_table_data(_prep, metric=metric, zero_shot_only=zero_shot, filters=filters)
    return (with_origin(tables.format_main_table(data), dict(results_paths)),
            tables.main_table_headers(data, _ceilings), tables.main_table_notes(data, _ceilings))


def suite_ceilings(prep: board_data.Prepared) -> tuple[object | None, str | None]:
    """(the suite's one-voxel ceilings stored for this benchmark version or None, a problem to show or None)."""
    from benchmark.errors import CordbenchError
    from benchmark.evaluation.ceilings import load_ceilings

    if prep.suite is None or prep.benchmark_version is None:
        return None, None
    try:
        return load_ceilings(prep.suite, prep.benchmark_version), None
    except CordbenchError as error:  # an unreadable ceilings file: the table is shown without them
        return None, f"One-voxel ceilings not shown: {error}"


@st.cache_data(max_entries=16)
def cases_index(files: tuple[tuple[str | None, str], ...], fingerprint: tuple) -> tuple[dict, list[str]]:
    return tables.load_cases_index(files)


def cases_index_files(config: Config, loaded: board_data.LoadedResults, version: str) -> list[tuple[str | None, str]]:
    """``--cases-index`` files, then per submission the index scoring writes next to its results:
    ``<submission folder>/cases_index_<suite>.json`` (and a plain ``cases_index.json``)."""
    files: list[tuple[str | None, str]] = [(None, path) for path in config.cases_index]
    suites = loaded.cases.drop_duplicates(["submission", "benchmark_version"])
    for (submission, results_version), path in sorted(loaded.sources.items()):
        if results_version != version:
            continue
        folder = Path(path).parent.parent
        suite = suites.loc[
            (suites["submission"].astype(str) == submission) & (suites["benchmark_version"].astype(str) == version), "suite"
        ]
        for name in ([f"cases_index_{suite.iloc[0]}.json"] if len(suite) else []) + ["cases_index.json"]:
            files.append((submission, str(folder / name)))
    return files


# ------------------------------------------------------------------------------------------------
# views
# ------------------------------------------------------------------------------------------------


def _highlight(value: object) -> str:
    text = str(value)
    if text == tables.INCOMPLETE or text.startswith("incomplete"):
        return "background-color: #fde2e1; color: #9b1c1c"
    if tables.LEAK_MARK in text:
        return "background-color: #fff3cd"
    if text.endswith(tables.TRAINED_MARK):
        return "color: #6b7280"
    return ""


def view_main(prep: board_data.Prepared, table: pd.DataFrame, headers: dict[str, str], notes: list[str],
              state: dict) -> None:
    metric = state["metric"]
    st.header(f"Leaderboard · {metric_label(metric)}")
    st.caption(
        f"Benchmark version {md((prep.suite + '@') if prep.suite else '')}{md(prep.benchmark_version)} · "
        f"{len(prep.submissions)} submissions · "
        f"{len(prep.blocks)} datasets. Cells: mean [bootstrap 95 % CI] over the dataset's cases. "
        f"Column groups follow the suite's roles; per model, a dataset it was trained on is marked "
        f"{tables.TRAINED_MARK} and counts towards its *mean in-domain*; all others are zero-shot and count "
        f"towards *mean OOD*. `incomplete`: cases missing, so no mean. Sorted by mean rank "
        f"(tied ranks: differences not significant, paired Wilcoxon + Holm, α = {summary.ALPHA}). "
        f"*s/volume*: median inference seconds per case over the suite, with the device it was measured on "
        f"(CPU model and threads, or GPU model), the runtime and any precision other than float32 (compare only "
        f"rows measured on the same device)."
    )
    for note in notes:
        st.caption(md(note))
    if state.get("ceilings_problem"):
        st.warning(md(state["ceilings_problem"]))
    leak_notes = [
        f"**{md(row[tables.KEY_COLUMN])}**: {md(note)}"
        for _, row in table.iterrows()
        for note in str(row[tables.NOTES_COLUMN]).split("; ")
        if tables.LEAK_NOTE in note
    ]
    if leak_notes:
        action = "excluded from its scores" if state["filters"].exclude_leaked else "INCLUDED (cells marked ⚠)"
        st.warning(
            f"Leakage: test subjects that are in the model's declared training data are {action}.\n\n"
            + "\n".join(f"- {note}" for note in leak_notes)
        )
    optional = [column for column in table.columns if column != tables.KEY_COLUMN]
    with st.expander("Columns"):
        chosen = st.multiselect(
            "Shown columns (submission is always shown)",
            optional,
            default=optional,
            key=f"columns:{prep.benchmark_version}:{state['zero_shot']}",
        )
    shown = tables.select_columns(table, chosen).rename(columns=headers)
    st.dataframe(
        shown.style.map(_highlight),
        hide_index=True,
        width="stretch",
        column_config={
            tables.KEY_COLUMN: st.column_config.TextColumn(tables.KEY_COLUMN, pinned=True),
            "training datasets": st.column_config.TextColumn("training datasets", width="medium"),
            tables.NOTES_COLUMN: st.column_config.TextColumn(tables.NOTES_COLUMN, width="large"),
        },
    )
    st.download_button(
        "Download CSV (the table as shown)",
        data=tables.table_csv(shown),
        file_name=f"cordbench_{prep.benchmark_version}_{metric}{'_zero-shot' if state['zero_shot'] else ''}.csv",
        mime="text/csv",
        key="download_main_csv",
    )


def _box_figure(cases: pd.DataFrame, summary: pd.DataFrame, metric: str) -> go.Figure:
    fig = go.Figure()
    order = [name for name in summary["submission"] if name in set(cases["submission"])]
    for name in order:
        values = cases.loc[cases["submission"] == name, metric]
        fig.add_trace(
            go.Box(
                y=values, name=html_literal(name), boxpoints="all", jitter=0.45, pointpos=0, marker={"size": 4, "opacity": 0.55},
                line={"width": 1.2}, hovertext=cases.loc[cases["submission"] == name, "case_id"].map(html_literal),
                showlegend=False,
            )
        )
    ok = summary[summary["status"] == "ok"]
    fig.add_trace(
        go.Scatter(
            x=ok["submission"].map(html_literal), y=ok["mean"], mode="markers", name="mean ± 95 % CI",
            marker={"symbol": "diamond", "size": 10, "color": "black"},
            error_y={"type": "data", "symmetric": False, "array": ok["ci_high"] - ok["mean"],
                     "arrayminus": ok["mean"] - ok["ci_low"], "thickness": 2, "width": 8},
        )
    )
    fig.update_layout(
        yaxis_title=metric_labels.metric_label(metric), height=480,
        margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend={"orientation": "h", "y": 1.08},
    )
    return fig


def view_dataset(prep: board_data.Prepared, state: dict) -> None:
    metric = state["metric"]
    st.header(f"Dataset view · {metric_label(metric)}")
    labels = {block.name: f"{block.name} (suite: {tables.ROLE_LABELS.get(block.suite_role, block.suite_role)})" for block in prep.blocks}
    dataset = st.selectbox("Dataset", list(labels), format_func=labels.get, key="dataset_view_dataset")
    if dataset is None:
        return
    cases, summary = tables.dataset_view(prep, dataset, metric=metric, zero_shot_only=state["zero_shot"], filters=state["filters"])
    if summary.empty:
        st.info(f"No case of {md(dataset)} passes the current filters.")
        return
    st.caption(
        "Box and points: per-case values of each submission (counted cases only). Diamonds: mean over people with "
        "bootstrap 95 % CI resampling people (none with too few people). Same numbers as the main table."
    )
    st.plotly_chart(_box_figure(cases, summary, metric), width="stretch", key="dataset_box")
    decimals = metric_labels.DECIMALS[metric]
    display = summary.copy()
    for column in ("mean", "ci_low", "ci_high"):
        display[column] = display[column].round(decimals)
    display["rank"] = display["rank"].astype("Int64")
    st.dataframe(display, hide_index=True, width="stretch")


def view_compare(prep: board_data.Prepared, table: pd.DataFrame, state: dict) -> None:
    metric = state["metric"]
    st.header(f"Compare view · {metric_label(metric)}")
    ranked = [name for name in table[tables.KEY_COLUMN]] if not table.empty else prep.submissions
    if len(ranked) < 2:
        st.info("Two submissions are needed for a comparison.")
        return
    left, right = st.columns(2)
    a = left.selectbox("Submission A", ranked, index=0, key="compare_a")
    b = right.selectbox("Submission B", ranked, index=1, key="compare_b")
    if a == b:
        st.warning("Pick two different submissions.")
        return
    pairs, result = tables.compare_submissions(prep, a, b, metric=metric, filters=state["filters"])
    chart, side = st.columns([3, 2])
    fig = go.Figure()
    for dataset, group in pairs.groupby("dataset", sort=False):
        fig.add_trace(
            go.Scatter(x=group["A"], y=group["B"], mode="markers", name=html_literal(dataset),
                       marker={"size": 7, "opacity": 0.75}, hovertext=group["case_id"].map(html_literal))
        )
    if not pairs.empty:
        lo = float(min(pairs["A"].min(), pairs["B"].min()))
        hi = float(max(pairs["A"].max(), pairs["B"].max()))
        pad = 0.03 * (hi - lo or 1.0)
        lo, hi = lo - pad, hi + pad
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="A = B", line={"color": "grey", "dash": "dash"}))
        fig.update_xaxes(range=[lo, hi])
        fig.update_yaxes(range=[lo, hi], scaleanchor="x", scaleratio=1)
    better = "above" if HIGHER_IS_BETTER[metric] else "below"
    fig.update_layout(xaxis_title=f"A: {html_literal(a)}", yaxis_title=f"B: {html_literal(b)}", height=560, margin={"l": 10, "r": 10, "t": 30, "b": 10})
    chart.plotly_chart(fig, width="stretch", key="compare_scatter")
    side.caption(
        f"One point per case both submissions have (paired). Points {better} the diagonal: B is better on that case."
    )
    side.caption(
        "Table below: per dataset, over people (each person's scans averaged first), the mean difference B − A with "
        "its bootstrap 95 % CI resampling people, the two-sided Wilcoxon p of the per-person differences, and the "
        "Holm-adjusted p over the datasets tested (benchmark.analysis.family.compare_family: the path of the report "
        "and the gate). Too few people: no interval, no test. Zero-shot A/B: whether the dataset is outside A's / "
        "B's training data."
    )
    display = pd.DataFrame(
        {
            "dataset": result["dataset"],
            "zero-shot A/B": [f"{'yes' if x else 'no'}/{'yes' if y else 'no'}" for x, y in zip(result["zero-shot A"], result["zero-shot B"])],
            metric_labels.PEOPLE_SCANS: [metric_labels.format_people(p, n)
                                         for p, n in zip(result["people"], result["paired scans"])],
            **{
                f"{label} [95 % CI]": [
                    metric_labels.format_ci(m, lo_, hi_, metric) if pd.notna(m) else ""
                    for m, lo_, hi_ in zip(result[f"mean {label}"], result[f"{label} CI low"], result[f"{label} CI high"])
                ]
                for label in ("A", "B")
            },
            "B − A [95 % CI]": [
                metric_labels.format_ci(d, lo_, hi_, metric, signed=True) if pd.notna(d) else ""
                for d, lo_, hi_ in zip(result["mean diff (B − A)"], result["CI low"], result["CI high"])
            ],
            "Wilcoxon p": [f"{p:.2g}" if pd.notna(p) else "" for p in result["Wilcoxon p"]],
            "Holm p": [f"{p:.2g}" if pd.notna(p) else "" for p in result["Holm p"]],
        }
    ) if not result.empty else result
    st.dataframe(display, hide_index=True, width="stretch", key="compare_table")


@st.cache_data(max_entries=16, show_spinner=False)
def _load_canonical(path: str, mtime_ns: int) -> tuple[np.ndarray, tuple[float, ...]]:
    """Cached per file version: changing the prediction box or a sidebar widget does not re-read the volumes."""
    from benchmark.analysis.report import load_canonical

    return load_canonical(Path(path))


def _read(path: Path) -> tuple[np.ndarray, tuple[float, ...]]:
    return _load_canonical(str(path), Path(path).stat().st_mtime_ns)


def _slices_figure(image: np.ndarray, spacing: tuple[float, ...], label: np.ndarray | None, prediction: np.ndarray | None):
    from matplotlib.figure import Figure  # not pyplot: its global figure list would grow with every rerun

    usable = [mask for mask in (label, prediction) if mask is not None and mask.shape == image.shape and mask.any()]
    reference = usable[0] if usable else None
    if reference is not None:
        coords = np.argwhere(reference > 0)
        x_index, _, z_index = (int(round(c)) for c in coords.mean(axis=0))
    else:
        x_index, z_index = image.shape[0] // 2, image.shape[2] // 2
    fig = Figure(figsize=(9, 4.5))
    axes = fig.subplots(1, 2)
    views = (
        ("axial", lambda a: a[:, :, z_index].T, spacing[1] / spacing[0]),
        ("sagittal", lambda a: a[x_index, :, :].T, spacing[2] / spacing[1]),
    )
    for ax, (title, take, aspect) in zip(axes, views):
        ax.imshow(take(image), cmap="gray", origin="lower", aspect=aspect)
        for mask, color, name in ((label, "lime", "ground truth"), (prediction, "red", "prediction")):
            if mask is not None and mask.shape == image.shape and take(mask).any():
                ax.contour(take(mask) > 0, levels=[0.5], colors=color, linewidths=1.2)
                ax.plot([], [], color=color, label=name)
        ax.set_title(title)
        ax.axis("off")
    handles, names = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, names, loc="lower center", ncol=2)
    fig.tight_layout()
    return fig


def view_case(prep: board_data.Prepared, loaded: board_data.LoadedResults, config: Config, state: dict) -> None:
    st.header("Case view")
    dataset = st.selectbox("Dataset", prep.datasets, key="case_dataset")
    if dataset is None:
        return
    block = prep.block(dataset)
    case_id = st.selectbox("Case", block.case_ids.tolist(), key=f"case_id:{dataset}")
    if case_id is None:
        return
    st.subheader("Metrics of every submission on this case")
    st.dataframe(tables.case_metrics(loaded.cases, case_id, prep.benchmark_version), hide_index=True, width="stretch")
    submissions = [submission for submission, version in loaded.sources if version == prep.benchmark_version]
    files = cases_index_files(config, loaded, prep.benchmark_version)
    stamps = tuple(Path(path).stat().st_mtime_ns if Path(path).is_file() else 0 for _, path in files)
    index, problems = cases_index(tuple(files), stamps)
    for problem in problems:
        st.warning(md(problem))
    paths = tables.case_paths(
        case_id, submissions=submissions, data_root=Path(config.data_root) if config.data_root else None, cases_index=index
    )
    st.subheader("Slices")
    if paths.missing:
        st.info("Not everything can be drawn for this case:\n\n" + "\n".join(f"- {md(item)}" for item in paths.missing))
    if paths.image is None:
        return
    choice = None
    if paths.predictions:
        choice = st.selectbox("Prediction of", sorted(paths.predictions), key="case_prediction")
    try:
        image, spacing = _read(paths.image)
        label = _read(paths.label)[0] if paths.label else None
        prediction = _read(paths.predictions[choice])[0] if choice else None
    except Exception as error:  # unreadable NIfTI: say so, keep the app running
        st.error(f"Cannot read the case's images: {md(error)}")
        return
    fig = _slices_figure(image, spacing, label, prediction)
    st.pyplot(fig)


METHODOLOGY = f"""
### Metrics

All metrics are computed once, by `benchmark/evaluation/metrics.py`, on binary masks in canonical RAS+
orientation (axis 2 = inferior→superior; an axial slice is `arr[:, :, k]`). Borders are the mask
minus its 6-connected erosion; distances are Euclidean in mm between voxel centres.

| metric | definition | unit | better |
|---|---|---|---|
| Dice | 2 · \\|P ∩ G\\| / (\\|P\\| + \\|G\\|) | – | higher |
| NSD | fraction of border voxels of P and G within τ = 1 mm of the other border, counted with d ≤ τ + 1e-6 mm | – | higher |
| HD95 | max of the two directed 95th percentiles (numpy linear) of border-to-border distances | mm | lower |
| \\|RVE\\| | \\| \\|P\\| − \\|G\\| \\| / \\|G\\| | – | lower |
| CSA error | mean over axial slices where P or G is non-empty of \\|area_P − area_G\\| | mm² | lower |

**Empty masks.** Both empty → perfect (Dice 1, NSD 1, HD95 0, RVE 0, CSA error 0). One empty → worst
(Dice 0, NSD 0, HD95 = the field-of-view diagonal in mm). **A missing or failed prediction is scored as
an empty prediction (worst values) and is never dropped from a mean.** A results row with a `failure`
is such a case: it counts, with worst scores.

### Benchmark versions

`benchmark_version` is the content hash of the suite's split file, listed as `suite@version`. Tables show one
version at a time (sidebar); results of different versions are never mixed. A version is marked *superseded* when
the suite's split has a newer version (a dataset added or removed, a re-freeze), *changed data* when it was scored
with `--allow-changed-data`, and *workspace* when it holds results scored by you; the page opens on your newest
one. Each row says where its model comes from and where its results file does (built-in or workspace).

### Completeness

The expected cases of a dataset are all case ids any submission reported for it in that version
(after the case filters). A submission without a row for an expected case is **incomplete** there:
the cell says `incomplete` and it gets no mean, no in-domain/OOD mean and no mean rank.

### In-domain and OOD (zero-shot) are derived per model

A dataset is OOD (zero-shot) for a model only if `dataset_in_training` is False in its rows, whatever
the suite calls it; columns are grouped by the suite's roles and a model's trained-on datasets are
marked {tables.TRAINED_MARK}. *Mean in-domain* averages the model's trained-on datasets, *mean OOD
(zero-shot)* all others (each dataset weighs the same). "Zero-shot only" hides, per model, the datasets
it was trained on.

**Leakage.** Rows with `subject_in_training` True (a test subject in the model's training data) are
excluded from that model's scores by default (and not expected from it); the table notes how many.
Unticking "exclude leaked cases" keeps them and marks the cells ⚠.

### The unit of analysis is the person; confidence intervals

A person's scans (contrasts, sessions, rescans) are not independent, so each model's scans are averaged per
person first (the results' `person`: the subject merged across the dataset's same-person groups); a dataset mean
is the mean over people. Percentile bootstrap, {summary.N_RESAMPLES} resamples of the people, 95 %: the draws of
`benchmark.analysis.summary.mean_ci` with seed `crc32("<seed>:<dataset>")`, one set of resamples per dataset
shared by all submissions. CIs of means over datasets resample each dataset independently and average the
resampled dataset means. With fewer than {summary.MIN_PEOPLE} people a cell shows the mean and *too few people*
instead of an interval (and a mean over datasets that includes such a dataset shows no interval). The compare
view uses `benchmark.analysis.family.compare_family` (the report's and the gate's path): the mean per-person
difference B − A with its CI and the Wilcoxon test of the per-person differences, Holm-adjusted over the
datasets tested.

### One-voxel ceiling (Dice)

A Dice of 0.95 against one rater is already sub-voxel on a cord a few voxels across. Where the suite has a
ceilings file for the benchmark version shown (`cordbench splits ceilings`, stored next to the split), each
Dice column's header carries its dataset's **1-voxel Dice**: the mean Dice of the reference masks against
themselves grown and shrunk by one in-plane voxel (`benchmark/evaluation/ceilings.py`). Differences of Dice
smaller than 1 − that value (listed under the table) are within one voxel of boundary placement.

### CSA consistency across contrasts (no ground truth needed)

For every person (subject and session) with ≥ 2 images in a dataset: the SD across the images of the model's
angle-corrected cord cross-sectional area (`csa_mm2` of the results, averaged over the scanner-z range all of
the person's images cover); a column per such dataset shows the mean over persons with a bootstrap 95 % CI
over persons (`benchmark/analysis/csa_consistency.py`: same persons, order and draws). A model's images are
its counted cases (the case filters apply; leaked cases are dropped when excluded; failed cases have no CSA).
The header gives the same number on the reference masks: the floor. Lower is better; MS cord atrophy is
~1.4 mm² a year. `not measured`: the model's results carry no CSA (scored before it was measured).

### Ranks with ties

Per dataset, among the complete submissions shown, on the per-person means of the scans all of them have
(`benchmark.analysis.stats.rank_with_ties`): every pair is compared with a two-sided paired Wilcoxon
signed-rank test, the p-values are Holm-adjusted together, and a model's rank is 1 + the number of
models significantly (adjusted p ≤ {summary.ALPHA}) better than it. Models that no test separates share
a rank. Lower-is-better metrics (HD95, |RVE|, CSA error) rank the smaller mean first. The mean rank
averages a model's ranks over the datasets shown for it.
"""


def view_methodology() -> None:
    st.header("Methodology")
    st.markdown(METHODOLOGY)
    if METRICS_DOC.is_file():
        with st.expander("docs/metrics.md (full text)"):
            st.markdown(METRICS_DOC.read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------------------
# page
# ------------------------------------------------------------------------------------------------


def sidebar_state(prep: board_data.Prepared) -> dict:
    sidebar = st.sidebar
    metric = sidebar.selectbox("Metric", METRIC_NAMES, format_func=metric_label, key="metric")
    zero_shot = sidebar.toggle("Zero-shot only (hide each model's trained-on datasets)", value=False, key="zero_shot")
    exclude_leaked = sidebar.checkbox("Exclude leaked cases (subject in training)", value=True, key="exclude_leaked")
    options = board_data.filter_options(prep)
    sidebar.markdown("**Case filters**")
    contrasts = sidebar.multiselect("Contrast", options["contrast"], key=f"f_contrast:{prep.benchmark_version}")
    sites = sidebar.multiselect("Site", options["site"], key=f"f_site:{prep.benchmark_version}")
    vendors = sidebar.multiselect("Vendor", options["vendor"], key=f"f_vendor:{prep.benchmark_version}")
    pathologies = sidebar.multiselect("Pathology", options["pathology"], key=f"f_pathology:{prep.benchmark_version}")
    exclude_automated = sidebar.checkbox(
        "Exclude automated ground truth (gt_provenance = automated)", value=False, key="exclude_automated"
    )
    filters = board_data.Filters(
        contrasts=tuple(contrasts),
        sites=tuple(sites),
        vendors=tuple(vendors),
        pathologies=tuple(pathologies),
        exclude_automated_gt=exclude_automated,
        exclude_leaked=exclude_leaked,
        benchmark_version=prep.benchmark_version,
    )
    return {"metric": metric, "zero_shot": zero_shot, "filters": filters}


def main() -> None:
    st.set_page_config(page_title="cordbench leaderboard", layout="wide")
    config = parse_config()
    fingerprint = _fingerprint(config.results_dirs)
    loaded = load_results(config.results_dirs, fingerprint)

    st.sidebar.title("cordbench")
    view = st.sidebar.radio("View", VIEWS, key="view")

    for root in loaded.missing_roots:
        st.warning(f"Results folder not found: {md(root)}")
    if loaded.skipped:
        lines = []
        for path, reason in sorted(loaded.skipped.items()):
            detail = "; ".join(line.strip() for line in reason.splitlines()[1:])
            lines.append(f"- {md(path)}: {md(reason.splitlines()[0]) if reason else 'unreadable'}" + (f" ({md(detail)})" if detail else ""))
        st.warning(f"Skipped {len(loaded.skipped)} results file(s):\n\n" + "\n".join(lines))

    if view == VIEW_METHODS:
        view_methodology()
        return
    if loaded.cases.empty:
        st.info(
            "No valid results files found in: " + ", ".join(md(root) for root in config.results_dirs)
            + f". Pass folders with `-- --results-dir DIR` or set {ENV_RESULTS_DIRS}."
        )
        return

    infos = version_infos(config.results_dirs, fingerprint, loaded)
    labels = {info.version: info.label() for info in infos}
    version = st.sidebar.selectbox(  # the first is the user's newest version (leaderboard.versions)
        "Benchmark version (suite@split hash)", list(labels), key="version", format_func=labels.get,
        help="The content hash of the suite's split. superseded: the suite's split has a newer version; changed "
             "data: scored with --allow-changed-data. workspace: holds results scored by you.",
    )
    prep = prepared(config.results_dirs, fingerprint, version, loaded.cases)
    results_paths = tuple(sorted((submission, path) for (submission, results_version), path in loaded.sources.items()
                                 if results_version == version))
    state = sidebar_state(prep)
    ceilings, state["ceilings_problem"] = suite_ceilings(prep)

    def table() -> tuple[pd.DataFrame, dict[str, str], list[str]]:  # only the views that show the ranking pay for it
        return main_table(config.results_dirs, fingerprint, version, state["metric"], state["zero_shot"],
                          state["filters"], ceilings.model_dump_json() if ceilings else "", results_paths, prep,
                          ceilings)

    if view == VIEW_MAIN:
        view_main(prep, *table(), state)
    elif view == VIEW_DATASET:
        view_dataset(prep, state)
    elif view == VIEW_COMPARE:
        view_compare(prep, table()[0], state)
    elif view == VIEW_CASE:
        view_case(prep, loaded, config, state)


if __name__ == "__main__":
    main()
