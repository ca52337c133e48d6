"""Write tests/data/stats_reference.json: scipy's Wilcoxon signed-rank p-values for the cases of test_stats.py.

scipy takes ~70 s on 2 cores for these cases (exact null distributions up to n = 50, an exhaustive
permutation test for small samples with ties), so the values are computed once, here, and stored with the scipy version that made them; the test rebuilds the
same inputs with :func:`wilcoxon_cases` and compares ``benchmark.analysis.stats.paired_wilcoxon`` with the stored
values. Re-run after changing the cases: ``python tests/data/make_stats_reference.py``.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np

REFERENCE = Path(__file__).with_name("stats_reference.json")
SEEDS = range(5)
ALTERNATIVES = ("two-sided", "less", "greater")
SIZES = (5, 12, 13, 14, 30, 50, 51, 120)


def wilcoxon_cases(seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Paired samples for one seed: continuous (exact for n <= 50, normal above) and rounded (ties, zeros).

    Pairs whose differences are all zero are left out (the p-value is 1 by definition, tested by hand).
    """
    rng = np.random.default_rng(seed)
    cases = []
    for n in SIZES:
        base = rng.normal(0.9, 0.02, size=n)
        shifted = base + rng.normal(rng.normal(0, 0.01), 0.01, size=n)
        cases.append((base, shifted))
        cases.append((np.round(base, 2), np.round(shifted, 2)))
    return [(a, b) for a, b in cases if not np.all(a == b)]


def scipy_pvalues() -> dict[str, dict[str, list[float]]]:
    """alternative -> seed -> scipy.stats.wilcoxon p-value of each case of :func:`wilcoxon_cases`."""
    import scipy.stats

    values: dict[str, dict[str, list[float]]] = {}
    for alternative in ALTERNATIVES:
        values[alternative] = {}
        for seed in SEEDS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                values[alternative][str(seed)] = [float(scipy.stats.wilcoxon(a, b, alternative=alternative).pvalue)
                                                  for a, b in wilcoxon_cases(seed)]
    return values


def main() -> int:
    import scipy

    document = {"generated_by": "tests/data/make_stats_reference.py", "scipy": scipy.__version__,
                "numpy": np.__version__, "wilcoxon_pvalues": scipy_pvalues()}
    REFERENCE.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {REFERENCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
