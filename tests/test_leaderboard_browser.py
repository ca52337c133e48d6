"""The leaderboard in a real Chromium: main table -> dataset view -> compare view.

Needs Chromium at /usr/bin/chromium (``apt-get update && apt-get install -y chromium``); Playwright's
own browser download is never used. Screenshots go to tests/artifacts/ and, with
CORDBENCH_UPDATE_DOCS_SCREENSHOTS=1, to docs/img/leaderboard_{main,dataset,compare}.png.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from leaderboard import data as board_data, tables
from leaderboard_fixtures import DEMO_DATASETS, write_demo_results

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "tests" / "artifacts"
DOCS_IMG = REPO / "docs" / "img"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]
HEALTH_TIMEOUT_S = 60
VIEWPORT = {"width": 1920, "height": 1080}
MAX_SCREENSHOT_BYTES = 400 * 1024


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory) -> Path:
    return write_demo_results(tmp_path_factory.mktemp("leaderboard") / "submissions")


@pytest.fixture(scope="module")
def server(results_dir, tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install it with `apt-get update && apt-get install -y chromium`")
    port = _free_port()
    log_path = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    env = {**os.environ, "CORDBENCH_RESULTS_DIRS": str(results_dir)}
    env.pop("CORDBENCH_DATA_ROOT", None)
    env.pop("CORDBENCH_CASES_INDEX", None)
    command = [
        sys.executable, "-m", "streamlit", "run", str(REPO / "leaderboard" / "app.py"),
        "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port),
        "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, process, log_path)
        yield url
    finally:
        stop_server(process)


def wait_healthy(url: str, process: subprocess.Popen, log_path: Path, timeout_s: float = HEALTH_TIMEOUT_S) -> None:
    """Until Streamlit's health endpoint answers ok; fails with the end of its log if it exits or times out."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200 and response.read().strip() == b"ok":
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"streamlit did not become healthy within {timeout_s} s:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.5)


def stop_server(process: subprocess.Popen) -> None:
    """SIGTERM (Streamlit stops cleanly), SIGKILL after 15 s."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


def _screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"leaderboard_{name}.png"
    page.screenshot(path=str(path))
    assert path.stat().st_size < MAX_SCREENSHOT_BYTES, f"{path} is {path.stat().st_size} bytes"
    if os.environ.get("CORDBENCH_UPDATE_DOCS_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        (DOCS_IMG / path.name).write_bytes(path.read_bytes())


def _set_sidebar(page, expanded: bool) -> None:
    """Collapse / expand the sidebar (the main-table screenshot shows every column without it)."""
    if expanded:
        page.locator('[data-testid="stExpandSidebarButton"]').click()
        page.get_by_text("Dataset view", exact=True).wait_for(timeout=10_000)
    else:
        page.locator('[data-testid="stSidebar"]').hover()
        page.locator('[data-testid="stSidebarCollapseButton"] button').click()
        page.locator('[data-testid="stExpandSidebarButton"]').wait_for(timeout=10_000)
    page.wait_for_timeout(800)


def _grid_texts(page, expected: str | None = None, timeout_s: float = 30.0) -> list[str]:
    """The dataframe's cell texts; with ``expected``, once a cell says it (the grid may render after the plots)."""
    deadline = time.monotonic() + timeout_s
    while True:
        cells = page.locator('[role="gridcell"]')
        texts = [cells.nth(i).inner_text().strip() for i in range(cells.count())]
        if expected is None or expected in texts or time.monotonic() > deadline:
            return texts
        page.wait_for_timeout(250)


def _settle(page) -> None:
    """Wait until Streamlit is not running the script any more."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=30_000
    )
    page.wait_for_timeout(800)


def test_main_dataset_and_compare_views(server, results_dir):
    sync_api = pytest.importorskip("playwright.sync_api")
    loaded = board_data.load_results_dirs([results_dir])
    table = tables.build_main_table(loaded.cases).set_index("submission")
    first_dataset = next(iter(sorted(d for d, spec in DEMO_DATASETS.items() if spec[0] == "in-domain")))
    _, summary = tables.dataset_view(loaded.cases, first_dataset)
    _, compare = tables.compare_submissions(loaded.cases, table.index[0], table.index[1])

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(server, wait_until="domcontentloaded")

            # main table
            page.get_by_text("Leaderboard · Dice · higher is better").wait_for(timeout=60_000)
            page.locator('[role="gridcell"]').first.wait_for(state="attached", timeout=30_000)
            _settle(page)
            cells = _grid_texts(page, expected=table.index[-1])
            for submission in table.index:
                assert submission in cells
                assert table.at[submission, "mean rank"] in cells
                assert table.at[submission, "mean in-domain"] in cells
            assert table.at["nnunet-specific-ms", "mean OOD (zero-shot)"] == "incomplete"
            assert cells.count("incomplete") >= 2  # the MS specialist: mean rank and mean OOD
            assert page.get_by_text("nnunet-aggregated: 2 case(s) with subject in training excluded").count() == 1
            _set_sidebar(page, expanded=False)
            _screenshot(page, "main")
            _set_sidebar(page, expanded=True)

            # dataset view
            page.get_by_text("Dataset view", exact=True).click()
            page.get_by_text("Dataset view · Dice · higher is better").wait_for(timeout=30_000)
            page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
            _settle(page)
            ticks = [t.text_content() for t in page.locator(".js-plotly-plot .xtick text").all()]
            assert ticks == summary["submission"].tolist()
            assert page.locator(".js-plotly-plot .legendtext").first.text_content() == "mean ± 95 % CI"
            cells = _grid_texts(page, expected=f"{summary['mean'].iloc[0]:.3f}")
            numbers = [float(c) for c in cells if c.replace(".", "", 1).isdigit()]
            for mean in summary["mean"]:
                assert any(abs(number - round(mean, 3)) < 1e-9 for number in numbers), mean
            _screenshot(page, "dataset")

            # compare view
            page.get_by_text("Compare view", exact=True).click()
            page.get_by_text("Compare view · Dice · higher is better").wait_for(timeout=30_000)
            page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
            _settle(page)
            legend = [t.text_content() for t in page.locator(".js-plotly-plot .legendtext").all()]
            assert legend == [*compare["dataset"], "A = B"]
            epi = compare.set_index("dataset").loc["synth-epi"]
            people = f"{int(epi['people'])} ({int(epi['paired scans'])})"
            cells = _grid_texts(page, expected=people)
            assert people in cells
            assert f"{epi['mean diff (B − A)']:+.3f} [{epi['CI low']:+.3f}, {epi['CI high']:+.3f}]" in cells
            _screenshot(page, "compare")
        finally:
            browser.close()
