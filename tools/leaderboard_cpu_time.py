"""CPU seconds (user + sys, all threads) of the leaderboard benchmark's three operations, for one source tree.

``tests/benchmarks/test_bench_leaderboard.py`` times wall clock, which a shared machine inflates; this measures the
CPU the same operations use, so two trees (e.g. before and after a change) can be compared in one session:

    python tools/leaderboard_cpu_time.py .                 # this checkout
    git archive REV | tar -x -C /tmp/rev && PYTHONPATH=/tmp/rev python tools/leaderboard_cpu_time.py /tmp/rev

Prints one JSON line: operation -> [best, mean] CPU seconds over ``--reps`` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def cpu_seconds(run, setup=None, reps: int = 3) -> list[float]:
    spent = []
    for _ in range(reps):
        if setup is not None:
            setup()
        before = os.times()
        run()
        after = os.times()
        spent.append((after.user - before.user) + (after.system - before.system))
    return [round(min(spent), 3), round(sum(spent) / len(spent), 3)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", help="source tree whose tests/benchmarks/test_bench_leaderboard.py and code to time")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    sys.path[:0] = [args.tree, os.path.join(args.tree, "tests"), os.path.join(args.tree, "tests", "benchmarks")]
    from test_bench_leaderboard import FILTER_CHANGES, synthetic_cases_frame

    from leaderboard import data as board_data, tables

    cases = synthetic_cases_frame()
    timings = {"main_table_from_raw": cpu_seconds(lambda: tables.build_main_table(cases), reps=args.reps)}
    prepared = board_data.prepare(cases)
    for name, (filters, _target) in sorted(FILTER_CHANGES.items()):
        def setup():  # the app's state before the change: the unfiltered table was shown
            prepared.clear_memo()
            tables.build_main_table(prepared)

        timings[f"filter_change[{name}]"] = cpu_seconds(lambda: tables.build_main_table(prepared, filters=filters),
                                                        setup, reps=args.reps)
    print(json.dumps(timings))


if __name__ == "__main__":
    main()
