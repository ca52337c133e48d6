"""Work units: stable plans, deterministic merge, the local pool (2 workers = serial bytes, kill -9 -> rerun),
shard commands, canary stop, a unit that fails twice."""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from benchmark.cli import app
from benchmark.execution.api import run_request, shard_commands
from benchmark.execution.merge import MergeError, merge_group
from benchmark.execution.planner import (CaseRef, SubmissionRef, load_plan, make_plan, plan_path,
                                         plan_score_request, plan_scoring_units, save_plan)
from benchmark.execution.units import UnitStore, unit_id
from benchmark.evaluation.results import CaseResult

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
SUITE = "real-mini"
FIXED_TIME = "1700000000"  # SOURCE_DATE_EPOCH for comparisons across separate work folders


@pytest.fixture
def fixtures_importable(monkeypatch, tmp_path):
    """Worker processes import the test models from tests/ (PYTHONPATH is passed on to them). The test folder is
    the workspace: predictions cached by one run are reused by another only under the same workspace's seal key
    (benchmark/seals.py)."""
    from benchmark.workspace import ENV_WORKSPACE, init_workspace

    monkeypatch.syspath_prepend(str(TESTS))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", FIXED_TIME)
    monkeypatch.setenv(ENV_WORKSPACE, str(init_workspace(tmp_path).root))


def write_submission(root: Path, name: str, function: str) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    manifest = {"name": name, "description": "test model", "authors": ["t"], "licence": "MIT",
                "model": {"type": "python", "entrypoint": f"execution_fixtures:{function}"},
                "training": {"datasets": ["gmchallenge"]}}
    (folder / "submission.yaml").write_text(yaml.safe_dump(manifest))
    shutil.copyfile(TESTS / "execution_fixtures.py", folder / "execution_fixtures.py")  # importable in the sandbox
    return folder


def refs(count: int) -> list[SubmissionRef]:
    return [SubmissionRef(name=f"model-{index}", folder=f"/x/model-{index}", identity=f"{index:064d}")
            for index in range(count)]


def constructed_cases(per_dataset: dict[str, int]) -> list[tuple[str, CaseRef]]:
    return [(dataset, CaseRef(case_id=f"{dataset}:sub-{index:05d}/anat/img.nii.gz", image_sha256=f"{index:064x}"))
            for dataset, count in per_dataset.items() for index in range(count)]


# ------------------------------------------------------------------------------------------ planning
def test_plan_puts_the_canary_first_and_shards_each_dataset_in_order():
    cases = constructed_cases({"a": 6, "b": 3})
    groups, units = plan_scoring_units(refs(2), cases, suite=SUITE, benchmark_version="v1", shard_size=2)
    first = groups["model-0"]
    assert units[first[0]].canary and [case.case_id for case in units[first[0]].cases] == [cases[0][1].case_id]
    layout = [(units[uid].dataset, len(units[uid].cases)) for uid in first[1:]]
    assert layout == [("a", 2), ("a", 2), ("a", 1), ("b", 2), ("b", 1)]
    merged_order = [case.case_id for uid in first for case in units[uid].cases]
    assert merged_order == [case.case_id for _, case in cases]
    assert all(units[uid].canary_unit == first[0] for uid in first[1:])
    assert set(groups["model-0"]).isdisjoint(groups["model-1"])


def test_unit_ids_are_stable_and_change_only_with_their_inputs():
    cases = constructed_cases({"a": 6})
    groups, _ = plan_scoring_units(refs(1), cases, suite=SUITE, benchmark_version="v1", shard_size=2,
                                   data_root="/one/place")
    again, _ = plan_scoring_units(refs(1), cases, suite=SUITE, benchmark_version="v1", shard_size=2,
                                  data_root="/another/place")  # where the data are is not an input
    assert groups == again
    changed = list(cases)
    changed[5] = ("a", CaseRef(case_id=cases[5][1].case_id, image_sha256="f" * 64))
    edited, _ = plan_scoring_units(refs(1), changed, suite=SUITE, benchmark_version="v1", shard_size=2)
    assert edited["model-0"][:-1] == groups["model-0"][:-1] and edited["model-0"][-1] != groups["model-0"][-1]
    _, units = plan_scoring_units(refs(1), cases, suite=SUITE, benchmark_version="v1", shard_size=2)
    assert all(unit_id(unit) == uid for uid, unit in units.items())  # the planner's fast path = the definition


def test_saved_plan_keeps_its_creation_time(tmp_path, monkeypatch):
    store = UnitStore(tmp_path)
    groups, units = plan_scoring_units(refs(1), constructed_cases({"a": 3}), suite=SUITE, benchmark_version="v1")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1600000000")
    first = save_plan(store, make_plan("score", SUITE, groups), units)
    assert first.created_utc == "2020-09-13T12:26:40+00:00"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert save_plan(store, make_plan("score", SUITE, groups), units).created_utc == first.created_utc
    assert load_plan(plan_path(tmp_path, first.request_id)) == first


# ------------------------------------------------------------------------------------------ merge
def row(case: CaseRef, dataset: str, dice: float) -> dict:
    subject = case.case_id.split(":")[1].split("/")[0]
    return CaseResult(case_id=case.case_id, dataset=dataset, subject=subject, person=subject, contrast="T2w", image_sha256=case.image_sha256, suite_role="in-domain",
                      dataset_in_training=True, subject_in_training=False, dice=dice, nsd=dice, hd95=1.0, rve=0.1,
                      csa_error=0.2, runtime_s=0.5).model_dump(mode="json")


UNIT_FORMATS = ("merge.txt", "rows.json", "rows.json+rendered")


def finish_constructed_units(store: UnitStore, groups, units, order: list[str], formats=UNIT_FORMATS[:1]) -> None:
    """Unit outputs as a scoring unit writes them (merge.txt and rows.json), or as units written before merge.txt
    existed did: rows.json alone, with or without its rows pre-rendered. ``formats`` is cycled over ``order``."""
    from benchmark.execution.units import MERGE_PART, merge_part_text, render_row
    from benchmark.io import atomic_write_json, atomic_write_text

    for number, uid in enumerate(order):
        unit, unit_format = units[uid], formats[number % len(formats)]
        store.save_spec(uid, unit)
        rows = [row(case, unit.dataset, (int(case.image_sha256, 16) % 97) / 97) for case in unit.cases]
        output = {"rows": rows, "index": {case.case_id: {"image": "i", "label": "l", "prediction": None}
                                          for case in unit.cases}}
        if unit_format == "merge.txt":
            atomic_write_text(store.folder(uid) / MERGE_PART, merge_part_text(output))
        elif unit_format == "rows.json+rendered":
            output["rendered"] = [render_row(case_row) for case_row in rows]
        atomic_write_json(store.folder(uid) / "rows.json", output)
        atomic_write_json(store.folder(uid) / "done.json", {"finished_utc": "x", "environment": {"host": "h"}})


def test_merge_is_byte_identical_whatever_the_shards_and_finishing_order(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", FIXED_TIME)
    folder = write_submission(tmp_path / "subs", "merged", "centre_blob")
    ref = SubmissionRef(name="merged", folder=str(folder), identity="1" * 64)
    cases = constructed_cases({"gmchallenge": 7, "sct-testing": 4})
    outputs = []
    # older units (rows.json only) merge to the same bytes as units with merge.txt, alone or mixed with them
    for shard_size, seed, formats in ((1, 0, UNIT_FORMATS[1:2]), (3, 1, UNIT_FORMATS[:1]), (50, 2, UNIT_FORMATS)):
        store = UnitStore(tmp_path / f"work-{shard_size}")
        groups, units = plan_scoring_units([ref], cases, suite=SUITE, benchmark_version="v1", shard_size=shard_size)
        plan = save_plan(store, make_plan("score", SUITE, groups), units)
        order = list(units)
        random.Random(seed).shuffle(order)
        finish_constructed_units(store, groups, units, order[:-1], formats)
        with pytest.raises(MergeError, match="1 of .* units are not done"):
            merge_group(store, plan, "merged")
        finish_constructed_units(store, groups, units, order[-1:], formats[-1:])
        path = merge_group(store, plan, "merged", out_path=tmp_path / f"results-{shard_size}.json")
        outputs.append(path.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
    # the same bytes as the results writer every other path uses, and a valid results file
    from benchmark.evaluation.results import load_results, write_results

    canonical = write_results(tmp_path / "canonical.json", load_results(tmp_path / "results-1.json"))
    assert canonical.read_bytes() == outputs[0]
    merged = json.loads(outputs[0])
    assert [case["case_id"] for case in merged["cases"]] == [case.case_id for _, case in cases]
    assert merged["created_utc"] == "2023-11-14T22:13:20+00:00"


def test_merge_refuses_a_unit_part_it_cannot_read(tmp_path, monkeypatch):
    from benchmark.execution.units import UnitError

    folder = write_submission(tmp_path / "subs", "merged", "centre_blob")
    ref = SubmissionRef(name="merged", folder=str(folder), identity="1" * 64)
    store = UnitStore(tmp_path / "work")
    groups, units = plan_scoring_units([ref], constructed_cases({"gmchallenge": 3}), suite=SUITE,
                                       benchmark_version="v1", shard_size=5)
    plan = save_plan(store, make_plan("score", SUITE, groups), units)
    finish_constructed_units(store, groups, units, list(units))
    damaged = store.folder(plan.groups["merged"][1]) / "merge.txt"
    damaged.write_text('{"format": 99}\n    {}')
    with pytest.raises(UnitError, match=re.escape(f"{damaged}: line 1 is not a format-1 head")):
        merge_group(store, plan, "merged", out_path=tmp_path / "results.json")


# ------------------------------------------------------------------------------------------ local pool
def score_in_process(root: Path, names: list[str], work: Path, data_root: Path, **options):
    plan, units = plan_score_request([root / name for name in names], SUITE, data_root=data_root,
                                     shard_size=options.pop("shard_size", 25), sandbox=False)
    return run_request(plan, units, work=work, progress=False, **options)


@pytest.mark.real_data
@pytest.mark.slow
def test_two_workers_write_the_same_bytes_as_one_and_shard_commands_too(tmp_path, shared_bids, fixtures_importable,
                                                                        monkeypatch):
    root = tmp_path / "subs"
    write_submission(root, "blob", "centre_blob")
    serial = score_in_process(root, ["blob"], tmp_path / "serial", shared_bids, workers=1, shard_size=7)
    path = serial.written["blob"]
    serial_bytes = path.read_bytes()
    assert len(json.loads(serial_bytes)["cases"]) == 7
    pooled = score_in_process(root, ["blob"], tmp_path / "pooled", shared_bids, workers=2, shard_size=2)
    assert len(pooled.plan.unit_ids()) == 5 and pooled.written["blob"] == path
    assert path.read_bytes() == serial_bytes
    assert all((pooled.store.folder(uid) / "merge.txt").is_file() for uid in pooled.plan.unit_ids())

    # shards: the printed commands, run one by one (in any order), then `cordbench merge`
    monkeypatch.chdir(tmp_path)
    path.unlink()
    argv = ["score", str(root / "blob"), "--suite", SUITE, "--data-root", str(shared_bids), "--shard-size", "3",
            "--no-sandbox", "--executor", "shards"]
    plan, _units = plan_score_request([root / "blob"], SUITE, data_root=shared_bids, shard_size=3, sandbox=False)
    commands = shard_commands(plan, argv)
    assert len(commands) == len(plan.unit_ids()) == 4 and commands[0].endswith("--shard 1/4")
    runner = CliRunner()
    for command in reversed(commands):
        result = runner.invoke(app, shlex.split(command)[1:])
        assert result.exit_code == 0, result.output
        assert not path.exists()
    result = runner.invoke(app, ["merge", *argv[1:-2]])
    assert result.exit_code == 0, result.output
    assert path.read_bytes() == serial_bytes


def unit_pids(store: UnitStore, uids: list[str]) -> list[int]:
    return [json.loads((store.folder(uid) / "running.json").read_text())["pid"] for uid in uids]


def test_one_warm_pool_serves_the_canary_and_the_rest_and_a_dead_idle_worker_is_replaced(tmp_path, shared_bids,
                                                                                         fixtures_importable):
    """The canary and the other units run on the same two worker processes (the pool is not restarted between
    the phases); between two runs of an open executor, an idle worker killed with SIGKILL is replaced."""
    from benchmark.execution.local import LocalExecutor
    from benchmark.execution.runner import execute_plan

    root = tmp_path / "subs"
    write_submission(root, "blob", "centre_blob")
    plan, units = plan_score_request([root / "blob"], SUITE, data_root=shared_bids, shard_size=2, sandbox=False)
    store = UnitStore(tmp_path / "work")
    plan = save_plan(store, plan, units)
    canary, *rest = plan.unit_ids()
    executor = LocalExecutor(workers=2)
    report = execute_plan(store, plan, executor, progress=False)
    assert not report.failed and all(store.is_done(uid) for uid in plan.unit_ids())
    pids = unit_pids(store, plan.unit_ids())
    assert len(set(pids)) == 2 and pids[0] in pids[1:]  # the canary's worker went on with the other units
    from benchmark import kernels

    # each worker pinned (or not) the kernels this process asked for, itself, before loading anything
    assert {store.done_info(uid)["cpu_kernels"] for uid in plan.unit_ids()} == {kernels.current().label}
    assert executor._pool == []  # execute_plan closed the pool

    again = UnitStore(tmp_path / "again")
    plan_again = save_plan(again, plan, units)
    executor.open(again, len(rest))
    first, second = executor._pool
    first.process.kill()
    first.process.wait()
    outcome = executor.run(again, rest)
    executor.close()
    assert outcome == {uid: None for uid in rest}
    assert first.process.pid not in unit_pids(again, rest) and second.process.pid in unit_pids(again, rest)
    assert plan_again.unit_ids() == plan.unit_ids()


@pytest.mark.real_data
@pytest.mark.slow
def test_worker_killed_with_sigkill_is_redone_and_the_bytes_do_not_change(tmp_path, shared_bids, fixtures_importable):
    root = tmp_path / "subs"
    write_submission(root, "slow", "slow_blob")
    work = tmp_path / "work"
    (tmp_path / "cordbench.yaml").write_text("format: 1\n")  # the workspace: units go to its work/
    env = dict(os.environ, CORDBENCH_WORKSPACE=str(tmp_path), CORDBENCH_TEST_SLEEP="2",
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ["PYTHONPATH"]]))
    command = [sys.executable, "-m", "benchmark", "score", str(root / "slow"), "--suite", SUITE, "--data-root",
               str(shared_bids), "--workers", "2", "--shard-size", "3", "--no-sandbox"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    store = UnitStore(work)
    victim = None
    deadline = time.time() + 120
    while victim is None and time.time() < deadline and process.poll() is None:
        for running in store.root.glob("*/running.json") if store.root.is_dir() else []:
            uid = running.parent.name
            spec = json.loads((running.parent / "unit.json").read_text())
            if not spec["canary"] and len(spec["cases"]) >= 2 and not store.is_done(uid):  # >= 4 s left to kill
                victim = uid, json.loads(running.read_text())["pid"]
                break
        time.sleep(0.2)
    assert victim is not None, "no non-canary unit started"
    time.sleep(1.0)
    os.kill(victim[1], signal.SIGKILL)
    output, _ = process.communicate(timeout=240)
    assert process.returncode == 0, output
    failures = store.failures(victim[0])
    assert [entry["reason"] for entry in failures] == ["the unit's worker process was killed by signal 9"]
    assert Path(failures[0]["log"]).is_file() and store.is_done(victim[0])
    path = next((root / "slow" / "results").glob("real-mini_*.json"))
    first = path.read_bytes()
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert rerun.returncode == 0 and "4 unit(s) already done" in rerun.stdout, rerun.stdout + rerun.stderr
    assert path.read_bytes() == first
    # the same bytes as a serial run of the same predictions (from the prediction cache)
    path.unlink()
    serial = score_in_process(root, ["slow"], tmp_path / "serial", shared_bids, workers=1, shard_size=7)
    assert serial.written["slow"].read_bytes() == first


@pytest.mark.real_data
@pytest.mark.slow
def test_canary_failure_stops_that_submission_only_and_a_unit_dying_twice_is_reported(tmp_path, shared_bids,
                                                                                     fixtures_importable):
    root = tmp_path / "subs"
    write_submission(root, "wrong", "wrong_shape")
    write_submission(root, "dies", "dies_on_t1w")
    outcome = score_in_process(root, ["wrong", "dies"], tmp_path / "work", shared_bids, workers=2, shard_size=2)
    store, plan = outcome.store, outcome.plan
    assert list(outcome.report.stopped) == ["wrong"]
    assert outcome.report.stopped["wrong"].endswith("shape-mismatch: model returned (289, 289, 21) for input "
                                                    "(288, 288, 20)")
    assert [store.state(uid) for uid in plan.groups["wrong"][1:]] == ["pending"] * 4  # never started
    dead = [uid for uid in plan.groups["dies"] if store.state(uid) == "failed"]
    assert len(dead) == 1 and list(outcome.report.failed) == dead
    assert [case.case_id.rsplit("_", 1)[1] for case in store.load_spec(dead[0]).cases] == ["T1w.nii.gz",
                                                                                          "T2starw.nii.gz"]
    reasons = [entry["reason"] for entry in store.failures(dead[0])]
    assert reasons == ["the unit's worker process exited with code 3"] * 2
    assert outcome.report.failed[dead[0]].log == Path(store.failures(dead[0])[-1]["log"])
    others = [uid for uid in plan.groups["dies"] if uid != dead[0]]
    assert all(store.is_done(uid) for uid in others)
    assert outcome.written == {} and outcome.incomplete == {"dies": 1}  # "wrong" is stopped, not incomplete
    assert not (root / "dies" / "results").exists()  # never a results file over missing cases


def test_demo_runs_one_unit_per_core_on_cpu_and_one_at_a_time_on_a_gpu(monkeypatch):
    import torch

    from benchmark import demo
    from benchmark.execution.local import default_workers

    assert demo.demo_workers("cpu", None) == default_workers(1)
    assert demo.demo_workers("cpu", 3) == 3
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert demo.demo_workers("cuda", None) == 1
    assert demo.demo_workers("cuda", 2) == 2
