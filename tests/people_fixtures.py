"""Results whose scans are grouped into people, for the tests of the person-level statistics (tests/test_people.py).

Two models on five datasets (suite ``people``, in-domain ``d-multi`` and ``d-single``):

* ``agg`` declares both in-domain datasets (aggregated), ``spec`` declares ``d-multi`` (specific; the reference
  everywhere: the specialist on d-multi, the only specific model elsewhere);
* ``d-multi``: 8 people with 3, 3, 3, 3, 3, 3, 2 and 1 scans (contrasts) - unbalanced on purpose;
* ``d-single``: 10 people, one scan each;
* ``d-few``: 4 people x 5 scans (20 scans: enough "cases" for a scan-level test, too few people for any);
* ``d-leak``: 8 people, one scan each; ``agg`` declares 2 of them as training data (``subject_in_training``);
* ``d-nopairs``: 3 people whose every scan is leaked for ``agg``: no pair is left.

Values: ``spec`` = a per-person level plus per-scan noise; ``agg`` = spec + a per-person effect (better for all 10
people of d-single: "aggregated better"; mixed elsewhere). ``csa_mm2`` equals
the Dice value so that the CSA drift gate compares the very numbers the Dice comparisons do.
"""

from __future__ import annotations

import numpy as np

from benchmark.evaluation.results import CaseResult, ResultsFile
from factories import make_case, make_results

SUITE = "people"
VERSION = "feed0123people"
IN_DOMAIN = ["d-multi", "d-single"]
#: dataset -> (suite role, scans per person, per-person effect of agg over spec)
DATASETS = {
    "d-multi": ("in-domain", [3, 3, 3, 3, 3, 3, 2, 1], 0.04),
    "d-single": ("in-domain", [1] * 10, 0.03),
    "d-few": ("ood", [5, 5, 5, 5], 0.05),
    "d-leak": ("ood", [1] * 8, 0.02),
    "d-nopairs": ("ood", [2, 1, 1], 0.02),
}
CONTRASTS = ("T1w", "T2w", "T2star", "MTon", "MToff")
LEAKED = {("d-leak", 0), ("d-leak", 1), ("d-nopairs", 0), ("d-nopairs", 1), ("d-nopairs", 2)}


def _rows(model: str, declared: list[str], *, copies: dict[str, int]) -> list[CaseResult]:
    rng = np.random.default_rng(11)  # the same draws for both models: agg = spec + effect + its own noise
    rows = []
    for dataset, (role, scans, effect) in DATASETS.items():
        for person, count in enumerate(scans):
            level = float(rng.uniform(0.70, 0.90))
            # every 4th person is worse with agg, except on d-single where agg is better for everyone
            gain = effect * float(rng.uniform(0.5, 1.5)) * (-0.5 if person % 4 == 0 and dataset != "d-single" else 1)
            for scan in range(count):
                spec = level + float(rng.normal(0, 0.01))
                noise = float(rng.normal(0, 0.005))
                dice = round(spec + (gain + noise if model == "agg" else 0.0), 6)
                subject = f"sub-{dataset[2:]}{person:02d}"
                for copy in range(copies.get(dataset, 1)):
                    run = f"_run-{copy + 1}" if copy else ""
                    case_id = f"{dataset}:{subject}/anat/{subject}{run}_{CONTRASTS[scan]}.nii.gz"
                    rows.append(make_case(
                        dataset, subject, dice, contrast=CONTRASTS[scan], case_id=case_id, suite_role=role,
                        dataset_in_training=dataset in declared,
                        subject_in_training=model == "agg" and (dataset, person) in LEAKED,
                        csa_mm2=dice, csa_reference_mm2=dice))
    return rows


def people_results(*, copies: dict[str, int] | None = None) -> list[ResultsFile]:
    """``[agg, spec]``; ``copies`` = {dataset: k} repeats every scan of a dataset k times (new case ids, same person,
    same values), the duplication every statistic must be blind to."""
    copies = copies or {}
    return [make_results("agg", _rows("agg", IN_DOMAIN, copies=copies), suite=SUITE, version=VERSION,
                         declared=IN_DOMAIN),
            make_results("spec", _rows("spec", ["d-multi"], copies=copies), suite=SUITE, version=VERSION,
                         declared=["d-multi"])]
