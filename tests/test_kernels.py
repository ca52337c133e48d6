"""benchmark.kernels: pinned CPU kernels (the default) and the native opt-out, checked in fresh processes against
what oneDNN itself says it runs (ONEDNN_VERBOSE); the least-capable host; where the setting is carried and recorded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from benchmark import kernels

REPO = Path(__file__).resolve().parents[1]

needs_pin = pytest.mark.skipif(not kernels.can_pin()[0], reason=f"pinned kernels do not apply: {kernels.can_pin()[1]}")
#: the CPU's own vector width is wider than the pin's (an AVX-512 or AMX CPU), unless this run plays the AVX2 host
WIDER_THAN_PIN = bool({"avx512f", "amx_tile"} & kernels.cpu_flags())

_CHILD = textwrap.dedent(
    """
    import json, sys
    from benchmark import kernels
    if sys.argv[1] == "torch-first":  # a notebook: torch computed before cordbench was asked to pin
        import torch
        torch.nn.functional.conv2d(torch.ones(2, 16, 64, 64), torch.ones(16, 16, 3, 3))
        setting = kernels.apply("pinned")
    else:
        setting = kernels.apply(sys.argv[1])
    import torch
    torch.set_num_threads(1)
    with torch.no_grad():
        torch.nn.Conv2d(16, 32, 3, padding=1)(torch.randn(2, 16, 64, 64))
    sys.stdout.flush()
    print("RESULT " + json.dumps([setting.label, setting.note, kernels.kernels_in_effect()]), flush=True)
    """
)


def run_child(mode: str, **extra: str) -> tuple[str, str, dict, str]:
    """(label, note, kernels in effect, oneDNN's verbose output) of a fresh interpreter that applied ``mode``."""
    env = {key: value for key, value in os.environ.items() if key not in kernels.PIN_VARIABLES}
    env.update(ONEDNN_VERBOSE="1", OMP_NUM_THREADS="1", **extra)
    completed = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, env=env,
                               cwd=REPO)
    assert completed.returncode == 0, completed.stderr[-3000:]
    [line] = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    label, note, effect = json.loads(line.removeprefix("RESULT "))
    return label, note, effect, completed.stdout


@needs_pin
def test_pinned_kernels_are_what_onednn_and_aten_run_in_a_fresh_process():
    label, note, effect, verbose = run_child("pinned")
    assert label == kernels.PINNED_LABEL and "capped at AVX2" in note
    assert effect == {"aten": "avx2", "onednn": "avx2"}
    # oneDNN's own word: the ISA it dispatches to, and the convolution's implementation
    assert "onednn_verbose" in verbose and ",isa:Intel AVX2\n" in verbose, verbose[:2000]
    assert ",convolution,jit:avx2," in verbose or ",convolution,brg_conv_fwd:avx2," in verbose, verbose[:3000]


@needs_pin
def test_native_kernels_are_the_cpus_own_and_say_so():
    label, _note, effect, _verbose = run_child("native")
    assert label == f"native-{kernels.cpu_isa()}"
    if kernels.least_capable():  # the least-capable host is an AVX2 CPU: its own kernels are the capped ones
        assert effect == {"aten": "avx2", "onednn": "avx2"} and label == "native-avx2"
    elif WIDER_THAN_PIN:
        assert effect["onednn"] != "avx2" and effect["aten"] != "avx2", effect


@needs_pin
def test_torch_computing_before_the_pin_is_recorded_as_unpinned():
    """A notebook that ran torch first cannot be pinned any more: recorded as what runs, never as pinned."""
    label, note, effect, _verbose = run_child("torch-first")
    if WIDER_THAN_PIN:
        assert label == f"unpinned-{effect['onednn']}" and label != kernels.PINNED_LABEL
        assert "torch computed before cordbench could pin its kernels" in note
    else:  # an AVX2 CPU computes with the pinned kernels anyway, and that is verified, not assumed
        assert label == kernels.PINNED_LABEL and effect == {"aten": "avx2", "onednn": "avx2"}


def test_the_least_capable_host_has_no_avx512(monkeypatch):
    monkeypatch.setattr(kernels, "cpu_flags", lambda: {"avx2", "fma", "avx512f", "avx512_bf16", "sse4_1"})
    monkeypatch.setattr(kernels, "_x86", lambda: True)
    monkeypatch.delenv(kernels.ENV_HOST, raising=False)
    assert kernels.cpu_isa() == "avx512"
    monkeypatch.setenv(kernels.ENV_HOST, kernels.LEAST_CAPABLE)
    assert kernels.cpu_isa() == "avx2" and kernels.pin_wanted("native")


def test_no_pin_where_the_cpu_cannot_honour_it(monkeypatch):
    """ATEN_CPU_CAPABILITY=avx2 on a CPU without AVX2 would run instructions it does not have: never set there."""
    monkeypatch.setattr(kernels, "_x86", lambda: True)
    monkeypatch.setattr(kernels, "cpu_flags", lambda: {"sse4_1", "avx"})
    assert kernels.can_pin() == (False, "the CPU lacks avx2, fma: pinned kernels need AVX2; kernels left to the CPU")
    assert kernels.cpu_isa() == "sse41" and not kernels.pin_wanted("pinned")
    monkeypatch.setattr(kernels, "_x86", lambda: False)
    monkeypatch.setattr(kernels.platform, "machine", lambda: "aarch64")
    assert kernels.cpu_isa() == "arm64" and not kernels.can_pin()[0]


def test_a_bad_setting_is_one_line_naming_the_variable(monkeypatch):
    from benchmark.cli import app

    monkeypatch.setenv(kernels.ENV_KERNELS, "fast")
    with pytest.raises(kernels.KernelSettingError, match=r"\$CORDBENCH_CPU_KERNELS='fast': expected one of pinned, "
                                                         "native"):
        kernels.requested_kernels()
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 2
    assert "error: $CORDBENCH_CPU_KERNELS='fast': expected one of pinned, native" in result.output
    monkeypatch.setenv(kernels.ENV_KERNELS, "pinned")
    monkeypatch.setenv(kernels.ENV_HOST, "slow")
    with pytest.raises(kernels.KernelSettingError, match=r"\$CORDBENCH_HOST='slow': expected one of least-capable"):
        kernels.least_capable()


def test_processes_cordbench_starts_carry_the_request(monkeypatch):
    """Local workers and SLURM jobs get the request explicitly (not through sbatch's --export default) and pin
    it themselves on the CPU they run on."""
    from benchmark.execution.local import worker_environment
    from benchmark.execution.slurm import job_setup

    monkeypatch.setenv(kernels.ENV_HOST, kernels.LEAST_CAPABLE)
    monkeypatch.setattr(kernels, "current", lambda: kernels.KernelSetting("native", "native-avx2", "test"))
    assert kernels.child_environment() == {kernels.ENV_KERNELS: "native", kernels.ENV_HOST: kernels.LEAST_CAPABLE}
    environment = worker_environment(1)
    assert environment[kernels.ENV_KERNELS] == "native" and environment[kernels.ENV_HOST] == kernels.LEAST_CAPABLE
    setup = job_setup(threads=1)
    assert 'export CORDBENCH_CPU_KERNELS="native"' in setup and 'export CORDBENCH_HOST="least-capable"' in setup


def test_what_each_network_call_is_recorded_as(monkeypatch):
    from benchmark.evaluation.inference import PredictionRecord
    from benchmark.evaluation.scoring import inference_header
    from benchmark.execution.merge import merged_inference

    monkeypatch.delenv(kernels.ENV_HOST, raising=False)
    monkeypatch.setattr(kernels, "cpu_isa", lambda: "avx512")
    monkeypatch.setattr(kernels, "current", lambda: kernels.KernelSetting("pinned", kernels.PINNED_LABEL, "test"))
    assert kernels.label_for("torch", "cpu") == "pinned-avx2"
    assert kernels.label_for("openvino", "cpu") == "unpinned-avx512"  # its instance norm stays AVX-512
    assert kernels.label_for("torch", "cuda") == "cuda" and kernels.label_for(None, None) is None
    monkeypatch.setattr(kernels, "current", lambda: kernels.KernelSetting("native", "native-avx512", "test"))
    assert kernels.label_for("onnxruntime", "cpu") == kernels.label_for("torch", "cpu") == "native-avx512"

    def record(label):
        return PredictionRecord("a" * 64, "p.nii.gz", None, 1.0, None, runtime="torch", threads=1, device="cpu",
                                cpu_kernels=label)

    assert inference_header([record("pinned-avx2")])["cpu_kernels"] == "pinned-avx2"
    mixed = inference_header([record("pinned-avx2"), record("native-avx512"), record(None)])
    assert mixed["cpu_kernels"] == "native-avx512 | pinned-avx2 | unrecorded"  # e.g. masks cached by an older run
    assert merged_inference([{"runtime": "torch", "cpu_kernels": "pinned-avx2"},
                             {"runtime": "torch", "cpu_kernels": "native-avx512"}])["cpu_kernels"] == \
        "native-avx512 | pinned-avx2"


def test_pinned_and_native_masks_are_cached_apart(monkeypatch, tmp_path):
    from benchmark.data.submissions import Submission
    from benchmark.evaluation.inference import Predictor

    submission = Submission.model_validate({
        "name": "m", "description": "m", "authors": ["t"], "licence": "MIT",
        "model": {"type": "nnunet", "folder": "model", "configuration": "2d", "sha256": "a" * 64}})
    folders = {}
    for requested in kernels.KERNEL_CHOICES:
        monkeypatch.setattr(kernels, "current", lambda requested=requested: kernels.KernelSetting(requested, "x", ""))
        folders[requested] = Predictor(submission, tmp_path).cache_dir
    assert folders["pinned"] != folders["native"] and folders["native"].name.endswith("-native")


def test_units_are_planned_and_run_with_one_kernel_setting(monkeypatch, tmp_path):
    from benchmark.execution.units import TrainUnit, UnitError, UnitStore, run_unit, unit_id

    pinned = TrainUnit(group="g", raw_folder="r", work_dir="w", inputs_digest="d", cpu_kernels="pinned")
    native = pinned.model_copy(update={"cpu_kernels": "native"})
    assert unit_id(pinned) != unit_id(native)  # other kernels, other weights: never the same unit
    assert TrainUnit(group="g", raw_folder="r", work_dir="w", inputs_digest="d").cpu_kernels == \
        kernels.current().requested
    store = UnitStore(tmp_path)
    store.save_spec(unit_id(native), native)
    monkeypatch.setattr(kernels, "current", lambda: kernels.KernelSetting("pinned", kernels.PINNED_LABEL, ""))
    with pytest.raises(UnitError, match="was planned with native CPU kernels, this process runs pinned ones"):
        run_unit(tmp_path, unit_id(native))


def test_results_hardware_names_the_kernels():
    from factories import make_results

    results = make_results("m", []).model_copy(update={"cpu_model": "AMD EPYC", "threads": 1,
                                                       "cpu_kernels": "pinned-avx2"})
    assert results.hardware() == "CPU: AMD EPYC, 1 thread, pinned-avx2 kernels"
