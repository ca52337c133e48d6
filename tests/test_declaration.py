"""One rule for what a model has seen (benchmark.data.declaration): datasets and people through adapted_from, used by
scoring, the audit and the planner; a fine-tuned model whose parent trained on a test person is flagged alike by
`score` and `audit`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from benchmark.data.declaration import AdaptedFromCycleError, UnknownParentError, training_declaration
from benchmark.data.submissions import SubmissionError, load_submission, training_datasets

BASE = {"description": "d", "authors": ["a"], "licence": "MIT", "model": {"type": "python", "entrypoint": "m:f"}}


def write(root: Path, name: str, training: dict, model: dict | None = None) -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {**BASE, "name": name, "training": training, **({"model": model} if model else {})}
    (folder / "submission.yaml").write_text(yaml.safe_dump(manifest))
    return folder


def test_datasets_and_people_follow_adapted_from_transitively(tmp_path):
    write(tmp_path, "grandparent", {"datasets": ["gmchallenge"], "subjects": {"gmchallenge": ["sub-9709Ses1"]}})
    write(tmp_path, "parent", {"datasets": ["synth-ms"], "adapted_from": ["grandparent"]})
    write(tmp_path, "other", {"datasets": ["synth-epi"], "subjects": {"synth-epi": ["sub-epi01"]},
                              "adapted_from": ["grandparent"]})
    write(tmp_path, "child", {"datasets": ["synth-mp2rage"], "adapted_from": ["parent", "other"]})  # a diamond
    declaration = training_declaration(load_submission("child", tmp_path), tmp_path)
    assert declaration.lineage == ("child", "parent", "grandparent", "other")
    assert declaration.datasets == {"synth-mp2rage", "synth-ms", "gmchallenge", "synth-epi"}
    # the registry groups gmchallenge's sessions: training on sub-9709Ses1 is training on the person sub-9709
    assert declaration.people() == {"gmchallenge": {"sub-9709"}, "synth-epi": {"sub-epi01"}}
    assert declaration.person_in_training("gmchallenge", "sub-9709")
    assert not declaration.person_in_training("gmchallenge", "sub-9604")
    assert declaration.unlisted == (("child", "synth-mp2rage"), ("parent", "synth-ms"))
    assert training_datasets(load_submission("child", tmp_path), tmp_path) == set(declaration.datasets)


def test_scoring_flags_the_parents_people(tmp_path):
    from benchmark.evaluation.scoring import declared_training_people

    write(tmp_path, "parent", {"datasets": ["gmchallenge"], "subjects": {"gmchallenge": ["sub-9604", "sub-9709Ses2"]}})
    write(tmp_path, "child", {"datasets": ["sct-testing"], "adapted_from": ["parent"]})
    # before the one rule, scoring read only the child's own declaration and returned None here
    assert declared_training_people(load_submission("child", tmp_path), tmp_path) == {
        "gmchallenge": {"sub-9604", "sub-9709"}}


def test_a_cycle_is_a_named_error_naming_the_path(tmp_path):
    write(tmp_path, "a", {"datasets": ["synth-ms"], "adapted_from": ["b"]})
    write(tmp_path, "b", {"datasets": ["synth-epi"], "adapted_from": ["a"]})
    with pytest.raises(AdaptedFromCycleError, match=r"^training.adapted_from forms a cycle: a -> b -> a$") as error:
        training_declaration(load_submission("a", tmp_path), tmp_path)
    assert isinstance(error.value, SubmissionError)  # the CLI prints it in one line, exit 2
    write(tmp_path, "self", {"datasets": ["synth-ms"], "adapted_from": ["self"]})
    with pytest.raises(AdaptedFromCycleError, match="cycle: self -> self"):
        training_declaration(load_submission("self", tmp_path), tmp_path)


def test_an_unknown_parent_is_a_named_error_naming_the_manifest(tmp_path):
    folder = write(tmp_path, "child", {"datasets": ["synth-ms"], "adapted_from": ["nobody"]})
    with pytest.raises(UnknownParentError) as error:
        training_declaration(load_submission("child", tmp_path), tmp_path)
    message = str(error.value)
    assert message.startswith(f"{folder / 'submission.yaml'}: training.adapted_from: 'nobody' is not a submission")
    from benchmark.data.audit import run_audit

    with pytest.raises(UnknownParentError):  # the audit applies the same rule: it does not skip the parent
        run_audit([load_submission("child", tmp_path)], submissions_root=tmp_path, splits={})


def test_an_unreadable_split_is_refused_by_scoring_and_reported_by_the_audit(tmp_path):
    from benchmark.data.audit import declared_training
    from benchmark.evaluation.scoring import ScoringError, declared_training_people

    write(tmp_path, "parent", {"datasets": ["synth-ms"], "split": "synthetic@0123456789ab"})
    write(tmp_path, "child", {"datasets": ["synth-epi"], "adapted_from": ["parent"]})
    child = load_submission("child", tmp_path)
    with pytest.raises(ScoringError, match="parent: training.split 'synthetic@0123456789ab' names version"):
        declared_training_people(child, tmp_path)
    _subjects, unresolved = declared_training(child, tmp_path)
    assert any(problem.startswith("parent: training.split 'synthetic@0123456789ab'") for problem in unresolved)
    assert "via parent: declares training dataset 'synth-ms' without a subject list" in "\n".join(unresolved)


def test_the_planner_identity_changes_with_a_parents_people(tmp_path):
    from benchmark.execution.planner import submission_ref

    write(tmp_path, "parent", {"datasets": ["gmchallenge"], "subjects": {"gmchallenge": ["sub-9418"]}})
    write(tmp_path, "child", {"datasets": ["sct-testing"], "adapted_from": ["parent"]})
    before = submission_ref("child", tmp_path).identity
    write(tmp_path, "parent", {"datasets": ["gmchallenge"], "subjects": {"gmchallenge": ["sub-9418", "sub-9604"]}})
    assert submission_ref("child", tmp_path).identity != before


@pytest.mark.real_data
def test_score_and_audit_agree_on_a_fine_tuned_models_seen_people(tmp_path, shared_bids):
    """The parent trained on gmchallenge's test person sub-9604; the child was fine-tuned from it. `score` flags the
    child's sub-9604 row as leaked, and `audit` finds the same test image by content and by the declaration. Before
    the one rule, scoring did not follow adapted_from and marked it subject_in_training: false."""
    from benchmark.data.audit import run_audit
    from benchmark.evaluation.scoring import score_submission

    subs = tmp_path / "subs"
    write(subs, "parent", {"datasets": ["gmchallenge"], "subjects": {"gmchallenge": ["sub-9418", "sub-9604"]}})
    masks = tmp_path / "empty-derivatives"
    masks.mkdir()  # no mask: every case is scored as a missing prediction; the flags are what is checked
    write(subs, "child", {"datasets": ["sct-testing"], "adapted_from": ["parent"]},
          model={"type": "predictions", "folder": str(masks)})
    results, _ = score_submission("child", "real-mini", data_root=shared_bids, submissions_root=subs, progress=False)
    scored = {case.case_id for case in results.cases if case.subject_in_training}
    assert scored == {"gmchallenge:sub-9604/anat/sub-9604_T2starw.nii.gz"}
    assert {case.dataset for case in results.cases if case.dataset_in_training} == {"gmchallenge", "sct-testing"}

    # the leaderboard's zero-shot filter reads the same rule through the results: the parent's dataset is hidden
    from leaderboard import data as board_data, tables

    cases = board_data.cases_from_results([results])
    board = tables.main_table_data(cases, n_resamples=50)
    assert board.trained.loc["child"].to_dict() == {"gmchallenge": True, "sct-testing": True}
    assert tables.main_table_data(cases, zero_shot_only=True, n_resamples=50).datasets == []  # both hidden

    report = run_audit([load_submission("child", subs)], data_root=shared_bids, submissions_root=subs)
    [audit] = report.submissions
    assert set(audit.declared_leaks) == scored  # the declaration: the same rule, the same rows
    assert {finding.case_id for finding in audit.findings} == scored  # and by content: the parent's own image
    assert report.leaked
