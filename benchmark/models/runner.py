"""Runs a ``python`` submission's function on one image; the scorer starts it inside the sandbox.

    python -m benchmark.models.runner MODULE:FUNCTION INPUT_DIR OUTPUT_DIR

INPUT_DIR holds ``image.npy`` (float32, canonical RAS+) and ``spacing.json`` ([x, y, z] in mm); the
function's probabilities (same shape) are written to OUTPUT_DIR/``probabilities.npy``. The module is
imported from the working directory (the submission folder) or the PYTHONPATH the scorer allowed.
Exit codes: 0 done; 3 the entrypoint cannot be loaded, 4 the function raised (the last line of stderr says
why, as ``Type: message``); anything else: the process died (killed, out of memory...).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

LOAD_FAILED = 3
FUNCTION_RAISED = 4
IMAGE_FILE = "image.npy"
SPACING_FILE = "spacing.json"
OUTPUT_FILE = "probabilities.npy"


def main(argv: list[str] | None = None) -> int:
    entrypoint, input_dir, output_dir = argv if argv is not None else sys.argv[1:]
    sys.path.insert(0, os.getcwd())
    module_name, _, function_name = entrypoint.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except Exception as error:  # reported to the scorer, which stops the run: no case is the model's fault yet
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return LOAD_FAILED
    import numpy as np

    image = np.load(Path(input_dir) / IMAGE_FILE, allow_pickle=False)
    spacing = tuple(float(value) for value in json.loads((Path(input_dir) / SPACING_FILE).read_text()))
    try:
        probabilities = np.asarray(function(image, spacing), dtype=np.float32)
    except Exception as error:
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return FUNCTION_RAISED
    np.save(Path(output_dir) / OUTPUT_FILE, probabilities, allow_pickle=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
