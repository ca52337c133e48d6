#!/usr/bin/env bash
# cordbench's GPU check on a lent GPU machine (Python 3.12 + torch with CUDA, no network), from the repository root:
#   1. installs the kit that tools/gpu/fetch_wheels.py downloaded into .gpu-kit/ (wheels with pip --no-index
#      --no-deps --target, bubblewrap's .deb unpacked beside them when the machine has no bwrap);
#   2. runs tools/gpu/check.py: environment, pytest -m gpu, quick 2D + 3D training on CUDA, cordbench vs
#      nnUNetPredictor at equal settings, a command submission in the sandbox with the GPU visible.
# Writes $OUT/gpu-check.json, $OUT/gpu-check.log and $OUT/gpu-tests.xml ($OUT: the device tool's folder, else
# ./gpu-check-out). Knobs: KIT (.gpu-kit), SITE (/tmp/cordbench-site), PYTHON (python3), BUDGET_S (480).
# See docs/performance.md ("GPU") for the exact device-tool call.
set -uo pipefail
cd "$(dirname "$0")/../.."
KIT=${KIT:-.gpu-kit}
SITE=${SITE:-/tmp/cordbench-site}
PYTHON=${PYTHON:-python3}
OUT=${OUT:-$PWD/gpu-check-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu-check.log") 2>&1

shopt -s nullglob
wheels=("$KIT"/wheels/*.whl)
if [ ${#wheels[@]} -eq 0 ]; then
    echo "no wheels in $KIT/wheels: run tools/gpu/fetch_wheels.py on a machine with the registries first"
    exit 3
fi
echo "installing ${#wheels[@]} wheels into $SITE"
"$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "${wheels[@]}" || exit 3
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
if ! command -v bwrap >/dev/null 2>&1; then
    for deb in "$KIT"/debs/bubblewrap_*.deb; do
        mkdir -p /tmp/cordbench-bwrap && dpkg-deb -x "$deb" /tmp/cordbench-bwrap \
            && export PATH="/tmp/cordbench-bwrap/usr/bin:$PATH" && echo "bwrap unpacked from $deb"
    done
fi
"$PYTHON" -m pip check 2>&1 | sed 's/^/pip check: /' || true
export PYTHONUNBUFFERED=1
"$PYTHON" tools/gpu/check.py --out "$OUT" --budget-s "${BUDGET_S:-480}"
