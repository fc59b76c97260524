"""A third-party backend, installed the way a CuPy or MLX author would ship one, passes the kit.

``tests/external_backend`` is a separate distribution (package ``multisampled_strict``) that
registers the backend "strict" (array-api-strict arrays) through the ``multisampled.backends``
entry point, using only ``multisampled.plugin``. It is installed into a temporary directory and
the whole conformance kit runs on it in a subprocess with that directory on ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "external_backend")

KIT_TEST = """
from multisampled.conformance import BackendConformance


class TestStrict(BackendConformance):
    backend = "strict"
"""

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The distribution built and installed into a temporary ``--target`` directory."""
    pytest.importorskip("array_api_strict")
    root = tmp_path_factory.mktemp("strict")
    source = root / "src"
    # build from a copy: setuptools leaves build/ and *.egg-info beside the sources
    shutil.copytree(SOURCE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = root / "site"
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
           "--no-index", "--quiet", "--target", str(target), str(source)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return target


def _env(target):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(target)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.pop("MULTISAMPLED_BACKEND", None)
    env["HYPOTHESIS_PROFILE"] = "quick"
    return env


def test_entry_point_registers_strict(installed, tmp_path):
    code = "import multisampled; print(sorted(b.name for b in multisampled.backends()))"
    result = subprocess.run([sys.executable, "-c", code], env=_env(installed), cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "'strict'" in result.stdout, result.stdout


def test_conformance_kit_passes_on_strict(installed, tmp_path):
    (tmp_path / "test_strict.py").write_text(KIT_TEST)
    # not -q: a quiet run prints no report header, and the header is what must name "strict"
    cmd = [sys.executable, "-m", "pytest", "-p", "multisampled.conformance.pytest_plugin",
           "-p", "no:cacheprovider", "--rootdir", str(tmp_path), "test_strict.py"]
    result = subprocess.run(cmd, cwd=tmp_path, env=_env(installed), capture_output=True,
                            text=True, timeout=900)
    output = result.stdout[-6000:] + result.stderr[-2000:]
    assert "strict" in result.stdout.split("collect")[0], f"header lacks the backend:\n{output}"
    assert result.returncode == 0, output
    assert " passed" in result.stdout, output
