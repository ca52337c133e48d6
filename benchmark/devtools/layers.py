"""The layering check: a stage imports only earlier stages.

Data flows one way (docs/ARCHITECTURE.md)::

    base (errors, types, io, environment, workspace) -> data -> training -> models -> evaluation
        -> analysis -> execution -> cli / demo / leaderboard

Every ``import`` and ``from ... import`` of every module under ``benchmark/`` and ``leaderboard/`` is read with
:mod:`ast` (function-level imports included: a lazy import is still a dependency) and each import of a
later stage is reported as ``file:line: <module> (stage) imports <module> (stage)``.

Run it with ``python -m benchmark.devtools.layers``; exit code 1 lists the offending imports.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

#: Stages in the order data flows; a module may import its own stage and every earlier one.
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("base", ("benchmark", "benchmark.errors", "benchmark.types", "benchmark.io", "benchmark.environment",
              "benchmark.workspace")),
    ("data", ("benchmark.data",)),
    ("training", ("benchmark.training",)),
    ("models", ("benchmark.models",)),
    ("evaluation", ("benchmark.evaluation",)),
    ("analysis", ("benchmark.analysis",)),
    ("execution", ("benchmark.execution",)),
    ("interface", ("benchmark.cli", "benchmark.demo", "benchmark.__main__", "benchmark.devtools", "leaderboard")),
)
_RANK = {stage: rank for rank, (stage, _prefixes) in enumerate(STAGES)}


@dataclass(frozen=True)
class Violation:
    file: Path
    line: int
    importer: str
    importer_stage: str
    imported: str
    imported_stage: str

    def __str__(self) -> str:
        return (f"{self.file}:{self.line}: {self.importer} ({self.importer_stage}) imports {self.imported} "
                f"({self.imported_stage}), a later stage")


def stage_of(module: str) -> str | None:
    """The stage of a dotted module name (longest matching prefix), or None for third-party modules."""
    best: tuple[int, str] | None = None
    for stage, prefixes in STAGES:
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[0]:
                    best = (len(prefix), stage)
    return best[1] if best else None


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(tree: ast.AST, importer: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the tree; ``from benchmark import x`` counts as benchmark.x."""
    found: list[tuple[int, str]] = []
    package = importer.rsplit(".", 1)[0] if "." in importer else importer
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base))
            found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names
                         if stage_of(f"{base}.{alias.name}") not in (None, stage_of(base)))
    return found


def check(root: Path) -> list[Violation]:
    """Every import of a later stage under ``root/benchmark`` and ``root/leaderboard``."""
    violations: list[Violation] = []
    for folder in ("benchmark", "leaderboard"):
        for path in sorted((root / folder).rglob("*.py")):
            importer = module_name(path, root)
            importer_stage = stage_of(importer)
            if importer_stage is None:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for line, imported in imported_modules(tree, importer):
                imported_stage = stage_of(imported)
                if imported_stage is not None and _RANK[imported_stage] > _RANK[importer_stage]:
                    violations.append(Violation(path.relative_to(root), line, importer, importer_stage,
                                                imported, imported_stage))
    return violations


def main(argv: list[str] | None = None) -> int:
    root = Path(argv[0]) if argv else Path(__file__).resolve().parents[2]
    violations = check(root)
    for violation in violations:
        print(violation)
    if violations:
        print(f"{len(violations)} import(s) of a later stage", file=sys.stderr)
        return 1
    print(f"layers ok: {' -> '.join(stage for stage, _ in STAGES)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
