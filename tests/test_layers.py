"""The house rule: a stage imports only earlier stages (python -m benchmark.devtools.layers)."""

from pathlib import Path

from benchmark.devtools import layers

REPO = Path(__file__).resolve().parents[1]


def test_no_stage_imports_a_later_one():
    assert [str(violation) for violation in layers.check(REPO)] == []


def test_the_check_names_an_offending_import(tmp_path):
    (tmp_path / "benchmark" / "data").mkdir(parents=True)
    (tmp_path / "leaderboard").mkdir()
    (tmp_path / "benchmark" / "data" / "bad.py").write_text(
        "import os\n\ndef f():\n    from benchmark.analysis.summary import mean_ci\n    return mean_ci\n")
    [violation] = layers.check(tmp_path)
    assert str(violation) == ("benchmark/data/bad.py:4: benchmark.data.bad (data) imports "
                              "benchmark.analysis.summary (analysis), a later stage")
    assert layers.main([str(tmp_path)]) == 1


def test_from_package_import_module_counts_as_the_module(tmp_path):
    (tmp_path / "benchmark" / "training").mkdir(parents=True)
    (tmp_path / "leaderboard").mkdir()
    (tmp_path / "benchmark" / "training" / "x.py").write_text("from benchmark.evaluation import scoring\n")
    [violation] = layers.check(tmp_path)
    assert violation.imported == "benchmark.evaluation" and violation.imported_stage == "evaluation"
