"""The `cordbench` command line: one module per stage, each command a thin shell over that stage's API.

Every command goes through one error handler (:func:`benchmark.cli.shell.handle_errors`)."""

from __future__ import annotations

# imported in pipeline order: `cordbench --help` lists the commands in the order they are used
from benchmark.cli import data, suites, training, models, evaluation, analysis, demo  # noqa: F401, I001
from benchmark.cli.shell import STATE, app, main

__all__ = ["STATE", "app", "main"]
