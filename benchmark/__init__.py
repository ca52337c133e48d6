"""cordbench: an open benchmark for spinal cord MRI segmentation.

The public API: the functions a notebook user calls, in the order data flows. Each name below has an example
that runs as a doctest (``tests/test_public_api.py``). Importing ``benchmark`` is cheap: the names are loaded
on first use, so torch and nnU-Net are imported only by the functions that need them.

**What is benchmarked** (the registry, splits and submissions shipped with the package):

>>> import benchmark as cb
>>> cb.load_dataset("gmchallenge").licence
'CC0'
>>> [entry.id for entry in cb.load_suite("real-mini").datasets]
['gmchallenge', 'spinegeneric-unf01', 'sct-testing']
>>> cb.load_split("synthetic").version
'2f1d4484edef'
>>> sorted(dataset.id for dataset in cb.list_datasets())[:3]
['basel-mp2rage', 'canproco', 'episeg']
>>> cb.load_submission("threshold-baseline").model.type
'command'

**Metrics** on masks in canonical RAS+ with their voxel spacing (mm), as defined in docs/metrics.md:

>>> import numpy as np
>>> truth = np.zeros((10, 10, 4), np.uint8); truth[3:7, 3:7, :] = 1
>>> guess = np.zeros_like(truth); guess[3:7, 4:8, :] = 1
>>> round(cb.compute_metrics(guess, truth, (0.5, 0.5, 3.0))["dice"], 3)
0.75

**Results files and their summaries** (every number shown anywhere comes from ``benchmark.analysis.summary``; the
unit of analysis is the person: each person's scans are averaged first, intervals resample people):

>>> results = cb.load_results(cb.results_path(cb.load_submission("threshold-baseline").folder, "real-mini",
...                                           cb.load_split("real-mini").version))
>>> results.suite, len(results.cases), len({case.person for case in results.cases})
('real-mini', 7, 3)
>>> ci = cb.mean_ci([0.91, 0.85, 0.88, 0.97, 0.79, 0.93, 0.90, 0.86], dataset="synth-ms",
...                 persons=["a", "a", "b", "c", "d", "e", "f", "g"])
>>> round(ci.mean, 4), ci.n, ci.scans, ci.low <= ci.mean <= ci.high
(0.8871, 7, 8, True)
>>> cb.mean_ci([0.91, 0.85], dataset="synth-ms", persons=["a", "a"])  # one person: a mean, no interval
MeanCI(mean=0.88, low=nan, high=nan, n=1, scans=2)
>>> paired = cb.paired_comparison([0.91, 0.85, 0.88, 0.97, 0.90, 0.86], [0.90, 0.80, 0.86, 0.93, 0.85, 0.84],
...                               dataset="synth-ms")
>>> round(paired.difference.mean, 4), paired.p_value  # 6 people all better: the exact two-sided p is 2/2^6
(0.0317, 0.03125)

**The regression gate** on two results files of the same suite and version (real-mini tests 2 people of gmchallenge
and 1 of sct-testing: too few people for a test, so the threshold baseline does not fail against the aggregated
model):

>>> aggregated = cb.load_results(cb.results_path(cb.load_submission("nnunet-real-mini-aggregated-quick").folder,
...                                              "real-mini", results.benchmark_version))
>>> report = cb.compare_results(results, aggregated, metric="dice", margin=0.01)
>>> report.passed, [(verdict.dataset, verdict.n, verdict.scans, verdict.status) for verdict in report.verdicts]
(True, [('gmchallenge', 2, 2, 'too few people'), ('sct-testing', 1, 5, 'too few people')])

**Errors**: everything cordbench raises on purpose derives from :class:`CordbenchError`:

>>> try:
...     cb.load_dataset("gmchalenge")
... except cb.CordbenchError as error:
...     print(str(error).split(";")[0])
unknown dataset 'gmchalenge'
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

#: public name -> the module that defines it (loaded on first use)
_EXPORTS: dict[str, str] = {
    "CordbenchError": "benchmark.errors",
    "load_dataset": "benchmark.data.registry",
    "load_suite": "benchmark.data.registry",
    "list_datasets": "benchmark.data.registry",
    "index_dataset": "benchmark.data.bids_index",
    "load_split": "benchmark.data.splits",
    "verify_split": "benchmark.data.splits",
    "load_submission": "benchmark.data.submissions",
    "compute_metrics": "benchmark.evaluation.metrics",
    "score_submission": "benchmark.evaluation.scoring",
    "load_results": "benchmark.evaluation.results",
    "results_path": "benchmark.evaluation.results",
    "mean_ci": "benchmark.analysis.summary",
    "paired_comparison": "benchmark.analysis.summary",
    "compare_results": "benchmark.analysis.gate",
    "write_report": "benchmark.analysis.report",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'benchmark' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted(__all__)
