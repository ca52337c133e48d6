"""Baseline training options: the suite's quick recipe, explicit overrides, and the reproduce command."""

from pathlib import Path

import pytest

from benchmark.training.baselines import BaselinePlan, reproduce_command, training_recipe
from benchmark.data.registry import load_suite
from benchmark.data.submissions import load_submission

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def pinned_kernels(monkeypatch):
    """The commands below are those of pinned kernels (the default), whatever this run of the suite uses."""
    from benchmark import kernels

    monkeypatch.setattr(kernels, "current", lambda: kernels.KernelSetting("pinned", kernels.PINNED_LABEL, "test"))


def test_native_kernels_are_spelled_out_in_the_reproduce_command(monkeypatch):
    from benchmark import kernels

    monkeypatch.setattr(kernels, "current", lambda: kernels.KernelSetting("native", "native-avx512", "test"))
    plan = BaselinePlan("nnunet-synthetic-synth-ms-quick", Path("raw"), "specific", ("synth-ms",))
    assert reproduce_command("synthetic", plan, "quick", 0, training_recipe("synthetic", "quick")).endswith(
        "--only specific --dataset synth-ms --native-kernels")


def test_synthetic_suite_trains_with_the_quick_profile_defaults():
    recipe = training_recipe("synthetic", "quick")
    assert (recipe.epochs, recipe.iterations, recipe.augmentation, recipe.postprocessing) == \
        (None, None, "default", "none")
    plan = BaselinePlan("nnunet-synthetic-synth-ms-quick", Path("raw"), "specific", ("synth-ms",))
    assert reproduce_command("synthetic", plan, "quick", 0, recipe) == (
        "cordbench convert --suite synthetic --out RAW && cordbench train --suite synthetic --raw RAW "
        "--profile quick --seed 0 --only specific --dataset synth-ms")


def test_real_mini_recipe_is_used_unless_overridden_and_is_spelled_out():
    suite_recipe = load_suite("real-mini").quick_recipe
    assert suite_recipe.postprocessing == "largest-component" and suite_recipe.epochs and suite_recipe.why
    recipe = training_recipe("real-mini", "quick")
    assert recipe == suite_recipe
    overridden = training_recipe("real-mini", "quick", epochs=3, augmentation="default", postprocessing="none")
    assert (overridden.epochs, overridden.augmentation, overridden.postprocessing) == (3, "default", "none")
    assert training_recipe("real-mini", "full").postprocessing == "none"  # full = nnU-Net's defaults
    plan = BaselinePlan("nnunet-real-mini-aggregated-quick", Path("raw"), "aggregated",
                        ("gmchallenge", "spinegeneric-unf01"))
    command = reproduce_command("real-mini", plan, "quick", 0, recipe)
    assert command.endswith(f"--only aggregated --epochs {recipe.epochs}"
                            + (f" --augmentation {recipe.augmentation}" if recipe.augmentation != "default" else "")
                            + " --postprocessing largest-component")


@pytest.mark.parametrize("name", ["nnunet-real-mini-aggregated-quick", "nnunet-real-mini-gmchallenge-quick",
                                  "nnunet-real-mini-spinegeneric-unf01-quick"])
def test_committed_real_mini_baselines_were_trained_with_the_suite_recipe(name):
    submission = load_submission(name, REPO / "submissions")
    recipe = load_suite("real-mini").quick_recipe
    assert submission.inference.postprocessing == recipe.postprocessing
    assert f"--epochs {recipe.epochs}" in submission.training.reproduce
    expected_trainer = {"default": "CordbenchTrainer", "da5": "CordbenchTrainerDA5"}[recipe.augmentation]
    assert submission.model.trainer == expected_trainer
