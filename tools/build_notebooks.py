"""The one command that builds the source notebooks: ``python tools/build_notebooks.py`` writes each
``notebooks/<name>.ipynb`` (unexecuted) from its jupytext source ``notebooks/<name>.py`` (py:percent: ``# %%``
starts a code cell, ``# %% [markdown]`` a Markdown one, ``tags=[...]`` its tags). tests/test_notebook_sources.py
checks that each committed ``.ipynb`` is what this writes.

The notebooks hold no logic (no def/class): each cell calls ``deltalab`` and shows what it returns. Cells tagged
``nbval-check-output`` show only numbers and sentences that are deterministic on CPU for a seed (tables, verdicts);
training counts, figures and paths are never tagged. ``parameters`` marks papermill's parameters cell;
``site-<role>`` names a round notebook's cell for ``deltalab.publish.site``, which finds cells by tag only.

Executing a round and checking determinism (CI): papermill into a temporary folder with store A, clean, then
nbval re-executes the executed copies with a fresh store B (so everything is trained again) and compares the
tagged cells strictly. The injected parameters travel with the executed copy; the store does not (it comes
from DELTALAB_RESULTS, never from a parameter, so that nbval's run trains afresh):

    A=$(mktemp -d); B=$(mktemp -d)
    DELTALAB_RESULTS=$A/results papermill notebooks/round.ipynb $A/round_1.ipynb \\
        -p round_file params/rounds/round_1.yaml -p scale smoke -p figures_dir $A/figures
    python -m deltalab.publish.nbclean $A/round_1.ipynb
    DELTALAB_RESULTS=$B/results pytest --nbval-lax -p no:cacheprovider $A/round_1.ipynb
"""
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SOURCES = {"round": NOTEBOOKS / "round.py", "run_variant": NOTEBOOKS / "run_variant.py"}
KERNEL = {"display_name": "Python 3", "language": "python", "name": "python3"}


def build(name: str) -> nbformat.NotebookNode:
    """The notebook ``name`` as its source defines it: cells and tags from the source, a Python 3 kernel, stable
    cell ids (``<name>-00``, ...: rebuilding an unchanged source changes nothing)."""
    nb = jupytext.read(SOURCES[name], fmt="py:percent")
    nb.metadata = nbformat.NotebookNode(kernelspec=KERNEL, language_info={"name": "python",
                                                                          "pygments_lexer": "ipython3"})
    for i, cell in enumerate(nb.cells):
        cell.id = f"{name.replace('_', '-')}-{i:02d}"
        cell.metadata = nbformat.NotebookNode({k: v for k, v in cell.metadata.items() if k == "tags"})
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.validate(nb)
    return nb


def target(name: str) -> Path:
    return NOTEBOOKS / f"{name}.ipynb"


def main(names: list[str]) -> int:
    for name in names or list(SOURCES):
        if name not in SOURCES:
            print(f"no notebook source {name!r}; the sources are {', '.join(SOURCES)}", file=sys.stderr)
            return 2
        nbformat.write(build(name), target(name))
        print(f"wrote {target(name).relative_to(ROOT)} from {SOURCES[name].relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
