"""The command line: ``multisampled backends`` and ``multisampled check``."""

import json
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from multisampled import cli


def run(*args, env=None):
    # outside the checkout, so the installed package is imported, not the source folder
    return subprocess.run(
        [sys.executable, "-m", "multisampled", *args], capture_output=True, text=True, env=env,
        cwd=tempfile.gettempdir(),
    )


def test_backends_lists_numpy_with_version_and_marks_the_default(capsys):
    assert cli.main(["backends"]) == 0
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if " numpy " in f" {l} ")
    assert line.startswith("*") and np.__version__ in line and "cpu" in line


def test_backends_json():
    r = run("backends", "--json")
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert rows["numpy"]["available"] and rows["numpy"]["devices"] == ["cpu"]


def test_check_passes_on_every_installed_backend():
    r = run("check", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["passed"]
    backends = {name for row in report["matrix"].values() for name in row}
    assert "numpy" in backends
    assert "sampled_softmax_loss" in report["matrix"]
    assert all(status == "pass" for row in report["matrix"].values() for status in row.values())


def test_check_reports_a_wrong_backend_as_failed(monkeypatch):
    """A backend whose results differ from NumPy's must show as FAIL, not pass."""
    pytest.importorskip("torch")
    import multisampled as ms

    real = ms.sampled_softmax_loss

    def off_by_a_bit(*args, **kwargs):
        out = real(*args, **kwargs)
        return out + 1e-3 if type(out).__module__.startswith("torch") else out

    monkeypatch.setattr(ms, "sampled_softmax_loss", off_by_a_bit)
    matrix, ok = cli.run_check(["numpy", "torch"])
    assert not ok
    assert matrix["sampled_softmax_loss"]["numpy"] == "pass"
    assert matrix["sampled_softmax_loss"]["torch"].startswith("FAIL")


def test_check_unknown_backend_is_a_clear_error():
    r = run("check", "--backend", "nosuch")
    assert r.returncode == 2
    assert "nosuch" in r.stderr and "numpy" in r.stderr


def test_env_var_with_unknown_backend_is_reported(monkeypatch):
    import os

    r = run("backends", env={**os.environ, "MULTISAMPLED_BACKEND": "nosuch"})
    assert r.returncode == 2
    assert "MULTISAMPLED_BACKEND='nosuch'" in r.stderr
