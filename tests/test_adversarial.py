"""Hostile submissions: each tries one way to forge a score or damage the host, and must fail closed.

Every attack is a small script run as a `command` submission (or a hostile nnU-Net folder / archive). The
scorer's working directory is the data root and a secret is in its environment, as on a careless machine.
Each attack must end as a NAMED failure (a case failure such as `crash: ... blocked: ...` or `timeout: ...`,
or a named CordbenchError) and leave every file of the workspace and the data root byte-identical.
Two attacks are also run with the sandbox off, to show that they do work there (so these tests can fail).

The second half (after "round two") attacks what a submission ships and what a user can do to the file system:
supplied masks linked to the ground truth, output folders shipped as links, shipped caches, work units reused
across plans or folders, zip bombs and damaged archives, forged results files, writes into the package, file
system faults, console markup, interrupts and fork bombs. Each ends in a named refusal with the workspace, the data
root and the package byte-identical (tests/hostile_fixtures.py); docs/scoring.md lists each before and after.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import textwrap
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

from benchmark.evaluation.inference import Predictor
from benchmark.models.sandbox import sandbox_available
from benchmark.data.submissions import load_submission

from conftest import orientation_affine, save_nifti

needs_sandbox = pytest.mark.skipif(not sandbox_available(),
                                   reason="needs bubblewrap (`apt-get install bubblewrap`) and user namespaces")

SECRET = "hunter2-cordbench-test-secret"
ORPHAN_MARKER = "47.123"  # the argument of the orphan's `sleep`, to find it among the host's processes

PRELUDE = '''
import os, shutil, sys
INPUT, OUTPUT = sys.argv[1], sys.argv[2]


def forge(source):
    """The attack worked: hand in what it got (a mask on the input's grid) as the prediction."""
    shutil.copyfile(source, OUTPUT)
    sys.exit(0)
'''

ATTACKS = {
    "proc-ground-truth": '''
def ancestors_first():
    chain, pid = [], os.getppid()
    while pid > 1:
        chain.append(str(pid))
        pid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
    return chain + sorted(name for name in os.listdir("/proc") if name.isdigit() and name not in chain)

def reachable_dirs():
    for pid in ancestors_first():
        try:
            yield os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            pass
        try:
            args = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="ignore").split("\\0")
        except OSError:
            args = []
        yield from (arg for arg in args if arg.startswith("/") and os.path.isdir(arg))

for top in reachable_dirs():
    if top in ("/", "/usr", os.getcwd()):
        continue
    for root, dirs, files in os.walk(top):
        if root.count("/") - top.count("/") > 6:
            dirs[:] = []
        for name in files:
            if name.endswith("_seg-manual.nii.gz"):
                forge(os.path.join(root, name))
raise PermissionError("blocked: no ground truth reachable through /proc")
''',
    "guessed-path": '''
for guess in (GROUND_TRUTH, os.path.join(DATA_ROOT, "derivatives")):
    if os.path.isfile(guess):
        forge(guess)
    if os.path.isdir(guess):
        for root, dirs, files in os.walk(guess):
            for name in files:
                forge(os.path.join(root, name))
raise FileNotFoundError("blocked: the data root cannot be reached")
''',
    "env-secret": '''
visible = SECRET in os.environ.values()
for pid in (name for name in os.listdir("/proc") if name.isdigit()):
    try:
        visible = visible or SECRET.encode() in open(f"/proc/{pid}/environ", "rb").read()
    except OSError:
        pass
if visible:
    forge(INPUT)
raise PermissionError("blocked: the secret is not visible")
''',
    "write-outside-output": '''
written = []
for target in TARGETS:
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as handle:
            handle.write(b"pwned")
        written.append(target)
    except OSError:
        pass
if written:  # inside the sandbox this can only be its private /tmp (the tests live under /tmp)
    sys.exit(0)
raise PermissionError(f"blocked: none of {len(TARGETS)} files outside the output could be written")
''',
    "network": '''
import socket
for address in (("127.0.0.1", PORT), ("1.1.1.1", 53)):
    try:
        socket.create_connection(address, timeout=2).close()
        forge(INPUT)
    except OSError:
        pass
raise ConnectionError("blocked: no network")
''',
    "planted-bytecode": '''
if os.listdir("__pycache__"):  # the submission's own bytecode could differ from its hashed sources
    forge(INPUT)
raise PermissionError("blocked: the submission's __pycache__ is hidden")
''',
    "orphan-outlives-timeout": '''
import time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv("/bin/sleep", ["sleep", ORPHAN_MARKER])
    os._exit(0)
time.sleep(60)
''',
}


@dataclass
class World:
    workspace: Path
    data_root: Path
    image: Path
    ground_truth: Path
    submissions: Path
    cache: Path  # the scorer's prediction cache for the hostile submission (outside the hashed tree)
    server_port: int


def tree_digest(root: Path) -> dict[str, str]:
    """Every file, link and folder under root with its content hash (a change anywhere changes the dict)."""
    digest = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink():
            digest[relative] = f"link:{path.readlink()}"
        elif path.is_file():
            digest[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            digest[relative] = "dir"
    return digest


@pytest.fixture
def world(tmp_path, monkeypatch):
    workspace = tmp_path / "workspace"
    data_root = workspace / "data" / "synth-ms"
    mask = np.zeros((10, 9, 6), np.uint8)
    mask[3:6, 3:6, :] = 1
    affine = orientation_affine("RAS", spacing=(0.8, 0.8, 2.0))
    image = save_nifti(data_root / "sub-01/anat/sub-01_T2w.nii.gz", mask.astype(np.float32) * 100, affine)
    ground_truth = save_nifti(data_root / "derivatives/labels/sub-01/anat/sub-01_T2w_seg-manual.nii.gz", mask, affine)
    submissions = workspace / "submissions"
    victim = submissions / "victim"
    (victim / "results").mkdir(parents=True)
    (victim / "results" / "synthetic_v1.json").write_text('{"dice": 0.5}')
    (victim / "predictions" / "0123456789abcdef").mkdir(parents=True)
    (victim / "predictions" / "0123456789abcdef" / "sha.json").write_text('{"failure": null}')
    (workspace / "work/cache/models/abc/model").mkdir(parents=True)
    (workspace / "work/cache/models/abc/model/plans.json").write_text('{"configurations": {}}')
    monkeypatch.chdir(data_root)  # the scorer's cwd leads to the data: /proc/<scorer>/cwd would reveal it
    monkeypatch.setenv("CORDBENCH_TEST_SECRET", SECRET)
    monkeypatch.setenv("CORDBENCH_WORKSPACE", str(workspace))
    (workspace / "cordbench.yaml").write_text("format: 1\n")  # what `cordbench init` writes first
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield World(workspace, data_root, image, ground_truth, submissions, tmp_path / "scorer-cache",
                server.getsockname()[1])
    server.close()


def hostile(world: World, attack: str, timeout_s: float = 60) -> Path:
    folder = world.submissions / "hostile"
    folder.mkdir(exist_ok=True)
    targets = [str(world.ground_truth), str(world.image), str(world.submissions / "victim/results/synthetic_v1.json"),
               str(world.submissions / "victim/predictions/0123456789abcdef/sha.json"),
               str(world.workspace / "work/cache/models/abc/model/hubconf.py"),  # code planted in the model cache
               str(folder / "run.py"), str(world.workspace / "new-file")]
    constants = (f"GROUND_TRUTH = {str(world.ground_truth)!r}\nDATA_ROOT = {str(world.data_root)!r}\n"
                 f"SECRET = {SECRET!r}\nTARGETS = {targets!r}\nPORT = {world.server_port}\n"
                 f"ORPHAN_MARKER = {ORPHAN_MARKER!r}\n")
    (folder / "run.py").write_text(PRELUDE + constants + textwrap.dedent(ATTACKS[attack]))
    (folder / "__pycache__").mkdir(exist_ok=True)
    (folder / "__pycache__" / "run.cpython-311.pyc").write_bytes(b"planted, not hashed")
    (folder / "submission.yaml").write_text(yaml.safe_dump({
        "name": "hostile", "description": attack, "authors": ["mallory"], "licence": "MIT",
        "model": {"type": "command", "command": "{python} run.py {input} {output}", "timeout_s": timeout_s}}))
    return folder


SCORER = """
import json, sys
from dataclasses import asdict
from pathlib import Path
from benchmark.evaluation.inference import Predictor
from benchmark.data.submissions import load_submission
submissions, cache, image, sandbox = sys.argv[1:]
record = Predictor(load_submission("hostile", Path(submissions)), Path(cache), sandbox=sandbox == "yes").predict(
    Path(image), "image-sha")
print(json.dumps(asdict(record)))
"""


def predict_in_a_fresh_scorer(world: World, sandbox: bool):
    """The scorer as its own process, started with the secret in its environment (as `cordbench score` would be):
    /proc/<pid>/environ shows a process's initial environment, which monkeypatch.setenv cannot reach."""
    import os
    import subprocess
    import sys

    from benchmark.evaluation.inference import PredictionRecord

    env = {**os.environ, "CORDBENCH_TEST_SECRET": SECRET, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    completed = subprocess.run([sys.executable, "-c", SCORER, str(world.submissions), str(world.cache),
                                str(world.image), "yes" if sandbox else "no"],
                               capture_output=True, text=True, env=env, cwd=world.data_root, check=True)
    return PredictionRecord(**json.loads(completed.stdout.strip().splitlines()[-1]))


def attack_once(world: World, attack: str, *, sandbox: bool = True, timeout_s: float = 60):
    hostile(world, attack, timeout_s)
    before = tree_digest(world.workspace)
    if attack == "env-secret":
        record = predict_in_a_fresh_scorer(world, sandbox)
    else:
        record = Predictor(load_submission("hostile", world.submissions), world.cache,
                           sandbox=sandbox).predict(world.image, "image-sha")
    return record, before, tree_digest(world.workspace)


@needs_sandbox
@pytest.mark.parametrize("attack", ["proc-ground-truth", "guessed-path", "env-secret", "write-outside-output",
                                    "network", "planted-bytecode"])
def test_hostile_command_fails_closed_with_a_named_reason_and_changes_nothing(world, attack):
    record, before, after = attack_once(world, attack)
    assert record.prediction is None
    if attack == "write-outside-output" and not record.failure.startswith("crash"):
        # the writes that "worked" went to the sandbox's private /tmp (tmp_path is under /tmp): gone with it
        assert record.failure == "missing-output: the command wrote no prediction"
    else:
        assert record.failure.startswith("crash: exit code 1:") and "blocked:" in record.failure, record.failure
    assert after == before


@needs_sandbox
def test_a_child_that_outlives_the_timeout_is_killed_with_its_sandbox(world):
    import psutil

    record, before, after = attack_once(world, "orphan-outlives-timeout", timeout_s=3)
    assert record.failure == "timeout: no result within 3 s"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        orphans = [process for process in psutil.process_iter(["cmdline"])
                   if process.info["cmdline"] == ["sleep", ORPHAN_MARKER]]
        if not orphans:
            break
        time.sleep(0.1)
    assert orphans == []
    assert after == before


@needs_sandbox
@pytest.mark.parametrize("attack", ["proc-ground-truth", "env-secret"])
def test_without_the_sandbox_the_same_attacks_succeed(world, attack):
    """The control: these attacks are real, so the sandboxed tests above can fail."""
    record, before, after = attack_once(world, attack, sandbox=False)
    assert record.failure is None
    if attack == "proc-ground-truth":
        import nibabel as nib

        stolen = np.asarray(nib.load(record.prediction).dataobj)
        assert np.array_equal(stolen, np.asarray(nib.load(world.ground_truth).dataobj))


@needs_sandbox
def test_a_memory_hog_is_stopped_by_its_limit(world):
    folder = world.submissions / "hog"
    folder.mkdir()
    (folder / "run.py").write_text("hoard = bytearray(1024 * 2**20)\n")  # 1 GiB against a 256 MiB limit
    (folder / "submission.yaml").write_text(yaml.safe_dump({
        "name": "hog", "description": "allocates 1 GiB", "authors": ["a"], "licence": "MIT",
        "model": {"type": "command", "command": "{python} run.py {input} {output}", "memory_mb": 256}}))
    before = tree_digest(world.workspace)
    record = Predictor(load_submission("hog", world.submissions), world.cache).predict(world.image, "image-sha")
    assert record.failure.startswith("crash: exit code 1:") and "MemoryError" in record.failure, record.failure
    assert tree_digest(world.workspace) == before


@needs_sandbox
def test_a_rewritten_prediction_cache_is_not_reused(world):
    folder = world.submissions / "copier"
    folder.mkdir()
    (folder / "run.py").write_text("import shutil, sys\nshutil.copyfile(sys.argv[1], sys.argv[2])\n")
    (folder / "submission.yaml").write_text(yaml.safe_dump({
        "name": "copier", "description": "copies its input", "authors": ["a"], "licence": "MIT",
        "model": {"type": "command", "command": "{python} run.py {input} {output}"}}))
    predictor = Predictor(load_submission("copier", world.submissions), world.cache)
    first = predictor.predict(world.image, "image-sha")
    Path(first.prediction).write_bytes(Path(world.ground_truth).read_bytes())  # someone forges the cached mask
    again = Predictor(load_submission("copier", world.submissions), world.cache).predict(world.image, "image-sha")
    assert again.prediction_sha256 == first.prediction_sha256
    assert Path(again.prediction).read_bytes() != Path(world.ground_truth).read_bytes()


def test_a_change_anywhere_in_the_submission_folder_changes_its_hash(world):
    from benchmark.data.submissions import submission_hash

    folder = hostile(world, "network")
    first = submission_hash(load_submission("hostile", world.submissions))
    (folder / "model").mkdir()
    (folder / "model" / "weights.bin").write_bytes(b"\x00")
    assert submission_hash(load_submission("hostile", world.submissions)) != first


def test_plans_naming_a_non_network_class_by_attribute_lookup_are_refused_before_any_import(world):
    from benchmark.models.nnunet.predict import load_model
    from benchmark.training.nnunet.trainer import UnsafeCheckpointError

    folder = world.workspace / "nnunet-model"
    folder.mkdir()
    marker = world.workspace.parent / "hubconf-ran"
    (folder / "hubconf.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    plans = {"dataset_name": "x", "plans_name": "p", "configurations": {"2d": {
        "data_identifier": "x", "architecture": {
            "network_class_name": "torch.nn.modules.module.torch.hub.load",
            "arch_kwargs": {"conv_op": "torch.nn.modules.conv.Conv2d"}, "_kw_requires_import": ["conv_op"]}}}}
    (folder / "plans.json").write_text(json.dumps(plans))
    before = tree_digest(world.workspace)
    with pytest.raises(UnsafeCheckpointError, match=r"torch\.nn\.modules\.module\.torch\.hub\.load.*--trust-checkpoint"):
        load_model(folder)
    assert not marker.exists()
    assert tree_digest(world.workspace) == before


def _exported_archive(world: World) -> tuple[Path, str]:
    import torch

    from benchmark.io import sha256_file
    from benchmark.models.packaging import export_submission

    folder = world.submissions / "tiny-nnunet"
    (folder / "model" / "fold_all").mkdir(parents=True)
    for member in ("plans.json", "dataset.json"):
        (folder / "model" / member).write_text('{"x": 1}')
    checkpoint = folder / "model" / "fold_all" / "checkpoint_final.pth"
    torch.save({"network_weights": {"w": torch.ones(3)}}, checkpoint)
    (folder / "submission.yaml").write_text(yaml.safe_dump({
        "name": "tiny-nnunet", "description": "d", "authors": ["a"], "licence": "MIT",
        "model": {"type": "nnunet", "folder": "model", "sha256": sha256_file(checkpoint), "configuration": "2d"}}))
    return export_submission("tiny-nnunet", world.workspace / "tiny.zip", world.submissions), sha256_file(checkpoint)


def test_code_planted_in_the_extraction_cache_is_refused_on_the_next_load(world):
    from benchmark.models.packaging import ArchiveError, extract_verified, extraction_cache_root

    archive, checkpoint_sha256 = _exported_archive(world)
    model_dir = extract_verified(archive, expected_checkpoint_sha256=checkpoint_sha256)
    assert extraction_cache_root() in model_dir.parents  # in the workspace, not the home folder
    (model_dir / "hubconf.py").write_text("import os\nos.system('echo pwned')\n")
    with pytest.raises(ArchiveError, match="hubconf.py: not in the archive .*planted"):
        extract_verified(archive, expected_checkpoint_sha256=checkpoint_sha256)
    (model_dir / "hubconf.py").unlink()
    (model_dir / "plans.json").write_text('{"x": 2}')
    with pytest.raises(ArchiveError, match="plans.json: changed since it was unpacked"):
        extract_verified(archive, expected_checkpoint_sha256=checkpoint_sha256)


def test_an_archive_with_recomputed_checksums_is_not_verified(world):
    from benchmark.io import sha256_bytes
    from benchmark.models.packaging import ArchiveError, import_archive, import_verification, verify_archive

    archive, _ = _exported_archive(world)
    genuine_sha256 = verify_archive(archive).archive_sha256
    forged = world.workspace.parent / "forged.zip"
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(forged, "w") as target:
        checksums = json.loads(source.read("checksums.json"))
        checksums["model/plans.json"] = sha256_bytes(b'{"x": 666}')
        for item in source.infolist():
            data = {"model/plans.json": b'{"x": 666}', "checksums.json": json.dumps(checksums).encode()}.get(
                item.filename, source.read(item.filename))
            target.writestr(item, data)
    unverified = verify_archive(forged)  # consistent inside: only corruption would be caught
    assert unverified.verified_by == "embedded-checksums-only" and not unverified.verified
    assert "NOT verified" in unverified.describe()
    with pytest.raises(ArchiveError, match="differs from the expected"):
        import_archive(forged, world.workspace.parent / "lab-b", expected_sha256=genuine_sha256)
    assert not (world.workspace.parent / "lab-b" / "tiny-nnunet").exists()
    imported = import_archive(archive, world.workspace.parent / "lab-b", expected_sha256=genuine_sha256)
    assert import_verification(imported.folder).verified_by == "user-sha256"


@pytest.mark.parametrize("member, attributes, match", [
    ("link", (0o120777 << 16), "symbolic link"),
    ("../escape.txt", 0, "outside the target folder"),
    ("/etc/evil", 0, "outside the target folder"),
])
def test_unsafe_members_are_refused(tmp_path, member, attributes, match):
    from benchmark.models.packaging import ArchiveError, verify_archive

    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as target:
        info = zipfile.ZipInfo(member)
        info.external_attr = attributes
        target.writestr(info, b"/etc/passwd")
        target.writestr("checksums.json", "{}")
    with pytest.raises(ArchiveError, match=match):
        verify_archive(archive)


def test_a_zip_bomb_is_refused_from_its_headers(tmp_path):
    from benchmark.models.packaging import ArchiveError, verify_archive

    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as target:
        target.writestr("model/zeros.bin", bytes(64 << 20))  # 64 MiB of zeros: ~64 KiB compressed
        target.writestr("checksums.json", "{}")
    with pytest.raises(ArchiveError, match="possible zip bomb"):
        verify_archive(archive)


def test_the_import_command_says_what_it_verified(world, monkeypatch):
    from typer.testing import CliRunner

    from benchmark.cli import app
    from benchmark.io import sha256_file
    from benchmark.workspace import ENV_WORKSPACE, init_workspace

    archive, _ = _exported_archive(world)
    monkeypatch.setenv(ENV_WORKSPACE, str(init_workspace(world.workspace.parent / "lab-b").root))  # another lab
    wrong = CliRunner().invoke(app, ["import", str(archive), "--sha256", "0" * 64])
    assert wrong.exit_code == 1 and "differs from the expected" in " ".join(wrong.output.split())
    unpinned = CliRunner().invoke(app, ["import", str(archive)])
    assert unpinned.exit_code == 0 and "NOT verified" in unpinned.output
    pinned = CliRunner().invoke(app, ["import", str(archive), "--sha256", sha256_file(archive), "--overwrite"])
    assert pinned.exit_code == 0 and "verified: archive sha256" in " ".join(pinned.output.split())


@needs_sandbox
def test_a_python_model_runs_in_the_same_sandbox(world):
    folder = world.submissions / "py-thief"
    folder.mkdir()
    (folder / "thief.py").write_text(textwrap.dedent(f'''
        import os
        import numpy as np

        def predict(image, spacing):
            assert "CORDBENCH_TEST_SECRET" not in os.environ, "secret visible"
            return np.asarray(__import__("nibabel").load({str(world.ground_truth)!r}).dataobj, dtype=np.float32)
    '''))
    (folder / "submission.yaml").write_text(yaml.safe_dump({
        "name": "py-thief", "description": "reads the ground truth", "authors": ["m"], "licence": "MIT",
        "model": {"type": "python", "entrypoint": "thief:predict"}}))
    before = tree_digest(world.workspace)
    record = Predictor(load_submission("py-thief", world.submissions), world.cache).predict(world.image, "image-sha")
    assert record.failure.startswith("crash: FileNotFoundError") and "seg-manual" in record.failure, record.failure
    assert tree_digest(world.workspace) == before


# ===================================================================================================== round two
# Each test below reproduces one finding of issue 26 (its "before" is in docs/scoring.md's catalogue) and checks the
# named refusal; `mini.assert_unchanged` checks the workspace (its user files), the data root and the package.
from hostile_fixtures import (CODE_ROOT, Mini, bwrap_wrap, real_data_root, single_line_error,  # noqa: E402
                              zero_masks)


@pytest.fixture(scope="module")
def supplied_zero_masks(tmp_path_factory) -> Path:
    root = real_data_root()
    if root is None:
        pytest.skip("real data not available: expected ../shared/data/bids with gmchallenge, sct-testing and "
                    "spinegeneric-unf01")
    return zero_masks(root, tmp_path_factory.mktemp("zero-masks"))


@pytest.fixture
def mini(tmp_path, supplied_zero_masks, monkeypatch) -> Mini:
    from benchmark.workspace import init_workspace

    workspace = init_workspace(tmp_path / "ws").root
    monkeypatch.setenv("CORDBENCH_WORKSPACE", str(workspace))
    return Mini(workspace, real_data_root(), supplied_zero_masks)


def _reference_masks(data_root: Path) -> dict[str, Path]:
    """image name -> its reference mask (real-mini's test datasets)."""
    found = {}
    for dataset in ("gmchallenge", "sct-testing"):
        for mask in (data_root / dataset / "derivatives").rglob("*_seg-manual.nii.gz"):
            found[mask.name.replace("_seg-manual", "")] = mask
    return found


def test_supplied_masks_linked_to_the_ground_truth_are_refused(mini):
    """Before: every case scored Dice 1.000 (the masks were symbolic links to the reference masks)."""
    folder = mini.predictions_submission("thief", copy_masks=False)
    (folder / "masks").mkdir()
    for image_name, reference in _reference_masks(mini.data_root).items():
        (folder / "masks" / image_name.replace(".nii.gz", "_label-SC_seg.nii.gz")).symlink_to(reference)
    before = mini.protected()
    completed = mini.score("thief")
    output = " ".join((completed.stdout + completed.stderr).split())
    assert completed.returncode == 1 and "Traceback" not in output
    assert "this supplied mask is a link to" in output and "links out of the folder are refused" in output
    assert not mini.results_file("thief").exists()
    mini.assert_unchanged(before)


def test_a_supplied_mask_hard_linked_to_the_ground_truth_or_a_folder_in_the_data_is_refused(mini, tmp_path):
    """A hard link is no symbolic link, and a folder inside the data root holds nothing but files: both are still
    the ground truth. Before: Dice 1.000 (hard link)."""
    from benchmark.data.submissions import load_submission
    from benchmark.evaluation.scoring import test_cases
    from benchmark.evaluation.supplied import SuppliedPredictor
    from benchmark.data.splits import load_split
    from benchmark.safepaths import UnsafePathError

    data_root = tmp_path / "data"  # a copy: hard links must not touch the shared data's link counts
    for dataset in ("gmchallenge", "sct-testing", "spinegeneric-unf01"):
        shutil.copytree(mini.data_root / dataset, data_root / dataset)
    cases = test_cases("real-mini", load_split("real-mini"), data_root)
    folder = mini.predictions_submission("hard", copy_masks=True)
    reference = cases[0].label_path
    target = folder / "masks" / cases[0].image_path.name.replace(".nii.gz", "_label-SC_seg.nii.gz")
    target.unlink()
    os.link(reference, target)
    with pytest.raises(UnsafePathError, match="is the reference mask .* itself"):
        SuppliedPredictor(load_submission("hard"), tmp_path / "cache", cases)
    inside = mini.predictions_submission("inside", masks=str(data_root / "gmchallenge" / "derivatives"),
                                         copy_masks=False)
    with pytest.raises(UnsafePathError, match="overlaps the data being scored"):
        SuppliedPredictor(load_submission(inside.name), tmp_path / "cache", cases)


@pytest.mark.parametrize("shipped", ["results-link", "predictions-link", "results-file"])
def test_output_folders_shipped_as_links_or_files_are_refused(mini, shipped):
    """Before: `results/` and `predictions/` shipped as links into another submission's folder made `score` rewrite
    that submission's results file under the attacker's name; a file named `results` gave a traceback."""
    mini.predictions_submission("victim")
    assert mini.score("victim").returncode == 0
    evil = mini.predictions_submission("evil")
    folder_name, kind = shipped.split("-")
    if kind == "link":
        (evil / folder_name).symlink_to(Path("..") / "victim" / folder_name)
    else:
        (evil / folder_name).write_text("not a folder")
    before = mini.protected()
    output = single_line_error(mini.score("evil"))
    expected = "is a symbolic link" if kind == "link" else "exists and is not a folder"
    assert f"{evil / folder_name}: {expected}" in output, output
    mini.assert_unchanged(before)


@needs_sandbox
def test_a_prediction_cache_shipped_with_the_submission_is_never_reused(world):
    """The cache is in the submission's own folder: a record naming the ground truth (with its sha256), or a copy of
    it where cordbench keeps its masks, looks exactly like a prediction cordbench made. Before: Dice 1.000."""
    from benchmark.data.submissions import submission_hash
    from benchmark.io import sha256_file

    folder = world.submissions / "forger"
    folder.mkdir()
    (folder / "submission.yaml").write_text(yaml.safe_dump({
        "name": "forger", "description": "ships its cache", "authors": ["m"], "licence": "MIT",
        "model": {"type": "command", "command": "{python} -c 'import sys' {input} {output}"}}))
    cache = folder / "predictions"
    entry = cache / submission_hash(load_submission("forger", world.submissions))[:16]
    entry.mkdir(parents=True)
    shutil.copyfile(world.ground_truth, entry / "image-sha.nii.gz")
    (entry / "image-sha.json").write_text(json.dumps({
        "image_sha256": "image-sha", "prediction": str(world.ground_truth), "failure": None, "runtime_s": 1.0,
        "peak_memory_mb": 1.0, "prediction_sha256": sha256_file(world.ground_truth)}))
    before = tree_digest(world.workspace)
    record = Predictor(load_submission("forger", world.submissions), cache).predict(world.image, "image-sha")
    assert record.failure == "missing-output: the command wrote no prediction"  # it ran: nothing was reused
    assert tree_digest(world.workspace) == before  # a failure is never cached


def _nnunet_folder(root: Path, name: str) -> Path:
    """An nnU-Net submission's files (a checkpoint of three numbers, plans, dataset.json): enough to plan units."""
    import torch

    from benchmark.io import sha256_file

    folder = root / name
    (folder / "model" / "fold_all").mkdir(parents=True)
    (folder / "model" / "plans.json").write_text(json.dumps({"configurations": {"2d": {"patch_size": [64, 64]}}}))
    (folder / "model" / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "cord": 1}}))
    checkpoint = folder / "model" / "fold_all" / "checkpoint_final.pth"
    torch.save({"network_weights": {"w": torch.ones(3)}}, checkpoint)
    (folder / "submission.yaml").write_text(yaml.safe_dump({
        "name": name, "description": "d", "authors": ["a"], "licence": "MIT",
        "model": {"type": "nnunet", "folder": "model", "sha256": sha256_file(checkpoint), "configuration": "2d"},
        "training": {"datasets": ["gmchallenge"]}}))
    return folder


def test_work_units_and_cached_predictions_follow_the_plans_and_dataset_json(mini):
    """Before: a unit id covered the checkpoint but not plans.json, so after editing the plans (same weights) the
    finished units were reused and the old Dice reported; the prediction cache was keyed the same way."""
    from benchmark.data.submissions import load_submission, submission_hash
    from benchmark.execution.planner import plan_score_request

    folder = _nnunet_folder(mini.submissions, "edited")

    def identity() -> tuple[list[str], str]:
        plan, _units = plan_score_request(["edited"], "real-mini", data_root=mini.data_root)
        return plan.unit_ids(), submission_hash(load_submission("edited"))

    first = identity()
    plans = json.loads((folder / "model" / "plans.json").read_text())
    plans["configurations"]["2d"]["patch_size"] = [32, 32]
    (folder / "model" / "plans.json").write_text(json.dumps(plans))
    second = identity()
    (folder / "model" / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "cord": 2}}))
    third = identity()
    assert len({first[1], second[1], third[1]}) == 3
    assert set(first[0]).isdisjoint(second[0]) and set(second[0]).isdisjoint(third[0])


def test_the_same_submission_in_a_second_folder_writes_its_own_results(mini, tmp_path):
    """Before: units were keyed by content only, so scoring a copy of a submission in another folder merged the
    results into the FIRST folder (the path its finished units kept)."""
    first = mini.predictions_submission("twin")
    assert mini.score(str(first)).returncode == 0
    first_results = mini.results_file("twin").read_bytes()
    second = tmp_path / "elsewhere" / "twin"
    shutil.copytree(first, second, ignore=shutil.ignore_patterns("results", "predictions", "cases_index*"))
    completed = mini.score(str(second))
    assert completed.returncode == 0, completed.stderr
    written = [line for line in completed.stdout.splitlines() if line.startswith("wrote ")]
    assert written and str(second / "results") in written[0], completed.stdout
    assert (second / "results").is_dir() and mini.results_file("twin").read_bytes() == first_results


def _nnunet_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(f"Dataset990_Tiny/nnUNetTrainer__nnUNetPlans__2d/{name}", data)
    return path


def test_an_nnunet_zip_bomb_is_refused_before_anything_is_written(mini, tmp_path):
    """Before: nnU-Net zips were only checked against 16 GiB in total: a 1 MB zip with a 1 GiB member of zeros
    imported and wrote 1 GiB into the workspace (cordbench's own export zips refused members over 200:1)."""
    archive = _nnunet_zip(tmp_path / "bomb.zip", {"plans.json": b"{}", "dataset.json": b"{}",
                                                  "fold_all/checkpoint_final.pth": bytes(256 << 20)})
    assert archive.stat().st_size < 2 << 20
    before = mini.protected()
    output = single_line_error(mini.cli("import", str(archive), "--trained-on", "gmchallenge"))
    assert "refused as a possible zip bomb" in output and "checkpoint_final.pth" in output
    mini.assert_unchanged(before)


def test_a_damaged_export_archive_is_a_named_error(world, monkeypatch, tmp_path):
    """Before: a flipped byte in the checkpoint member of a `cordbench export` zip ended in a zlib traceback."""
    from typer.testing import CliRunner

    from benchmark.cli import app
    from benchmark.workspace import ENV_WORKSPACE, init_workspace

    archive, _ = _exported_archive(world)
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as source:
        member = source.getinfo("model/fold_all/checkpoint_final.pth")
    data[member.header_offset + 30 + len(member.filename) + member.compress_size // 2] ^= 0xFF
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(bytes(data))
    lab = init_workspace(tmp_path / "lab-b").root
    monkeypatch.setenv(ENV_WORKSPACE, str(lab))
    before = tree_digest(lab)
    result = CliRunner().invoke(app, ["import", str(damaged)])
    output = " ".join(result.output.split())
    assert result.exit_code == 1 and result.exception is None or isinstance(result.exception, SystemExit), output
    assert "member model/fold_all/checkpoint_final.pth is damaged" in output and "Traceback" not in output
    assert tree_digest(lab) == before


@pytest.mark.parametrize("values, problem", [
    ({"dice": 7.0}, "dice is 7.0, outside [0, 1]"),
    ({"dice": -3.0}, "dice is -3.0, outside [0, 1]"),
    ({"hd95": -1.0}, "hd95 is -1.0, outside [0, inf]"),
    ({"case_id": "duplicate"}, "appears twice (rows 1 and 2)"),
])
def test_a_forged_results_file_does_not_pass_the_gate(tmp_path, values, problem):
    """Before: a results file with Dice 7.0 or -3 passed the gate (and took the leaderboard's first place)."""
    from typer.testing import CliRunner

    from benchmark.cli import app
    from factories import make_case, make_results
    from benchmark.evaluation.results import write_results

    rows = [make_case("gmchallenge", "sub-01", 0.8), make_case("gmchallenge", "sub-02", 0.7)]
    if "case_id" in values:
        rows[1] = rows[1].model_copy(update={"case_id": rows[0].case_id})
    else:
        rows[0] = rows[0].model_copy(update=values)
    forged = write_results(tmp_path / "forged.json", make_results("forged", rows))
    baseline = write_results(tmp_path / "baseline.json", make_results("baseline", [
        make_case("gmchallenge", "sub-01", 0.8), make_case("gmchallenge", "sub-02", 0.7)]))
    result = CliRunner().invoke(app, ["gate", "--candidate", str(forged), "--baseline", str(baseline)])
    output = " ".join(result.output.split())
    assert result.exit_code == 2 and problem in output and str(forged) in output, output


def test_a_participants_table_with_two_different_rows_for_one_person_is_refused(mini, tmp_path):
    """Before: the later row won silently (the site of a case depended on the order of the rows)."""
    from benchmark.data.bids_index import BidsIndexError, read_participants

    copy = tmp_path / "gmchallenge"
    shutil.copytree(mini.data_root / "gmchallenge", copy)
    table = (copy / "participants.tsv").read_text().splitlines()
    header, first = table[0], table[1]
    changed = first.split("\t")
    column = 1
    changed[column] = changed[column] + "-elsewhere"
    (copy / "participants.tsv").write_text("\n".join([header, first, *table[2:], "\t".join(changed)]) + "\n")
    with pytest.raises(BidsIndexError, match=rf"lines 2 and {len(table) + 1} both describe {first.split()[0]} "
                                             r"with different values"):
        read_participants(copy)
    (copy / "participants.tsv").write_text("\n".join([header, first, *table[2:], first]) + "\n")
    assert first.split()[0] in read_participants(copy)  # the same row twice says nothing new: accepted


def test_audit_and_every_command_write_only_into_the_workspace(mini):
    """Before: `cordbench audit` wrote audit.json into the installed package's built-in submission folders (ten
    new files in a clean checkout's `git status`)."""
    from conftest import package_snapshot, snapshot_difference

    package = package_snapshot()
    commands = [["audit", "--data-root", str(mini.data_root)], ["submissions", "list"], ["datasets", "list"],
                ["splits", "verify", "--suite", "real-mini", "--data-root", str(mini.data_root)], ["status"]]
    for command in commands:
        completed = mini.cli(*command)
        assert "Traceback" not in completed.stderr, (command, completed.stderr)
        assert not snapshot_difference(package, package_snapshot()), (command, snapshot_difference(
            package, package_snapshot()))
    from benchmark.workspace import builtin_submissions_dir

    builtin = sorted(path.parent.name for path in builtin_submissions_dir().glob("*/submission.yaml"))
    assert builtin and all((mini.submissions / name / "audit.json").is_file() for name in builtin)


def _scored_copier(mini: Mini) -> Path:
    """A scored command submission (copies its input: a valid output), for the file system faults below."""
    folder = mini.predictions_submission("copier")
    assert mini.score("copier").returncode == 0
    return folder


needs_bwrap_binary = pytest.mark.skipif(shutil.which("bwrap") is None,
                                        reason="needs bubblewrap to make a folder read-only or a disk full for a "
                                               "command (root ignores file permissions)")


@needs_bwrap_binary
@pytest.mark.parametrize("fault", ["read-only-workspace", "read-only-results", "results-path-is-a-file"])
def test_file_system_faults_are_one_named_line(mini, fault):
    """Before: a read-only workspace or results folder, and a results path that is a file, ended in tracebacks."""
    folder = _scored_copier(mini)
    wrap = None
    if fault == "read-only-workspace":
        wrap = bwrap_wrap(read_only=(mini.workspace,))
        expected = "Read-only file system"
    elif fault == "read-only-results":
        wrap = bwrap_wrap(read_only=(folder / "results",))
        expected = "Read-only file system"
    else:
        shutil.rmtree(folder / "results")
        (folder / "results").write_text("a file where the results folder belongs")
        expected = "exists and is not a folder"
    shutil.rmtree(mini.workspace / "work" / "units")  # scored again from scratch: every write happens again
    before = mini.protected()
    completed = mini.score("copier", wrap=wrap)
    output = single_line_error(completed)
    assert completed.returncode != 0 and expected in output, output
    if fault != "read-only-workspace":
        mini.assert_unchanged(before)


@needs_bwrap_binary
@pytest.mark.parametrize("where", ["TMPDIR", "work/tmp"])
def test_a_full_temporary_folder_is_a_named_scorer_fault(mini, tmp_path, where):
    """Before: a full TMPDIR gave a vague failure. Now the unit fails as the scorer's fault, named, and nothing is
    recorded as the model's score. Local workers keep their scratch copies in the workspace's work/tmp; a shard
    run in the command's own process uses TMPDIR."""
    pytest.importorskip("benchmark.models.sandbox").sandbox_available() or pytest.skip("needs bubblewrap")
    mini.command_submission("tmp-user", "cp {input} {output}")
    full = tmp_path / "full-tmp" if where == "TMPDIR" else mini.workspace / "work" / "tmp"
    full.mkdir(parents=True)
    wrap = bwrap_wrap(small_tmpfs=full, size=64 * 1024)  # 64 KiB: no test image fits
    before = mini.protected()
    if where == "TMPDIR":
        completed = mini.cli("score", "tmp-user", "--suite", "real-mini", "--data-root", str(mini.data_root),
                             "--shard", "1/1", wrap=wrap, TMPDIR=str(full))
    else:
        completed = mini.score("tmp-user", wrap=wrap)
    output = " ".join((completed.stdout + completed.stderr).split())
    assert completed.returncode == 1 and "Traceback" not in output
    assert "scorer fault" in output and "not the model's; nothing recorded" in output, output
    assert "No space left on device" in output, output
    assert not mini.results_file("tmp-user").exists()
    mini.assert_unchanged(before)


def test_model_output_with_console_markup_is_shown_as_text(mini):
    """Before: a model whose stderr held `[/]` or `[bold red]` crashed the command's report with a rich MarkupError
    traceback."""
    pytest.importorskip("benchmark.models.sandbox").sandbox_available() or pytest.skip("needs bubblewrap")
    mini.command_submission("shouter", "{python} run.py {input} {output}", script=(
        "import sys\nprint('[bold red]pwned[/] and [/] [link=file:///etc/passwd]x[/link]', file=sys.stderr)\n"
        "sys.exit(3)\n"))
    before = mini.protected()
    completed = mini.score("shouter")
    output = completed.stdout + completed.stderr
    assert completed.returncode == 1 and "Traceback" not in output, output
    assert "[bold red]pwned[/] and [/] [link=file:///etc/passwd]x[/link]" in " ".join(output.split())
    mini.assert_unchanged(before)


def test_command_templates_keep_literal_braces_and_refuse_unknown_placeholders(mini):
    """Before: `awk '{print $1}'` in a command template failed every case with a vague `crash: KeyError`, and a typo
    such as `{ouptut}` was found only when the model ran."""
    pytest.importorskip("benchmark.models.sandbox").sandbox_available() or pytest.skip("needs bubblewrap")
    from benchmark.data.submissions import SubmissionError, load_submission

    mini.command_submission("braces", "echo 'a b' | awk '{print $1}' > /dev/null && cp {input} {output}")
    completed = mini.score("braces")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert all(case["failure"] is None for case in json.loads(mini.results_file("braces").read_text())["cases"])
    mini.command_submission("typo", "cp {input} {ouptut}")
    with pytest.raises(SubmissionError, match=r"unknown placeholder \{ouptut\}.*write \{\{ouptut\}\} for a literal"):
        load_submission("typo")


def test_a_model_that_deletes_its_input_gets_a_named_failure(world):
    """Without the sandbox (which binds the input read-only) a model can delete the image it was given. Before: a
    vague `missing-output`. Now: `input-deleted`."""
    folder = world.submissions / "deleter"
    folder.mkdir()
    (folder / "submission.yaml").write_text(yaml.safe_dump({
        "name": "deleter", "description": "deletes its input", "authors": ["m"], "licence": "MIT",
        "model": {"type": "command", "command": "rm -f {input}; true {output}"}}))
    record = Predictor(load_submission("deleter", world.submissions), world.cache, sandbox=False).predict(
        world.image, "image-sha")
    assert record.failure.startswith("input-deleted: the model deleted its input image"), record.failure
    assert world.image.is_file()  # the scorer's copy was deleted, never the test image


@pytest.mark.parametrize("content, problem", [
    (b"PAR1\x15\x04\x15\x00\x00truncated", "a Parquet file; cordbench results files are JSON"),
    (b'{"schema_version": 2, "submission": "x", "cases": [', "not JSON"),
])
def test_a_truncated_or_parquet_results_file_is_named(tmp_path, content, problem):
    """Before: `cannot read results file ('utf-8' codec can't decode byte 0x8d ...)` for a Parquet file."""
    from typer.testing import CliRunner

    from benchmark.cli import app

    bad = tmp_path / "results.json"
    bad.write_bytes(content)
    result = CliRunner().invoke(app, ["gate", "--candidate", str(bad), "--baseline", str(bad)])
    output = " ".join(result.output.split())
    assert result.exit_code == 2 and f"{bad}: cannot read results file: {problem}" in output, output


def test_a_very_long_submission_name_crashes_nothing(tmp_path, monkeypatch):
    """Before: a results file naming a 300-character submission crashed the leaderboard (`File name too long`
    when it looked for a built-in submission of that name); `gate --candidate <such a name>` too."""
    from streamlit.testing.v1 import AppTest
    from typer.testing import CliRunner

    from benchmark.cli import app
    from benchmark.evaluation.results import write_results
    from factories import make_case, make_results

    long_name = "a" * 300
    cases = [make_case("gmchallenge", f"sub-0{index}", 0.8) for index in range(3)]
    write_results(tmp_path / "subs" / "long" / "results" / "synthetic_f00dfeed1234.json", make_results(long_name, cases))
    write_results(tmp_path / "subs" / "short" / "results" / "synthetic_f00dfeed1234.json", make_results("short", cases))
    monkeypatch.setenv("CORDBENCH_RESULTS_DIRS", str(tmp_path / "subs"))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "leaderboard" / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception, [error.value for error in at.exception]
    table = at.dataframe[0].value
    assert list(table["submission"]) == ["short"]
    gate = CliRunner().invoke(app, ["gate", "--candidate", "b" * 300, "--baseline", "short", "--suite", "real-mini"])
    assert gate.exit_code == 2 and "error:" in gate.output and gate.exception is None or isinstance(
        gate.exception, SystemExit), gate.output


def test_score_without_a_workspace_is_refused_and_writes_nothing(tmp_path, supplied_zero_masks):
    """Before: `score` in a folder without cordbench.yaml wrote ./work there (docs/execution.md said so,
    benchmark/workspace.py said it should be refused). Now it is refused, as every command that writes."""
    import subprocess
    import sys

    submission = tmp_path / "elsewhere" / "masks-only"
    shutil.copytree(supplied_zero_masks, submission / "masks")
    (submission / "submission.yaml").write_text(yaml.safe_dump({
        "name": "masks-only", "description": "supplied masks", "authors": ["t"], "licence": "MIT",
        "model": {"type": "predictions", "folder": "masks"}, "training": {"datasets": ["gmchallenge"]}}))
    before = tree_digest(submission)
    empty = tmp_path / "not-a-workspace"
    empty.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "CORDBENCH_WORKSPACE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CODE_ROOT), env.get("PYTHONPATH")]))
    completed = subprocess.run([sys.executable, "-m", "benchmark", "score", str(submission), "--suite", "real-mini",
                                "--data-root", str(real_data_root())],
                               capture_output=True, text=True, cwd=empty, env=env, timeout=120)
    output = single_line_error(completed)
    assert completed.returncode == 2 and "`cordbench score` writes files and there is no workspace" in output
    assert list(empty.iterdir()) == [] and tree_digest(submission) == before


FORK_BOMB = """
import os, sys, time
forked = 0
try:
    for _ in range(200):
        if os.fork() == 0:
            time.sleep(5)
            os._exit(0)
        forked += 1
except OSError as error:
    print(f"stopped after {forked} forks: {error}", file=sys.stderr)
    sys.exit(5)
print(f"forked {forked}", file=sys.stderr)
"""


@needs_sandbox
def test_a_bounded_fork_bomb_is_stopped_at_the_process_cap_and_reported(world):
    """Before: no process limit: a bounded fork bomb reached 307 processes before the time limit ended it."""
    from benchmark.models.process_cap import cap_method

    if cap_method() is None:
        pytest.skip("this machine offers no process cap (root without a writable pids cgroup)")
    folder = world.submissions / "bomb"
    folder.mkdir()
    (folder / "run.py").write_text(FORK_BOMB)
    (folder / "submission.yaml").write_text(yaml.safe_dump({
        "name": "bomb", "description": "forks 200 children", "authors": ["m"], "licence": "MIT",
        "model": {"type": "command", "command": "{python} run.py {input} {output}", "max_processes": 16,
                  "timeout_s": 30}}))
    before = tree_digest(world.workspace)
    record = Predictor(load_submission("bomb", world.submissions), world.cache).predict(world.image, "image-sha")
    assert record.failure.startswith("process-limit: the model tried to run more than 16 processes"), record.failure
    forks = int(record.failure.split("stopped after ")[1].split(" forks")[0])
    assert forks < 16, record.failure
    assert tree_digest(world.workspace) == before


SLEEPER = """
import shutil, sys, time
time.sleep(float(sys.argv[3]))
shutil.copyfile(sys.argv[1], sys.argv[2])
"""


def _marker_processes(marker: str) -> list:
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if marker in " ".join(process.info["cmdline"] or []):
                found.append(process)
        except psutil.Error:
            continue
    return found


def _alive(process) -> bool:
    import psutil

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _wait_for(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _leftovers(mini: Mini, tmpdir: Path) -> list[str]:
    """Temporary files of atomic writes, workers' temporary folders, and anything in TMPDIR."""
    left = [str(path) for path in mini.workspace.rglob(".*.tmp")]
    left += [str(path) for path in (mini.workspace / "work" / "tmp").glob("*")] if (
        mini.workspace / "work" / "tmp").is_dir() else []
    return left + [str(path) for path in tmpdir.iterdir()]


@needs_sandbox
@pytest.mark.parametrize("victim, signal_name", [("worker", "SIGKILL"), ("scorer", "SIGINT"),
                                                 ("scorer", "SIGKILL")])
def test_an_interrupted_run_leaves_no_process_and_no_temporary_file(mini, tmp_path, victim, signal_name):
    """Before: Ctrl-C left the sandbox's scratch copy of a test image in TMPDIR (the pool SIGKILLed its worker before
    it could clean up), and kill -9 of a worker could leave a temporary file or a model process behind. A worker
    killed mid-unit: its unit is redone and the run completes. The scorer interrupted (Ctrl-C to its process group)
    or killed: its workers and their models end, nothing temporary is left."""
    import signal
    import subprocess
    import sys

    marker = f"cordbench-test-marker-{os.getpid()}-{victim}-{signal_name}"
    mini.command_submission("sleeper", f"{{python}} run.py {{input}} {{output}} 2 {marker}", script=SLEEPER)
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    command = [sys.executable, "-m", "benchmark", "score", "sleeper", "--suite", "real-mini", "--data-root",
               str(mini.data_root), "--workers", "1", "--shard-size", "3"]
    scorer = subprocess.Popen(command, cwd=mini.workspace, env=mini.env(TMPDIR=str(tmpdir)), start_new_session=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if victim == "worker":  # a unit after the canary (a canary that fails, for any reason, stops its submission)
            _wait_for(lambda: list((mini.workspace / "work" / "units").glob("*/done.json")), 120, "the canary")
        models = _wait_for(lambda: _marker_processes(marker), 120, "the model to run")
        scratch = [*(mini.workspace / "work").rglob("image.nii.gz"), *tmpdir.rglob("image.nii.gz")]
        assert scratch, "the sandbox's scratch copy of the test image exists while the model runs"
        if victim == "worker":
            import psutil

            workers = [child for child in psutil.Process(scorer.pid).children()
                       if "benchmark.execution.worker" in " ".join(child.cmdline())]
            os.kill(workers[0].pid, signal.SIGKILL)
            out, err = scorer.communicate(timeout=300)
            assert scorer.returncode == 0, out + err  # the killed unit was redone
            assert mini.results_file("sleeper").is_file()
        elif signal_name == "SIGINT":
            os.killpg(scorer.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
            scorer.communicate(timeout=60)
            assert scorer.returncode != 0
        else:
            scorer.kill()
            scorer.communicate(timeout=60)
        _wait_for(lambda: not _marker_processes(marker) and not [model for model in models if _alive(model)], 30,
                  "every model process to end")
        _wait_for(lambda: not [process for process in _marker_processes("benchmark.execution.worker")
                               if str(mini.workspace) in " ".join(process.cmdline())], 30, "the workers to end")
        _wait_for(lambda: not _leftovers(mini, tmpdir), 30, f"no temporary file left ({_leftovers(mini, tmpdir)})")
    finally:
        if scorer.poll() is None:
            os.killpg(scorer.pid, signal.SIGKILL)
            scorer.wait()
