"""Typed registry of datasets and suites.

One YAML file per dataset under ``benchmark/registry/datasets/`` and one per suite under
``benchmark/registry/suites/``. Files are validated with pydantic; unknown fields are rejected and every
error names the file and the field path (``source.revision: Field required``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from benchmark.errors import CordbenchError
from benchmark.io import describe_validation_error, read_yaml_mapping

REGISTRY_DIR = Path(__file__).resolve().parents[1] / "registry"
DATASETS_DIR = REGISTRY_DIR / "datasets"
SUITES_DIR = REGISTRY_DIR / "suites"

Role = Literal["in-domain", "ood"]
#: Where a dataset's test cases are scored (benchmark.evaluation.metrics.scored_region).
ScoredRegion = Literal["whole-image", "label-extent"]
#: nnU-Net data augmentation of the baselines (benchmark.training.nnunet.trainer.TRAINERS).
Augmentation = Literal["default", "da5"]
#: What inference does to a binary mask before it is scored (benchmark.evaluation.inference).
Postprocessing = Literal["none", "largest-component"]


class RegistryError(CordbenchError, ValueError):
    """A registry file is missing or invalid; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    """Where a dataset comes from, pinned to one revision."""

    kind: Literal["git-annex", "openneuro", "local", "synthetic", "restricted"]
    url: str | None = None
    revision: str | None = Field(default=None, description="Git tag or commit the benchmark pins")
    openneuro_id: str | None = None
    openneuro_version: str | None = None
    notes: str | None = None

    @model_validator(mode="after")
    def _pinned(self) -> "Source":
        if self.kind in ("git-annex",) and not (self.url and self.revision):
            raise ValueError("a git-annex source needs both url and revision (a pinned tag or commit)")
        if self.kind == "openneuro" and not (self.openneuro_id and self.openneuro_version):
            raise ValueError("an openneuro source needs openneuro_id and openneuro_version")
        return self


class Access(_Strict):
    level: Literal["public", "restricted"]
    how_to_obtain: str | None = None

    @model_validator(mode="after")
    def _restricted_says_how(self) -> "Access":
        if self.level == "restricted" and not self.how_to_obtain:
            raise ValueError("restricted access needs how_to_obtain")
        return self


class ImageRule(_Strict):
    """Which files are images, and where each image's cord mask lives.

    ``glob`` is matched against the image path relative to the dataset root (``*`` does not cross
    ``/``). ``label`` is a template for the mask path relative to the dataset root; it may use
    ``{dir}`` (the image's folder, e.g. ``sub-01/ses-01/anat``), ``{stem}`` (file name without
    ``.nii.gz``) and any BIDS entity of the image (``{sub}``, ``{ses}``, ``{task}``...).
    """

    glob: str
    contrast: str
    label: str


class SubjectGrouping(_Strict):
    """Several participant ids that are one person (e.g. ``sub-9709Ses1`` and ``sub-9709Ses2``).

    ``pattern`` is a regular expression applied to the participant id; its named group ``person`` is the
    person's id. Ids that do not match are their own person.
    """

    pattern: str
    notes: str | None = None

    @field_validator("pattern")
    @classmethod
    def _has_person_group(cls, pattern: str) -> str:
        compiled = re.compile(pattern)
        if "person" not in compiled.groupindex:
            raise ValueError("pattern needs a named group (?P<person>...)")
        return pattern

    def person_of(self, participant_id: str) -> str:
        match = re.match(self.pattern, participant_id)
        return match.group("person") if match else participant_id


class ParticipantColumns(_Strict):
    """Which participants.tsv columns hold site, vendor, pathology and mask provenance."""

    site: str | None = None
    vendor: str | None = None
    field_strength: str | None = None
    pathology: str | None = None
    gt_provenance: str | None = Field(default=None, description="Column saying how the mask was made")


class Dataset(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    source: Source
    licence: str
    citation: str
    access: Access
    datatypes: list[Literal["anat", "func", "dwi"]]
    contrasts: list[str]
    sites: list[str] = Field(default_factory=list)
    vendors: list[str] = Field(default_factory=list)
    field_strengths: list[float] = Field(default_factory=list)
    pathologies: list[str] = Field(default_factory=list)
    images: list[ImageRule] = Field(min_length=1)
    subject_grouping: SubjectGrouping | None = None
    participants: ParticipantColumns = ParticipantColumns()
    known_quirks: list[str] = Field(default_factory=list)
    local_path: str | None = Field(
        default=None, description="Folder name under a data root when it differs from the id"
    )

    @property
    def folder_name(self) -> str:
        return self.local_path or self.id

    def person_of(self, participant_id: str) -> str:
        return self.subject_grouping.person_of(participant_id) if self.subject_grouping else participant_id


class SuiteDataset(_Strict):
    id: str
    role: Role
    test_fraction: float | None = Field(default=None, gt=0, lt=1, description="in-domain only")
    published_split: str | None = Field(
        default=None, description="A published split file (YAML with a 'test' list) to take the test subjects from"
    )
    stratify_by: list[Literal["site", "vendor", "pathology", "field_strength"]] = Field(default_factory=list)
    scored_region: ScoredRegion = Field(
        default="whole-image",
        description="Where test cases are scored: the whole image, or only the axial slices the manual mask spans "
                    "(for masks drawn on part of the cord's length; see docs/metrics.md). Versioned with the split.",
    )

    @model_validator(mode="after")
    def _role_fields(self) -> "SuiteDataset":
        if self.role == "in-domain" and self.test_fraction is None and self.published_split is None:
            raise ValueError("an in-domain dataset needs test_fraction or published_split")
        return self


class QuickRecipe(_Strict):
    """How the quick profile trains this suite's baselines when the command line does not say otherwise."""

    epochs: int | None = Field(default=None, ge=1, description="Epochs (default: the quick profile's 40)")
    iterations: int | None = Field(default=None, ge=1, description="Iterations per epoch (default: 12)")
    augmentation: Augmentation = "default"
    postprocessing: Postprocessing = "none"
    why: str | None = None


class Suite(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    description: str
    seed: int = 0
    default_data_root: str | None = Field(
        default=None, description="Where the data live by default, relative to the repository root"
    )
    datasets: list[SuiteDataset] = Field(min_length=1)
    quick_recipe: QuickRecipe = QuickRecipe()

    def ids(self, role: Role | None = None) -> list[str]:
        return [entry.id for entry in self.datasets if role is None or entry.role == role]


def parse_dataset_file(path: Path) -> Dataset:
    try:
        dataset = Dataset.model_validate(read_yaml_mapping(path, RegistryError))
    except ValidationError as error:
        raise RegistryError(describe_validation_error(path, error, "registry file")) from error
    if dataset.id != path.stem:
        raise RegistryError(f"{path}: id: {dataset.id!r} must equal the file name {path.stem!r}")
    return dataset


def parse_suite_file(path: Path) -> Suite:
    try:
        suite = Suite.model_validate(read_yaml_mapping(path, RegistryError))
    except ValidationError as error:
        raise RegistryError(describe_validation_error(path, error, "registry file")) from error
    if suite.id != path.stem:
        raise RegistryError(f"{path}: id: {suite.id!r} must equal the file name {path.stem!r}")
    known = set(dataset_ids())
    for index, entry in enumerate(suite.datasets):
        if entry.id not in known:
            raise RegistryError(f"{path}: datasets.{index}.id: unknown dataset {entry.id!r}")
    return suite


def dataset_ids() -> list[str]:
    return sorted(path.stem for path in DATASETS_DIR.glob("*.yaml"))


def suite_ids() -> list[str]:
    return sorted(path.stem for path in SUITES_DIR.glob("*.yaml"))


@lru_cache(maxsize=None)
def load_dataset(dataset_id: str) -> Dataset:
    """A registered dataset's metadata (validated); RegistryError naming the registered ids when unknown."""
    path = DATASETS_DIR / f"{dataset_id}.yaml"
    if not path.exists():
        raise RegistryError(f"unknown dataset {dataset_id!r}; registered: {', '.join(dataset_ids())}")
    return parse_dataset_file(path)


@lru_cache(maxsize=None)
def load_suite(suite_id: str) -> Suite:
    """A registered suite: its datasets with their roles (in-domain / OOD) and its quick recipe."""
    path = SUITES_DIR / f"{suite_id}.yaml"
    if not path.exists():
        raise RegistryError(f"unknown suite {suite_id!r}; registered: {', '.join(suite_ids())}")
    return parse_suite_file(path)


def list_datasets() -> list[Dataset]:
    """Every registered dataset, sorted by id."""
    return [load_dataset(dataset_id) for dataset_id in dataset_ids()]


def list_suites() -> list[Suite]:
    return [load_suite(suite_id) for suite_id in suite_ids()]
