"""The rules of the layout (README, Architecture): backends, front ends and the kit import no
private core name; core modules import no framework at module level; a front end imports only
its own framework; no module is over about 500 lines and no function over about 80 lines of
code."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FRAMEWORKS = {"torch", "jax", "jaxlib", "tensorflow", "keras", "flax", "cupy"}
FRONT_ENDS = {
    ROOT / "multisampled" / "torch.py": "torch",
    ROOT / "multisampled" / "keras.py": "keras",
    ROOT / "multisampled" / "flax.py": "flax",
}
CORE = sorted(p for p in (ROOT / "multisampled").glob("*.py") if p not in FRONT_ENDS)
BACKENDS = sorted(p for p in (ROOT / "backends").glob("*.py") if p.name != "__init__.py")
KIT = sorted((ROOT / "conformance").glob("*.py"))


def _imports(path, top_level_only=False):
    """(module, names) of every import in ``path`` (module level only, if asked)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, ()
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, tuple(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            yield "." * node.level + (node.module or ""), tuple(a.name for a in node.names)


def _private_core(module, names):
    parts = module.split(".")
    if parts[0] != "multisampled":
        return []
    bad = [p for p in parts[1:] if p.startswith("_")]
    if module in ("multisampled", "multisampled.backends"):
        bad += [n for n in names if n.startswith("_") and module == "multisampled"]
    return bad


@pytest.mark.parametrize("path", BACKENDS + list(FRONT_ENDS) + KIT, ids=lambda p: p.name)
def test_outside_the_core_no_private_core_name_is_imported(path):
    found = [(m, n) for m, n in _imports(path) if _private_core(m, n)]
    assert not found, f"{path.relative_to(ROOT)} imports private core names: {found}"


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.name)
def test_core_modules_import_no_framework_at_module_level(path):
    found = [m for m, _ in _imports(path, top_level_only=True)
             if m.split(".")[0] in FRAMEWORKS]
    assert not found, f"{path.relative_to(ROOT)} imports {found} at module level"


@pytest.mark.parametrize("path, own", sorted(FRONT_ENDS.items()), ids=lambda v: str(v))
def test_a_front_end_imports_only_its_own_framework(path, own):
    others = {m.split(".")[0] for m, _ in _imports(path)} & FRAMEWORKS - {own}
    assert not others, f"{path.name} imports {sorted(others)}"
    backend_modules = {m for m, _ in _imports(path) if m.startswith("multisampled.backends")}
    assert backend_modules <= {f"multisampled.backends.{own}", "multisampled.backends"}


def test_the_rule_catches_a_private_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from multisampled import _rng\nimport multisampled._unique\n")
    assert [m for m, n in _imports(bad) if _private_core(m, n)] == ["multisampled",
                                                                   "multisampled._unique"]


# --------------------------------------------------------------------------- sizes

MAX_MODULE_LINES = 500
MAX_FUNCTION_CODE_LINES = 80
#: modules allowed past MAX_MODULE_LINES, with the reason
LONG_MODULES = {
    # the plugin contract: every Backend capability documented next to its portable default,
    # in one file (about 140 lines of code; the rest is the contract's documentation)
    "multisampled/plugin.py": 580,
}
SOURCES = sorted(p for folder in ("multisampled", "backends", "conformance")
                 for p in (ROOT / folder).rglob("*.py"))


def _code_lines(tree, lines):
    """Line numbers of code: not blank, not a comment, not a docstring."""
    docs = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            docs.update(range(body[0].lineno, body[0].end_lineno + 1))
    return {i for i, line in enumerate(lines, 1)
            if line.strip() and not line.strip().startswith("#") and i not in docs}


def _long_functions(path):
    text = path.read_text()
    tree = ast.parse(text)
    code = _code_lines(tree, text.splitlines())
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = len([i for i in code if node.lineno <= i <= node.end_lineno])
            if n > MAX_FUNCTION_CODE_LINES:
                yield f"{node.name} ({n} lines of code)"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_over_about_500_lines(path):
    name = str(path.relative_to(ROOT))
    limit = LONG_MODULES.get(name, MAX_MODULE_LINES)
    assert len(path.read_text().splitlines()) <= limit, f"{name}: split it along its jobs"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_function_is_over_about_80_lines_of_code(path):
    assert not list(_long_functions(path)), list(_long_functions(path))


def test_the_size_rules_catch_a_long_function(tmp_path):
    # the def line counts; the docstring, blank lines and comments do not
    body = "\n".join(f"    x{i} = {i}  # a comment" for i in range(MAX_FUNCTION_CODE_LINES))
    bad = tmp_path / "bad.py"
    bad.write_text(f'def f():\n    """A docstring.\n\n    More.\n    """\n\n{body}\n')
    assert list(_long_functions(bad)) == [f"f ({MAX_FUNCTION_CODE_LINES + 1} lines of code)"]
    bad.write_text(f'def f():\n    """A docstring."""\n' + "\n".join(
        f"    x{i} = {i}" for i in range(MAX_FUNCTION_CODE_LINES - 1)) + "\n\n    # the end\n")
    assert list(_long_functions(bad)) == []
