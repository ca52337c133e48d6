"""The headline table a paper can print: per dataset the people (scans) compared, the seed-averaged difference over
people, the seed spread, the one-voxel ceiling and the seed-aware verdict (benchmark.analysis.seeds,
benchmark.evaluation.ceilings)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from benchmark.analysis.labels import PEOPLE_SCANS, format_ci, format_people
from benchmark.analysis.seeds import seed_comparison_table
from benchmark.evaluation.ceilings import CeilingsFile

HEADLINE_COLUMNS = ["dataset", "role", "aggregated − reference", PEOPLE_SCANS, "seeds", "difference [95% CI]",
                    "seed spread", "one-voxel Dice", "within one voxel", "verdict"]


def _fmt(value: float, decimals: int = 3, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:+.{decimals}f}" if sign else f"{value:.{decimals}f}"


def headline_table(cases: pd.DataFrame, family_of: Mapping[str, tuple[str, int]], ceilings: CeilingsFile | None, *,
                   metric: str = "dice", seed: int = 0) -> pd.DataFrame:
    """One display row per (dataset, aggregated family). The ceiling columns are shown for Dice only: "within one
    voxel" = 1 - the reference masks' one-voxel-ring Dice; a difference smaller than it is sub-voxel."""
    table = seed_comparison_table(cases, family_of, metric=metric, seed=seed)
    rows = []
    for row in table.itertuples(index=False):
        ring = ceilings.datasets.get(row.dataset) if ceilings is not None and metric == "dice" else None
        rows.append({
            "dataset": row.dataset, "role": "OOD" if row.suite_role == "ood" else row.suite_role,
            "aggregated − reference": f"{row.aggregated} − {row.reference}",
            PEOPLE_SCANS: format_people(row.people, row.scans),
            "seeds": f"{row.aggregated_seeds} / {row.reference_seeds}",
            "difference [95% CI]": format_ci(row.difference, row.difference_low, row.difference_high, metric,
                                             signed=True),
            "seed spread": "unknown (1 seed)" if math.isnan(row.seed_spread) else _fmt(row.seed_spread),
            "one-voxel Dice": _fmt(ring.one_voxel_dice) if ring else "–",
            "within one voxel": _fmt(ring.within_one_voxel) if ring else "–",
            "verdict": row.verdict,
        })
    return pd.DataFrame(rows, columns=HEADLINE_COLUMNS)


__all__ = ["HEADLINE_COLUMNS", "headline_table"]
