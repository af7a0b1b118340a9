"""The notebooks execute end to end at smoke scale (papermill) into a temporary folder and a temporary
results store, with no error output; the executed copies clean up (deltalab.nbclean).

Kept small: two tasks (the quickest at smoke), and both notebooks share one store, so the round reuses the
baselines that run_variant trained. The strict determinism check of the tagged cells is nbval's job in CI
(see tools/build_round_notebook.py's docstring and the project README).
"""
import os
import re
from pathlib import Path

import nbformat
import papermill
import pytest

from deltalab import nbclean
from deltalab.analysis.claims import is_verdict
from deltalab.runtime import REPO_ROOT

TASKS = "memorization,noisy-in-context-recall"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """One results store for the module (DELTALAB_RESULTS, inherited by the kernels), restored afterwards."""
    root = tmp_path_factory.mktemp("notebooks")
    old = os.environ.get("DELTALAB_RESULTS")
    os.environ["DELTALAB_RESULTS"] = str(root / "results")
    yield root
    if old is None:
        os.environ.pop("DELTALAB_RESULTS", None)
    else:
        os.environ["DELTALAB_RESULTS"] = old


def _execute(name: str, out: Path, parameters: dict) -> nbformat.NotebookNode:
    papermill.execute_notebook(str(REPO_ROOT / "notebooks" / name), str(out), parameters=parameters,
                               cwd=str(out.parent), kernel_name="python3", progress_bar=False)
    nbclean.clean(out)
    nb = nbformat.read(out, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, [f"{e.ename}: {e.evalue}" for e in errors]
    text = out.read_text()
    assert str(REPO_ROOT) not in text and "<IPython.core.display.Image object>" not in text
    assert "start_time" not in text
    return nb


def _markdown(nb) -> str:
    return "\n".join(o.get("data", {}).get("text/markdown", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.outputs)


def test_run_variant_notebook(workdir):
    nb = _execute("run_variant.ipynb", workdir / "run_variant.ipynb",
                  {"variant": "l2_norm_error", "scale": "smoke", "tasks": TASKS,
                   "figures_dir": str(workdir / "figures")})
    assert any(p.suffix == ".png" for p in (workdir / "figures").iterdir())
    text = _markdown(nb)
    assert "**Memorize**: l2_norm_error scores" in text  # the row's one display name, its short name
    assert "l2_normalized_error_update" not in text


def test_round_notebook(workdir):
    figures = workdir / "figures_round_1"
    nb = _execute("round.ipynb", workdir / "round_1.ipynb",
                  {"round_file": "params/rounds/round_1.yaml", "scale": "smoke", "tasks": TASKS,
                   "figures_dir": str(figures)})
    names = sorted(p.name for p in figures.iterdir())
    assert {f"round_1_{k}.png" for k in ("heatmap", "settings", "reproduced", "curves")} <= set(names)
    assert not any("cost" in n for n in names)  # no bench report given: no cost figure
    text = _markdown(nb)
    assert "at scale `smoke`, 2 of 6 tasks" in text.lower()  # a sentence may open with it
    assert "success criteria of `rmsprop_state`" in text
    verdicts = re.findall(r"^- \*\*(.+?)\*\*:", text, re.M)
    assert verdicts and all(is_verdict(v) for v in verdicts), verdicts
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) == len(names)
