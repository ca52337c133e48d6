"""README "Your own data", run as written, in a fresh copy of the repository and a fresh workspace outside it:

init -> datasets add (two datasets, an OOD-only suite; one with ``desc-`` images and a same-person pair) -> splits
make -> score threshold-baseline (a command submission, in the bubblewrap sandbox) -> predict on both datasets ->
the predicted masks registered and scored as a ``predictions`` submission (per-case Dice equal to the model's) ->
the leaderboard in Chromium opens on the user's version and shows that row first. No file is edited by hand;
afterwards ``git status`` of the copy is empty and the package and reference submissions are unchanged.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from own_data_fixtures import write_anat_dataset, write_epi_dataset
from test_leaderboard_browser import CHROMIUM, CHROMIUM_ARGS, _free_port, stop_server, wait_healthy

pytestmark = [pytest.mark.slow, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    """The shell block of README's "Your own data" section, one command per entry (continuations joined)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Your own data"):]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    joined = re.sub(r"\\\n\s*", " ", block)
    return [line.split("  #")[0].strip() for line in joined.splitlines() if line.strip()]


def _results(workspace: Path, submission: str) -> dict:
    [path] = (workspace / "submissions" / submission / "results").glob("my-suite_*.json")
    return json.loads(path.read_text())


def test_readme_own_data_to_the_leaderboard_in_chromium(tmp_path):
    from benchmark.models.sandbox import sandbox_available

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    if not sandbox_available():
        pytest.skip("bubblewrap (bwrap) cannot run here: the threshold baseline runs in its sandbox")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install it with `apt-get update && apt-get install -y chromium`")
    sync_api = pytest.importorskip("playwright.sync_api")
    from test_workspace_pipeline import fresh_copy, tree_hash

    copy = fresh_copy(tmp_path / "repo")
    package_before, references_before = tree_hash(copy / "benchmark"), tree_hash(copy / "submissions")
    data = tmp_path / "data"
    write_epi_dataset(data / "my-epi")  # *_task-rest_desc-mocomean_bold images; sub-p01 and sub-p01rescan: one person
    write_anat_dataset(data / "my-t2")
    bin_dir = tmp_path / "bin"  # `cordbench` is the copy's own code
    bin_dir.mkdir()
    (bin_dir / "cordbench").write_text(f"#!/bin/sh\nexec {sys.executable} -m benchmark \"$@\"\n")
    (bin_dir / "cordbench").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(copy),
           "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    env.pop(workspace_env := "CORDBENCH_WORKSPACE", None)
    env.pop("CORDBENCH_RESULTS_DIRS", None)

    commands = readme_commands()
    assert len(commands) == 5 and commands[-1] == "cordbench leaderboard", commands
    script = "set -e\n" + "\n".join(command.replace("/data/", f"{data}/") for command in commands[:-1]) + "\n"
    users = tmp_path / "user"  # where the user types the commands: outside the repository
    users.mkdir()
    ran = subprocess.run(["bash", "-c", script], cwd=users, env=env, capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stdout[-4000:] + ran.stderr[-4000:]
    ws = users / "my-ws"
    said = " ".join((ran.stdout + ran.stderr).split())
    assert "my-epi: one person each: sub-p01, sub-p01rescan" in said and "look like one person" not in said
    split = json.loads((ws / "splits" / "my-suite.json").read_text())
    assert {name: entry["role"] for name, entry in split["datasets"].items()} == {"my-epi": "ood", "my-t2": "ood"}
    model = _results(ws, "threshold-baseline")
    assert model["benchmark_version"] == split["version"] and model["sandbox"] == "bubblewrap"
    assert len(model["cases"]) == 5 and all(case["failure"] is None for case in model["cases"])

    # predict on both datasets, register the masks (no manifest written by hand), score them
    def cordbench(*args: str) -> str:
        done = subprocess.run(["cordbench", *args], cwd=ws, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"cordbench {' '.join(args)}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        return done.stdout

    for dataset in ("my-epi", "my-t2"):
        cordbench("predict", "threshold-baseline", str(data / dataset), "--out", str(tmp_path / "predicted" / dataset))
    derivatives = "derivatives/cordbench-threshold-baseline"
    cordbench("submissions", "add-predictions", "my-masks", f"my-epi={tmp_path / 'predicted' / 'my-epi' / derivatives}",
              f"my-t2={tmp_path / 'predicted' / 'my-t2' / derivatives}")
    cordbench("submissions", "check", "my-masks", "--suite", "my-suite")
    cordbench("score", "my-masks", "--suite", "my-suite")
    supplied = _results(ws, "my-masks")
    assert supplied["model_type"] == "predictions" and supplied["benchmark_version"] == split["version"]
    assert {case["case_id"]: case["dice"] for case in supplied["cases"]} == \
        {case["case_id"]: case["dice"] for case in model["cases"]}
    assert any(case["case_id"].endswith("_desc-mocomean_bold.nii.gz") for case in supplied["cases"])
    assert all(case["failure"] is None and 0.5 < case["dice"] < 1 for case in supplied["cases"])

    # 5. the leaderboard, as the README starts it (plus a free port), in Chromium
    port = _free_port()
    log = tmp_path / "leaderboard.log"
    with open(log, "wb") as handle:
        server = subprocess.Popen(["bash", "-c", f"exec {commands[-1]} --port {port}"], cwd=ws, env=env,
                                  stdout=handle, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, server, log, timeout_s=90)
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1920, "height": 1080})
                page.goto(url, wait_until="domcontentloaded")
                page.get_by_text("Leaderboard · Dice · higher is better").wait_for(timeout=90_000)
                page.locator('[role="gridcell"]').first.wait_for(state="attached", timeout=60_000)
                page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
                                       timeout=60_000)
                selector = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').filter(
                    has_text="Benchmark version")
                assert f"my-suite@{split['version']} · workspace · 2 submissions" in selector.inner_html(), \
                    selector.inner_html()
                cells = [text.strip() for text in page.locator('[role="gridcell"]').all_inner_texts()]
                rows = [cells[index:index + 3] for index, text in enumerate(cells)
                        if text in ("my-masks", "threshold-baseline")]
                assert [row[0] for row in rows] == ["my-masks", "threshold-baseline"], cells[:20]
                assert rows[0][1:] == ["workspace", "workspace"]  # model from, results from
                assert rows[1][1:] == ["built-in", "workspace"]
                page.screenshot(path=str(tmp_path / "leaderboard.png"))
            finally:
                browser.close()
    finally:
        stop_server(server)  # bash and `cordbench leaderboard` exec Streamlit: one process

    status = subprocess.run(["git", "status", "--porcelain"], cwd=copy, check=True, capture_output=True, text=True)
    assert status.stdout == "", f"the run changed the repository:\n{status.stdout}"
    assert tree_hash(copy / "benchmark") == package_before
    assert tree_hash(copy / "submissions") == references_before
    assert not (copy / "work").exists()  # the workspace is the user's folder, not the repository's
