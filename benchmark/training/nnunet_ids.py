"""nnU-Net dataset numbers of the workspace's suites, allocated once and never reused by another suite.

nnU-Net finds a dataset by its number alone, so two suites converted into the same ``nnUNet_raw`` must not
share one. Each suite that is not built-in gets a block (aggregated + one per in-domain dataset), recorded in
the workspace's ``work/nnunet_ids.json``; later runs read the same block back.
"""

from __future__ import annotations

import json

from benchmark import workspace
from benchmark.errors import CordbenchError
from benchmark.io import atomic_write_json

MAX_ID = 999


class NnunetIdError(CordbenchError, ValueError):
    """No free block of nnU-Net dataset numbers, or an unreadable allocation file."""


def read_allocations(path) -> dict[str, dict[str, int]]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise NnunetIdError(f"{path}: not valid JSON ({error}); delete it to re-allocate") from error
    if not isinstance(data, dict) or not all(isinstance(value, dict) and {"base", "size"} <= set(value)
                                             for value in data.values()):
        raise NnunetIdError(f"{path}: expected {{suite: {{base, size}}}}; delete it to re-allocate")
    return data


def allocate_base_id(suite_id: str, size: int, *, reserved: dict[str, range]) -> int:
    """The first number of ``suite_id``'s block of ``size`` numbers (allocated now when it has none yet)."""
    active = workspace.require(f"allocating nnU-Net dataset numbers for suite {suite_id!r}")
    path = active.nnunet_ids_path
    allocations = read_allocations(path)
    mine = allocations.get(suite_id)
    if mine and mine["size"] >= size:
        return int(mine["base"])
    taken = [block for name, block in reserved.items() if name != suite_id]
    taken += [range(value["base"], value["base"] + value["size"]) for name, value in allocations.items()
              if name != suite_id]
    base = active.config().nnunet_first_id
    while base + size - 1 <= MAX_ID:
        clash = next((block for block in taken if base < block.stop and block.start < base + size), None)
        if clash is None:
            allocations[suite_id] = {"base": base, "size": size}
            atomic_write_json(path, allocations)
            return base
        base = clash.stop
    raise NnunetIdError(f"{path}: no free block of {size} nnU-Net dataset numbers from "
                        f"{active.config().nnunet_first_id} to {MAX_ID}; pass --base-id")
