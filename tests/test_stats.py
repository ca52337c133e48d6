"""Tests of benchmark.analysis.stats: hand-computed values, scipy cross-checks, determinism, tied ranks."""

from __future__ import annotations

import importlib.util
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from benchmark.analysis.stats import (
    MeanCI,
    bootstrap_mean_ci,
    holm_adjust,
    paired_difference_ci,
    paired_wilcoxon,
    rank_with_ties,
)

ALTERNATIVES = ("two-sided", "less", "greater")
DATA = Path(__file__).resolve().parent / "data"


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_of_a_constant_is_the_constant() -> None:
    ci = bootstrap_mean_ci([0.87] * 25, seed=3)
    assert ci.n == 25
    assert ci.mean == pytest.approx(0.87, abs=1e-15)
    assert ci.low == ci.mean == ci.high


def test_bootstrap_single_value_and_empty() -> None:
    assert bootstrap_mean_ci([0.5]) == MeanCI(0.5, 0.5, 0.5, 1)
    empty = bootstrap_mean_ci([])
    assert empty.n == 0
    assert math.isnan(empty.mean) and math.isnan(empty.low) and math.isnan(empty.high)


def test_bootstrap_two_values_hand_computed() -> None:
    # Resample means of [0, 1] are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4: the 2.5 % and
    # 97.5 % quantiles of 5000 such means are 0 and 1.
    assert bootstrap_mean_ci([0.0, 1.0], seed=0) == MeanCI(0.5, 0.0, 1.0, 2)


def test_bootstrap_is_the_documented_percentile_bootstrap() -> None:
    values = np.array([0.91, 0.88, 0.93, 0.79, 0.90, 0.85, 0.92])
    rng = np.random.default_rng(11)
    means = values[rng.integers(0, values.size, size=(2000, values.size))].mean(axis=1)
    low, high = np.quantile(means, [0.05, 0.95])
    ci = bootstrap_mean_ci(values, confidence=0.90, n_resamples=2000, seed=11)
    assert ci.mean == pytest.approx(6.18 / 7, abs=1e-12)
    assert (ci.low, ci.high) == (pytest.approx(low, abs=1e-15), pytest.approx(high, abs=1e-15))


def test_bootstrap_agrees_with_scipy_and_normal_theory() -> None:
    values = np.random.default_rng(5).normal(0.9, 0.02, size=200)
    ci = bootstrap_mean_ci(values, n_resamples=20000, seed=1)
    reference = scipy.stats.bootstrap(
        (values,), np.mean, method="percentile", n_resamples=20000, rng=np.random.default_rng(2)
    ).confidence_interval
    width = ci.high - ci.low
    assert ci.low == pytest.approx(reference.low, abs=0.05 * width)
    assert ci.high == pytest.approx(reference.high, abs=0.05 * width)
    # normal theory: mean +- 1.96 * s / sqrt(n)
    half = 1.959964 * values.std(ddof=1) / math.sqrt(values.size)
    assert width == pytest.approx(2 * half, rel=0.05)


def test_bootstrap_deterministic_for_a_seed() -> None:
    values = np.random.default_rng(0).uniform(size=30)
    assert bootstrap_mean_ci(values, seed=7) == bootstrap_mean_ci(values, seed=7)
    assert bootstrap_mean_ci(values, seed=7) != bootstrap_mean_ci(values, seed=8)


def test_bootstrap_rejects_non_finite_and_bad_confidence() -> None:
    with pytest.raises(ValueError, match="finite"):
        bootstrap_mean_ci([0.9, float("nan")])
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_mean_ci([0.9, 0.8], confidence=1.0)


def test_paired_difference_ci_resamples_pairs() -> None:
    a = [0.90, 0.85, 0.95, 0.80]
    b = [0.88, 0.83, 0.93, 0.78]  # every difference is +0.02: pairing gives a point interval
    ci = paired_difference_ci(a, b, seed=0)
    assert ci.n == 4
    assert ci.mean == pytest.approx(0.02, abs=1e-12)
    assert ci.low == pytest.approx(0.02, abs=1e-12) and ci.high == pytest.approx(0.02, abs=1e-12)
    noisy = np.add(a, [0.01, -0.01, 0.03, 0.0])
    assert paired_difference_ci(noisy, b, seed=4) == bootstrap_mean_ci(noisy - np.asarray(b), seed=4)
    with pytest.raises(ValueError, match="equal lengths"):
        paired_difference_ci([0.9, 0.8], [0.9])


# --------------------------------------------------------------------------- Wilcoxon


def test_wilcoxon_exact_small_example_by_hand() -> None:
    # d = a - b = [0.5, 1.5, -1.0, 2.5, 3.0]; ranks of |d|: 1, 3, 2, 4, 5; R+ = 13, R- = 2.
    # Of the 32 sign patterns, R- <= 2 for {}, {1}, {2}: P(R+ >= 13) = 3/32; P(R+ <= 13) = 30/32.
    a = [1.5, 2.5, 0.0, 3.5, 4.0]
    b = [1.0, 1.0, 1.0, 1.0, 1.0]
    assert paired_wilcoxon(a, b, alternative="greater") == pytest.approx(3 / 32, abs=1e-15)
    assert paired_wilcoxon(a, b, alternative="less") == pytest.approx(30 / 32, abs=1e-15)
    assert paired_wilcoxon(a, b) == pytest.approx(6 / 32, abs=1e-15)
    assert paired_wilcoxon(b, a, alternative="less") == pytest.approx(3 / 32, abs=1e-15)


def test_wilcoxon_ties_and_zero_by_hand() -> None:
    # d = [1, 1, -2, 3, 0]: the zero is dropped; mid-ranks 1.5, 1.5, 3, 4; R+ = 7.
    # Subset sums of {1.5, 1.5, 3, 4} that are >= 7: {3,4}=7, {1.5,1.5,4}=7, {1.5,3,4}=8.5 (x2),
    # all=10 -> 5 of 16 patterns.
    d = [1.0, 1.0, -2.0, 3.0, 0.0]
    zeros = [0.0] * 5
    assert paired_wilcoxon(d, zeros, alternative="greater") == pytest.approx(5 / 16, abs=1e-15)
    assert paired_wilcoxon(d, zeros) == pytest.approx(10 / 16, abs=1e-15)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = scipy.stats.wilcoxon(d, zeros, alternative="greater").pvalue
    assert reference == pytest.approx(5 / 16, abs=1e-12)


def test_wilcoxon_normal_approximation_by_hand() -> None:
    # 60 differences d_i = i (i = 1..60), the first 20 negative: R+ = 21 + ... + 60 = 1620,
    # E = 60*61/4 = 915, Var = 60*61*121/24 = 18452.5, z = 705 / sqrt(18452.5).
    d = np.arange(1, 61, dtype=float)
    d[:20] *= -1
    z = 705 / math.sqrt(18452.5)
    expected_greater = 0.5 * math.erfc(z / math.sqrt(2))
    assert paired_wilcoxon(d, np.zeros(60), alternative="greater") == pytest.approx(expected_greater, rel=1e-12)
    assert paired_wilcoxon(d, np.zeros(60)) == pytest.approx(2 * expected_greater, rel=1e-12)
    assert expected_greater == pytest.approx(1.05e-7, rel=0.01)


def test_wilcoxon_all_differences_zero_is_one() -> None:
    scores = [0.9, 0.8, 0.7] * 20
    for alternative in ALTERNATIVES:
        assert paired_wilcoxon(scores, list(scores), alternative=alternative) == 1.0
    assert math.isnan(paired_wilcoxon([], []))


def _stats_reference():
    """tests/data/make_stats_reference.py as a module, and the scipy p-values it stored."""
    spec = importlib.util.spec_from_file_location("make_stats_reference", DATA / "make_stats_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, json.loads(module.REFERENCE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_wilcoxon_matches_scipy(seed: int, alternative: str) -> None:
    """Against scipy.stats.wilcoxon's p-values, computed once by tests/data/make_stats_reference.py."""
    reference, stored = _stats_reference()
    expected = stored["wilcoxon_pvalues"][alternative][str(seed)]
    cases = reference.wilcoxon_cases(seed)  # continuous: exact (n <= 50) or normal; rounded: ties and zeros
    assert len(cases) == len(expected) >= 14
    for (a, b), pvalue in zip(cases, expected):
        assert paired_wilcoxon(a, b, alternative=alternative) == pytest.approx(pvalue, rel=1e-10, abs=1e-300)


def test_wilcoxon_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="equal lengths"):
        paired_wilcoxon([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="alternative"):
        paired_wilcoxon([1.0], [2.0], alternative="worse")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- Holm


def test_holm_hand_computed() -> None:
    assert holm_adjust([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06], abs=1e-15)
    # sorted: 0.001*4 = 0.004, 0.02*3 = 0.06, 0.04*2 = 0.08, 0.9*1 = 0.9
    assert holm_adjust([0.02, 0.001, 0.04, 0.9]) == pytest.approx([0.06, 0.004, 0.08, 0.9], abs=1e-15)


def test_holm_is_monotone_and_capped() -> None:
    # sorted: 0.5*2 = 1.0, then 0.6*1 = 0.6 is raised to the running maximum 1.0
    assert holm_adjust([0.6, 0.5]) == [1.0, 1.0]
    assert holm_adjust([0.3, 0.4, 0.45]) == pytest.approx([0.9, 0.9, 0.9], abs=1e-15)
    assert holm_adjust([]) == []
    assert holm_adjust([0.2]) == [0.2]
    with pytest.raises(ValueError):
        holm_adjust([0.1, float("nan")])


# --------------------------------------------------------------------------- ranks


def _base_scores(n: int = 40, seed: int = 0) -> np.ndarray:
    return np.clip(np.random.default_rng(seed).normal(0.90, 0.02, size=n), 0, 1)


def test_identical_models_share_a_rank_and_a_clearly_better_one_ranks_alone() -> None:
    base = _base_scores()
    noise = np.random.default_rng(1).normal(0, 0.005, size=base.size)
    scores = {"b-model": base, "c-model": base.copy(), "a-model": base + 0.05 + noise}
    assert rank_with_ties(scores, higher_is_better=True) == {"a-model": 1, "b-model": 2, "c-model": 2}
    assert list(rank_with_ties(scores, higher_is_better=True)) == ["a-model", "b-model", "c-model"]


def test_rank_direction_for_lower_is_better() -> None:
    hd95 = np.random.default_rng(2).uniform(1.0, 3.0, size=40)
    scores = {"good": hd95, "bad": hd95 + 1.0 + np.random.default_rng(3).uniform(0, 0.1, 40)}
    assert rank_with_ties(scores, higher_is_better=False) == {"good": 1, "bad": 2}
    assert rank_with_ties(scores, higher_is_better=True) == {"bad": 1, "good": 2}


def test_indistinguishable_models_all_rank_first() -> None:
    base = _base_scores(n=10)
    rng = np.random.default_rng(4)
    scores = {name: base + rng.normal(0, 0.02, size=base.size) for name in ("x", "y", "z")}
    assert set(rank_with_ties(scores, higher_is_better=True).values()) == {1}


def test_holm_correction_over_all_pairs_changes_ranks() -> None:
    # 6 cases, "a" better on every case: two-sided exact p = 2/64 = 0.03125 <= 0.05 alone ...
    base = np.array([0.80, 0.82, 0.85, 0.87, 0.90, 0.91])
    better = base + np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06])
    assert rank_with_ties({"a": better, "b": base}, higher_is_better=True) == {"a": 1, "b": 2}
    # ... but with a third model there are 3 comparisons: Holm gives 3 * 0.03125 = 0.094 > 0.05
    tied = rank_with_ties({"a": better, "b": base, "c": base.copy()}, higher_is_better=True)
    assert tied == {"a": 1, "b": 1, "c": 1}


def test_rank_is_one_plus_number_significantly_better() -> None:
    base = _base_scores(n=40, seed=6)
    rng = np.random.default_rng(7)
    scores = {
        "top": base + 0.10 + rng.normal(0, 0.003, base.size),
        "mid": base + 0.05 + rng.normal(0, 0.003, base.size),
        "low": base,
        "wild": base + 0.07 + rng.normal(0, 0.25, base.size),  # high variance: separated from none
    }
    ranks = rank_with_ties(scores, higher_is_better=True)
    assert ranks == {"top": 1, "wild": 1, "mid": 2, "low": 3}
    shuffled = {name: scores[name] for name in ("low", "wild", "top", "mid")}
    assert rank_with_ties(shuffled, higher_is_better=True) == ranks


def test_rank_edge_cases() -> None:
    assert rank_with_ties({}, higher_is_better=True) == {}
    assert rank_with_ties({"only": [0.9, 0.8]}, higher_is_better=True) == {"only": 1}
    assert rank_with_ties({"a": [], "b": []}, higher_is_better=True) == {"a": 1, "b": 1}
    with pytest.raises(ValueError, match="paired"):
        rank_with_ties({"a": [0.9, 0.8], "b": [0.9]}, higher_is_better=True)
