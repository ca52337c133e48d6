"""benchmark.evaluation.results: writing, loading, and upgrading files written with an older schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.evaluation.metrics import METRIC_NAMES
from benchmark.evaluation.results import SCHEMA_VERSION, ResultsError, ResultsFile, load_results, write_results
from factories import make_case, make_results


def _current() -> ResultsFile:
    cases = [make_case("synth-ms", "sub-01", 0.91, gt_provenance="automated", subject_in_training=True),
             make_case("synth-ms", "sub-02", 0.0, failure="prediction crashed", hd95=96.5)]
    return make_results("model-a", cases, declared=["synth-ms"])


def _as_v1(raw: dict, *, with_version: bool = True) -> dict:
    """The seed prototype's layout: metrics nested under ``metrics``, no provenance or leak fields."""
    old = {key: value for key, value in raw.items() if key not in ("schema_version", "cases")}
    if with_version:
        old["schema_version"] = 1
    old["cases"] = []
    for case in raw["cases"]:
        row = {key: value for key, value in case.items()
               if key not in METRIC_NAMES and key not in ("gt_provenance", "subject_in_training")}
        row["metrics"] = {name: case[name] for name in METRIC_NAMES}
        old["cases"].append(row)
    return old


def test_current_schema_round_trips(tmp_path: Path) -> None:
    results = _current()
    path = write_results(tmp_path / "results" / "synthetic_f00dfeed1234.json", results)
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION == 3
    assert load_results(path) == results


def test_version_2_file_gets_the_person_of_each_row_on_load(tmp_path: Path) -> None:
    """v2 rows had no ``person``: it is derived from the registry's same-person groups on load (gmchallenge's
    sub-10062Ses1 and sub-10062Ses2 are one person), and the header fields added in v3 read as not recorded."""
    cases = [make_case("gmchallenge", "sub-10062Ses1", 0.9), make_case("gmchallenge", "sub-10062Ses2", 0.8),
             make_case("gmchallenge", "sub-9604", 0.7)]
    raw = json.loads(make_results("model-a", cases, declared=["gmchallenge"]).model_dump_json())
    raw["schema_version"] = 2
    for row in raw["cases"]:
        row.pop("person", None)
    for key in ("cpu_kernels", "gpu_model", "precision", "test_time_augmentation"):
        raw.pop(key, None)
    path = tmp_path / "v2.json"
    path.write_text(json.dumps(raw))
    loaded = load_results(path)
    assert loaded.schema_version == SCHEMA_VERSION
    people = [case.person for case in loaded.cases]
    assert people[0] == people[1] != people[2]
    assert loaded.cpu_kernels is None and loaded.precision is None


@pytest.mark.parametrize("with_version", [True, False], ids=["schema_version-1", "no-schema_version"])
def test_version_1_file_is_upgraded_on_load(tmp_path: Path, with_version: bool) -> None:
    results = _current()
    path = tmp_path / "old.json"
    path.write_text(json.dumps(_as_v1(results.model_dump(mode="json"), with_version=with_version)))
    upgraded = load_results(path)
    assert upgraded.schema_version == SCHEMA_VERSION
    # metrics moved up from ``metrics``; the fields v1 lacked get "unknown" / "no leak"
    assert [case.dice for case in upgraded.cases] == [0.91, 0.0]
    assert [case.hd95 for case in upgraded.cases] == [0.9, 96.5]
    assert [case.gt_provenance for case in upgraded.cases] == [None, None]
    assert [case.subject_in_training for case in upgraded.cases] == [False, False]
    assert upgraded.cases[1].failure == "prediction crashed"
    expected = results.model_copy(update={"cases": [
        case.model_copy(update={"gt_provenance": None, "subject_in_training": False}) for case in results.cases]})
    assert upgraded == expected
    assert json.loads(path.read_text())["cases"][0]["metrics"]["dice"] == 0.91  # the file itself is not rewritten


def test_newer_schema_is_refused_with_the_file_named(tmp_path: Path) -> None:
    raw = _current().model_dump(mode="json")
    raw["schema_version"] = SCHEMA_VERSION + 1
    path = tmp_path / "future.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ResultsError, match=rf"{path}: schema_version {SCHEMA_VERSION + 1} is not supported \(newest: {SCHEMA_VERSION}\)"):
        load_results(path)


def test_upgraded_file_is_still_validated(tmp_path: Path) -> None:
    old = _as_v1(_current().model_dump(mode="json"))
    del old["cases"][1]["metrics"]["dice"]
    path = tmp_path / "broken-v1.json"
    path.write_text(json.dumps(old))
    with pytest.raises(ResultsError) as raised:
        load_results(path)
    assert str(path) in str(raised.value) and "dice" in str(raised.value)
