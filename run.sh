#!/usr/bin/env bash
# Set up everything cordbench needs (idempotent), then run one job:
#   ./run.sh demo   the seed experiment on the embedded synthetic suite (cordbench demo), in the workspace
#                   work/workspace (or $CORDBENCH_WORKSPACE)
#   ./run.sh test   the test suite, with its 15 slowest tests listed (./run.sh test -m "not slow": the inner loop);
#                   CORDBENCH_HOST=least-capable ./run.sh test runs it as an AVX2-only CPU would (what .ci/run does)
#   ./run.sh setup  only the set-up
# Set-up: a Python 3.11 virtual environment in .venv with the project and its test extras (torch at the tested
# version of constraints-tested.txt), Chromium for the browser test, git-annex for `cordbench fetch` and bubblewrap (the sandbox
# `cordbench score` runs command/python submissions in) as Debian packages, installed when missing and when
# this runs as root, and the Jupyter kernel the notebook test uses.
set -euo pipefail
cd "$(dirname "$0")"
job="${1:-demo}"
shift || true

python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3

system_packages() {
    local missing=()
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    command -v git-annex >/dev/null 2>&1 || missing+=(git-annex)
    command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing Debian packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "note: ${missing[*]} not installed (needs root + apt); the tests that need them will be skipped"
    fi
}

python_env() {
    local stamp=.venv/.cordbench-installed
    local wanted
    wanted="$(cat pyproject.toml constraints-tested.txt | sha256sum | cut -c1-16)"
    if [ ! -x .venv/bin/python ]; then
        "$python" -m venv .venv
    fi
    if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
        .venv/bin/python -m pip install -q --upgrade pip
        # the tested torch (constraints-tested.txt) within pyproject.toml's supported range
        .venv/bin/python -m pip install -q -e ".[test]" -c constraints-tested.txt
        .venv/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null
        echo "$wanted" > "$stamp"
    fi
}

# The demo writes only into a workspace under work/ (ignored by git): the package and the tracked files never change.
use_workspace() {
    export CORDBENCH_WORKSPACE="${CORDBENCH_WORKSPACE:-$PWD/work/workspace}"
    .venv/bin/cordbench init "$CORDBENCH_WORKSPACE" >/dev/null
}

case "$job" in
    setup) system_packages; python_env ;;
    demo) python_env; use_workspace; exec .venv/bin/cordbench demo "$@" ;;
    test)
        system_packages
        python_env
        # one module per process at a time, as many processes as cores (at most 4: each holds torch and nnU-Net);
        # CORDBENCH_TEST_WORKERS overrides. The CPU kernels are pinned (tests/conftest.py, docs/reproducibility.md).
        workers=${CORDBENCH_TEST_WORKERS:-$(( $(nproc) < 4 ? $(nproc) : 4 ))}
        echo "CPU kernels: ${CORDBENCH_CPU_KERNELS:-pinned}${CORDBENCH_HOST:+, host: $CORDBENCH_HOST}"
        exec .venv/bin/python -m pytest -n "$workers" --dist loadfile --durations=15 "$@"
        ;;
    *) echo "usage: ./run.sh demo|test|setup [args...]" >&2; exit 2 ;;
esac
