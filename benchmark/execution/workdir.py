"""Where execution writes: the active workspace's ``work/`` (benchmark.workspace); without a workspace, nothing.

Layout: ``units/<id>/`` (one folder per work unit), ``plans/<request id>.json``, ``slurm/<request id>/``
(submitit's job files and logs), ``tmp/`` (each local worker's temporary folder while it runs).

A command run in a folder without ``cordbench.yaml`` (and no ``--workspace``, no ``$CORDBENCH_WORKSPACE``) is
refused with the way to make one, as every command that writes (benchmark/workspace.py): work units are never
written into whatever folder the command happens to run in.
"""

from __future__ import annotations

from pathlib import Path


def work_root(what: str = "this command") -> Path:
    """The execution work folder (absolute): the active workspace's ``work/``; WorkspaceError without one."""
    from benchmark import workspace

    return workspace.require(what).work_dir.resolve()


def workspace_root() -> Path:
    """The folder ``cordbench.yaml`` (executor profiles) is read from: the active workspace."""
    from benchmark import workspace

    return workspace.require("running work units").root.resolve()
