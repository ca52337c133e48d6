"""A new user's path on real data, in a fresh copy of the repository: a dataset registered only in a workspace
(the sct-testing folder under a new id, three participants of whom two are one person), indexed, split,
converted, the built-in threshold baseline scored on it, run on it with `predict`, and its masks scored again as a
`predictions` submission; then the demo's stages on real-mini. Everything runs with the copy's own code, from the
copy's root, with the workspace under work/ as ./run.sh sets it up; afterwards `git status` of the copy is
empty and the package folder and reference submissions hash as before."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

STAGES = """
import sys
from benchmark.cli import app

def run(*args):
    code = app([str(arg) for arg in args], standalone_mode=False)
    if code not in (None, 0):
        raise SystemExit(f"cordbench {' '.join(map(str, args))} exited {code}")

bids, data_root, same_person = sys.argv[1], sys.argv[2], sys.argv[3]
run("init", "work/workspace")
run("datasets", "add", "my-sct", "--root", bids)
path = "work/workspace/datasets/my-sct.yaml"
with open(path, "a") as handle:
    handle.write(same_person)
run("index", bids, "--dataset", "my-sct")
with open("work/workspace/suites/my-suite.yaml", "w") as handle:
    handle.write('''id: my-suite
title: my-sct in-domain, spinegeneric-unf01 out-of-domain
description: a workspace suite
datasets:
  - {id: my-sct, role: in-domain, test_fraction: 0.34}
  - {id: spinegeneric-unf01, role: ood}
''')
overrides = ["--data-root", data_root, "--dataset-dir", f"my-sct={bids}"]
run("splits", "make", "--suite", "my-suite", *overrides)
run("splits", "verify", "--suite", "my-suite", *overrides)
run("convert", "--suite", "my-suite", *overrides, "--workers", "1")
run("score", "threshold-baseline", "--suite", "my-suite", *overrides)

# the same model run with `predict` on both test datasets' folders (no masks needed), then its masks scored as a
# `predictions` submission registered in the workspace: the same per-case values
import os
run("predict", "threshold-baseline", bids, "--out", "work/predicted/my-sct")
run("predict", "threshold-baseline", f"{data_root}/spinegeneric-unf01", "--out", "work/predicted/unf01")
os.makedirs("work/workspace/submissions/my-masks")
derivatives = os.path.abspath("work/predicted/{}/derivatives/cordbench-threshold-baseline")
with open("work/workspace/submissions/my-masks/submission.yaml", "w") as handle:
    handle.write(f'''name: my-masks
description: threshold-baseline masks computed with cordbench predict, supplied as predictions
authors: [a new user]
licence: MIT
model:
  type: predictions
  folders: {{my-sct: "{derivatives.format('my-sct')}", spinegeneric-unf01: "{derivatives.format('unf01')}"}}
training: {{datasets: []}}
''')
run("score", "my-masks", "--suite", "my-suite", *overrides)

# the demo's own code path on real-mini, with training replaced by the built-in threshold baseline (training is
# what makes the demo take 15 minutes; where trained models are registered is tested in test_workspace.py)
import benchmark.demo
from benchmark.data.submissions import load_submission

benchmark.demo.train_models = lambda *args, **kwargs: [load_submission("threshold-baseline")]
run("demo", "--suite", "real-mini", "--data-root", data_root)
"""


def tree_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(folder).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def fresh_copy(target: Path) -> Path:
    """The working tree's files (tracked and not ignored) as a new git checkout: what CI's clone holds."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for relative in filter(None, listed):
        source = REPO / relative
        if source.is_file():
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / relative)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(git + ["init", "-q"], cwd=target, check=True)
    subprocess.run(git + ["add", "-A"], cwd=target, check=True)
    subprocess.run(git + ["commit", "-q", "-m", "copy"], cwd=target, check=True)
    return target


def three_participants(source: Path, target: Path) -> Path:
    """sct-testing as sub-errsm30 plus two copies (sub-errsm31, sub-errsm32) of its T1w and T2*w images."""
    for subject in ("errsm30", "errsm31", "errsm32"):
        for contrast in ("T1w", "T2starw"):
            for folder, tail in (("", ""), ("derivatives/labels/", "_seg-manual")):
                src = source / folder / "sub-errsm30" / "anat" / f"sub-errsm30_{contrast}{tail}.nii.gz"
                dst = target / folder / f"sub-{subject}" / "anat" / f"sub-{subject}_{contrast}{tail}.nii.gz"
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
    (target / "participants.tsv").write_text("participant_id\tpathology\nsub-errsm30\tHC\nsub-errsm31\tHC\n"
                                             "sub-errsm32\tHC\n")
    shutil.copyfile(source / "dataset_description.json", target / "dataset_description.json")
    return target


@pytest.mark.slow  # about 20 s on an idle 2-core machine (a fresh copy, convert, score, the demo's stages)
@pytest.mark.real_data
@pytest.mark.sandbox  # scores threshold-baseline, a command submission
def test_own_dataset_end_to_end_leaves_package_and_repository_unchanged(tmp_path, shared_bids):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    copy = fresh_copy(tmp_path / "repo")
    bids = three_participants(shared_bids / "sct-testing", tmp_path / "bids" / "my-sct-data")
    package_before = tree_hash(copy / "benchmark")
    references_before = tree_hash(copy / "submissions")
    # as ./run.sh does: the workspace is work/workspace (ignored by git), made by the first stage (`init`)
    environment = {**os.environ, "PYTHONPATH": str(copy), "OMP_NUM_THREADS": "1",
                   "CORDBENCH_WORKSPACE": str(copy / "work" / "workspace")}
    environment.pop("nnUNet_raw", None)
    same_person = "same_person:\n- [sub-errsm31, sub-errsm32]\n"
    script = tmp_path / "stages.py"
    script.write_text(textwrap.dedent(STAGES))
    completed = subprocess.run([sys.executable, str(script), str(bids), str(shared_bids), same_person], cwd=copy,
                               env=environment, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]

    ws = copy / "work" / "workspace"
    split = json.loads((ws / "splits" / "my-suite.json").read_text())
    mine = split["datasets"]["my-sct"]
    assert sorted(mine["train"] + mine["test"]) == ["sub-errsm30", "sub-errsm31", "sub-errsm32"]
    assert ("sub-errsm31" in mine["test"]) == ("sub-errsm32" in mine["test"])  # one person, one side
    assert mine["rule"]["same_person"] == [["sub-errsm31", "sub-errsm32"]]
    assert json.loads((ws / "work" / "nnunet_ids.json").read_text()) == {"my-suite": {"base": 600, "size": 2}}
    raw = ws / "work" / "nnUNet_raw"
    assert sorted(path.name for path in raw.glob("Dataset*")) == ["Dataset600_my-suite-aggregated",
                                                                 "Dataset601_my-suite-my-sct"]
    trained = json.loads((raw / "Dataset601_my-suite-my-sct" / "dataset.json").read_text())
    assert trained["numTraining"] == 2 * len(mine["train"])
    results = list((ws / "submissions" / "threshold-baseline" / "results").glob("my-suite_*.json"))
    assert [path.name for path in results] == [f"my-suite_{split['version']}.json"]
    cases = json.loads(results[0].read_text())["cases"]
    by_dataset = {dataset: [case for case in cases if case["dataset"] == dataset] for dataset in ("my-sct", "spinegeneric-unf01")}
    assert len(by_dataset["my-sct"]) == 2 * len(mine["test"]) and len(by_dataset["spinegeneric-unf01"]) == 3
    assert all(0.0 <= case["dice"] <= 1.0 and case["failure"] is None for case in cases)
    # predict wrote BIDS derivatives with a sidecar per mask; scored as supplied predictions they give the same values
    sidecars = sorted((copy / "work" / "predicted" / "my-sct").rglob("*_label-SC_seg.json"))
    assert len(sidecars) == 6 and json.loads(sidecars[0].read_text())["Model"]["Name"] == "threshold-baseline"
    [supplied] = (ws / "submissions" / "my-masks" / "results").glob("my-suite_*.json")
    supplied_results = json.loads(supplied.read_text())
    assert supplied_results["model_type"] == "predictions"
    supplied_dice = {case["case_id"]: case["dice"] for case in supplied_results["cases"]}
    assert supplied_dice == {case["case_id"]: case["dice"] for case in cases}
    assert yaml.safe_load((ws / "datasets" / "my-sct.yaml").read_text())["same_person"] == [["sub-errsm31", "sub-errsm32"]]

    assert list((ws / "submissions" / "threshold-baseline" / "results").glob("real-mini_*.json"))
    assert (ws / "work" / "report" / "real-mini.html").stat().st_size > 10_000
    assert sorted(path.name for path in (ws / "work" / "nnUNet_raw" / "real-mini").iterdir())[0] == \
        "Dataset520_real-mini-aggregated"

    status = subprocess.run(["git", "status", "--porcelain"], cwd=copy, check=True, capture_output=True, text=True)
    assert status.stdout == "", f"the run changed the repository:\n{status.stdout}"
    assert tree_hash(copy / "benchmark") == package_before
    assert tree_hash(copy / "submissions") == references_before
