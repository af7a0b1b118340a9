# %% [markdown]
# # An analysis round, re-measured
#
# One notebook for the analysis rounds (`params/rounds/round_<n>.yaml`: the five seed documents in the chronological order 003, 004, 001, 002, 000, whose tables are `params/seed_tables/`; then round 6, their next steps). It trains (or reuses from the store) every row of the round's table and the variant the document proposes, shows the table beside the one the document reported, judges the document's claims and the proposal's own success criteria on paired per-seed differences, and says which hold at this scale. The last round also trains every registered variant and concludes the study.
#
# ```
# papermill notebooks/round.ipynb out/round_1.ipynb -p round_file params/rounds/round_1.yaml -p scale cpu
# python -m deltalab.publish.nbclean out/round_1.ipynb
# ```

# %% tags=["parameters"]
round_file = "params/rounds/round_1.yaml"  # one of params/rounds/round_<n>.yaml
scale = "cpu"  # params/scales/<scale>.yaml
tasks = "all"  # or a comma-separated list of MAD task names (tests use two)
seeds = None  # None: the scale's seeds for each row (Scale.seeds_for)
workers = 1  # training processes
engine = "local"  # "local": this machine's processes; "ray": one task per run on a Ray cluster
address = None  # ray: the head's host:port (None: $RAY_ADDRESS, else a cluster started here)
results_dir = None  # None: $DELTALAB_RESULTS, else outputs/results
figures_dir = None  # None: beside the store's tables (outputs/<scale>/figures/round_<n> for outputs/results)
bench_file = None  # a `python -m deltalab bench --json --out FILE` report for the cost figure (None: none)
environment_file = None  # where to record versions, commit and device (None: don't)
archived_scales = "cpu-v2"  # comma-separated scales whose stored runs the next steps' summary reads back

# %% tags=["nbval-check-output", "site-header"]
import pandas as pd
from IPython.display import Image, Markdown, display

from deltalab import grid
from deltalab.analysis import sentences
from deltalab.analysis.report import trained_counts, write_environment
from deltalab.analysis.round_report import round_report
from deltalab.analysis.study import read_round, round_rows
from deltalab.params import load_round, load_scale
from deltalab.store import Store

pd.set_option("display.width", 250)
pd.set_option("display.max_columns", 20)
pd.set_option("display.max_rows", 60)
pd.set_option("display.max_colwidth", 60)
rnd = load_round(round_file)
scale_params = load_scale(scale)
display(Markdown(sentences.header(rnd, scale_params)))

# %% [markdown]
# ## Train, or reuse the stored runs
#
# Every finished run is stored under the results folder; a second execution trains nothing.

# %%
store = Store(results_dir) if results_dir else Store()
trained = grid.ensure(round_rows(rnd, scale_params), scale_params, store, tasks=tasks, seeds=seeds,
                      workers=workers, engine=engine, address=address, progress=False)
study = read_round(rnd, scale_params, store, tasks=tasks, seeds=seeds)
trained_counts(trained.rows)

# %% tags=["nbval-check-output", "site-training"]
report = round_report(study, results_dir=results_dir, figures_dir=figures_dir, bench_file=bench_file,
                      archived_scales=archived_scales)
display(Markdown(report.sentences["training"]))

# %% [markdown]
# ## How the verdicts are reached

# %% tags=["nbval-check-output"]
display(Markdown(report.sentences["method"]))

# %% [markdown]
# ## Where a change does not act
#
# A row whose runs on a task are DeltaNet's bit for bit (the same test loss at every epoch of every run) measures nothing about its change there. Such cells are named here, with the reason, and left out of every verdict, ranking and "best" list below.

# %% tags=["nbval-check-output"]
display(Markdown(report.sentences["inert"]))
display(Markdown(report.sentences["null controls"]))

# %% [markdown]
# ## Where a row has not clearly learned, or is still learning
#
# A row whose learning curve never clearly exceeds the input-blind level within the scale's budget has not clearly learned the task: a comparison with it says when it starts learning, not where it ends. Such cells are named here, with the test that finds them, and a verdict on one is *not testable* (its word names the row and task; on an Average, and for a claim on every task, the word names them instead). Where rows are still learning when the budget ends, a score is taken mid-learning, and a verdict that rests on it says so.

# %% tags=["nbval-check-output"]
display(Markdown(report.sentences["learning"]))

# %% [markdown]
# ## The round's table, reproduced
#
# Macro test accuracy per row and task: best over the scale's lr × wd sweep, averaged over the task's settings, then over seeds. `Average` is MAD's overall score computed at this scale (per seed the mean of the tasks measured, then over seeds). Rows: the round's (rounds 1-5: the seed document's table), then its proposal. `*`: the change does not act on that task at this scale (the number is DeltaNet's). `†`: the row has not clearly learned the task within the budget; `↑`: it is still climbing when the budget ends (both: the section above).

# %% tags=["nbval-check-output"]
report.tables["means"]

# %% [markdown]
# The same cells with the 95% interval of the mean over seeds (Student t, intersected with [0, 1]; a single seed shows the mean only):

# %% tags=["nbval-check-output"]
report.tables["intervals"]

# %% [markdown]
# Each row against DeltaNet, paired over seeds: the mean per-seed difference, ▲/▼ where its 95% interval (shown) excludes 0, and the number of seeds both rows have; `†`: one of the two rows has not clearly learned the task within the budget.

# %% tags=["nbval-check-output"]
display(report.tables["paired"])
display(Markdown(report.sentences["screen"]))

# %% [markdown]
# ## Per setting
#
# A task column averages the scale's settings of that task. Here each setting on its own: the mean over seeds and, in brackets, the paired difference to `delta_net` (▲/▼: clear on its own, unadjusted, a screen). `*`: the change does not act on that setting.

# %% tags=["nbval-check-output"]
report.tables["per setting"]

# %% [markdown]
# Signal against noise per setting, over every row trained here whose change acts on the setting (the null controls and the rows that collapse, Average under half DeltaNet's, left out): the variance of the rows' means over the mean variance between one row's seeds. Above 1, rows differ by more than seeds do. A setting where DeltaNet sits at the ceiling (or floor) carries no signal for a claim that a row beats (or lags) it.

# %% tags=["nbval-check-output"]
display(report.tables["signal"])
display(Markdown(report.sentences["ceiling"]))

# %% [markdown]
# ### Settings whose seeds disagree
#
# A row on one setting, per seed its best run over the lr × wd sweep; kept when the seeds span 0.3 accuracy or more:

# %% tags=["nbval-check-output"]
display(Markdown(report.sentences["seed spread"]))
if "seed spread" in report.tables:
    display(report.tables["seed spread"])

# %% [markdown]
# ## As the seed document reported it
#
# MAD protocol, said to be averaged over four seeds; its `Average` is over the six tasks.

# %% tags=["nbval-check-output"]
report.tables["reported"]

# %% [markdown]
# Reproduced minus reported (rows in both tables; the Average only when all six tasks were measured):

# %% tags=["nbval-check-output"]
report.tables["difference"]

# %% [markdown]
# ### Gap to Gated DeltaNet
#
# Each row's means minus `gated_delta_net`'s (positive: better), the seed documents' frame of reference.

# %% tags=["nbval-check-output"]
report.tables["gap"]

# %% [markdown]
# ### Reproduced against reported
#
# Spearman's rank correlation per task between this scale's means and the seed's MAD numbers, over every row measured here that the seed table has (for the concluding round: every row of the table), with its 95% bootstrap interval (rows resampled in pairs; NaN where one side is constant):

# %% tags=["nbval-check-output"]
report.tables["rank correlation"]

# %% [markdown]
# ### Does this scale predict the full protocol?
#
# The concluding round only (it trains every registered row): per task, the agreement of this scale's row means with the full protocol's seed table, over every matched row and over the rows held out from the scale's calibration (`deltalab.analysis.agreement`); then whether both baselines finish learning every setting within the budget, whether Gated DeltaNet is above DeltaNet on Memorize, as every published MAD table has it, and whether the scale predicts the full protocol better than its archived versions did (on the same held-out rows); last, what the pilots that chose its protocol reached and what their budgets would cost.

# %% tags=["nbval-check-output", "site-agreement"]
display(Markdown(report.sentences["agreement"]))
if report.conclusion:
    display(report.tables["agreement"])
    display(Markdown(report.sentences["agreement legend"]))
    display(Markdown(report.sentences["baselines"]))
    display(Markdown(report.sentences["versions"]))
    display(Markdown(report.sentences["pilots"]))

# %% [markdown]
# ## Figures
#
# Hatched cells: the change does not act there (DeltaNet's runs); cross-hatched cells: the row has not clearly learned the task within the budget. The rank figure sets ranks against ranks (the two scales' values are not expected to match) over every row in both tables.

# %%
Image(filename=str(report.figures["heatmap"]))

# %%
Image(filename=str(report.figures["settings"]))

# %%
Image(filename=str(report.figures["reproduced"]))

# %% [markdown]
# ### Learning curves of the rows the round discusses
#
# Macro test accuracy per epoch of the runs the score uses (best lr × wd), one panel per setting: a thin line per seed, a thick line for the mean over seeds. A run that stopped early (it reached the early-stop accuracy) is carried forward at its last value.

# %%
Image(filename=str(report.figures["curves"]))

# %% [markdown]
# ## What the numbers say
#
# Per task, among the rows whose change acts there and that have learned it: the top row and the rows it is clearly ahead of, paired over seeds; then every row against Gated DeltaNet, and DeltaNet against Gated DeltaNet. Each pair is judged on its own (a screen, unadjusted for the number of pairs); the verdicts further down are adjusted.

# %% tags=["nbval-check-output"]
display(Markdown(report.sentences["best per task"]))
display(Markdown(report.sentences["against reference"]))
display(Markdown(report.sentences["delta net lags"]))

# %% [markdown]
# ## What the mechanisms allow

# %% tags=["nbval-check-output"]
display(Markdown(report.sentences["softmax"]))
if "controls" in report.sentences:
    display(Markdown(report.sentences["controls"]))
display(Markdown(report.sentences["gated"]))

# %%
if "gated" in report.figures:
    display(Image(filename=str(report.figures["gated"])))

# %% [markdown]
# ## The seed document's claims, re-examined
#
# Each claim as a checkable statement (`params/rounds/round_<n>.yaml`, format in `docs/claims.md`), judged here on paired per-seed differences, and on the seed document's own table against that table's own noise.

# %% tags=["nbval-check-output", "site-claims"]
display(Markdown(report.sentences["seed noise"]))
display(Markdown(report.sentences["family"]))
display(Markdown(report.sentences["claims"]))

# %% [markdown]
# ## The proposal and its own success criteria
#
# Judged above with the claims (one family, one adjustment); shown here.

# %% tags=["nbval-check-output", "site-criteria"]
display(Markdown(report.sentences["criteria"]))
display(Markdown(report.sentences["proposal"]))
if "next steps" in report.sentences:
    display(Markdown(report.sentences["next steps"]))

# %% [markdown]
# ## The study's conclusion
#
# Only the last round concludes: it ranks every registered variant whose change acts somewhere by its Average at this scale (MAD's way of averaging: per seed the mean of the tasks, then over seeds), with the paired difference of each Average to DeltaNet's and the tasks a row has not learned within the budget; names the best per task; judges each round's claims and proposal again and says how many decisive verdicts survive an adjustment over the whole study.

# %% tags=["nbval-check-output", "site-conclusion"]
if report.conclusion:
    display(report.tables["ranking"])
    display(Markdown(report.sentences["conclusion"]))
    display(report.tables["proposals"])
else:
    display(Markdown(report.sentences["conclusion"]))

# %% tags=["site-ranking-figure"]
for name in ("all", "all_heatmap"):
    if name in report.figures:
        display(Image(filename=str(report.figures[name])))

# %% [markdown]
# ## Cost

# %% tags=["site-cost"]
display(Markdown(report.sentences["cost"]))
if "cost" in report.figures:
    display(Image(filename=str(report.figures["cost"])))

# %%
if environment_file:
    write_environment(environment_file)
