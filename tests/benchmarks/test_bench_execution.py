"""Execution: planning and merging at benchmark scale, and the local pool's speed-up on inference-bound scoring.

- planning 10 submissions x 10,000 cases into units, and merging their constructed unit outputs into 10 results
  files (target: < 2 s each);
- scoring the synthetic suite with an inference-bound model (sleeps 0.3 s per case) with 1 and then 2 local
  workers (target on 2 cores: >= 1.7x). The serial run is what `cordbench score` did before work units.
Run: pytest tests/benchmarks/test_bench_execution.py --benchmark-enable -s
"""

import os
import time
from pathlib import Path

import pytest
import yaml

from benchmark.execution.api import run_request
from benchmark.execution.merge import merge_group
from benchmark.execution.planner import CaseRef, SubmissionRef, make_plan, plan_score_request, plan_scoring_units
from benchmark.execution.units import MERGE_PART, UnitStore, merge_part_text
from benchmark.evaluation.results import CaseResult

TESTS = Path(__file__).resolve().parents[1]
SUBMISSIONS, CASES, SHARD = 10, 10_000, 25


def constructed(folder_root: Path | None = None):
    refs = [SubmissionRef(name=f"model-{index}", folder=str((folder_root or Path("/x")) / f"model-{index}"),
                          identity=f"{index:064d}") for index in range(SUBMISSIONS)]
    cases = [(f"dataset-{index % 5}", CaseRef(case_id=f"dataset-{index % 5}:sub-{index:05d}/anat/img.nii.gz",
                                              image_sha256=f"{index:064x}")) for index in range(CASES)]
    return refs, sorted(cases, key=lambda pair: pair[0])


def test_plan_10_submissions_x_10000_cases(benchmark):
    refs, cases = constructed()
    groups, units = benchmark(lambda: plan_scoring_units(refs, cases, suite="real-mini", benchmark_version="v1",
                                                         shard_size=SHARD))
    assert sum(len(unit.cases) for unit in units.values()) == SUBMISSIONS * CASES
    if benchmark.stats:  # None with --benchmark-disable (the default run)
        print(f"\nplanned {len(units)} units; mean {benchmark.stats.stats.mean:.3f} s (target < 2 s)")


def write_submission(root: Path, name: str, function: str) -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"name": name, "description": "bench model", "authors": ["t"], "licence": "MIT",
                "model": {"type": "python", "entrypoint": f"execution_fixtures:{function}"}}
    (folder / "submission.yaml").write_text(yaml.safe_dump(manifest))
    return folder


@pytest.mark.slow  # ~10 s of setup: 4,010 unit folders
def test_merge_10_submissions_x_10000_cases(benchmark, tmp_path, monkeypatch):
    import json

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    for index in range(SUBMISSIONS):
        write_submission(tmp_path / "subs", f"model-{index}", "centre_blob")
    refs, cases = constructed(tmp_path / "subs")
    groups, units = plan_scoring_units(refs, cases, suite="real-mini", benchmark_version="v1", shard_size=SHARD)
    plan = make_plan("score", "real-mini", groups)
    store = UnitStore(tmp_path / "work")
    # as a scoring unit writes a row: the person too (benchmark.evaluation.scoring)
    template = CaseResult(case_id="x", dataset="x", subject="sub-01", person="sub-01", contrast="T2w",
                          image_sha256="x",
                          suite_role="in-domain", dataset_in_training=True, subject_in_training=False, dice=0.9,
                          nsd=0.8, hd95=1.5, rve=0.05, csa_error=0.1, runtime_s=0.3).model_dump(mode="json")
    for uid, unit in units.items():  # constructed outputs (plain writes: setup, not measured)
        folder = store.folder(uid)
        folder.mkdir(parents=True)
        (folder / "unit.json").write_text(unit.model_dump_json())
        rows = [{**template, "case_id": case.case_id, "dataset": unit.dataset, "image_sha256": case.image_sha256}
                for case in unit.cases]
        output = {"rows": rows, "index": {}, "sandbox": "none", "inference": {}}  # as a scoring unit writes them
        (folder / MERGE_PART).write_text(merge_part_text(output))
        (folder / "rows.json").write_text(json.dumps(output))
        (folder / "done.json").write_text(json.dumps({"environment": {"python": "3.11"}}))

    def merge_all():
        return [merge_group(store, plan, group, out_path=tmp_path / "out" / f"{group}.json") for group in groups]

    paths = benchmark.pedantic(merge_all, rounds=3, iterations=1)
    assert len(paths) == SUBMISSIONS and len(json.loads(paths[0].read_text())["cases"]) == CASES
    from benchmark.evaluation.results import load_results, write_results
    from benchmark.io import sha256_file

    canonical = write_results(tmp_path / "canonical.json", load_results(paths[0]))
    # compared by digest: pytest's diff of two 10,000-row files takes tens of minutes (difflib is quadratic)
    assert sha256_file(canonical) == sha256_file(paths[0]), "the merged file is not what load + write gives"
    if benchmark.stats:
        print(f"\nmerged {SUBMISSIONS} x {CASES} rows; mean {benchmark.stats.stats.mean:.3f} s (target < 2 s)")


@pytest.mark.slow
def test_local_pool_speedup_on_inference_bound_scoring(benchmark, tmp_path, monkeypatch):
    if benchmark.disabled:  # minutes (the synthetic suite, scored twice): only when benchmarking
        pytest.skip("a speed measurement: run with --benchmark-enable")
    from benchmark.data.synth import generate_suite

    synthetic_data = tmp_path / "synthetic"
    generate_suite(synthetic_data, seed=0, progress=False)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("CORDBENCH_TEST_SLEEP", "0.3")
    monkeypatch.syspath_prepend(str(TESTS))
    write_submission(tmp_path / "subs", "sleepy", "slow_blob")
    timings = {}

    def score(workers: int) -> float:
        plan, units = plan_score_request([tmp_path / "subs" / "sleepy"], "synthetic", data_root=synthetic_data,
                                         shard_size=4, cache_dir=tmp_path / f"cache-{workers}", sandbox=False)
        started = time.perf_counter()
        outcome = run_request(plan, units, workers=workers, progress=False, work=tmp_path / f"work-{workers}")
        assert outcome.written and not outcome.report.failed
        timings[workers] = time.perf_counter() - started
        return timings[workers]

    score(1)
    benchmark.pedantic(score, args=(2,), rounds=1, iterations=1)
    print(f"\n1 worker {timings[1]:.1f} s, 2 workers {timings[2]:.1f} s: {timings[1] / timings[2]:.2f}x "
          "(target >= 1.7x on 2 cores)")
