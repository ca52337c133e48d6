"""Shared test fixtures: where ../shared is, the synthetic suite (generated once a session), NIfTI builders."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from benchmark import kernels
from benchmark.environment import available_cores

# Before any test module loads torch: the tests compute with the kernels cordbench's own processes use (pinned
# unless CORDBENCH_CPU_KERNELS=native), and with CORDBENCH_HOST=least-capable as an AVX2-only CPU would (.ci/run).
kernels.apply()
# `./run.sh test` runs one process per core (pytest-xdist): each computes with its share of the cores, set before
# numpy and torch load. More threads than cores make OpenMP threads wait for each other while another process holds
# a core (a training step took 7x longer with 2 threads on a busy 2-core machine: docs/nnunet.md).
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _SHARE = str(max(1, available_cores() // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "CORDBENCH_THREADS"):
        os.environ.setdefault(_name, _SHARE)

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# Tests make their own workspaces: one exported in the caller's shell must not receive their files.
os.environ.pop("CORDBENCH_WORKSPACE", None)
SHARED_DATA = REPO.parent / "shared" / "data"
BIDS = SHARED_DATA / "bids"


@pytest.fixture
def shared_bids() -> Path:
    """../shared/data/bids, or skip with a message saying where it was looked for."""
    if not (BIDS / "gmchallenge" / "dataset_description.json").is_file():
        pytest.skip(f"real data not available: expected ../shared/data/bids at {BIDS}")
    return BIDS


#: fixtures that take well over 10 s on 2 cores: a test that needs one is slow (deselected by -m "not slow")
SLOW_FIXTURES = {
    "synthetic_suite": "generates the whole synthetic suite (~30 s, once a session)",
    "tiny_model": "trains a tiny nnU-Net (tests/test_nnunet_engine.py, once a module)",
    "tiny_preprocessed": "plans and preprocesses a tiny nnU-Net dataset (~15 s, once a session)",
    "tiny_nnunet": "plans and preprocesses a tiny nnU-Net dataset (~15 s, once a session)",
}

#: Modules that take minutes (nnU-Net training, a real SLURM cluster), longest first. `./run.sh test` runs the
#: suite on several processes, one module per process at a time (pytest-xdist, --dist loadfile), handing modules
#: out in collection order: these go first so that no process starts a long module when the others are done.
LONGEST_MODULES = ("test_nnunet_quick_model.py", "test_ci_gate.py", "test_execution_slurm.py",
                   "test_nnunet_engine.py", "test_execution.py", "test_workspace_pipeline.py")


def pytest_configure(config: pytest.Config) -> None:
    # pytest-xdist (>= 3.6) hands modules out by their number of tests, most first, unless told not to: the two
    # nnU-Net trainings (modules of 2 and 3 tests) then started after most of the suite and ran alone at its end.
    # Keep the collection order, which puts LONGEST_MODULES first.
    if getattr(config.option, "loadscopereorder", None):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES.keys() & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
        if item.get_closest_marker("sandbox") and not _sandbox_available():
            item.add_marker(pytest.mark.skip(reason=SANDBOX_MISSING))
    rank = {name: index for index, name in enumerate(LONGEST_MODULES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


# ------------------------------------------------------------------ nothing a command runs writes into the package
#: What must never change while the tests run a command: the installed package (an editable install: this
#: checkout's benchmark/ and leaderboard/), the built-in reference submissions, and every file git tracks.
@functools.lru_cache(maxsize=1)
def _protected_roots_and_tracked() -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    import subprocess

    import benchmark
    import leaderboard
    from benchmark.workspace import builtin_submissions_dir

    roots = (Path(benchmark.__file__).resolve().parent, Path(leaderboard.__file__).resolve().parent,
             builtin_submissions_dir().resolve())
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True)
    tracked = [REPO / name for name in listed.stdout.decode().split("\0") if name] if listed.returncode == 0 else []
    return roots, tuple(tracked)


def package_snapshot() -> dict[str, tuple | None]:
    """(size, mtime, kind) of every tracked file and of every file below the package folders (new ones too)."""
    roots, tracked = _protected_roots_and_tracked()
    files = {path for root in roots for path in root.rglob("*") if "__pycache__" not in path.parts}
    snapshot: dict[str, tuple | None] = {}
    for path in sorted(files.union(tracked)):
        try:
            info = path.lstat()
            snapshot[str(path)] = (info.st_size, info.st_mtime_ns, info.st_mode >> 12)
        except OSError:
            snapshot[str(path)] = None
    return snapshot


def snapshot_difference(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    return [f"{path}: {'created' if path not in before else 'deleted' if after.get(path) is None else 'changed'}"
            for path in sorted(set(before) | set(after)) if before.get(path) != after.get(path)]


@pytest.fixture(scope="session", autouse=True)
def commands_never_write_into_the_package():
    """Every `cordbench` command a test runs through typer's CliRunner is checked: the package, the built-in
    submissions and the repository's tracked files are byte-for-byte where they were (size and mtime of each, and
    no new file below the package folders), or that test fails naming the command and the files. The whole session
    is checked once more at its end (commands run as subprocesses included)."""
    from typer.testing import CliRunner

    session_before = package_snapshot()
    original = CliRunner.invoke

    def checked_invoke(self, app, args=None, *more, **kwargs):
        before = package_snapshot()
        result = original(self, app, args, *more, **kwargs)
        changed = snapshot_difference(before, package_snapshot())
        if changed:
            pytest.fail(f"`cordbench {' '.join(map(str, args or []))}` wrote into the package or the repository: "
                        + "; ".join(changed[:10]), pytrace=False)
        return result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(CliRunner, "invoke", checked_invoke)
        yield
    changed = snapshot_difference(session_before, package_snapshot())
    assert not changed, "the test session wrote into the package or the repository: " + "; ".join(changed[:10])


SANDBOX_MISSING = ("runs untrusted submission code, which cordbench runs only in bubblewrap: bwrap is missing or "
                   "cannot create namespaces here (apt-get install bubblewrap)")


def _sandbox_available() -> bool:
    """Can bubblewrap run here (probed once per test process)?"""
    global _SANDBOX
    if _SANDBOX is None:
        from benchmark.models.sandbox import sandbox_available

        _SANDBOX = sandbox_available()
    return _SANDBOX


_SANDBOX: bool | None = None


@pytest.fixture(scope="session")
def synthetic_suite(tmp_path_factory) -> Path:
    """The whole synthetic suite for seed 0, generated once for the test session (in a parallel run, once for
    all its processes: the first generates it under a file lock, the others find it complete). Tests only read
    it."""
    from filelock import FileLock

    from benchmark.data.synth import SYNTHETIC_DATASET_IDS, generate_suite

    root = shared_session_folder(tmp_path_factory, "synthetic-suite")
    with FileLock(str(root) + ".lock"):
        folders = generate_suite(root, seed=0, progress=False)
    assert folders == {dataset_id: root / dataset_id for dataset_id in SYNTHETIC_DATASET_IDS}
    return root


def shared_session_folder(tmp_path_factory, name: str) -> Path:
    """A folder every process of the test session sees (in a parallel run, beside the processes' own folders)."""
    base = tmp_path_factory.getbasetemp()
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name  # xdist: .../popen-gwN


@pytest.fixture(scope="session")
def tiny_nnunet(tmp_path_factory) -> tuple[Path, Path]:
    """(raw dataset folder, nnUNet_preprocessed folder) of the tiny synthetic nnU-Net dataset
    (nnunet_testdata.write_synthetic_raw_dataset: 4 training cases, 1 test case), planned and preprocessed once for
    the session under a file lock: planning and preprocessing cost more than a tiny training. Tests only read
    both; one that trains copies the preprocessed folder into its own work folder
    (``nnunet_testdata.preprocessed_copy``)."""
    from filelock import FileLock

    from benchmark.training.nnunet.plans import plan_and_preprocess
    from nnunet_testdata import write_synthetic_raw_dataset

    root = shared_session_folder(tmp_path_factory, "tiny-nnunet")
    with FileLock(str(root) + ".lock"):
        done = root / "done"
        raw = root / "raw" / "Dataset990_TinySynth"
        if not done.exists():
            raw = write_synthetic_raw_dataset(root / "raw")
            plan_and_preprocess(raw, root / "nnUNet_preprocessed", num_processes=1)
            done.touch()
    return raw, root / "nnUNet_preprocessed"


def orientation_affine(codes: str, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0)) -> np.ndarray:
    """An affine whose voxel axes point along ``codes`` (e.g. 'LPS') with the given spacing."""
    ras = nib.orientations.axcodes2ornt(tuple(codes))
    affine = np.eye(4)
    affine[:3, :3] = 0
    for voxel_axis, (world_axis, flip) in enumerate(ras):
        affine[int(world_axis), voxel_axis] = flip * spacing[voxel_axis]
    affine[:3, 3] = origin
    return affine


def save_nifti(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path
