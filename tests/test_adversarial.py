"""Hostile submissions: each tries one way to forge a score or damage the host, and must fail closed.

Every attack is a small script run as a `command` submission (or a hostile nnU-Net folder / archive). The
scorer's working directory is the data root and a secret is in its environment, as on a careless machine.
Each attack must end as a NAMED failure (a case failure such as `crash: ... blocked: ...` or `timeout: ...`,
or a named CordbenchError) and leave every file of the workspace and the data root byte-identical.
Two attacks are also run with the sandbox off, to show that they do work there (so these tests can fail).

The second half (after "round two") attacks the scorer's caches and limits: a shipped prediction cache, a damaged
archive, a model deleting its input, a fork bomb, model files linked out of their folder. The attacks on what a
submission ships and what a user can do to the file system are in test_adversarial_inputs.py; docs/scoring.md lists
each before and after.
"""

from __future__ import annotations

import hashlib
import json
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
# Attacks on the scorer's own files and limits, in the `world` above; the attacks on what a submission ships and on
# the file system, run as a user runs cordbench, are in test_adversarial_inputs.py. Each failed before issue 26.
from hostile_fixtures import nnunet_submission  # noqa: E402


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
    assert record.failure.startswith("process-limit: a new process or thread was refused at the cap of 16"), \
        record.failure
    forks = int(record.failure.split("stopped after ")[1].split(" forks")[0])
    assert forks < 16, record.failure
    assert tree_digest(world.workspace) == before


def test_nnunet_model_files_linked_out_of_the_model_folder_are_neither_read_nor_exported(world, tmp_path):
    """Before: a model folder whose plans.json was a link to a host file had that file read as plans, and
    `cordbench export` packed it into the archive (a secret handed to whoever gets the zip)."""
    from benchmark.models.packaging import export_submission
    from benchmark.evaluation.inference import ModelLoadError
    from benchmark.safepaths import UnsafePathError

    secret = tmp_path / "secret.txt"
    secret.write_text("hunter2")
    folder = nnunet_submission(world.submissions, "leaky")
    (folder / "model" / "dataset_fingerprint.json").symlink_to(secret)
    before = tree_digest(world.workspace)
    with pytest.raises(UnsafePathError, match=r"dataset_fingerprint.json: this model file is a link to .*secret.txt"):
        export_submission("leaky", tmp_path / "leaky.zip", world.submissions)
    assert not (tmp_path / "leaky.zip").exists()
    with pytest.raises(ModelLoadError, match="this model file is a link to"):
        Predictor(load_submission("leaky", world.submissions), world.cache).array_model()
    assert tree_digest(world.workspace) == before
