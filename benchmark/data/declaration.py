"""The one rule for what a model has seen: its declared training datasets and people, through ``adapted_from``.

A submission declares ``training.datasets``, optionally ``training.subjects`` (dataset -> participant ids) and
``training.split`` (``<suite>@<version>``: that split's train subjects of its declared datasets), and
``training.adapted_from`` (the submissions it was fine-tuned from). A fine-tuned model has seen everything its
parents have seen, so the rule follows ``adapted_from`` transitively:

* **datasets seen** = the union over the submission and all its ancestors of ``training.datasets`` and of the
  datasets named in ``training.subjects``;
* **people seen** = per dataset, the registry's person (``Dataset.person_of``: same_person groups and
  subject_grouping, so a second session or a rescan is the same person) of every declared participant id, over the
  submission and all its ancestors;
* a **cycle** in ``adapted_from`` (:class:`AdaptedFromCycleError`) and a **parent that is not a submission**
  (:class:`UnknownParentError`) are errors: what the model has seen would be unknown;
* a declared dataset with no subject list or split is ``unlisted`` (its people are unknown: no row can be flagged
  as leaked through it) and a ``training.split`` that cannot be read is a ``split_problem``; the caller decides
  (scoring refuses split problems, the audit reports both).

Every place that asks "has this model seen this dataset / person" uses :func:`training_declaration`: scoring
(``dataset_in_training``, ``subject_in_training``), the audit, the planner's submission identity, and through the
results files (``dataset_in_training``, ``declared_training_datasets``) the leaderboard's zero-shot filter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.data.submissions import Submission, SubmissionError, load_submission


class DeclarationError(SubmissionError):
    """What a model has seen cannot be determined from its manifests."""


class AdaptedFromCycleError(DeclarationError):
    """``training.adapted_from`` leads back to a submission already on the path."""


class UnknownParentError(DeclarationError):
    """``training.adapted_from`` names something that is not a submission."""


@dataclass(frozen=True)
class TrainingDeclaration:
    """What one submission (with its ancestors) declares it was trained on; see the module docstring."""

    submission: str
    #: the submission, then each ancestor once, in depth-first order of adapted_from
    lineage: tuple[str, ...]
    datasets: frozenset[str]
    #: dataset -> declared participant ids (subject lists and split train subjects, all ancestors)
    subjects: Mapping[str, frozenset[str]]
    #: (submission, dataset): a declared dataset without a subject list or split; its people are unknown
    unlisted: tuple[tuple[str, str], ...] = ()
    #: messages about training.split values that cannot be resolved
    split_problems: tuple[str, ...] = ()
    _people: dict[str, frozenset[str]] = field(default_factory=dict, repr=False, compare=False)

    def people(self) -> dict[str, frozenset[str]]:
        """dataset -> person ids seen (registry grouping of the declared participant ids)."""
        if not self._people and self.subjects:
            from benchmark.data.registry import load_dataset

            for dataset_id, subjects in self.subjects.items():
                dataset = load_dataset(dataset_id)  # an unknown id is an error: a leak must not go unnoticed
                self._people[dataset_id] = frozenset(dataset.person_of(subject) for subject in subjects)
        return dict(self._people)

    def dataset_in_training(self, dataset_id: str) -> bool:
        return dataset_id in self.datasets

    def person_in_training(self, dataset_id: str, person: str) -> bool:
        return person in self.people().get(dataset_id, frozenset())

    def identity(self) -> dict[str, Any]:
        """JSON-ready: what a plan must change with (datasets and people seen)."""
        return {"trained_on": sorted(self.datasets),
                "people": {dataset_id: sorted(people) for dataset_id, people in sorted(self.people().items())}}


def _split_subjects(submission: Submission) -> tuple[dict[str, set[str]], list[str]]:
    """The train subjects of ``training.split`` for the submission's own declared datasets, and any problem."""
    from benchmark.data.splits import SplitError, load_split

    training = submission.training
    if not training.split:
        return {}, []
    suite_id, _, version = training.split.partition("@")
    try:
        split = load_split(suite_id)
    except SplitError as error:
        return {}, [f"{submission.name}: training.split {training.split!r}: {error}"]
    if version and version != split.version:
        return {}, [f"{submission.name}: training.split {training.split!r} names version {version} but the split "
                    f"file of {suite_id!r} is now {split.version}; the train subjects of {version} are not known"]
    return {dataset_id: set(split.datasets[dataset_id].train) for dataset_id in training.datasets
            if dataset_id in split.datasets}, []


def _parent(submission: Submission, parent: str, root: Path | None) -> Submission:
    try:
        return load_submission(parent, root)
    except SubmissionError as error:
        where = submission.folder / "submission.yaml" if submission.folder else submission.name
        raise UnknownParentError(f"{where}: training.adapted_from: {parent!r} is not a submission ({error})") \
            from error


def training_declaration(submission: Submission, root: Path | None = None) -> TrainingDeclaration:
    """The declaration of ``submission`` and all its ancestors (parents looked up under ``root``, default: the
    built-in and workspace submissions)."""
    lineage: list[str] = []
    datasets: set[str] = set()
    subjects: dict[str, set[str]] = {}
    unlisted: list[tuple[str, str]] = []
    problems: list[str] = []

    def visit(current: Submission, path: tuple[str, ...]) -> None:
        if current.name in path:
            cycle = " -> ".join((*path[path.index(current.name):], current.name))
            raise AdaptedFromCycleError(f"training.adapted_from forms a cycle: {cycle}")
        if current.name in lineage:  # reached again through another parent (a diamond), not a cycle
            return
        lineage.append(current.name)
        training = current.training
        own: dict[str, set[str]] = {dataset_id: set(listed) for dataset_id, listed in (training.subjects or {}).items()}
        from_split, split_problems = _split_subjects(current)
        problems.extend(split_problems)
        for dataset_id, listed in from_split.items():
            own.setdefault(dataset_id, set()).update(listed)
        datasets.update(training.datasets)
        datasets.update(own)
        for dataset_id, listed in own.items():
            subjects.setdefault(dataset_id, set()).update(listed)
        unlisted.extend((current.name, dataset_id) for dataset_id in training.datasets if not own.get(dataset_id))
        for parent in training.adapted_from:
            visit(_parent(current, parent, root), (*path, current.name))

    visit(submission, ())
    return TrainingDeclaration(
        submission=submission.name, lineage=tuple(lineage), datasets=frozenset(datasets),
        subjects={dataset_id: frozenset(listed) for dataset_id, listed in sorted(subjects.items())},
        unlisted=tuple(unlisted), split_problems=tuple(problems))


__all__ = ["AdaptedFromCycleError", "DeclarationError", "TrainingDeclaration", "UnknownParentError",
           "training_declaration"]
