"""Each source notebook has one source, its builder under tools/: the committed file must be what the builder
writes (rebuild with `python tools/build_round_notebook.py` / `python tools/build_notebooks.py`). And every
verdict the committed executed round notebooks print is one of the defined words."""
import re
import sys

import nbformat
import pytest

from deltalab.analysis.claims import is_verdict
from deltalab.runtime import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tools"))
import build_notebooks  # noqa: E402
import build_round_notebook  # noqa: E402


def _cells(nb):
    return [(c.cell_type, c.source, c.metadata.get("tags", []), c.get("id")) for c in nb.cells]


@pytest.mark.parametrize("builder", [build_round_notebook, build_notebooks], ids=lambda b: b.OUT.name)
def test_source_notebook_is_what_its_builder_writes(builder):
    committed = nbformat.read(builder.OUT, as_version=4)
    assert _cells(committed) == _cells(builder.build()), f"rebuild {builder.OUT.name} with tools/{builder.__name__}.py"


def test_source_notebooks_hold_no_logic():
    for builder in (build_round_notebook, build_notebooks):
        for cell in builder.build().cells:
            assert not re.search(r"^\s*(def|class) ", cell.source, re.M), cell.source


EXECUTED = sorted((REPO_ROOT / "outputs").glob("*/round_*.ipynb"))


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
