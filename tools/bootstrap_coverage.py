"""How often does cordbench's 95 % percentile-bootstrap interval of a mean contain the true mean, by number of people?

The measurement behind ``benchmark.analysis.summary.MIN_PEOPLE`` (docs/metrics.md, "Statistics"): for n people
drawn from a normal and from a skewed Beta(8, 2) distribution (Dice-like: mean 0.8, long lower tail), the share of
``reps`` simulated datasets whose interval (``benchmark.analysis.stats.bootstrap_mean_ci``, 2000 resamples) covers
the population mean. Deterministic for a seed; about 10 s on one core.

    python tools/bootstrap_coverage.py [--reps 2000] [--seed 1]
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmark.analysis.stats import bootstrap_mean_ci

SIZES = (3, 4, 5, 6, 8, 10, 20)
#: name -> (draw n values, true mean)
DISTRIBUTIONS = {
    "normal(0, 1)": (lambda rng, n: rng.normal(0.0, 1.0, n), 0.0),
    "beta(8, 2)": (lambda rng, n: rng.beta(8.0, 2.0, n), 0.8),
}


def coverage(draw, mean: float, n: int, *, reps: int, rng: np.random.Generator) -> float:
    hits = 0
    for _ in range(reps):
        ci = bootstrap_mean_ci(draw(rng, n), n_resamples=2000, seed=int(rng.integers(0, 2**31)))
        hits += ci.low <= mean <= ci.high
    return hits / reps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print("| people | " + " | ".join(DISTRIBUTIONS) + " |")
    print("|---:|" + "---:|" * len(DISTRIBUTIONS))
    for n in SIZES:
        cells = [f"{coverage(draw, mean, n, reps=args.reps, rng=rng):.1%}" for draw, mean in DISTRIBUTIONS.values()]
        print(f"| {n} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
