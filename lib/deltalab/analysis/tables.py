"""The tables a round notebook shows, each from the data it needs (a scores frame, the inert cells, a list of rows).

Row assembly has one path: ``means`` (rows × task columns + Average, from ``study.seed_scores``), used by the round
notebooks and by ``report.variant_report`` alike. Rows are shown under their one display name (``names``).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from . import inert as inert_cells
from . import mechanisms, stats
from .names import ALL_SETTINGS, AVERAGE, BASELINE, REFERENCE, fmt, join_words, signed
from .study import per_seed

NOT_ACTING = "*"  # marks a cell where the change does not act (DeltaNet's runs, bit for bit)
NOT_LEARNED = "†"  # marks a cell the row has not clearly learned within the budget (inert.learning)
CLIMBING_MARK = "↑"  # marks a cell where the row is still climbing when the budget ends
CEILING = inert_cells.CEILING  # 0.99: DeltaNet at or above: no room for a row to beat it (the seed documents' own "solved" mark)
FLOOR = 0.05  # DeltaNet at or below: no room for a row to lag it


def _cells(scores: pd.DataFrame, setting: str = ALL_SETTINGS) -> pd.DataFrame:
    return scores[scores["setting"] == setting] if setting is not None else scores


def means(scores: pd.DataFrame, rows: list[str], columns: list[str], average: bool = True) -> pd.DataFrame:
    """Mean over seeds per row and task column (+ ``Average``): the seeds' ``accuracies_df`` as measured here."""
    cols = columns + ([AVERAGE] if average else [])
    sel = _cells(scores)
    table = sel.groupby(["variant", "column"])["acc"].mean().unstack()
    table = table.reindex(index=[r for r in rows if r in table.index], columns=cols)
    table.index.name = None
    table.columns.name = None
    return table


def seeds_per_row(scores: pd.DataFrame, rows: list[str], columns: list[str], average: bool = True) -> pd.Series:
    """"3" or "2-3": the number of seeds behind each row's task cells and (``average``) its Average, for which a
    seed counts only with every task complete ("1-3": the Average rests on fewer seeds than a task)."""
    sel = _cells(scores)
    sel = sel[sel["column"].isin([*columns, *([AVERAGE] if average else [])])]
    n = sel.groupby(["variant", "column"])["seed"].nunique().groupby("variant").agg(["min", "max"])
    return pd.Series({r: (f"{n.loc[r, 'min']}" if n.loc[r, "min"] == n.loc[r, "max"] else
                          f"{n.loc[r, 'min']}-{n.loc[r, 'max']}") for r in rows if r in n.index}, name="n seeds")


def learning_mark(learning: pd.DataFrame | None, row: str, column: str, setting: str = ALL_SETTINGS) -> str:
    """``NOT_LEARNED`` where the row has not clearly learned the cell within the budget, ``CLIMBING_MARK`` where it is
    still climbing when the budget ends, "" otherwise (or with no ``learning``)."""
    if learning is None or column == AVERAGE:
        return ""
    if inert_cells.not_learned(learning, row, column, setting):
        return NOT_LEARNED
    return CLIMBING_MARK if inert_cells.still_climbing(learning, row, column, setting) is not None else ""


def marked(table: pd.DataFrame, inert: pd.DataFrame, digits: int = 3, learning: pd.DataFrame | None = None
           ) -> pd.DataFrame:
    """A means table as text, with ``NOT_ACTING`` after each cell where the row's change does not act, and (with
    ``learning``) ``NOT_LEARNED`` / ``CLIMBING_MARK`` where it has not clearly learned the task / is still climbing."""
    out = table.map(lambda x: fmt(x, digits)).astype(object)
    for r in table.index:
        for c in table.columns:
            if c != AVERAGE and not inert_cells.acts(inert, r, c):
                out.loc[r, c] = out.loc[r, c] + NOT_ACTING
            else:
                out.loc[r, c] = out.loc[r, c] + learning_mark(learning, r, c)
    return out


def intervals(scores: pd.DataFrame, rows: list[str], columns: list[str]) -> pd.DataFrame:
    """Mean and 95% interval of the mean over seeds (``stats.level``: t interval ∩ [0, 1]) per cell, as text; a
    row with one seed shows its mean only."""
    cols = columns + [AVERAGE]
    out = {}
    for col in cols:
        cells = {}
        for r in rows:
            vals = per_seed(scores, r, col)
            if not vals:
                continue
            lv = stats.level(vals.values())
            cells[r] = fmt(lv.mean) if math.isnan(lv.low) else f"{fmt(lv.mean)} [{fmt(lv.low)}, {fmt(lv.high)}]"
        out[col] = cells
    table = pd.DataFrame(out).reindex(index=[r for r in rows if any(r in out[c] for c in cols)], columns=cols)
    return table.join(seeds_per_row(scores, rows, columns))


def paired_cell(d: stats.Difference) -> str:
    """"+0.120 ▲" (clearly above), "-0.050 ▼" (clearly below), "+0.010" (no clear difference)."""
    arrow = {"above": " ▲", "below": " ▼"}.get(d.direction, "")
    return f"{signed(d.diff)}{arrow}"


def paired_to(scores: pd.DataFrame, inert: pd.DataFrame, rows: list[str], columns: list[str],
              other: str = BASELINE, learning: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per row and task: the paired difference to ``other`` with its 95% interval and n, as text (▲/▼: the interval
    excludes 0, unadjusted); "does not act" where the row's change does not act on the task; with ``learning``,
    ``NOT_LEARNED`` after a cell where either row has not clearly learned the task within the budget."""
    cols = columns + [AVERAGE]
    out = pd.DataFrame(index=[r for r in rows if r != other], columns=cols, dtype=object)
    for r in out.index:
        for col in cols:
            if col != AVERAGE and not inert_cells.acts(inert, r, col):
                out.loc[r, col] = "does not act"
                continue
            d = stats.paired(per_seed(scores, r, col), per_seed(scores, other, col))
            if d.n == 0:
                out.loc[r, col] = ""
            elif d.n < 2:
                out.loc[r, col] = f"{signed(d.diff)} (n=1)"
            else:
                out.loc[r, col] = f"{paired_cell(d)} [{signed(d.low)}, {signed(d.high)}] n={d.n}"
            if learning is not None and col != AVERAGE and any(
                    inert_cells.not_learned(learning, x, col) for x in (r, other)):
                out.loc[r, col] += f" {NOT_LEARNED}"
    return out


def setting_label(column: str, setting: str) -> str:
    return f"{column} · {setting}"


def per_setting(scores: pd.DataFrame, inert: pd.DataFrame, rows: list[str], settings: dict[str, list[str]],
                baseline: str = BASELINE, learning: pd.DataFrame | None = None) -> pd.DataFrame:
    """Rows × settings: "mean (paired difference to ``baseline``)", ▲/▼ where that difference is clear (unadjusted),
    ``NOT_ACTING`` where the change does not act on the setting; the baseline's own row shows its mean; with
    ``learning``, ``NOT_LEARNED`` / ``CLIMBING_MARK`` after the mean (``learning_mark``)."""
    cols = [(c, s) for c, ss in settings.items() for s in ss]
    out = pd.DataFrame(index=rows, columns=[setting_label(c, s) for c, s in cols], dtype=object)
    for r in rows:
        for c, s in cols:
            vals = per_seed(scores, r, c, s)
            if not vals:
                out.loc[r, setting_label(c, s)] = ""
                continue
            mean = fmt(sum(vals.values()) / len(vals)) + learning_mark(learning, r, c, s)
            if r == baseline:
                out.loc[r, setting_label(c, s)] = mean
            elif not inert_cells.acts(inert, r, c, s):
                out.loc[r, setting_label(c, s)] = f"{mean}{NOT_ACTING}"
            else:
                d = stats.paired(vals, per_seed(scores, baseline, c, s))
                out.loc[r, setting_label(c, s)] = f"{mean} ({paired_cell(d)})"
    return out.join(seeds_per_row(scores, rows, list(settings), average=False))


def signal(scores: pd.DataFrame, inert: pd.DataFrame, rows: list[str], settings: dict[str, list[str]],
           baseline: str = BASELINE) -> pd.DataFrame:
    """Per setting: DeltaNet's mean, the range of the rows' means, and the signal ratio (``stats.signal_ratio``:
    variance of the rows' means over the mean variance between one row's seeds), over the rows whose change acts
    on the setting, the null controls and the rows that collapse (Average under half DeltaNet's) left out; a
    note where DeltaNet sits at the ceiling or the floor, so a "beats" or a "lags" claim has no room there."""
    averages = means(scores, rows, list(settings))[AVERAGE]
    collapsed = [r for r in rows if r in averages.index and averages[r] < averages.get(baseline, math.nan) / 2]
    controls = inert_cells.excluded(inert, list(settings))
    out = []
    for column, ss in settings.items():
        for s in ss:
            per_row = {r: list(per_seed(scores, r, column, s).values()) for r in rows
                       if r not in collapsed and r not in controls and inert_cells.acts(inert, r, column, s)}
            per_row = {r: v for r, v in per_row.items() if v}
            row_means = [float(np.mean(v)) for v in per_row.values()]
            ratio, used = stats.signal_ratio(per_row)
            base = per_seed(scores, baseline, column, s)
            base_mean = float(np.mean(list(base.values()))) if base else math.nan
            note = ("ceiling: no row can beat DeltaNet here" if base_mean >= CEILING else
                    "floor: no row can lag DeltaNet here" if base_mean <= FLOOR else "")
            out.append({"task": column, "setting": s, BASELINE: base_mean,
                        "rows' range": f"{fmt(min(row_means))}-{fmt(max(row_means))}" if row_means else "",
                        "between rows / between seeds": ratio, "rows": used, "note": note})
    return pd.DataFrame(out).set_index(["task", "setting"])


def ceiling_settings(scores: pd.DataFrame, settings: dict[str, list[str]], baseline: str = BASELINE
                     ) -> dict[str, list[str]]:
    """Column → its settings where ``baseline`` is at the ceiling."""
    out = {}
    for column, ss in settings.items():
        hit = [s for s in ss if (v := per_seed(scores, baseline, column, s)) and np.mean(list(v.values())) >= CEILING]
        if hit:
            out[column] = hit
    return out


def worst_setting(scores: pd.DataFrame, settings: dict[str, list[str]], row: str, other: str
                  ) -> tuple[str, str] | None:
    """The (column, setting) where ``row`` is below ``other`` on every common seed (at least two) by the largest
    mean difference, or None. Every seed, not a t interval: a setting that some seeds of ``other`` learn and others
    do not is where the largest, most telling gaps are, and where a t interval over three seeds is widest."""
    worst, low = None, 0.0
    for column, ss in settings.items():
        for s in ss:
            d = stats.paired(per_seed(scores, row, column, s), per_seed(scores, other, column, s))
            if d.n >= 2 and max(d.per_seed) < 0 and d.diff < low:
                worst, low = (column, s), d.diff
    return worst


def reported(seed: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The seed document's table with its Average (over its six tasks), restricted to the columns measured here."""
    table = seed.copy()
    table[AVERAGE] = seed.mean(axis=1, skipna=False)
    return table[columns + [AVERAGE]]


def difference(here: pd.DataFrame, there: pd.DataFrame, all_tasks: bool) -> pd.DataFrame:
    """Reproduced minus reported, rows in both. The Average is compared only when all six tasks were measured."""
    rows = [r for r in here.index if r in there.index]
    cols = [c for c in here.columns if c != AVERAGE or all_tasks]
    return here.loc[rows, cols] - there.loc[rows, cols]


def rank_correlation(here: pd.DataFrame, there: pd.DataFrame) -> pd.DataFrame:
    """Per column: Spearman's rank correlation between reproduced and reported means over every row in both, with
    its 95% bootstrap interval (rows resampled in pairs, ``stats.spearman_interval``) and p-value; NaN where either
    side is constant."""
    rows = [r for r in here.index if r in there.index]
    out = []
    for col in here.columns:
        m = pd.DataFrame({"here": here.loc[rows, col], "there": there.loc[rows, col]}).dropna()
        rho = low = high = p = math.nan
        if len(m) >= 3 and m["here"].nunique() > 1 and m["there"].nunique() > 1:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = scipy_stats.spearmanr(m["here"], m["there"])
            rho, p = float(res.statistic), float(res.pvalue)
            _, low, high = stats.spearman_interval(m["here"].to_numpy(), m["there"].to_numpy())
        out.append({"task": col, "spearman_rho": rho, "95% low": low, "95% high": high, "p_value": p, "rows": len(m)})
    return pd.DataFrame(out).set_index("task")


def gap(table: pd.DataFrame, reference: str = REFERENCE) -> pd.DataFrame:
    """Each row's means minus ``reference``'s (positive: better than it)."""
    if reference not in table.index:
        raise ValueError(f"reference row {reference!r} is not in the table; rows: {list(table.index)}")
    return table - table.loc[reference]


def seed_spread(scores: pd.DataFrame, rows: list[str], min_range: float = 0.3) -> pd.DataFrame:
    """The (row, task, setting) cells whose seeds (two or more) span ``min_range`` or more: such a cell sits on a
    knife edge of the scale's budget (a run learns the setting in time or does not)."""
    cols = ["row", "task", "setting", "seeds", "accuracy per seed", "range"]
    sel = scores[(scores["setting"] != ALL_SETTINGS) & scores["variant"].isin(rows)].sort_values("seed", kind="stable")
    out = []
    for (r, col, s), g in sel.groupby(["variant", "column", "setting"], sort=False):
        spread = float(g["acc"].max() - g["acc"].min())
        if len(g) >= 2 and spread >= min_range:
            out.append({"row": r, "task": col, "setting": s, "seeds": ", ".join(str(x) for x in g["seed"]),
                        "accuracy per seed": ", ".join(fmt(a) for a in g["acc"]), "range": spread})
    table = pd.DataFrame(out, columns=cols)
    return table.sort_values(["task", "range", "row"], ascending=[True, False, True], kind="mergesort").reset_index(drop=True)


def cells_with_seeds(scores: pd.DataFrame, rows: list[str], at_least: int = 2) -> int:
    """How many (row, task, setting) cells have ``at_least`` seeds."""
    sel = scores[(scores["setting"] != ALL_SETTINGS) & scores["variant"].isin(rows)]
    return int((sel.groupby(["variant", "column", "setting"])["seed"].nunique() >= at_least).sum())


def ranking(scores: pd.DataFrame, inert: pd.DataFrame, rows: list[str], columns: list[str],
            learning: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every row whose change acts somewhere, by its Average, with its task means, the paired difference of its
    Average to DeltaNet (▲/▼ unadjusted), n, and (with ``learning``) the tasks it has not clearly learned within the
    budget, which its Average includes; the null controls and declared no-ops are not ranked (listed by ``controls``)."""
    controls = inert_cells.excluded(inert, columns)
    ranked = [r for r in rows if r not in controls]
    table = means(scores, ranked, columns).sort_values(AVERAGE, ascending=False, kind="mergesort")
    diffs = {r: stats.paired(per_seed(scores, r, AVERAGE), per_seed(scores, BASELINE, AVERAGE)) for r in table.index}
    table["Δ Average vs delta_net"] = [
        "" if r == BASELINE else f"{paired_cell(diffs[r])} [{signed(diffs[r].low)}, {signed(diffs[r].high)}]"
        for r in table.index]
    table["n seeds"] = seeds_per_row(scores, list(table.index), columns).reindex(table.index)
    if learning is not None:
        table[f"not clearly learned ({NOT_LEARNED})"] = [
            ", ".join(c for c in columns if inert_cells.not_learned(learning, r, c)) for r in table.index]
    scored = table[AVERAGE].notna()  # a row with no seed complete on every task has no Average: listed, not ranked
    table.insert(0, "rank", pd.array([*range(1, int(scored.sum()) + 1), *[pd.NA] * int((~scored).sum())],
                                     dtype="Int64"))
    return table


def shown(table: pd.DataFrame, digits: int = 3, missing: str | None = None) -> pd.DataFrame:
    """Float columns rounded for display, -0.000 printed as 0.000 (so an executed notebook diffs cleanly);
    ``missing``: what an empty cell shows instead of ``NaN`` (the table's legend says what it means)."""
    out = table.copy()
    floats = out.select_dtypes("float").columns
    out[floats] = out[floats].round(digits) + 0.0
    if missing is not None:
        out = out.astype(object).where(out.notna(), missing)
    return out


# --- the mechanisms' own controls (round 6) --------------------------------------------------------------

@dataclass
class Controls:
    """One row with its own controls (``mechanisms.CONTROLS``), compared per task column and the Average: the row
    against its uniform control (``"averaging"``: is the gain averaging?) and the sharp control against the row
    (``"sharpness"``: does sharpness add?). ``diffs`` and ``adjusted`` (Holm over these comparisons, their own
    family) are keyed by ``(column, which)``; ``why`` names the pairs left out (a row has not clearly learned the
    task within the budget)."""
    row: str
    uniform: str
    sharp: str
    columns: list[str]  # the task columns and the Average
    diffs: dict  # (column, which) -> stats.Paired
    adjusted: dict  # (column, which) -> Holm-adjusted p
    why: dict  # (column, which) -> why the pair is not compared


def controls(scores: pd.DataFrame, rows: list[str], columns: list[str],
             learning: pd.DataFrame | None = None) -> list[Controls]:
    """For each row of ``rows`` whose controls are measured here too, its paired comparisons with them
    (``Controls``); none when no such row is measured."""
    found = []
    for row, ctrl in mechanisms.CONTROLS.items():
        uniform, sharp = ctrl["uniform"], ctrl["sharp"]
        if not all(r in rows for r in (row, uniform, sharp)):
            continue
        cols = columns + [AVERAGE]
        diffs, why = {}, {}
        for col in cols:
            for which, a, b in (("averaging", row, uniform), ("sharpness", sharp, row)):
                who = [] if learning is None or col == AVERAGE else [
                    r for r in (a, b) if inert_cells.not_learned(learning, r, col)]
                if who:
                    why[(col, which)] = f"{join_words(who)} has not clearly learned it within the budget"
                else:
                    diffs[(col, which)] = stats.paired(per_seed(scores, a, col), per_seed(scores, b, col))
        keys = list(diffs)
        adjusted = dict(zip(keys, stats.holm([diffs[k].p() for k in keys])))
        found.append(Controls(row, uniform, sharp, cols, diffs, adjusted, why))
    return found


# --- the paired comparisons the sentences say in words (sentences.best_per_task, against_reference, ...) ----------

def acting(scores: pd.DataFrame, inert: pd.DataFrame, rows: list[str], column: str, columns: list[str],
           setting: str = ALL_SETTINGS) -> list[str]:
    """The rows measured on the cell whose change acts there, null controls left out (DeltaNet always kept)."""
    controls = inert_cells.excluded(inert, columns)
    return [r for r in rows if per_seed(scores, r, column, setting) and r not in controls
            and (r == BASELINE or column == AVERAGE or inert_cells.acts(inert, r, column, setting))]


def unlearned(learning: pd.DataFrame | None, rows: list[str], column: str) -> list[str]:
    """The rows (of ``rows``) that have not clearly learned ``column`` within the budget (none on the Average)."""
    if learning is None or column == AVERAGE:
        return []
    return [r for r in rows if inert_cells.not_learned(learning, r, column)]


def mean_of(scores: pd.DataFrame, row: str, column: str, setting: str = ALL_SETTINGS) -> float:
    """A row's mean over seeds on one cell (NaN when it is not measured)."""
    v = per_seed(scores, row, column, setting)
    return float(np.mean(list(v.values()))) if v else math.nan


@dataclass
class Best:
    """One task column (or the Average): the top row among those whose change acts there and that have learned it,
    and its paired difference to each other such row (unadjusted), the rest in the order of their means."""
    column: str
    ranked: list[str]  # best mean first
    mean: float  # the top row's mean over seeds
    n: int  # its seeds
    diffs: dict  # row -> stats.Paired (top minus row), for ranked[1:]
    unlearned: list[str]  # rows left out: not clearly learned within the budget


def best_per_task(scores: pd.DataFrame, inert: pd.DataFrame, rows: list[str], columns: list[str],
                  learning: pd.DataFrame | None = None) -> list[Best]:
    """Per task column and the Average with a row to rank: ``Best``."""
    found = []
    for col in columns + [AVERAGE]:
        present = acting(scores, inert, rows, col, columns)
        left_out = unlearned(learning, present, col)
        present = [r for r in present if r not in left_out]
        if not present:
            continue
        ranked = sorted(present, key=lambda r: -mean_of(scores, r, col))
        top = ranked[0]
        found.append(Best(col, ranked, mean_of(scores, top, col), len(per_seed(scores, top, col)),
                          {r: stats.paired(per_seed(scores, top, col), per_seed(scores, r, col))
                                        for r in ranked[1:]}, left_out))
    return found


@dataclass
class Against:
    """One task column (or the Average): each row whose change acts there against ``reference``, paired (row minus
    reference, unadjusted); none when the reference has not clearly learned the task (``reference_unlearned``)."""
    column: str
    diffs: dict  # row -> stats.Paired
    unlearned: list[str]  # rows left out: not clearly learned within the budget
    reference_unlearned: bool = False
    reference_unlearned_tasks: list[str] = field(default_factory=list)  # on the Average: tasks the reference lacks


def against_reference(scores: pd.DataFrame, inert: pd.DataFrame, rows: list[str], columns: list[str],
                      reference: str = REFERENCE, learning: pd.DataFrame | None = None) -> list[Against]:
    """Per task column and the Average where ``reference`` and another acting row are measured: ``Against``."""
    found = []
    for col in columns + [AVERAGE]:
        present = [r for r in acting(scores, inert, rows, col, columns) if r != reference]
        if not per_seed(scores, reference, col) or not present:
            continue
        if unlearned(learning, [reference], col):
            found.append(Against(col, {}, [], reference_unlearned=True))
            continue
        left_out = unlearned(learning, present, col)
        present = [r for r in present if r not in left_out]
        lacking = ([c for c in columns if inert_cells.not_learned(learning, reference, c)]
                   if col == AVERAGE and learning is not None else [])
        found.append(Against(col, {r: stats.paired(per_seed(scores, r, col), per_seed(scores, reference, col))
                                   for r in present}, left_out, False, lacking))
    return found


@dataclass
class BaselinePair:
    """DeltaNet against Gated DeltaNet on one task column (or the Average), paired (DeltaNet minus Gated DeltaNet)."""
    column: str
    diff: object  # stats.Paired
    unlearned: list[str]  # which of the two has not clearly learned the task (then they are not compared)
    ceiling: bool  # both at or above the ceiling


def delta_net_against_gated(scores: pd.DataFrame, columns: list[str],
                            learning: pd.DataFrame | None = None) -> list[BaselinePair]:
    """Per task column and the Average where both baselines are measured: ``BaselinePair``."""
    found = []
    for col in columns + [AVERAGE]:
        d = stats.paired(per_seed(scores, BASELINE, col), per_seed(scores, REFERENCE, col))
        if d.n:
            found.append(BaselinePair(col, d, unlearned(learning, [BASELINE, REFERENCE], col),
                                      min(mean_of(scores, BASELINE, col), mean_of(scores, REFERENCE, col)) >= CEILING))
    return found


def no_op_differences(scores: pd.DataFrame, inert: pd.DataFrame, rows: list[str],
                      columns: list[str]) -> dict[str, dict]:
    """Each declared no-op row (``inert.DECLARED_NO_OPS``) measured here that is not a null control: its paired
    difference to DeltaNet per task column (what rounding alone does to a score)."""
    nulls = inert_cells.null_controls(inert, columns)
    return {v: {c: stats.paired(per_seed(scores, v, c), per_seed(scores, BASELINE, c)) for c in columns}
            for v in inert_cells.DECLARED_NO_OPS if v in rows and v not in nulls}


def gated_lag(scores: pd.DataFrame, settings: dict[str, list[str]]) -> tuple[str, str, object] | None:
    """Where Gated DeltaNet lags DeltaNet the most on every seed (``worst_setting``): ``(column, setting, paired
    difference gated_delta_net minus delta_net)``; None when it lags on every seed nowhere."""
    worst = worst_setting(scores, settings, REFERENCE, BASELINE)
    if worst is None:
        return None
    col, s = worst
    return col, s, stats.paired(per_seed(scores, REFERENCE, col, s), per_seed(scores, BASELINE, col, s))


def row_against(scores: pd.DataFrame, inert: pd.DataFrame, row: str, references: list[str],
                columns: list[str]) -> dict[tuple[str, str], object]:
    """``row`` against each reference, paired, per task column where its change acts (and the Average):
    ``(column, reference) -> stats.Paired`` (row minus reference)."""
    found = {}
    for col in columns + [AVERAGE]:
        mine = per_seed(scores, row, col)
        if not mine or (col != AVERAGE and not inert_cells.acts(inert, row, col)):
            continue
        for ref in references:
            if ref != row and per_seed(scores, ref, col):
                found[(col, ref)] = stats.paired(mine, per_seed(scores, ref, col))
    return found
