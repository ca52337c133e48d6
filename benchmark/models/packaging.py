"""Export a trained submission as one zip another lab can score, and import it back safely.

The archive holds ``submission.yaml``, the model folder (``model/``: plans.json, dataset.json,
fold_*/checkpoint) and ``checksums.json`` with the sha256 of every other member. Import verifies every
checksum, refuses unknown or missing members, and archives that break the one archive policy
(:mod:`benchmark.models.archives`: links, paths that escape the target folder, sizes, member count, compression
ratio, damaged members), and only then registers the submission.

"Verified" means the ARCHIVE's sha256 equals a digest that did not travel inside it: one the user gives
(``cordbench import --sha256``) or one a manifest pins (``model.archive_sha256``). The embedded
``checksums.json`` only detects corruption: whoever altered a member can recompute it. Every result says
which of the two was checked (:class:`Verification`). What was extracted is re-checked against the member
digests recorded at import/extraction time on every load, so a file changed or planted there is refused.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from benchmark.errors import CordbenchError
from benchmark.io import atomic_write_bytes, replace_folder, sha256_bytes, sha256_file
from benchmark import workspace
from benchmark.models.archives import checked_members, extract_members, open_zip, read_member
from benchmark.data.submissions import (SUBMISSIONS_DIR, NnunetModelSpec, Submission, SubmissionError,
                                        check_nnunet_links, load_submission, parse_manifest)

CHECKSUMS = "checksums.json"
IMPORT_RECORD = "import_record.json"  # written next to an imported submission's manifest
EXTRACTED_RECORD = "extracted.json"  # written next to an extracted model folder in the cache
MODEL_FILES = ("plans.json", "dataset.json", "dataset_fingerprint.json")

VerifiedBy = Literal["user-sha256", "manifest-sha256", "embedded-checksums-only"]


@dataclass(frozen=True)
class Verification:
    """What was checked: the archive's own sha256 and, when one was given, against what."""

    archive_sha256: str
    verified_by: VerifiedBy
    checksums: dict[str, str]

    @property
    def verified(self) -> bool:
        return self.verified_by != "embedded-checksums-only"

    def describe(self) -> str:
        if self.verified_by == "user-sha256":
            return f"verified: archive sha256 {self.archive_sha256} equals the digest you gave"
        if self.verified_by == "manifest-sha256":
            return f"verified: archive sha256 {self.archive_sha256} equals the manifest's model.archive_sha256"
        return (f"NOT verified (archive sha256 {self.archive_sha256}): only the checksums inside the archive were "
                "checked, which detect corruption, not tampering; pass --sha256 with the digest its authors published")


def extraction_cache_root() -> Path:
    """Where verified archives are unpacked: the active workspace's ``work/cache/models`` (never the home folder,
    never the current folder; without a workspace, a WorkspaceError saying how to make one)."""
    return workspace.require("unpacking a model archive").archive_cache


class ArchiveError(CordbenchError, ValueError):
    """An archive is tampered with, incomplete or unsafe; the message names the archive and the member."""


def _model_members(submission: Submission) -> dict[str, Path]:
    model = submission.model
    if not isinstance(model, NnunetModelSpec) or not model.folder:
        raise SubmissionError(f"{submission.name}: only nnunet submissions with a model folder can be exported")
    folder = submission.resolve(model.folder)
    check_nnunet_links(submission)  # never pack a host file a link points to into an archive others will get
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


def verify_archive(archive_path: Path, expected_sha256: str | None = None, *,
                   pinned_by: VerifiedBy = "user-sha256") -> Verification:
    """Check the archive's sha256 against ``expected_sha256`` (when given), its limits and every member against
    checksums.json; raise ArchiveError otherwise. ``pinned_by`` says where ``expected_sha256`` came from."""
    archive_path = Path(archive_path)
    try:
        archive_sha256 = sha256_file(archive_path)
    except OSError as error:
        raise ArchiveError(f"{archive_path}: not a readable zip archive ({error})") from error
    archive = open_zip(archive_path, ArchiveError)
    if expected_sha256 is not None and archive_sha256 != expected_sha256.lower():
        raise ArchiveError(f"{archive_path}: sha256 {archive_sha256} differs from the expected {expected_sha256} "
                           f"({'given with --sha256' if pinned_by == 'user-sha256' else 'model.archive_sha256'}): "
                           "tampered or not the archive you meant")
    with archive:
        names = list(checked_members(archive, archive_path, ArchiveError))
        if CHECKSUMS not in names:
            raise ArchiveError(f"{archive_path}: no {CHECKSUMS}; not a cordbench export")
        try:
            checksums = json.loads(read_member(archive, CHECKSUMS, archive_path, ArchiveError))
        except ValueError as error:
            raise ArchiveError(f"{archive_path}: {CHECKSUMS} is not valid JSON ({error})") from error
        if not isinstance(checksums, dict) or not all(isinstance(value, str) for value in checksums.values()):
            raise ArchiveError(f"{archive_path}: {CHECKSUMS} must map member names to sha256 strings")
        listed, present = set(checksums), set(names) - {CHECKSUMS}
        if present - listed:
            raise ArchiveError(f"{archive_path}: members not in {CHECKSUMS}: {sorted(present - listed)}")
        if listed - present:
            raise ArchiveError(f"{archive_path}: members listed in {CHECKSUMS} but missing: {sorted(listed - present)}")
        for name in sorted(listed):
            if sha256_bytes(read_member(archive, name, archive_path, ArchiveError)) != checksums[name]:
                raise ArchiveError(f"{archive_path}: {name} does not match its sha256 (tampered or corrupt)")
    verified_by: VerifiedBy = pinned_by if expected_sha256 is not None else "embedded-checksums-only"
    return Verification(archive_sha256, verified_by, checksums)


def verify_extracted(folder: Path, recorded: dict[str, str], what: str) -> None:
    """Every file under ``folder`` (paths relative to it) must be listed in ``recorded`` with that sha256, and
    every listed file present: nothing changed or planted since it was unpacked."""
    present = {path.relative_to(folder).as_posix(): path for path in folder.rglob("*")
               if path.is_file() or path.is_symlink()}
    for relative in sorted(set(present) - set(recorded)):
        raise ArchiveError(f"{folder / relative}: not in the {what}; a file was planted after unpacking "
                           f"(delete {folder} and import/extract again)")
    for relative, digest in sorted(recorded.items()):
        path = present.get(relative)
        if path is None:
            raise ArchiveError(f"{folder / relative}: missing; recorded in the {what}")
        if path.is_symlink() or sha256_file(path) != digest:
            raise ArchiveError(f"{folder / relative}: changed since it was unpacked (sha256 differs from the {what})")


def import_archive(archive_path: Path, submissions_root: Path | None = None, *, overwrite: bool = False,
                   expected_sha256: str | None = None) -> Submission:
    """Verify an exported archive, then unpack it as ``submissions/<name>/`` and return the submission.

    The submission's ``import_record.json`` keeps the archive's sha256, what it was verified against and the
    sha256 of every unpacked file (re-checked by :func:`verify_import` before the model is loaded)."""
    import yaml

    verification = verify_archive(archive_path, expected_sha256)
    root = Path(submissions_root or workspace.require("`cordbench import`").submissions_dir)
    root.mkdir(parents=True, exist_ok=True)
    with open_zip(archive_path, ArchiveError) as archive:
        data = yaml.safe_load(read_member(archive, "submission.yaml", archive_path, ArchiveError))
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise ArchiveError(f"{archive_path}: submission.yaml has no name")
        name = data["name"]
        if "/" in name or name.startswith("."):
            raise ArchiveError(f"{archive_path}: submission name {name!r} is not a folder name")
        target = root / name
        if submissions_root is None and (SUBMISSIONS_DIR / name / "submission.yaml").exists():
            raise ArchiveError(f"{SUBMISSIONS_DIR / name}: {name!r} is a built-in reference submission; a model "
                               "imported under its name would clash with it (rename it in the archive's manifest)")
        if target.exists() and not overwrite:
            raise ArchiveError(f"{target}: a submission named {name!r} exists already (use --overwrite)")
        with tempfile.TemporaryDirectory(dir=root) as scratch:
            staging = Path(scratch) / name
            extract_members(archive, [name for name in verification.checksums if name != CHECKSUMS], staging,
                            archive_path, ArchiveError)
            submission = parse_manifest(staging / "submission.yaml")
            record = {"archive": str(Path(archive_path).resolve()), "archive_sha256": verification.archive_sha256,
                      "verified_by": verification.verified_by, "files": verification.checksums}
            (staging / IMPORT_RECORD).write_text(json.dumps(record, indent=1, sort_keys=True))
            submission.folder = replace_folder(staging, target)
    return submission


def import_verification(submission_folder: Path) -> Verification:
    """What an imported submission's archive was checked against (from its import record)."""
    record = json.loads((Path(submission_folder) / IMPORT_RECORD).read_text(encoding="utf-8"))
    return Verification(record["archive_sha256"], record["verified_by"], record["files"])


def verify_import(submission_folder: Path) -> None:
    """Re-check an imported submission's model files against its import record (no-op for other folders)."""
    record_path = Path(submission_folder) / IMPORT_RECORD
    if not record_path.is_file():
        return
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        model_files = {name[len("model/"):]: digest for name, digest in record["files"].items()
                       if name.startswith("model/")}
    except (ValueError, KeyError, AttributeError, TypeError) as error:
        raise ArchiveError(f"{record_path}: unreadable import record ({error!r})") from error
    verify_extracted(Path(submission_folder) / "model", model_files, f"import record {record_path}")


def extract_verified(archive_path: Path, *, expected_checkpoint_sha256: str, cache_root: Path | None = None,
                     expected_archive_sha256: str | None = None) -> Path:
    """Unpack a verified archive's model folder into a cache keyed by the archive's sha256; return the folder.

    The archive is verified on every call and the unpacked files are re-checked against the member digests
    recorded when they were unpacked: a file changed or planted in the cache is refused (ArchiveError)."""
    verification = verify_archive(archive_path, expected_archive_sha256, pinned_by="manifest-sha256")
    checksums = verification.checksums
    checkpoints = {name: digest for name, digest in checksums.items() if name.endswith(".pth")}
    if expected_checkpoint_sha256 not in checkpoints.values():
        raise ArchiveError(f"{archive_path}: no checkpoint with the manifest's sha256 {expected_checkpoint_sha256[:12]}…")
    cache = Path(cache_root or extraction_cache_root()) / verification.archive_sha256[:32]
    model_dir = cache / "model"
    model_files = {name[len("model/"):]: digest for name, digest in checksums.items() if name.startswith("model/")}
    if not model_dir.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as scratch:
            with open_zip(archive_path, ArchiveError) as archive:
                members = [name for name in checksums if name.startswith("model/")]
                extract_members(archive, members, Path(scratch), archive_path, ArchiveError)
            atomic_write_bytes(cache / EXTRACTED_RECORD, json.dumps(model_files, indent=1, sort_keys=True).encode())
            (Path(scratch) / "model").rename(model_dir)
    verify_extracted(model_dir, model_files, f"archive {archive_path}")
    return model_dir
