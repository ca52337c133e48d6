"""Hostile inputs, round two (issue 26): what a submission ships and what a user can do to the file system.

Supplied masks linked to the ground truth, output folders shipped as links, work units reused across plans or
folders, zip bombs, forged results files and registry tables, writes into the package, file system faults, console
markup, command templates, interrupts. Each test runs cordbench as a user does (its own process, on real-mini in a
fresh workspace, tests/hostile_fixtures.py), failed before the change, and checks that the attack ends in a named
refusal with the workspace's user files, the data root and the installed package byte-identical. docs/scoring.md
("Hostile inputs, before and after") lists each.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import zipfile
from pathlib import Path

import pytest
import yaml

from hostile_fixtures import (CODE_ROOT, Mini, bwrap_wrap, needs_sandbox, nnunet_submission, real_data_root,
                              single_line_error, tree_digest, zero_masks)


@pytest.fixture(scope="module")
def supplied_zero_masks(tmp_path_factory) -> Path:
    root = real_data_root()
    if root is None:
        pytest.skip("real data not available: expected ../shared/data/bids with gmchallenge, sct-testing and "
                    "spinegeneric-unf01")
    return zero_masks(root, tmp_path_factory.mktemp("zero-masks"))


@pytest.fixture
def mini(tmp_path, supplied_zero_masks, monkeypatch) -> Mini:
    from benchmark.workspace import init_workspace

    workspace = init_workspace(tmp_path / "ws").root
    monkeypatch.setenv("CORDBENCH_WORKSPACE", str(workspace))
    return Mini(workspace, real_data_root(), supplied_zero_masks)


def _reference_masks(data_root: Path) -> dict[str, Path]:
    """image name -> its reference mask (real-mini's test datasets)."""
    found = {}
    for dataset in ("gmchallenge", "sct-testing"):
        for mask in (data_root / dataset / "derivatives").rglob("*_seg-manual.nii.gz"):
            found[mask.name.replace("_seg-manual", "")] = mask
    return found


def test_supplied_masks_linked_to_the_ground_truth_are_refused(mini):
    """Before: every case scored Dice 1.000 (the masks were symbolic links to the reference masks)."""
    folder = mini.predictions_submission("thief", copy_masks=False)
    (folder / "masks").mkdir()
    for image_name, reference in _reference_masks(mini.data_root).items():
        (folder / "masks" / image_name.replace(".nii.gz", "_label-SC_seg.nii.gz")).symlink_to(reference)
    before = mini.protected()
    completed = mini.score("thief")
    output = " ".join((completed.stdout + completed.stderr).split())
    assert completed.returncode == 1 and "Traceback" not in output
    assert "this supplied mask is a link to" in output and "links out of the folder are refused" in output
    assert not mini.results_file("thief").exists()
    mini.assert_unchanged(before)


def test_a_supplied_mask_hard_linked_to_the_ground_truth_or_a_folder_in_the_data_is_refused(mini, tmp_path):
    """A hard link is no symbolic link, and a folder inside the data root holds nothing but files: both are still
    the ground truth. Before: Dice 1.000 (hard link)."""
    from benchmark.data.submissions import load_submission
    from benchmark.evaluation.scoring import test_cases
    from benchmark.evaluation.supplied import SuppliedPredictor
    from benchmark.data.splits import load_split
    from benchmark.safepaths import UnsafePathError

    data_root = tmp_path / "data"  # a copy: hard links must not touch the shared data's link counts
    for dataset in ("gmchallenge", "sct-testing", "spinegeneric-unf01"):
        shutil.copytree(mini.data_root / dataset, data_root / dataset)
    cases = test_cases("real-mini", load_split("real-mini"), data_root)
    folder = mini.predictions_submission("hard", copy_masks=True)
    reference = cases[0].label_path
    target = folder / "masks" / cases[0].image_path.name.replace(".nii.gz", "_label-SC_seg.nii.gz")
    target.unlink()
    os.link(reference, target)
    with pytest.raises(UnsafePathError, match="is the reference mask .* itself"):
        SuppliedPredictor(load_submission("hard"), tmp_path / "cache", cases)
    inside = mini.predictions_submission("inside", masks=str(data_root / "gmchallenge" / "derivatives"),
                                         copy_masks=False)
    with pytest.raises(UnsafePathError, match="overlaps the data being scored"):
        SuppliedPredictor(load_submission(inside.name), tmp_path / "cache", cases)


@pytest.mark.parametrize("shipped", ["results-link", "predictions-link", "results-file"])
def test_output_folders_shipped_as_links_or_files_are_refused(mini, shipped):
    """Before: `results/` and `predictions/` shipped as links into another submission's folder made `score` rewrite
    that submission's results file under the attacker's name; a file named `results` gave a traceback."""
    mini.predictions_submission("victim")
    assert mini.score("victim").returncode == 0
    evil = mini.predictions_submission("evil")
    folder_name, kind = shipped.split("-")
    if kind == "link":
        (evil / folder_name).symlink_to(Path("..") / "victim" / folder_name)
    else:
        (evil / folder_name).write_text("not a folder")
    before = mini.protected()
    output = single_line_error(mini.score("evil"))
    expected = "is a symbolic link" if kind == "link" else "exists and is not a folder"
    assert f"{evil / folder_name}: {expected}" in output, output
    mini.assert_unchanged(before)


def test_work_units_and_cached_predictions_follow_the_plans_and_dataset_json(mini):
    """Before: a unit id covered the checkpoint but not plans.json, so after editing the plans (same weights) the
    finished units were reused and the old Dice reported; the prediction cache was keyed the same way."""
    from benchmark.data.submissions import load_submission, submission_hash
    from benchmark.execution.planner import plan_score_request

    folder = nnunet_submission(mini.submissions, "edited")

    def identity() -> tuple[list[str], str]:
        plan, _units = plan_score_request(["edited"], "real-mini", data_root=mini.data_root)
        return plan.unit_ids(), submission_hash(load_submission("edited"))

    first = identity()
    plans = json.loads((folder / "model" / "plans.json").read_text())
    plans["configurations"]["2d"]["patch_size"] = [32, 32]
    (folder / "model" / "plans.json").write_text(json.dumps(plans))
    second = identity()
    (folder / "model" / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "cord": 2}}))
    third = identity()
    assert len({first[1], second[1], third[1]}) == 3
    assert set(first[0]).isdisjoint(second[0]) and set(second[0]).isdisjoint(third[0])


def test_the_same_submission_in_a_second_folder_writes_its_own_results(mini, tmp_path):
    """Before: units were keyed by content only, so scoring a copy of a submission in another folder merged the
    results into the FIRST folder (the path its finished units kept)."""
    first = mini.predictions_submission("twin")
    assert mini.score(str(first)).returncode == 0
    first_results = mini.results_file("twin").read_bytes()
    second = tmp_path / "elsewhere" / "twin"
    shutil.copytree(first, second, ignore=shutil.ignore_patterns("results", "predictions", "cases_index*"))
    completed = mini.score(str(second))
    assert completed.returncode == 0, completed.stderr
    written = [line for line in completed.stdout.splitlines() if line.startswith("wrote ")]
    assert written and str(second / "results") in written[0], completed.stdout
    assert (second / "results").is_dir() and mini.results_file("twin").read_bytes() == first_results


def _nnunet_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(f"Dataset990_Tiny/nnUNetTrainer__nnUNetPlans__2d/{name}", data)
    return path


def test_an_nnunet_zip_bomb_is_refused_before_anything_is_written(mini, tmp_path):
    """Before: nnU-Net zips were only checked against 16 GiB in total: a 1 MB zip with a 1 GiB member of zeros
    imported and wrote 1 GiB into the workspace (cordbench's own export zips refused members over 200:1)."""
    archive = _nnunet_zip(tmp_path / "bomb.zip", {"plans.json": b"{}", "dataset.json": b"{}",
                                                  "fold_all/checkpoint_final.pth": bytes(256 << 20)})
    assert archive.stat().st_size < 2 << 20
    before = mini.protected()
    output = single_line_error(mini.cli("import", str(archive), "--trained-on", "gmchallenge"))
    assert "refused as a possible zip bomb" in output and "checkpoint_final.pth" in output
    mini.assert_unchanged(before)


@pytest.mark.parametrize("values, problem", [
    ({"dice": 7.0}, "dice is 7.0, outside [0, 1]"),
    ({"dice": -3.0}, "dice is -3.0, outside [0, 1]"),
    ({"hd95": -1.0}, "hd95 is -1.0, outside [0, inf]"),
    ({"case_id": "duplicate"}, "appears twice (rows 1 and 2)"),
])
def test_a_forged_results_file_does_not_pass_the_gate(tmp_path, values, problem):
    """Before: a results file with Dice 7.0 or -3 passed the gate (and took the leaderboard's first place)."""
    from typer.testing import CliRunner

    from benchmark.cli import app
    from factories import make_case, make_results
    from benchmark.evaluation.results import write_results

    rows = [make_case("gmchallenge", "sub-01", 0.8), make_case("gmchallenge", "sub-02", 0.7)]
    if "case_id" in values:
        rows[1] = rows[1].model_copy(update={"case_id": rows[0].case_id})
    else:
        rows[0] = rows[0].model_copy(update=values)
    forged = write_results(tmp_path / "forged.json", make_results("forged", rows))
    baseline = write_results(tmp_path / "baseline.json", make_results("baseline", [
        make_case("gmchallenge", "sub-01", 0.8), make_case("gmchallenge", "sub-02", 0.7)]))
    result = CliRunner().invoke(app, ["gate", "--candidate", str(forged), "--baseline", str(baseline)])
    output = " ".join(result.output.split())
    assert result.exit_code == 2 and problem in output and str(forged) in output, output


def test_a_participants_table_with_two_different_rows_for_one_person_is_refused(mini, tmp_path):
    """Before: the later row won silently (the site of a case depended on the order of the rows)."""
    from benchmark.data.bids_index import BidsIndexError, read_participants

    copy = tmp_path / "gmchallenge"
    shutil.copytree(mini.data_root / "gmchallenge", copy)
    table = (copy / "participants.tsv").read_text().splitlines()
    header, first = table[0], table[1]
    changed = first.split("\t")
    column = 1
    changed[column] = changed[column] + "-elsewhere"
    (copy / "participants.tsv").write_text("\n".join([header, first, *table[2:], "\t".join(changed)]) + "\n")
    with pytest.raises(BidsIndexError, match=rf"lines 2 and {len(table) + 1} both describe {first.split()[0]} "
                                             r"with different values"):
        read_participants(copy)
    (copy / "participants.tsv").write_text("\n".join([header, first, *table[2:], first]) + "\n")
    assert first.split()[0] in read_participants(copy)  # the same row twice says nothing new: accepted


def test_audit_and_every_command_write_only_into_the_workspace(mini):
    """Before: `cordbench audit` wrote audit.json into the installed package's built-in submission folders (ten
    new files in a clean checkout's `git status`)."""
    from conftest import package_snapshot, snapshot_difference

    package = package_snapshot()
    commands = [["audit", "--data-root", str(mini.data_root)], ["submissions", "list"], ["datasets", "list"],
                ["splits", "verify", "--suite", "real-mini", "--data-root", str(mini.data_root)], ["status"]]
    for command in commands:
        completed = mini.cli(*command)
        assert "Traceback" not in completed.stderr, (command, completed.stderr)
        assert not snapshot_difference(package, package_snapshot()), (command, snapshot_difference(
            package, package_snapshot()))
    from benchmark.workspace import builtin_submissions_dir

    builtin = sorted(path.parent.name for path in builtin_submissions_dir().glob("*/submission.yaml"))
    assert builtin and all((mini.submissions / name / "audit.json").is_file() for name in builtin)


def _scored_copier(mini: Mini) -> Path:
    """A scored command submission (copies its input: a valid output), for the file system faults below."""
    folder = mini.predictions_submission("copier")
    assert mini.score("copier").returncode == 0
    return folder


needs_bwrap_binary = pytest.mark.skipif(shutil.which("bwrap") is None,
                                        reason="needs bubblewrap to make a folder read-only or a disk full for a "
                                               "command (root ignores file permissions)")


@needs_bwrap_binary
@pytest.mark.parametrize("fault", ["read-only-workspace", "read-only-results", "results-path-is-a-file"])
def test_file_system_faults_are_one_named_line(mini, fault):
    """Before: a read-only workspace or results folder, and a results path that is a file, ended in tracebacks."""
    folder = _scored_copier(mini)
    wrap = None
    if fault == "read-only-workspace":
        wrap = bwrap_wrap(read_only=(mini.workspace,))
        expected = "Read-only file system"
    elif fault == "read-only-results":
        wrap = bwrap_wrap(read_only=(folder / "results",))
        expected = "Read-only file system"
    else:
        shutil.rmtree(folder / "results")
        (folder / "results").write_text("a file where the results folder belongs")
        expected = "exists and is not a folder"
    shutil.rmtree(mini.workspace / "work" / "units")  # scored again from scratch: every write happens again
    before = mini.protected()
    completed = mini.score("copier", wrap=wrap)
    output = single_line_error(completed)
    assert completed.returncode != 0 and expected in output, output
    if fault != "read-only-workspace":
        mini.assert_unchanged(before)


@needs_bwrap_binary
@pytest.mark.parametrize("where", ["TMPDIR", "work/tmp"])
def test_a_full_temporary_folder_is_a_named_scorer_fault(mini, tmp_path, where):
    """Before: a full TMPDIR gave a vague failure. Now the unit fails as the scorer's fault, named, and nothing is
    recorded as the model's score. Local workers keep their scratch copies in the workspace's work/tmp; a shard
    run in the command's own process uses TMPDIR."""
    pytest.importorskip("benchmark.models.sandbox").sandbox_available() or pytest.skip("needs bubblewrap")
    mini.command_submission("tmp-user", "cp {input} {output}")
    full = tmp_path / "full-tmp" if where == "TMPDIR" else mini.workspace / "work" / "tmp"
    full.mkdir(parents=True)
    wrap = bwrap_wrap(small_tmpfs=full, size=64 * 1024)  # 64 KiB: no test image fits
    before = mini.protected()
    if where == "TMPDIR":
        completed = mini.cli("score", "tmp-user", "--suite", "real-mini", "--data-root", str(mini.data_root),
                             "--shard", "1/1", wrap=wrap, TMPDIR=str(full))
    else:
        completed = mini.score("tmp-user", wrap=wrap)
    output = " ".join((completed.stdout + completed.stderr).split())
    assert completed.returncode == 1 and "Traceback" not in output
    assert "scorer fault" in output and "not the model's; nothing recorded" in output, output
    assert "No space left on device" in output, output
    assert not mini.results_file("tmp-user").exists()
    mini.assert_unchanged(before)


def test_model_output_with_console_markup_is_shown_as_text(mini):
    """Before: a model whose stderr held `[/]` or `[bold red]` crashed the command's report with a rich MarkupError
    traceback."""
    pytest.importorskip("benchmark.models.sandbox").sandbox_available() or pytest.skip("needs bubblewrap")
    mini.command_submission("shouter", "{python} run.py {input} {output}", script=(
        "import sys\nprint('[bold red]pwned[/] and [/] [link=file:///etc/passwd]x[/link]', file=sys.stderr)\n"
        "sys.exit(3)\n"))
    before = mini.protected()
    completed = mini.score("shouter")
    output = completed.stdout + completed.stderr
    assert completed.returncode == 1 and "Traceback" not in output, output
    assert "[bold red]pwned[/] and [/] [link=file:///etc/passwd]x[/link]" in " ".join(output.split())
    mini.assert_unchanged(before)


def test_command_templates_keep_literal_braces_and_refuse_unknown_placeholders(mini):
    """Before: `awk '{print $1}'` in a command template failed every case with a vague `crash: KeyError`, and a typo
    such as `{ouptut}` was found only when the model ran."""
    pytest.importorskip("benchmark.models.sandbox").sandbox_available() or pytest.skip("needs bubblewrap")
    from benchmark.data.submissions import SubmissionError, load_submission

    mini.command_submission("braces", "echo 'a b' | awk '{print $1}' > /dev/null && cp {input} {output}")
    completed = mini.score("braces")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert all(case["failure"] is None for case in json.loads(mini.results_file("braces").read_text())["cases"])
    mini.command_submission("typo", "cp {input} {ouptut}")
    with pytest.raises(SubmissionError, match=r"unknown placeholder \{ouptut\}.*write \{\{ouptut\}\} for a literal"):
        load_submission("typo")


@pytest.mark.parametrize("content, problem", [
    (b"PAR1\x15\x04\x15\x00\x00truncated", "a Parquet file; cordbench results files are JSON"),
    (b'{"schema_version": 2, "submission": "x", "cases": [', "not JSON"),
])
def test_a_truncated_or_parquet_results_file_is_named(tmp_path, content, problem):
    """Before: `cannot read results file ('utf-8' codec can't decode byte 0x8d ...)` for a Parquet file."""
    from typer.testing import CliRunner

    from benchmark.cli import app

    bad = tmp_path / "results.json"
    bad.write_bytes(content)
    result = CliRunner().invoke(app, ["gate", "--candidate", str(bad), "--baseline", str(bad)])
    output = " ".join(result.output.split())
    assert result.exit_code == 2 and f"{bad}: cannot read results file: {problem}" in output, output


def test_a_very_long_submission_name_crashes_nothing(tmp_path, monkeypatch):
    """Before: a results file naming a 300-character submission crashed the leaderboard (`File name too long`
    when it looked for a built-in submission of that name); `gate --candidate <such a name>` too."""
    from streamlit.testing.v1 import AppTest
    from typer.testing import CliRunner

    from benchmark.cli import app
    from benchmark.evaluation.results import write_results
    from factories import make_case, make_results

    long_name = "a" * 300
    cases = [make_case("gmchallenge", f"sub-0{index}", 0.8) for index in range(3)]
    write_results(tmp_path / "subs" / "long" / "results" / "synthetic_f00dfeed1234.json", make_results(long_name, cases))
    write_results(tmp_path / "subs" / "short" / "results" / "synthetic_f00dfeed1234.json", make_results("short", cases))
    monkeypatch.setenv("CORDBENCH_RESULTS_DIRS", str(tmp_path / "subs"))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "leaderboard" / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception, [error.value for error in at.exception]
    table = at.dataframe[0].value
    assert list(table["submission"]) == ["short"]
    gate = CliRunner().invoke(app, ["gate", "--candidate", "b" * 300, "--baseline", "short", "--suite", "real-mini"])
    assert gate.exit_code == 2 and "error:" in gate.output and gate.exception is None or isinstance(
        gate.exception, SystemExit), gate.output


def test_score_without_a_workspace_is_refused_and_writes_nothing(tmp_path, supplied_zero_masks):
    """Before: `score` in a folder without cordbench.yaml wrote ./work there (docs/execution.md said so,
    benchmark/workspace.py said it should be refused). Now it is refused, as every command that writes."""
    import subprocess
    import sys

    submission = tmp_path / "elsewhere" / "masks-only"
    shutil.copytree(supplied_zero_masks, submission / "masks")
    (submission / "submission.yaml").write_text(yaml.safe_dump({
        "name": "masks-only", "description": "supplied masks", "authors": ["t"], "licence": "MIT",
        "model": {"type": "predictions", "folder": "masks"}, "training": {"datasets": ["gmchallenge"]}}))
    before = tree_digest(submission)
    empty = tmp_path / "not-a-workspace"
    empty.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "CORDBENCH_WORKSPACE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CODE_ROOT), env.get("PYTHONPATH")]))
    completed = subprocess.run([sys.executable, "-m", "benchmark", "score", str(submission), "--suite", "real-mini",
                                "--data-root", str(real_data_root())],
                               capture_output=True, text=True, cwd=empty, env=env, timeout=120)
    output = single_line_error(completed)
    assert completed.returncode == 2 and "`cordbench score` writes files and there is no workspace" in output
    assert list(empty.iterdir()) == [] and tree_digest(submission) == before


SLEEPER = """
import shutil, sys, time
time.sleep(float(sys.argv[3]))
shutil.copyfile(sys.argv[1], sys.argv[2])
"""


def _marker_processes(marker: str) -> list:
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if marker in " ".join(process.info["cmdline"] or []):
                found.append(process)
        except psutil.Error:
            continue
    return found


def _alive(process) -> bool:
    import psutil

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _wait_for(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _leftovers(mini: Mini, tmpdir: Path, owners: set[int]) -> list[str]:
    """Temporary files of atomic writes, workers' temporary folders, anything in TMPDIR, and pids cgroups the
    scorer or its workers (``owners``) made and left (root only)."""
    from benchmark.models.process_cap import stale_cgroups

    left = [str(path) for path in mini.workspace.rglob(".*.tmp")]
    left += [str(path) for owner in owners for path in stale_cgroups(pid=owner)]
    left += [str(path) for path in (mini.workspace / "work" / "tmp").glob("*")] if (
        mini.workspace / "work" / "tmp").is_dir() else []
    return left + [str(path) for path in tmpdir.iterdir()]


@needs_sandbox
@pytest.mark.parametrize("victim, signal_name", [("worker", "SIGKILL"), ("scorer", "SIGINT"),
                                                 ("scorer", "SIGKILL")])
def test_an_interrupted_run_leaves_no_process_and_no_temporary_file(mini, tmp_path, victim, signal_name):
    """Before: Ctrl-C left the sandbox's scratch copy of a test image in TMPDIR (the pool SIGKILLed its worker before
    it could clean up), and kill -9 of a worker could leave a temporary file or a model process behind. A worker
    killed mid-unit: its unit is redone and the run completes. The scorer interrupted (Ctrl-C to its process group)
    or killed: its workers and their models end, nothing temporary is left."""
    import signal
    import subprocess
    import sys

    marker = f"cordbench-test-marker-{os.getpid()}-{victim}-{signal_name}"
    mini.command_submission("sleeper", f"{{python}} run.py {{input}} {{output}} 2 {marker}", script=SLEEPER)
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    command = [sys.executable, "-m", "benchmark", "score", "sleeper", "--suite", "real-mini", "--data-root",
               str(mini.data_root), "--workers", "1", "--shard-size", "3"]
    scorer = subprocess.Popen(command, cwd=mini.workspace, env=mini.env(TMPDIR=str(tmpdir)), start_new_session=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if victim == "worker":  # a unit after the canary (a canary that fails, for any reason, stops its submission)
            _wait_for(lambda: list((mini.workspace / "work" / "units").glob("*/done.json")), 120, "the canary")
        models = _wait_for(lambda: _marker_processes(marker), 120, "the model to run")
        import psutil

        owners = {scorer.pid, *(child.pid for child in psutil.Process(scorer.pid).children(recursive=True))}
        scratch = [*(mini.workspace / "work").rglob("image.nii.gz"), *tmpdir.rglob("image.nii.gz")]
        assert scratch, "the sandbox's scratch copy of the test image exists while the model runs"
        if victim == "worker":
            workers = [child for child in psutil.Process(scorer.pid).children()
                       if "benchmark.execution.worker" in " ".join(child.cmdline())]
            os.kill(workers[0].pid, signal.SIGKILL)
            out, err = scorer.communicate(timeout=300)
            assert scorer.returncode == 0, out + err  # the killed unit was redone
            assert mini.results_file("sleeper").is_file()
        elif signal_name == "SIGINT":
            os.killpg(scorer.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
            scorer.communicate(timeout=60)
            assert scorer.returncode != 0
        else:
            scorer.kill()
            scorer.communicate(timeout=60)
        _wait_for(lambda: not _marker_processes(marker) and not [model for model in models if _alive(model)], 30,
                  "every model process to end")
        _wait_for(lambda: not [process for process in _marker_processes("benchmark.execution.worker")
                               if str(mini.workspace) in " ".join(process.cmdline())], 30, "the workers to end")
        try:
            _wait_for(lambda: not _leftovers(mini, tmpdir, owners), 30, "nothing temporary left")
        except AssertionError:
            raise AssertionError(f"left behind: {_leftovers(mini, tmpdir, owners)}") from None
    finally:
        if scorer.poll() is None:
            os.killpg(scorer.pid, signal.SIGKILL)
            scorer.wait()


