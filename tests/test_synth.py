"""Tests of benchmark/data/synth/: layout, determinism, idempotency, anatomy, contrasts, orientation."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from benchmark.data import synth
from benchmark.data.synth.plan import dataset_key, seeded_rng
from benchmark.io import sha256_file
from benchmark.data.splits import load_split, verify_split


@pytest.fixture
def suite(synthetic_suite: Path) -> Path:
    """The whole synthetic suite for seed 0 (the session's, see conftest.py)."""
    return synthetic_suite


def _all_jobs() -> list[tuple[str, synth.VolumeJob]]:
    return [(dataset_id, job) for dataset_id in synth.SYNTHETIC_DATASET_IDS for job in synth.plan_dataset(dataset_id)]


def _sidecar(root: Path, dataset_id: str, job: synth.VolumeJob) -> dict:
    return json.loads((root / dataset_id / job.image_path.replace(".nii.gz", ".json")).read_text())


def _canonical(path: Path) -> tuple[np.ndarray, nib.Nifti1Image]:
    img = nib.as_closest_canonical(nib.load(path))
    return np.asarray(img.dataobj), img


def _tree_hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------------- layout


def test_dataset_ids_are_the_six_fixed_ones() -> None:
    assert synth.SYNTHETIC_DATASET_IDS == (
        "synth-multicontrast", "synth-compression", "synth-injury", "synth-ms", "synth-mp2rage", "synth-epi")


def test_unknown_dataset_id_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="synth-nope"):
        synth.generate_dataset("synth-nope", tmp_path)


def test_subject_and_volume_counts() -> None:
    subjects = {d: synth.dataset_spec(d).n_subjects for d in synth.SYNTHETIC_DATASET_IDS}
    assert subjects == {"synth-multicontrast": 10, "synth-compression": 18, "synth-injury": 18, "synth-ms": 20,
                        "synth-mp2rage": 12, "synth-epi": 12}
    volumes = {d: synth.count_volumes(d) for d in synth.SYNTHETIC_DATASET_IDS}
    # multicontrast: 10 subjects x 4 contrasts + a second session of sub-03 (4 more)
    assert volumes == {"synth-multicontrast": 44, "synth-compression": 18, "synth-injury": 18, "synth-ms": 20,
                       "synth-mp2rage": 12, "synth-epi": 12}


def test_bids_layout_and_names(suite: Path) -> None:
    mc = suite / "synth-multicontrast"
    expected = [
        "sub-01/anat/sub-01_acq-sag_T1w.nii.gz",
        "sub-01/anat/sub-01_acq-sag_T2w.nii.gz",
        "sub-01/anat/sub-01_acq-axial_T2starw.nii.gz",
        "sub-01/dwi/sub-01_rec-average_dwi.nii.gz",
        "sub-01/dwi/sub-01_rec-average_dwi.bval",
        "sub-01/dwi/sub-01_rec-average_dwi.bvec",
        "sub-03/ses-01/anat/sub-03_ses-01_acq-sag_T2w.nii.gz",
        "sub-03/ses-02/dwi/sub-03_ses-02_rec-average_dwi.nii.gz",
        "derivatives/labels/sub-03/ses-02/anat/sub-03_ses-02_acq-axial_T2starw_seg-manual.nii.gz",
        "derivatives/labels/sub-01/dwi/sub-01_rec-average_dwi_seg-manual.nii.gz",
        "derivatives/labels/dataset_description.json",
        "participants.tsv",
        "participants.json",
        "dataset_description.json",
        synth.STAMP_NAME,
    ]
    for relative in expected:
        assert (mc / relative).is_file(), relative
    assert not (mc / "sub-03" / "anat").exists()  # the two-session subject uses ses- folders only
    assert (mc / "sub-01/dwi/sub-01_rec-average_dwi.bval").read_text() == "800\n"
    assert (suite / "synth-epi/sub-01/func/sub-01_task-rest_bold.nii.gz").is_file()
    assert (suite / "synth-mp2rage/sub-07/anat/sub-07_acq-sag_UNIT1.nii.gz").is_file()
    assert (suite / "synth-compression/sub-11/anat/sub-11_acq-axial_T2w.nii.gz").is_file()
    assert (suite / "synth-injury/sub-02/anat/sub-02_acq-sag_T2w.nii.gz").is_file()
    # MS alternates planes: even subject numbers (0-based odd) sagittal
    assert (suite / "synth-ms/sub-01/anat/sub-01_acq-axial_T2w.nii.gz").is_file()
    assert (suite / "synth-ms/sub-02/anat/sub-02_acq-sag_T2w.nii.gz").is_file()
    assert not list(suite.glob(".*partial*")) and not list(suite.glob(".*old*"))


def test_dataset_description_and_participants(suite: Path) -> None:
    description = json.loads((suite / "synth-injury" / "dataset_description.json").read_text())
    assert description["License"] == "CC0"
    assert description["BIDSVersion"] == "1.9.0"
    assert description["GeneratedBy"][0]["Name"] == "cordbench synth"
    assert "seed 0" in description["GeneratedBy"][0]["Description"]
    labels = json.loads((suite / "synth-injury/derivatives/labels/dataset_description.json").read_text())
    assert labels["DatasetType"] == "derivative"
    with open(suite / "synth-compression" / "participants.tsv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert list(rows[0]) == ["participant_id", "sex", "age", "site", "manufacturer", "field_strength", "pathology"]
    assert [r["participant_id"] for r in rows] == [f"sub-{i:02d}" for i in range(1, 19)]
    assert {r["pathology"] for r in rows} == {"DCM"}
    assert {r["manufacturer"] for r in rows} == {"Siemens", "GE", "Philips"}
    assert {r["field_strength"] for r in rows} == {"3", "1.5"}
    assert all(r["sex"] in ("F", "M") and 18 <= int(r["age"]) <= 80 for r in rows)
    with open(suite / "synth-mp2rage" / "participants.tsv", newline="") as handle:
        mp2rage = [r["pathology"] for r in csv.DictReader(handle, delimiter="\t")]
    assert mp2rage == ["HC", "MS"] * 6


# ---------------------------------------------------------------------------------------------- determinism


def test_generated_volumes_match_the_committed_synthetic_split(suite: Path) -> None:
    """Every image and mask of seed 0 has the sha256 that benchmark/splits/synthetic.json records."""
    split = load_split("synthetic")
    report = verify_split(split, data_root=suite)
    assert sorted(report.checked) == sorted(synth.SYNTHETIC_DATASET_IDS)
    assert report.ok, report
    assert sum(len(entry.files) for entry in split.datasets.values()) == 248  # every image and mask was compared


def test_same_seed_gives_byte_identical_files_and_other_seed_differs(tmp_path: Path) -> None:
    first = synth.generate_dataset("synth-epi", tmp_path / "a", seed=0)
    second = synth.generate_dataset("synth-epi", tmp_path / "b", seed=0)
    other = synth.generate_dataset("synth-epi", tmp_path / "c", seed=1)
    hashes = _tree_hashes(first)
    assert len(hashes) == 5 + 12 * 3 + 1  # 5 dataset-level files, (image, mask, sidecar) per volume, stamp
    assert hashes == _tree_hashes(second)
    other_hashes = _tree_hashes(other)
    niftis = [name for name in hashes if name.endswith(".nii.gz")]
    assert len(niftis) == 24
    assert all(hashes[name] != other_hashes[name] for name in niftis)


def test_gzip_header_has_no_timestamp_or_name(suite: Path) -> None:
    raw = (suite / "synth-epi/sub-01/func/sub-01_task-rest_bold.nii.gz").read_bytes()
    assert raw[:2] == b"\x1f\x8b"
    assert raw[3] == 0  # FLG: no FNAME
    assert raw[4:8] == b"\x00\x00\x00\x00"  # MTIME = 0
    assert len(gzip.decompress(raw)) > 352


def test_regeneration_is_idempotent_and_repairs(tmp_path: Path) -> None:
    folder = synth.generate_dataset("synth-epi", tmp_path, seed=3)
    image = folder / "sub-02/func/sub-02_task-rest_bold.nii.gz"
    before = _tree_hashes(folder)
    inode = image.stat().st_ino
    assert synth.generate_dataset("synth-epi", tmp_path, seed=3) == folder
    assert image.stat().st_ino == inode  # untouched: the stamp matched
    image.write_bytes(b"corrupted")
    synth.generate_dataset("synth-epi", tmp_path, seed=3)
    assert _tree_hashes(folder) == before  # rewritten to the same bytes
    synth.generate_dataset("synth-epi", tmp_path, seed=4)
    stamp = json.loads((folder / synth.STAMP_NAME).read_text())
    assert stamp["seed"] == 4 and stamp["generator_version"] == synth.GENERATOR_VERSION
    assert _tree_hashes(folder)["sub-02/func/sub-02_task-rest_bold.nii.gz"] != before[
        "sub-02/func/sub-02_task-rest_bold.nii.gz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synth-epi"]


# ---------------------------------------------------------------------------------- grid, masks, orientation


def test_masks_binary_on_image_grid_and_orientation_as_declared(suite: Path) -> None:
    seen: set[str] = set()
    for dataset_id, job in _all_jobs():
        img = nib.load(suite / dataset_id / job.image_path)
        mask = nib.load(suite / dataset_id / job.mask_path)
        declared = _sidecar(suite, dataset_id, job)["SyntheticPhantom"]["orientation"]
        seen.add(declared)
        assert "".join(nib.aff2axcodes(img.affine)) == declared, job.image_path
        assert img.get_data_dtype() == np.int16 and mask.get_data_dtype() == np.uint8
        assert img.shape == mask.shape and np.array_equal(img.affine, mask.affine)
        assert np.array_equal(img.header.get_sform(), img.header.get_qform())
        values = np.unique(np.asarray(mask.dataobj))
        assert values.tolist() == [0, 1], job.mask_path
        can_img, can_mask = nib.as_closest_canonical(img), nib.as_closest_canonical(mask)
        assert np.allclose(can_img.affine, can_mask.affine) and can_img.shape == can_mask.shape
        assert "".join(nib.aff2axcodes(can_img.affine)) == "RAS"
        assert max(img.shape) <= 128 and 12 <= sorted(img.shape)[0] <= 40
        assert (suite / dataset_id / job.image_path).stat().st_size < 2_000_000
    assert seen == {"LAS", "RPI", "LPS", "PSR"}


def test_mask_sits_on_the_phantom_cord_in_world_coordinates(suite: Path) -> None:
    """The mask centroid per axial slice matches the analytic cord centre (catches affine mistakes)."""
    for dataset_id in ("synth-multicontrast", "synth-compression", "synth-ms"):
        for job in synth.plan_dataset(dataset_id)[:6]:
            mask, img = _canonical(suite / dataset_id / job.mask_path)
            anat = synth.subject_anatomy(dataset_id, job.subject_index, 0)
            affine = img.affine
            zs = affine[2, 3] + affine[2, 2] * np.arange(mask.shape[2])
            pr = synth.profiles(anat, zs)
            errors = []
            for k in range(mask.shape[2]):
                if mask[:, :, k].sum() < 20:
                    continue
                i, j = np.nonzero(mask[:, :, k])
                x = affine[0, 3] + affine[0, 0] * i.mean()
                y = affine[1, 3] + affine[1, 1] * j.mean()
                errors.append(max(abs(x - pr.xc[k]), abs(y - pr.yc[k] - pr.cord_v[k])))
            assert len(errors) >= 10, job.image_path
            # within about half a voxel (sagittal slices are up to 1.8 mm thick in LR)
            assert np.median(errors) < 0.5 * max(img.header.get_zooms()[:2]) + 0.1, (job.image_path, errors)


def test_cord_cross_sectional_area_is_physiological(suite: Path) -> None:
    medians = []
    for dataset_id, job in _all_jobs():
        mask, img = _canonical(suite / dataset_id / job.mask_path)
        dx, dy, _ = img.header.get_zooms()
        area = mask.sum(axis=(0, 1)) * dx * dy
        medians.append(float(np.median(area[area > 0])))
    assert 50.0 <= min(medians) and max(medians) <= 110.0, (min(medians), max(medians))
    assert 60.0 <= float(np.median(medians)) <= 80.0


def _epi_render(artefacts: bool | synth.EpiArtefacts) -> synth.RenderedVolume:
    job = synth.plan_dataset("synth-epi")[0]
    anat = synth.subject_anatomy("synth-epi", job.subject_index, 0)
    spec = synth.dataset_spec("synth-epi")
    rng = seeded_rng(0, dataset_key("synth-epi"), job.subject_index, 1, job.acquisition_index)
    return synth.render_volume(anat, spec.acquisitions[0], job.site, rng, epi_artefacts=artefacts)


def test_epi_has_5mm_slices_and_distorted_mask() -> None:
    job = synth.plan_dataset("synth-epi")[0]
    volume = synth.render_job("synth-epi", job, 0)
    assert volume.geometry.spacing == (1.0, 1.0, 5.0)
    assert volume.geometry.plane == "axial"
    assert np.array_equal(volume.image, _epi_render(True).image)  # render_job = render_volume + orientation
    straight = _epi_render(False)
    a, b = volume.mask.astype(bool), straight.mask.astype(bool)
    dice = 2 * (a & b).sum() / (a.sum() + b.sum())
    # the distortion moves the cord by about a voxel: masks overlap, but not perfectly
    assert 0.6 < dice < 0.97


def test_epi_nyquist_ghost_is_shifted_by_half_the_fov() -> None:
    base = dict(displacement_mm=2.0, gradient_mm=0.0, dropout_z=(), dropout_depth=(), ghost_phase=0.0)
    clean = _epi_render(synth.EpiArtefacts(ghost=0.0, **base)).image.astype(float)
    ghosted = _epi_render(synth.EpiArtefacts(ghost=0.15, **base)).image.astype(float)
    half = clean.shape[1] // 2
    difference = (ghosted - clean).ravel()
    at_half = np.corrcoef(difference, (np.roll(clean, half, axis=1) - clean).ravel())[0, 1]
    at_quarter = np.corrcoef(difference, (np.roll(clean, half // 2, axis=1) - clean).ravel())[0, 1]
    assert at_half > 0.9 and at_quarter < at_half - 0.3


def test_epi_dropout_darkens_the_slab() -> None:
    base = dict(displacement_mm=0.0, gradient_mm=0.0, ghost=0.0, ghost_phase=0.0)
    reference = _epi_render(synth.EpiArtefacts(dropout_z=(), dropout_depth=(), **base))
    z_centres = reference.geometry.centres(2)
    slab = float(z_centres[7])
    dropped = _epi_render(synth.EpiArtefacts(dropout_z=(slab,), dropout_depth=(0.7,), **base))
    cord = reference.mask > 0
    ratio = [dropped.image[:, :, k][cord[:, :, k]].mean() / reference.image[:, :, k][cord[:, :, k]].mean()
             for k in (7, 0)]
    assert ratio[0] < 0.75 and ratio[1] > 0.97


def test_epi_sidecar_phase_encoding_follows_the_stored_ap_axis(suite: Path) -> None:
    for job in synth.plan_dataset("synth-epi"):
        side = _sidecar(suite, "synth-epi", job)
        codes = nib.aff2axcodes(nib.load(suite / "synth-epi" / job.image_path).affine)
        axis = next(i for i, c in enumerate(codes) if c in "AP")
        assert side["PhaseEncodingDirection"] == "ijk"[axis] + ("" if codes[axis] == "A" else "-")
        assert side["TaskName"] == "rest" and side["RepetitionTime"] == 2.5
        assert nib.load(suite / "synth-epi" / job.image_path).header.get_zooms()[2] == 5.0


# ---------------------------------------------------------------------------------------------- contrasts


def _cord_and_ring(image: np.ndarray, mask: np.ndarray, zooms: tuple[float, ...]) -> tuple[float, float]:
    """Mean intensity inside the cord mask and in the 2 mm shell around it (CSF in a healthy canal)."""
    distance = ndimage.distance_transform_edt(mask == 0, sampling=zooms)
    ring = (distance > 0) & (distance <= 2.0)
    return float(image[mask > 0].mean()), float(image[ring].mean())


@pytest.mark.parametrize(("dataset_id", "suffix", "low", "high"), [
    ("synth-multicontrast", "T2w", 0.35, 0.55),  # CSF bright, cord dark
    ("synth-multicontrast", "T2starw", 0.45, 0.65),
    ("synth-multicontrast", "T1w", 2.5, 5.0),  # cord brighter than CSF
    ("synth-multicontrast", "dwi", 1.4, 2.5),  # CSF attenuated by diffusion weighting
    ("synth-mp2rage", "UNIT1", 3.0, 5.0),  # CSF dark (long T1), cord grey
    ("synth-epi", "bold", 0.5, 0.8),
])
def test_cord_to_csf_ratio_per_contrast(suite: Path, dataset_id: str, suffix: str, low: float, high: float) -> None:
    ratios = []
    for job in synth.plan_dataset(dataset_id):
        if not job.image_path.endswith(f"_{suffix}.nii.gz"):
            continue
        image, img = _canonical(suite / dataset_id / job.image_path)
        mask, _ = _canonical(suite / dataset_id / job.mask_path)
        cord, ring = _cord_and_ring(image.astype(float), mask, img.header.get_zooms())
        ratios.append(cord / ring)
    assert len(ratios) >= 6
    assert low < min(ratios) and max(ratios) < high, ratios


def _tissue_on_grid(dataset_id: str, job: synth.VolumeJob, volume: synth.RenderedVolume) -> np.ndarray:
    geometry = volume.geometry
    anat = synth.subject_anatomy(dataset_id, job.subject_index, 0)
    return synth.label_volume(anat, *(geometry.centres(axis) for axis in range(3)))


def _core(mask: np.ndarray) -> np.ndarray:
    """The cord mask without its outer voxel layer (free of partial volume with CSF)."""
    return ndimage.binary_erosion(mask > 0, iterations=1)


def test_grey_matter_visible_on_t2star_only() -> None:
    contrasts = {}
    for job in synth.plan_dataset("synth-multicontrast")[:4]:
        volume = synth.render_job("synth-multicontrast", job, 0)
        tissue = _tissue_on_grid("synth-multicontrast", job, volume)
        core = _core(volume.mask)
        gm = volume.image[(tissue == synth.Tissue.GM) & core].mean()
        wm = volume.image[(tissue == synth.Tissue.WM) & core].mean()
        contrasts[volume.parameters["contrast"]] = gm / wm
    assert contrasts["T2starw"] > 1.4
    assert 1.0 < contrasts["T2w"] < 1.2
    assert contrasts["T1w"] < 0.97


def test_mp2rage_background_is_salt_and_pepper() -> None:
    job = synth.plan_dataset("synth-mp2rage")[0]
    volume = synth.render_job("synth-mp2rage", job, 0)
    tissue = _tissue_on_grid("synth-mp2rage", job, volume)
    air = ndimage.binary_erosion(tissue == synth.Tissue.AIR, iterations=2)
    cord = ndimage.binary_erosion(volume.mask > 0, iterations=1)
    assert air.sum() > 1000
    background = volume.image[air].astype(float)
    # noise-only UNI is spread over the whole 0-4095 range, tissue is smooth
    assert background.std() > 900 and background.min() < 300 and background.max() > 3800
    assert volume.image[cord].astype(float).std() < 250
    assert volume.image.min() >= 0 and volume.image.max() <= 4095


def test_t2w_background_is_rician_not_salt_and_pepper() -> None:
    job = synth.plan_dataset("synth-multicontrast")[1]  # T2w sagittal
    volume = synth.render_job("synth-multicontrast", job, 0)
    tissue = _tissue_on_grid("synth-multicontrast", job, volume)
    air = ndimage.binary_erosion(tissue == synth.Tissue.AIR, iterations=2)
    csf = volume.image[tissue == synth.Tissue.CSF].mean()
    assert air.sum() > 100
    assert volume.image[air].mean() < 0.12 * csf


def test_ms_lesions_are_hyperintense_inside_the_cord() -> None:
    checked = 0
    for job in synth.plan_dataset("synth-ms"):
        volume = synth.render_job("synth-ms", job, 0)
        tissue = _tissue_on_grid("synth-ms", job, volume)
        lesion = tissue == synth.Tissue.LESION
        if lesion.sum() < 3:
            continue
        assert volume.mask[lesion].all()  # lesions are part of the cord mask
        # thick slices dilute small lesions by partial volume; still clearly brighter than white matter
        assert volume.image[lesion].mean() > 1.4 * volume.image[(tissue == synth.Tissue.WM) & _core(volume.mask)].mean()
        checked += 1
    assert checked >= 6


def test_compression_flattens_cord_and_effaces_csf(suite: Path) -> None:
    flattening = []
    for job in synth.plan_dataset("synth-compression"):
        mask, img = _canonical(suite / "synth-compression" / job.mask_path)
        anat = synth.subject_anatomy("synth-compression", job.subject_index, 0)
        zs = img.affine[2, 3] + img.affine[2, 2] * np.arange(mask.shape[2])
        ap = (mask.any(axis=0).sum(axis=0)) * img.header.get_zooms()[1]  # AP extent per slice (mm)
        level = int(np.argmin(np.abs(zs - anat.compressions[0].z)))
        far = np.abs(zs - min((c.z for c in anat.compressions), key=lambda z: abs(z - zs[level]))) > 15
        far &= np.array([all(abs(z - c.z) > 15 for c in anat.compressions) for z in zs]) & (ap > 0)
        flattening.append(ap[level] / np.median(ap[far]))
        pr = synth.profiles(anat, np.array([anat.compressions[0].z]))
        anterior_csf = (pr.canal_v + pr.canal_b) - (pr.cord_v + pr.b)
        assert anterior_csf[0] < 0.5  # mm of CSF left in front of the cord at the compressed disc
    assert max(flattening) < 0.95 and float(np.median(flattening)) < 0.8, flattening


def test_injury_swells_the_cord_with_hyperintense_oedema() -> None:
    for job in synth.plan_dataset("synth-injury")[:4]:
        volume = synth.render_job("synth-injury", job, 0)
        tissue = _tissue_on_grid("synth-injury", job, volume)
        anat = synth.subject_anatomy("synth-injury", job.subject_index, 0)
        edema = tissue == synth.Tissue.EDEMA
        assert edema.sum() > 20 and volume.mask[edema].all()
        assert volume.image[edema].mean() > 1.6 * volume.image[(tissue == synth.Tissue.WM) & _core(volume.mask)].mean()
        pr = synth.profiles(anat, np.array([anat.injury.z, anat.injury.z + 40.0]))
        assert pr.a[0] > pr.a[1] * (1 + 0.5 * anat.injury.swelling) - 1.0  # wider at the injury


def test_sessions_share_anatomy_but_not_noise(suite: Path) -> None:
    mc = suite / "synth-multicontrast"
    template = "derivatives/labels/sub-03/ses-{0}/anat/sub-03_ses-{0}_acq-axial_T2starw_seg-manual.nii.gz"
    a, img_a = _canonical(mc / template.format("01"))
    b, img_b = _canonical(mc / template.format("02"))
    area_a = a.sum() * np.prod(img_a.header.get_zooms()) / a.shape[2]
    area_b = b.sum() * np.prod(img_b.header.get_zooms()) / b.shape[2]
    # same cord (volume per slice within 10 %), different field of view
    assert abs(area_a - area_b) / area_a < 0.1
    assert not np.allclose(img_a.affine, img_b.affine)


def test_contrast_figure(tmp_path: Path) -> None:
    out = synth.render_contrast_figure(tmp_path / "fig" / "contrasts.png", seed=0)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert 30_000 < len(data) < 300_000
