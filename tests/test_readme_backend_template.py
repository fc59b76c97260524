"""The README's "Write a backend" template passes the conformance kit as printed.

The template's module is taken from the README verbatim. Its framework, ``mylib``, is stood in
for by array-api-strict (an Array API namespace whose array type is called ``ndarray``), with
distribution metadata so that the template's default ``version()`` finds it; the plugin is
declared through a ``multisampled.backends`` entry point, as the README's step 2 says, and the
whole kit runs on it in a subprocess.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

MYLIB = '''"""array-api-strict under the name of the README's framework."""
from array_api_strict import *  # noqa: F401,F403
from array_api_strict import __array_api_version__, __array_namespace_info__  # noqa: F401
from array_api_strict._array_object import Array as ndarray  # noqa: F401
'''

KIT_TEST = """
from multisampled.conformance import BackendConformance


class TestMylib(BackendConformance):
    backend = "mylib"
"""


def template() -> str:
    """The README's plugin module, exactly as printed."""
    section = README.split("### 1. The module", 1)[1].split("### 2.", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the template section has one python block"
    return blocks[0]


def _dist_info(site: pathlib.Path, name: str, entry_points: str = "") -> None:
    info = site / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    if entry_points:
        (info / "entry_points.txt").write_text(entry_points)


@pytest.mark.slow
def test_the_readme_backend_template_passes_the_kit(tmp_path):
    pytest.importorskip("array_api_strict")
    site = tmp_path / "site"
    (site / "multisampled_mylib").mkdir(parents=True)
    (site / "multisampled_mylib" / "__init__.py").write_text(template())
    (site / "mylib.py").write_text(MYLIB)
    _dist_info(site, "mylib")
    _dist_info(site, "multisampled_mylib",
               '[multisampled.backends]\nmylib = multisampled_mylib\n')
    (tmp_path / "test_mylib_conformance.py").write_text(KIT_TEST)
    env = dict(os.environ, PYTHONPATH=str(site), HYPOTHESIS_PROFILE="quick")
    env.pop("MULTISAMPLED_BACKEND", None)
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p",
         "multisampled.conformance.pytest_plugin", "--rootdir", str(tmp_path),
         "test_mylib_conformance.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, (r.stdout[-6000:] + r.stderr[-3000:])
    assert re.search(r"\d+ passed", r.stdout), r.stdout[-2000:]
    assert "mylib 1.0" in r.stdout, "the kit's header names the backend and its version"
