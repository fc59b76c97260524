"""What the golden makers share: exact JSON values of arrays, and the file they write.

Imported by ``make_tf_golden.py`` and ``make_paddle_golden.py`` as a sibling module (each runs
as a script, so this folder is on ``sys.path``). It runs under the Paddle maker's Python 3.8 too.
"""

from __future__ import annotations

import json
import os
import platform
from typing import Callable, Sequence

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def floats(x) -> list:
    """``x`` as nested lists of Python floats (float32 values become their exact float64)."""
    return np.asarray(x, dtype=np.float64).tolist()


def ints(x) -> list:
    """``x`` as nested lists of Python ints."""
    return np.asarray(x, dtype=np.int64).tolist()


def write_golden(argv: Sequence[str], *, file_name: str, framework: str, version: str,
                 generator: str, seed: int, build_cases: Callable[[], list]) -> None:
    """Build the cases and write the golden file: ``argv[1]``, else ``file_name`` in this folder.

    The document records the framework, its version, NumPy's and Python's, the generator script
    and its seed, then the cases; floats are written with ``repr`` (``json``'s own), NaN refused.
    """
    out = argv[1] if len(argv) > 1 else os.path.join(HERE, file_name)
    doc = {
        "framework": framework,
        f"{framework}_version": version,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "generator": generator,
        "seed": seed,
        "cases": build_cases(),
    }
    with open(out, "w") as f:
        json.dump(doc, f, allow_nan=False, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(doc['cases'])} cases to {out} ({framework} {version})")
