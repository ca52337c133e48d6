"""leaderboard/app.py through streamlit.testing (AppTest) on the hand-computed fixture.

AppTest cannot pass command-line arguments, so the results folder goes through the app's
environment variable CORDBENCH_RESULTS_DIRS.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit.testing.v1.app_test as app_test_module
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from benchmark.analysis import stats
from benchmark.analysis.summary import MIN_PEOPLE, dataset_seed, mean_ci
from leaderboard_fixtures import HAND_VERSION, write_hand_results

APP = str(Path(__file__).resolve().parents[1] / "leaderboard" / "app.py")


class RecordingStorage(MemoryMediaFileStorage):
    """AppTest's in-memory media storage, kept reachable so a download button's bytes can be read."""

    instances: list["RecordingStorage"] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        RecordingStorage.instances.append(self)


def ci_text(values, dataset, trained=False):
    """A cell of one value per person (the hand fixture): below MIN_PEOPLE the mean and "too few people"."""
    ci = stats.bootstrap_mean_ci(values, seed=dataset_seed(0, dataset))
    if len(values) < MIN_PEOPLE:
        return f"{ci.mean:.3f} (too few people)" + (" †" if trained else "")
    return f"{ci.mean:.3f} [{ci.low:.3f}, {ci.high:.3f}]" + (" †" if trained else "")


def rendered(markdown: str) -> str:
    """The text a message renders to: untrusted parts are backslash-escaped (leaderboard/plain_text.py)."""
    import re

    return re.sub(r"\\(.)", r"\1", markdown)


@pytest.fixture
def app(tmp_path, monkeypatch) -> AppTest:
    write_hand_results(tmp_path / "submissions", corrupt=True)
    monkeypatch.setenv("CORDBENCH_RESULTS_DIRS", str(tmp_path / "submissions"))
    monkeypatch.delenv("CORDBENCH_DATA_ROOT", raising=False)
    monkeypatch.delenv("CORDBENCH_CASES_INDEX", raising=False)
    monkeypatch.setattr(app_test_module, "MemoryMediaFileStorage", RecordingStorage)
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def main_frame(at: AppTest):
    assert len(at.dataframe) == 1
    return at.dataframe[0].value.set_index("submission")


def test_main_table_values(app):
    frame = main_frame(app)
    assert list(frame.index) == ["agg", "spec-alpha", "spec-beta"]
    assert frame.at["agg", "in-domain/alpha"] == "0.800 (too few people) †"  # 4 people
    assert frame.at["agg", "OOD/gamma"] == ci_text([0.0, 0.6, 0.8], "gamma")
    assert frame.at["spec-alpha", "in-domain/beta"] == ci_text([0.6, 0.6, 0.8, 0.8], "beta")
    assert frame.at["spec-beta", "OOD/gamma"] == "incomplete"
    assert frame.at["spec-beta", "mean OOD (zero-shot)"] == "incomplete"
    assert frame.at["spec-beta", "mean rank"] == "incomplete"
    assert frame.at["agg", "mean in-domain"] == "0.825 (too few people)"
    assert app.header[0].value.startswith("Leaderboard · Dice")
    assert any("too few people: " in rendered(caption.value) for caption in app.caption)


def test_skipped_file_warning_names_the_file_and_reason(app, tmp_path):
    warnings = [rendered(w.value) for w in app.warning]
    skipped = [w for w in warnings if w.startswith("Skipped")]
    assert len(skipped) == 1
    corrupt = tmp_path / "submissions" / "corrupt" / "results" / f"hand_{HAND_VERSION}.json"
    assert "Skipped 1 results file(s)" in skipped[0]
    assert str(corrupt) in skipped[0] and "cannot read results file" in skipped[0]
    leak = [w for w in warnings if w.startswith("Leakage")]
    assert leak and "**agg**: 1 case(s) with subject in training excluded (gamma)" in leak[0]


def test_zero_shot_toggle(app):
    app.sidebar.toggle(key="zero_shot").set_value(True).run()
    frame = main_frame(app)
    assert "mean in-domain" not in frame.columns
    assert frame.at["agg", "in-domain/alpha"] == ""
    assert frame.at["agg", "in-domain/beta"] == ""
    assert frame.at["spec-beta", "in-domain/alpha"] == ci_text([0.5, 0.6, 0.7, 0.8], "alpha")
    app.sidebar.toggle(key="zero_shot").set_value(False).run()
    assert main_frame(app).at["agg", "in-domain/alpha"] == "0.800 (too few people) †"


def test_metric_and_filter_widgets_change_the_table(app):
    app.sidebar.selectbox(key="metric").set_value("hd95").run()
    frame = main_frame(app)
    assert frame.at["agg", "in-domain/alpha"] == "2.00 (too few people) †"  # hd95 = 10 * (1 - 0.8)
    app.sidebar.checkbox(key="exclude_automated").check().run()
    app.sidebar.selectbox(key="metric").set_value("dice").run()
    frame = main_frame(app)
    assert frame.at["spec-beta", "OOD/gamma"] == ci_text([0.3, 0.4], "gamma")  # g3, g4 automated: gone
    assert frame.at["agg", "OOD/gamma"] == "0.000 (too few people)"


def test_csv_download_is_the_shown_table(app):
    app.multiselect(key=f"columns:{HAND_VERSION}:False").set_value(["mean rank", "OOD/gamma"]).run()
    frame = main_frame(app)
    assert list(frame.columns) == ["mean rank", "OOD/gamma"]
    button = app.download_button(key="download_main_csv")
    file_id = button.proto.url.rsplit("/", 1)[-1].split(".")[0]
    storage = RecordingStorage.instances[-1]
    content = storage.get_file(file_id).content.decode("utf-8")
    assert content == (
        "submission,mean rank,OOD/gamma\n"
        f'agg,1.00,{ci_text([0.0, 0.6, 0.8], "gamma")}\n'
        f'spec-alpha,1.00,{ci_text([0.4, 0.5, 0.6, 0.7], "gamma")}\n'
        "spec-beta,incomplete,incomplete\n"
    )


def test_other_views_render(app):
    app.sidebar.radio(key="view").set_value("Dataset view").run()
    assert not app.exception
    assert app.header[0].value.startswith("Dataset view")
    summary = app.dataframe[0].value.set_index("submission")
    assert summary.at["agg", "mean"] == pytest.approx(0.8)  # the first dataset: alpha
    app.selectbox(key="dataset_view_dataset").set_value("gamma").run()
    summary = app.dataframe[0].value.set_index("submission")
    assert summary.at["spec-beta", "status"] == "incomplete" and summary.at["spec-beta", "cases"] == "3/4"
    assert summary.at["agg", "mean"] == pytest.approx(round(1.4 / 3, 3))

    app.sidebar.radio(key="view").set_value("Compare view").run()
    assert not app.exception
    compare = app.dataframe[0].value.set_index("dataset")
    # A = agg, B = spec-alpha (the two first rows of the main table); gamma: g2..g4 (g1 is agg's leak): 3 people,
    # too few for an interval or a test
    assert compare.at["gamma", "people (scans)"] == "3 (3)"
    assert compare.at["gamma", "B − A [95 % CI]"] == f"{(0.5 + 0.0 - 0.1) / 3:+.3f} (too few people)"
    assert compare.at["gamma", "B [95 % CI]"] == "0.600 (too few people)"
    assert compare.at["gamma", "Wilcoxon p"] == ""
    assert compare.at["gamma", "zero-shot A/B"] == "yes/yes"
    assert compare.at["alpha", "zero-shot A/B"] == "no/no" and compare.at["beta", "zero-shot A/B"] == "no/yes"

    app.sidebar.radio(key="view").set_value("Case view").run()
    assert not app.exception
    assert any("no --data-root given" in rendered(info.value) for info in app.info)
    assert app.dataframe[0].value["submission"].tolist() == ["agg", "spec-alpha", "spec-beta"]

    app.sidebar.radio(key="view").set_value("Methodology").run()
    assert not app.exception
    assert any("Ranks with ties" in md.value for md in app.markdown)


def test_cells_over_enough_people_show_the_person_level_interval(tmp_path, monkeypatch):
    """The demo-like results (16-24 people per dataset): every cell is mean_ci over people, with its interval."""
    from benchmark.evaluation.results import find_results_files, load_results
    from leaderboard_fixtures import DEMO_AGGREGATED, write_demo_results

    root = write_demo_results(tmp_path / "submissions", incomplete=False)
    monkeypatch.setenv("CORDBENCH_RESULTS_DIRS", str(root))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    [aggregated] = [load_results(path) for path in find_results_files(root) if path.parts[-3] == DEMO_AGGREGATED]
    cases = [case for case in aggregated.cases if case.dataset == "synth-epi"]
    ci = mean_ci([case.dice for case in cases], dataset="synth-epi", persons=[case.person for case in cases])
    assert ci.n >= MIN_PEOPLE
    assert main_frame(at).at[DEMO_AGGREGATED, "OOD/synth-epi"] == f"{ci.mean:.3f} [{ci.low:.3f}, {ci.high:.3f}]"


def test_no_results_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("CORDBENCH_RESULTS_DIRS", str(tmp_path / "empty"))
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    assert not at.exception
    assert any(str(tmp_path / "empty") in rendered(w.value) for w in at.warning)
    assert any("No valid results files found" in rendered(i.value) for i in at.info)


def test_case_view_draws_slices_from_the_cases_index(app, tmp_path):
    import json

    import nibabel as nib
    import numpy as np

    from leaderboard_fixtures import hand_case_id

    case_id = hand_case_id("gamma", "g2")
    image = np.random.default_rng(0).random((24, 20, 12)).astype(np.float32)
    label = np.zeros((24, 20, 12), dtype=np.uint8)
    label[10:14, 8:12, 2:10] = 1
    prediction = np.zeros_like(label)
    prediction[10:15, 8:12, 3:10] = 1
    paths = {}
    for name, array in (("image", image), ("label", label), ("prediction", prediction)):
        paths[name] = tmp_path / "data" / f"{name}.nii.gz"
        paths[name].parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(array, np.diag([0.8, 0.8, 2.0, 1.0])), paths[name])
    index = {case_id: {key: str(value) for key, value in paths.items()}}
    (tmp_path / "submissions" / "agg" / "cases_index_hand.json").write_text(json.dumps(index))

    app.sidebar.radio(key="view").set_value("Case view").run()
    app.selectbox(key="case_dataset").set_value("gamma").run()
    app.selectbox(key="case_id:gamma").set_value(case_id).run()
    assert not app.exception, [e.value for e in app.exception]
    metrics = app.dataframe[0].value
    assert metrics["dice"].tolist() == [0.0, 0.5, 0.4]
    assert app.selectbox(key="case_prediction").options == ["agg"]
    notes = [rendered(info.value) for info in app.info]
    assert len(notes) == 1
    assert "prediction of spec-alpha: no cases-index entry for this case" in notes[0] and "image:" not in notes[0]
    assert len(app.get("image")) == 1  # the axial + sagittal figure


def test_csa_column_and_one_voxel_ceiling_are_shown_and_downloaded(tmp_path, monkeypatch):
    """Results with csa_mm2 and a ceilings file stored for their suite and version: the Dice header carries the
    ceiling, the CSA column its floor, the caption says what both are, and the CSV has the same headers."""
    from benchmark.evaluation import ceilings as ceilings_module
    from benchmark.evaluation.ceilings import CeilingsFile, DatasetCeiling, write_ceilings
    from factories import write_results_files
    from leaderboard_fixtures import CSA_SUITE, CSA_VERSION, csa_results

    write_results_files(tmp_path / "submissions", csa_results())
    ring = DatasetCeiling(n=5, dilated_dice=0.85, eroded_dice=0.81, one_voxel_dice=0.83, one_voxel_dice_min=0.8,
                          one_voxel_dice_max=0.9, within_one_voxel=0.17)
    stored = write_ceilings(CeilingsFile(suite=CSA_SUITE, benchmark_version=CSA_VERSION, datasets={"multi": ring}),
                            tmp_path / f"{CSA_SUITE}.ceilings.json")
    monkeypatch.setattr(ceilings_module, "ceilings_path", lambda suite: stored if suite == CSA_SUITE else tmp_path / "x")
    monkeypatch.setenv("CORDBENCH_RESULTS_DIRS", str(tmp_path / "submissions"))
    monkeypatch.setattr(app_test_module, "MemoryMediaFileStorage", RecordingStorage)
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    assert not at.exception, [e.value for e in at.exception]

    floor = (0.5 ** 0.5 + (1 / 3) ** 0.5) / 2  # 2 people: the mean, no interval
    csa_header = f"CSA SD across contrasts, mm² (multi; reference masks {floor:.2f} (too few people))"
    frame = main_frame(at)
    assert "in-domain/multi (1-voxel Dice 0.830)" in frame.columns and "OOD/single" in frame.columns
    assert frame.at["csa-zero-shot", csa_header] == f"{3 ** 0.5:.2f} (too few people)"
    captions = [rendered(caption.value) for caption in at.caption]
    assert any("within one voxel of boundary placement: multi 0.170." in text for text in captions)
    assert any("multi " + csa_header.split("reference masks ")[1][:-1] + " mm² over 2 persons" in text for text in captions)
    button = at.download_button(key="download_main_csv")
    content = RecordingStorage.instances[-1].get_file(button.proto.url.rsplit("/", 1)[-1].split(".")[0]).content
    header_line = content.decode("utf-8").splitlines()[0]
    assert "in-domain/multi (1-voxel Dice 0.830)" in header_line and csa_header in header_line

    # another metric: no ceiling in the header; the CSA column does not depend on the metric
    at.sidebar.selectbox(key="metric").set_value("hd95").run()
    frame = main_frame(at)
    assert "in-domain/multi" in frame.columns and csa_header in frame.columns
