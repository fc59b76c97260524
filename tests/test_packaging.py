"""Packaging: the folder mapping installs `backends/` and `conformance/` under `multisampled`,
nothing else lands at top level, and the test run imports every module exactly once."""

import os
import pathlib
import subprocess
import sys
import zipfile

import pytest

import multisampled

ROOT = pathlib.Path(__file__).resolve().parents[1]
PROJECT_DIRS = ("multisampled", "backends", "conformance")  # the folders the wheel maps


def test_no_top_level_backends_or_conformance_modules_in_this_run():
    import multisampled.backends.numpy  # noqa: F401
    import multisampled.conformance  # noqa: F401

    assert "backends" not in sys.modules
    assert "conformance" not in sys.modules


def test_every_loaded_project_module_is_loaded_once():
    import multisampled.backends.numpy  # noqa: F401
    import multisampled.conformance  # noqa: F401

    by_file: dict[str, list[str]] = {}
    for name, mod in list(sys.modules.items()):
        f = getattr(mod, "__file__", None)
        if f and any(os.path.realpath(f).startswith(str(ROOT / d) + os.sep) for d in PROJECT_DIRS):
            by_file.setdefault(os.path.realpath(f), []).append(name)
    dupes = {f: names for f, names in by_file.items() if len(names) > 1}
    assert not dupes, f"modules imported twice under different names: {dupes}"
    # and the project's modules come from this checkout's folders, through the mapping
    assert pathlib.Path(multisampled.backends.numpy.__file__).parent.name == "backends"
    assert pathlib.Path(multisampled.conformance.__file__).parent.name == "conformance"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    pytest.importorskip("build")
    out = tmp_path_factory.mktemp("dist")
    r = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "-o", str(out), str(ROOT)],
        capture_output=True, text=True, cwd=tmp_path_factory.mktemp("cwd"),
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (whl,) = out.glob("multisampled-*.whl")
    return whl


def test_wheel_file_list(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert top == {"multisampled", f"multisampled-{multisampled.__version__}.dist-info"}, top
    for required in [
        "multisampled/__init__.py",
        "multisampled/plugin.py",
        "multisampled/backends/__init__.py",
        "multisampled/backends/numpy.py",
        "multisampled/backends/torch.py",
        "multisampled/conformance/__init__.py",
        "multisampled/conformance/reference/__init__.py",
    ]:
        assert required in names, f"{required} missing from the wheel"
    assert not [n for n in names if "/tests/" in n or n.startswith("tests/")]
    assert not [n for n in names if n.rsplit("/", 1)[-1].startswith("test_")]
    # every sub-package of the source tree made it into the wheel (no explicit package list)
    for folder, pkg in (("backends", "multisampled/backends"), ("conformance", "multisampled/conformance")):
        for py in (ROOT / folder).rglob("*.py"):
            if not (py.parent / "__init__.py").is_file():
                continue  # not a package (golden/ holds the scripts that made its data)
            rel = py.relative_to(ROOT / folder).as_posix()
            assert f"{pkg}/{rel}" in names, f"{folder}/{rel} not in the wheel"
    ep = zipfile.ZipFile(wheel).read(
        f"multisampled-{multisampled.__version__}.dist-info/entry_points.txt"
    ).decode()
    assert "[multisampled.backends]" in ep and "multisampled.backends.numpy" in ep
    assert "pytest11" not in ep  # the conformance pytest plugin is opt-in


def test_installed_wheel_puts_nothing_named_backends_or_conformance_at_top_level(wheel, tmp_path):
    target = tmp_path / "site"
    r = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q",
         "--target", str(target), str(wheel)],
        capture_output=True, text=True,
    )
    assert r.returncode == 0, r.stderr
    entries = {p.name for p in target.iterdir()}
    assert "backends" not in entries and "conformance" not in entries, entries
    assert "multisampled" in entries
    # the installed copy works on its own and finds its built-in plugins through entry points
    code = (
        "import sys, multisampled; "
        "assert multisampled.__file__.startswith(sys.argv[1]), multisampled.__file__; "
        "print(sorted(b.name for b in multisampled.backends()))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(target)], capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(target)}, cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert "numpy" in r.stdout
