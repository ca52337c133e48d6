"""`cordbench import` of models trained with nnU-Net itself: its exporter's zip and a results folder."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from benchmark import cli
from benchmark.evaluation.predict import predict
from benchmark.evaluation.inference import ModelLoadError, Predictor
from benchmark.io import sha256_file
from benchmark.models.nnunet_import import NnunetImportError, import_nnunet
from benchmark.models.nnunet.predict import load_model
from benchmark.data.submissions import check_submission, load_submission
from nnunet_results import export_with_nnunet, write_tiny_results

DATASET = "Dataset991_TinyResults"


@pytest.fixture(scope="module")
def stock_zip(tmp_path_factory) -> tuple[Path, Path]:
    """(model folder, zip written by nnU-Net's exporter) of a model whose checkpoint holds numpy values."""
    root = tmp_path_factory.mktemp("stock")
    folder = write_tiny_results(root / "nnUNet_results", dataset=DATASET, fold=0, stock_checkpoint=True)
    return folder, export_with_nnunet(root / "nnUNet_results", DATASET, root / "exported.zip", folds=(0,))


def _image(path: Path) -> Path:
    rng = np.random.default_rng(1)
    data = rng.normal(100, 20, (40, 36, 6)).astype(np.float32)
    affine = np.diag([-1.0, -1.0, 3.0, 1.0])  # LPS: the model sees RAS, the mask comes back on this grid
    nib.save(nib.Nifti1Image(data, affine), path)
    return path


def test_nnunet_exporter_zip_is_imported_verified_and_predicts_like_the_original(stock_zip, tmp_path):
    folder, archive = stock_zip
    members = zipfile.ZipFile(archive).namelist()
    assert f"{DATASET}/nnUNetTrainer__nnUNetPlans__2d/fold_0/checkpoint_final.pth" in members  # nnU-Net's layout

    with pytest.raises(NnunetImportError, match=r"pass --trained-on ID\[,ID\]"):
        import_nnunet(archive, trained_on=None, submissions_root=tmp_path)
    with pytest.raises(NnunetImportError, match="not a registered dataset"):
        import_nnunet(archive, trained_on=["no-such-dataset"], submissions_root=tmp_path)
    with pytest.raises(NnunetImportError, match="needs full unpickling.*--trust-checkpoint") as refused:
        import_nnunet(archive, trained_on=["gmchallenge"], submissions_root=tmp_path)
    assert f"{DATASET}/nnUNetTrainer__nnUNetPlans__2d/fold_0/checkpoint_final.pth" in str(refused.value)
    assert not any(tmp_path.iterdir())  # nothing registered, no staging left behind

    submission = import_nnunet(archive, trained_on=["gmchallenge,sct-testing"], trust_checkpoint=True,
                               submissions_root=tmp_path)
    assert submission.name == "dataset991-tinyresults-2d"
    assert submission.training.datasets == ["gmchallenge", "sct-testing"]
    model = submission.model
    assert (model.type, model.configuration, model.folds, model.trainer, model.plans) == (
        "nnunet", "2d", [0], "nnUNetTrainer", "nnUNetPlans")
    originals = {path.relative_to(folder).as_posix(): sha256_file(path) for path in folder.rglob("*") if path.is_file()}
    assert model.files == originals  # every file of the model folder, with its sha256
    assert model.sha256 == originals["fold_0/checkpoint_final.pth"]
    assert submission.parameters == sum(p.numel() for p in load_model(folder, folds=[0], trust_checkpoint=True)
                                        .predictor.network.parameters())
    assert check_submission(load_submission(submission.name, tmp_path)) == []

    image = _image(tmp_path / "sub-01_T2w.nii.gz")
    report = predict(submission.name, image, tmp_path / "out", trust_checkpoint=True, submissions_root=tmp_path,
                     progress=False)
    assert [outcome.status for outcome in report.outcomes] == ["predicted"]
    ours = np.asarray(nib.load(report.outcomes[0].mask).dataobj)
    original = load_model(folder, folds=[0], trust_checkpoint=True)
    canonical = nib.as_closest_canonical(nib.load(image))
    expected_ras = original.predict_probabilities(np.asarray(canonical.dataobj, dtype=np.float32), (1.0, 1.0, 3.0)) >= 0.5
    assert 0 < expected_ras.sum() < expected_ras.size  # an informative comparison: neither empty nor full
    assert np.array_equal(ours, expected_ras[::-1, ::-1, :].astype(np.uint8))  # back to LPS

    untrusted = Predictor(load_submission(submission.name, tmp_path), tmp_path / "cache")
    with pytest.raises(ModelLoadError, match="trust"):
        untrusted.array_model()


def test_a_file_changed_after_import_is_caught_before_loading(stock_zip, tmp_path):
    _folder, archive = stock_zip
    submission = import_nnunet(archive, trained_on=["gmchallenge"], trust_checkpoint=True, submissions_root=tmp_path,
                               name="changed")
    plans = submission.folder / "model" / "plans.json"
    plans.write_text(plans.read_text().replace('"batch_size": 2', '"batch_size": 3'))
    problems = check_submission(load_submission("changed", tmp_path))
    assert problems == [f"model.files: {plans} differs from the sha256 recorded at import"]
    with pytest.raises(ModelLoadError, match="plans.json differs from the sha256 recorded at import"):
        Predictor(load_submission("changed", tmp_path), tmp_path / "cache", trust_checkpoint=True).array_model()


def test_results_folder_import_takes_a_safe_checkpoint_without_trust(tmp_path):
    results = tmp_path / "nnUNet_results"
    folder = write_tiny_results(results, dataset="Dataset992_Folder", fold="all", seed=3)
    (folder / "fold_all" / "checkpoint_best.pth").write_bytes((folder / "fold_all" / "checkpoint_final.pth").read_bytes())
    for source in (results / "Dataset992_Folder", folder):  # the dataset folder or the model folder itself
        submission = import_nnunet(source, trained_on=["sct-testing"], submissions_root=tmp_path / "subs",
                                   overwrite=True)
        assert submission.name == "dataset992-folder-2d"
        assert submission.model.folds == ["all"] and submission.model.checkpoint == "checkpoint_final.pth"
        assert set(submission.model.files) == {"plans.json", "dataset.json", "dataset_fingerprint.json",
                                               "fold_all/checkpoint_final.pth", "fold_all/checkpoint_best.pth",
                                               "fold_all/progress.png", "fold_all/validation/summary.json"}
    with pytest.raises(NnunetImportError, match="exists already"):
        import_nnunet(folder, trained_on=["sct-testing"], submissions_root=tmp_path / "subs")
    best = import_nnunet(folder, trained_on=["sct-testing"], submissions_root=tmp_path / "subs", name="best",
                         checkpoint="checkpoint_best.pth")
    assert best.model.checkpoint == "checkpoint_best.pth"
    with pytest.raises(NnunetImportError, match=r"has no fold_3 \(present: fold_all\)"):
        import_nnunet(folder, trained_on=["sct-testing"], submissions_root=tmp_path / "subs", name="x", folds=["3"])


def test_unsafe_or_ambiguous_sources_are_refused(stock_zip, tmp_path):
    _folder, archive = stock_zip
    escaping = tmp_path / "escaping.zip"
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(escaping, "w") as target:
        for name in source.namelist():
            target.writestr(name, source.read(name))
        target.writestr("../outside.txt", b"x")
    with pytest.raises(NnunetImportError, match=r"'\.\./outside\.txt' would be written outside"):
        import_nnunet(escaping, trained_on=["gmchallenge"], submissions_root=tmp_path / "subs")

    results = tmp_path / "nnUNet_results"
    write_tiny_results(results, dataset="Dataset993_Two", fold=0)
    second = results / "Dataset993_Two" / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    (second / "fold_0").mkdir(parents=True)
    for name in ("plans.json", "dataset.json"):
        (second / name).write_bytes((results / "Dataset993_Two" / "nnUNetTrainer__nnUNetPlans__2d" / name).read_bytes())
    torch.save({"network_weights": {"unrelated": torch.zeros(2)}, "init_args": {"configuration": "2d"},
                "trainer_name": "nnUNetTrainer"}, second / "fold_0" / "checkpoint_final.pth")
    with pytest.raises(NnunetImportError, match="holds 2 models .* choose one with --configuration 2d"):
        import_nnunet(results, trained_on=["gmchallenge"], submissions_root=tmp_path / "subs")
    with pytest.raises(NnunetImportError, match="the model does not load: ModelFolderError: .*weights do not fit"):
        import_nnunet(results, trained_on=["gmchallenge"], configuration="3d_fullres", submissions_root=tmp_path / "subs")
    chosen = import_nnunet(results, trained_on=["gmchallenge"], configuration="2d", submissions_root=tmp_path / "subs")
    assert chosen.model.configuration == "2d"


def test_cli_import_names_the_missing_flag_and_registers(stock_zip, tmp_path, monkeypatch):
    _folder, archive = stock_zip
    from benchmark.workspace import ENV_WORKSPACE, init_workspace

    workspace = init_workspace(tmp_path / "ws")  # `cordbench import` registers into the active workspace
    monkeypatch.setenv(ENV_WORKSPACE, str(workspace.root))
    monkeypatch.setattr(cli.shell, "console", Console(width=220, no_color=True))
    monkeypatch.setattr(cli.shell, "err_console", Console(width=220, no_color=True, stderr=True))
    runner = CliRunner()
    missing = runner.invoke(cli.app, ["import", str(archive)])
    assert missing.exit_code == 1 and "--trained-on ID[,ID]" in missing.output
    done = runner.invoke(cli.app, ["import", str(archive), "--trained-on", "gmchallenge", "--trust-checkpoint",
                                   "--name", "mine", "--author", "A. Person", "--licence", "CC-BY-4.0"])
    assert done.exit_code == 0, done.output
    manifest = load_submission("mine", workspace.submissions_dir)
    assert manifest.authors == ["A. Person"] and manifest.licence == "CC-BY-4.0"
    assert json.loads(json.dumps(manifest.model.files))["fold_0/checkpoint_final.pth"] == manifest.model.sha256


@pytest.mark.slow
def test_tiny_trained_model_exported_by_nnunet_is_imported_and_predicts(tmp_path, tiny_nnunet):
    """The full path a user takes: nnU-Net training output -> nnUNetv2_export_model_to_zip -> cordbench import."""
    from benchmark.training.nnunet.train import train_model
    from nnunet_testdata import preprocessed_copy

    raw, preprocessed = tiny_nnunet
    trained = train_model(raw, preprocessed_copy(preprocessed, tmp_path / "work"), seed=3, num_epochs=1, iterations_per_epoch=1,
                          val_iterations_per_epoch=1, num_processes=1)
    # CordbenchTrainer skips nnU-Net's final validation; nnU-Net's exporter requires its summary
    (trained.model_folder / "fold_all" / "validation").mkdir()
    (trained.model_folder / "fold_all" / "validation" / "summary.json").write_text("{}")
    archive = export_with_nnunet(tmp_path / "work" / "nnUNet_results", "Dataset990_TinySynth", tmp_path / "tiny.zip",
                                 folds=("all",), configuration=trained.configuration, trainer=trained.trainer_name)
    submission = import_nnunet(archive, trained_on=["synth-ms"], submissions_root=tmp_path / "subs")
    assert submission.model.sha256 == trained.checkpoint_sha256
    image = raw / "imagesTs" / "case004_0000.nii.gz"
    report = predict(submission.name, image, tmp_path / "out", submissions_root=tmp_path / "subs", progress=False)
    mask = np.asarray(nib.load(report.outcomes[0].mask).dataobj)
    direct = load_model(trained.model_folder).predict_probabilities(
        np.asarray(nib.load(image).dataobj, dtype=np.float32), (0.8, 0.8, 3.0)) >= 0.5
    assert np.array_equal(mask, direct.astype(np.uint8))


def test_an_imported_model_exports_as_a_cordbench_archive(stock_zip, tmp_path):
    from benchmark.models.packaging import export_submission, import_archive

    _folder, archive = stock_zip
    imported = import_nnunet(archive, trained_on=["gmchallenge"], trust_checkpoint=True, submissions_root=tmp_path / "a",
                             name="shared")
    exported = export_submission("shared", tmp_path / "shared.zip", tmp_path / "a")
    again = import_archive(exported, tmp_path / "b")
    # the archive carries the weights, plans and dataset.json under its own checksums; files left behind are not listed
    assert again.model.files is None and again.model.sha256 == imported.model.sha256
    assert check_submission(again) == []
