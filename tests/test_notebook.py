"""Execute leaderboard/seed_experiment.ipynb with nbclient on constructed results.

The kernel is ``python3``; jupyter_client replaces the kernelspec's ``python`` by the running
interpreter (``sys.executable``), so the notebook runs in this virtual environment (needs ipykernel,
nbclient and nbformat from the ``test`` extra; no ``ipykernel install`` step).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from benchmark.analysis.report import comparison_table, report_cases
from report_fixtures import IN_DOMAIN, SUITE, write_seed_results, seed_results

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "leaderboard" / "seed_experiment.ipynb"


def _outputs_text(notebook) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            data = output.get("data", {})
            parts.append(data.get("text/plain", ""))
            parts.append(data.get("text/html", ""))
    return "\n".join(parts)


@pytest.mark.slow
def test_notebook_reproduces_the_comparison_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results_dir = tmp_path / "results"
    write_seed_results(results_dir)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    monkeypatch.setenv("CORDBENCH_RESULTS_DIR", str(results_dir))
    monkeypatch.setenv("CORDBENCH_SUITE", SUITE)
    monkeypatch.setenv("CORDBENCH_OUTPUT_DIR", str(out_dir))
    monkeypatch.delenv("CORDBENCH_METRIC", raising=False)
    monkeypatch.delenv("CORDBENCH_SEED", raising=False)

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, kernel_name="python3", timeout=300,
                   resources={"metadata": {"path": str(REPO)}}).execute()

    text = _outputs_text(notebook)
    assert f"python: {sys.executable}" in text  # the kernel ran this venv's interpreter
    assert "aggregated better" in text and "specific better" in text
    written = pd.read_csv(out_dir / f"comparison_{SUITE}.csv")
    expected = comparison_table(report_cases(seed_results(), IN_DOMAIN), metric="dice", seed=0)
    pd.testing.assert_frame_equal(written, expected, check_exact=False, rtol=0, atol=1e-12)
    mp2rage = written.set_index("dataset").loc["synth-mp2rage"]
    assert (mp2rage["reference"], mp2rage["difference"]) == ("spec-ms", pytest.approx(0.155, abs=1e-12))
    # the overlays cell ran: no cases_index.json in the fixture, so every chosen case is reported missing
    assert "synth-epi best: synth-epi:sub-10/anat/sub-10_EPI.nii.gz (dice 0.800)" in text
    assert "missing: synth-epi:sub-10/anat/sub-10_EPI.nii.gz: no entry in case_images" in text
