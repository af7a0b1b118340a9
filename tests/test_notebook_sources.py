"""Each source notebook has one source, its jupytext file ``notebooks/<name>.py``: the committed ``.ipynb`` must be
what ``tools/build_notebooks.py`` writes from it (rebuild with `python tools/build_notebooks.py`), and the source
compiles and has no unused name or undefined one (pyflakes). And every verdict the committed executed round
notebooks print is one of the defined words."""
import io
import re
import sys

import nbformat
import pytest

from deltalab.analysis.claims import is_verdict
from deltalab.runtime import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tools"))
import build_notebooks  # noqa: E402

NAMES = list(build_notebooks.SOURCES)


def _cells(nb):
    return [(c.cell_type, c.source, c.metadata.get("tags", []), c.get("id")) for c in nb.cells]


@pytest.mark.parametrize("name", NAMES)
def test_source_notebook_is_what_its_builder_writes(name):
    committed = nbformat.read(build_notebooks.target(name), as_version=4)
    assert _cells(committed) == _cells(build_notebooks.build(name)), \
        f"rebuild notebooks/{name}.ipynb with python tools/build_notebooks.py"
    assert committed.metadata == build_notebooks.build(name).metadata


@pytest.mark.parametrize("name", NAMES)
def test_source_notebooks_hold_no_logic(name):
    for cell in build_notebooks.build(name).cells:
        assert not re.search(r"^\s*(def|class) ", cell.source, re.M), cell.source


@pytest.mark.parametrize("name", NAMES)
def test_notebook_sources_are_lint_clean(name):
    """The source as Python: it compiles, and pyflakes finds nothing (an unused import, a name never defined)."""
    pyflakes = pytest.importorskip("pyflakes.api")
    from pyflakes.reporter import Reporter
    source = build_notebooks.SOURCES[name]
    out, err = io.StringIO(), io.StringIO()
    compile(source.read_text(), str(source), "exec")
    assert pyflakes.check(source.read_text(), str(source), Reporter(out, err)) == 0, out.getvalue() + err.getvalue()


def test_a_lint_problem_is_found():
    """The lint check can fail: a source with an unused import and an undefined name."""
    pyflakes = pytest.importorskip("pyflakes.api")
    from pyflakes.reporter import Reporter
    out = io.StringIO()
    assert pyflakes.check("import os\nprint(undefined_name)\n", "bad.py", Reporter(out, io.StringIO())) == 2


def test_site_roles_are_tags_of_the_round_notebook():
    """Every role the site reads (``deltalab.publish.site.ROLES``) is a tag ``site-<role>`` on exactly one cell of
    the round notebook's source: the site finds cells by tag only."""
    from deltalab.publish.site import ROLES
    tags = [t for cell in build_notebooks.build("round").cells for t in cell.metadata.get("tags", [])]
    for role in ROLES:
        assert tags.count(f"site-{role}") == 1, role


EXECUTED = sorted((REPO_ROOT / "outputs").glob("*/round_*.ipynb"))


@pytest.mark.parametrize("path", EXECUTED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_executed_round_notebooks_tag_each_site_role_once(path):
    """The site finds a round notebook's cells by tag only: every committed executed round notebook (the archived
    studies' too) has each role's tag on exactly one code cell."""
    from deltalab.publish.site import ROLES
    nb = nbformat.read(path, as_version=4)
    tags = [t for cell in nb.cells if cell.cell_type == "code" for t in cell.metadata.get("tags", [])]
    assert {role: tags.count(f"site-{role}") for role in ROLES} == dict.fromkeys(ROLES, 1)


@pytest.mark.parametrize("path", EXECUTED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_executed_round_notebooks_use_only_the_verdict_words(path):
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(o.get("data", {}).get("text/markdown", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.get("outputs", []))
    bullets = re.findall(r"^- \*\*(.+?)\*\*:", text, re.M)
    seed = re.findall(r"\*On the seed's own table: (.+?)\*", text)
    assert bullets, "no verdicts found"
    for word in bullets + [s for s in seed if s != "not in the seed table"]:
        assert is_verdict(word), word
