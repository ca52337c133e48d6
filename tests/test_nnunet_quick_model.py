"""The quick 2D nnU-Net profile trained on the real gmchallenge T2*w scans (480 iterations, one thread, ~6 min on
2 cores): it segments the two held-out scans (Dice >= 0.90), cordbench's batched predictor agrees with nnU-Net's
own on a real volume, and a non-canonical copy is segmented once the caller reorients it.

Its own module so that a parallel test run (pytest-xdist, one module per worker) trains it beside the others.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from benchmark.models.nnunet.predict import load_model, nnunet_reference_predictor
from benchmark.training.nnunet.train import TrainedModel, train_model
from nnunet_testdata import build_raw_dataset, dice

@pytest.fixture(scope="module")
def gm_raw(tmp_path_factory) -> Path:
    return build_raw_dataset(tmp_path_factory.mktemp("gm_raw"))


@pytest.fixture(scope="module")
def gm_model(gm_raw, tmp_path_factory) -> TrainedModel:
    # quick profile defaults (40 epochs x 12 iterations)
    return train_model(gm_raw, tmp_path_factory.mktemp("gm_work"), seed=0)


class OncePerInput:
    """The loaded model's ``predict_probabilities``, computed once per distinct input array (same bytes, shape and
    spacing) for the module: the same model on the same input gives the same probabilities, and a held-out volume
    costs seconds of CPU per prediction."""

    def __init__(self, model):
        self.model = model
        self.computed: dict[tuple, np.ndarray] = {}

    def predict_probabilities(self, array: np.ndarray, spacing) -> np.ndarray:
        key = (hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest(), array.shape, array.dtype.str,
               tuple(float(value) for value in spacing))
        if key not in self.computed:
            self.computed[key] = self.model.predict_probabilities(array, spacing)
        return self.computed[key]


@pytest.fixture(scope="module")
def gm_predictor(gm_model) -> OncePerInput:
    """The trained model loaded once for the module (cordbench's batched predictor, default settings)."""
    return OncePerInput(load_model(gm_model.model_folder))


def _predict_file(model, image_path: Path) -> np.ndarray:
    """Probabilities for a NIfTI file that is already in canonical RAS+ (as the converter writes them)."""
    image = nib.load(image_path)
    return model.predict_probabilities(image.get_fdata(dtype=np.float32), image.header.get_zooms()[:3])


def _held_out(gm_raw: Path) -> list[tuple[Path, Path]]:
    images = sorted((gm_raw / "imagesTs").glob("*_0000.nii.gz"))
    return [(i, gm_raw / "labelsTs" / i.name.replace("_0000", "")) for i in images]


@pytest.mark.slow
@pytest.mark.real_data
def test_quick_model_segments_held_out_gmchallenge(gm_raw, gm_model, gm_predictor):
    scores = {}
    for image_path, label_path in _held_out(gm_raw):
        probabilities = _predict_file(gm_predictor, image_path)
        scores[image_path.name] = dice(probabilities > 0.5, nib.load(label_path).get_fdata() > 0.5)
    print(f"held-out Dice: {scores}; training {gm_model.training_seconds:.0f} s, "
          f"pseudo-Dice {gm_model.final_pseudo_dice:.3f}")
    assert len(scores) == 2
    assert min(scores.values()) >= 0.90, scores


@pytest.mark.slow
@pytest.mark.real_data
def test_batched_predictor_agrees_with_nnunet_on_real_volume(gm_raw, gm_predictor, tmp_path):
    image_path, _ = _held_out(gm_raw)[0]
    ours = _predict_file(gm_predictor, image_path)
    reference = nnunet_reference_predictor(gm_predictor.model, use_mirroring=False)
    reference.predict_from_files_sequential([[str(image_path)]], str(tmp_path), save_probabilities=False)
    nnunet_mask = nib.load(tmp_path / image_path.name.replace("_0000", "")).get_fdata() > 0.5
    assert nnunet_mask.sum() > 100
    assert dice(ours > 0.5, nnunet_mask) >= 0.995


@pytest.mark.slow
@pytest.mark.real_data
def test_non_canonical_input_is_segmented_after_the_caller_reorients(gm_raw, gm_predictor, tmp_path):
    """A PSR-oriented copy of a held-out scan: the caller reorients to RAS, predicts, maps back."""
    image_path, label_path = _held_out(gm_raw)[1]
    canonical = nib.load(image_path)
    to_psr = nib.orientations.ornt_transform(nib.orientations.axcodes2ornt("RAS"),
                                             nib.orientations.axcodes2ornt("PSR"))
    native = nib.Nifti1Image(canonical.get_fdata(dtype=np.float32), canonical.affine).as_reoriented(to_psr)
    native_label = np.asarray(nib.load(label_path).as_reoriented(to_psr).dataobj) > 0.5
    assert nib.aff2axcodes(native.affine) == ("P", "S", "R")
    assert native.shape == (canonical.shape[1], canonical.shape[2], canonical.shape[0])

    reoriented = nib.as_closest_canonical(native)
    assert reoriented.shape == canonical.shape
    # reorienting gives back the canonical voxels exactly, so the model sees what it saw in the held-out test (its
    # probabilities are computed once per input array: gm_predictor)
    np.testing.assert_array_equal(reoriented.get_fdata(dtype=np.float32), canonical.get_fdata(dtype=np.float32))
    probabilities = gm_predictor.predict_probabilities(reoriented.get_fdata(dtype=np.float32),
                                                       reoriented.header.get_zooms()[:3])
    assert probabilities.shape == canonical.shape
    to_native = nib.orientations.ornt_transform(nib.orientations.io_orientation(reoriented.affine),
                                                nib.orientations.io_orientation(native.affine))
    back = nib.Nifti1Image(probabilities, reoriented.affine).as_reoriented(to_native)
    assert back.shape == native.shape
    np.testing.assert_allclose(back.affine, native.affine, atol=1e-4)
    assert dice(np.asarray(back.dataobj) > 0.5, native_label) >= 0.90
