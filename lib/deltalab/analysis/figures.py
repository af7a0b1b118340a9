"""The figures of a round, as PNG files: each takes the frames it draws and returns its path."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import plots
from . import cost, tables
from . import inert as inert_cells
from .names import AVERAGE, BASELINE, REFERENCE
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


HATCH = "hatched: the change does not act here (DeltaNet's runs, bit for bit)"


def heatmap(means: pd.DataFrame, inert: pd.DataFrame, path: Path, title: str) -> Path:
    return plots.heatmap(means, path, title, plots.ACCURACY, hatched=_not_acting(means, inert), hatch_label=HATCH)


def settings_heatmap(scores: pd.DataFrame, inert: pd.DataFrame, rows: list[str], settings: dict[str, list[str]],
                     path: Path, title: str) -> Path:
    """Rows × settings: the mean over seeds on each setting, so a saturated setting is visible as such."""
    sel = scores[scores["variant"].isin(rows) & (scores["setting"] != "all")]
    table = sel.groupby(["variant", "column", "setting"])["acc"].mean()
    labels = [(c, s) for c, ss in settings.items() for s in ss]
    wide = pd.DataFrame({tables.setting_label(c, s): {r: table.get((r, c, s)) for r in rows} for c, s in labels})
    wide = wide.reindex(index=[r for r in rows if r in set(sel["variant"])])
    return plots.heatmap(wide, path, title, plots.ACCURACY + " (per setting)", hatched=_not_acting(wide, inert, settings),
                         hatch_label=HATCH)


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


def reproduced(here: pd.DataFrame, there: pd.DataFrame, rho: dict, path: Path, title: str) -> Path:
    rows = [r for r in here.index if r in there.index]
    long = [{"row": r, "column": c, "reproduced": here.loc[r, c], "reported": there.loc[r, c]}
            for r in rows for c in here.columns]
    return plots.scatter_reproduced(pd.DataFrame(long), path, title, rho=rho)


def for_round(study, out_dir: Path, bench: dict | None = None) -> dict[str, Path]:
    """Every figure of a round: per-task heat map, per-setting heat map, reproduced vs reported, learning curves
    per setting of the rows the round discusses, Gated DeltaNet's curve where it lags most (if it lags clearly
    somewhere), every row by average (the concluding round), cost (only from a quiet bench report)."""
    n, sc = study.round.number, study.scale.name
    out_dir = Path(out_dir)
    means = tables.means(study.scores, study.round_rows, study.columns)
    epochs = epochs_of(study.scale)
    here = tables.means(study.scores, study.round_rows, study.columns, average=len(study.columns) == 6)
    there = tables.reported(study.seed, study.columns)
    rho = tables.rank_correlation(here, there[here.columns])["spearman_rho"].to_dict()
    paths = {
        "heatmap": heatmap(means, study.inert, out_dir / f"round_{n}_heatmap.png",
                           f"Round {n}: mean over seeds per task at scale {sc}"),
        "settings": settings_heatmap(study.scores, study.inert, study.round_rows, study.settings,
                                     out_dir / f"round_{n}_settings.png", f"Round {n}: mean over seeds per setting at scale {sc}"),
        "reproduced": reproduced(here, there[here.columns], rho, out_dir / f"round_{n}_reproduced.png",
                                 f"Round {n}: scale {sc} (y) against the seed document's MAD numbers (x)"),
        "curves": curves(study.records, list(study.round.discuss), epochs, study.settings,
                         out_dir / f"round_{n}_curves.png", f"Round {n}: learning curves per setting at scale {sc}"),
    }
    worst = tables.worst_setting(study.scores, study.settings, REFERENCE, BASELINE)
    if worst:
        paths["gated"] = gated_curves(study.records, epochs, *worst, out_dir / f"round_{n}_gated.png",
                                      f"Round {n}: Gated DeltaNet against DeltaNet where it lags most, scale {sc}")
    if study.round.conclusion:
        ranked = tables.ranking(study.scores, study.inert, study.rows, study.columns)
        table = ranked[study.columns + [AVERAGE]]
        paths["all"] = heatmap(table, study.inert, out_dir / f"round_{n}_all_variants.png",
                               f"All {len(table)} ranked rows by Average at scale {sc}")
    if bench is not None and cost.is_quiet(bench):
        tps = cost.throughput(bench, study.round_rows)
        paths["cost"] = plots.bars(tps, out_dir / f"round_{n}_cost.png", f"Round {n}: training throughput", tps.name)
    return paths
