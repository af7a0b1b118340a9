# %% [markdown]
# # One variant against the two baselines
#
# Trains a delta-rule variant on the MAD tasks of a scale (or reuses its stored runs), trains or reuses DeltaNet and Gated DeltaNet the same way, and shows the three rows side by side. A variant is a registered short name (`python -m deltalab variants` lists them) or the path to a `.py` file that defines `delta_rule_chunkwise(q, k, v, beta, chunk_size=32) -> (o, S)` with fla's naive signature; a file is checked (shapes, causality, finite forward and backward, determinism) before anything is trained.
#
# ```
# .venv/bin/papermill notebooks/run_variant.ipynb out.ipynb -p variant l2_norm_error
# .venv/bin/papermill notebooks/run_variant.ipynb out.ipynb -p variant my_rule.py -p scale smoke
# ```

# %% tags=["parameters"]
variant = "l2_norm_error"  # a registered short name, or a path to a .py file
tasks = "all"  # or a comma-separated list of MAD task names
scale = "cpu"  # params/scales/<scale>.yaml
seeds = None  # None: the scale's seeds; or a list such as [0, 1]
workers = 1  # training processes
engine = "local"  # "local": this machine's processes; "ray": one task per run on a Ray cluster
address = None  # ray: the head's host:port (None: $RAY_ADDRESS, else a cluster started here)
figures_dir = None  # None: beside the store's tables (outputs/<scale>/figures for outputs/results)
environment_file = None  # where to record versions, commit and device (None: don't)

# %%
import pandas as pd
from IPython.display import Image, Markdown, display

from deltalab import grid
from deltalab.analysis import report
from deltalab.analysis.tables import marked
from deltalab.store import Store

pd.set_option("display.width", 200)
# a bad parameter stops here, with one line saying why; else the scale, loaded
scale_params = report.check_parameters(variant, scale, tasks, seeds)
display(Markdown(f"**Scale `{scale_params.name}`.** {scale_params.description}"))

# %% [markdown]
# ## Train, or reuse the stored runs
#
# Every finished run is stored under `outputs/results/<scale>/`; a second execution trains nothing.

# %%
store = Store()
trained = grid.ensure(report.rows_of(variant), scale_params, store, tasks=tasks, seeds=seeds,
                      workers=workers, engine=engine, address=address, progress=False)
result = report.variant_report(variant, scale_params, store, tasks, seeds, figures_dir=figures_dir)
display(Markdown(f"`{result.name}` changes the loop to: {result.formula}"))
report.trained_counts(trained.rows)

# %% [markdown]
# ## The variant's row next to the baselines
#
# Macro test accuracy (on the scored test positions), best over the scale's lr × wd sweep, averaged over the scale's settings of each task and then over seeds; `Average` is MAD's overall score (per seed the mean of the tasks measured, then over seeds). `*`: the change does not act on that task at this scale (the number is DeltaNet's). `†`: the row has not clearly learned the task within the budget (its learning curve never clearly exceeds the input-blind level: a comparison says when it starts learning); `↑`: still learning when the budget ends (a score taken mid-learning).

# %% tags=["nbval-check-output"]
marked(result.table, result.inert, learning=result.learning)

# %%
Image(filename=str(result.figure))

# %% [markdown]
# ## What the numbers say
#
# Each task: the variant against each baseline, paired over seeds (same seed = same data, initialisation and batch order).

# %% tags=["nbval-check-output"]
display(Markdown("\n\n".join(result.sentences + [result.seeds_note])))

# %%
if environment_file:
    report.write_environment(environment_file)
