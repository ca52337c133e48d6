"""A new user's own data, from the command line only (issue: "Your own data, end to end, without reading the
source"). Each test repeats what the user did, with the message they got before the fix in a comment, on small
BIDS datasets with real-looking names (tests/own_data_fixtures.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from benchmark import workspace
from benchmark.cli import app
from own_data_fixtures import write_anat_dataset, write_epi_dataset
from test_workspace import ws  # noqa: F401 (the active workspace fixture)

runner = CliRunner()
ANAT_A1_MASK = "derivatives/labels/sub-a1/ses-1/anat/sub-a1_ses-1_acq-axial_run-1_T2w_seg-manual.nii.gz"
ANAT_A1_IMAGE = "sub-a1/ses-1/anat/sub-a1_ses-1_acq-axial_run-1_T2w.nii.gz"


def invoke(*args):
    result = runner.invoke(app, [str(arg) for arg in args], catch_exceptions=False, terminal_width=400)
    result.flat = " ".join(result.output.split())  # rich wraps long lines; compare words
    return result


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # rich wraps at the terminal's width


@pytest.fixture
def bids(tmp_path) -> dict[str, Path]:
    return {"epi": write_epi_dataset(tmp_path / "bids" / "my-epi"), "t2": write_anat_dataset(tmp_path / "bids" / "my-t2")}


def shift_affine(path: Path, mm: float) -> None:
    image = nib.load(str(path))
    affine = image.affine.copy()
    affine[0, 3] += mm
    data = np.asarray(image.dataobj)
    path.unlink()
    nib.save(nib.Nifti1Image(data, affine), str(path))


# --------------------------------------------------------------------------------------- building a suite


def test_an_ood_suite_of_two_datasets_without_editing_yaml(ws, bids):
    first = invoke("datasets", "add", "my-epi", "--root", bids["epi"], "--suite", "my-suite", "--role", "ood")
    assert first.exit_code == 0, first.output
    assert f"wrote {ws.root / 'suites' / 'my-suite.yaml'} (new suite): + my-epi (ood)" in first.flat
    # before: "error: suite id 'my-suite' exists already: .../suites/my-suite.yaml" (and no role option)
    second = invoke("datasets", "add", "my-t2", "--root", bids["t2"], "--suite", "my-suite", "--role", "ood")
    assert second.exit_code == 0, second.output
    assert f"wrote {ws.root / 'suites' / 'my-suite.yaml'} (suite my-suite): + my-t2 (ood)" in second.flat
    from benchmark.data.registry import load_suite

    suite = load_suite("my-suite")
    assert suite.ids("ood") == ["my-epi", "my-t2"] and suite.ids("in-domain") == []
    made = invoke("splits", "make", "--suite", "my-suite")
    assert made.exit_code == 0, made.output
    split = json.loads((ws.splits_dir / "my-suite.json").read_text())
    assert {name: entry["test"] for name, entry in split["datasets"].items()} == {
        "my-epi": ["sub-p01", "sub-p01rescan", "sub-p02"], "my-t2": ["sub-a1", "sub-a2"]}


def test_several_datasets_in_one_command_with_a_same_person_pair(ws, bids):
    result = invoke("datasets", "add", f"my-epi={bids['epi']}", f"my-t2={bids['t2']}", "--suite", "my-suite",
                    "--role", "ood", "--same-person", "sub-p01,p01rescan")
    assert result.exit_code == 0, result.output
    assert "my-epi: one person each: sub-p01, sub-p01rescan" in result.flat
    assert "look like one person" not in result.flat  # declared: no warning
    assert yaml.safe_load((ws.datasets_dir / "my-epi.yaml").read_text())["same_person"] == [["sub-p01",
                                                                                             "sub-p01rescan"]]
    assert "same_person" not in yaml.safe_load((ws.datasets_dir / "my-t2.yaml").read_text())
    assert "+ my-epi (ood); + my-t2 (ood)" in result.flat


def test_same_person_from_a_file_and_a_mistyped_id(ws, bids, tmp_path):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("# one person scanned twice\nsub-p01\tsub-p01rescan\n")
    result = invoke("datasets", "add", "my-epi", "--root", bids["epi"], "--same-person-file", pairs)
    assert result.exit_code == 0, result.output
    assert yaml.safe_load((ws.datasets_dir / "my-epi.yaml").read_text())["same_person"] == [["sub-p01",
                                                                                             "sub-p01rescan"]]
    wrong = invoke("datasets", "add", "my-t2", "--root", bids["t2"], "--same-person", "sub-a1,a2x")
    assert wrong.exit_code == 2
    assert "error: same person sub-a1,sub-a2x: 'sub-a2x' is not a participant of my-t2; did you mean 'sub-a2'?" \
        in wrong.flat
    assert not (ws.datasets_dir / "my-t2.yaml").exists()


def test_two_people_who_look_like_one_are_warned_about(ws, bids):
    # before: no word, and the two scans of one person could be split one to train, one to test
    result = invoke("datasets", "add", "my-epi", "--root", bids["epi"], "--suite", "my-suite", "--role", "in-domain")
    assert result.exit_code == 0
    assert ("warning: my-epi: sub-p01 and sub-p01rescan look like one person: "
            "sub-p01/func/sub-p01_task-rest_desc-mocomean_bold.nii.gz and "
            "sub-p01rescan/func/sub-p01rescan_task-rest_desc-mocomean_bold.nii.gz are on the same grid with "
            "near-identical content (correlation 0.99") in result.flat
    assert "declare it: `--same-person sub-p01,sub-p01rescan`" in result.flat
    assert "sub-p02" not in result.flat.split("warning:")[1]
    made = invoke("splits", "make", "--suite", "my-suite")
    assert "`cordbench datasets same-person my-epi sub-p01,sub-p01rescan`, then `cordbench splits make --suite " \
           "my-suite --refreeze`" in made.flat
    declared = invoke("datasets", "same-person", "my-epi", "sub-p01,sub-p01rescan")
    assert declared.exit_code == 0, declared.output
    refrozen = invoke("splits", "make", "--suite", "my-suite", "--refreeze")
    assert refrozen.exit_code == 0, refrozen.output
    assert "look like one person" not in refrozen.flat
    assert 'my-epi: rule same_person null -> [["sub-p01", "sub-p01rescan"]]' in refrozen.flat
    split = json.loads((ws.splits_dir / "my-suite.json").read_text())["datasets"]["my-epi"]
    assert ("sub-p01" in split["test"]) == ("sub-p01rescan" in split["test"])


def test_one_person_in_an_in_domain_suite_gives_an_empty_test_split_and_says_so(ws, bids):
    for sub in ("sub-p02",):
        shutil.rmtree(bids["epi"] / sub)
        shutil.rmtree(bids["epi"] / "derivatives" / "labels" / sub)
    result = invoke("datasets", "add", "my-epi", "--root", bids["epi"], "--suite", "my-suite",
                    "--same-person", "sub-p01,sub-p01rescan")
    assert result.exit_code == 0, result.output
    made = invoke("splits", "make", "--suite", "my-suite")
    # before: the test split was empty, with no word
    assert made.exit_code == 0
    assert ("warning: the test split of my-epi is empty (all 1 of its people are in the train split): nothing of "
            "my-epi will be scored; with so few people use it out-of-domain (`cordbench suites add my-suite my-epi "
            "--role ood`) or raise its test fraction") in made.flat
    moved = invoke("suites", "add", "my-suite", "my-epi", "--role", "ood")
    assert moved.exit_code == 0
    assert "my-epi (in-domain, test fraction 0.2) -> my-epi (ood)" in moved.flat
    remade = invoke("splits", "make", "--suite", "my-suite")
    assert ("warning: the test split of my-epi holds one person (sub-p01, 2 participant id(s)): its scores describe "
            "that person, and no interval over people can be computed") in remade.flat


def test_adding_and_removing_datasets_announces_the_new_version_and_keeps_the_old(ws, bids):
    invoke("datasets", "add", "my-epi", "--root", bids["epi"], "--suite", "my-suite", "--role", "ood")
    invoke("datasets", "add", "my-t2", "--root", bids["t2"])
    first = invoke("splits", "make", "--suite", "my-suite")
    version = json.loads((ws.splits_dir / "my-suite.json").read_text())["version"]
    assert f"wrote {ws.splits_dir / 'my-suite.json'} (benchmark version {version})" in first.flat
    added = invoke("suites", "add", "my-suite", "my-t2", "--role", "ood")
    assert (f"the suite's split (version {version}, {ws.splits_dir / 'my-suite.json'}) no longer matches it: "
            "`cordbench splits make --suite my-suite` writes a new version and keeps this one") in added.flat
    # scoring before the new split: refused, not scored under the old version without my-t2
    refused = invoke("score", "threshold-baseline", "--suite", "my-suite", "--no-sandbox")
    assert refused.exit_code == 2
    assert (f"error: suite my-suite: its split (benchmark version {version}) was made for other datasets (added to "
            "the suite since: my-t2); `cordbench splits make --suite my-suite` makes the new version") in refused.flat
    second = invoke("splits", "make", "--suite", "my-suite")
    new_version = json.loads((ws.splits_dir / "my-suite.json").read_text())["version"]
    # before: the version changed silently
    assert f"new benchmark version {version} -> {new_version}: + my-t2 (ood, 2 test subjects)" in second.flat
    kept = ws.splits_dir / "superseded" / f"my-suite@{version}.json"
    assert f"the previous split is kept as {kept}" in second.flat
    assert json.loads(kept.read_text())["version"] == version
    removed = invoke("suites", "remove", "my-suite", "my-t2")
    assert "- my-t2" in removed.flat and removed.exit_code == 0
    assert "+ my-epi" not in removed.flat
    third = invoke("splits", "make", "--suite", "my-suite")
    assert "- my-t2 (removed from the suite)" in third.flat
    last = invoke("suites", "remove", "my-suite", "my-epi")
    assert last.exit_code == 2 and "a suite needs at least one dataset" in last.flat


def test_a_builtin_suite_is_never_edited(ws, bids):
    result = invoke("suites", "add", "real-mini", "sct-testing", "--role", "ood")
    assert result.exit_code == 2
    assert "error: suite 'real-mini' is built-in" in result.flat and "is never changed" in result.flat
    added = invoke("datasets", "add", "my-t2", "--root", bids["t2"], "--suite", "real-mini", "--role", "ood")
    assert added.exit_code == 2 and "error: suite 'real-mini' is built-in" in added.flat
    assert not (ws.datasets_dir / "my-t2.yaml").exists()  # refused before anything was written


# ----------------------------------------------------------------------------------------- masks on the grid


def test_a_mask_off_its_images_grid_is_refused_where_it_is_supplied(ws, bids, monkeypatch):
    shift_affine(bids["t2"] / ANAT_A1_MASK, 2.0)
    added = invoke("datasets", "add", "my-t2", "--root", bids["t2"], "--suite", "s", "--role", "ood")
    # before: datasets add, index and splits make passed; only score refused, wrongly saying the data had changed
    assert added.exit_code == 2
    assert (f"mask off its image's grid my-t2: {ANAT_A1_MASK}: not on its image's grid (affine differs by up to 2 mm "
            "(tolerance 0.001 mm)): mask shape (40, 40, 6), affine [1 0 0 -19; 0 1 0 -19; 0 0 3 10] vs image shape "
            "(40, 40, 6), affine [1 0 0 -21; 0 1 0 -19; 0 0 3 10]") in added.flat
    assert "nothing was written" in added.flat and not (ws.datasets_dir / "my-t2.yaml").exists()
    # registered while the mask was right, then broken: index and splits make refuse it too
    shift_affine(bids["t2"] / ANAT_A1_MASK, -2.0)
    assert invoke("datasets", "add", "my-t2", "--root", bids["t2"], "--suite", "s", "--role", "ood").exit_code == 0
    shift_affine(bids["t2"] / ANAT_A1_MASK, 2.0)
    indexed = invoke("index", bids["t2"], "--dataset", "my-t2")
    assert indexed.exit_code == 1
    assert f"mask off its image's grid {ANAT_A1_MASK}: not on its image's grid (affine differs" in indexed.flat
    made = invoke("splits", "make", "--suite", "s")
    assert made.exit_code == 2
    assert (f"error: suite s: 1 mask(s) not on their image's grid, nothing was frozen (they could never be scored): "
            f"my-t2: {ANAT_A1_MASK}: not on its image's grid") in made.flat
    assert not (ws.splits_dir / "s.json").exists()
    # a split frozen before cordbench checked the grid: score says what is wrong, not that the data changed
    import benchmark.data.grids

    monkeypatch.setattr(benchmark.data.grids, "off_grid_masks", lambda index: [])
    assert invoke("splits", "make", "--suite", "s").exit_code == 0
    monkeypatch.undo()
    monkeypatch.setenv(workspace.ENV_WORKSPACE, str(ws.root))
    scored = invoke("score", "threshold-baseline", "--suite", "s", "--no-sandbox")
    assert scored.exit_code == 1
    assert ("error: suite s (benchmark version" in scored.flat and "): 1 mask(s) not on their image's grid, which "
            f"cannot be scored; nothing was scored. First: my-t2: {ANAT_A1_MASK}: not on its image's grid" in scored.flat)
    assert "`cordbench splits make --suite s --refreeze`" in scored.flat
    assert "differ from the frozen split" not in scored.flat and "--allow-changed-data" not in scored.flat


# ------------------------------------------------------------------------------------ versions move in words


def test_a_data_edit_is_said_and_applied_only_by_refreeze(ws, bids):
    invoke("datasets", "add", "my-t2", "--root", bids["t2"], "--suite", "s", "--role", "ood")
    invoke("splits", "make", "--suite", "s")
    path = ws.splits_dir / "s.json"
    frozen = path.read_bytes()
    image = nib.load(str(bids["t2"] / ANAT_A1_IMAGE))
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj) * 1.01, image.affine), str(bids["t2"] / ANAT_A1_IMAGE))
    again = invoke("splits", "make", "--suite", "s")
    # before: "wrote .../splits/s.json" while keeping the old checksums
    assert again.exit_code == 0 and "wrote" not in again.flat
    version = json.loads(frozen)["version"]
    assert f"unchanged: {path} (benchmark version {version})" in again.flat
    assert (f"note: the data (or the rules) now differ from the frozen split, which is kept as it is: my-t2: 1 file(s) "
            f"with new content: {ANAT_A1_IMAGE}. `cordbench splits make --suite s --refreeze` makes a new version "
            "with them.") in again.flat
    assert path.read_bytes() == frozen
    refrozen = invoke("splits", "make", "--suite", "s", "--refreeze")
    new_version = json.loads(path.read_text())["version"]
    assert new_version != version
    assert f"new benchmark version {version} -> {new_version}: my-t2: 1 file(s) with new content: {ANAT_A1_IMAGE}" \
        in refrozen.flat
    assert (ws.splits_dir / "superseded" / f"s@{version}.json").read_bytes() == frozen
    assert invoke("splits", "verify", "--suite", "s").exit_code == 0


# ------------------------------------------------------------------------------------------ names and hints


def test_mistyped_names_get_a_hint_that_works(ws, bids):
    invoke("datasets", "add", "my-t2", "--root", bids["t2"], "--suite", "my-suite", "--role", "ood")
    # before: "no split file for suite 'my-suit'; run `cordbench splits make --suite my-suit`", which then failed
    typo = invoke("score", "threshold-baseline", "--suite", "my-suit")
    assert typo.exit_code == 2 and "error: unknown suite 'my-suit'; did you mean 'my-suite'?" in typo.flat
    assert invoke("splits", "make", "--suite", "my-suit").flat.startswith(
        "error: unknown suite 'my-suit'; did you mean 'my-suite'?")
    invoke("splits", "make", "--suite", "my-suite")
    # before: "...threshhold-baseline/submission.yaml: no such submission (see `cordbench submissions list`)"
    name = invoke("score", "threshhold-baseline", "--suite", "my-suite")
    assert name.exit_code == 2 and "no such submission; did you mean 'threshold-baseline'?" in name.flat


def test_a_missing_participants_tsv_is_said_as_such(ws, bids):
    result = invoke("datasets", "add", "my-epi", "--root", bids["epi"])
    # before: "participants.tsv columns: none"
    assert ("participants.tsv: absent (site, vendor, pathology and mask provenance unknown; add one to stratify or "
            "filter by them)") in result.flat
    other = invoke("datasets", "add", "my-t2", "--root", bids["t2"])
    assert "participants.tsv columns: site" in other.flat


def test_an_episeg_like_mask_named_by_fewer_entities_is_found_for_desc_images(ws, tmp_path):
    """EPISeg names masks by some of the image's entities plus its own desc: with images that carry a desc too."""
    root = write_epi_dataset(tmp_path / "episeg-like")
    for mask in (root / "derivatives").rglob("*_label-SC_seg.nii.gz"):
        subject = mask.name.split("_")[0]
        target = root / "derivatives" / "label" / subject / "func" / f"{subject}_task-rest_desc-spinalcordmask.nii.gz"
        target.parent.mkdir(parents=True, exist_ok=True)
        mask.rename(target)
    shutil.rmtree(root / "derivatives" / "labels")
    result = invoke("datasets", "add", "episeg-like", "--root", root)
    assert result.exit_code == 0, result.output
    assert "3 image/mask pairs" in result.flat
    rule = yaml.safe_load((ws.datasets_dir / "episeg-like.yaml").read_text())["images"][0]
    assert rule["label"] == "derivatives/label/{dir}/sub-{sub}_task-{task}_desc-spinalcordmask.nii.gz"


# ---------------------------------------------------------------------------------- supplied predictions


def _predicted_folder(root: Path, dataset: Path, model: str = "threshold-baseline") -> Path:
    """What `cordbench predict` writes (masks = the reference masks here, sidecars naming the model)."""
    from benchmark.data.derivatives import mask_filename

    derivatives = root / "derivatives" / f"cordbench-{model}"
    (derivatives).mkdir(parents=True)
    (derivatives / "dataset_description.json").write_text(json.dumps({
        "Name": f"cordbench-{model}", "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "cordbench", "Description": f"spinal cord masks of the model {model}"}]}))
    for image in sorted(dataset.glob("sub-*/**/*.nii.gz")):
        relative = image.relative_to(dataset)
        mask = derivatives / relative.parent / mask_filename(image.name)
        mask.parent.mkdir(parents=True, exist_ok=True)
        reference = next((dataset / "derivatives").rglob(image.name.removesuffix(".nii.gz") + "_*.nii.gz"))
        shutil.copyfile(reference, mask)
        mask.with_name(mask.name.removesuffix(".nii.gz") + ".json").write_text(json.dumps(
            {"Model": {"Name": model, "Type": "command", "SHA256": "0" * 64}}))
    return derivatives


def test_predict_output_registers_as_a_predictions_submission_and_checks_where_supplied(ws, bids, tmp_path):
    invoke("datasets", "add", f"my-epi={bids['epi']}", f"my-t2={bids['t2']}", "--suite", "s", "--role", "ood")
    invoke("splits", "make", "--suite", "s")
    epi = _predicted_folder(tmp_path / "pred-epi", bids["epi"])
    t2 = _predicted_folder(tmp_path / "pred-t2", bids["t2"])
    added = invoke("submissions", "add-predictions", "masks", f"my-epi={epi}", f"my-t2={t2}")
    assert added.exit_code == 0, added.output
    assert "trained on nothing (the training data declared by threshold-baseline)" in added.flat
    manifest = yaml.safe_load((ws.submissions_dir / "masks" / "submission.yaml").read_text())
    assert manifest["model"]["folders"] == {"my-epi": "masks/my-epi", "my-t2": "masks/my-t2"}
    assert manifest["model"]["generated_by"] == "spinal cord masks of the model threshold-baseline"
    assert (ws.submissions_dir / "masks" / "masks" / "my-epi" / "sub-p01" / "func" /
            "sub-p01_task-rest_desc-mocomean_bold_label-SC_seg.nii.gz").is_file()
    checked = invoke("submissions", "check", "masks", "--suite", "s")
    assert checked.exit_code == 0 and "5 supplied mask(s) checked against the 5 test images of s" in checked.flat

    # a mistyped model.folders key: before, `submissions check` said OK and `score` wrote Dice 0.000 with exit 0
    typo = ws.submissions_dir / "typo"
    shutil.copytree(ws.submissions_dir / "masks", typo)
    manifest.update(name="typo", model={**manifest["model"], "folders": {"my-ep": str(epi), "my-t2": str(t2)}})
    (typo / "submission.yaml").write_text(yaml.safe_dump(manifest))
    check = invoke("submissions", "check", "typo")
    assert check.exit_code == 1
    assert "model.folders: 'my-ep' is not a registered dataset id; did you mean 'my-epi'?" in check.flat
    scored = invoke("score", "typo", "--suite", "s", "--no-sandbox")
    assert scored.exit_code == 2 and "model.folders: 'my-ep' is not a registered dataset id" in scored.flat
    assert not (typo / "results").exists()

    # supplied masks on the wrong grid: said at `submissions check`, with shapes and affines
    mask = typo / "masks" / "my-t2" / "sub-a1" / "ses-1" / "anat" / "sub-a1_ses-1_acq-axial_run-1_T2w_label-SC_seg.nii.gz"
    cropped = nib.load(str(mask))
    nib.save(nib.Nifti1Image(np.asarray(cropped.dataobj)[:, :, :5], cropped.affine), str(mask))
    manifest.update(model={**manifest["model"], "folders": {"my-epi": "masks/my-epi", "my-t2": "masks/my-t2"}})
    (typo / "submission.yaml").write_text(yaml.safe_dump(manifest))
    grid = invoke("submissions", "check", "typo")
    assert grid.exit_code == 1
    assert (f"my-t2: {mask}: not on its image's grid (shape differs): mask shape (40, 40, 5), affine [1 0 0 -21; "
            "0 1 0 -19; 0 0 3 10] vs image shape (40, 40, 6), affine [1 0 0 -21; 0 1 0 -19; 0 0 3 10]") in grid.flat
    missing = invoke("submissions", "add-predictions", "other", str(epi))
    assert missing.exit_code == 0  # one folder for every dataset: masks of my-t2's images are simply not there
    suite_check = invoke("submissions", "check", "other", "--suite", "s")
    assert suite_check.exit_code == 1
    assert "my-t2: missing-prediction: no mask for sub-a1_ses-1_acq-axial_run-1_T2w.nii.gz" in suite_check.flat


def test_add_predictions_needs_the_training_data_when_no_sidecar_names_the_model(ws, bids, tmp_path):
    folder = _predicted_folder(tmp_path / "pred", bids["t2"], model="not-registered-here")
    result = invoke("submissions", "add-predictions", "masks", folder)
    assert result.exit_code == 2
    assert ("the masks were made by 'not-registered-here', which is not registered here" in result.flat
            and "give --trained-on ID[,ID] (or --trained-on none)" in result.flat)
    declared = invoke("submissions", "add-predictions", "masks", folder, "--trained-on", "spine-generic")
    assert declared.exit_code == 0, declared.output
    assert yaml.safe_load((ws.submissions_dir / "masks" / "submission.yaml").read_text())["training"]["datasets"] \
        == ["spine-generic"]
    typo = invoke("submissions", "add-predictions", "masks2", folder, "--trained-on", "spine-generik")
    assert typo.exit_code == 2 and "did you mean 'spine-generic'?" in typo.flat


def test_same_grid_alone_is_not_one_person(tmp_path):
    """Two people scanned with one protocol and placement (same grid) but different images are not flagged."""
    from benchmark.data.bids_index import index_dataset
    from benchmark.data.drafting import draft_dataset
    from benchmark.data.lookalike import lookalike_people
    from own_data_fixtures import EPI_IMAGE, EPI_MASK, write_subject

    root = write_epi_dataset(tmp_path / "epi")
    write_subject(root, EPI_IMAGE, EPI_MASK, "p03", (21, 19), (-20, -20, 0), seed=4, datatype="func")  # p01's grid
    dataset, _ = draft_dataset("epi", root)
    found = lookalike_people(index_dataset(root, dataset), dataset.person_of)
    assert [item.subjects for item in found] == [("sub-p01", "sub-p01rescan")]


def test_a_suite_file_with_the_users_comments_is_kept_when_a_command_rewrites_it(ws, bids):
    invoke("datasets", "add", f"my-epi={bids['epi']}", f"my-t2={bids['t2']}", "--suite", "s", "--role", "ood")
    path = ws.root / "suites" / "s.yaml"
    edited = path.read_text().replace("datasets:\n", "datasets:  # my-t2 is the reference site\n")
    path.write_text(edited)
    result = invoke("suites", "remove", "s", "my-t2")
    assert result.exit_code == 0, result.output
    [kept] = (ws.work_dir / "replaced" / "suites").glob("s.*.yaml")
    assert kept.read_text() == edited and f"its comments are not kept: the previous file is {kept}" in result.flat
    again = invoke("suites", "add", "s", "my-epi", "--role", "ood")  # nothing to change: nothing rewritten
    assert "my-epi (ood) is in the suite already" in again.flat and len(list(kept.parent.iterdir())) == 1
