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
ms.sampled_softmax_loss(1, 2, 3, 4, "16", 6)
ms.nce_loss(1, 2, 3, 4, 5, 6, remove_accidental_hits="yes")
logits: int = ms.compute_sampled_logits(1, 2, 3, 4, 5, 6)
ms.sampled_softmax_with_cross_entropy(1, 2, 3, seed=None)
with ms.use_backend(3):
    pass
ms.uniform_candidate_sampler(1, "1", 2, True, 10)
drawn: ms.CandidateSamples = ms.learned_unigram_candidate_sampler(
    1, 1, 2, True, 10, state=ms.learned_unigram_state(10))
'''

# what mypy must report on MISUSE: each line misuses one annotated parameter or result
MISUSE_ERRORS = [
    'expression has type "Backend", variable has type "int"',
    'Unexpected keyword argument "no_such_argument"',
    'Argument 5 to "sampled_softmax_loss" has incompatible type "str"; expected "int"',
    'Argument "remove_accidental_hits" to "nce_loss" has incompatible type "str"; expected "bool"',
    'expression has type "tuple[Any, Any]", variable has type "int"',
    'Argument "seed" to "sampled_softmax_with_cross_entropy" has incompatible type "None"; '
    'expected "int"',
    'Argument 1 to "use_backend" has incompatible type "int"; expected "str"',
    'Argument 2 to "uniform_candidate_sampler" has incompatible type "str"; expected "int"',
    'expression has type "tuple[CandidateSamples, LearnedUnigramState]", variable has type '
    '"CandidateSamples"',
]


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


#: annotated public modules whose bodies mypy checks too (with the configuration in
#: pyproject.toml, check_untyped_defs included); the other annotated modules are read for their
#: signatures only (follow_imports = "silent")
CHECKED_MODULES = ["multisampled/_types.py", "multisampled/v1.py", "multisampled/_paddle.py",
                   "multisampled/_hits.py", "multisampled/_math.py", "multisampled/_unique.py",
                   "multisampled/_distributions.py", "multisampled/_checks.py"]


def test_mypy_passes_on_the_annotated_public_modules(tmp_path):
    r = _mypy(["--config-file", str(ROOT / "pyproject.toml"), "--cache-dir",
               str(tmp_path / "cache"), *CHECKED_MODULES], cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"Success: no issues found in {len(CHECKED_MODULES)} source files" in r.stdout


def test_the_typed_usage_calls_only_annotated_functions(tmp_path):
    """``--disallow-untyped-calls``: every function typing_usage.py calls has annotations, so
    mypy checks its arguments rather than accepting anything."""
    r = _mypy(["--config-file", str(ROOT / "pyproject.toml"), "--cache-dir",
               str(tmp_path / "cache"), "--disallow-untyped-calls", "tests/typing_usage.py"],
              cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


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
    for error in MISUSE_ERRORS:
        assert error in r.stdout, (error, r.stdout)
    assert f"Found {len(MISUSE_ERRORS)} errors in 1 file" in r.stdout, r.stdout
    assert r.returncode == 1


# --------------------------------------------------------------------------- the public API's
# annotations, read from the sources, and docstrings, read from the imported modules (after
# multisampled._docs filled their placeholders); no framework is imported

#: file -> the public names it defines that are annotated and documented (None: its
#: ``__all__``, or every top-level name without a leading underscore)
ANNOTATED = {
    "multisampled/_tf_losses.py": None,
    "multisampled/v1.py": None,
    "multisampled/_paddle.py": {"sampled_softmax_with_cross_entropy"},
    "multisampled/_registry.py": {"BackendInfo", "get_backend", "env_backend_name",
                                  "use_backend"},
    "multisampled/layers.py": None,
    "multisampled/_layer_sampler.py": None,
    "multisampled/_layer_step.py": None,
    "multisampled/samplers.py": None,
    "multisampled/_learned.py": None,
    "multisampled/_sampling.py": {"CandidateSamples"},
    "multisampled/torch.py": {"SampledSoftmaxLoss"},
    "multisampled/keras.py": None,
    "multisampled/flax.py": None,
    "conformance/base.py": {"BackendConformance"},
    "conformance/_kit.py": None,
    "conformance/testing.py": None,
    "conformance/strategies.py": None,
    "conformance/_primitives.py": None,
    "conformance/_examples.py": None,
    "conformance/pytest_plugin.py": {"backend_names", "register_profiles"},
    "conformance/reference/_distributions.py": None,
    "conformance/reference/_paddle.py": None,
    "conformance/reference/_samplers.py": None,
    "conformance/reference/_tf.py": None,
    "multisampled/_hits.py": {"compute_accidental_hits", "hit_mask", "last_occurrence"},
    "multisampled/_math.py": {"compute_dtype", "logsumexp", "nce", "sampled_logit_parts",
                              "sampled_softmax", "sigmoid_terms", "softmax_cross_entropy"},
    "multisampled/_checks.py": {"check_bool"},
    "multisampled/_rng.py": {"Generator", "cdf_thresholds", "reset_streams", "search_cdf",
                             "threefry2x32", "uniform_int"},
    "multisampled/_unique.py": {"block_bound", "block_size", "expected_count",
                                "first_new_positions", "portable_first_distinct"},
    "multisampled/_distributions.py": {"table_plan"},
    "multisampled/plugin.py": None,
}

#: importing these imports their framework: their docstrings are read from the sources
FRAMEWORK_FRONT_ENDS = {"multisampled/torch.py", "multisampled/keras.py", "multisampled/flax.py"}

SECTION = re.compile(r"^(Args|Attributes|Returns|Raises):$", flags=re.M)


def _sections(doc: str) -> dict:
    """Google-style sections of a cleaned docstring: title -> its text."""
    marks = list(SECTION.finditer(doc))
    return {m.group(1): doc[m.end():marks[i + 1].start() if i + 1 < len(marks) else None]
            for i, m in enumerate(marks)}


def _entries(section: str) -> set:
    """The names an Args/Attributes/Raises section describes (``name:`` at its indent)."""
    return set(re.findall(r"^ {4}(\*{0,2}\w+(?:\.\w+)*):", section, flags=re.M))


def _public_defs(path: str, names):
    import ast

    tree = ast.parse((ROOT / path).read_text())
    if names is None:
        names = next((set(ast.literal_eval(n.value)) for n in tree.body
                      if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "__all__"),
                     None)
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            continue
        if any(getattr(d, "id", None) == "overload" for d in getattr(node, "decorator_list", [])):
            continue  # a typing.overload stub: the implementation carries the docstring
        if (node.name.startswith("_") if names is None else node.name not in names):
            continue
        yield node


def _params(fn) -> list:
    """The parameters a caller passes: not ``self``/``cls``, nor the ``draw`` of a hypothesis
    ``@st.composite`` strategy."""
    a = fn.args
    params = [*a.posonlyargs, *a.args, *a.kwonlyargs]
    composite = any(getattr(d, "attr", None) == "composite" for d in fn.decorator_list)
    if params and (params[0].arg in ("self", "cls") or (composite and params[0].arg == "draw")):
        params = params[1:]
    named = [(p.arg, p.annotation) for p in params]
    if a.vararg:
        named.append(("*" + a.vararg.arg, a.vararg.annotation))
    if a.kwarg:
        named.append(("**" + a.kwarg.arg, a.kwarg.annotation))
    return named


def _raised(fn) -> set:
    """The exception classes a function raises by name in its own body."""
    import ast

    out = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(exc, ast.Name) and exc.id[0].isupper():
                out.add(exc.id)
    return out


def _runtime_module(path: str):
    """The imported module of ``path``, or None for a framework front end."""
    import importlib
    import importlib.util

    if path in FRAMEWORK_FRONT_ENDS:
        return None
    parts = pathlib.PurePosixPath(path).with_suffix("").parts
    if parts[0] == "multisampled":
        return importlib.import_module(".".join(parts))
    if parts[0] == "conformance":  # installed as multisampled.conformance
        return importlib.import_module(".".join(("multisampled", *parts)))
    spec = importlib.util.spec_from_file_location(parts[-1], ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _runtime_doc(obj) -> str:
    """The docstring Python shows for ``obj`` (``inspect.getdoc`` without its fallback to a
    base class's docstring, which the source check would not have accepted either)."""
    import inspect

    return inspect.cleandoc(getattr(obj, "__doc__", None) or "")


def _problems(path: str, names) -> list:
    import ast
    import inspect

    out = []
    module = _runtime_module(path)
    for node in _public_defs(path, names):
        where = f"{path}: {node.name}"
        obj = None if module is None else getattr(module, node.name, None)
        if module is not None and obj is None:
            out.append(f"{where}: not found in the imported module")
            continue
        doc = (ast.get_docstring(node) or "") if obj is None else _runtime_doc(obj)
        if not doc:
            out.append(f"{where}: no docstring")
            continue
        sections = _sections(doc)
        if isinstance(node, ast.ClassDef):
            methods = [n for n in node.body if isinstance(n, ast.FunctionDef)
                       and (not n.name.startswith("_") or n.name in ("__init__", "__call__"))]
            init = next((m for m in methods if m.name == "__init__"), None)
            fields = [n.target.id for n in node.body if isinstance(n, ast.AnnAssign)]
            if fields and not methods:  # a NamedTuple or dataclass record
                missing = set(fields) - _entries(sections.get("Attributes", ""))
                if missing:
                    out.append(f"{where}: Attributes does not describe {sorted(missing)}")
            if init is not None:
                out += _function_problems(where, init, sections, doc_of_class=True)
            for m in methods:
                if m.name == "__init__":
                    continue
                mdoc = ((ast.get_docstring(m) or "") if obj is None else
                        _runtime_doc(inspect.getattr_static(obj, m.name)))
                if not mdoc:
                    out.append(f"{where}.{m.name}: no docstring")
                    continue
                out += _function_problems(f"{where}.{m.name}", m, _sections(mdoc))
        else:
            out += _function_problems(where, node, sections)
    return out


def _function_problems(where: str, fn, sections: dict, doc_of_class: bool = False) -> list:
    import ast

    out = []
    params = _params(fn)
    for name, annotation in params:
        if annotation is None:
            out.append(f"{where}: parameter {name} has no annotation")
    if fn.returns is None and not doc_of_class:
        out.append(f"{where}: no return annotation")
    described = _entries(sections.get("Args", ""))
    missing = [n for n, _ in params if n not in described]
    if missing:
        out.append(f"{where}: Args does not describe {missing}")
    returns_none = isinstance(fn.returns, ast.Constant) and fn.returns.value is None
    is_property = any(getattr(d, "id", None) == "property" for d in fn.decorator_list)
    if not (doc_of_class or returns_none or is_property) and "Returns" not in sections:
        out.append(f"{where}: no Returns section")
    raised = _raised(fn) - _entries(sections.get("Raises", ""))
    if raised:
        out.append(f"{where}: Raises does not list {sorted(raised)}, which it raises")
    return out


@pytest.mark.parametrize("path", sorted(ANNOTATED))
def test_public_functions_are_annotated_and_documented(path):
    """Every public function and class of the annotated modules: each parameter and return
    annotated, and a Google-style docstring whose Args describe every parameter, with Returns
    unless it returns None, and whose Raises list every exception its body raises by name."""
    assert list(_public_defs(path, ANNOTATED[path])), f"{path}: no public names found"
    assert _problems(path, ANNOTATED[path]) == []


def test_the_docstring_check_finds_what_is_missing(tmp_path, monkeypatch):
    """The check above can fail: an unannotated parameter, an undescribed one, a missing
    Returns and an unlisted exception are each reported."""
    bad = tmp_path / "bad.py"
    bad.write_text('''
def f(a, b: int) -> int:
    """One line.

    Args:
        b: Described.
    """
    raise ValueError("no")


def g(c: int) -> int:
    """Its Args are filled in at import, as multisampled._docs does: the check reads them there.

    Args:
        {c}

    Returns:
        ``c``.
    """
    return c


g.__doc__ = g.__doc__.replace("{c}", "c: Described.")
''')
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    problems = _problems("bad.py", None)
    assert problems == [
        "bad.py: f: parameter a has no annotation",
        "bad.py: f: Args does not describe ['a']",
        "bad.py: f: no Returns section",
        "bad.py: f: Raises does not list ['ValueError'], which it raises",
    ]
