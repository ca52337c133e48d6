"""How units become SLURM job arrays: the cluster's array cap, and packing tiny units into one array task.

A cluster refuses an array with more tasks than its ``MaxArraySize`` (indices 0 .. MaxArraySize - 1; SLURM's
default is 1001, many sites set 120 or less), and submitit does not split past it. So units are grouped:

1. **packing** (``units_per_task``): an array task may run several units one after another. ``auto`` packs only
   scoring units known to be tiny: those of a submission whose canary unit took under ``pack_below_s`` seconds
   per case (measured, from the canary's ``done.json``), so that a task holds about ``pack_target_s`` seconds of
   work, and never into fewer tasks than ``array_parallelism`` (the cluster still runs that many at once).
   Units without a measurement (training, ``--no-wait``, a canary not run yet) are never packed by ``auto``.
2. **splitting**: the tasks go into as few arrays as the cap allows (ceil(tasks / cap)).

The grouping decides only where a unit runs; each unit still writes its own files, so the merged results are the
same bytes whatever the grouping.
"""

from __future__ import annotations

import math
import re
import subprocess
from collections.abc import Sequence

# SLURM's default MaxArraySize (slurm.conf(5)): used when the cluster's configuration cannot be read.
SLURM_DEFAULT_MAX_ARRAY_SIZE = 1001


def parse_max_array_size(config_text: str) -> int | None:
    """``MaxArraySize`` from the output of ``scontrol show config`` (None when absent)."""
    match = re.search(r"^\s*MaxArraySize\s*=\s*(\d+)\s*$", config_text, re.MULTILINE)
    return int(match.group(1)) if match else None


def cluster_max_array_size(timeout_s: float = 30.0) -> tuple[int, str]:
    """(the cluster's MaxArraySize, where it came from). Falls back to SLURM's default, saying why."""
    try:
        completed = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True,
                                   timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return SLURM_DEFAULT_MAX_ARRAY_SIZE, f"scontrol show config failed ({error}); SLURM's default assumed"
    found = parse_max_array_size(completed.stdout) if completed.returncode == 0 else None
    if found is None:
        return SLURM_DEFAULT_MAX_ARRAY_SIZE, "MaxArraySize not in `scontrol show config`; SLURM's default assumed"
    return found, "scontrol show config"


def tasks_per_array(max_array_size: int) -> int:
    """Array tasks one submission may hold: indices 0 .. MaxArraySize - 1. MaxArraySize 0 disables arrays in
    SLURM; one task per submission is then all that can be done (each is still submitted as a 1-task array)."""
    return max(1, int(max_array_size))


def auto_units_per_task(estimates_s: Sequence[float | None], *, parallelism: int, pack_below_s: float,
                        pack_target_s: float) -> int:
    """Units per array task for ``units_per_task: auto``: > 1 only when every unit has an estimate and all are
    under ``pack_below_s``; then as many as fill ``pack_target_s``, keeping at least ``parallelism`` tasks."""
    if not estimates_s or any(estimate is None for estimate in estimates_s):
        return 1
    longest = max(float(estimate) for estimate in estimates_s)  # type: ignore[arg-type]
    if longest >= pack_below_s:
        return 1
    by_target = math.floor(pack_target_s / max(longest, 1e-3))
    by_parallelism = math.ceil(len(estimates_s) / max(1, parallelism))
    return max(1, min(by_target, by_parallelism))


def pack(uids: Sequence[str], units_per_task: int) -> list[list[str]]:
    """Consecutive runs of ``units_per_task`` units, in plan order (each becomes one array task)."""
    size = max(1, int(units_per_task))
    return [list(uids[start:start + size]) for start in range(0, len(uids), size)]


def split(tasks: Sequence[list[str]], per_array: int) -> list[list[list[str]]]:
    """The tasks in as few arrays as ``per_array`` allows, in order."""
    size = max(1, int(per_array))
    return [list(tasks[start:start + size]) for start in range(0, len(tasks), size)]
