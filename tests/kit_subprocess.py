"""Running a conformance kit group in a subprocess with a patch of the core applied by a
throwaway ``conftest.py``, so that the patch never leaks into the test process (the mutation
tests of ``test_mutations.py`` and ``test_sampler_truth.py``). Hypothesis runs derandomized
there, so every verdict is reproducible."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

CONFTEST = '''
import inspect
import os

from hypothesis import HealthCheck, Phase, settings

settings.register_profile(
    "mutation", max_examples={examples}, deadline=None, derandomize=True, database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("mutation")

{patch}
'''

TEST_FILE = '''
from multisampled.conformance.base import {group}


class TestKit({group}):
    backend = "{backend}"
'''


def run_kit(tmp_path, patch: str, backend: str, *, group: str = "BackendConformance",
            selection: str = "", examples: int = 30, stop_first: bool = False):
    """Runs the kit ``group`` on ``backend`` with ``patch`` applied (``selection``: a ``-k``
    expression); returns ``(result, names of the failed tests)``."""
    (tmp_path / "conftest.py").write_text(
        CONFTEST.format(patch=textwrap.dedent(patch), examples=examples))
    (tmp_path / "test_kit.py").write_text(TEST_FILE.format(group=group, backend=backend))
    env = dict(os.environ)
    env.pop("MULTISAMPLED_BACKEND", None)
    env.pop("HYPOTHESIS_PROFILE", None)
    cmd = [sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider",
           "--rootdir", str(tmp_path)]
    cmd += (["-x"] if stop_first else []) + (["-k", selection] if selection else [])
    result = subprocess.run(cmd + ["test_kit.py"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=600)
    failed = set(re.findall(r"^FAILED \S+::TestKit::(\w+)", result.stdout, re.MULTILINE))
    return result, failed


def summary(result) -> str:
    return (result.stdout[-4000:] + result.stderr[-2000:]).strip()
