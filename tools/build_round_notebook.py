"""The one source of ``notebooks/round.ipynb`` (unexecuted), the notebook of the analysis rounds:
`python tools/build_round_notebook.py` writes it; tests/test_notebook_sources.py checks the file agrees with this.

The notebook holds no logic (no def/class): it calls ``deltalab.analysis`` and shows what it returns. Cells
tagged `nbval-check-output` show only numbers and sentences that are deterministic on CPU for a seed
(tables, verdicts); training counts, figures and paths are never tagged.

Executing a round and checking determinism (CI): papermill into a temporary folder with store A, clean, then
nbval re-executes the executed copies with a fresh store B (so everything is trained again) and compares the
tagged cells strictly. The injected parameters travel with the executed copy; the store does not (it comes
from DELTALAB_RESULTS, never from a parameter, so that nbval's run trains afresh):

    A=$(mktemp -d); B=$(mktemp -d)
    DELTALAB_RESULTS=$A/results papermill notebooks/round.ipynb $A/round_1.ipynb \\
        -p round_file params/rounds/round_1.yaml -p scale smoke -p figures_dir $A/figures
    python -m deltalab.nbclean $A/round_1.ipynb
    DELTALAB_RESULTS=$B/results pytest --nbval-lax -p no:cacheprovider $A/round_1.ipynb
"""
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell

from build_notebooks import CHECK, notebook

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "notebooks" / "round.ipynb"

def tagged(*site_roles: str) -> dict:
    """nbval checks the cell's output; ``site_roles`` name the cell for ``deltalab.site`` (the landing page)."""
    return {"tags": CHECK["tags"] + list(site_roles)}


ROUND = [
    new_markdown_cell(
        "# An analysis round, re-measured\n\n"
        "One notebook for the analysis rounds (`params/rounds/round_<n>.yaml`: the five seed documents in the "
        "chronological order 003, 004, 001, 002, 000, whose tables are `params/seed_tables/`; then round 6, their "
        "next steps). It trains (or reuses from the store) every row of the round's table and the variant the document proposes, shows the table beside the one the document reported, judges the "
        "document's claims and the proposal's own success criteria on paired per-seed differences, and says which "
        "hold at this scale. The last round also trains every registered variant and concludes the study.\n\n"
        "```\npapermill notebooks/round.ipynb out/round_1.ipynb -p round_file params/rounds/round_1.yaml "
        "-p scale cpu\npython -m deltalab.nbclean out/round_1.ipynb\n```"
    ),
    new_code_cell(
        'round_file = "params/rounds/round_1.yaml"  # one of params/rounds/round_<n>.yaml\n'
        'scale = "cpu"  # params/scales/<scale>.yaml\n'
        'tasks = "all"  # or a comma-separated list of MAD task names (tests use two)\n'
        "seeds = None  # None: the scale's seeds for each row (Scale.seeds_for)\n"
        "workers = 1  # training processes\n"
        'engine = "local"  # "local": this machine\'s processes; "ray": one task per run on a Ray cluster\n'
        "address = None  # ray: the head's host:port (None: $RAY_ADDRESS, else a cluster started here)\n"
        "results_dir = None  # None: $DELTALAB_RESULTS, else outputs/results\n"
        "figures_dir = None  # None: beside the store's tables (outputs/<scale>/figures/round_<n> for outputs/results)\n"
        "bench_file = None  # a `python -m deltalab bench --json --out FILE` report for the cost figure (None: none)\n"
        "environment_file = None  # where to record versions, commit and device (None: don't)\n"
        'archived_scales = "cpu-v2"  # comma-separated scales whose stored runs the next steps\' summary reads back',
        metadata={"tags": ["parameters"]},
    ),
    new_code_cell(
        "from pathlib import Path\n\n"
        "import pandas as pd\n"
        "from IPython.display import Image, Markdown, display\n\n"
        "from deltalab import grid\n"
        "from deltalab.analysis import agreement, claims, cost, figures, inert, report, sentences, tables\n"
        "from deltalab.analysis.study import blind_levels, concluding_round, curves, read_round, round_rows, schedule\n"
        "from deltalab.params import available_rounds, load_round, load_scale\n"
        "from deltalab.store import Store\n\n"
        'pd.set_option("display.width", 250)\n'
        'pd.set_option("display.max_columns", 20)\n'
        'pd.set_option("display.max_rows", 60)\n'
        'pd.set_option("display.max_colwidth", 60)\n'
        "rnd = load_round(round_file)\n"
        "scale_params = load_scale(scale)\n"
        "display(Markdown(sentences.header(rnd, scale_params)))",
        metadata=tagged("site-header"),
    ),
    new_markdown_cell("## Train, or reuse the stored runs\n\n"
                      "Every finished run is stored under the results folder; a second execution trains nothing."),
    new_code_cell(
        "store = Store(results_dir) if results_dir else Store()\n"
        "trained = grid.ensure(round_rows(rnd, scale_params), scale_params, store, tasks=tasks, seeds=seeds,\n"
        "                      workers=workers, engine=engine, address=address, progress=False)\n"
        "study = read_round(rnd, scale_params, store, tasks=tasks, seeds=seeds)\n"
        "rows, every_row, columns = study.round_rows, study.rows, study.columns\n"
        "report.trained_counts(trained.rows)"
    ),
    new_code_cell("display(Markdown(sentences.training_note(study.runs, every_row, columns, study.incomplete, "
                  "study.tag, rnd.conclusion)))", metadata=tagged("site-training")),
    new_markdown_cell("## How the verdicts are reached"),
    new_code_cell('display(Markdown(sentences.method(study.scores["seed"].nunique())))', metadata=CHECK),
    new_markdown_cell(
        "## Where a change does not act\n\n"
        "A row whose runs on a task are DeltaNet's bit for bit (the same test loss at every epoch of every run) "
        "measures nothing about its change there. Such cells are named here, with the reason, and left out of "
        "every verdict, ranking and \"best\" list below."),
    new_code_cell("display(Markdown(sentences.inert_note(study.inert, every_row, columns, study.tag)))\n"
                  "display(Markdown(sentences.null_control_note(study.scores, study.inert, every_row, columns, "
                  "study.tag)))", metadata=CHECK),
    new_markdown_cell(
        "## Where a row has not clearly learned, or is still learning\n\n"
        "A row whose learning curve never clearly exceeds the input-blind level within the scale's budget has not "
        "clearly learned the task: a comparison with it says when it starts learning, not where it ends. Such cells "
        "are named here, with the test that finds them, and a verdict on one is *not testable* (its word names the "
        "row and task; on an Average, and for a claim on every task, the word names them instead). Where rows are "
        "still learning when the budget ends, a score is taken mid-learning, and a verdict that rests on it says "
        "so."),
    new_code_cell("learning = inert.learning(curves(study.records, every_row, schedule(study.scale)), study.settings,\n"
                  "                          blind=blind_levels(study.scale))\n"
                  "display(Markdown(sentences.learning_note(learning, every_row, columns, study.tag)))", metadata=CHECK),
    new_markdown_cell(
        "## The round's table, reproduced\n\n"
        "Macro test accuracy per row and task: best over the scale's lr × wd sweep, averaged over the task's "
        "settings, then over seeds. `Average` is MAD's overall score computed at this scale (per seed the mean of the tasks measured, then "
        "over seeds). Rows: the round's (rounds 1-5: the seed document's table), then its proposal. `*`: the change does not act on that "
        "task at this scale (the number is DeltaNet's). `†`: the row has not clearly learned the task within the budget; "
        "`↑`: it is still climbing when the budget ends (both: the section above)."
    ),
    new_code_cell("means = tables.means(study.scores, rows, columns)\n"
                  "tables.marked(means, study.inert, learning=learning).join(tables.seeds_per_row(study.scores, rows, "
                  "columns))", metadata=CHECK),
    new_markdown_cell("The same cells with the 95% interval of the mean over seeds (Student t, intersected with "
                      "[0, 1]; a single seed shows the mean only):"),
    new_code_cell("tables.intervals(study.scores, rows, columns)", metadata=CHECK),
    new_markdown_cell("Each row against DeltaNet, paired over seeds: the mean per-seed difference, ▲/▼ where its 95% "
                      "interval (shown) excludes 0, and the number of seeds both rows have; `†`: one of the two rows "
                      "has not clearly learned the task within the budget."),
    new_code_cell("paired = tables.paired_to(study.scores, study.inert, rows, columns, learning=learning)\n"
                  "display(paired)\n"
                  "display(Markdown(sentences.screen_note(paired, study.tag)))", metadata=CHECK),
    new_markdown_cell(
        "## Per setting\n\n"
        "A task column averages the scale's settings of that task. Here each setting on its own: the mean over "
        "seeds and, in brackets, the paired difference to `delta_net` (▲/▼: clear on its own, unadjusted, a screen). `*`: the change does not act "
        "on that setting."
    ),
    new_code_cell("tables.per_setting(study.scores, study.inert, rows, study.settings, learning=learning)",
                  metadata=CHECK),
    new_markdown_cell(
        "Signal against noise per setting, over every row trained here whose change acts on the setting (the null "
        "controls and the rows that collapse, Average under half DeltaNet's, left out): the variance of the rows' "
        "means over the mean variance between one row's seeds. Above 1, rows differ by more than seeds do. "
        "A setting where DeltaNet sits at the ceiling (or floor) carries no signal for a claim that a row beats "
        "(or lags) it."
    ),
    new_code_cell("display(tables.shown(tables.signal(study.scores, study.inert, every_row, study.settings)))\n"
                  "display(Markdown(sentences.ceiling_note(tables.ceiling_settings(study.scores, study.settings), "
                  "study.tag, study.settings)))", metadata=CHECK),
    new_markdown_cell("### Settings whose seeds disagree\n\nA row on one setting, per seed its best run over the "
                      "lr × wd sweep; kept when the seeds span 0.3 accuracy or more:"),
    new_code_cell(
        "spread = tables.seed_spread(study.scores, rows, min_range=0.3)\n"
        "display(Markdown(sentences.seed_spread_note(spread, tables.cells_with_seeds(study.scores, rows), study.tag, "
        "0.3)))\n"
        "if len(spread):\n"
        "    display(tables.shown(spread))",
        metadata=CHECK,
    ),
    new_markdown_cell("## As the seed document reported it\n\n"
                      "MAD protocol, said to be averaged over four seeds; its `Average` is over the six tasks."),
    new_code_cell("reported = tables.reported(study.seed, columns)\n"
                  "tables.shown(reported)", metadata=CHECK),
    new_markdown_cell("Reproduced minus reported (rows in both tables; the Average only when all six tasks were "
                      "measured):"),
    new_code_cell("tables.shown(tables.difference(means, reported, len(columns) == 6))", metadata=CHECK),
    new_markdown_cell("### Gap to Gated DeltaNet\n\nEach row's means minus `gated_delta_net`'s (positive: better), "
                      "the seed documents' frame of reference."),
    new_code_cell("tables.shown(tables.gap(means))", metadata=CHECK),
    new_markdown_cell("### Reproduced against reported\n\n"
                      "Spearman's rank correlation per task between this scale's means and the seed's MAD "
                      "numbers, over every row measured here that the seed table has (for the concluding round: "
                      "every row of the table), with its 95% bootstrap interval (rows resampled in pairs; NaN where "
                      "one side is constant):"),
    new_code_cell("tables.shown(tables.rank_correlation(tables.means(study.scores, every_row, columns, "
                  "len(columns) == 6), tables.reported(study.seed, columns)))", metadata=CHECK),
    new_markdown_cell("### Does this scale predict the full protocol?\n\n"
                      "The concluding round only (it trains every registered row): per task, the agreement of this "
                      "scale's row means with the full protocol's seed table, over every matched row and over the rows "
                      "held out from the scale's calibration (`deltalab.analysis.agreement`); then whether both "
                      "baselines finish learning every setting within the budget, whether Gated DeltaNet is above "
                      "DeltaNet on Memorize, as every published MAD table has it, and whether the scale predicts the "
                      "full protocol better than its archived versions did (on the same held-out rows); last, what "
                      "the pilots that chose its protocol reached and what their budgets would cost."),
    new_code_cell("if rnd.conclusion:\n"
                  "    agreed = agreement.with_seed_table(study.scores, study.inert, study.seed, "
                  "scale_params.calibration_rows,\n"
                  "                                       targets=scale_params.agreement_targets)\n"
                  "    display(Markdown(sentences.agreement_note(agreed, scale_params, rnd.seed_document)))\n"
                  "    display(tables.shown(agreed.set_index([\"task\", \"rows\"]), missing=\"—\"))\n"
                  "    display(Markdown(\"—: does not apply to the row (a target is set on the held-out rows only; \"\n"
                  "                     \"ceiling and reliability to ranked tasks; the constant rule and κ to classified \"\n"
                  "                     \"tasks, κ where both sides use both classes).\"))\n"
                  "    finished = agreement.baselines(learning, scale_params.early_stop)\n"
                  "    display(Markdown(agreement.baselines_markdown(finished, agreement.memorize_order(study.scores), "
                  "scale_params.name)))\n"
                  "    store = Store(results_dir)\n"
                  "    runs = agreement.stored_runs(scale, store=store)\n"
                  "    versions = agreement.scale_versions(runs, store=store)\n"
                  "    display(Markdown(agreement.versions_markdown(versions, scale_params.name) or\n"
                  "                     f\"`{scale_params.name}` has no archived version to compare with.\"))\n"
                  "    pilots = agreement.pilots(runs, store=store)\n"
                  "    display(Markdown(agreement.pilots_markdown(pilots, scale_params.name) or\n"
                  "                     f\"`{scale_params.name}` has no pilot (`{scale_params.name}-pilot*`) to \"\n"
                  "                     \"show.\"))\n"
                  "else:\n"
                  '    display(Markdown(f"Round {rnd.number} does not conclude the study; round {concluding_round()} '
                  'measures the agreement of the scale."))',
                  metadata=tagged("site-agreement")),
    new_markdown_cell("## Figures\n\nHatched cells: the change does not act there (DeltaNet's runs); cross-hatched "
                      "cells: the row has not clearly learned the task within the budget. The rank figure sets ranks against "
                      "ranks (the two scales' values are not expected to match) over every row in both tables."),
    new_code_cell(
        "bench = cost.read_bench(bench_file) if bench_file else None\n"
        "out_dir = (Path(figures_dir) if figures_dir else\n"
        '           Store(results_dir).tables_dir(scale) / "figures" / f"round_{rnd.number}")\n'
        "pictures = figures.for_round(study, out_dir, bench, learning)"
    ),
    new_code_cell('Image(filename=str(pictures["heatmap"]))'),
    new_code_cell('Image(filename=str(pictures["settings"]))'),
    new_code_cell('Image(filename=str(pictures["reproduced"]))'),
    new_markdown_cell("### Learning curves of the rows the round discusses\n\n"
                      "Macro test accuracy per epoch of the runs the score uses (best lr × wd), one panel per setting: "
                      "a thin line per seed, a thick line for the mean over seeds. A run that stopped early (it "
                      "reached the early-stop accuracy) is carried forward at its last value."),
    new_code_cell('Image(filename=str(pictures["curves"]))'),
    new_markdown_cell("## What the numbers say\n\nPer task, among the rows whose change acts there and that have "
                      "learned it: the top row and the rows it is clearly ahead of, paired over seeds; then every row "
                      "against Gated DeltaNet, and DeltaNet against Gated DeltaNet. Each pair is judged on its own "
                      "(a screen, unadjusted for the number of pairs); the verdicts further down are adjusted."),
    new_code_cell(
        'display(Markdown("\\n\\n".join(sentences.best_per_task(study.scores, study.inert, rows, columns, '
        'study.tag, learning))))\n'
        'display(Markdown("\\n\\n".join(sentences.against_reference(study.scores, study.inert, rows, columns, '
        'study.tag, learning=learning))))\n'
        "display(Markdown(sentences.where_delta_net_lags(study.scores, columns, study.tag, learning)))",
        metadata=CHECK,
    ),
    new_markdown_cell("## What the mechanisms allow"),
    new_code_cell(
        "display(Markdown(sentences.softmax_note(rows)))\n"
        "controls = sentences.controls_note(study.scores, rows, columns, study.tag, learning)\n"
        "if controls:\n"
        "    display(Markdown(controls))\n"
        "baseline_curves = curves(study.records, [\"delta_net\", \"gated_delta_net\"], schedule(study.scale))\n"
        "gated = sentences.gated_note(study.scores, baseline_curves, study.settings, study.tag)\n"
        'display(Markdown(gated or f"{study.tag}: Gated DeltaNet lags DeltaNet on every seed on no setting."))',
        metadata=CHECK,
    ),
    new_code_cell('if "gated" in pictures:\n    display(Image(filename=str(pictures["gated"])))'),
    new_markdown_cell("## The seed document's claims, re-examined\n\n"
                      "Each claim as a checkable statement (`params/rounds/round_<n>.yaml`, format in "
                      "`docs/claims.md`), judged here on paired per-seed differences, and on the seed document's own "
                      "table against that table's own noise."),
    new_code_cell(
        "here = claims.SeedEvidence(study.scores, study.inert, columns, study.twins, learning, study.settings,\n"
        "                           claims.every_seed_table(study.inert, columns))\n"
        "there = claims.table_evidence(study.seed, study.inert, columns)\n"
        "seed_rows = set(study.seed.index)\n"
        "display(Markdown(sentences.seed_noise_note(there.noise)))\n"
        "claim_table, criteria = claims.adjust([\n"
        "    claims.claims_table(rnd.claims, here, there, study.table_rows, columns, seed_rows),\n"
        "    claims.claims_table(rnd.success_criteria, here, there, rows, columns, seed_rows)])\n"
        "display(Markdown(sentences.family_note([claim_table, criteria], study.tag)))\n"
        'display(Markdown(sentences.verdicts_markdown(claim_table, study.tag, "claims")))',
        metadata=tagged("site-claims"),
    ),
    new_markdown_cell("## The proposal and its own success criteria\n\n"
                      "Judged above with the claims (one family, one adjustment); shown here."),
    new_code_cell(
        'display(Markdown(sentences.verdicts_markdown(criteria, study.tag, "success criteria")))\n'
        'display(Markdown(sentences.proposal_summary(list(criteria["verdict here"]), rnd.proposal, study.tag,\n'
        '                                            list(criteria["verdict adjusted"]))))\n'
        "items = rnd.claims + rnd.success_criteria\n"
        "if any(c.step for c in items):  # a round that puts the seeds' next steps to the test answers one per line\n"
        "    archived = claims.archived_evidence(rnd, [s.strip() for s in (archived_scales or '').split(',')\n"
        "                                              if s.strip() and s.strip() != scale], results_dir)\n"
        "    steps = claims.next_steps(items, pd.concat([claim_table, criteria], ignore_index=True), here, archived, rows)\n"
        "    display(Markdown(sentences.next_steps_summary(steps, study.tag)))",
        metadata=tagged("site-criteria"),
    ),
    new_markdown_cell("## The study's conclusion\n\n"
                      "Only the last round concludes: it ranks every registered variant whose change acts somewhere by "
                      "its Average at this scale (MAD's way of averaging: per seed the mean of the tasks, then over "
                      "seeds), with the paired difference of each Average to DeltaNet's and the tasks a row has not "
                      "learned within the budget; names the best per task; judges each round's claims and proposal "
                      "again and says how many decisive verdicts survive an adjustment over the whole study."),
    new_code_cell(
        "if rnd.conclusion:\n"
        "    ranking = tables.ranking(study.scores, study.inert, every_row, columns, learning)\n"
        "    display(tables.shown(ranking))\n"
        "    rounds = [load_round(name) for name in available_rounds()]\n"
        "    family = claims.study_family(rounds, here, columns)\n"
        "    proposals = claims.proposals_table(rounds, here, columns, family)\n"
        "    said = sentences.conclusion(ranking, [r for r in inert.excluded(study.inert, columns) if r in every_row], "
        "proposals, study.tag, study.scale.name, family)\n"
        '    display(Markdown("\\n\\n".join(said + sentences.best_per_task(study.scores, study.inert, every_row, '
        'columns, study.tag, learning))))\n'
        "    display(proposals)\n"
        "else:\n"
        '    display(Markdown(f"Round {rnd.number} does not conclude the study; round {concluding_round()} does."))',
        metadata=tagged("site-conclusion"),
    ),
    new_code_cell('if "all" in pictures:\n    display(Image(filename=str(pictures["all"])))\n'
                  'if "all_heatmap" in pictures:\n    display(Image(filename=str(pictures["all_heatmap"])))',
                  metadata={"tags": ["site-ranking-figure"]}),
    new_markdown_cell("## Cost"),
    new_code_cell(
        "display(Markdown(cost.cost_note(bench, Path(bench_file).name if bench_file else None)))\n"
        'if "cost" in pictures:\n'
        '    display(Image(filename=str(pictures["cost"])))',
        metadata={"tags": ["site-cost"]},
    ),
    new_code_cell("if environment_file:\n    report.write_environment(environment_file)"),
]


def build() -> nbformat.NotebookNode:
    nb = notebook(ROUND)
    for i, cell in enumerate(nb.cells):  # stable ids: rebuilding an unchanged notebook changes nothing
        cell.id = f"round-{i:02d}"
    return nb


if __name__ == "__main__":
    nbformat.write(build(), OUT)
    print(f"wrote {OUT.relative_to(ROOT)}")
