"""Fetch a public dataset at its pinned revision: git clone, checkout, then git-annex content.

Steps (each a real ``git`` / ``git annex`` subprocess):

1. ``git clone <url>`` into a temporary folder next to ``<to>/<folder name>``, ``git checkout`` of the
   pinned revision (tag, branch or commit), then a rename to the final folder. A failed clone or a
   revision that does not exist leaves nothing behind.
2. ``git annex init`` + ``git annex get .`` (``-J jobs``) for the annexed content.
3. With a suite: :func:`benchmark.data.splits.verify_split` for this dataset, so the caller sees at once
   whether the local copy matches the frozen split (subjects and checksums).

Tool policy: **git-annex is the one tool used for content.** DataLad fetches annexed content by
calling git-annex, so it cannot help where git-annex is missing and adds nothing for these flat
(single-repository) datasets. Without ``git-annex`` on PATH the clone is kept with its annex
symlinks/pointers (which :mod:`benchmark.data.bids_index` lists as "not downloaded") and the result says
how to install it (``apt-get install git-annex`` or ``pip install git-annex``) and the command to run
afterwards.

Sources: ``git-annex`` datasets are cloned from ``source.url`` at ``source.revision``; OpenNeuro
datasets from their GitHub mirror (``source.url``, by default ``https://github.com/OpenNeuroDatasets/<id>``)
at the tag ``source.openneuro_version``. Restricted datasets are never fetched from the registry:
:func:`fetch_dataset` returns the access instructions without touching the network; someone who has
been granted access passes ``url=`` (their access point) explicitly. Synthetic and local datasets have
nothing to fetch.

An existing clone at the requested revision is left as it is (only missing content is fetched); a
clone at another revision is refused unless ``update=True``, which fetches from origin and checks
the requested revision out.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from benchmark.data.bids_index import NOT_DOWNLOADED, classify_file
from benchmark.errors import CordbenchError
from benchmark.data.registry import Dataset, load_dataset
from benchmark.data.splits import SplitFile, VerifyReport, load_split, verify_split

FetchStatus = Literal["complete", "incomplete", "not-downloaded", "restricted"]

OPENNEURO_GITHUB = "https://github.com/OpenNeuroDatasets/{openneuro_id}"
INSTALL_ANNEX = (
    "git-annex is not on PATH, so the annexed files are still pointers (listed as 'not downloaded').\n"
    "Install it with one of:\n"
    "  apt-get install git-annex        # Debian/Ubuntu (as root or with sudo)\n"
    "  pip install git-annex            # Linux binary wheel into the current environment\n"
    "  brew install git-annex           # macOS\n"
    "(DataLad, `pip install datalad`, also needs git-annex: it calls it to get content.)\n"
    "Then fetch the content with:\n"
    "  cd {path} && git annex get .   # or re-run `cordbench fetch {dataset} --to {to}`"
)
# git-annex records where content is in commits on its own branch; without a configured identity
# those commits fail ("unable to auto-detect email address"), so we supply a neutral one.
_FALLBACK_IDENTITY = {
    "GIT_AUTHOR_NAME": "cordbench fetch",
    "GIT_AUTHOR_EMAIL": "cordbench@localhost",
    "GIT_COMMITTER_NAME": "cordbench fetch",
    "GIT_COMMITTER_EMAIL": "cordbench@localhost",
}


class FetchError(CordbenchError, RuntimeError):
    """A dataset cannot be fetched; the message names the dataset, the place and what is wrong."""


@dataclass
class FetchResult:
    """What :func:`fetch_dataset` did and in which state it left the dataset."""

    dataset: str
    status: FetchStatus
    path: Path | None = None
    url: str | None = None
    revision: str | None = None
    pinned_revision: str | None = None
    commit: str | None = None
    actions: list[str] = field(default_factory=list)
    missing_content: list[str] = field(default_factory=list)
    message: str = ""
    verify: VerifyReport | None = None

    @property
    def at_pinned_revision(self) -> bool:
        return self.revision is not None and self.revision == self.pinned_revision

    def lines(self) -> list[str]:
        """A human-readable summary for the command line."""
        if self.status == "restricted":
            return [f"{self.dataset}: restricted dataset, not fetched.", self.message]
        out = [f"{self.dataset}: {self.status} at {self.path} ({self.url} @ {self.revision} = {self.commit})"]
        if not self.at_pinned_revision:
            out.append(f"  note: the registry pins {self.pinned_revision!r}, this copy is at {self.revision!r}")
        out += [f"  {action}" for action in self.actions]
        if self.missing_content:
            out.append(f"  {len(self.missing_content)} files not downloaded, e.g. {self.missing_content[:5]}")
        if self.message:
            out.append(self.message)
        return out


@dataclass(frozen=True)
class ResolvedSource:
    url: str
    revision: str
    pinned_revision: str | None


def resolve_source(dataset: Dataset, *, url: str | None = None, revision: str | None = None) -> ResolvedSource:
    """The URL and revision to fetch: the registry's pin unless overridden."""
    source = dataset.source
    if source.kind == "openneuro":
        pinned = source.openneuro_version or source.revision
        default_url = source.url or OPENNEURO_GITHUB.format(openneuro_id=source.openneuro_id)
    elif source.kind in ("git-annex", "restricted"):
        pinned = source.revision
        default_url = source.url
    else:
        raise FetchError(
            f"{dataset.id}: source kind {source.kind!r} has nothing to fetch"
            + (" (generate it with `cordbench synth`)" if source.kind == "synthetic" else "")
        )
    chosen_url = url or default_url
    chosen_revision = revision or pinned
    if not chosen_url:
        raise FetchError(f"{dataset.id}: the registry gives no source.url; pass url=")
    if not chosen_revision:
        raise FetchError(f"{dataset.id}: the registry pins no revision; pass revision=")
    return ResolvedSource(chosen_url, chosen_revision, pinned)


def annex_available() -> bool:
    """Whether ``git-annex`` can be run (it is found on PATH by ``git annex``)."""
    return shutil.which("git-annex") is not None


def _git_env(cwd: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    env["GIT_TERMINAL_PROMPT"] = "0"  # never wait for a password on a terminal
    probe = subprocess.run(["git", "config", "--get", "user.email"], cwd=cwd, env=env,
                           capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if not probe.stdout.strip() and not env.get("GIT_COMMITTER_EMAIL"):
        env.update(_FALLBACK_IDENTITY)
    return env


def _git(args: list[str], cwd: Path | None, *, what: str, stream: bool = False) -> subprocess.CompletedProcess:
    """Run ``git ARGS``; raise :class:`FetchError` naming ``what`` and git's own message on failure."""
    if shutil.which("git") is None:
        raise FetchError(f"{what}: git is not installed (apt-get install git)")
    completed = subprocess.run(
        ["git", *args], cwd=cwd, env=_git_env(cwd), stdin=subprocess.DEVNULL,
        capture_output=not stream, text=True,
    )
    if completed.returncode != 0:
        detail = (completed.stderr or completed.stdout or "").strip() if not stream else "(see output above)"
        raise FetchError(f"{what}: `git {' '.join(args)}` failed (exit {completed.returncode}): {detail}")
    return completed


def _git_out(args: list[str], cwd: Path, *, what: str) -> str:
    return _git(args, cwd, what=what).stdout.strip()


def _resolve_commit(repo: Path, revision: str) -> str | None:
    """The commit a branch of origin, a tag or a commit id names in ``repo``, or None.

    origin's branch comes first: fetch never moves local branches, so after an update a local
    ``master`` would still name the old commit.
    """
    for candidate in (f"refs/remotes/origin/{revision}", revision):
        completed = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"],
            cwd=repo, capture_output=True, text=True, stdin=subprocess.DEVNULL,
        )
        if completed.returncode == 0:
            return completed.stdout.strip()
    return None


def _unknown_revision(dataset_id: str, url: str, revision: str, repo: Path) -> FetchError:
    tags = _git_out(["tag", "--list", "--sort=-creatordate"], repo, what=dataset_id).split()
    branches = [
        name.removeprefix("origin/")
        for name in _git_out(["branch", "-r", "--format=%(refname:short)"], repo, what=dataset_id).split()
        if name != "origin/HEAD" and name != "origin"
    ]
    return FetchError(
        f"{dataset_id}: revision {revision!r} does not exist in {url} "
        f"(tags: {', '.join(tags[:10]) or 'none'}; branches: {', '.join(branches[:10]) or 'none'})"
    )


def _checkout(repo: Path, dataset_id: str, url: str, revision: str) -> str:
    commit = _resolve_commit(repo, revision)
    if commit is None:
        raise _unknown_revision(dataset_id, url, revision, repo)
    _git(["checkout", "--quiet", "--detach", commit], repo, what=f"{dataset_id}: checkout of {revision!r}")
    return commit


def _clone(dataset_id: str, url: str, revision: str, target: Path) -> str:
    """Clone into a temporary sibling of ``target``, check out ``revision``, then move into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.fetch-"))
    try:
        _git(["clone", "--quiet", url, str(staging / "repo")], None, what=f"{dataset_id}: clone of {url}")
        commit = _checkout(staging / "repo", dataset_id, url, revision)
        os.replace(staging / "repo", target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return commit


def _uses_annex(repo: Path) -> bool:
    return _resolve_commit(repo, "git-annex") is not None


def not_downloaded_files(repo: Path) -> list[str]:
    """Tracked files whose content is not here (annex pointers or broken annex symlinks), sorted."""
    listed = _git(["ls-files", "-z"], repo, what=f"{repo}: listing files").stdout
    missing = []
    for relative in filter(None, listed.split("\0")):
        state, _digest, _size = classify_file(repo / relative)
        if state in NOT_DOWNLOADED:
            missing.append(relative)
    return sorted(missing)


def _get_content(repo: Path, dataset_id: str, *, jobs: int, progress: bool) -> str | None:
    """``git annex init`` + ``git annex get .``; return git-annex's error text when the get failed."""
    _git(["annex", "init", "--quiet", "cordbench fetch"], repo, what=f"{dataset_id}: git annex init in {repo}")
    args = ["annex", "get", ".", *(["-J", str(jobs)] if jobs > 1 else [])]
    try:
        _git(args, repo, what=f"{dataset_id}: git annex get in {repo}", stream=progress)
    except FetchError as error:
        return str(error)
    return None


def _existing_clone(target: Path, dataset_id: str, url: str) -> None:
    """Refuse a folder that is not a git clone, or a clone of another remote."""
    if not (target / ".git").exists():
        raise FetchError(f"{dataset_id}: {target} exists and is not a git clone; move it away or fetch elsewhere")
    origin = subprocess.run(["git", "remote", "get-url", "origin"], cwd=target, capture_output=True, text=True,
                            stdin=subprocess.DEVNULL).stdout.strip()
    if not _same_remote(origin, url):
        raise FetchError(
            f"{dataset_id}: {target} is a clone of {origin or '(no origin)'}, not of {url}; "
            "pass url= to use that remote, or move the folder away"
        )


def _same_remote(first: str, second: str) -> bool:
    """Whether two remote addresses name the same repository (``.git`` suffix and trailing ``/`` aside)."""
    def normal(address: str) -> str:
        return address.rstrip("/").removesuffix(".git").rstrip("/")
    return normal(first) == normal(second)


def _prepare_clone(target: Path, dataset: Dataset, source: ResolvedSource, *, update: bool) -> tuple[str, list[str]]:
    """Clone, or check an existing clone's revision; return (HEAD commit, actions taken)."""
    if not target.exists():
        commit = _clone(dataset.id, source.url, source.revision, target)
        return commit, [f"cloned {source.url} and checked out {source.revision} ({commit[:12]})"]
    _existing_clone(target, dataset.id, source.url)
    head = _git_out(["rev-parse", "HEAD"], target, what=f"{dataset.id}: reading HEAD of {target}")
    wanted = _resolve_commit(target, source.revision)
    if wanted == head:
        return head, [f"already at {source.revision} ({head[:12]}); nothing cloned"]
    if not update:
        raise FetchError(
            f"{dataset.id}: {target} is at {head[:12]}, not at {source.revision!r}"
            f"{'' if wanted else ' (unknown in this clone)'}; pass update=True (`--update`) to fetch and check it out"
        )
    _git(["fetch", "--quiet", "--tags", "origin"], target, what=f"{dataset.id}: git fetch in {target}")
    commit = _checkout(target, dataset.id, source.url, source.revision)
    return commit, [f"updated {head[:12]} -> {source.revision} ({commit[:12]})"]


def fetch_dataset(
    dataset_id: str,
    to: Path,
    *,
    url: str | None = None,
    revision: str | None = None,
    get_content: bool = True,
    suite: str | None = None,
    split_file: Path | None = None,
    update: bool = False,
    jobs: int = 1,
    progress: bool = False,
) -> FetchResult:
    """Obtain a public dataset under ``to/<folder name>`` at its pinned revision.

    ``url`` / ``revision`` override the registry (a mirror, a local copy, another tag). With
    ``suite`` the copy is checked against that suite's split (``split_file`` instead of
    ``benchmark/splits/<suite>.json`` when given). ``update`` allows moving an existing clone to
    another revision. ``progress`` lets git-annex print its progress to the terminal.

    Returns a :class:`FetchResult` (status ``restricted`` with the access instructions for a
    restricted dataset); raises :class:`FetchError` when the dataset cannot be fetched.
    """
    dataset = load_dataset(dataset_id)
    restricted = dataset.access.level == "restricted" or dataset.source.kind == "restricted"
    if restricted and url is None:
        how = dataset.access.how_to_obtain or "Ask the data owners for access."
        return FetchResult(dataset=dataset.id, status="restricted", pinned_revision=dataset.source.revision,
                           message=f"How to obtain access: {how}")
    source = resolve_source(dataset, url=url, revision=revision)
    split = _split_for(dataset.id, suite, split_file) if suite else None
    to = Path(to).absolute()
    target = to / dataset.folder_name
    commit, actions = _prepare_clone(target, dataset, source, update=update)
    result = FetchResult(dataset=dataset.id, status="complete", path=target, url=source.url,
                         revision=source.revision, pinned_revision=source.pinned_revision, commit=commit,
                         actions=actions)
    if _uses_annex(target):
        _fetch_content(result, target, dataset.id, to, get_content=get_content, jobs=jobs, progress=progress)
    if split is not None:
        result.verify = verify_split(split, data_root=to, only=[dataset.id])
    return result


def _fetch_content(result: FetchResult, target: Path, dataset_id: str, to: Path, *, get_content: bool,
                   jobs: int, progress: bool) -> None:
    error = None
    if get_content and annex_available():
        if not_downloaded_files(target):
            error = _get_content(target, dataset_id, jobs=jobs, progress=progress)
            result.actions.append("git annex get ." + (" (failed)" if error else ""))
        else:
            result.actions.append("all annexed content already present")
    result.missing_content = not_downloaded_files(target)
    if not result.missing_content:
        return
    if not get_content:
        result.status = "not-downloaded"
        result.message = f"content not requested; fetch it with: cd {target} && git annex get ."
    elif not annex_available():
        result.status = "not-downloaded"
        result.message = INSTALL_ANNEX.format(path=target, dataset=dataset_id, to=to)
    else:
        result.status = "incomplete"
        result.message = error or "git annex get left files without content (no reachable copy)"


def _split_for(dataset_id: str, suite: str, split_file: Path | None) -> SplitFile:
    """The suite's split, loaded before any network access so that a bad suite fails fast."""
    split = load_split(suite, split_file)
    if dataset_id not in split.datasets:
        raise FetchError(f"{dataset_id}: not in the split of suite {suite!r} ({', '.join(split.datasets)})")
    return split


__all__ = [
    "FetchError",
    "FetchResult",
    "ResolvedSource",
    "annex_available",
    "fetch_dataset",
    "not_downloaded_files",
    "resolve_source",
]
