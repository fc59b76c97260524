"""The documentation builds offline with every warning as an error, documents the public API,
and shows every section of the README."""

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    pytest.importorskip("sphinx", reason="sphinx is not installed (the docs extra installs it)")
    out = tmp_path_factory.mktemp("html")
    doctrees = tmp_path_factory.mktemp("doctrees")
    r = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(doctrees), str(ROOT / "docs"), str(out)],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert r.returncode == 0, (
        "sphinx-build -W failed (the docs extra installs what it needs: "
        f"pip install -e '.[docs]'):\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    )
    return out


def _ids(page: pathlib.Path) -> set[str]:
    return set(re.findall(r'id="([^"]+)"', page.read_text()))


def test_api_reference_documents_every_public_name(html):
    import multisampled
    import multisampled.conformance
    import multisampled.plugin

    ids = _ids(html / "api.html")
    modules = {"v1", "kernels", "backends"}
    expected = {f"multisampled.{n}" for n in multisampled.__all__ if n not in modules}
    expected |= {f"module-multisampled.{n}" for n in modules}
    expected |= {f"multisampled.plugin.{n}" for n in multisampled.plugin.__all__}
    expected |= {f"multisampled.conformance.{n}" for n in multisampled.conformance.__all__}
    expected |= {"module-multisampled.torch", "module-multisampled.plugin",
                 "module-multisampled.layers"}
    expected |= {f"multisampled.kernels.{n}" for n in multisampled.kernels.__all__}
    try:
        import multisampled.torch
    except ImportError:
        pass
    else:
        expected |= {f"multisampled.torch.{n}" for n in multisampled.torch.__all__}
    assert not expected - ids, sorted(expected - ids)


def test_every_readme_section_is_on_a_page(html):
    readme = (ROOT / "README.md").read_text()
    text = "".join(p.read_text() for p in html.glob("*.html"))
    for title in re.findall(r"^## (.+)$", readme, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        assert f'id="{slug}"' in text, title


def test_links_between_readme_sections_point_at_their_pages(html):
    quickstart = (html / "quickstart.html").read_text()
    assert 'href="pytorch.html#pytorch"' in quickstart
    assert 'href="jax.html#jax"' in quickstart


def test_the_command_line_page_documents_every_command(html):
    text = (html / "cli.html").read_text()
    for command in ("multisampled --version", "multisampled backends", "multisampled check",
                    "multisampled bench"):
        assert command in text, command
