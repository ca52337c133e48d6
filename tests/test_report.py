"""benchmark.analysis.report on constructed seed-experiment results (tests/report_fixtures.py)."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from benchmark.analysis.report import (
    ReportError,
    comparison_table,
    contrast_table,
    figure_titles,
    model_means,
    model_order,
    model_role,
    overlay_cases,
    report_cases,
    select_results,
    write_report,
)
from report_fixtures import AGGREGATED, BASELINE, IN_DOMAIN, OOD, SUITE, VERSION, case_id, seed_results

EXACT_P_ALL_POSITIVE_10 = 2 / 2**10  # exact two-sided Wilcoxon p, 10 distinct positive differences
HOLM_6 = 6 * EXACT_P_ALL_POSITIVE_10  # the four smallest of six p-values adjust to 6 * p (monotone step-down)


@pytest.fixture(scope="module")
def cases() -> pd.DataFrame:
    return report_cases(seed_results(), IN_DOMAIN)


@pytest.fixture(scope="module")
def comparison(cases: pd.DataFrame) -> pd.DataFrame:
    return comparison_table(cases, metric="dice", seed=0).set_index("dataset")


def test_model_roles_from_declared_training_data() -> None:
    assert model_role(IN_DOMAIN, IN_DOMAIN) == "aggregated"
    assert model_role([*IN_DOMAIN, "extra"], IN_DOMAIN) == "aggregated"
    assert model_role(["synth-ms"], IN_DOMAIN) == "specific"
    assert model_role(["synth-ms", "synth-injury"], IN_DOMAIN) == "other"
    assert model_role([], IN_DOMAIN) == "other"


def test_cases_get_roles_and_leaked_rows_are_dropped(cases: pd.DataFrame) -> None:
    assert model_order(cases) == [AGGREGATED, "spec-compression", "spec-injury", "spec-ms", "spec-multicontrast",
                                  BASELINE]
    roles = dict(zip(cases["submission"], cases["model_role"]))
    assert roles[AGGREGATED] == "aggregated" and roles["spec-ms"] == "specific" and roles[BASELINE] == "other"
    assert len(cases) == 6 * 6 * 10 - 1  # spec-ms's leaked synth-ms case k=1 is gone
    assert case_id("synth-ms", 1) not in set(cases.loc[cases["submission"] == "spec-ms", "case_id"])


def test_comparison_in_domain_rows_match_hand_computation(comparison: pd.DataFrame) -> None:
    # aggregated on in-domain: 0.85 + 0.005 k, k = 1..10 -> mean 0.85 + 0.005 * 5.5
    multicontrast = comparison.loc["synth-multicontrast"]
    assert multicontrast["reference"] == "spec-multicontrast"
    assert multicontrast["reference_rule"].startswith("specialist")
    assert (multicontrast["people"], multicontrast["scans"]) == (10, 10)
    assert multicontrast["aggregated_mean"] == pytest.approx(0.8775, abs=1e-12)
    assert multicontrast["reference_mean"] == pytest.approx(0.8775 - 0.055, abs=1e-12)  # agg - 0.01 k
    assert multicontrast["difference"] == pytest.approx(0.055, abs=1e-12)
    assert multicontrast["p"] == pytest.approx(EXACT_P_ALL_POSITIVE_10, abs=1e-15)
    assert multicontrast["p_holm"] == pytest.approx(HOLM_6, abs=1e-15)
    assert multicontrast["verdict"] == "aggregated better"

    compression = comparison.loc["synth-compression"]
    assert compression["difference"] == pytest.approx(-0.055, abs=1e-12)
    assert compression["verdict"] == "specific better"

    injury = comparison.loc["synth-injury"]  # differences +0.01, -0.02, +0.03, ...: mean -0.005, R+ = 25
    assert injury["difference"] == pytest.approx(-0.005, abs=1e-12)
    assert injury["p"] == pytest.approx(866 / 1024, abs=1e-12)  # 2 * P(R+ <= 25) for n = 10
    assert injury["p_holm"] == 1.0 and injury["verdict"] == "no significant difference"

    ms = comparison.loc["synth-ms"]  # identical models; the leaked case is dropped before pairing
    assert ms["people"] == 9 and ms["difference"] == 0.0 and ms["p"] == 1.0
    assert ms["aggregated_mean"] == pytest.approx(0.85 + 0.005 * (2 + 10) / 2, abs=1e-12)


def test_comparison_ood_rows_use_the_best_specific_model(comparison: pd.DataFrame) -> None:
    mp2rage = comparison.loc["synth-mp2rage"]
    assert (mp2rage["aggregated"], mp2rage["reference"]) == (AGGREGATED, "spec-ms")
    assert mp2rage["reference_rule"].startswith("best specific")
    assert mp2rage["aggregated_mean"] == pytest.approx(0.755, abs=1e-12)  # 0.70 + 0.01 * 5.5
    assert mp2rage["reference_mean"] == pytest.approx(0.60, abs=1e-12)
    assert mp2rage["difference"] == pytest.approx(0.155, abs=1e-12)
    assert (mp2rage["reference_low"], mp2rage["reference_high"]) == pytest.approx((0.60, 0.60), abs=1e-12)
    assert mp2rage["difference_low"] < 0.155 < mp2rage["difference_high"]
    assert mp2rage["p_holm"] == pytest.approx(HOLM_6, abs=1e-15) and mp2rage["verdict"] == "aggregated better"

    epi = comparison.loc["synth-epi"]
    assert epi["reference"] == "spec-multicontrast"
    assert epi["aggregated_mean"] == pytest.approx(0.71, abs=1e-12)  # 0.60 + 0.02 * 5.5
    assert epi["difference"] == pytest.approx(0.16, abs=1e-12)
    assert list(comparison.index) == [*sorted(IN_DOMAIN), *sorted(OOD)]


def test_means_and_contrast_tables(cases: pd.DataFrame) -> None:
    means = model_means(cases, metric="dice", seed=0).set_index(["dataset", "submission"])
    assert means.loc[("synth-epi", BASELINE), "mean"] == pytest.approx(0.20)
    assert means.loc[("synth-compression", "spec-compression"), "mean"] == pytest.approx(0.8775 + 0.055, abs=1e-12)
    assert means.loc[("synth-ms", "spec-ms"), "people"] == 9
    contrasts = contrast_table(cases, metric="dice", seed=0).set_index(["contrast", "submission"])
    assert contrasts.loc[("T1w", AGGREGATED), "mean"] == pytest.approx(0.875, abs=1e-12)  # odd k of multicontrast
    assert contrasts.loc[("T1w", AGGREGATED), "people"] == 5
    # T2w: even k of multicontrast (5) + compression, injury, ms (30)
    expected_t2w = (sum(0.85 + 0.005 * k for k in (2, 4, 6, 8, 10)) + 3 * sum(0.85 + 0.005 * k for k in range(1, 11))) / 35
    assert contrasts.loc[("T2w", AGGREGATED), "mean"] == pytest.approx(expected_t2w, abs=1e-12)
    assert contrasts.loc[("UNIT1", "spec-ms"), "mean"] == pytest.approx(0.60)


def test_overlay_cases_are_best_median_worst_of_the_aggregated_model(cases: pd.DataFrame) -> None:
    chosen = overlay_cases(cases, metric="dice")
    mp2rage = chosen[chosen["dataset"] == "synth-mp2rage"]
    assert list(mp2rage["which"]) == ["best", "median", "worst"]
    assert list(mp2rage["case_id"]) == [case_id("synth-mp2rage", k) for k in (10, 6, 1)]
    assert list(mp2rage["value"]) == pytest.approx([0.80, 0.76, 0.71], abs=1e-12)


def test_select_results_refuses_mixed_versions_and_other_suites() -> None:
    results = seed_results()
    with pytest.raises(ReportError, match="no results for suite 'real-mini'.*synthetic"):
        select_results(results, "real-mini")
    other = results[0].model_copy(update={"benchmark_version": "0123456789ab"})
    with pytest.raises(ReportError, match="mix benchmark versions.*0123456789ab.*agg-all"):
        select_results([*results[1:], other, results[0]], SUITE)
    with pytest.raises(ReportError, match=r"several results files for submission\(s\) \['agg-all'\]"):
        select_results([*results, results[0]], SUITE)


# ------------------------------------------------------------------ HTML
def write_niftis(root: Path, k: int, models: list[str]) -> dict:
    """Image, mask and predictions for one synth-mp2rage case (12x12x8, cord-like square in the middle)."""
    affine = np.diag([0.8, 0.8, 3.0, 1.0])
    image = np.full((12, 12, 8), 100.0, dtype=np.float32)
    label = np.zeros((12, 12, 8), dtype=np.uint8)
    label[4:8, 4:8, 2:6] = 1
    image[label > 0] = 400.0
    folder = root / f"case{k}"
    folder.mkdir(parents=True)
    nib.save(nib.Nifti1Image(image, affine), folder / "image.nii.gz")
    nib.save(nib.Nifti1Image(label, affine), folder / "label.nii.gz")
    predictions = {}
    for shift, model in enumerate(models):
        predicted = np.zeros_like(label)
        predicted[4 + shift:8 + shift, 4:8, 2:6] = 1
        nib.save(nib.Nifti1Image(predicted, affine), folder / f"{model}.nii.gz")
        predictions[model] = folder / f"{model}.nii.gz"
    return {"image": folder / "image.nii.gz", "label": folder / "label.nii.gz", "prediction": predictions}


def test_html_is_self_contained_with_every_section(tmp_path: Path) -> None:
    out = write_report(seed_results(), tmp_path / "report.html", suite=SUITE)
    text = out.read_text(encoding="utf-8")
    for title in figure_titles("dice").values():
        assert f"{title}</h2>" in text  # the section heading ...
        assert f'"title":{{"text":"{title}"}}' in text  # ... and the plotly figure's own title
    assert "Dice per model on each out-of-domain dataset" in text
    assert re.findall(r"<script[^>]*\bsrc\s*=", text) == []  # plotly.js is inlined, no CDN
    assert re.findall(r"<link[^>]*href\s*=\s*[\"']https?:", text) == []
    assert text.count("window.PlotlyConfig") == 1  # the library once, not per figure
    assert "No case images were given" in text and case_id("synth-epi", 10) in text
    assert VERSION in text and seed_results()[0].model_sha256 in text
    assert "benchmark/evaluation/metrics.py" in text
    assert "synth-mp2rage</b> (OOD, 10 (10)): agg-all − spec-ms = +0.155 [" in text  # people (scans)
    assert "5. Statistics" in text and "aggregated better" in text and "specific better" in text


def test_report_names_the_cpu_kernels_the_models_were_scored_with(tmp_path: Path) -> None:
    from benchmark.analysis.report.page import render_report

    results = seed_results()
    assert "CPU kernels not recorded.</p>" in render_report(results, suite=SUITE)  # files from before the field
    pinned = [result.model_copy(update={"cpu_kernels": "pinned-avx2"}) for result in results]
    text = render_report(pinned, suite=SUITE)
    assert "test scans), CPU kernels pinned-avx2.</p>" in text and "<th>CPU kernels (scoring)</th>" in text
    mixed = [pinned[0].model_copy(update={"cpu_kernels": "native-avx512"}), *pinned[1:-1], results[-1]]
    assert "CPU kernels native-avx512, pinned-avx2 (1 model(s) not recorded).</p>" in render_report(mixed, suite=SUITE)


def test_overlays_drawn_when_files_exist_and_missing_files_named(tmp_path: Path) -> None:
    models = [AGGREGATED, "spec-ms"]
    case_images = {case_id("synth-mp2rage", k): write_niftis(tmp_path / "img", k, models) for k in (10, 6, 1)}
    # one prediction path that does not exist: drawn without it, and named
    case_images[case_id("synth-mp2rage", 1)]["prediction"]["spec-injury"] = tmp_path / "nowhere.nii.gz"
    text = write_report(seed_results(), tmp_path / "r.html", suite=SUITE, case_images=case_images).read_text("utf-8")
    images = re.findall(r'<img alt="[^"]+" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) == 3
    for encoded in images:
        png = base64.b64decode(encoded)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        width = int.from_bytes(png[16:20], "big")
        assert width > 300  # several panels side by side
    assert f"prediction of spec-injury not found at {tmp_path / 'nowhere.nii.gz'}" in text
    assert f"{case_id('synth-epi', 10)}: no entry in case_images" in text  # the OOD set without images
    assert "no prediction path for threshold-baseline" in text


def test_report_is_deterministic(tmp_path: Path) -> None:
    case_images = {case_id("synth-mp2rage", 10): write_niftis(tmp_path / "img", 10, [AGGREGATED])}
    first = write_report(seed_results(), tmp_path / "a.html", suite=SUITE, case_images=case_images, seed=3)
    second = write_report(seed_results(), tmp_path / "b.html", suite=SUITE, case_images=case_images, seed=3)
    assert first.read_bytes() == second.read_bytes()
    other_seed = write_report(seed_results(), tmp_path / "c.html", suite=SUITE, case_images=case_images, seed=4)
    assert other_seed.read_bytes() != first.read_bytes()  # the bootstrap CIs depend on the seed
