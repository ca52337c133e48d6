"""The SLURM executor against a real one-node SLURM cluster (../shared/tools/slurm-single-node.sh).

Needs root (the script starts munged, slurmctld, slurmd, slurmdbd and MariaDB as background processes, and
apt-installs them on first use); skipped with the reason otherwise. CI runs as root.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import torch

from benchmark.execution.api import run_request
from benchmark.execution.planner import make_plan, plan_score_request, raw_digest
from benchmark.execution.units import TrainUnit, UnitStore, unit_id

from test_execution import FIXED_TIME, REPO, SUITE, TESTS, write_submission

SCRIPT = REPO.parent / "shared" / "tools" / "slurm-single-node.sh"
MAX_ARRAY_SIZE = 11
pytestmark = [pytest.mark.slow]


def free_port_base() -> int:
    """A base port with the next three free (slurmctld, slurmd, slurmdbd, MariaDB)."""
    for base in range(16817, 17817, 10):
        try:
            for port in range(base, base + 4):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    pytest.skip("no four free ports for the SLURM test cluster")


@pytest.fixture(scope="session")
def slurm_cluster():
    """A real SLURM cluster for the session; SLURM_CONF points at it while the tests run."""
    if not SCRIPT.is_file():
        pytest.skip(f"SLURM test cluster script not found at {SCRIPT}")
    if os.geteuid() != 0:
        pytest.skip("the SLURM tests start a real SLURM cluster and need root (CI runs them as root)")
    if shutil.which("sbatch") is None and shutil.which("apt-get") is None:
        pytest.skip("SLURM is not installed and apt-get is not available to install it")
    state = Path(tempfile.mkdtemp(prefix="cbs", dir="/tmp"))  # short: munge/slurm socket paths <= 108 chars
    # a cluster that caps job arrays at 11 tasks (indices 0-10), as sites do (MaxArraySize 1001, often less)
    env = dict(os.environ, SLURM_PORT_BASE=str(free_port_base()), SLURM_EXTRA_CONF=f"MaxArraySize={MAX_ARRAY_SIZE}")
    started = subprocess.run([str(SCRIPT), "start", str(state)], env=env, capture_output=True, text=True,
                             timeout=900)
    if started.returncode != 0:
        pytest.fail(f"could not start the SLURM test cluster in {state}:\n{started.stderr[-3000:]}")
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(state / "etc" / "slurm.conf")
    try:
        yield state
    finally:
        subprocess.run([str(SCRIPT), "stop", str(state)], env=env, capture_output=True, timeout=300)
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def slurm_workspace(tmp_path, monkeypatch, slurm_cluster):
    """A workspace whose cordbench.yaml has a SLURM profile; the test models importable by the jobs."""
    (tmp_path / "cordbench.yaml").write_text(
        "executors:\n  slurm-test:\n    cpus_per_task: 1\n    time: '00:30:00'\n    array_parallelism: 2\n"
        "    mem: 1G\n    signal_delay_s: 5\n    units_per_task: 1\n"
        "  slurm-packed:\n    cpus_per_task: 1\n    time: '00:30:00'\n    array_parallelism: 2\n    mem: 1G\n")
    monkeypatch.setenv("CORDBENCH_WORKSPACE", str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", FIXED_TIME)
    monkeypatch.syspath_prepend(str(TESTS))
    return tmp_path


def squeue_ids() -> list[str]:
    completed = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, check=True)
    return completed.stdout.split()


def wait_until(condition, timeout_s: float, what: str, poll_s: float = 0.5) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if condition():
            return
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


@pytest.mark.real_data
@pytest.mark.sandbox  # threshold-baseline is a command submission
def test_threshold_baseline_through_slurm_is_byte_identical_to_the_local_serial_run(slurm_workspace, shared_bids):
    root = slurm_workspace / "subs"
    shutil.copytree(REPO / "submissions" / "threshold-baseline", root / "threshold-baseline",
                    ignore=shutil.ignore_patterns("results", "predictions", "cases_index*"))
    plan, units = plan_score_request([root / "threshold-baseline"], SUITE, data_root=shared_bids, shard_size=3)
    on_slurm = run_request(plan, units, executor="slurm-test", progress=False, work=slurm_workspace / "w-slurm")
    assert on_slurm.report.failed == {} and on_slurm.incomplete == {}
    path = on_slurm.written["threshold-baseline"]
    slurm_bytes = path.read_bytes()
    jobs = json.loads((slurm_workspace / "w-slurm" / "slurm" / plan.request_id / "jobs.json").read_text())
    assert sorted(jobs) == sorted(plan.unit_ids())  # every unit ran as a SLURM array task
    assert all(UnitStore(slurm_workspace / "w-slurm").done_info(uid)["host"] for uid in plan.unit_ids())
    path.unlink()
    local = run_request(plan, units, executor="local", workers=1, progress=False, work=slurm_workspace / "w-local")
    assert local.written["threshold-baseline"].read_bytes() == slurm_bytes
    results = json.loads(slurm_bytes)
    assert len(results["cases"]) == 7 and results["created_utc"] == "2023-11-14T22:13:20+00:00"
    dice = {case["case_id"].rsplit("/", 1)[1]: case["dice"] for case in results["cases"]}
    assert dice["sub-errsm30_T2starw.nii.gz"] == pytest.approx(0.764763)  # the committed results' value


@pytest.mark.real_data
def test_cancelled_array_task_is_the_only_unit_a_rerun_does(slurm_workspace, shared_bids, monkeypatch):
    # scancel sends SIGTERM, which submitit's job bypasses, then SIGKILL after the cluster's KillWait (5 s): the
    # victim must have more than that left to run when it is cancelled, so it is a unit of two cases (8 s)
    monkeypatch.setenv("CORDBENCH_TEST_SLEEP", "4")
    root = slurm_workspace / "subs"
    write_submission(root, "slow", "slow_blob")
    work = slurm_workspace / "work"
    plan, units = plan_score_request([root / "slow"], SUITE, data_root=shared_bids, shard_size=2, sandbox=False)
    submitted = run_request(plan, units, executor="slurm-test", wait=False, progress=False, work=work)
    assert len(submitted.report.submitted_jobs) == 2  # the canary array, then the rest (after it)
    store = UnitStore(work)
    rest = [uid for uid in plan.groups["slow"][1:] if len(units[uid].cases) == 2]
    assert rest, "real-mini has no unit of two cases at shard size 2"
    wait_until(lambda: any(store.state(uid) == "running" for uid in rest), 120, "a two-case unit to start",
               poll_s=0.1)
    victim = next(uid for uid in rest if store.state(uid) == "running")
    job = json.loads((work / "slurm" / plan.request_id / "jobs.json").read_text())[victim]
    subprocess.run(["scancel", job], check=True)
    wait_until(lambda: not set(squeue_ids()) & set(submitted.report.submitted_jobs)
               and not any(job_id.startswith(tuple(submitted.report.submitted_jobs)) for job_id in squeue_ids()),
               180, "the other array tasks to end")
    assert not store.is_done(victim) and not (store.folder(victim) / "rows.json").exists()
    assert [store.is_done(uid) for uid in plan.unit_ids()].count(True) == len(plan.unit_ids()) - 1
    rerun = run_request(plan, units, executor="slurm-test", progress=False, work=work)
    assert rerun.report.skipped == len(plan.unit_ids()) - 1 and rerun.report.failed == {}
    rerun_jobs = json.loads((work / "slurm" / plan.request_id / "jobs.json").read_text())
    assert rerun_jobs[victim] != job and all(rerun_jobs[uid] == old for uid, old in
                                               json.loads(json.dumps(rerun_jobs)).items() if uid != victim)
    slurm_bytes = rerun.written["slow"].read_bytes()
    rerun.written["slow"].unlink()
    local = run_request(plan, units, executor="local", workers=1, progress=False, work=slurm_workspace / "local")
    assert local.written["slow"].read_bytes() == slurm_bytes


def test_requeued_training_unit_resumes_from_its_checkpoint(slurm_workspace, tiny_nnunet):
    from nnunet_testdata import preprocessed_copy

    raw, preprocessed = tiny_nnunet
    preprocessed_copy(preprocessed, slurm_workspace / "nnunet")  # the job trains; planning is tested elsewhere
    unit = TrainUnit(group="tiny", raw_folder=str(raw), work_dir=str(slurm_workspace / "nnunet"),
                     inputs_digest=raw_digest(raw), epochs=10, iterations=3, device="cpu", num_threads=1)
    uid = unit_id(unit)
    plan = make_plan("train", "tiny", {"tiny": [uid]})
    work = slurm_workspace / "work"
    submitted = run_request(plan, {uid: unit}, executor="slurm-test", wait=False, progress=False, work=work)
    job = submitted.report.submitted_jobs[0]
    fold = slurm_workspace / "nnunet" / "nnUNet_results"

    def epochs_done() -> int:
        latest = list(fold.glob("*/*/fold_all/checkpoint_latest.pth"))
        if not latest:
            return 0
        try:
            return int(torch.load(latest[0], map_location="cpu", weights_only=True)["current_epoch"])
        except Exception:  # being replaced right now
            return 0

    store = UnitStore(work)

    def three_epochs() -> bool:
        if job not in squeue_ids():
            log = "\n".join(path.read_text()[-3000:] for path in (work / "slurm").rglob("*_log.err"))
            raise AssertionError(f"the training job ended early:\n{log}")
        return epochs_done() >= 3

    wait_until(three_epochs, 420, "three epochs of training")
    signalled_at = time.time()
    subprocess.run(["scancel", "--signal=USR2", job], check=True)  # what SLURM sends before pre-emption
    wait_until(lambda: store.is_done(uid), 300, "the requeued training to finish")
    from benchmark import kernels

    # the job pinned the kernels this process asked for (exported explicitly), on its node, before torch computed
    assert store.done_info(uid)["cpu_kernels"] == kernels.current().label
    run_record = json.loads(next(fold.glob("*/*/fold_all/cordbench_run.json")).read_text())
    assert run_record["cpu_kernels"] == kernels.current().label
    final = torch.load(next(fold.glob("*/*/fold_all/checkpoint_final.pth")), map_location="cpu", weights_only=True)
    starts = final["logging"]["epoch_start_timestamps"]
    assert final["current_epoch"] == 10 and len(starts) == 10
    resumed_at = next(index for index, start in enumerate(starts) if start > signalled_at)
    assert resumed_at >= 3  # epochs before the signal were kept, not trained again
    log = next((work / "slurm" / plan.request_id).glob(f"{job}*/*_log.err")).read_text()
    assert "Caught signal SIGUSR2" in log and "this job is preempted" in log, log[-2000:]
    assert "DUE TO JOB REQUEUE" in log, log[-2000:]  # submitit requeued the same job id


def _arrays_of(jobs: dict[str, str]) -> dict[str, set[str]]:
    """Array job id -> its task ids, from jobs.json (unit id -> '<array>_<index>')."""
    arrays: dict[str, set[str]] = {}
    for job in jobs.values():
        array, _, index = job.partition("_")
        arrays.setdefault(array, set()).add(index)
    return arrays


@pytest.mark.real_data
def test_units_beyond_the_clusters_array_cap_go_into_few_arrays_with_the_same_bytes(slurm_workspace, shared_bids):
    """98 units (14 submissions x 7 cases, one case per unit) on a cluster with MaxArraySize=11: 14 canaries in 2
    arrays, the other 84 units in 8 (sbatch refuses an array of more than 11 tasks); with auto packing the tiny
    units share tasks. Both merge to the bytes of the local run."""
    root = slurm_workspace / "subs"
    folders = [write_submission(root, f"blob-{index:02d}", "centre_blob") for index in range(14)]
    plan, units = plan_score_request(folders, SUITE, data_root=shared_bids, shard_size=1, sandbox=False)
    assert len(plan.unit_ids()) == 98

    unpacked = run_request(plan, units, executor="slurm-test", progress=False, work=slurm_workspace / "w-cap")
    assert unpacked.report.failed == {} and unpacked.incomplete == {}
    jobs = json.loads((slurm_workspace / "w-cap" / "slurm" / plan.request_id / "jobs.json").read_text())
    arrays = _arrays_of(jobs)
    assert sorted(jobs) == sorted(plan.unit_ids()) and len(set(jobs.values())) == 98  # one unit per task
    assert len(arrays) == 10 and max(len(tasks) for tasks in arrays.values()) == MAX_ARRAY_SIZE
    assert max(int(index) for tasks in arrays.values() for index in tasks) < MAX_ARRAY_SIZE
    on_slurm = {name: path.read_bytes() for name, path in unpacked.written.items()}
    for path in unpacked.written.values():
        path.unlink()

    packed = run_request(plan, units, executor="slurm-packed", progress=False, work=slurm_workspace / "w-packed")
    assert packed.report.failed == {} and packed.incomplete == {}
    packed_jobs = json.loads((slurm_workspace / "w-packed" / "slurm" / plan.request_id / "jobs.json").read_text())
    # the canaries ran one per task (nothing measured yet); after them each task ran several tiny units
    canaries = set(plan.canaries())
    rest_tasks = {job for uid, job in packed_jobs.items() if uid not in canaries}
    assert len({packed_jobs[uid] for uid in canaries}) == 14 and len(rest_tasks) < 84 / 2
    assert {name: path.read_bytes() for name, path in packed.written.items()} == on_slurm
    for path in packed.written.values():
        path.unlink()

    local = run_request(plan, units, executor="local", workers=1, progress=False, work=slurm_workspace / "w-local")
    assert {name: path.read_bytes() for name, path in local.written.items()} == on_slurm
    assert len(on_slurm) == 14
