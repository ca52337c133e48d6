"""Ships the repository's reference submissions inside the package (``benchmark/reference_submissions``).

Everything else is declared in pyproject.toml. The reference submissions stay at the repository's top level
(where contributors add theirs and the benchmark gate looks for them); a wheel carries their manifests, scripts
and committed results, read-only at run time (``benchmark.workspace.builtin_submissions_dir``). Weights and
predictions are never shipped (they are not in git either).
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = ("REFERENCE", "*/submission.yaml", "*/*.py", "*/results/*.json")


class BuildWithReferenceSubmissions(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the repository's submissions/ directly
        target = Path(self.build_lib) / "benchmark" / "reference_submissions"
        for pattern in SHIPPED:
            for source in sorted((ROOT / "submissions").glob(pattern)):
                destination = target / source.relative_to(ROOT / "submissions")
                destination.parent.mkdir(parents=True, exist_ok=True)
                self.copy_file(str(source), str(destination))


setup(cmdclass={"build_py": BuildWithReferenceSubmissions})
