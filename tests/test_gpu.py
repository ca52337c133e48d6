"""What only a CUDA GPU can show: training and cordbench's predictor on CUDA, the sandbox with the GPU visible.

Marked ``gpu``; every test skips, saying why, where torch sees no CUDA device. tools/gpu/on_device.sh runs them
(``pytest -m gpu``) on a lent GPU machine as part of its check (docs/performance.md, "GPU").
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from nnunet_testdata import dice

NO_CUDA = "no CUDA device: torch.cuda.is_available() is False on this machine"
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)]
TINY_RUN = {"num_epochs": 2, "iterations_per_epoch": 4, "val_iterations_per_epoch": 1, "num_processes": 1}


@pytest.fixture(scope="module")
def cuda_model(tiny_nnunet, tmp_path_factory):
    from benchmark.training.nnunet.train import train_model
    from nnunet_testdata import preprocessed_copy

    raw, preprocessed = tiny_nnunet
    work = preprocessed_copy(preprocessed, tmp_path_factory.mktemp("cuda_train"))
    return raw, train_model(raw, work, device="cuda", seed=0, **TINY_RUN)


def test_training_on_cuda_writes_a_weights_only_checkpoint(cuda_model):
    _, trained = cuda_model
    assert trained.device.startswith("cuda")
    checkpoint = torch.load(trained.checkpoint, map_location="cpu", weights_only=True)
    assert checkpoint["current_epoch"] == TINY_RUN["num_epochs"]
    assert all(torch.isfinite(tensor).all() for tensor in checkpoint["network_weights"].values())


@pytest.mark.parametrize("mirroring", [False, True])
def test_cordbench_predictor_matches_nnunet_predictor_on_cuda(cuda_model, tmp_path, mirroring):
    import nibabel as nib

    from benchmark.models.nnunet.predict import load_model, nnunet_reference_predictor

    raw, trained = cuda_model
    model = load_model(trained.model_folder, device="cuda", use_mirroring=mirroring, runtime_cache_dir=tmp_path)
    assert model.runtime == "torch" and model.device.type == "cuda"
    [image_path] = sorted((raw / "imagesTs").glob("*_0000.nii.gz"))
    reference = nnunet_reference_predictor(model, use_mirroring=mirroring)
    reference.predict_from_files_sequential([[str(image_path)]], str(tmp_path / "nnunet"), save_probabilities=False)
    theirs = np.asarray(nib.load(tmp_path / "nnunet" / image_path.name.replace("_0000", "")).dataobj) > 0
    image = nib.as_closest_canonical(nib.load(image_path))
    ours = model.predict_probabilities(image.get_fdata(dtype=np.float32), image.header.get_zooms()[:3]) > 0.5
    assert dice(ours, theirs) >= 0.995  # both under nnU-Net's float16 autocast; the tiny model is barely trained


def test_the_sandbox_shows_the_gpu_to_a_submission(tmp_path):
    from benchmark.models.sandbox import SandboxSpec, bwrap_executable, run_program

    if bwrap_executable() is None:
        pytest.skip("bubblewrap (bwrap) is missing or cannot create namespaces on this machine")
    (tmp_path / "output").mkdir()
    spec = SandboxSpec(folder=tmp_path, inputs={}, output_dir=tmp_path / "output", timeout_s=120, gpu=True)
    program = "import torch; assert torch.cuda.is_available(), 'no CUDA in the sandbox'; print(torch.cuda.get_device_name(0))"
    run = run_program("bubblewrap", spec, [sys.executable, "-c", program], tmp_path)
    assert run.returncode == 0, run.stderr_tail
    assert torch.cuda.get_device_name(0) in run.stdout_tail
