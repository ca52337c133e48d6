"""Test-time mirroring: what it costs and what it gives, per dataset of a suite (the protocol's default is off).

Scores each given nnU-Net submission on the suite twice through cordbench's own scoring (the same regions,
post-processing and metrics as `cordbench score`): with mirroring as its manifest says, and with it flipped (a
scratch copy of the manifest pointing at the same model folder). Per dataset: mean Dice without and with
mirroring, their paired difference (with minus without) with its 95 % bootstrap CI and Wilcoxon p-value over
PEOPLE (a person's cases are averaged first: several contrasts of one person are not independent), and the
median inference seconds per volume of both runs (measured in the same process, one after the other).

    .venv/bin/python tools/mirroring_study.py nnunet-synthetic-aggregated-quick --suite synthetic \
        --data-root DATA --scratch /tmp/mirroring --threads 1 --json docs-numbers.json

Everything is written under --scratch (results files, prediction caches, the flipped manifests); the
submissions themselves are only read.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import yaml

from benchmark.analysis.summary import paired_comparison
from benchmark.data.submissions import MANIFEST_NAME, NnunetModelSpec, load_submission
from benchmark.evaluation.scoring import score_submission


def flipped_copy(name: str, scratch: Path) -> tuple[Path, bool]:
    """A scratch submission identical to ``name`` except for test-time mirroring; (its folder, its mirroring)."""
    submission = load_submission(name)
    if not isinstance(submission.model, NnunetModelSpec) or not submission.model.folder:
        raise SystemExit(f"{name}: not an nnU-Net model folder submission; mirroring is an nnU-Net setting")
    mirroring = not submission.inference.test_time_augmentation
    manifest = yaml.safe_load((submission.folder / MANIFEST_NAME).read_text())
    manifest["name"] = f"{submission.name}-mirroring-{'on' if mirroring else 'off'}"
    manifest["model"]["folder"] = str(submission.resolve(submission.model.folder).resolve())
    manifest.setdefault("inference", {})["test_time_augmentation"] = mirroring
    folder = scratch / "submissions" / manifest["name"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST_NAME).write_text(yaml.safe_dump(manifest, sort_keys=False))
    return folder, mirroring


def per_person(results) -> dict[str, dict[str, float]]:
    """dataset -> person -> mean Dice of that person's cases."""
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    for case in results.cases:
        values[(case.dataset, case.subject)].append(case.dice)
    people: dict[str, dict[str, float]] = defaultdict(dict)
    for (dataset, subject), dice in values.items():
        people[dataset][subject] = statistics.fmean(dice)
    return people


def seconds_by_dataset(results) -> dict[str, float]:
    seconds: dict[str, list[float]] = defaultdict(list)
    for case in results.cases:
        if case.runtime_s is not None:
            seconds[case.dataset].append(case.runtime_s)
    return {dataset: statistics.median(values) for dataset, values in seconds.items()}


def study(name: str, suite: str, data_root: Path, scratch: Path, threads: int | None, runtime: str | None) -> dict:
    original = load_submission(name)
    runs = {}
    flipped, flipped_mirroring = flipped_copy(name, scratch)
    for label, source in ((original.inference.test_time_augmentation, name), (flipped_mirroring, flipped)):
        key = "on" if label else "off"
        results, _ = score_submission(source, suite, data_root=data_root, progress=False, threads=threads,
                                      runtime=runtime, out_path=scratch / f"{Path(str(source)).name}-{key}.json",
                                      cache_dir=scratch / "predictions" / f"{Path(str(source)).name}-{key}")
        runs[key] = results
    on, off = per_person(runs["on"]), per_person(runs["off"])
    seconds_on, seconds_off = seconds_by_dataset(runs["on"]), seconds_by_dataset(runs["off"])
    rows = []
    for dataset in sorted(off):
        people = sorted(off[dataset])
        with_values = [on[dataset][person] for person in people]
        without_values = [off[dataset][person] for person in people]
        comparison = paired_comparison(with_values, without_values, dataset=dataset)
        difference = comparison.difference
        rows.append({"dataset": dataset, "people": len(people),
                     "dice_without": statistics.fmean(without_values), "dice_with": statistics.fmean(with_values),
                     "difference": difference.mean, "ci": [difference.low, difference.high],
                     "p_value": comparison.p_value,
                     "s_per_volume_without": seconds_off.get(dataset), "s_per_volume_with": seconds_on.get(dataset)})
    return {"submission": name, "suite": suite, "runtime": runs["off"].runtime, "threads": runs["off"].threads,
            "cpu": runs["off"].cpu_model, "rows": rows}


def markdown(result: dict) -> str:
    lines = [f"{result['submission']} on {result['suite']} ({result['runtime']}, {result['threads']} thread(s), "
             f"{result['cpu']}); unit of analysis: people",
             "", "| dataset | people | Dice without | Dice with | with − without [95 % CI] | p | s/volume without | "
                 "with | cost |", "|---|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        cost = (f"{row['s_per_volume_with'] / row['s_per_volume_without']:.1f}×"
                if row["s_per_volume_with"] and row["s_per_volume_without"] else "")
        lines.append(f"| {row['dataset']} | {row['people']} | {row['dice_without']:.4f} | {row['dice_with']:.4f} | "
                     f"{row['difference']:+.4f} [{row['ci'][0]:+.4f}, {row['ci'][1]:+.4f}] | {row['p_value']:.3g} | "
                     f"{row['s_per_volume_without'] or float('nan'):.2f} | {row['s_per_volume_with'] or float('nan'):.2f} "
                     f"| {cost} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("submissions", nargs="+")
    parser.add_argument("--suite", required=True)
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--scratch", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--runtime", default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    results = [study(name, args.suite, args.data_root, args.scratch, args.threads, args.runtime)
               for name in args.submissions]
    for result in results:
        print(markdown(result), end="\n\n")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
