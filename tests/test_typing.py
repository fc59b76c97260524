"""Type checking: the package is typed (``py.typed``), and mypy passes on a typed use of the
public API and on the command line modules with the configuration in pyproject.toml."""

import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

MISUSE = '''\
import multisampled as ms

count: int = ms.get_backend("numpy")
ms.sampled_softmax_loss(1, 2, 3, 4, 5, 6, no_such_argument=1)
'''


def _mypy(args, cwd, env=None):
    pytest.importorskip("mypy", reason="mypy is not installed (pip install 'multisampled[test]')")
    return subprocess.run(
        [sys.executable, "-m", "mypy", *args], capture_output=True, text=True, cwd=cwd, env=env,
    )


PYPROJECT = (ROOT / "pyproject.toml").read_text()


def _table(name: str) -> str:
    """The text of one ``[table]`` of pyproject.toml (up to the next table)."""
    match = re.search(rf"^\[{re.escape(name)}\]\n(.*?)(?=^\[|\Z)", PYPROJECT, flags=re.M | re.S)
    assert match, f"pyproject.toml has no [{name}]"
    return match.group(1)


def test_py_typed_marker_is_shipped_as_package_data():
    assert (ROOT / "multisampled" / "py.typed").is_file()
    assert re.search(r'^multisampled = \[[^\]]*"py\.typed"', _table("tool.setuptools.package-data"),
                     flags=re.M)


def test_mypy_passes_on_the_typed_usage_and_the_command_line(tmp_path):
    files = re.search(r"^files = \[(.*?)\]", _table("tool.mypy"), flags=re.M | re.S).group(1)
    for path in ("multisampled/cli.py", "multisampled/_cli_check.py", "multisampled/_cli_bench.py",
                 "multisampled/_bench.py", "tests/typing_usage.py"):
        assert f'"{path}"' in files, path
    r = _mypy(["--cache-dir", str(tmp_path / "cache")], cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Success: no issues found in 5 source files" in r.stdout


def test_an_installed_copy_is_typed_through_its_marker(tmp_path):
    """Outside the checkout, as in site-packages: mypy reads the types only because of py.typed,
    and then reports a misuse of the public API."""
    site = tmp_path / "site"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "multisampled", site / "multisampled", ignore=ignore)
    for folder in ("backends", "conformance"):  # where the wheel puts them
        shutil.copytree(ROOT / folder, site / "multisampled" / folder, ignore=ignore)
    (tmp_path / "misuse.py").write_text(MISUSE)
    env = {**os.environ, "PYTHONPATH": str(site)}
    r = _mypy(["--config-file", str(ROOT / "pyproject.toml"), "--cache-dir",
               str(tmp_path / "cache"), "misuse.py"], cwd=tmp_path, env=env)
    assert "import-untyped" not in r.stdout, r.stdout
    assert 'expression has type "Backend", variable has type "int"' in r.stdout, r.stdout
    assert 'Unexpected keyword argument "no_such_argument"' in r.stdout, r.stdout
    assert r.returncode == 1
