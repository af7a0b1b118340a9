"""Every sentence of the notebooks, generated from the data it sits beside: a number, ranking or verdict in the
prose is computed here, never typed in. Each function takes the frames it reads (``study.Study.scores``, the inert
cells, a list of rows) and returns markdown.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..params import Round, Scale
from . import claims as C
from . import inert as inert_cells
from . import mechanisms, stats
from .names import ALL_SETTINGS, AVERAGE, BASELINE, REFERENCE, fmt, join_words, signed
from .study import per_seed
from .tables import CEILING, NOT_ACTING, setting_label, worst_setting


# --- the round and its data -------------------------------------------------------------------------------

def header(rnd: Round, scale: Scale) -> str:
    """The round's title, question, proposal and scale, as markdown."""
    rows = ", ".join(f"`{v}`" for v in rnd.variants)
    return (f"# {rnd.title}\n\n**Question.** {rnd.question}\n\n"
            f"**Seed document** `{rnd.seed_document}`. **The round's rows** ({len(rnd.variants)}): {rows}.\n\n"
            f"**Its proposal, trained and measured here:** `{rnd.proposal}`: {rnd.proposal_rationale}\n\n"
            f"**Scale `{scale.name}`.** {scale.description}\n\n"
            f"The seed tables are MAD-protocol numbers (12,800 training examples, up to 200 epochs, a 3 × 2 "
            f"lr × wd sweep, 66 settings) said to be averaged over 4 seeds; every number measured here is at the "
            f"reduced scale `{scale.name}` named above, so absolute values are not expected to match, only "
            f"(at best) the rankings.")


def method() -> str:
    """How the verdicts are reached, in the words the notebook uses."""
    return (f"**How two rows are compared.** A seed fixes the data, the initialisation and the batch order of every "
            f"row, so rows are compared seed by seed: {stats.METHOD}. A single row's interval is the t interval of "
            f"its mean over seeds, intersected with [0, 1] (an accuracy cannot leave it, so the coverage is kept). "
            f"Verdicts: *{C.HOLDS}* (a clear difference the claimed way), *{C.CONTRADICTED}* (a clear difference the "
            f"other way), *not established with n seeds* (no clear difference), *{C.NOT_TESTABLE}* (the change does "
            f"not act on the cells the claim is about, or the claim states a MAD-scale number with no same-scale "
            f"reading). \"No worse\" is judged against the margin written in the round file; a MAD-scale threshold "
            f"through the translation written there, shown beside the verdict.")


def training_note(runs: pd.DataFrame, rows: list[str], columns: list[str], incomplete: pd.DataFrame, tag: str,
                  conclusion: bool) -> str:
    seeds = sorted({int(s) for s in runs["seed"]}) if not runs.empty else []
    text = (f"{tag}: {len(runs)} stored runs for {len(rows)} rows on {len(columns)} tasks "
            f"(seeds used: {', '.join(map(str, seeds))}).")
    if conclusion:
        text += f" This concluding round also trains every other registered variant: {len(rows)} rows in all."
    if not incomplete.empty:
        parts = [f"{r['variant']} seed {r['seed']} on {r['column']} (lacks {r['missing']})"
                 for _, r in incomplete.iterrows()]
        text += (f" Not counted, because the seed lacks a setting of the task: {join_words(parts)}; a task's score "
                 f"needs every setting the scale asks for.")
    return text


# --- where a change does not act -------------------------------------------------------------------------

def inert_note(inert: pd.DataFrame, rows: list[str], columns: list[str], tag: str) -> str:
    """Which rows are DeltaNet's runs bit for bit on which tasks, and why."""
    whole = inert[(inert["setting"] == ALL_SETTINGS) & inert["variant"].isin(rows) & inert["column"].isin(columns)]
    partial = inert[(inert["setting"] != ALL_SETTINGS) & inert["variant"].isin(rows) & inert["column"].isin(columns)]
    partial = partial[[not ((whole["variant"] == v) & (whole["column"] == c)).any()
                       for v, c in zip(partial["variant"], partial["column"])]]
    if whole.empty and partial.empty:
        return (f"{tag}: every row's runs differ from DeltaNet's (test loss per epoch) on every task it was measured "
                f"on, so each change acted on each task.")
    groups: dict[tuple[tuple[str, ...], str], list[str]] = {}
    for v, g in whole.groupby("variant", sort=False):
        cols = tuple(c for c in columns if c in set(g["column"]))
        why = inert_cells.ONE_CHUNK if set(g["reason"]) == {inert_cells.ONE_CHUNK} else inert_cells.NEVER_CHANGED
        groups.setdefault((cols, why), []).append(v)
    parts = [f"{join_words(vs)} on {'every task measured' if list(cols) == columns else join_words(cols)} ({why})"
             for (cols, why), vs in sorted(groups.items(), key=lambda kv: (-len(kv[0][0]), kv[0]))]
    text = (f"{tag}, the change does not act here at this scale, for: {'; '.join(parts)}. Those runs are DeltaNet's bit "
            f"for bit (the same test loss at every epoch of every run), so the scores there are DeltaNet's, not "
            f"evidence about the change: they are left out of verdicts, rankings and \"best\" lists, and marked "
            f"`{NOT_ACTING}` in the tables and hatched in the heat maps.")
    if not partial.empty:
        text += " On some settings only: " + "; ".join(
            f"{v} on {setting_label(c, s)}" for v, c, s in zip(partial["variant"], partial["column"], partial["setting"])) + "."
    return text


def null_control_note(scores: pd.DataFrame, inert: pd.DataFrame, rows: list[str], columns: list[str], tag: str) -> str:
    """The null controls (inert on every task) and the declared no-ops (identity up to rounding), and what their
    differences to DeltaNet measure."""
    out = []
    for v in inert_cells.null_controls(inert, columns):
        if v not in rows:
            continue
        out.append(f"**{v}** is a null control {tag}: its runs are DeltaNet's bit for bit on every task, so its "
                   f"difference to DeltaNet is exactly 0 on every seed. That shows the pipeline reproduces a run "
                   f"exactly (a paired difference elsewhere is the change's doing, not the run's); it measures no "
                   f"noise, and it is not ranked as a variant.")
    for v, why in inert_cells.DECLARED_NO_OPS.items():
        if v not in rows or v in inert_cells.null_controls(inert, columns):
            continue
        diffs = {c: stats.paired(per_seed(scores, v, c), per_seed(scores, BASELINE, c)) for c in columns}
        moved = [f"{c} {signed(d.diff)} (per seed {', '.join(signed(x) for x in d.per_seed)})"
                 for c, d in diffs.items() if d.n and any(abs(x) > 0 for x in d.per_seed)]
        largest = max((abs(x) for d in diffs.values() for x in d.per_seed), default=0.0)
        out.append(f"**{v}** is a mathematical no-op ({why}), but its runs are not bit-identical to DeltaNet's: rounding "
                   f"differs, and the trajectories drift apart. Its differences to DeltaNet are what rounding alone "
                   f"does to a score {tag}: "
                   + (f"{'; '.join(moved)}; the largest single-seed difference is {fmt(largest)}." if moved else
                      "none on any task measured.")
                   + " A difference between two rows of that size is run-to-run noise. It is shown in the tables, "
                     "not ranked as a variant.")
    return "\n\n".join(out) if out else f"{tag}: no row is a null control."


# --- what the numbers say --------------------------------------------------------------------------------

def _acting(scores, inert, rows, column, columns, setting=ALL_SETTINGS):
    """The rows measured on the cell whose change acts there, null controls left out (DeltaNet always kept)."""
    controls = inert_cells.excluded(inert, columns)
    return [r for r in rows if per_seed(scores, r, column, setting) and r not in controls
            and (r == BASELINE or column == AVERAGE or inert_cells.acts(inert, r, column, setting))]


def _mean(scores, r, column, setting=ALL_SETTINGS) -> float:
    v = per_seed(scores, r, column, setting)
    return float(np.mean(list(v.values()))) if v else math.nan


def best_per_task(scores: pd.DataFrame, inert: pd.DataFrame, rows: list[str], columns: list[str], tag: str) -> list[str]:
    """Per task (and the Average): the top row among those whose change acts there, and which rows it is clearly
    ahead of (paired), so no two sentences can disagree."""
    out = [f"{tag}, among the rows whose change acts on the task (null controls left out):"]
    for col in columns + [AVERAGE]:
        present = _acting(scores, inert, rows, col, columns)
        if not present:
            continue
        ranked = sorted(present, key=lambda r: -_mean(scores, r, col))
        top = ranked[0]
        n = len(per_seed(scores, top, col))
        text = f"**{col}**: top {top} {fmt(_mean(scores, top, col))} (n={n})"
        diffs = {r: stats.paired(per_seed(scores, top, col), per_seed(scores, r, col)) for r in ranked[1:]}
        unclear = [r for r, d in diffs.items() if d.direction != "above"]
        if not diffs:
            pass
        elif not unclear:
            text += f", clearly ahead of all {len(diffs)} other rows"
        else:
            second = ranked[1]
            d = diffs[second]
            text += (f"; clearly ahead of {len(diffs) - len(unclear)} of the {len(diffs)} other rows; not of "
                     f"{join_words(unclear[:5])}{', …' if len(unclear) > 5 else ''} (against the runner-up {second}: "
                     f"{signed(d.diff)}, n={d.n})")
        out.append(text + ".")
    return out


def against_reference(scores: pd.DataFrame, inert: pd.DataFrame, rows: list[str], columns: list[str], tag: str,
                      reference: str = REFERENCE) -> list[str]:
    """Per task: the rows clearly above and clearly below ``reference`` (paired), and how many show no clear
    difference."""
    out = [f"{tag}, against `{reference}` (paired over seeds):"]
    for col in columns + [AVERAGE]:
        present = [r for r in _acting(scores, inert, rows, col, columns) if r != reference]
        if not per_seed(scores, reference, col) or not present:
            continue
        diffs = {r: stats.paired(per_seed(scores, r, col), per_seed(scores, reference, col)) for r in present}
        above = [f"{r} ({signed(d.diff)})" for r, d in diffs.items() if d.direction == "above"]
        below = [f"{r} ({signed(d.diff)})" for r, d in diffs.items() if d.direction == "below"]
        rest = [r for r, d in diffs.items() if d.direction == "unclear"]
        text = f"**{col}**: clearly above it: {', '.join(above) or 'no row'}; clearly below: {', '.join(below) or 'no row'}"
        if rest:
            text += f"; no clear difference: {len(rest)} row(s)"
        out.append(text + ".")
    return out


def where_delta_net_lags(scores: pd.DataFrame, columns: list[str], tag: str) -> str:
    """DeltaNet against Gated DeltaNet per task, paired, with the per-seed differences."""
    parts = {"below": [], "above": [], "unclear": []}
    for col in columns + [AVERAGE]:
        d = stats.paired(per_seed(scores, BASELINE, col), per_seed(scores, REFERENCE, col))
        if d.n:
            ceiling = min(_mean(scores, BASELINE, col), _mean(scores, REFERENCE, col)) >= CEILING
            parts[d.direction].append(f"{col} ({signed(d.diff)}; per seed {', '.join(signed(x) for x in d.per_seed)}"
                                      + (", both at the ceiling" if ceiling else "") + ")")
    words = {"below": "clearly lags it on", "above": "is clearly ahead of it on", "unclear": "shows no clear difference on"}
    said = [f"{words[k]} {'; '.join(v)}" for k, v in parts.items() if v]
    return f"{tag}: DeltaNet against Gated DeltaNet " + (" — ".join(said) if said else "is not measured") + "."


def seed_spread_note(spread: pd.DataFrame, cells: int, tag: str, min_range: float) -> str:
    """A sentence on the seed-spread table: how many cells with two or more seeds disagree by ``min_range``."""
    if cells == 0:
        return f"{tag}: no row has two seeds on any setting, so the spread over seeds is not measured."
    if spread.empty:
        return (f"{tag}: in each of the {cells} (row, task, setting) cells with two or more seeds, the seeds agree "
                f"within {min_range:g} accuracy.")
    per_task = spread.groupby("task", sort=True).size()
    where = join_words([f"{task} ({n})" for task, n in per_task.items()])
    seeds = sorted({len(str(s).split(",")) for s in spread["seeds"]})
    return (f"{tag}: {len(spread)} of the {cells} (row, task, setting) cells with two or more seeds have seeds that "
            f"disagree by {min_range:g} accuracy or more: {where}. There a run either learns the setting within the "
            f"scale's budget or does not, the per-seed differences are far from normal, and a paired t interval over "
            f"{join_words([str(n) for n in seeds], 'or')} seeds says little.")


def ceiling_note(ceilings: dict[str, list[str]], tag: str) -> str:
    if not ceilings:
        return f"{tag}: DeltaNet is below {CEILING:g} on every setting, so every setting leaves room above it."
    parts = [f"{c} ({join_words(s)})" for c, s in ceilings.items()]
    return (f"{tag}, DeltaNet is at the ceiling (≥ {CEILING:g}) on {join_words(parts)}: no row can beat it there, so a "
            f"\"beats\" claim on those tasks rests on their other settings, and a task column that averages a ceiling "
            f"setting with an open one halves the visible difference.")


# --- mechanisms -------------------------------------------------------------------------------------------

def softmax_note(rows: list[str]) -> str:
    """Why a softmax inside the chunk is a near-uniform average here (only for the rows that have one)."""
    present = [r for r in mechanisms.SOFTMAX_OF_SCALED_SCORES if r in rows]
    if not present:
        return "No row of this round takes a softmax of the raw scores inside the chunk."
    d = mechanisms.head_dim()
    b = mechanisms.logit_bound(d)
    return (f"**What \"softmax\" means here.** The layer L2-normalises q and k and the rule scales q by d_k^-1/2, so "
            f"with d_k = {d} every intra-chunk score q·k lies in [{-b:.3f}, {b:.3f}], and two weights of one softmax "
            f"row differ by at most a factor e^{2 * b:.2f} = {mechanisms.weight_ratio(d):.2f}. In "
            f"{join_words(present)} the softmax is therefore a near-uniform causal average over the chunk, not a "
            f"sharp lookup: whatever these rows gain, they gain from that average (an extra running mean of the "
            f"chunk's values), and a verdict that credits \"softmax attention\" credits that.")


def gated_note(scores: pd.DataFrame, curves: pd.DataFrame, settings: dict[str, list[str]], tag: str) -> str | None:
    """Where Gated DeltaNet lags DeltaNet the most on every seed (``tables.worst_setting``), with both learning
    curves in numbers; None when it lags on every seed nowhere."""
    worst = worst_setting(scores, settings, REFERENCE, BASELINE)
    if worst is None:
        return None
    col, s = worst
    worst_d = stats.paired(per_seed(scores, REFERENCE, col, s), per_seed(scores, BASELINE, col, s))
    sel = curves[(curves["column"] == col) & (curves["setting"] == s)]
    by_epoch = {v: g.groupby("epoch")["acc"].mean() for v, g in sel.groupby("variant")}
    if REFERENCE not in by_epoch or BASELINE not in by_epoch:
        return None
    g, b = per_seed(scores, REFERENCE, col, s), per_seed(scores, BASELINE, col, s)
    rise = {v: float(c.iloc[-1] - c.iloc[0]) for v, c in by_epoch.items()}
    return (f"{tag}, Gated DeltaNet lags DeltaNet by the most, on every seed, on {setting_label(col, s)}: "
            f"{signed(worst_d.diff)} paired "
            f"(per seed: gated_delta_net {', '.join(fmt(g[k]) for k in sorted(g))}; delta_net "
            f"{', '.join(fmt(b[k]) for k in sorted(b))}). Test accuracy by epoch, mean over seeds: gated_delta_net "
            f"{', '.join(fmt(x, 2) for x in by_epoch[REFERENCE])}; delta_net "
            f"{', '.join(fmt(x, 2) for x in by_epoch[BASELINE])}. Over the {len(by_epoch[REFERENCE])} epochs of the "
            f"budget Gated DeltaNet's mean curve rises by {fmt(rise[REFERENCE], 2)}, DeltaNet's by "
            f"{fmt(rise[BASELINE], 2)} (figure below)"
            + (": when the budget ends it has barely started to learn the setting, so this scale measures how late "
               "it starts, not where it ends." if rise[REFERENCE] < rise[BASELINE] / 2 else "."))


# --- claims -----------------------------------------------------------------------------------------------

def seed_noise_note(noise: stats.TableNoise | None) -> str:
    if noise is None:
        return ("The seed table has no two rows that are the same model on a task, so its own run-to-run noise is "
                "not measured: its verdicts use the point values, and any difference counts.")
    return (f"**The seed table's own noise.** On {noise.column}, whose sequences fit in one chunk at every MAD setting, "
            f"{join_words(noise.rows)} are the same model (their changes act only between chunks): their reported "
            f"{noise.column} spans {fmt(noise.sd)} (sd over {noise.k} rows), the run-to-run noise of one reported cell. "
            f"A difference between two reported cells counts as clear only beyond ±{fmt(noise.half(2))} "
            f"(95%, t with {noise.k - 1} degrees of freedom), on every task (the only noise the tables let one measure); "
            f"the Average's is taken as sd/√6 (six tasks of independent, equal noise: an assumption). A threshold is "
            f"judged on the point value.")


def verdicts_markdown(table: pd.DataFrame, tag: str, what: str = "claims") -> str:
    """The claims (or success criteria) as a markdown list: verdict here, the claim, how a MAD-scale threshold was
    read at this scale, the evidence, the verdict on the seed document's own numbers, and the claim's source (what
    it tests) where the round file gives one."""
    if table.empty:
        return f"The round has no {what}."
    lines = []
    for _, r in table.iterrows():
        line = f"- **{r['verdict here']}**: {r['claim']}."
        if r["read at this scale as"]:
            line += f" *Read at this scale as: {r['read at this scale as']}.*"
        line += f" {r['evidence']}."
        seed = r["on the seed's own table"]
        line += f" *On the seed's own table: {seed}*" + (f" ({r['seed evidence']})." if r["seed evidence"] else ".")
        if r.get("source"):
            line += f" Source: {r['source']}"
        lines.append(line)
    head = f"{tag}, of {len(table)}: {C.words_in(list(table['verdict here']))}."
    return head + "\n\n" + "\n".join(lines)


def proposal_summary(statuses: list[str], proposal: str, tag: str) -> str:
    if not statuses:
        return f"{tag}: {proposal} has no success criteria to check."
    return (f"{tag}: of the {len(statuses)} success criteria of `{proposal}`, {C.words_in(statuses)}: "
            f"**{C.proposal_outcome(statuses)}**.")


# --- the conclusion ---------------------------------------------------------------------------------------

def conclusion(ranking: pd.DataFrame, controls: list[str], proposals: pd.DataFrame, tag: str) -> list[str]:
    """The study's closing sentences: the top of the ranking and how it stands paired, the baselines' ranks, the
    rows not ranked, the proposals' outcomes."""
    unscored = [r for r in ranking.index if pd.isna(ranking.loc[r, "rank"])]
    ranking = ranking.drop(index=unscored)
    top = ranking.head(3)

    def place(row: str, name: str) -> str:
        return f"{name} ranks #{int(ranking.loc[row, 'rank'])}" if row in ranking.index else f"{name} is not ranked"

    out = [f"{tag}, over the {len(ranking)} ranked rows: the highest MAD averages are "
           + ", ".join(f"{r} ({fmt(row[AVERAGE])})" for r, row in top.iterrows())
           + f"; {place(REFERENCE, 'Gated DeltaNet')}, {place(BASELINE, 'DeltaNet')}."]
    clear = [r for r in ranking.index if "▲" in str(ranking.loc[r, "Δ Average vs delta_net"])]
    worse = [r for r in ranking.index if "▼" in str(ranking.loc[r, "Δ Average vs delta_net"])]
    out.append(f"Paired against DeltaNet on the Average: clearly above it: {join_words(clear) or 'no row'}; clearly "
               f"below it: {join_words(worse) or 'no row'}; the other "
               f"{len(ranking) - len(clear) - len(worse) - (BASELINE in ranking.index)} show no clear difference.")
    if unscored:
        out.append(f"Not scored: {join_words(unscored)} (no seed with every task complete, so no MAD average).")
    if controls:
        out.append(f"Not ranked: {join_words(controls)} (null controls: their change does not act, or is the identity "
                   f"up to rounding).")
    groups: dict[str, list[str]] = {}
    for p, o in zip(proposals["proposal"], proposals["outcome"]):
        groups.setdefault(o, []).append(p)
    out.append(f"Of the {len(proposals)} proposals, on their own success criteria: "
               + "; ".join(f"{o}: {join_words(ps)}" for o, ps in groups.items()) + ".")
    return out


# --- one variant against the baselines (run_variant.ipynb) -----------------------------------------------

def row_against(scores: pd.DataFrame, inert: pd.DataFrame, row: str, references: list[str], columns: list[str]) -> list[str]:
    """One sentence per task: the row's score and its paired difference to each reference."""
    out = []
    for col in columns + [AVERAGE]:
        mine = per_seed(scores, row, col)
        if not mine:
            continue
        if col != AVERAGE and not inert_cells.acts(inert, row, col):
            out.append(f"**{col}**: {row} scores {fmt(_mean(scores, row, col))} (n={len(mine)}): the change does not "
                       f"act here at this scale ({inert_cells.reason(inert, row, col)}); these are DeltaNet's runs.")
            continue
        parts = []
        for ref in references:
            if ref == row or not per_seed(scores, ref, col):
                continue
            d = stats.paired(mine, per_seed(scores, ref, col))
            word = {"above": "clearly above", "below": "clearly below"}.get(
                d.direction, f"no clear difference with {d.n} seeds")
            parts.append(f"{ref} {fmt(_mean(scores, ref, col))} ({signed(d.diff)}, {word})")
        out.append(f"**{col}**: {row} scores {fmt(_mean(scores, row, col))} (n={len(mine)}); " + "; ".join(parts) + ".")
    return out


def seeds_note(scores: pd.DataFrame, rows: list[str]) -> str:
    sel = scores[scores["variant"].isin(rows) & (scores["setting"] == ALL_SETTINGS)]
    ns = sorted(set(sel.groupby(["variant", "column"])["seed"].nunique()))
    if not ns:
        return "No runs are stored for these rows yet."
    return (f"Seeds per cell: {', '.join(map(str, ns))}. {stats.METHOD[0].upper()}{stats.METHOD[1:]}"
            + (f"; with fewer than {stats.MIN_SEEDS} seeds no difference is called." if min(ns) < stats.MIN_SEEDS else "."))
