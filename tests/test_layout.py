"""The import rules of the layout (README, Architecture): backends, front ends and the kit import
no private core name; core modules import no framework at module level; a front end imports
only its own framework."""

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
