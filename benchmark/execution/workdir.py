"""Where execution writes: the active workspace's ``work/`` (benchmark.workspace), else ``./work``.

Layout: ``units/<id>/`` (one folder per work unit), ``plans/<request id>.json``, ``slurm/<request id>/``
(submitit's job files and logs).
"""

from __future__ import annotations

from pathlib import Path


def work_root() -> Path:
    """The execution work folder (absolute): the active workspace's ``work/``, else ``./work``."""
    from benchmark import workspace

    active = workspace.active()
    return (active.work_dir if active else Path.cwd() / "work").resolve()


def workspace_root() -> Path:
    """The folder ``cordbench.yaml`` (executor profiles) is read from: the active workspace, else the current one."""
    from benchmark import workspace

    active = workspace.active()
    return (active.root if active else Path.cwd()).resolve()
