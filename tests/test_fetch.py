"""benchmark.data.fetch against LOCAL git / git-annex repositories standing in for the remotes.

Every test runs the real subprocess path (git clone / checkout / git annex get). The git-annex tests
need the ``git-annex`` program (``apt-get install -y git-annex``) and are skipped without it; the
plain-git tests always run.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from benchmark.data.bids_index import index_dataset
from benchmark.data.fetch import FetchError, fetch_dataset, not_downloaded_files, resolve_source
from benchmark.data.registry import Suite, SuiteDataset, load_dataset
from benchmark.data.splits import make_split, write_split

DATASET = "spine-generic"  # a registered git-annex dataset; its image rules match the tiny BIDS below
HAS_ANNEX = shutil.which("git-annex") is not None
needs_annex = pytest.mark.skipif(
    not HAS_ANNEX, reason="git-annex is not installed (apt-get install -y git-annex); annex tests skipped"
)
IDENTITY = {"GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.org",
            "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.org"}
NIFTIS = [
    "derivatives/labels/sub-01/anat/sub-01_T2w_label-SC_seg.nii.gz",
    "derivatives/labels/sub-02/anat/sub-02_T2w_label-SC_seg.nii.gz",
    "sub-01/anat/sub-01_T2w.nii.gz",
    "sub-02/anat/sub-02_T2w.nii.gz",
]


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **IDENTITY}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_bids(root: Path) -> None:
    """Two subjects, one T2w image and one cord mask each, participants.tsv and a description."""
    rng = np.random.default_rng(0)
    for index, subject in enumerate(("sub-01", "sub-02")):
        image = (rng.random((8, 8, 6)) * 1000).astype(np.int16)
        mask = np.zeros((8, 8, 6), dtype=np.uint8)
        mask[3:5, 3 + index:5 + index, 1:5] = 1
        affine = np.diag([0.5, 0.5, 2.0, 1.0])
        (root / subject / "anat").mkdir(parents=True)
        (root / "derivatives/labels" / subject / "anat").mkdir(parents=True)
        nib.save(nib.Nifti1Image(image, affine), root / subject / "anat" / f"{subject}_T2w.nii.gz")
        nib.save(nib.Nifti1Image(mask, affine),
                 root / "derivatives/labels" / subject / "anat" / f"{subject}_T2w_label-SC_seg.nii.gz")
    (root / "participants.tsv").write_text(
        "participant_id\tinstitution_id\tmanufacturer\tpathology\n"
        "sub-01\tsiteA\tSiemens\tHC\nsub-02\tsiteB\tGE\tHC\n", encoding="utf-8")
    (root / "dataset_description.json").write_text('{"Name": "tiny", "BIDSVersion": "1.8.0"}\n', encoding="utf-8")


def make_origin(parent: Path, *, annex: bool) -> tuple[Path, dict[str, str]]:
    """A repository named like the dataset folder, tags r1 and r2 (r2 adds a README), 1.3.1 = r1."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed (apt-get install -y git): fetching is tested against local repositories")
    origin = parent / DATASET
    origin.mkdir(parents=True)
    git(origin, "init", "--quiet")
    if annex:
        git(origin, "annex", "init", "--quiet", "origin")
    write_bids(origin)
    checksums = {relative: sha256(origin / relative) for relative in NIFTIS}
    if annex:
        git(origin, "annex", "add", "--quiet", *NIFTIS)
        git(origin, "add", "participants.tsv", "dataset_description.json")
    else:
        git(origin, "add", ".")
    git(origin, "commit", "--quiet", "-m", "tiny dataset")
    git(origin, "tag", "r1")
    git(origin, "tag", "1.3.1")
    (origin / "README").write_text("second release\n", encoding="utf-8")
    git(origin, "add", "README")
    git(origin, "commit", "--quiet", "-m", "readme")
    git(origin, "tag", "r2")
    return origin, checksums


def write_test_split(origin: Path, tmp_path: Path) -> Path:
    """A frozen split (every subject a test subject) made from the origin's files by the real make_split."""
    suite = Suite(id="fetch-test", title="fetch test", description="one OOD dataset",
                  datasets=[SuiteDataset(id=DATASET, role="ood")])
    split = make_split(suite, data_root=origin.parent, published_root=tmp_path)
    assert split.datasets[DATASET].test == ["sub-01", "sub-02"]
    assert sorted(split.datasets[DATASET].files) == NIFTIS
    return write_split(split, tmp_path / "fetch-test.json")


def assert_real_niftis(clone: Path, checksums: dict[str, str]) -> None:
    for relative, digest in checksums.items():
        path = clone / relative
        assert sha256(path) == digest, relative
        assert nib.load(path).shape == (8, 8, 6)


# ------------------------------------------------------------------ registry-derived sources
def test_resolve_source_uses_the_registry_pins() -> None:
    episeg = resolve_source(load_dataset("episeg"))
    assert (episeg.url, episeg.revision) == ("https://github.com/OpenNeuroDatasets/ds005143", "1.3.1")
    spine = resolve_source(load_dataset(DATASET))
    assert (spine.url, spine.revision, spine.pinned_revision) == (
        "https://github.com/spine-generic/data-multi-subject", "r20250310", "r20250310")
    override = resolve_source(load_dataset(DATASET), url="/elsewhere", revision="abc")
    assert (override.url, override.revision, override.pinned_revision) == ("/elsewhere", "abc", "r20250310")
    with pytest.raises(FetchError, match="synth-ms: source kind 'synthetic' has nothing to fetch.*cordbench synth"):
        resolve_source(load_dataset("synth-ms"))


def test_restricted_dataset_returns_access_instructions_without_cloning(tmp_path: Path) -> None:
    result = fetch_dataset("basel-mp2rage", tmp_path / "data")
    assert result.status == "restricted"
    assert result.path is None
    assert "University Hospital Basel" in result.message
    assert result.message == "How to obtain access: " + load_dataset("basel-mp2rage").access.how_to_obtain
    assert not (tmp_path / "data").exists()
    assert result.lines() == ["basel-mp2rage: restricted dataset, not fetched.", result.message]


# ------------------------------------------------------------------ plain git (always runs)
def test_plain_git_clone_at_pinned_tag_verify_and_noop_rerun(tmp_path: Path) -> None:
    origin, checksums = make_origin(tmp_path / "remote", annex=False)
    split_file = write_test_split(origin, tmp_path)
    data = tmp_path / "data"

    result = fetch_dataset(DATASET, data, url=str(origin), revision="r1", suite="fetch-test", split_file=split_file)

    clone = data / DATASET
    assert result.path == clone
    assert result.status == "complete"
    assert git(clone, "rev-parse", "HEAD") == git(origin, "rev-parse", "r1^{commit}") == result.commit
    assert not (clone / "README").exists()  # r2's file: the clone is at r1, not at the origin's HEAD
    assert_real_niftis(clone, checksums)
    assert result.actions == [f"cloned {origin} and checked out r1 ({result.commit[:12]})"]
    assert result.verify is not None and result.verify.checked == [DATASET] and result.verify.ok
    assert result.verify.missing_files[DATASET] == [] and result.verify.not_downloaded[DATASET] == []
    assert not result.at_pinned_revision and result.pinned_revision == "r20250310"
    assert "  note: the registry pins 'r20250310', this copy is at 'r1'" in result.lines()
    assert [p.name for p in data.iterdir()] == [DATASET]  # no staging folder left behind

    marker = clone / "local-note.txt"
    marker.write_text("kept\n", encoding="utf-8")
    again = fetch_dataset(DATASET, data, url=str(origin), revision="r1")
    assert again.actions == [f"already at r1 ({result.commit[:12]}); nothing cloned"]
    assert again.commit == result.commit and marker.read_text(encoding="utf-8") == "kept\n"


def test_existing_clone_at_another_revision_is_refused_unless_update(tmp_path: Path) -> None:
    origin, _ = make_origin(tmp_path / "remote", annex=False)
    data = tmp_path / "data"
    first = fetch_dataset(DATASET, data, url=str(origin), revision="r1")
    with pytest.raises(FetchError, match=rf"spine-generic: .*is at {first.commit[:12]}, not at 'r2'.*update=True"):
        fetch_dataset(DATASET, data, url=str(origin), revision="r2")
    assert git(data / DATASET, "rev-parse", "HEAD") == first.commit

    updated = fetch_dataset(DATASET, data, url=str(origin), revision="r2", update=True)
    assert updated.commit == git(origin, "rev-parse", "r2^{commit}") == git(data / DATASET, "rev-parse", "HEAD")
    assert (data / DATASET / "README").read_text(encoding="utf-8") == "second release\n"
    assert updated.actions == [f"updated {first.commit[:12]} -> r2 ({updated.commit[:12]})"]


def test_unknown_revision_errors_and_leaves_nothing(tmp_path: Path) -> None:
    origin, _ = make_origin(tmp_path / "remote", annex=False)
    data = tmp_path / "data"
    with pytest.raises(FetchError) as caught:
        fetch_dataset(DATASET, data, url=str(origin), revision="r9")
    message = str(caught.value)
    assert f"spine-generic: revision 'r9' does not exist in {origin}" in message
    assert "r1" in message and "r2" in message and "branches:" in message
    assert list(data.iterdir()) == []


def test_folder_that_is_not_a_clone_or_another_remote_is_refused(tmp_path: Path) -> None:
    origin, _ = make_origin(tmp_path / "remote", annex=False)
    data = tmp_path / "data"
    (data / DATASET).mkdir(parents=True)
    with pytest.raises(FetchError, match="exists and is not a git clone"):
        fetch_dataset(DATASET, data, url=str(origin), revision="r1")
    shutil.rmtree(data / DATASET)
    fetch_dataset(DATASET, data, url=str(origin), revision="r1")
    with pytest.raises(FetchError, match=r"is a clone of .*remote/spine-generic, not of /somewhere/else"):
        fetch_dataset(DATASET, data, url="/somewhere/else", revision="r1")


def test_openneuro_dataset_checks_out_the_openneuro_version_tag(tmp_path: Path) -> None:
    origin, _ = make_origin(tmp_path / "remote", annex=False)
    result = fetch_dataset("episeg", tmp_path / "data", url=str(origin))
    assert result.revision == "1.3.1" and result.at_pinned_revision
    assert git(tmp_path / "data" / "episeg", "rev-parse", "HEAD") == git(origin, "rev-parse", "1.3.1^{commit}")


def test_unknown_suite_fails_before_cloning(tmp_path: Path) -> None:
    origin, _ = make_origin(tmp_path / "remote", annex=False)
    with pytest.raises(ValueError, match="unknown suite 'no-such-suite'"):
        fetch_dataset(DATASET, tmp_path / "data", url=str(origin), revision="r1", suite="no-such-suite")
    assert not (tmp_path / "data").exists()


# ------------------------------------------------------------------ git-annex
@needs_annex
def test_annex_clone_gets_real_content_from_origin(tmp_path: Path) -> None:
    origin, checksums = make_origin(tmp_path / "remote", annex=True)
    split_file = write_test_split(origin, tmp_path)
    data = tmp_path / "data"

    result = fetch_dataset(DATASET, data, url=str(origin), revision="r1", suite="fetch-test", split_file=split_file)

    clone = data / DATASET
    assert result.status == "complete" and result.missing_content == []
    assert result.actions[1] == "git annex get ."
    assert git(clone, "rev-parse", "HEAD") == git(origin, "rev-parse", "r1^{commit}")
    for relative in NIFTIS:
        assert (clone / relative).is_symlink()  # annexed: a symlink into .git/annex/objects ...
        assert ".git/annex/objects/" in os.readlink(clone / relative)
    assert_real_niftis(clone, checksums)  # ... whose content was fetched from the origin
    assert result.verify is not None and result.verify.ok and result.verify.not_downloaded[DATASET] == []

    git(clone, "annex", "drop", "--force", "--quiet", NIFTIS[2])
    assert not_downloaded_files(clone) == [NIFTIS[2]]
    again = fetch_dataset(DATASET, data, url=str(origin), revision="r1")
    assert again.actions == [f"already at r1 ({result.commit[:12]}); nothing cloned", "git annex get ."]
    assert again.status == "complete" and again.commit == result.commit
    assert_real_niftis(clone, checksums)
    third = fetch_dataset(DATASET, data, url=str(origin), revision="r1")
    assert third.actions[1] == "all annexed content already present"


@needs_annex
def test_annex_clone_without_git_annex_keeps_pointers_and_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    origin, checksums = make_origin(tmp_path / "remote", annex=True)
    split_file = write_test_split(origin, tmp_path)
    only_git = tmp_path / "bin"
    only_git.mkdir()
    (only_git / "git").symlink_to(shutil.which("git"))
    monkeypatch.setenv("PATH", str(only_git))  # git is there, git-annex is not

    result = fetch_dataset(DATASET, tmp_path / "data", url=str(origin), revision="r1",
                           suite="fetch-test", split_file=split_file)

    assert result.status == "not-downloaded"
    assert result.missing_content == NIFTIS
    assert "apt-get install git-annex" in result.message and "pip install git-annex" in result.message
    assert f"cd {tmp_path / 'data' / DATASET} && git annex get ." in result.message
    index = index_dataset(tmp_path / "data" / DATASET, load_dataset(DATASET))
    assert [info.path for info in index.not_downloaded()] == NIFTIS
    assert {info.state for info in index.not_downloaded()} == {"broken-symlink"}
    report = result.verify
    assert report is not None and report.not_downloaded[DATASET] == NIFTIS
    # the annex keys carry the sha256 of the content: equal to the split's checksums, so nothing "changed"
    assert report.changed_files[DATASET] == [] and report.ok
    assert {info.path: info.annex_sha256 for info in index.not_downloaded()} == checksums


@needs_annex
def test_annex_clone_without_content_when_not_requested(tmp_path: Path) -> None:
    origin, _ = make_origin(tmp_path / "remote", annex=True)
    result = fetch_dataset(DATASET, tmp_path / "data", url=str(origin), revision="r2", get_content=False)
    assert result.status == "not-downloaded" and result.missing_content == NIFTIS
    assert result.message.startswith("content not requested; fetch it with: cd ")
    assert (tmp_path / "data" / DATASET / "README").exists()
