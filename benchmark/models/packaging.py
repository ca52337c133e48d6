"""Export a trained submission as one zip another lab can score, and import it back safely.

The archive holds ``submission.yaml``, the model folder (``model/``: plans.json, dataset.json,
fold_*/checkpoint) and ``checksums.json`` with the sha256 of every other member. Import verifies every
checksum, refuses unknown or missing members and paths that escape the target folder, and only then
registers the submission.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from benchmark.errors import CordbenchError
from benchmark.io import atomic_write_bytes, sha256_bytes, sha256_file
from benchmark.data.submissions import (SUBMISSIONS_DIR, NnunetModelSpec, Submission, SubmissionError, load_submission,
                                   parse_manifest)

CHECKSUMS = "checksums.json"
MODEL_FILES = ("plans.json", "dataset.json", "dataset_fingerprint.json")


class ArchiveError(CordbenchError, ValueError):
    """An archive is tampered with, incomplete or unsafe; the message names the archive and the member."""


def _model_members(submission: Submission) -> dict[str, Path]:
    model = submission.model
    if not isinstance(model, NnunetModelSpec) or not model.folder:
        raise SubmissionError(f"{submission.name}: only nnunet submissions with a model folder can be exported")
    folder = submission.resolve(model.folder)
    members = {f"model/{name}": folder / name for name in MODEL_FILES if (folder / name).exists()}
    for fold in model.folds:
        fold_dir = "fold_all" if fold == "all" else f"fold_{fold}"
        checkpoint = folder / fold_dir / model.checkpoint
        if not checkpoint.exists():
            raise SubmissionError(f"{checkpoint}: checkpoint missing; cannot export {submission.name}")
        members[f"model/{fold_dir}/{model.checkpoint}"] = checkpoint
    return members


def export_submission(name: str, out_zip: Path, submissions_root: Path | None = None) -> Path:
    """Write ``out_zip`` with the manifest (model.folder rewritten to ``model``), the model and checksums."""
    submission = load_submission(name, submissions_root)
    members = _model_members(submission)
    # the archive's checksums.json covers what it carries; an imported model's other files stay behind
    manifest = submission.model_copy(update={"model": submission.model.model_copy(update={"folder": "model",
                                                                                          "files": None})})
    import yaml

    manifest_bytes = yaml.safe_dump(manifest.model_dump(mode="json", exclude_none=True), sort_keys=False).encode()
    checksums = {"submission.yaml": sha256_bytes(manifest_bytes)}
    checksums.update({member: sha256_file(path) for member, path in members.items()})
    out_zip = Path(out_zip)
    with tempfile.TemporaryDirectory(dir=out_zip.parent if out_zip.parent.exists() else None) as scratch:
        tmp = Path(scratch) / "archive.zip"
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("submission.yaml", manifest_bytes)
            for member, path in sorted(members.items()):
                archive.write(path, member)
            archive.writestr(CHECKSUMS, json.dumps(checksums, indent=1, sort_keys=True))
        atomic_write_bytes(out_zip, tmp.read_bytes())
    return out_zip


def _safe_member(name: str, archive: Path) -> str:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or name.startswith("\\"):
        raise ArchiveError(f"{archive}: member {name!r} would be written outside the target folder")
    return name


def verify_archive(archive_path: Path) -> dict[str, str]:
    """Check every member against checksums.json; return the checksums. Raises ArchiveError otherwise."""
    archive_path = Path(archive_path)
    try:
        archive = zipfile.ZipFile(archive_path)
    except (OSError, zipfile.BadZipFile) as error:
        raise ArchiveError(f"{archive_path}: not a readable zip archive ({error})") from error
    with archive:
        names = [_safe_member(name, archive_path) for name in archive.namelist() if not name.endswith("/")]
        if CHECKSUMS not in names:
            raise ArchiveError(f"{archive_path}: no {CHECKSUMS}; not a cordbench export")
        checksums = json.loads(archive.read(CHECKSUMS))
        listed, present = set(checksums), set(names) - {CHECKSUMS}
        if present - listed:
            raise ArchiveError(f"{archive_path}: members not in {CHECKSUMS}: {sorted(present - listed)}")
        if listed - present:
            raise ArchiveError(f"{archive_path}: members listed in {CHECKSUMS} but missing: {sorted(listed - present)}")
        for name in sorted(listed):
            if sha256_bytes(archive.read(name)) != checksums[name]:
                raise ArchiveError(f"{archive_path}: {name} does not match its sha256 (tampered or corrupt)")
    return checksums


def import_archive(archive_path: Path, submissions_root: Path | None = None, *, overwrite: bool = False) -> Submission:
    """Verify an exported archive, then unpack it as ``submissions/<name>/`` and return the submission."""
    import yaml

    verify_archive(archive_path)
    root = Path(submissions_root or SUBMISSIONS_DIR)
    root.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive_path) as archive:
        data = yaml.safe_load(archive.read("submission.yaml"))
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise ArchiveError(f"{archive_path}: submission.yaml has no name")
        name = data["name"]
        if "/" in name or name.startswith("."):
            raise ArchiveError(f"{archive_path}: submission name {name!r} is not a folder name")
        target = root / name
        if target.exists() and not overwrite:
            raise ArchiveError(f"{target}: a submission named {name!r} exists already (use --overwrite)")
        with tempfile.TemporaryDirectory(dir=root) as scratch:
            staging = Path(scratch) / name
            archive.extractall(staging, members=[member for member in archive.namelist() if member != CHECKSUMS])
            submission = parse_manifest(staging / "submission.yaml")
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
    submission.folder = target.resolve()
    return submission


def extract_verified(archive_path: Path, *, expected_checkpoint_sha256: str, cache_root: Path | None = None) -> Path:
    """Unpack a verified archive's model folder into a cache keyed by its checkpoint sha256; return the folder."""
    checksums = verify_archive(archive_path)
    checkpoints = {name: digest for name, digest in checksums.items() if name.endswith(".pth")}
    if expected_checkpoint_sha256 not in checkpoints.values():
        raise ArchiveError(f"{archive_path}: no checkpoint with the manifest's sha256 {expected_checkpoint_sha256[:12]}…")
    cache = Path(cache_root or Path.home() / ".cache" / "cordbench" / "models") / expected_checkpoint_sha256[:16]
    model_dir = cache / "model"
    if not model_dir.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as scratch:
            with zipfile.ZipFile(archive_path) as archive:
                members = [name for name in archive.namelist() if name.startswith("model/")]
                archive.extractall(scratch, members=members)
            (Path(scratch) / "model").rename(model_dir)
    return model_dir
