"""The figures of a round, as PNG files: each takes the frames it draws and returns its path."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import plots
from . import cost, stats, tables
from . import inert as inert_cells
from .names import ALL_SETTINGS, AVERAGE, BASELINE, REFERENCE
from .study import per_seed
from .study import curves as curve_frame
from .study import schedule as epochs_of


def _not_acting(table: pd.DataFrame, inert: pd.DataFrame, settings: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """Booleans: True where the row's change does not act (columns are tasks, or "task · setting" labels)."""
    out = pd.DataFrame(False, index=table.index, columns=table.columns)
    for r in table.index:
        for col in table.columns:
            if settings is None:
                out.loc[r, col] = col != AVERAGE and not inert_cells.acts(inert, r, col)
            else:
                task, setting = col.split(" · ")
                out.loc[r, col] = not inert_cells.acts(inert, r, task, setting)
    return out


HATCH = "the change does not act here (DeltaNet's runs, bit for bit)"
CROSS = f"not clearly learned within the budget ({tables.NOT_LEARNED} in the tables): a comparison says when it starts"
ARROW = (f"still learning when the budget ends ({tables.CLIMBING_MARK} in the tables): a difference there is one of "
         f"speed, not capacity")


def _in_state(table: pd.DataFrame, learning: pd.DataFrame | None, state: str, settings: bool = False
              ) -> pd.DataFrame | None:
    """Booleans: True where the row's state on the cell is ``state`` (``inert.learning``; None without it)."""
    if learning is None:
        return None
    out = pd.DataFrame(False, index=table.index, columns=table.columns)
    for r in table.index:
        for col in table.columns:
            task, setting = col.split(" · ") if settings else (col, ALL_SETTINGS)
            out.loc[r, col] = task != AVERAGE and inert_cells.state(learning, r, task, setting) == state
    return out


def _not_learned(table: pd.DataFrame, learning: pd.DataFrame | None, settings: bool = False) -> pd.DataFrame | None:
    """Booleans: True where the row has not clearly learned the cell within the budget (None without ``learning``)."""
    return _in_state(table, learning, inert_cells.NOT_LEARNED, settings)


def heatmap(means: pd.DataFrame, inert: pd.DataFrame, path: Path, title: str,
            learning: pd.DataFrame | None = None) -> Path:
    return plots.heatmap(means, path, title, plots.ACCURACY, hatched=_not_acting(means, inert), hatch_label=HATCH,
                         crossed=_not_learned(means, learning), cross_label=CROSS,
                         arrowed=_in_state(means, learning, inert_cells.STILL_LEARNING), arrow_label=ARROW)


def settings_heatmap(scores: pd.DataFrame, inert: pd.DataFrame, rows: list[str], settings: dict[str, list[str]],
                     path: Path, title: str, learning: pd.DataFrame | None = None) -> Path:
    """Rows × settings: the mean over seeds on each setting, so a saturated setting is visible as such."""
    sel = scores[scores["variant"].isin(rows) & (scores["setting"] != "all")]
    table = sel.groupby(["variant", "column", "setting"])["acc"].mean()
    labels = [(c, s) for c, ss in settings.items() for s in ss]
    wide = pd.DataFrame({tables.setting_label(c, s): {r: table.get((r, c, s)) for r in rows} for c, s in labels})
    wide = wide.reindex(index=[r for r in rows if r in set(sel["variant"])])
    return plots.heatmap(wide, path, title, plots.ACCURACY + " (per setting)", hatched=_not_acting(wide, inert, settings),
                         hatch_label=HATCH, crossed=_not_learned(wide, learning, settings=True), cross_label=CROSS,
                         arrowed=_in_state(wide, learning, inert_cells.STILL_LEARNING, settings=True),
                         arrow_label=ARROW)


def curves(records: list[dict], rows: list[str], schedule: dict[str, list[int]], settings: dict[str, list[str]],
           path: Path, title: str) -> Path:
    """Learning curves per setting of ``rows`` (early-stopped runs carried forward at their last value)."""
    data = curve_frame(records, rows, schedule).rename(columns={"variant": "row"})
    data["row"] = pd.Categorical(data["row"], categories=[r for r in rows if r in set(data["row"])], ordered=True)
    data = data.sort_values(["row", "seed", "epoch"])
    data["row"] = data["row"].astype(str)
    panels = [(c, s) for c, ss in settings.items() for s in ss]
    return plots.learning_curves(data, path, title, panels)


def gated_curves(records: list[dict], schedule: dict[str, list[int]], column: str, setting: str, path: Path,
                 title: str) -> Path:
    """Both baselines' learning curves on one setting (where Gated DeltaNet lags)."""
    data = curve_frame(records, [BASELINE, REFERENCE], schedule).rename(columns={"variant": "row"})
    return plots.learning_curves(data, path, title, [(column, setting)])


def reproduced(here: pd.DataFrame, there: pd.DataFrame, path: Path, title: str) -> Path:
    """Rank here against rank in the seed table, per task, over every row in both (1 = best, ties averaged), with
    Spearman's ρ and its paired bootstrap interval (``tables.rank_correlation``) in each panel's title: ranks, not
    values, since the two scales' numbers are not expected to match."""
    rows = [r for r in here.index if r in there.index]
    corr = tables.rank_correlation(here.loc[rows], there.loc[rows])
    long = []
    for c in here.columns:
        both = pd.DataFrame({"here": here.loc[rows, c], "there": there.loc[rows, c]}).dropna()
        ranks_here = both["here"].rank(ascending=False)
        ranks_there = both["there"].rank(ascending=False)
        long += [{"row": r, "column": c, "rank here": ranks_here[r], "rank in the seed document": ranks_there[r]}
                 for r in both.index]
    rho = {c: (corr.loc[c, "spearman_rho"], corr.loc[c, "95% low"], corr.loc[c, "95% high"], int(corr.loc[c, "rows"]))
           for c in corr.index}
    return plots.scatter_ranks(pd.DataFrame(long), path, title, rho=rho)


def all_variants(scores: pd.DataFrame, ranking: pd.DataFrame, path: Path, title: str) -> Path:
    """Every ranked row's Average minus DeltaNet's, paired over seeds, with its 95% interval and its differences seed
    by seed, in the ranking's order; a row whose Average includes a task it has not clearly learned within the budget
    drawn hollow."""
    unlearned = next((c for c in ranking.columns if str(c).startswith("not clearly learned")), None)
    out = []
    for r in ranking.index:
        if r == BASELINE or pd.isna(ranking.loc[r, "rank"]):
            continue
        d = stats.paired(per_seed(scores, r, AVERAGE), per_seed(scores, BASELINE, AVERAGE))
        out.append({"row": r, "diff": d.diff, "low": d.low, "high": d.high, "n": d.n, "per_seed": d.per_seed,
                    "marked": bool(unlearned and str(ranking.loc[r, unlearned]))})
    seeds = sorted({o["n"] for o in out})
    over = f"{seeds[0]} seeds" if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]} seeds" if seeds else "seeds"
    return plots.intervals(pd.DataFrame(out), path, title, f"Average − delta_net's, paired over {over}: the mean "
                           "difference and its 95% t interval (each row on its own, unadjusted)",
                           note="hollow: the row's Average includes a task it has not clearly learned within the budget"
                           if unlearned else None)


def for_round(study, out_dir: Path, bench: dict | None = None, learning: pd.DataFrame | None = None
              ) -> dict[str, Path]:
    """Every figure of a round: per-task heat map, per-setting heat map, ranks here against the seed table's over
    every row measured, learning curves per setting of the rows the round discusses, Gated DeltaNet's curve where it
    lags most (if it lags clearly somewhere), every row's paired difference to DeltaNet's Average and the ranking's
    heat map (the concluding round), cost (only from a quiet bench report). ``learning`` (``inert.learning``): cells
    a row has not clearly learned are cross-hatched."""
    n, sc = study.round.number, study.scale.name
    out_dir = Path(out_dir)
    means = tables.means(study.scores, study.round_rows, study.columns)
    epochs = epochs_of(study.scale)
    here = tables.means(study.scores, study.rows, study.columns, average=len(study.columns) == 6)
    there = tables.reported(study.seed, study.columns)
    paths = {
        "heatmap": heatmap(means, study.inert, out_dir / f"round_{n}_heatmap.png",
                           f"Round {n}: mean over seeds per task at scale {sc}", learning),
        "settings": settings_heatmap(study.scores, study.inert, study.round_rows, study.settings,
                                     out_dir / f"round_{n}_settings.png",
                                     f"Round {n}: mean over seeds per setting at scale {sc}", learning),
        "reproduced": reproduced(here, there[here.columns], out_dir / f"round_{n}_reproduced.png",
                                 f"Round {n}: rank at scale {sc} (y) against rank in the seed document's MAD table (x), "
                                 f"every row in both"),
        "curves": curves(study.records, list(study.round.discuss), epochs, study.settings,
                         out_dir / f"round_{n}_curves.png", f"Round {n}: learning curves per setting at scale {sc}"),
    }
    worst = tables.worst_setting(study.scores, study.settings, REFERENCE, BASELINE)
    if worst:
        paths["gated"] = gated_curves(study.records, epochs, *worst, out_dir / f"round_{n}_gated.png",
                                      f"Round {n}: Gated DeltaNet against DeltaNet where it lags most, scale {sc}")
    if study.round.conclusion:
        ranked = tables.ranking(study.scores, study.inert, study.rows, study.columns, learning)
        paths["all"] = all_variants(study.scores, ranked, out_dir / f"round_{n}_all_variants.png",
                                    f"Every ranked row against DeltaNet on the Average at scale {sc}")
        table = ranked[study.columns + [AVERAGE]]
        paths["all_heatmap"] = heatmap(table, study.inert, out_dir / f"round_{n}_all_variants_heatmap.png",
                                       f"All {len(table)} ranked rows by Average at scale {sc}", learning)
    if bench is not None and cost.is_quiet(bench):
        tps = cost.throughput(bench, study.round_rows)
        paths["cost"] = plots.bars(tps, out_dir / f"round_{n}_cost.png", f"Round {n}: training throughput", tps.name)
    return paths
