"""Benchmark versions as a user sees them: ``suite@version``, whether they are current, superseded or scored on
changed data, whose results they hold, and which one the leaderboard opens on.

A version is the content hash of a suite's split (docs/registry.md). It is **superseded** when the suite's split
as the active workspace (or the package) has it now has another version: a dataset was added or removed, the split
was re-frozen. It is **changed data** when the results were scored with ``--allow-changed-data``
(``<version>+changed-data-<digest>``). Results files under the built-in reference submissions are **built-in**;
every other one (the workspace's ``submissions/``, a ``--results-dir``) is the user's (**workspace**).

The leaderboard opens on the user's newest version: the one of the most recent workspace results file (current
versions before superseded and changed-data ones); without workspace results, on the version with the most
submissions, as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from leaderboard.data import LoadedResults

BUILT_IN = "built-in"
WORKSPACE = "workspace"


@dataclass(frozen=True)
class VersionInfo:
    """One benchmark version of the loaded results."""

    version: str
    suite: str | None
    submissions: int
    newest_utc: str  # created_utc of its newest results file
    origin: str  # workspace when any of its results files is the user's, else built-in
    changed_data: bool
    superseded: bool | None  # None: the suite's current split is not known here

    def label(self) -> str:
        marks = [self.origin, f"{self.submissions} submission{'s' if self.submissions != 1 else ''}"]
        if self.superseded:
            marks.append("superseded")
        if self.changed_data:
            marks.append("changed data")
        return f"{self.suite or '(unknown suite)'}@{self.version} · " + " · ".join(marks)


def results_origin(path: str | Path) -> str:
    """built-in for a results file shipped with the reference submissions, workspace for any other."""
    from benchmark.workspace import builtin_submissions_dir

    resolved = Path(path).resolve()
    builtin = builtin_submissions_dir().resolve()
    return BUILT_IN if resolved == builtin or builtin in resolved.parents else WORKSPACE


def current_version(suite: str | None) -> str | None:
    """The version of the suite's split as the registry has it now (None when it cannot be read here)."""
    if suite is None:
        return None
    from benchmark.data.splits import load_split
    from benchmark.errors import CordbenchError

    try:
        return load_split(suite).version
    except CordbenchError:
        return None


def version_infos(loaded: LoadedResults) -> list[VersionInfo]:
    """Every benchmark version of the loaded results, in the order the selector lists them: the user's versions
    (newest first; superseded and changed-data ones after the current ones), then built-in ones by number of
    submissions."""
    from benchmark.evaluation.scoring import CHANGED_DATA_MARK

    cases = loaded.cases
    if cases.empty:
        return []
    firsts = cases.drop_duplicates("benchmark_version")
    suites = dict(zip(firsts["benchmark_version"].astype(str), firsts["suite"].astype(str))) if "suite" in cases else {}
    currents: dict[str | None, str | None] = {}
    infos = []
    for version in sorted({version for _submission, version in loaded.sources}):
        keys = [key for key in loaded.sources if key[1] == version]
        suite = str(suites[version]) if version in suites else None
        if suite not in currents:
            currents[suite] = current_version(suite)
        base = version.split(CHANGED_DATA_MARK)[0]
        current = currents[suite]
        infos.append(VersionInfo(
            version=version, suite=suite, submissions=len(keys),
            newest_utc=max(loaded.created.get(key, "") for key in keys),
            origin=WORKSPACE if any(results_origin(loaded.sources[key]) == WORKSPACE for key in keys) else BUILT_IN,
            changed_data=CHANGED_DATA_MARK in version,
            superseded=None if current is None else base != current))

    def order(info: VersionInfo) -> tuple:
        stale = bool(info.superseded) or info.changed_data
        if info.origin == WORKSPACE:
            return (0, stale, -_timestamp(info.newest_utc), info.version)
        return (1, stale, -info.submissions, info.version)

    return sorted(infos, key=order)


def _timestamp(text: str) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return 0.0


def default_version(infos: list[VersionInfo]) -> str | None:
    """The version the leaderboard opens on: the first of ``version_infos`` (the user's newest current one)."""
    return infos[0].version if infos else None
