"""Synthetic leaderboard inputs shared by the leaderboard tests, benchmarks and docs screenshots (built with
tests/factories.py).

* :func:`hand_results` / :func:`write_hand_results` - the hand-computed fixture of the unit tests
  (3 submissions x 3 datasets x 4 cases).
* :func:`write_demo_results` - realistic-looking results FILES (5 submissions: 4 dataset-specific
  nnU-Nets + 1 aggregated, on 6 synthetic datasets) for the app tests, browser test and screenshots.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.evaluation.results import CaseResult, ResultsFile
from factories import make_case, make_results, write_results_files

# ------------------------------------------------------------------------------------------------
# realistic results files: 4 dataset-specific models + 1 aggregated, 6 synthetic datasets
# ------------------------------------------------------------------------------------------------

DEMO_VERSION = "3f9c2a1b7d4e"
DEMO_SUITE = "synth-suite"
#: dataset -> (suite role, contrasts, pathology, sites/vendors, share of automated masks, cases)
DEMO_DATASETS = {
    "synth-multicontrast": ("in-domain", ("T1w", "T2w", "T2star"), "HC", (("unf", "Siemens"), ("mgh", "Siemens"), ("ucl", "Philips")), 0.0, 24),
    "synth-compression": ("in-domain", ("T2w",), "DCM", (("tor", "GE"), ("zur", "Siemens")), 0.0, 20),
    "synth-injury": ("in-domain", ("T2w",), "SCI", (("bwh", "GE"), ("zur", "Siemens")), 0.0, 18),
    "synth-ms": ("in-domain", ("T2star", "PSIR"), "MS", (("mtl", "Siemens"), ("kar", "Philips")), 0.0, 22),
    "synth-mp2rage": ("ood", ("UNIT1",), "MS", (("bsl", "Siemens"),), 0.0, 16),
    "synth-epi": ("ood", ("bold",), "HC", (("nwu", "Siemens"), ("stf", "GE")), 0.4, 20),
}
DEMO_SPECIFIC = {
    "nnunet-specific-multicontrast": "synth-multicontrast",
    "nnunet-specific-compression": "synth-compression",
    "nnunet-specific-injury": "synth-injury",
    "nnunet-specific-ms": "synth-ms",
}
DEMO_AGGREGATED = "nnunet-aggregated"


def _demo_case_rows(name: str, trained_on: set[str], rng: np.random.Generator, case_noise: dict) -> list[CaseResult]:
    rows = []
    aggregated = len(trained_on) > 1
    for d_index, (dataset, (role, contrasts, pathology, sites, automated_share, n_cases)) in enumerate(DEMO_DATASETS.items()):
        in_training = dataset in trained_on
        if in_training:
            base = 0.925 if aggregated else 0.93
        elif role == "in-domain":
            base = 0.90 if aggregated else 0.82 - 0.02 * ((d_index + len(name)) % 3)
        else:
            base = 0.86 if aggregated else 0.74 - 0.03 * ((d_index + len(name)) % 3)
        for c in range(n_cases):
            subject = f"sub-{dataset.split('-')[1][:3]}{c:02d}"
            contrast = contrasts[c % len(contrasts)]
            site, vendor = sites[c % len(sites)]
            relpath = f"{subject}/anat/{subject}_{contrast}.nii.gz"
            case_id = f"{dataset}:{relpath}"
            spread = 0.025 if in_training else 0.05
            dice = float(np.clip(base + case_noise[case_id] + rng.normal(0, spread), 0.0, 0.99))
            failure = None
            # the injury specialist crashes on one EPI case: scored as an empty prediction (worst)
            if name == "nnunet-specific-injury" and dataset == "synth-epi" and c == 3:
                dice, failure = 0.0, "prediction failed: out of memory"
            worst = failure is not None
            rows.append(
                make_case(
                    dataset, subject, round(dice, 4), contrast=contrast, case_id=case_id,
                    image_sha256=f"{abs(hash(case_id)) % (1 << 64):064x}"[-64:], site=site, vendor=vendor,
                    pathology=pathology, suite_role=role,
                    gt_provenance="automated" if c < round(automated_share * n_cases) else "manual",
                    dataset_in_training=in_training,
                    # the aggregated model's training data holds 2 subjects of the MP2RAGE test set
                    subject_in_training=aggregated and dataset == "synth-mp2rage" and c < 2,
                    nsd=round(float(np.clip(dice + 0.03 + rng.normal(0, 0.015), 0, 1)), 4) if not worst else 0.0,
                    hd95=round(float(abs((1 - dice) * 9 + rng.normal(0, 0.25))), 3) if not worst else 96.5,
                    rve=round(float(abs(rng.normal(0, 0.04 + (1 - dice) * 0.3))), 4) if not worst else 1.0,
                    csa_error=round(float(abs(rng.normal(3 + (1 - dice) * 30, 1.0))), 3) if not worst else 71.2,
                    runtime_s=round(float(rng.uniform(2, 6)), 2),
                    peak_memory_mb=round(float(rng.uniform(900, 1500)), 1),
                    failure=failure,
                )
            )
    return rows


def write_demo_results(root: Path, *, seed: int = 7, corrupt: bool = False, incomplete: bool = True) -> Path:
    """Write results files for 5 submissions under ``root`` (a submissions folder); returns ``root``.

    With ``incomplete`` the MS specialist lacks one synth-epi case (shown as "incomplete"); with
    ``corrupt`` a sixth, invalid results file is added (the app must skip it and say why).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    case_noise = {}
    for dataset, (_, contrasts, _, _, _, n_cases) in DEMO_DATASETS.items():
        for c in range(n_cases):
            subject = f"sub-{dataset.split('-')[1][:3]}{c:02d}"
            relpath = f"{subject}/anat/{subject}_{contrasts[c % len(contrasts)]}.nii.gz"
            case_noise[f"{dataset}:{relpath}"] = float(rng.normal(0, 0.02))
    models = {name: {dataset} for name, dataset in DEMO_SPECIFIC.items()}
    models[DEMO_AGGREGATED] = {d for d, spec in DEMO_DATASETS.items() if spec[0] == "in-domain"}
    for i, (name, trained_on) in enumerate(sorted(models.items())):
        rows = _demo_case_rows(name, trained_on, np.random.default_rng(seed + 100 + i), case_noise)
        if incomplete and name == "nnunet-specific-ms":
            rows = [row for row in rows if not (row.dataset == "synth-epi" and row.subject.endswith("05"))]
        result = make_results(
            name, rows, suite=DEMO_SUITE, version=DEMO_VERSION, declared=sorted(trained_on), model_sha256="ab" * 32,
            licence="CC-BY-4.0" if len(trained_on) > 1 else "MIT",
            parameters=31_195_000 if len(trained_on) > 1 else 30_950_000,
            created_utc="2026-01-15T12:00:00Z", environment={"torch": "2.14.1"},
        )
        write_results_files(root, [result])
    if corrupt:
        bad = root / "broken-model" / "results" / f"{DEMO_SUITE}_{DEMO_VERSION}.json"
        bad.parent.mkdir(parents=True, exist_ok=True)
        bad.write_text('{"schema_version": 2, "submission": "broken-model", "cases": "oops"}\n', encoding="utf-8")
    return root


# ------------------------------------------------------------------------------------------------
# the hand-computed fixture: 3 submissions x 3 datasets x 4 cases
# ------------------------------------------------------------------------------------------------

HAND_VERSION = "hand0001"
#: dataset -> suite role, then per case: (case key, contrast, gt provenance, site)
HAND_DATASETS = {
    "alpha": ("in-domain", [("a1", "T2w", "manual", "s1"), ("a2", "T2w", "manual", "s1"), ("a3", "T2w", "manual", "s2"), ("a4", "T2w", "manual", "s2")]),
    "beta": ("in-domain", [("b1", "T1w", "manual", "s1"), ("b2", "T1w", "manual", "s1"), ("b3", "T2w", "manual", "s2"), ("b4", "T2w", "manual", "s2")]),
    "gamma": ("ood", [("g1", "EPI", "manual", "s3"), ("g2", "EPI", "manual", "s3"), ("g3", "EPI", "automated", "s3"), ("g4", "EPI", "automated", "s3")]),
}
#: submission -> (declared training datasets, {dataset: per-case dice; None = row absent})
HAND_DICE = {
    "spec-alpha": (["alpha"], {"alpha": [0.9, 0.8, 0.7, 0.6], "beta": [0.6, 0.6, 0.8, 0.8], "gamma": [0.4, 0.5, 0.6, 0.7]}),
    "agg": (["alpha", "beta"], {"alpha": [0.8, 0.8, 0.8, 0.8], "beta": [0.9, 0.7, 0.9, 0.9], "gamma": [0.9, 0.0, 0.6, 0.8]}),
    "spec-beta": (["beta"], {"alpha": [0.5, 0.6, 0.7, 0.8], "beta": [0.9, 0.9, 0.7, 0.7], "gamma": [0.3, 0.4, 0.5, None]}),
}
#: agg's training data holds the subject of g1 (leak); agg failed on g2 (scored worst: dice 0)
HAND_LEAKED = {("agg", "g1")}
HAND_FAILED = {("agg", "g2")}


def hand_case_id(dataset: str, key: str) -> str:
    return f"{dataset}:sub-{key}/anat/sub-{key}_T2w.nii.gz"


def hand_results() -> list[ResultsFile]:
    """The hand-computed fixture as results files (hd95 = 10 * (1 - dice), other metrics derived)."""
    results = []
    for submission, (declared, dice_by_dataset) in HAND_DICE.items():
        rows = []
        for dataset, (role, cases) in HAND_DATASETS.items():
            for (key, contrast, provenance, site), dice in zip(cases, dice_by_dataset[dataset]):
                if dice is None:
                    continue
                failed = (submission, key) in HAND_FAILED
                rows.append(
                    make_case(
                        dataset, f"sub-{key}", dice, contrast=contrast, case_id=hand_case_id(dataset, key),
                        image_sha256="0" * 64, site=site, suite_role=role, gt_provenance=provenance,
                        dataset_in_training=dataset in declared, subject_in_training=(submission, key) in HAND_LEAKED,
                        nsd=dice, rve=round(1 - dice, 6), runtime_s=None, peak_memory_mb=None,
                        failure="prediction crashed" if failed else None,
                    )
                )
        results.append(
            make_results(
                submission, rows, suite="hand", version=HAND_VERSION, declared=declared, model_sha256="0" * 64,
                parameters=1_500_000, created_utc="2026-01-01T00:00:00Z", environment={},
            )
        )
    return results


def write_hand_results(root: Path, *, corrupt: bool = False) -> Path:
    write_results_files(root, hand_results())
    if corrupt:
        bad = Path(root) / "corrupt" / "results" / f"hand_{HAND_VERSION}.json"
        bad.parent.mkdir(parents=True, exist_ok=True)
        bad.write_text("{not json", encoding="utf-8")
    return Path(root)


# ------------------------------------------------------------------------------------------------
# CSA consistency across contrasts: 2 submissions, one multi-contrast and one single-contrast dataset
# ------------------------------------------------------------------------------------------------

CSA_VERSION = "csa00001"
CSA_SUITE = "csa-suite"
#: case key -> (subject, contrast, reference CSA mm²); "multi" has two persons in 2 and 3 contrasts
CSA_CASES = {
    "multi": {"m1": ("sub-01", "T1w", 79.0), "m2": ("sub-01", "T2w", 80.0),
              "m3": ("sub-02", "T1w", 71.0), "m4": ("sub-02", "T2w", 71.0), "m5": ("sub-02", "T2star", 72.0)},
    "single": {"s1": ("sub-03", "T2w", 75.0), "s2": ("sub-04", "T2w", 77.0)},
}
#: submission -> (declared training datasets, case key -> predicted CSA mm²)
CSA_PREDICTED = {
    "csa-trained": (["multi"], {"m1": 80.0, "m2": 82.0, "m3": 70.0, "m4": 73.0, "m5": 76.0, "s1": 74.0, "s2": 79.0}),
    "csa-zero-shot": (["single"], {"m1": 81.0, "m2": 81.0, "m3": 70.0, "m4": 70.0, "m5": 73.0, "s1": 75.0, "s2": 76.0}),
}
#: leaked: csa-zero-shot's training data holds sub-01 (both its images)
CSA_LEAKED = {("csa-zero-shot", "m1"), ("csa-zero-shot", "m2")}


def csa_results() -> list[ResultsFile]:
    """Hand-computed CSA SDs (ddof=1) across one person's images, dataset "multi":

        csa-trained    sub-01 {80, 82} -> sqrt(2);  sub-02 {70, 73, 76} -> 3;   mean (sqrt(2) + 3) / 2
        csa-zero-shot  sub-01 {81, 81} -> 0 (leaked); sub-02 {70, 70, 73} -> sqrt(3)
        reference      sub-01 {79, 80} -> sqrt(.5); sub-02 {71, 71, 72} -> sqrt(1/3)
    """
    results = []
    roles = {"multi": "in-domain", "single": "ood"}
    for submission, (declared, predicted) in CSA_PREDICTED.items():
        rows = [
            make_case(dataset, subject, 0.9, contrast=contrast, suite_role=roles[dataset],
                      dataset_in_training=dataset in declared, subject_in_training=(submission, key) in CSA_LEAKED,
                      csa_mm2=predicted[key], csa_reference_mm2=reference)
            for dataset, cases in CSA_CASES.items() for key, (subject, contrast, reference) in cases.items()
        ]
        results.append(make_results(submission, rows, suite=CSA_SUITE, version=CSA_VERSION, declared=declared))
    return results
