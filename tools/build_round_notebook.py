"""Write ``notebooks/round.ipynb`` (unexecuted), the one notebook of the five analysis rounds:
`python tools/build_round_notebook.py`.

The notebook holds no logic (no def/class): it calls ``deltalab.rounds`` and shows what it returns. Cells
tagged `nbval-check-output` show only numbers and sentences that are deterministic on CPU for a seed
(tables, verdicts); training counts, figures, throughput and paths are never tagged.

Executing a round and checking determinism (CI): papermill into a temporary folder with store A, clean, then
nbval re-executes the executed copies with a fresh store B (so everything is trained again) and compares the
tagged cells strictly. The injected parameters travel with the executed copy; the store does not (it comes
from DELTALAB_RESULTS, never from a parameter, so that nbval's run trains afresh):

    A=$(mktemp -d); B=$(mktemp -d)
    DELTALAB_RESULTS=$A/results papermill notebooks/round.ipynb $A/round_1.ipynb \
        -p round_file params/rounds/round_1.yaml -p scale smoke -p figures_dir $A/figures
    python -m deltalab.nbclean $A/round_1.ipynb
    DELTALAB_RESULTS=$B/results pytest --nbval-lax -p no:cacheprovider $A/round_1.ipynb
"""
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell

from build_notebooks import CHECK, notebook

ROOT = Path(__file__).resolve().parents[1]

ROUND = [
    new_markdown_cell(
        "# An analysis round, re-measured\n\n"
        "One notebook for the five seed documents (`params/rounds/round_<n>.yaml`, in the chronological order "
        "of `shared/seeds/README.md`). It trains (or reuses from the store) every row of the round's table and "
        "the variant the document proposes, shows the table beside the one the document reported, re-examines "
        "the document's claims and the proposal's own success criteria, and says which hold at this scale. "
        "The last round also trains every registered variant and concludes the study.\n\n"
        "```\npapermill notebooks/round.ipynb out/round_1.ipynb -p round_file params/rounds/round_1.yaml "
        "-p scale cpu\npython -m deltalab.nbclean out/round_1.ipynb\n```"
    ),
    new_code_cell(
        'round_file = "params/rounds/round_1.yaml"  # one of params/rounds/round_<n>.yaml\n'
        'scale = "cpu"  # params/scales/<scale>.yaml\n'
        'tasks = "all"  # or a comma-separated list of MAD task names (tests use two)\n'
        "seeds = None  # None: the scale's seeds (baseline_seeds too for the baselines and the five proposals)\n"
        "workers = 1  # training processes\n"
        'engine = "local"  # "local": this machine\'s processes; "ray": one task per run on a Ray cluster\n'
        "address = None  # ray: the head's host:port (None: $RAY_ADDRESS, else a cluster started here)\n"
        "results_dir = None  # None: $DELTALAB_RESULTS, else outputs/results\n"
        "figures_dir = None  # None: outputs/<scale>/figures/round_<n>\n"
        "bench_file = None  # a `python -m deltalab bench --json --out FILE` report for the cost figure (None: grid runs)\n"
        "environment_file = None  # where to record versions, commit and device (None: don't)",
        metadata={"tags": ["parameters"]},
    ),
    new_code_cell(
        "import pandas as pd\n"
        "from IPython.display import Image, Markdown, display\n\n"
        "from deltalab import narrative, report, rounds\n"
        "from deltalab.params import load_round, load_scale\n\n"
        'pd.set_option("display.width", 200)\n'
        'pd.set_option("display.max_columns", 20)\n'
        'pd.set_option("display.max_rows", 60)\n'
        "rnd = load_round(round_file)\n"
        "scale_params = load_scale(scale)\n"
        "display(Markdown(rounds.header(rnd, scale_params)))",
        metadata=CHECK,
    ),
    new_markdown_cell("## Train, or reuse the stored runs\n\n"
                      "Every finished run is stored under the results folder; a second execution trains nothing."),
    new_code_cell(
        "study = rounds.run_round(rnd, scale, tasks=tasks, seeds=seeds, workers=workers, results_dir=results_dir,\n"
        "                         engine=engine, address=address)\n"
        "report.trained_counts(study.trained)"
    ),
    new_code_cell("display(Markdown(rounds.training_note(study)))", metadata=CHECK),
    new_markdown_cell(
        "## The round's table, reproduced\n\n"
        "MAD accuracy per row and task: best over the scale's lr × wd sweep, averaged over the task's settings, "
        "then over seeds. `Average` is MAD's overall score (mean of the tasks measured). Rows: the seed "
        "document's table, then its proposal."
    ),
    new_code_cell("rounds.shown(rounds.reproduced(study))", metadata=CHECK),
    new_markdown_cell("The same cells with their 95% Student-t interval over seeds (a single seed shows the mean "
                      "only) and the number of seeds per row:"),
    new_code_cell("rounds.intervals(study)", metadata=CHECK),
    new_markdown_cell("### As the seed document reported it\n\n"
                      "MAD protocol, said to be averaged over four seeds; its `Average` is over the six tasks."),
    new_code_cell("rounds.shown(rounds.reported(study))", metadata=CHECK),
    new_markdown_cell("Reproduced minus reported (rows in both tables):"),
    new_code_cell("rounds.shown(rounds.difference(study))", metadata=CHECK),
    new_markdown_cell("### Gap to Gated DeltaNet\n\nEach row minus `gated_delta_net` (positive: better)."),
    new_code_cell("rounds.shown(rounds.gap_to_reference(study))", metadata=CHECK),
    new_markdown_cell("## Figures"),
    new_code_cell("throughput, throughput_source = rounds.cost(study, bench_file=bench_file)\n"
                  "figures = rounds.figures(study, figures_dir, throughput=throughput)"),
    new_code_cell('Image(filename=str(figures["heatmap"]))'),
    new_code_cell('Image(filename=str(figures["gap"]))'),
    new_markdown_cell("### Reproduced against reported\n\n"
                      "Spearman's rank correlation per task between this scale's means and the seed's MAD "
                      "numbers, over the rows in both tables (NaN where one side is constant):"),
    new_code_cell("rounds.shown(rounds.rank_correlation(study))", metadata=CHECK),
    new_code_cell('Image(filename=str(figures["reproduced"]))'),
    new_markdown_cell("### Learning curves of the rows the round discusses\n\n"
                      "Test accuracy per evaluated epoch of the runs the score uses (best lr × wd), "
                      "averaged over settings and seeds."),
    new_code_cell('Image(filename=str(figures["curves"]))'),
    new_markdown_cell("### Cost\n\nTraining throughput per row; where the figures come from:"),
    new_code_cell('display(Markdown(throughput_source))\n'
                  'Image(filename=str(figures["cost"]))'),
    new_markdown_cell("## What the numbers say\n\nBest row per task, and whether it is clearly ahead of the "
                      "runner-up:"),
    new_code_cell('display(Markdown("\\n\\n".join(rounds.best_per_task(study))))', metadata=CHECK),
    new_code_cell(
        'display(Markdown("\\n\\n".join(rounds.against_reference(study))))\n'
        "display(Markdown(rounds.where_delta_net_lags(study)))\n"
        "display(Markdown(narrative.seeds_note(study.summary, study.round_labels)))",
        metadata=CHECK,
    ),
    new_markdown_cell("Rows whose runs are DeltaNet's, bit for bit, on some tasks (their change never acted there):"),
    new_code_cell("display(Markdown(rounds.identical_note(study)))", metadata=CHECK),
    new_markdown_cell(
        "## The seed document's claims, re-examined\n\n"
        "Each claim as a checkable statement (`params/rounds/round_<n>.yaml`). *holds*: the 95% intervals "
        "(n ≥ 2) support it; *does not hold*: they contradict it, or show no clear difference where the claim "
        "says there is one; *cannot tell*: too few seeds. A threshold claim with a single seed is judged on the "
        "point value and says n=1. The last part of each line judges the claim on the document's own numbers."
    ),
    new_code_cell('display(Markdown(rounds.verdicts_markdown(study, "claims")))', metadata=CHECK),
    new_markdown_cell("## The proposal and its own success criteria"),
    new_code_cell(
        'display(Markdown(rounds.verdicts_markdown(study, "success_criteria")))\n'
        "display(Markdown(rounds.proposal_verdict(study)))",
        metadata=CHECK,
    ),
    new_markdown_cell("## The study's conclusion\n\n"
                      "Only the last round concludes: it ranks every registered variant by MAD's average, names "
                      "the best per task, and judges each of the five proposals on its own success criteria."),
    new_code_cell(
        "if rnd.conclusion:\n"
        "    display(rounds.shown(rounds.ranking(study)))\n"
        '    display(Markdown("\\n\\n".join(rounds.conclusion(study))))\n'
        "    display(rounds.proposals_table(study))\n"
        "else:\n"
        '    display(Markdown(f"Round {rnd.number} does not conclude the study; round 5 does."))',
        metadata=CHECK,
    ),
    new_code_cell('if "all" in figures:\n    display(Image(filename=str(figures["all"])))'),
    new_code_cell("if environment_file:\n    report.write_environment(environment_file)"),
]

if __name__ == "__main__":
    out = ROOT / "notebooks" / "round.ipynb"
    nb = notebook(ROUND)
    for i, cell in enumerate(nb.cells):  # stable ids: rebuilding an unchanged notebook changes nothing
        cell.id = f"round-{i:02d}"
    nbformat.write(nb, out)
    print(f"wrote {out.relative_to(ROOT)}")
