"""The content-hash leakage audit finds a planted duplicate: a test image of one suite copied, under another name,
into a dataset that a model declares it trained on."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from benchmark.data.audit import mark_audited_leaks, run_audit, write_submission_audits
from benchmark.evaluation.results import CaseResult, ResultsFile
from benchmark.data.splits import load_split
from benchmark.data.submissions import NnunetModelSpec, Submission, TrainingData

BIDS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bids"
TEST_IMAGE = "sub-errsm30/anat/sub-errsm30_T1w.nii.gz"           # a real-mini test image (sct-testing, OOD)
PLANTED_AT = "sub-unf01/anat/sub-unf01_T1w.nii.gz"               # a training image of spinegeneric-unf01


def submission(name: str, folder: Path, training: TrainingData) -> Submission:
    model = NnunetModelSpec(type="nnunet", folder="model", sha256="0" * 64, configuration="2d")
    made = Submission(name=name, description="audit test", authors=["t"], licence="MIT", model=model,
                      training=training)
    made.folder = folder
    folder.mkdir(parents=True, exist_ok=True)
    return made


@pytest.fixture()
def planted(tmp_path):
    if not (BIDS / "spinegeneric-unf01").is_dir() or not (BIDS / "sct-testing").is_dir():
        pytest.skip(f"real data not available: expected spinegeneric-unf01 and sct-testing under {BIDS}")
    root = tmp_path / "data"
    shutil.copytree(BIDS / "spinegeneric-unf01", root / "spinegeneric-unf01")
    target = root / "spinegeneric-unf01" / PLANTED_AT
    target.unlink()
    shutil.copyfile(BIDS / "sct-testing" / TEST_IMAGE, target)  # the same scan, re-released under another name
    return root


def test_audit_finds_a_test_image_copied_into_a_training_dataset(planted, tmp_path):
    leaky = submission("leaky", tmp_path / "subs" / "leaky", TrainingData(
        datasets=["spinegeneric-unf01"], subjects={"spinegeneric-unf01": ["sub-unf01"]}))
    clean = submission("clean", tmp_path / "subs" / "clean", TrainingData(
        datasets=["gmchallenge"], split=f"real-mini@{load_split('real-mini').version}"))
    vague = submission("vague", tmp_path / "subs" / "vague", TrainingData(datasets=["spinegeneric-unf01"]))
    report = run_audit([leaky, clean, vague], data_root=planted)
    audits = {audit.submission: audit for audit in report.submissions}

    [finding] = audits["leaky"].findings
    assert finding.case_id == f"sct-testing:{TEST_IMAGE}" and finding.suite == "real-mini"
    assert (finding.training_dataset, finding.training_subject, finding.training_image) == (
        "spinegeneric-unf01", "sub-unf01", PLANTED_AT)
    assert audits["leaky"].training_images == 3 and not audits["leaky"].unresolved
    assert audits["clean"].findings == [] and audits["clean"].training_images == 6  # 6 gmchallenge train subjects
    assert audits["vague"].findings == []
    assert "without a subject list" in audits["vague"].unresolved[0]  # reported, not ignored
    assert report.leaked and report.test_images > 0

    written = write_submission_audits(report, [leaky, clean, vague])
    assert {path.parent.name for path in written} == {"leaky", "clean", "vague"}
    row = CaseResult(case_id=f"sct-testing:{TEST_IMAGE}", dataset="sct-testing", subject="sub-errsm30",
                     contrast="T1w", image_sha256=finding.sha256, suite_role="ood", dataset_in_training=False,
                     subject_in_training=False, dice=0.9, nsd=0.9, hd95=1, rve=0, csa_error=1)
    other = row.model_copy(update={"case_id": "sct-testing:other", "image_sha256": "f" * 64})
    results = ResultsFile(submission="leaky", suite="real-mini", benchmark_version="v", cordbench_version="0",
                          model_sha256="0", model_type="nnunet", declared_training_datasets=["spinegeneric-unf01"],
                          created_utc="2026", cases=[row, other])
    marked = mark_audited_leaks(results, tmp_path / "subs" / "leaky" / "results" / "real-mini_v.json")
    assert [case.subject_in_training for case in marked.cases] == [True, False]  # the leaderboard hides it


def test_audit_reports_unknown_training_subjects(tmp_path):
    ghost = submission("ghost", tmp_path / "ghost", TrainingData(datasets=["gmchallenge"],
                                                                subjects={"gmchallenge": ["sub-nobody"]}))
    report = run_audit([ghost], data_root=tmp_path / "nothing-here")
    [audit] = report.submissions
    assert audit.training_images == 0 and audit.findings == []
    assert audit.unresolved == ["training subject gmchallenge:sub-nobody: no content hash known (not in any split "
                                "file, dataset not under the data root)"]
    assert any(missing.startswith("spinalcord-v1 ") for missing in report.not_checked)  # restricted: no hashes


def test_an_audit_file_does_not_change_a_submission_hash(tmp_path):
    from benchmark.data.submissions import PythonModelSpec, submission_hash

    made = Submission(name="p", description="d", authors=["a"], licence="MIT",
                      model=PythonModelSpec(type="python", entrypoint="m:f"))
    made.folder = tmp_path
    (tmp_path / "m.py").write_text("def f(image, spacing):\n    return image\n")
    before = submission_hash(made)
    (tmp_path / "audit.json").write_text("{}")
    assert submission_hash(made) == before
