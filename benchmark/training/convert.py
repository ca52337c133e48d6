"""Build nnU-Net v2 raw datasets from a suite's fixed TRAIN splits (and, optionally, its TEST splits).

One call writes the aggregated dataset (every in-domain dataset's train subjects) and one specific
dataset per in-domain dataset. Only subjects listed in the committed split file are read, so no test
subject can reach ``imagesTr``.

Policies (documented in docs/convert.md):
- Orientation: images and masks are reoriented to the closest canonical RAS+ orientation
  (``nibabel.as_closest_canonical``) - a permutation/flip of voxels, no resampling.
- Labels: voxels with value >= 0.5 are cord (1), the rest background (0). Soft masks (partial volume)
  and multi-valued masks are binarized this way into NEW files; the source mask is never written.
- Image and mask must have the same shape and affines equal within ``AFFINE_TOLERANCE_MM``.
- A 4D image with a single volume is squeezed to 3D; a real 4D series is skipped (take its mean first).
- Skips are reported with their reason, never silent: missing mask, not downloaded, shape or affine
  mismatch, 4D, NaN/inf values, unreadable file.
- Re-running skips cases whose source checksums and converter version are unchanged.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Literal

import nibabel as nib
import numpy as np

from benchmark import __version__
from benchmark.data.bids_index import Case, index_dataset
from benchmark.environment import available_cores
from benchmark.errors import CordbenchError
from benchmark.io import AFFINE_TOLERANCE_MM, atomic_write_bytes, atomic_write_json, sha256_file
from benchmark.data.registry import Suite, entry_path, load_dataset, load_suite
from benchmark.data.splits import SplitFile, check_split_covers_suite, dataset_folder, load_split

CONVERTER_VERSION = "1"
LABEL_THRESHOLD = 0.5
DEFAULT_BASE_IDS = {"synthetic": 500, "real-mini": 520, "spinalcord-v1": 540}
Part = Literal["train", "test"]


class ConvertError(CordbenchError, ValueError):
    """The conversion cannot start (bad suite, missing split, dataset id clash)."""


@dataclass(frozen=True)
class CaseSource:
    """A source image/mask pair and where its converted files go."""

    case_id: str
    dataset: str
    subject: str
    session: str | None
    contrast: str
    part: Part
    image: str  # absolute source paths
    label: str | None
    image_state: str
    label_state: str | None


@dataclass
class CaseOutcome:
    case_id: str
    dataset: str
    part: Part
    status: Literal["converted", "unchanged", "skipped"]
    reason: str | None = None
    provenance: dict = field(default_factory=dict)


@dataclass
class ConvertedDataset:
    name: str
    folder: Path
    kind: Literal["aggregated", "specific"]
    source_datasets: list[str]
    num_training: int
    num_test: int


@dataclass
class ConvertReport:
    suite: str
    benchmark_version: str
    datasets: list[ConvertedDataset]
    outcomes: list[CaseOutcome]

    @property
    def skipped(self) -> list[CaseOutcome]:
        return [outcome for outcome in self.outcomes if outcome.status == "skipped"]


def nnunet_case_id(dataset_id: str, image_relative: str) -> str:
    """``synth-ms`` + ``sub-03/anat/sub-03_acq-ax_T2w.nii.gz`` -> ``synth-ms_sub-03_acq-ax_T2w``."""
    stem = image_relative.rpartition("/")[2]
    for ending in (".nii.gz", ".nii"):
        stem = stem.removesuffix(ending)
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"{dataset_id}_{stem}")


def dataset_names(suite_id: str, in_domain: list[str], base_id: int | None = None) -> dict[str, str]:
    """nnU-Net folder names: ``Dataset<base>_<suite>-aggregated`` and ``Dataset<base+i>_<suite>-<dataset>``.

    Built-in suites have fixed bases; any other suite gets a block of numbers allocated once in the active
    workspace (``benchmark.training.nnunet_ids``), so that two suites never share a number."""
    if not in_domain:
        raise ConvertError(f"{entry_path('suites', suite_id)}: datasets: suite {suite_id!r} has no in-domain dataset, "
                           "so there is nothing to train on; give at least one dataset `role: in-domain`")
    if base_id is not None:
        base = base_id
    elif suite_id in DEFAULT_BASE_IDS:
        base = DEFAULT_BASE_IDS[suite_id]
    else:
        from benchmark.training.nnunet_ids import allocate_base_id

        base = allocate_base_id(suite_id, len(in_domain) + 1, reserved=builtin_id_blocks())
    if not 1 <= base <= 999 - len(in_domain):
        raise ConvertError(f"base dataset id {base} leaves no room for {len(in_domain) + 1} nnU-Net datasets (1..999)")
    names = {"aggregated": f"Dataset{base:03d}_{suite_id}-aggregated"}
    for offset, dataset_id in enumerate(in_domain, start=1):
        names[dataset_id] = f"Dataset{base + offset:03d}_{suite_id}-{dataset_id}"
    return names


def builtin_id_blocks() -> dict[str, range]:
    """The nnU-Net dataset numbers the built-in suites use."""
    return {suite_id: range(base, base + len(load_suite(suite_id).ids("in-domain")) + 1)
            for suite_id, base in DEFAULT_BASE_IDS.items()}


def collect_sources(suite: Suite, split: SplitFile, data_root: Path | None,
                    overrides: dict[str, Path] | None, parts: Iterable[Part]) -> list[CaseSource]:
    """Every indexed image of the split's subjects for the requested parts, in a stable order."""
    check_split_covers_suite(suite, split)
    sources: list[CaseSource] = []
    for dataset_id in suite.ids("in-domain"):
        entry = split.datasets[dataset_id]
        folder = dataset_folder(dataset_id, data_root, overrides)
        if folder is None:
            raise ConvertError(f"dataset {dataset_id!r} not found under {data_root} (or pass --dataset-dir ID=PATH)")
        if entry.status != "fixed":
            raise ConvertError(f"split of {dataset_id!r} is not frozen yet: run `cordbench splits make --suite {suite.id}`")
        index = index_dataset(folder, load_dataset(dataset_id))
        by_subject: dict[str, list[Case]] = {}
        for case in index.cases:
            by_subject.setdefault(case.subject, []).append(case)
        for part in parts:
            for subject in getattr(entry, part):
                for case in by_subject.get(subject, []):
                    sources.append(_source_of(case, folder, part))
    return sources


def _source_of(case: Case, folder: Path, part: Part) -> CaseSource:
    return CaseSource(
        case_id=nnunet_case_id(case.dataset, case.image.path),
        dataset=case.dataset,
        subject=case.subject,
        session=case.session,
        contrast=case.contrast,
        part=part,
        image=str(folder / case.image.path),
        label=str(folder / case.label.path) if case.label else None,
        image_state=case.image.state,
        label_state=case.label.state if case.label else None,
    )


def _nifti_bytes(image: nib.Nifti1Image) -> bytes:
    """Serialize a NIfTI image to .nii.gz bytes deterministically (gzip header without a timestamp)."""
    import gzip
    import io

    raw = io.BytesIO()
    file_map = nib.Nifti1Image.make_file_map({"image": raw, "header": raw})
    image.to_file_map(file_map)
    return gzip.compress(raw.getvalue(), compresslevel=1, mtime=0)


def _check_pair(source: CaseSource) -> tuple[nib.Nifti1Image, nib.Nifti1Image] | str:
    """Load and validate an image/mask pair; return the images or the reason to skip."""
    if source.label is None:
        return "missing label: no cord mask for this image"
    for path, state in ((source.image, source.image_state), (source.label, source.label_state)):
        if state != "present":
            return f"not downloaded ({state}): {path} - run `git annex get` / `datalad get` in the dataset"
    try:
        image = nib.load(source.image)
        label = nib.load(source.label)
        image_data = np.asanyarray(image.dataobj)
        label_data = np.asanyarray(label.dataobj)
    except Exception as error:  # nibabel raises many types for a corrupt file
        return f"unreadable NIfTI: {error}"
    if image_data.ndim == 4 and image_data.shape[3] == 1:
        image_data = image_data[..., 0]
    if image_data.ndim != 3:
        return f"4D image with {image_data.shape[3]} volumes: the benchmark takes 3D images (use a mean volume)" \
            if image_data.ndim == 4 else f"image has {image_data.ndim} dimensions, expected 3"
    if label_data.ndim == 4 and label_data.shape[3] == 1:
        label_data = label_data[..., 0]
    if label_data.shape != image_data.shape:
        return f"shape mismatch: image {image_data.shape} vs mask {label_data.shape}"
    if not np.allclose(image.affine, label.affine, atol=AFFINE_TOLERANCE_MM):
        delta = float(np.abs(image.affine - label.affine).max())
        return f"affine mismatch: image and mask differ by up to {delta:.4g} mm (tolerance {AFFINE_TOLERANCE_MM} mm)"
    if not np.all(np.isfinite(image_data)):
        return f"image has {int(np.size(image_data) - np.isfinite(image_data).sum())} NaN/inf voxels"
    if not np.all(np.isfinite(label_data)):
        return "mask has NaN/inf voxels"
    image_out = nib.Nifti1Image(np.asarray(image_data, dtype=np.float32), image.affine)
    label_out = nib.Nifti1Image((np.asarray(label_data) >= LABEL_THRESHOLD).astype(np.uint8), image.affine)
    return image_out, label_out


def convert_case(source: CaseSource, targets: list[tuple[Path, Path]], previous: dict | None) -> CaseOutcome:
    """Convert one pair into every target (image path, label path). Sources are only read."""
    provenance = {
        "dataset": source.dataset, "subject": source.subject, "session": source.session,
        "contrast": source.contrast, "split": source.part, "image_source": source.image,
        "label_source": source.label, "converter_version": CONVERTER_VERSION,
    }
    if source.label is not None and source.image_state == "present" and source.label_state == "present":
        provenance["image_sha256"] = sha256_file(Path(source.image))
        provenance["label_sha256"] = sha256_file(Path(source.label))
        unchanged = previous is not None and all(
            previous.get(key) == provenance[key] for key in ("image_sha256", "label_sha256", "converter_version"))
        if unchanged and all(image.exists() and label.exists() for image, label in targets):
            return CaseOutcome(source.case_id, source.dataset, source.part, "unchanged", provenance=previous)
    checked = _check_pair(source)
    if isinstance(checked, str):
        return CaseOutcome(source.case_id, source.dataset, source.part, "skipped", reason=checked)
    image, label = (nib.as_closest_canonical(item) for item in checked)
    image_bytes, label_bytes = _nifti_bytes(image), _nifti_bytes(label)
    provenance.update(
        source_orientation="".join(nib.aff2axcodes(checked[0].affine)),
        written_orientation="RAS",
        shape=list(image.shape),
        spacing_mm=[round(float(value), 6) for value in image.header.get_zooms()[:3]],
        cord_voxels=int(np.asarray(label.dataobj).sum()),
    )
    for image_path, label_path in targets:
        atomic_write_bytes(image_path, image_bytes)
        atomic_write_bytes(label_path, label_bytes)
    return CaseOutcome(source.case_id, source.dataset, source.part, "converted", provenance=provenance)


def _targets(source: CaseSource, folders: list[Path]) -> list[tuple[Path, Path]]:
    images, labels = ("imagesTr", "labelsTr") if source.part == "train" else ("imagesTs", "labelsTs")
    return [(folder / images / f"{source.case_id}_0000.nii.gz", folder / labels / f"{source.case_id}.nii.gz")
            for folder in folders]


def _read_provenance(folder: Path) -> dict:
    path = folder / "provenance.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8")).get("cases", {})


def _dataset_json(name: str, num_training: int, suite: Suite, split: SplitFile, sources: list[str]) -> dict:
    return {
        "name": name,
        "channel_names": {"0": "MRI"},
        "labels": {"background": 0, "cord": 1},
        "numTraining": num_training,
        "file_ending": ".nii.gz",
        "overwrite_image_reader_writer": "NibabelIO",
        "description": f"cordbench {suite.id} ({', '.join(sources)}), train split only",
        "cordbench": {"suite": suite.id, "benchmark_version": split.version, "datasets": sources,
                      "orientation": "RAS", "label_threshold": LABEL_THRESHOLD, "version": __version__},
    }


def convert_suite(
    suite_id: str,
    *,
    data_root: Path | None,
    out: Path,
    only: Literal["aggregated", "specific"] | None = None,
    with_test: bool = True,
    base_id: int | None = None,
    overrides: dict[str, Path] | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> ConvertReport:
    """Write the aggregated and/or specific nnU-Net raw datasets of a suite under ``out``."""
    suite = load_suite(suite_id)
    in_domain = suite.ids("in-domain")
    names = dataset_names(suite_id, in_domain, base_id)
    split = load_split(suite_id)
    _refuse_id_clash(Path(out), names)
    parts: list[Part] = ["train", "test"] if with_test else ["train"]
    sources = collect_sources(suite, split, data_root, overrides, parts)

    folders_of: dict[str, list[Path]] = {}
    for dataset_id in in_domain:
        folders_of[dataset_id] = []
        if only in (None, "specific"):
            folders_of[dataset_id].append(Path(out) / names[dataset_id])
        if only in (None, "aggregated"):
            folders_of[dataset_id].append(Path(out) / names["aggregated"])
    previous: dict[str, dict] = {}
    for folder in {folder for folders in folders_of.values() for folder in folders}:
        previous.update(_read_provenance(folder))

    outcomes = _run_cases(sources, folders_of, previous, workers, progress)
    converted = _write_dataset_files(Path(out), names, only, suite, split, outcomes)
    return ConvertReport(suite=suite_id, benchmark_version=split.version, datasets=converted, outcomes=outcomes)


def _refuse_id_clash(out: Path, names: dict[str, str]) -> None:
    """nnU-Net finds datasets by number: another folder with the same number would be ambiguous."""
    if not out.exists():
        return
    for name in names.values():
        number = name.split("_", 1)[0]
        for existing in out.glob(f"{number}_*"):
            if existing.name != name:
                raise ConvertError(f"{existing}: nnU-Net dataset number {number[7:]} is already used by "
                                   f"another dataset; choose another --base-id")


def _run_cases(sources, folders_of, previous, workers, progress) -> list[CaseOutcome]:
    from rich.progress import Progress

    workers = workers or min(available_cores(), 8)
    jobs = [(source, _targets(source, folders_of[source.dataset]), previous.get(source.case_id))
            for source in sources]
    outcomes: list[CaseOutcome] = []
    with Progress(disable=not progress, transient=False) as bar:
        task = bar.add_task("converting cases", total=len(jobs))
        if workers == 1:
            for job in jobs:
                outcomes.append(convert_case(*job))
                bar.advance(task)
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for outcome in pool.map(convert_case, *zip(*jobs)) if jobs else []:
                    outcomes.append(outcome)
                    bar.advance(task)
    return outcomes


def _write_dataset_files(out: Path, names: dict[str, str], only, suite: Suite, split: SplitFile,
                         outcomes: list[CaseOutcome]) -> list[ConvertedDataset]:
    kept = [outcome for outcome in outcomes if outcome.status != "skipped"]
    plans: list[tuple[str, str, list[str]]] = []
    if only in (None, "aggregated"):
        plans.append(("aggregated", names["aggregated"], suite.ids("in-domain")))
    if only in (None, "specific"):
        plans.extend(("specific", names[dataset_id], [dataset_id]) for dataset_id in suite.ids("in-domain"))
    converted = []
    for kind, name, members in plans:
        folder = out / name
        mine = [outcome for outcome in kept if outcome.dataset in members]
        _remove_stale(folder, {outcome.case_id for outcome in mine})
        num_training = sum(outcome.part == "train" for outcome in mine)
        atomic_write_json(folder / "dataset.json", _dataset_json(name, num_training, suite, split, members))
        atomic_write_json(folder / "provenance.json", {
            "suite": suite.id, "benchmark_version": split.version, "cordbench_version": __version__,
            "cases": {outcome.case_id: outcome.provenance for outcome in mine},
            "skipped": {outcome.case_id: outcome.reason for outcome in outcomes
                        if outcome.status == "skipped" and outcome.dataset in members},
        })
        converted.append(ConvertedDataset(name, folder, kind, members, num_training,
                                          sum(outcome.part == "test" for outcome in mine)))
    return converted


def _remove_stale(folder: Path, keep: set[str]) -> None:
    """Drop converted files of cases that are no longer in the split (e.g. a re-made split)."""
    for sub in ("imagesTr", "labelsTr", "imagesTs", "labelsTs"):
        for path in (folder / sub).glob("*.nii.gz"):
            case_id = path.name.removesuffix(".nii.gz").removesuffix("_0000")
            if case_id not in keep:
                path.unlink()


__all__ = ["convert_suite", "ConvertReport", "ConvertError", "dataset_names", "nnunet_case_id",
           "AFFINE_TOLERANCE_MM", "LABEL_THRESHOLD"]
