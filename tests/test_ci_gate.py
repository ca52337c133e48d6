"""The project's own regression gate on the synthetic suite, as CI runs it.

A quick nnU-Net model (synth-ms, seed 0) is trained from scratch, scored on every synthetic test split and
gated against the reference results committed in the repository: it must pass. The same model with its
masks eroded by one voxel is scored through the same path and must fail. Takes a few minutes on 2 cores.
"""

from pathlib import Path

import pytest
import yaml

from benchmark.analysis.gate import compare_results, exit_code, gate_markdown
from benchmark.evaluation.results import load_results, results_path
from benchmark.data.splits import load_split

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "submissions" / "nnunet-synthetic-synth-ms-quick"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synthetic_suite):
    from benchmark.training.baselines import train_baselines
    from benchmark.training.convert import convert_suite

    reference = results_path(REFERENCE, "synthetic", load_split("synthetic").version)
    if not reference.exists():
        pytest.fail(f"{reference}: the committed reference results are missing")
    root = tmp_path_factory.mktemp("ci-gate")
    data = synthetic_suite
    convert_suite("synthetic", data_root=data, out=root / "raw", only="specific", progress=False)
    submissions = root / "submissions"
    [submission] = train_baselines("synthetic", raw_root=root / "raw", work_dir=root / "nnunet", only="specific",
                                   datasets=["synth-ms"], seed=0, submissions_root=submissions)
    return data, submissions, submission, load_results(reference)


@pytest.mark.slow
def test_retrained_quick_model_passes_the_gate_against_the_committed_reference(trained):
    from benchmark.evaluation.scoring import score_submission

    data, submissions, submission, reference = trained
    candidate, _ = score_submission(submission.name, "synthetic", data_root=data, submissions_root=submissions,
                                    progress=False)
    own = [case.dice for case in candidate.cases if case.dataset == "synth-ms"]
    assert sum(own) / len(own) >= 0.85  # the specific model on its own test split
    report = compare_results(candidate, reference, metric="dice", margin=0.01, alpha=0.05)
    print(gate_markdown(report))
    assert exit_code(report) == 0, gate_markdown(report)


@pytest.mark.slow
def test_degraded_candidate_fails_the_gate(trained, monkeypatch):
    from benchmark.evaluation.scoring import score_submission

    data, submissions, submission, reference = trained
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent))
    monkeypatch.setenv("CORDBENCH_TEST_NNUNET_MODEL", str(submission.folder / "model"))
    folder = submissions / "eroded"
    folder.mkdir()
    (folder / "submission.yaml").write_text(yaml.safe_dump({
        "name": "eroded", "description": "the synth-ms model with masks eroded by one voxel", "authors": ["ci"],
        "licence": "MIT", "model": {"type": "python", "entrypoint": "model_fixtures:eroded_nnunet"},
        "training": {"datasets": ["synth-ms"]}}))
    # in-process (sandbox=False): the model comes from tests/ and finds the trained folder through the env var
    candidate, _ = score_submission("eroded", "synthetic", data_root=data, submissions_root=submissions,
                                    progress=False, sandbox=False)
    report = compare_results(candidate, reference, metric="dice", margin=0.01, alpha=0.05)
    print(gate_markdown(report))
    assert exit_code(report) == 1
    failing = {verdict.dataset for verdict in report.verdicts if verdict.verdict == "fail"}
    assert "synth-multicontrast" in failing or "synth-mp2rage" in failing or "synth-epi" in failing
