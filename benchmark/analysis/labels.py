"""One table of metric labels, units, directions and display formats, for every place that shows a number.

>>> metric_label("hd95")
'HD95 (mm)'
>>> format_ci(0.75504, 0.737, 0.773, "dice")
'0.755 [0.737, 0.773]'
>>> format_p(0.00002)
'2.0e-05'
>>> format_ci(0.254, float("nan"), float("nan"), "dice")
'0.254 (too few people)'
>>> format_people(4, 20)
'4 (20)'
"""

from __future__ import annotations

import math

from benchmark.evaluation.metrics import HIGHER_IS_BETTER, METRIC_NAMES, METRIC_UNITS

#: Short display name of each metric.
METRIC_LABELS: dict[str, str] = {
    "dice": "Dice",
    "nsd": "NSD (1 mm)",
    "hd95": "HD95",
    "rve": "|RVE|",
    "csa_error": "CSA error",
}

#: Decimals shown for a metric: 3 for unitless scores, 2 for physical units (mm, mm²).
DECIMALS: dict[str, int] = {name: 2 if METRIC_UNITS.get(name) else 3 for name in METRIC_NAMES}

MISSING = "–"
#: shown instead of an interval or a verdict over fewer than benchmark.analysis.summary.MIN_PEOPLE people
TOO_FEW_PEOPLE = "too few people"
#: the header of every count: the unit of analysis first
PEOPLE_SCANS = "people (scans)"


def metric_label(metric: str) -> str:
    """Name and unit, e.g. ``"HD95 (mm)"``."""
    unit = METRIC_UNITS.get(metric, "")
    return f"{METRIC_LABELS.get(metric, metric)}{f' ({unit})' if unit else ''}"


def direction_text(metric: str) -> str:
    return "higher is better" if HIGHER_IS_BETTER[metric] else "lower is better"


def decimals(metric: str) -> int:
    return DECIMALS.get(metric, 3)


def format_value(value: float, metric: str, *, signed: bool = False) -> str:
    if not math.isfinite(value):
        return MISSING
    return f"{value:{'+' if signed else ''}.{decimals(metric)}f}"


def format_ci(mean: float, low: float, high: float, metric: str, *, signed: bool = False) -> str:
    """``mean [low, high]`` with the metric's decimals; ``–`` when the mean is not finite; ``mean (too few
    people)`` when the interval was withheld (NaN bounds: fewer than ``summary.MIN_PEOPLE`` people)."""
    if not math.isfinite(mean):
        return MISSING
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{format_value(mean, metric, signed=signed)} ({TOO_FEW_PEOPLE})"
    return (f"{format_value(mean, metric, signed=signed)} [{format_value(low, metric, signed=signed)}, "
            f"{format_value(high, metric, signed=signed)}]")


def format_p(p_value: float) -> str:
    """A p-value: 4 decimals, scientific notation below 1e-3, ``–`` when not computed."""
    if not math.isfinite(p_value):
        return MISSING
    return f"{p_value:.1e}" if p_value < 1e-3 else f"{p_value:.4f}"


def format_people(people: int, scans: int) -> str:
    """``people (scans)``: how many units of analysis, and the scans behind them."""
    return f"{int(people)} ({int(scans)})"
