"""Train the suite's baselines (one aggregated + one specific nnU-Net per in-domain dataset) and register
each trained model as a submission with its DECLARED training data.

The raw datasets come from ``benchmark.training.convert``; training goes through ``benchmark.training.nnunet.train_model``.
Models are registered in the active workspace (``submissions/<name>/model/``), never over a built-in reference
submission: a name in use is refused unless ``replace`` moves the old folder aside. The manifest records the
checkpoint's sha256 and the command that reproduces it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from benchmark.training.convert import dataset_names
from benchmark.environment import git_revision, package_versions
from benchmark.errors import CordbenchError
from benchmark.io import replace_folder
from benchmark import kernels, workspace
from benchmark.data.registry import Augmentation, Postprocessing, QuickRecipe, load_suite
from benchmark.data.splits import load_split
from benchmark.data.submissions import (SUBMISSIONS_DIR, InferenceSpec, NnunetModelSpec, Submission, TrainingData,
                                   write_manifest)

Profile = Literal["quick", "full"]
#: Where replaced submissions are moved (inside the submissions folder; hidden from listings and the leaderboard).
REPLACED_DIR = ".replaced"


class BaselineError(CordbenchError, ValueError):
    """Training cannot start: the converted dataset is missing or stale."""


@dataclass(frozen=True)
class BaselinePlan:
    """One model to train: its submission name, its nnU-Net raw dataset and what it is trained on."""

    submission_name: str
    raw_folder: Path
    kind: Literal["aggregated", "specific"]
    datasets: tuple[str, ...]
    family: str = ""
    seed: int = 0


def submission_name(suite_id: str, key: str, profile: Profile, seed: int = 0) -> str:
    """``nnunet-synthetic-aggregated-quick``, ``nnunet-synthetic-synth-ms-quick``; seeds other than 0 add
    ``-seed<N>`` (``nnunet-synthetic-synth-ms-quick-seed1``), seed 0 keeps the family's own name."""
    family = family_name(suite_id, key, profile)
    return family if seed == 0 else f"{family}-seed{seed}"


def family_name(suite_id: str, key: str, profile: Profile) -> str:
    """The name shared by every seed of one baseline: ``nnunet-<suite>-<key>-<profile>``."""
    return f"nnunet-{suite_id}-{key}-{profile}"


def plan_baselines(suite_id: str, raw_root: Path, profile: Profile, *,
                   only: Literal["aggregated", "specific"] | None = None, base_id: int | None = None,
                   datasets: list[str] | None = None, name: str | None = None, seed: int = 0) -> list[BaselinePlan]:
    """The models to train. ``name``: the submission name when one model is planned, else the prefix of
    ``<name>-aggregated`` and ``<name>-<dataset>`` (default: ``nnunet-<suite>-<key>-<profile>``). A seed N > 0
    appends ``-seed<N>`` to each name; the name without it is the model's ``family``."""
    suite = load_suite(suite_id)
    in_domain = suite.ids("in-domain")
    names = dataset_names(suite_id, in_domain, base_id)
    plans: list[BaselinePlan] = []
    for dataset_id in in_domain:
        if only in (None, "specific") and (not datasets or dataset_id in datasets):
            plans.append(BaselinePlan(submission_name(suite_id, dataset_id, profile, seed),
                                      Path(raw_root) / names[dataset_id], "specific", (dataset_id,),
                                      family_name(suite_id, dataset_id, profile), seed))
    if only in (None, "aggregated"):
        plans.append(BaselinePlan(submission_name(suite_id, "aggregated", profile, seed),
                                  Path(raw_root) / names["aggregated"], "aggregated", tuple(in_domain),
                                  family_name(suite_id, "aggregated", profile), seed))
    if name is not None:
        families = [name if len(plans) == 1 else
                    f"{name}-{'aggregated' if plan.kind == 'aggregated' else plan.datasets[0]}" for plan in plans]
        plans = [dataclasses.replace(plan, family=family,
                                     submission_name=family if seed == 0 else f"{family}-seed{seed}")
                 for plan, family in zip(plans, families)]
    for plan in plans:
        if not (plan.raw_folder / "dataset.json").exists():
            raise BaselineError(f"{plan.raw_folder}: converted dataset not found; run "
                                f"`cordbench convert --suite {suite_id} --out {raw_root}` first")
    return plans


def training_subjects(raw_folder: Path) -> dict[str, list[str]]:
    """dataset id -> subjects in imagesTr, read from the converter's provenance file."""
    provenance = json.loads((raw_folder / "provenance.json").read_text(encoding="utf-8"))
    subjects: dict[str, set[str]] = {}
    for case in provenance["cases"].values():
        if case.get("split") == "train":
            subjects.setdefault(case["dataset"], set()).add(case["subject"])
    return {dataset_id: sorted(listed) for dataset_id, listed in sorted(subjects.items())}


def copy_model(model_folder: Path, checkpoint: Path, target: Path) -> Path:
    """Copy what inference needs (plans, dataset.json, fingerprint, the checkpoint) into ``target``."""
    staging = target.with_name(target.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    (staging / checkpoint.parent.name).mkdir(parents=True)
    for name in ("plans.json", "dataset.json", "dataset_fingerprint.json"):
        if (model_folder / name).exists():
            shutil.copyfile(model_folder / name, staging / name)
    shutil.copyfile(checkpoint, staging / checkpoint.parent.name / checkpoint.name)
    replace_folder(staging, target)
    return target


def register_trained(plan: BaselinePlan, trained, suite_id: str, profile: Profile, *, seed: int,
                     submissions_root: Path | None = None, reproduce: str,
                     postprocessing: Postprocessing = "none", replace: bool = False) -> Submission:
    root = Path(submissions_root) if submissions_root else workspace.require("`cordbench train`").submissions_dir
    folder = root / plan.submission_name
    if submissions_root is None:
        refuse_name_clash(plan.submission_name, folder, replace=replace, new_sha256=trained.checkpoint_sha256)
    copy_model(trained.model_folder, trained.checkpoint, folder / "model")
    split = load_split(suite_id)
    description = (f"nnU-Net ({trained.configuration}, {profile} profile) trained on "
                   + ("ALL in-domain datasets of " if plan.kind == "aggregated" else f"{plan.datasets[0]} of ")
                   + f"the {suite_id} suite (train split {split.version}); seed {seed}.")
    submission = Submission(
        name=plan.submission_name,
        description=description,
        authors=["cordbench baselines"],
        licence="MIT",
        model=NnunetModelSpec(type="nnunet", folder="model", checkpoint=trained.checkpoint.name,
                              sha256=trained.checkpoint_sha256, configuration=trained.configuration,
                              folds=list(trained.folds), trainer=trained.trainer_name, plans="nnUNetPlans"),
        training=TrainingData(
            datasets=list(plan.datasets),
            subjects=training_subjects(plan.raw_folder),
            split=f"{suite_id}@{split.version}",
            training_time_s=round(trained.training_seconds, 1),
            cpu_kernels=trained.cpu_kernels,
            packages=package_versions(),
            git_revision=git_revision(),
            reproduce=reproduce,
        ),
        inference=InferenceSpec(device="auto", test_time_augmentation=False, postprocessing=postprocessing),
        parameters=count_parameters(folder / "model" / trained.checkpoint.parent.name / trained.checkpoint.name),
        family=plan.family or None,
        seed=seed,
    )
    write_manifest(submission, folder)
    submission.folder = folder.resolve()
    return submission


def refuse_name_clash(name: str, folder: Path, *, replace: bool, new_sha256: str | None = None) -> None:
    """A trained model never takes a built-in submission's name, nor silently a workspace one's: with ``replace``
    the old folder is moved aside (``submissions/.replaced/<name>.<UTC time>``, out of every listing), so its results
    never sit beside another model.
    Re-registering the very same weights (a resumed run) is not a clash."""
    import datetime

    from benchmark.data.submissions import SubmissionError, parse_manifest

    builtin = SUBMISSIONS_DIR / name / "submission.yaml"
    if builtin.exists() and SUBMISSIONS_DIR.resolve() != folder.parent.resolve():
        raise BaselineError(f"{builtin}: {name!r} is a built-in reference submission; give the model another name "
                            "with --name")
    manifest = folder / "submission.yaml"
    if not manifest.exists():
        return
    try:
        existing_sha = parse_manifest(manifest).model.sha256
    except (SubmissionError, AttributeError):
        existing_sha = None
    if new_sha256 is not None and existing_sha == new_sha256:
        return
    if not replace:
        raise BaselineError(f"{manifest}: a submission named {name!r} exists already (another model); pass --replace "
                            "to move it aside, or --name to register this one under another name")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    aside = folder.parent / REPLACED_DIR / f"{name}.{stamp}"
    aside.parent.mkdir(parents=True, exist_ok=True)
    folder.rename(aside)


def check_names_free(plans: list[BaselinePlan], *, replace: bool) -> None:
    """Before training: refuse names of built-in submissions (they cannot be replaced). Workspace names are checked
    when registering, where a resumed run's unchanged weights are recognised."""
    root = workspace.require("`cordbench train`").submissions_dir
    for plan in plans:
        builtin = SUBMISSIONS_DIR / plan.submission_name / "submission.yaml"
        if builtin.exists() and SUBMISSIONS_DIR.resolve() != root.resolve():
            raise BaselineError(f"{builtin}: {plan.submission_name!r} is a built-in reference submission; give the "
                                "model another name with --name")


def count_parameters(checkpoint: Path) -> int | None:
    import torch

    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception:
        return None
    weights = state.get("network_weights", {})
    return int(sum(tensor.numel() for name, tensor in weights.items() if not name.endswith("num_batches_tracked")))


class _EpochWatcher(io.TextIOBase):
    """Stands in for stdout while nnU-Net trains: everything goes to a log file, "Epoch N" lines move a bar."""

    _EPOCH = re.compile(r": Epoch (\d+)\s*$", re.MULTILINE)

    def __init__(self, log, on_epoch):
        self._log = log
        self._on_epoch = on_epoch

    def write(self, text: str) -> int:
        self._log.write(text)
        self._log.flush()
        for match in self._EPOCH.finditer(text):
            self._on_epoch(int(match.group(1)))
        return len(text)

    def flush(self) -> None:
        self._log.flush()


@contextlib.contextmanager
def _quiet_training(log_path: Path, on_epoch):
    """nnU-Net's console output (plans, per-epoch losses) goes to ``log_path``; epochs are reported."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        watcher = _EpochWatcher(log, on_epoch)
        with contextlib.redirect_stdout(watcher), contextlib.redirect_stderr(watcher):
            yield


def training_recipe(suite_id: str, profile: Profile, *, epochs: int | None = None, iterations: int | None = None,
                    augmentation: Augmentation | None = None,
                    postprocessing: Postprocessing | None = None) -> QuickRecipe:
    """The options a baseline is trained with: those given, else (quick profile) the suite's ``quick_recipe``,
    else the profile's defaults (epochs/iterations None = the profile's own)."""
    suite_recipe = load_suite(suite_id).quick_recipe if profile == "quick" else QuickRecipe()
    return QuickRecipe(
        epochs=epochs or suite_recipe.epochs,
        iterations=iterations or suite_recipe.iterations,
        augmentation=augmentation or suite_recipe.augmentation,
        postprocessing=postprocessing or suite_recipe.postprocessing,
        why=suite_recipe.why,
    )


def reproduce_command(suite_id: str, plan: BaselinePlan, profile: Profile, seed: int, recipe: QuickRecipe) -> str:
    """The commands that retrain one baseline, with every option that differs from the profile's defaults spelled
    out (so they do not depend on the suite's recipe staying the same)."""
    options = f" --epochs {recipe.epochs}" if recipe.epochs else ""
    options += f" --iterations {recipe.iterations}" if recipe.iterations else ""
    options += f" --augmentation {recipe.augmentation}" if recipe.augmentation != "default" else ""
    options += f" --postprocessing {recipe.postprocessing}" if recipe.postprocessing != "none" else ""
    options += " --native-kernels" if kernels.current().requested == "native" else ""
    return (f"cordbench convert --suite {suite_id} --out RAW && cordbench train --suite {suite_id} "
            f"--raw RAW --profile {profile} --seed {seed} --only {plan.kind}"
            + (f" --dataset {plan.datasets[0]}" if plan.kind == "specific" else "") + options
            + ("" if plan.submission_name.startswith("nnunet-") else f" --name {plan.family or plan.submission_name}"))


def train_baselines(
    suite_id: str,
    *,
    raw_root: Path,
    work_dir: Path,
    profile: Profile = "quick",
    only: Literal["aggregated", "specific"] | None = None,
    datasets: list[str] | None = None,
    seed: int = 0,
    seeds: list[int] | None = None,
    device: str | None = None,
    num_epochs: int | None = None,
    iterations_per_epoch: int | None = None,
    configuration: str | None = None,
    fold: int | str = "all",
    base_id: int | None = None,
    augmentation: Augmentation | None = None,
    postprocessing: Postprocessing | None = None,
    submissions_root: Path | None = None,
    on_start=None,
    verbose_progress: bool = True,
    name: str | None = None,
    replace: bool = False,
) -> list[Submission]:
    """Train every planned baseline in turn (resuming any that was interrupted) and register it.

    With the quick profile, options left as None come from the suite's ``quick_recipe`` (registry), then from the
    profile's defaults; the full profile is nnU-Net's defaults unless an option is given.
    ``seeds`` (default ``[seed]``) trains every plan once per seed: seed 0 under the family's name and work folder,
    seed N under ``<family>-seed<N>`` and ``work_dir/seed<N>``; each is registered with ``family`` and ``seed``.
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from benchmark.training.nnunet.train import FULL_NUM_EPOCHS, QUICK_NUM_EPOCHS

    recipe = training_recipe(suite_id, profile, epochs=num_epochs, iterations=iterations_per_epoch,
                             augmentation=augmentation, postprocessing=postprocessing)
    num_epochs, iterations_per_epoch = recipe.epochs, recipe.iterations
    registered: list[Submission] = []
    epochs = num_epochs or (QUICK_NUM_EPOCHS if profile == "quick" else FULL_NUM_EPOCHS)
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("epoch {task.completed}/{task.total}"),
               TimeElapsedColumn())
    # bound to the real stdout now: inside the loop stdout is redirected to the training logs
    screen = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 200)
    with Progress(*columns, console=screen, disable=not verbose_progress, redirect_stdout=False,
                  redirect_stderr=False) as bar:
        runs = [(plan, Path(work_dir) if run_seed == 0 else Path(work_dir) / f"seed{run_seed}")
                for run_seed in (seeds if seeds else [seed])
                for plan in plan_baselines(suite_id, raw_root, profile, only=only, base_id=base_id,
                                           datasets=datasets, name=name, seed=run_seed)]
        if submissions_root is None:
            check_names_free([plan for plan, _ in runs], replace=replace)
        for plan, _seed_work_dir in runs:
            if on_start:
                on_start(plan)
            task = bar.add_task(f"training {plan.submission_name}", total=epochs)
            log_path = training_log_path(work_dir, plan)
            trained, submission = train_one_baseline(
                plan, suite_id, work_dir=work_dir, profile=profile, recipe=recipe, configuration=configuration,
                fold=fold, device=device, seed=plan.seed, submissions_root=submissions_root, replace=replace,
                on_epoch=lambda epoch, task=task: bar.update(task, completed=epoch))
            bar.update(task, completed=trained.epochs, description=f"trained {plan.submission_name}")
            screen.print(f"  {plan.submission_name}: pseudo-Dice {trained.final_pseudo_dice or 0:.3f} on "
                         f"{trained.device}, {trained.training_seconds:.0f} s; nnU-Net log: {log_path}")
            registered.append(submission)
    return registered


def training_log_path(work_dir: Path, plan: BaselinePlan) -> Path:
    return Path(work_dir) / "logs" / f"{plan.submission_name}.log"


def train_one_baseline(plan: BaselinePlan, suite_id: str, *, work_dir: Path, profile: Profile, recipe: QuickRecipe,
                       configuration: str | None = None, fold: int | str = "all", device: str | None = None,
                       seed: int = 0, submissions_root: Path | None = None, num_threads: int | None = None,
                       replace: bool = False, on_epoch=lambda epoch: None):
    """Train (or resume) one planned baseline, nnU-Net's output going to its log, and register it.

    Returns ``(trained model, registered submission)``; one work unit of ``cordbench train``.
    """
    from benchmark.training.nnunet.train import train_model

    seed = plan.seed or seed
    # seed 0 keeps the family's nnU-Net folder; seed N trains in work_dir/seed<N> (a different seed would not resume)
    seed_work_dir = Path(work_dir) if seed == 0 else Path(work_dir) / f"seed{seed}"
    with _quiet_training(training_log_path(work_dir, plan), on_epoch):
        trained = train_model(plan.raw_folder, seed_work_dir, profile=profile, configuration=configuration,
                              fold=fold, num_epochs=recipe.epochs, iterations_per_epoch=recipe.iterations,
                              device=device, seed=seed, resume=True, augmentation=recipe.augmentation,
                              num_threads=num_threads)
    submission = register_trained(plan, trained, suite_id, profile, seed=seed, submissions_root=submissions_root,
                                  reproduce=reproduce_command(suite_id, plan, profile, seed, recipe),
                                  postprocessing=recipe.postprocessing, replace=replace)
    return trained, submission
