"""The workspace: resolution, the registry layered over the built-in one, writes refused without a workspace,
dataset drafting, rule trials, name clashes of trained models, nnU-Net id allocation, schemas and their docs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from benchmark import workspace
from benchmark.cli import app
from benchmark.data.registry import RegistryError, load_dataset, load_suite, registry_entries
from benchmark.workspace import WorkspaceError, init_workspace

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()

SUITE_WITHOUT_IN_DOMAIN = {
    "id": "only-ood", "title": "t", "description": "d",
    "datasets": [{"id": "sct-testing", "role": "ood"}],
}


def invoke(*args):
    return runner.invoke(app, [str(arg) for arg in args], catch_exceptions=False, terminal_width=200)


@pytest.fixture
def ws(tmp_path, monkeypatch):
    """An initialised workspace, active through $CORDBENCH_WORKSPACE (as run.sh does)."""
    monkeypatch.delenv(workspace.ENV_WORKSPACE, raising=False)
    created = init_workspace(tmp_path / "ws")
    monkeypatch.setenv(workspace.ENV_WORKSPACE, str(created.root))
    yield created
    workspace.use(None)


def write_yaml(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_init_makes_the_layout_and_keeps_existing_files(tmp_path):
    created = init_workspace(tmp_path / "new")
    for name in ("datasets", "suites", "splits", "submissions", "work"):
        assert (created.root / name).is_dir()
    config = created.config()
    assert (config.include, config.nnunet_first_id, config.data_root) == ([], 600, None)
    assert "# " in created.config_path.read_text()  # commented
    created.config_path.write_text("format: 1\nnnunet_first_id: 700\n")
    init_workspace(created.root)
    assert created.config().nnunet_first_id == 700


def test_resolution_order_flag_then_environment_then_current_directory(tmp_path, monkeypatch):
    first, second, third = (init_workspace(tmp_path / name) for name in ("a", "b", "c"))
    monkeypatch.delenv(workspace.ENV_WORKSPACE, raising=False)
    assert workspace.active(cwd=tmp_path) is None
    assert workspace.active(cwd=third.root).root == third.root
    assert workspace.active(environ={workspace.ENV_WORKSPACE: str(second.root)}, cwd=third.root).root == second.root
    with workspace.using(first.root):
        assert workspace.active(environ={workspace.ENV_WORKSPACE: str(second.root)}, cwd=third.root).root == first.root
    with pytest.raises(WorkspaceError, match=r"no cordbench.yaml there.*cordbench init"):
        workspace.active(environ={workspace.ENV_WORKSPACE: str(tmp_path)})


def test_commands_that_write_need_a_workspace(tmp_path, monkeypatch):
    monkeypatch.delenv(workspace.ENV_WORKSPACE, raising=False)
    monkeypatch.chdir(tmp_path)
    result = invoke("splits", "make", "--suite", "real-mini")
    assert result.exit_code == 2
    assert "no workspace" in result.output and "cordbench init" in result.output
    assert invoke("datasets", "list").exit_code == 0  # reading needs none


def test_bad_workspace_option_is_reported():
    result = invoke("--workspace", "/nonexistent/ws", "datasets", "list")
    assert result.exit_code == 2
    assert "/nonexistent/ws" in result.output and "cordbench init" in result.output


def test_workspace_dataset_is_layered_and_listed_with_its_origin(ws):
    data = yaml.safe_load((REPO / "benchmark/registry/datasets/sct-testing.yaml").read_text())
    write_yaml(ws.datasets_dir / "my-sct.yaml", {**data, "id": "my-sct"})
    assert load_dataset("my-sct").images == load_dataset("sct-testing").images
    origins = {entry.id: entry.origin for entry in registry_entries("datasets")}
    assert (origins["my-sct"], origins["sct-testing"]) == ("workspace", "built-in")
    result = invoke("datasets", "list")
    assert result.exit_code == 0
    row = next(line for line in result.output.splitlines() if "my-sct" in line)
    assert "workspace" in row
    shown = invoke("datasets", "show", "my-sct")
    assert f"from workspace: {ws.datasets_dir / 'my-sct.yaml'}" in shown.output


def test_an_id_in_both_places_is_an_error_naming_both_files(ws):
    data = yaml.safe_load((REPO / "benchmark/registry/datasets/gmchallenge.yaml").read_text())
    duplicate = write_yaml(ws.datasets_dir / "gmchallenge.yaml", data)
    with pytest.raises(RegistryError) as error:
        load_dataset("gmchallenge")
    assert str(duplicate) in str(error.value)
    assert str(REPO / "benchmark/registry/datasets/gmchallenge.yaml") in str(error.value)


def test_a_bad_workspace_file_never_hides_the_builtin_registry(ws):
    write_yaml(ws.suites_dir / "broken.yaml", {"id": "broken", "title": "t", "description": "d",
                                               "datasets": [{"id": "no-such-dataset", "role": "ood"}]})
    (ws.datasets_dir / "typo.yaml").write_text("id: typo\ntitle: x\nlicence: MIT\nsurce: {}\n")
    result = invoke("datasets", "list")
    assert result.exit_code == 1
    assert "gmchallenge" in result.output and "real-mini" in result.output  # built-ins still listed
    assert "broken.yaml: datasets.0.id: unknown dataset 'no-such-dataset'" in result.output
    assert "typo.yaml" in result.output and "surce" in result.output
    assert load_suite("real-mini").id == "real-mini"


def test_same_person_groups_participants_explicitly():
    data = yaml.safe_load((REPO / "benchmark/registry/datasets/sct-testing.yaml").read_text())
    from benchmark.data.registry import Dataset

    dataset = Dataset.model_validate({**data, "same_person": [["sub-b2", "sub-b1"]]})
    assert dataset.person_of("sub-b2") == dataset.person_of("sub-b1") == "sub-b1"
    assert dataset.person_of("sub-a") == "sub-a"
    with pytest.raises(ValueError, match="'sub-b1' is in groups 0 and 1"):
        Dataset.model_validate({**data, "same_person": [["sub-b1", "sub-b2"], ["sub-b1", "sub-c"]]})


def test_suites_get_disjoint_nnunet_ids(ws):
    from benchmark.training.convert import dataset_names

    first = dataset_names("suite-one", ["a", "b"])
    second = dataset_names("suite-two", ["c"])
    assert first["aggregated"].startswith("Dataset600_") and first["b"].startswith("Dataset602_")
    assert second["aggregated"].startswith("Dataset603_")
    assert dataset_names("suite-one", ["a", "b"]) == first  # read back, not re-allocated
    assert dataset_names("real-mini", ["x"])["aggregated"].startswith("Dataset520_")
    ws.config_path.write_text("nnunet_first_id: 519\n")
    shutil.copy(ws.nnunet_ids_path, ws.nnunet_ids_path.with_suffix(".bak"))
    ws.nnunet_ids_path.unlink()
    assert dataset_names("suite-three", ["a", "b"])["aggregated"].startswith("Dataset523_")  # 520-522: real-mini


def test_convert_refuses_a_suite_without_in_domain_dataset(ws):
    suite_file = write_yaml(ws.suites_dir / "only-ood.yaml", SUITE_WITHOUT_IN_DOMAIN)
    result = invoke("convert", "--suite", "only-ood")
    assert result.exit_code == 2
    assert f"{suite_file}: datasets: suite 'only-ood' has no in-domain dataset" in result.output


def test_trained_models_never_take_a_taken_name(ws, tmp_path):
    from benchmark.training.baselines import BaselineError, plan_baselines, refuse_name_clash
    from benchmark.data.submissions import SUBMISSIONS_DIR

    with pytest.raises(BaselineError, match="built-in reference submission"):
        refuse_name_clash("threshold-baseline", ws.submissions_dir / "threshold-baseline", replace=True)
    folder = ws.submissions_dir / "mine"
    (folder / "results").mkdir(parents=True)
    manifest = yaml.safe_load((SUBMISSIONS_DIR / "nnunet-synthetic-synth-ms-quick/submission.yaml").read_text())
    write_yaml(folder / "submission.yaml", {**manifest, "name": "mine"})
    (folder / "results" / "synthetic_x.json").write_text("{}")
    refuse_name_clash("mine", folder, replace=False, new_sha256=manifest["model"]["sha256"])  # same weights: resume
    with pytest.raises(BaselineError, match="exists already.*--replace"):
        refuse_name_clash("mine", folder, replace=False, new_sha256="0" * 64)
    refuse_name_clash("mine", folder, replace=True, new_sha256="0" * 64)
    assert not folder.exists()
    aside = list((ws.submissions_dir / ".replaced").iterdir())
    assert len(aside) == 1 and aside[0].name.startswith("mine.")
    assert (aside[0] / "results" / "synthetic_x.json").exists()
    from benchmark.data.submissions import list_submissions

    assert list_submissions()[1] == {}  # the moved-aside folder is in no listing
    from benchmark.evaluation.results import find_results_files

    assert find_results_files(ws.submissions_dir) == []
    raw = tmp_path / "raw"
    for name in ("Dataset520_real-mini-aggregated", "Dataset521_real-mini-gmchallenge",
                 "Dataset522_real-mini-spinegeneric-unf01"):
        (raw / name).mkdir(parents=True)
        (raw / name / "dataset.json").write_text("{}")
    names = [plan.submission_name for plan in plan_baselines("real-mini", raw, "quick", name="lab")]
    assert names == ["lab-gmchallenge", "lab-spinegeneric-unf01", "lab-aggregated"]
    assert [plan.submission_name for plan in
            plan_baselines("real-mini", raw, "quick", only="aggregated", name="lab")] == ["lab"]


def test_scoring_a_builtin_submission_writes_into_the_workspace(ws):
    from benchmark.data.submissions import load_submission, output_dir

    builtin = load_submission("threshold-baseline")
    assert output_dir(builtin) == ws.root / "submissions" / "threshold-baseline"
    with workspace.using(None):
        ws.config_path.rename(ws.root / "moved.yaml")
        import os

        os.environ.pop(workspace.ENV_WORKSPACE)
        with pytest.raises(WorkspaceError, match="scoring threshold-baseline writes files and there is no workspace"):
            output_dir(builtin)


def test_leaderboard_rows_say_where_each_model_comes_from(ws):
    import pandas as pd

    from leaderboard.app import default_results_dirs, with_origin
    from benchmark.data.submissions import SUBMISSIONS_DIR

    table = pd.DataFrame({"submission": ["threshold-baseline", "my-model"], "mean rank": [1.0, 2.0]})
    # the built-in model scored here: its results are the workspace's
    shown = with_origin(table, {"threshold-baseline": str(ws.results_dir("threshold-baseline") / "s_1.json"),
                                "my-model": str(ws.results_dir("my-model") / "s_1.json")})
    assert list(shown.columns) == ["submission", "model from", "results from", "mean rank"]
    assert list(shown["model from"]) == ["built-in", "workspace"]
    assert list(shown["results from"]) == ["workspace", "workspace"]
    shipped = next((SUBMISSIONS_DIR / "threshold-baseline" / "results").glob("*.json"))
    assert list(with_origin(table, {"threshold-baseline": str(shipped)})["results from"]) == ["built-in", ""]
    assert default_results_dirs() == [ws.submissions_dir, SUBMISSIONS_DIR]


def test_index_tries_rules_and_says_what_it_saw(shared_bids):
    result = invoke("index", shared_bids / "sct-testing", "--image-glob", "sub-*/func/*_bold.nii.gz",
                    "--label", "derivatives/labels/{dir}/{stem}_seg.nii.gz")
    assert result.exit_code == 1
    assert "no image matched; patterns tried:" in result.output
    assert "image sub-*/func/*_bold.nii.gz  ->  mask derivatives/labels/{dir}/{stem}_seg.nii.gz" in result.output
    assert "sub-errsm30/anat/sub-errsm30_T2w.nii.gz" in result.output
    wrong_mask = invoke("index", shared_bids / "sct-testing", "--image-glob", "sub-*/anat/*_T2w.nii.gz",
                        "--label", "derivatives/labels/{dir}/{stem}_seg.nii.gz")
    assert wrong_mask.exit_code == 1
    assert "derivatives/labels/sub-errsm30/anat/sub-errsm30_T2w_seg.nii.gz" in wrong_mask.output
    good = invoke("index", shared_bids / "sct-testing", "--image-glob", "sub-*/anat/*_T2w.nii.gz",
                  "--label", "derivatives/labels/{dir}/{stem}_seg-manual.nii.gz")
    assert good.exit_code == 0, good.output


def test_datasets_add_drafts_validates_and_writes(ws, shared_bids):
    result = invoke("datasets", "add", "my-epi", "--root", shared_bids / "episeg-layout", "--suite", "my-epi-suite")
    assert result.exit_code == 0, result.output
    written = yaml.safe_load((ws.datasets_dir / "my-epi.yaml").read_text())
    assert written["datatypes"] == ["func"]
    assert written["images"] == [{"glob": "sub-*/**/func/*_bold.nii.gz", "contrast": "bold",
                                  "label": "derivatives/label/{dir}/sub-{sub}_task-{task}_desc-spinalcordmask.nii.gz"}]
    assert written["participants"] == {"site": "institution_id", "vendor": "manufacturer", "pathology": "pathology",
                                       "gt_provenance": "segmentation_type"}
    assert "395 image/mask pairs" in result.output
    assert load_dataset("my-epi").local_path == str((shared_bids / "episeg-layout").resolve())
    assert load_suite("my-epi-suite").ids("in-domain") == ["my-epi"]
    from benchmark.data.splits import dataset_folder

    assert dataset_folder("my-epi", None) == (shared_bids / "episeg-layout").resolve()  # no --data-root needed
    again = invoke("datasets", "add", "gmchallenge", "--root", shared_bids / "gmchallenge")
    assert again.exit_code == 2 and "exists already" in again.output


def test_schema_command_and_docs_are_in_sync():
    from benchmark.data.schemas import REFERENCE_BEGIN, REFERENCE_END, reference_markdown

    result = invoke("schema", "dataset")
    schema = json.loads(result.output)
    assert {"id", "images", "same_person"} <= set(schema["properties"])
    assert schema["properties"]["same_person"]["description"].startswith("Explicit groups")
    assert invoke("schema", "nonsense").exit_code == 2
    docs = (REPO / "docs" / "registry.md").read_text()
    generated = docs[docs.index(REFERENCE_BEGIN):docs.index(REFERENCE_END) + len(REFERENCE_END)]
    assert generated == reference_markdown(), "docs/registry.md is stale: run python -m benchmark.data.schemas"
    assert "| `images[].label` |" in generated and "| `model.(CommandModelSpec) command` |" in generated


def test_splits_of_builtin_suites_are_completed_in_the_workspace_never_changed(ws, shared_bids):
    from benchmark.data.splits import SPLITS_DIR, SplitError, load_split, split_path

    builtin = SPLITS_DIR / "real-mini.json"
    before = builtin.read_bytes()
    result = invoke("splits", "make", "--suite", "real-mini", "--data-root", shared_bids)
    assert result.exit_code == 0, result.output
    written = ws.splits_dir / "real-mini.json"
    assert written.read_bytes() == before and builtin.read_bytes() == before
    assert split_path("real-mini") == written
    data = json.loads(written.read_text())
    data["datasets"]["gmchallenge"]["test"].append(data["datasets"]["gmchallenge"]["train"].pop())
    from benchmark.data.splits import SplitFile, write_split

    write_split(SplitFile.model_validate(data), written)
    with pytest.raises(SplitError) as error:
        load_split("real-mini")
    assert str(written) in str(error.value) and str(builtin) in str(error.value)
    assert "datasets.gmchallenge" in str(error.value)
