"""Benchmark versions on the leaderboard: ``suite@version`` with origin and marks, the user's newest version first.

Before: the selector listed bare split hashes (the synthetic suite's first, as it had the most submissions), with
superseded and changed-data versions alike, and the user's row said "from: built-in" for a built-in model scored
on the user's data."""

from __future__ import annotations

import json
from pathlib import Path


from benchmark import workspace
from benchmark.data.splits import SPLITS_DIR
from benchmark.evaluation.scoring import CHANGED_DATA_MARK
from factories import make_case, make_results, write_results_files
from leaderboard.data import load_results_dirs
from leaderboard.versions import default_version, version_infos
from test_workspace import ws  # noqa: F401 (the active workspace fixture)

SYNTHETIC = json.loads((SPLITS_DIR / "synthetic.json").read_text())["version"]


def _results(submission: str, suite: str, version: str, created: str):
    cases = [make_case("my-epi", f"sub-{index}", 0.8, suite_role="ood") for index in range(2)]
    return make_results(submission, cases, suite=suite, version=version, created_utc=created)


def _write_split(ws, suite: str) -> str:
    """A split file of ``suite`` in the workspace (only its version matters here); its version."""
    from benchmark.data.splits import SplitFile, write_split

    split = SplitFile(suite=suite, seed=0, made_with="t", datasets={})
    write_split(split, ws.splits_dir / f"{suite}.json")
    return split.version


def test_the_users_newest_current_version_comes_first_with_marks(ws):
    current = _write_split(ws, "my-suite")
    old = "0123456789ab"  # an earlier version of my-suite: superseded
    write_results_files(ws.submissions_dir, [
        _results("threshold-baseline", "my-suite", current, "2026-03-02T10:00:00+00:00"),
        _results("my-masks", "my-suite", current, "2026-03-02T11:00:00+00:00"),
        _results("threshold-baseline", "my-suite", old, "2026-03-03T09:00:00+00:00"),  # newer, but superseded
        _results("threshold-baseline", "my-suite", f"{current}{CHANGED_DATA_MARK}abcdefabcdef",
                 "2026-03-04T09:00:00+00:00"),
    ])
    loaded = load_results_dirs([ws.submissions_dir, workspace.builtin_submissions_dir()])
    infos = version_infos(loaded)
    labels = [info.label() for info in infos]
    assert labels[:3] == [
        f"my-suite@{current} · workspace · 2 submissions",
        f"my-suite@{current}{CHANGED_DATA_MARK}abcdefabcdef · workspace · 1 submission · changed data",
        f"my-suite@{old} · workspace · 1 submission · superseded",
    ]
    assert f"synthetic@{SYNTHETIC} · built-in · 8 submissions" in labels[3:]
    assert default_version(infos) == current


def test_without_workspace_results_it_opens_on_the_builtin_version_with_most_submissions(ws):
    loaded = load_results_dirs([ws.submissions_dir, workspace.builtin_submissions_dir()])
    infos = version_infos(loaded)
    assert infos[0].label() == f"synthetic@{SYNTHETIC} · built-in · 8 submissions"
    assert {info.origin for info in infos} == {"built-in"} and not any(info.superseded for info in infos)


def test_a_builtin_suite_scored_in_the_workspace_is_the_users(ws):
    write_results_files(ws.submissions_dir, [_results("threshold-baseline", "synthetic", SYNTHETIC,
                                                      "2026-03-02T10:00:00+00:00")])
    # the workspace's threshold-baseline duplicates the built-in one on this version: the workspace's is read first
    loaded = load_results_dirs([ws.submissions_dir, workspace.builtin_submissions_dir()])
    [synthetic] = [info for info in version_infos(loaded) if info.version == SYNTHETIC]
    assert synthetic.origin == "workspace" and synthetic.submissions == 8
    assert Path(loaded.sources[("threshold-baseline", SYNTHETIC)]).is_relative_to(ws.submissions_dir)
