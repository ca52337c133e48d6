"""Submission manifests (validation with field paths), checks, export/import with checksums."""

import zipfile
from pathlib import Path

import pytest
import torch
import yaml

from benchmark.io import sha256_file
from benchmark.models.packaging import ArchiveError, export_submission, import_archive, verify_archive
from benchmark.data.submissions import (SubmissionError, check_submission, list_submissions, load_submission,
                                   submission_hash, training_datasets)

REPO = Path(__file__).resolve().parents[1]


def write(root: Path, name: str, manifest: dict) -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "submission.yaml").write_text(yaml.safe_dump({"name": name, **manifest}))
    return folder


def nnunet_submission(root: Path, name: str = "tiny-nnunet") -> Path:
    folder = root / name
    (folder / "model" / "fold_all").mkdir(parents=True)
    for member in ("plans.json", "dataset.json"):
        (folder / "model" / member).write_text('{"x": 1}')
    checkpoint = folder / "model" / "fold_all" / "checkpoint_final.pth"
    torch.save({"network_weights": {"w": torch.ones(3)}}, checkpoint)
    write(root, name, {"description": "d", "authors": ["a"], "licence": "MIT",
                       "model": {"type": "nnunet", "folder": "model", "sha256": sha256_file(checkpoint),
                                 "configuration": "2d_quick"},
                       "training": {"datasets": ["synth-ms"]}})
    return folder


def test_repository_submissions_are_valid():
    valid, invalid = list_submissions()
    assert invalid == {}
    assert "threshold-baseline" in {submission.name for submission in valid}


def test_errors_name_the_file_and_the_field(tmp_path):
    write(tmp_path, "bad", {"description": "d", "authors": ["a"], "licence": "MIT",
                            "model": {"type": "command", "command": "run {input}"}, "colour": "red"})
    with pytest.raises(SubmissionError) as error:
        load_submission("bad", tmp_path)
    message = str(error.value)
    assert str(tmp_path / "bad" / "submission.yaml") in message
    assert "model.command.command: Value error, command must contain {output}" in message
    assert "colour: Extra inputs are not permitted" in message


def test_name_must_match_folder(tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "submission.yaml").write_text(yaml.safe_dump({"name": "other", "description": "d", "authors": ["a"],
                                                            "licence": "MIT",
                                                            "model": {"type": "python", "entrypoint": "m:f"}}))
    with pytest.raises(SubmissionError, match="name: 'other' must equal its folder name 'folder'"):
        load_submission("folder", tmp_path)


def test_adapted_from_chain_and_cycle(tmp_path):
    base = {"description": "d", "authors": ["a"], "licence": "MIT", "model": {"type": "python", "entrypoint": "m:f"}}
    write(tmp_path, "a", {**base, "training": {"datasets": ["synth-ms"]}})
    write(tmp_path, "b", {**base, "training": {"datasets": ["synth-epi"], "adapted_from": ["a"]}})
    assert training_datasets(load_submission("b", tmp_path), tmp_path) == {"synth-ms", "synth-epi"}
    write(tmp_path, "a", {**base, "training": {"datasets": ["synth-ms"], "adapted_from": ["b"]}})
    with pytest.raises(SubmissionError, match="cycle"):
        training_datasets(load_submission("b", tmp_path), tmp_path)


def test_check_reports_a_wrong_checkpoint_sha256(tmp_path):
    folder = nnunet_submission(tmp_path)
    assert check_submission(load_submission("tiny-nnunet", tmp_path)) == []
    with open(folder / "model/fold_all/checkpoint_final.pth", "ab") as handle:
        handle.write(b"0")
    [problem] = check_submission(load_submission("tiny-nnunet", tmp_path))
    assert problem.startswith("model.sha256:") and "does not match" in problem


def test_submission_hash_follows_scripts_not_generated_files(tmp_path):
    folder = write(tmp_path, "cmd", {"description": "d", "authors": ["a"], "licence": "MIT",
                                     "model": {"type": "command", "command": "x {input} {output}"}})
    (folder / "run.py").write_text("print(1)")
    first = submission_hash(load_submission("cmd", tmp_path))
    (folder / "results").mkdir()
    (folder / "results" / "x.json").write_text("{}")
    (folder / "cases_index_synthetic.json").write_text("{}")
    assert submission_hash(load_submission("cmd", tmp_path)) == first
    (folder / "run.py").write_text("print(2)")
    assert submission_hash(load_submission("cmd", tmp_path)) != first


def test_export_import_round_trip(tmp_path):
    nnunet_submission(tmp_path / "lab-a")
    archive = export_submission("tiny-nnunet", tmp_path / "tiny.zip", tmp_path / "lab-a")
    checksums = verify_archive(archive).checksums
    assert set(checksums) == {"submission.yaml", "model/plans.json", "model/dataset.json",
                              "model/fold_all/checkpoint_final.pth"}
    imported = import_archive(archive, tmp_path / "lab-b")
    assert imported.name == "tiny-nnunet" and imported.folder == (tmp_path / "lab-b/tiny-nnunet").resolve()
    assert check_submission(imported) == []
    with pytest.raises(ArchiveError, match="exists already"):
        import_archive(archive, tmp_path / "lab-b")


def _rewrite_member(archive: Path, member: str, data: bytes, out: Path) -> Path:
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            target.writestr(item, data if item.filename == member else source.read(item.filename))
    return out


def test_tampered_archive_is_refused_and_nothing_is_registered(tmp_path):
    nnunet_submission(tmp_path / "lab-a")
    archive = export_submission("tiny-nnunet", tmp_path / "tiny.zip", tmp_path / "lab-a")
    tampered = _rewrite_member(archive, "model/fold_all/checkpoint_final.pth", b"evil pickle", tmp_path / "t.zip")
    with pytest.raises(ArchiveError, match=r"model/fold_all/checkpoint_final.pth does not match its sha256"):
        import_archive(tampered, tmp_path / "lab-b")
    assert not (tmp_path / "lab-b" / "tiny-nnunet").exists()


def test_archive_with_extra_or_escaping_member_is_refused(tmp_path):
    nnunet_submission(tmp_path / "lab-a")
    archive = export_submission("tiny-nnunet", tmp_path / "tiny.zip", tmp_path / "lab-a")
    extra = tmp_path / "extra.zip"
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(extra, "w") as target:
        for item in source.infolist():
            target.writestr(item, source.read(item.filename))
        target.writestr("../../outside.txt", b"x")
    with pytest.raises(ArchiveError, match="would be written outside the target folder"):
        verify_archive(extra)


def test_replace_folder_swaps_in_the_staged_folder_and_leaves_nothing_beside_it(tmp_path):
    from benchmark.io import replace_folder

    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("old")
    staged = tmp_path / "staging" / "model"
    staged.mkdir(parents=True)
    (staged / "new.txt").write_text("new")
    assert replace_folder(staged, target) == target.resolve()
    assert sorted(path.name for path in target.iterdir()) == ["new.txt"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model", "staging"]  # the old one is gone
    fresh = tmp_path / "staging" / "other"
    fresh.mkdir()
    assert replace_folder(fresh, tmp_path / "other") == (tmp_path / "other").resolve() and not fresh.exists()
