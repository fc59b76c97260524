"""Sphinx configuration: the API reference from docstrings, the guide from the README.

Each guide page holds a marker line ``<!-- readme-section: TITLE -->`` that is replaced, as
the page is read, by the README's level-2 section of that title (headings raised one level,
links to other sections pointed at their pages). Every README section must appear on some
page.
The build needs no network: no intersphinx, no remote images.
"""

from __future__ import annotations

import pathlib
import re
import sys

from sphinx.util import logging

DOCS = pathlib.Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS))

import multisampled  # noqa: E402

project = "multisampled"
author = "the multisampled authors"
copyright = "the multisampled authors"
release = version = multisampled.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# the docstrings write TF-style signatures in their first line and plain prose after it
autodoc_docstring_signature = True
autodoc_typehints = "none"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_warningiserror = False
napoleon_google_docstring = True
napoleon_numpy_docstring = True
# plugin.Backend lists its fields Google-style under these two headings
napoleon_custom_sections = [("Required", "params_style"), ("Optional", "params_style")]
nitpicky = False
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]
suppress_warnings = [
    # names re-exported under two paths (multisampled.x and multisampled.v1.x, ...)
    "ref.python",
]

try:
    import pydata_sphinx_theme  # noqa: F401
except ImportError:
    html_theme = "alabaster"
else:
    html_theme = "pydata_sphinx_theme"
    html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
html_title = f"multisampled {release}"
html_static_path: list[str] = []

_log = logging.getLogger("multisampled.docs")
MARKER = re.compile(r"^<!-- readme-section: (.+?) -->$", re.M)
INTRO = "(introduction)"


def _sections(text: str) -> dict[str, str]:
    """Level-2 sections of a Markdown text by title; the text before the first one as INTRO."""
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    out = {INTRO: parts[0].split("\n", 1)[1] if parts[0].startswith("# ") else parts[0]}
    for title, body in zip(parts[1::2], parts[2::2]):
        out[title.strip()] = f"## {title.strip()}\n{body}"
    return out


README = _sections((ROOT / "README.md").read_text(encoding="utf-8"))


def _slug(title: str) -> str:
    """GitHub's (and myst_heading_anchors') anchor of a heading."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def _pages() -> dict[str, list[str]]:
    """docname -> the section titles its markers ask for."""
    pages = {}
    for path in DOCS.glob("*.md"):
        if path.name not in exclude_patterns:
            pages[path.stem] = MARKER.findall(path.read_text(encoding="utf-8"))
    return pages


PAGES = _pages()


def _anchor_pages() -> dict[str, str]:
    """Anchor of every README heading -> the docname of the page that shows it."""
    out = {}
    for docname, titles in PAGES.items():
        for title in titles:
            body = README.get(title, "")
            for heading in re.findall(r"^#{2,6} (.+)$", body, flags=re.M):
                out[_slug(heading)] = docname
    return out


ANCHORS = _anchor_pages()


def _section_text(title: str, docname: str) -> str:
    body = README.get(title)
    if body is None:
        _log.warning(f"{docname}: README.md has no section {title!r}", type="multisampled")
        return ""
    if title != INTRO:
        body = re.sub(r"^#(#+) ", r"\1 ", body, flags=re.M)  # ## -> #, ### -> ##

    def link(m: re.Match) -> str:
        target = ANCHORS.get(m.group(2))
        if target is None or target == docname:
            return m.group(0)
        return f"]({target}.md#{m.group(2)})"

    return re.sub(r"\]\((#([\w\-]+))\)", link, body)


SECTION_WITH_REMARK = re.compile(r"^(\s*)(\w[\w ]*) \((.+)\):\s*$")


def _split_section_remarks(app, what, name, obj, options, lines: list[str]) -> None:
    """``Optional (remark):`` -> a paragraph ``Optional: remark.`` and the heading ``Optional:``,
    so that napoleon recognises the heading (it takes words and spaces only)."""
    out: list[str] = []
    for line in lines:
        m = SECTION_WITH_REMARK.match(line)
        if m:
            indent, title, remark = m.groups()
            out += [f"{indent}{title}: {remark}.", "", f"{indent}{title}:"]
        else:
            out.append(line)
    lines[:] = out


def _described_fields() -> set[int]:
    """The field accessors of the package's NamedTuples whose docstring describes the fields in
    an ``Attributes:`` section (napoleon renders that section as the fields' descriptions)."""
    out: set[int] = set()
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] != "multisampled":
            continue
        for cls in vars(module).values():
            if (isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields")
                    and "Attributes:" in (cls.__doc__ or "")):
                out.update(id(cls.__dict__[field]) for field in cls._fields)
    return out


def _skip_described_fields(app, what, name, obj, skip, options):
    """Leave out a NamedTuple field (its docstring is only "Alias for field number N") when the
    class's ``Attributes:`` section describes it: documented twice, Sphinx would warn."""
    if (what == "class" and (getattr(obj, "__doc__", None) or "").startswith("Alias for field")
            and id(obj) in _described_fields()):
        return True
    return None


def _fill_readme_sections(app, docname: str, source: list[str]) -> None:
    source[0] = MARKER.sub(lambda m: _section_text(m.group(1), docname), source[0])


def _check_every_section_is_shown(app, env) -> None:
    shown = {t for titles in PAGES.values() for t in titles}
    for title in README:
        if title not in shown:
            _log.warning(f"README.md section {title!r} is on no docs page", type="multisampled")


def setup(app):
    app.connect("autodoc-process-docstring", _split_section_remarks, priority=400)
    app.connect("autodoc-skip-member", _skip_described_fields)
    app.connect("source-read", _fill_readme_sections)
    app.connect("env-updated", _check_every_section_is_shown)
    return {"parallel_read_safe": True}
