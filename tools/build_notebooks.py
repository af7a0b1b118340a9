"""The one source of ``notebooks/run_variant.ipynb`` (unexecuted): `python tools/build_notebooks.py` writes it;
tests/test_notebook_sources.py checks the file agrees with this. (``notebooks/round.ipynb`` comes from
tools/build_round_notebook.py.)

The notebooks hold no logic (no def/class): each cell calls `deltalab` and shows what it returns. Cells
tagged `nbval-check-output` print only numbers that are deterministic on CPU for a seed; nbval compares
those strictly in CI (`pytest --nbval-lax`).
"""
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
CHECK = {"tags": ["nbval-check-output"]}


def notebook(cells):
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python", "pygments_lexer": "ipython3"}
    return nb


RUN_VARIANT = [
    new_markdown_cell(
        "# One variant against the two baselines\n\n"
        "Trains a delta-rule variant on the MAD tasks of a scale (or reuses its stored runs), trains or reuses "
        "DeltaNet and Gated DeltaNet the same way, and shows the three rows side by side. A variant is a "
        "registered short name (`python -m deltalab variants` lists them) or the path to a `.py` file that "
        "defines `delta_rule_chunkwise(q, k, v, beta, chunk_size=32) -> (o, S)` with fla's naive signature; "
        "a file is checked (shapes, causality, finite forward and backward, determinism) before anything is "
        "trained.\n\n"
        "```\n.venv/bin/papermill notebooks/run_variant.ipynb out.ipynb -p variant l2_norm_error\n"
        ".venv/bin/papermill notebooks/run_variant.ipynb out.ipynb -p variant my_rule.py -p scale smoke\n```"
    ),
    new_code_cell(
        'variant = "l2_norm_error"  # a registered short name, or a path to a .py file\n'
        'tasks = "all"  # or a comma-separated list of MAD task names\n'
        'scale = "cpu"  # params/scales/<scale>.yaml\n'
        "seeds = None  # None: the scale's seeds; or a list such as [0, 1]\n"
        "workers = 1  # training processes\n"
        'engine = "local"  # "local": this machine\'s processes; "ray": one task per run on a Ray cluster\n'
        "address = None  # ray: the head's host:port (None: $RAY_ADDRESS, else a cluster started here)\n"
        "figures_dir = None  # None: beside the store's tables (outputs/<scale>/figures for outputs/results)\n"
        "environment_file = None  # where to record versions, commit and device (None: don't)",
        metadata={"tags": ["parameters"]},
    ),
    new_code_cell(
        "import pandas as pd\n"
        "from IPython.display import Image, Markdown, display\n\n"
        "from deltalab import grid\n"
        "from deltalab.analysis import report\n"
        "from deltalab.analysis.tables import marked\n"
        "from deltalab.store import Store\n\n"
        'pd.set_option("display.width", 200)\n'
        "# a bad parameter stops here, with one line saying why; else the scale, loaded\n"
        "scale_params = report.check_parameters(variant, scale, tasks, seeds)\n"
        'display(Markdown(f"**Scale `{scale_params.name}`.** {scale_params.description}"))'
    ),
    new_markdown_cell("## Train, or reuse the stored runs\n\nEvery finished run is stored under "
                      "`outputs/results/<scale>/`; a second execution trains nothing."),
    new_code_cell(
        "store = Store()\n"
        "trained = grid.ensure(report.rows_of(variant), scale_params, store, tasks=tasks, seeds=seeds,\n"
        "                      workers=workers, engine=engine, address=address, progress=False)\n"
        "result = report.variant_report(variant, scale_params, store, tasks, seeds, figures_dir=figures_dir)\n"
        'display(Markdown(f"`{result.name}` changes the loop to: {result.formula}"))\n'
        "report.trained_counts(trained.rows)"
    ),
    new_markdown_cell(
        "## The variant's row next to the baselines\n\n"
        "Macro test accuracy (on the scored test positions), best over the scale's lr × wd sweep, averaged over "
        "the scale's settings of each task and then over seeds; `Average` is MAD's overall score (per seed the "
        "mean of the tasks measured, then over seeds). `*`: the change does not act on that task at this scale "
        "(the number is DeltaNet's). `†`: the row has not clearly learned the task within the budget (its learning curve "
        "never clearly exceeds the input-blind level: a comparison says when it starts learning); `↑`: still "
        "learning when the budget ends (a score taken mid-learning)."
    ),
    new_code_cell("marked(result.table, result.inert, learning=result.learning)", metadata=CHECK),
    new_code_cell("Image(filename=str(result.figure))"),
    new_markdown_cell("## What the numbers say\n\nEach task: the variant against each baseline, paired over seeds "
                      "(same seed = same data, initialisation and batch order)."),
    new_code_cell('display(Markdown("\\n\\n".join(result.sentences + [result.seeds_note])))', metadata=CHECK),
    new_code_cell("if environment_file:\n    report.write_environment(environment_file)"),
]

OUT = ROOT / "notebooks" / "run_variant.ipynb"


def build() -> nbformat.NotebookNode:
    nb = notebook(RUN_VARIANT)
    for i, cell in enumerate(nb.cells):  # stable ids: rebuilding an unchanged notebook changes nothing
        cell.id = f"run-variant-{i:02d}"
    return nb


if __name__ == "__main__":
    nbformat.write(build(), OUT)
    print(f"wrote {OUT.relative_to(ROOT)}")
