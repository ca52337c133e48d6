"""Grouping units into SLURM job arrays: the cluster's cap, packing tiny units (benchmark.execution.arrays)."""

from __future__ import annotations

import json

import pytest

from benchmark.execution import arrays
from benchmark.execution.slurm import PackFailed, SlurmExecutor, SlurmProfile, UnitJob, estimated_seconds
from benchmark.execution.units import CaseRef, ScoreUnit, TrainUnit, UnitStore

SCONTROL = """Configuration data as of 2026-12-08T03:00:00
AccountingStorageBackupHost = (null)
MaxArraySize            = 11
MaxJobCount             = 10000
"""


def test_max_array_size_is_read_from_scontrol_show_config():
    assert arrays.parse_max_array_size(SCONTROL) == 11
    assert arrays.parse_max_array_size("MaxJobCount = 10000\n") is None


def test_cluster_max_array_size_falls_back_to_slurms_default_and_says_why(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    size, why = arrays.cluster_max_array_size()
    assert size == arrays.SLURM_DEFAULT_MAX_ARRAY_SIZE == 1001 and "default" in why


def test_units_split_into_as_few_arrays_as_the_cap_allows_in_plan_order():
    uids = [f"u{index:03d}" for index in range(100)]
    groups = arrays.split(arrays.pack(uids, 1), arrays.tasks_per_array(11))
    assert len(groups) == 10 and [len(group) for group in groups] == [11] * 9 + [1]
    assert [uid for group in groups for task in group for uid in task] == uids
    packed = arrays.split(arrays.pack(uids, 3), 11)
    assert len(packed) == 4 and sum(len(group) for group in packed) == 34  # 33 tasks of 3 and one of 1


@pytest.mark.parametrize("estimates, expected", [
    ([0.5] * 100, 50),            # tiny: packed, but still 2 tasks for the 2 slots running at once
    ([20.0] * 100, 15),           # 300 s of work per task
    ([0.5] * 99 + [45.0], 1),     # one unit is not tiny: nothing is packed
    ([0.5] * 99 + [None], 1),     # one unit not measured: nothing is packed
    ([], 1),
])
def test_auto_packing_fills_the_target_but_keeps_the_parallelism(estimates, expected):
    assert arrays.auto_units_per_task(estimates, parallelism=2, pack_below_s=30, pack_target_s=300) == expected


def _score_unit(cases: int, canary_unit: str | None) -> ScoreUnit:
    return ScoreUnit(group="m", submission="/x/m", submission_identity="0" * 64, suite="s", benchmark_version="v",
                     dataset="d", cases=[CaseRef(case_id=f"d:{index}", image_sha256=f"{index:064x}")
                                         for index in range(cases)],
                     canary=canary_unit is None, canary_unit=canary_unit)


def test_estimates_come_from_the_canarys_measured_seconds_per_case(tmp_path):
    store = UnitStore(tmp_path)
    store.save_spec("canary", _score_unit(1, None))
    store.save_spec("rest", _score_unit(4, "canary"))
    store.save_spec("train", TrainUnit(group="t", raw_folder="/r", work_dir="/w", inputs_digest="d"))
    assert estimated_seconds(store, "rest") is None  # the canary has not run
    (store.folder("canary") / "done.json").write_text(json.dumps({"seconds": 2.5}))
    assert estimated_seconds(store, "rest") == 10.0
    assert estimated_seconds(store, "train") is None and estimated_seconds(store, "missing") is None


def test_profile_cap_lowers_the_clusters(monkeypatch, tmp_path):
    monkeypatch.setattr(arrays, "cluster_max_array_size", lambda: (1001, "scontrol show config"))
    assert SlurmExecutor(SlurmProfile(max_array_size=120), tmp_path).tasks_per_array() == 120
    assert SlurmExecutor(SlurmProfile(), tmp_path).tasks_per_array() == 1001
    assert SlurmExecutor(SlurmProfile(units_per_task=4), tmp_path).units_per_task(UnitStore(tmp_path), ["a"]) == 4


def test_a_packed_task_runs_every_unit_and_names_each_failure(tmp_path, monkeypatch):
    ran = []

    def fake_run_unit(work, uid):
        ran.append(uid)
        if uid == "b":
            raise ValueError("bad input")
        return "done"

    monkeypatch.setattr("benchmark.execution.units.run_unit", fake_run_unit)
    monkeypatch.setattr("os.register_at_fork", lambda **kwargs: None)
    monkeypatch.setattr("benchmark.execution.worker.limit_threads", lambda threads: None)
    with pytest.raises(PackFailed, match=r"^unit b: ValueError: bad input$"):
        UnitJob(str(tmp_path), ["a", "b", "c"], 1)()
    assert ran == ["a", "b", "c"]
    assert UnitJob(str(tmp_path), "a", 1).uids == ["a"]
