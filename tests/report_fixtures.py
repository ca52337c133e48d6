"""Constructed results of the seed experiment on the ``synthetic`` suite, for the report and notebook tests.

Six models: four specific nnU-Nets (one per in-domain dataset), one aggregated (all four), one
training-free baseline ("other"). Ten test cases per dataset, ``k = 1..10``. Dice values are chosen so
that every number of the comparison table can be worked out by hand:

* aggregated: ``0.85 + 0.005 k`` in-domain, ``0.70 + 0.01 k`` on synth-mp2rage, ``0.60 + 0.02 k`` on synth-epi;
* specialists: multicontrast ``agg - 0.01 k``; compression ``agg + 0.01 k``;
  injury ``agg - (-1)^(k+1) 0.01 k``; ms ``agg`` (identical);
* other specific models 0.50 on foreign in-domain datasets; on synth-mp2rage spec-ms 0.60 (the best
  specific), the others 0.50/0.40/0.30; on synth-epi spec-multicontrast 0.55 (best), the others 0.45;
* baseline 0.20 everywhere;
* spec-ms's case k = 1 of synth-ms is marked as a training subject (a leak, excluded by the report).

Contrasts: synth-multicontrast odd k -> T1w, even k -> T2w; other in-domain T2w; UNIT1; EPI.
"""

from __future__ import annotations

from pathlib import Path

from benchmark.evaluation.results import CaseResult, ResultsFile
from factories import case_id_for, make_case, make_results, write_results_files

SUITE = "synthetic"
VERSION = "f00dfeed1234"
IN_DOMAIN = ["synth-multicontrast", "synth-compression", "synth-injury", "synth-ms"]
OOD = ["synth-mp2rage", "synth-epi"]
SPECIFIC = {f"spec-{dataset.removeprefix('synth-')}": dataset for dataset in IN_DOMAIN}
AGGREGATED = "agg-all"
BASELINE = "threshold-baseline"
K = range(1, 11)


def aggregated_dice(dataset: str, k: int) -> float:
    if dataset == "synth-mp2rage":
        return 0.70 + 0.01 * k
    if dataset == "synth-epi":
        return 0.60 + 0.02 * k
    return 0.85 + 0.005 * k


def specific_dice(model: str, dataset: str, k: int) -> float:
    own = SPECIFIC[model]
    agg = aggregated_dice(dataset, k)
    if dataset == own:
        return {
            "synth-multicontrast": agg - 0.01 * k,
            "synth-compression": agg + 0.01 * k,
            "synth-injury": agg - (-1) ** (k + 1) * 0.01 * k,
            "synth-ms": agg,
        }[own]
    if dataset == "synth-mp2rage":
        return {"spec-ms": 0.60, "spec-multicontrast": 0.50, "spec-compression": 0.40, "spec-injury": 0.30}[model]
    if dataset == "synth-epi":
        return 0.55 if model == "spec-multicontrast" else 0.45
    return 0.50


def contrast_of(dataset: str, k: int) -> str:
    if dataset == "synth-multicontrast":
        return "T1w" if k % 2 else "T2w"
    return {"synth-mp2rage": "UNIT1", "synth-epi": "EPI"}.get(dataset, "T2w")


def case_id(dataset: str, k: int) -> str:
    return case_id_for(dataset, f"sub-{k:02d}", contrast_of(dataset, k))


def _case(model: str, declared: list[str], dataset: str, k: int, dice: float) -> CaseResult:
    return make_case(
        dataset, f"sub-{k:02d}", dice, contrast=contrast_of(dataset, k), site=f"site-{k % 3}",
        vendor=("Siemens", "GE", "Philips")[k % 3], suite_role="ood" if dataset in OOD else "in-domain",
        dataset_in_training=dataset in declared,
        subject_in_training=(model == "spec-ms" and dataset == "synth-ms" and k == 1),
    )


def _results(model: str, declared: list[str], dice) -> ResultsFile:
    return make_results(
        model, [_case(model, declared, dataset, k, dice(dataset, k)) for dataset in IN_DOMAIN + OOD for k in K],
        suite=SUITE, version=VERSION, declared=declared, model_type="nnunet" if declared else "command",
        parameters=30_000_000 if declared else 0, created_utc="2025-01-01T00:00:00+00:00",
    )


def seed_results() -> list[ResultsFile]:
    """The six results files described in the module doc."""
    results = [_results(AGGREGATED, list(IN_DOMAIN), aggregated_dice)]
    for model, dataset in SPECIFIC.items():
        results.append(_results(model, [dataset], lambda d, k, m=model: specific_dice(m, d, k)))
    results.append(_results(BASELINE, [], lambda d, k: 0.20))
    return results


def write_seed_results(root: Path) -> list[Path]:
    """Write the results files as ``<root>/<model>/results/<suite>_<version>.json``."""
    return write_results_files(root, seed_results())
