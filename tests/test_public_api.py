"""The curated public API: every name resolves, and the package docstring's examples run as doctests."""

import doctest
import subprocess
import sys

import benchmark
from benchmark.analysis import labels, summary


def test_every_public_name_resolves_to_a_documented_object():
    for name in benchmark.__all__:
        obj = getattr(benchmark, name)
        if name != "__version__":
            assert obj.__doc__, f"benchmark.{name} has no docstring"
            assert f"cb.{name}(" in benchmark.__doc__ or f"cb.{name}" in benchmark.__doc__ or name in (
                "index_dataset", "verify_split", "score_submission", "write_report"), name


def test_the_package_docstring_examples_run():
    failures, tried = doctest.testmod(benchmark, optionflags=doctest.ELLIPSIS)
    assert tried >= 15 and failures == 0


def test_module_doctests_of_the_analysis_layer_run():
    for module in (summary, labels):
        failures, tried = doctest.testmod(module)
        assert tried >= 3 and failures == 0, module.__name__


def test_importing_the_package_does_not_import_torch():
    code = "import sys, benchmark; benchmark.load_dataset('gmchallenge'); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
