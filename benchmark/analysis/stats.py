"""Statistics for rankings and gates: bootstrap intervals, paired Wilcoxon, Holm, tied ranks.

Every function works on per-case scores (one value per test case). Paired functions take two
sequences of equal length whose i-th entries are the same case scored for two models.

Conventions
-----------
* Input values must be finite: a missing prediction is already scored with the worst finite value
  (see :mod:`benchmark.evaluation.metrics`), so a NaN or inf here is a bug upstream and raises ``ValueError``.
* "Significant at ``alpha``" means ``p <= alpha`` (the usual rejection rule of Holm's procedure).
* Everything random takes a ``seed`` and uses its own ``numpy.random.Generator``: the same inputs and
  seed give the same output, and no global random state is touched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import Literal, Sequence

import numpy as np
from scipy.special import ndtr

Alternative = Literal["two-sided", "less", "greater"]
_ALTERNATIVES: tuple[str, ...] = ("two-sided", "less", "greater")

#: Resampled means are computed in blocks of at most this many values, to bound memory.
BOOTSTRAP_BLOCK_VALUES = 1 << 20
#: scipy's ``method="auto"``: the largest sample (zeros included) for an exact test.
EXACT_MAX_N = 50
#: scipy's ``method="auto"``: the largest sample for which ties/zeros get an exact permutation test.
PERMUTATION_MAX_N = 13


@dataclass(frozen=True)
class MeanCI:
    """A mean with a two-sided confidence interval ``[low, high]`` over ``n`` values.

    When the values are per-person means (:mod:`benchmark.analysis.summary`), ``n`` counts people and ``scans`` the
    scans behind them; an interval over too few people has NaN bounds (:attr:`interval_withheld`).
    """

    mean: float
    low: float
    high: float
    n: int
    scans: int | None = None

    @property
    def interval_withheld(self) -> bool:
        """A mean is given but no interval (too few people for one)."""
        return math.isfinite(self.mean) and not (math.isfinite(self.low) and math.isfinite(self.high))


def _as_finite_1d(values: Sequence[float], name: str = "values") -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite (a missing case is scored worst, never NaN/inf)")
    return array


def _paired_differences(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    first = _as_finite_1d(a, "a")
    second = _as_finite_1d(b, "b")
    if first.shape != second.shape:
        raise ValueError(f"paired samples must have equal lengths, got {first.size} and {second.size}")
    return first - second


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def bootstrap_mean_ci(
    values: Sequence[float],
    *,
    confidence: float = 0.95,
    n_resamples: int = 5000,
    seed: int = 0,
) -> MeanCI:
    """Percentile-bootstrap confidence interval of the mean.

    With ``x_1..x_n`` the values, draw ``B = n_resamples`` resamples of ``n`` indices uniformly with
    replacement (``numpy.random.default_rng(seed).integers``), take each resample's mean
    ``m*_b = (1/n) * sum_i x_{j_bi}``, and return

        mean = (1/n) * sum_i x_i,
        low  = Q(m*, (1 - confidence) / 2),  high = Q(m*, (1 + confidence) / 2),

    with ``Q`` numpy's default (linear-interpolation) quantile. ``n == 1`` gives
    ``low = high = mean``; ``n == 0`` gives NaN for all three.
    """
    _check_confidence(confidence)
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    array = _as_finite_1d(values)
    n = int(array.size)
    if n == 0:
        return MeanCI(math.nan, math.nan, math.nan, 0)
    mean = float(np.mean(array))
    if n == 1:
        return MeanCI(mean, mean, mean, 1)
    rng = np.random.default_rng(seed)
    block = max(1, BOOTSTRAP_BLOCK_VALUES // n)
    means = np.empty(n_resamples, dtype=np.float64)
    for start in range(0, n_resamples, block):
        stop = min(n_resamples, start + block)
        indices = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = array[indices].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = (float(q) for q in np.quantile(means, [tail, 1.0 - tail]))
    # A resample mean can differ from the plain mean in the last bits (summation order): snap such
    # rounding-level differences so that e.g. a constant gives low == mean == high exactly.
    rounding = 1e-12 * max(1.0, abs(mean))
    if mean < low <= mean + rounding:
        low = mean
    if mean - rounding <= high < mean:
        high = mean
    return MeanCI(mean, low, high, n)


def paired_difference_ci(
    a: Sequence[float],
    b: Sequence[float],
    *,
    confidence: float = 0.95,
    n_resamples: int = 5000,
    seed: int = 0,
) -> MeanCI:
    """Bootstrap CI of ``mean(a - b)``, resampling cases (pairs ``(a_i, b_i)`` stay together).

    Identical to :func:`bootstrap_mean_ci` on ``d_i = a_i - b_i``.
    """
    return bootstrap_mean_ci(
        _paired_differences(a, b), confidence=confidence, n_resamples=n_resamples, seed=seed
    )


def _average_ranks(magnitudes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mid-ranks (1-based, ties get the mean of their positions) and the size of each tie group."""
    order = np.argsort(magnitudes, kind="stable")
    ordered = magnitudes[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    sizes = np.diff(np.append(starts, ordered.size))
    group_ranks = starts + 1 + (sizes - 1) / 2.0
    ranks = np.empty(magnitudes.size, dtype=np.float64)
    ranks[order] = np.repeat(group_ranks, sizes)
    return ranks, sizes


def _signed_rank_null_counts(doubled_ranks: np.ndarray) -> np.ndarray:
    """``counts[s]`` = number of sign assignments whose positive doubled ranks sum to ``s``.

    Under H0 each of the ``2^m`` sign patterns is equally likely; the recurrence
    ``c_k(s) = c_{k-1}(s) + c_{k-1}(s - w_k)`` over the integer weights ``w_k = 2 * rank_k`` gives the
    exact (permutation) null distribution of ``2 * R+``, ties included. Counts are integers below
    ``2^m <= 2^50``, so int64 holds them exactly.
    """
    counts = np.zeros(int(doubled_ranks.sum()) + 1, dtype=np.int64)
    counts[0] = 1
    reach = 0
    for weight in (int(w) for w in doubled_ranks):
        counts[weight : weight + reach + 1] += counts[: reach + 1].copy()
        reach += weight
    return counts


def _exact_signed_rank_p(doubled_ranks: np.ndarray, doubled_r_plus: int, alternative: str) -> float:
    counts = _signed_rank_null_counts(doubled_ranks)
    n_patterns = 2 ** int(doubled_ranks.size)
    p_less = int(counts[: doubled_r_plus + 1].sum()) / n_patterns  # P(R+ <= r+)
    p_greater = int(counts[doubled_r_plus:].sum()) / n_patterns  # P(R+ >= r+)
    if alternative == "less":
        return p_less
    if alternative == "greater":
        return p_greater
    return min(1.0, 2.0 * min(p_less, p_greater))


def _normal_signed_rank_p(r_plus: float, ranks_count: int, tie_sizes: np.ndarray, alternative: str) -> float:
    n = float(ranks_count)
    mean = n * (n + 1.0) / 4.0
    variance = (n * (n + 1.0) * (2.0 * n + 1.0) - float(np.sum(tie_sizes**3 - tie_sizes)) / 2.0) / 24.0
    se = math.sqrt(variance)
    z = (r_plus - mean) / se  # no continuity correction (scipy's default correction=False)
    if alternative == "less":
        return float(ndtr(z))
    if alternative == "greater":
        return float(ndtr(-z))
    return float(2.0 * ndtr(-abs(z)))


def paired_wilcoxon(a: Sequence[float], b: Sequence[float], *, alternative: Alternative = "two-sided") -> float:
    """p-value of the Wilcoxon signed-rank test on ``d = a - b``; equals ``scipy.stats.wilcoxon(a, b)``.

    Zeros follow scipy's default ``zero_method="wilcox"``: cases with ``d_i == 0`` are dropped before
    ranking. The remaining ``m`` differences are ranked by ``|d_i|`` (mid-ranks for ties) and
    ``R+ = sum of ranks of d_i > 0``. ``alternative="less"`` asks whether ``a`` tends to be smaller
    than ``b`` (small ``R+``), ``"greater"`` whether it tends to be larger.

    The null distribution follows scipy's ``method="auto"`` (``N`` = number of pairs, zeros included):

    * ``N <= 50`` and no zeros or ties: exact distribution of ``R+`` over the ``2^m`` sign patterns;
    * ``N <= 13`` with zeros or ties: the same exact enumeration with mid-ranks (a permutation test);
    * otherwise the normal approximation with tie correction and, like scipy's default, no
      continuity correction: ``z = (R+ - m(m+1)/4) / sigma``,
      ``sigma^2 = [m(m+1)(2m+1) - sum_g (t_g^3 - t_g)/2] / 24`` (``t_g`` sizes of tie groups).

    Exact p-values: ``less = P(R+ <= r)``, ``greater = P(R+ >= r)``,
    ``two-sided = min(1, 2 * min(less, greater))``; normal: ``Phi(z)``, ``1 - Phi(z)``,
    ``2 * (1 - Phi(|z|))``.

    Special cases: every difference zero -> ``1.0`` (no evidence either way; scipy gives NaN for
    ``N > 13``); no pairs -> NaN.
    """
    if alternative not in _ALTERNATIVES:
        raise ValueError(f"alternative must be one of {_ALTERNATIVES}, got {alternative!r}")
    differences = _paired_differences(a, b)
    n_pairs = int(differences.size)
    if n_pairs == 0:
        return math.nan
    nonzero = differences[differences != 0]
    if nonzero.size == 0:
        return 1.0
    ranks, tie_sizes = _average_ranks(np.abs(nonzero))
    r_plus = float(ranks[nonzero > 0].sum())
    has_zeros = nonzero.size < n_pairs
    has_ties = bool(np.any(tie_sizes > 1))
    exact = n_pairs <= EXACT_MAX_N and not (has_zeros or has_ties)
    if exact or n_pairs <= PERMUTATION_MAX_N:
        doubled = np.rint(2.0 * ranks).astype(np.int64)  # mid-ranks are multiples of 1/2
        return _exact_signed_rank_p(doubled, int(round(2.0 * r_plus)), alternative)
    return _normal_signed_rank_p(r_plus, int(nonzero.size), tie_sizes, alternative)


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values, in the input order.

    With ``p_(1) <= ... <= p_(m)`` sorted (stable for equal values),
    ``p~_(i) = min(1, max_{j <= i} (m - j + 1) * p_(j))``: monotone in the sorted order and capped
    at 1. Rejecting ``p~_(i) <= alpha`` is Holm's procedure at family-wise error rate ``alpha``.
    """
    array = np.asarray(p_values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError("p_values must be one-dimensional")
    if np.any(~np.isfinite(array)) or np.any((array < 0.0) | (array > 1.0)):
        raise ValueError(f"p-values must lie in [0, 1], got {list(array)}")
    m = array.size
    order = np.argsort(array, kind="stable")
    scaled = array[order] * (m - np.arange(m))
    adjusted_sorted = np.minimum(1.0, np.maximum.accumulate(scaled)) if m else scaled
    adjusted = np.empty(m, dtype=np.float64)
    adjusted[order] = adjusted_sorted
    return [float(p) for p in adjusted]


def rank_with_ties(
    scores: dict[str, Sequence[float]],
    *,
    higher_is_better: bool,
    alpha: float = 0.05,
) -> dict[str, int]:
    """Competition ranks that only separate models whose difference is statistically significant.

    Procedure (deterministic; no resampling):

    1. Every model has one score per case, in the same case order (equal lengths, paired).
    2. For every unordered pair of models ``{i, j}`` (``K = M(M-1)/2`` comparisons for ``M`` models),
       compute the two-sided :func:`paired_wilcoxon` p-value and Holm-adjust the ``K`` p-values
       together (:func:`holm_adjust`).
    3. Model ``j`` is *significantly better* than ``i`` when the adjusted p-value is ``<= alpha`` and
       ``mean_j`` is strictly better than ``mean_i`` (larger if ``higher_is_better``, else smaller).
    4. ``rank_i = 1 + #{j : j significantly better than i}``.

    Consequences: the best model by mean always ranks 1; models with identical per-case scores get
    the same rank (no test separates them and they are separated from others identically);
    a model separated from everything above it ranks alone; ranks never depend on the order of the
    dict. The relation "significantly better" need not be transitive, so a model can rank ahead of
    one with a higher mean (it is separated from fewer models); display by ``(rank, mean)``.

    Returns ranks ordered by ``(rank, mean best first, name)``.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    names = sorted(scores)
    arrays = {name: _as_finite_1d(scores[name], f"scores[{name!r}]") for name in names}
    lengths = {array.size for array in arrays.values()}
    if len(lengths) > 1:
        sizes = {name: int(array.size) for name, array in arrays.items()}
        raise ValueError(f"every model needs one score per case (paired); got lengths {sizes}")
    direction = 1.0 if higher_is_better else -1.0
    means = {name: float(np.mean(array)) if array.size else 0.0 for name, array in arrays.items()}
    pairs = list(combinations(names, 2))
    n_cases = lengths.pop() if lengths else 0
    raw = [paired_wilcoxon(arrays[i], arrays[j]) for i, j in pairs] if n_cases else [1.0] * len(pairs)
    adjusted = holm_adjust(raw)
    better_count = dict.fromkeys(names, 0)
    for (first, second), p_value in zip(pairs, adjusted):
        if p_value > alpha or means[first] == means[second]:
            continue
        worse = first if direction * (means[second] - means[first]) > 0 else second
        better_count[worse] += 1
    ranks = {name: 1 + better_count[name] for name in names}
    ordered = sorted(names, key=lambda name: (ranks[name], -direction * means[name], name))
    return {name: ranks[name] for name in ordered}


# ------------------------------------------------------------------ vectorised kernels (many rows at once)


def bootstrap_resample_means(values: np.ndarray, *, n_resamples: int, seed: int) -> np.ndarray:
    """Resampled means of every row of ``values`` (rows x n) with ONE set of case resamples.

    The draws are those of :func:`bootstrap_mean_ci`:
    ``default_rng(seed).integers(0, n, size=(block, n))`` in the same blocks, turned into a count
    matrix ``K`` (resample x case) so that all rows are resampled by one matrix product:
    ``means = values @ K.T / n``. Row ``r`` of the result therefore holds the very resample means
    ``bootstrap_mean_ci(values[r], seed=seed)`` takes its quantiles of (up to summation order).
    """
    rows, n = values.shape
    if n == 0:
        return np.full((rows, n_resamples), np.nan)
    rng = np.random.default_rng(seed)
    counts = np.empty((n_resamples, n))
    block = max(1, BOOTSTRAP_BLOCK_VALUES // n)  # the same draw calls as bootstrap_mean_ci
    for start in range(0, n_resamples, block):
        stop = min(n_resamples, start + block)
        indices = rng.integers(0, n, size=(stop - start, n))
        flat = (indices + (np.arange(stop - start, dtype=np.int64) * n)[:, None]).ravel()
        counts[start:stop] = np.bincount(flat, minlength=(stop - start) * n).reshape(stop - start, n)
    # (counts @ values.T).T: the same products as values @ counts.T, in the layout BLAS is fastest at
    return np.ascontiguousarray((counts @ values.T).T) / n


def percentile_ci(resamples: np.ndarray, means: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval per row, kept around the point estimate (as :func:`bootstrap_mean_ci` does)."""
    tail = (1.0 - confidence) / 2.0
    if resamples.shape[0] == 0:
        return np.empty(0), np.empty(0)
    low, high = np.quantile(resamples, (tail, 1.0 - tail), axis=1)
    return np.minimum(low, means), np.maximum(high, means)


def wilcoxon_normal_p_rows(differences: np.ndarray) -> np.ndarray:
    """Two-sided p of :func:`paired_wilcoxon`'s normal approximation, one row of paired differences each.

    Same zero handling (zeros dropped), mid-ranks and tie correction; the sums involved (half-integer
    ranks, integer tie terms) are exact, so the p-values equal the scalar function's.

    Speed: ``|d|`` of a finite double, read as an unsigned integer, orders like the value, so ONE
    integer sort of ``bits(|d|) * 2 + (d > 0)`` orders the magnitudes with the sign in the last bit
    (no argsort, no gather). Zeros (key 0) sort first and are skipped. Rows without tied magnitudes
    have rank = position; only rows with ties get mid-ranks.
    """
    differences = np.ascontiguousarray(differences, dtype=np.float64)
    k, n = differences.shape
    key = np.abs(differences).view(np.uint64) << np.uint64(1)
    key |= differences > 0
    key.sort(axis=1)
    zeros = np.count_nonzero(key == 0, axis=1)
    m = n - zeros
    positive = (key & np.uint64(1)).astype(np.float64)
    # rank of position j (0-based) among the non-zero differences: j - zeros + 1
    r_plus = positive @ np.arange(1.0, n + 1.0) - zeros * positive.sum(axis=1)
    tie_term = np.zeros(k)
    # equal magnitudes: keys differ at most in the sign bit; key >= 2 excludes the zeros
    same = ((key[:, 1:] ^ key[:, :-1]) < 2) & (key[:, 1:] >= 2)
    tied = np.flatnonzero(same.any(axis=1))
    if tied.size:
        rows = len(tied)
        new_group = np.ones((rows, n), dtype=bool)
        new_group[:, 1:] = ~same[tied]
        last_of_group = np.ones((rows, n), dtype=bool)
        last_of_group[:, :-1] = new_group[:, 1:]
        flat = np.arange(rows * n)
        # every row starts a group and ends one, so running max/min never cross rows
        start = np.maximum.accumulate(np.where(new_group.ravel(), flat, 0)).reshape(rows, n)
        end = np.minimum.accumulate(np.where(last_of_group.ravel(), flat, rows * n)[::-1])[::-1].reshape(rows, n)
        offset = (np.arange(rows) * n)[:, None]
        mid_rank = (start + end) / 2.0 - offset + 1.0 - zeros[tied][:, None]
        sizes = (end - start + 1).astype(np.float64)
        valid = np.arange(n) >= zeros[tied][:, None]
        r_plus[tied] = (positive[tied] * mid_rank).sum(axis=1)
        tie_term[tied] = np.where(valid, sizes * sizes - 1.0, 0.0).sum(axis=1)  # = sum_g (t^3 - t)
    m = m.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = m * (m + 1.0) / 4.0
        variance = (m * (m + 1.0) * (2.0 * m + 1.0) - tie_term / 2.0) / 24.0
        z = (r_plus - mean) / np.sqrt(variance)  # no continuity correction, as paired_wilcoxon (scipy's default)
        p = 2.0 * ndtr(-np.abs(z))
    return np.where(m == 0, 1.0, p)


__all__ = [
    "MeanCI",
    "bootstrap_mean_ci",
    "paired_difference_ci",
    "paired_wilcoxon",
    "holm_adjust",
    "rank_with_ties",
    "bootstrap_resample_means",
    "percentile_ci",
    "wilcoxon_normal_p_rows",
]
