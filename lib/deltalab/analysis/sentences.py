"""Every sentence of the notebooks, generated from the data it sits beside: a number, ranking or verdict in the
prose is computed here, never typed in. Each function takes the frames it reads (``study.Study.scores``, the inert
cells, a list of rows) and returns markdown.
"""
from __future__ import annotations

import math

import pandas as pd

from ..params import Round, Scale
from . import claims as C
from . import inert as inert_cells
from . import mechanisms, stats
from .names import ALL_SETTINGS, AVERAGE, BASELINE, REFERENCE, fmt, join_words, signed
from .study import per_seed
from .tables import (CEILING, CLIMBING_MARK, NOT_ACTING, NOT_LEARNED, Against, BaselinePair, Best, Controls,
                     mean_of, setting_label)


# --- the round and its data -------------------------------------------------------------------------------

def opening(words: str) -> str:
    """``words`` as the start of a sentence ("at scale `cpu`" → "At scale `cpu`")."""
    return words[:1].upper() + words[1:]


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


def method(n: int | None = None) -> str:
    """How the verdicts are reached, in the words the notebook uses; ``n``: the seeds per cell here (what n seeds
    allow is then said in numbers)."""
    text = (f"**How two rows are compared.** A seed fixes the data, the initialisation and the batch order of every "
            f"row, so rows are compared seed by seed: {stats.METHOD}. A single row's interval is the t interval of "
            f"its mean over seeds, intersected with [0, 1] (an accuracy cannot leave it, so the coverage is kept). "
            f"Verdicts: *{C.HOLDS}* (a clear difference the claimed way), *{C.CONTRADICTED}* (a clear difference the "
            f"other way, or a claim false by construction: a change credited with a gain on a task where it cannot "
            f"act, here or in MAD's runs), *not established with n seeds* (no clear difference), *{C.NOT_TESTABLE}* "
            f"(the change does not act on the cells the claim is about, the scale does not measure the setting it "
            f"names, or the claim states a MAD-scale number with no same-scale reading), *not testable: X has not "
            f"clearly learned T* (a row it compares has not clearly learned the task within the budget). A verdict on "
            f"cells a row it compares is still learning (or, on an Average, has not clearly learned) says so in its "
            f"word: *holds at this budget (X still learning T): {C.SPEED}* when every cell deciding it has such a "
            f"row, *…: {C.PART_SPEED}* when cells both rows have finished carry part of it (on an Average: the "
            f"difference over those tasks alone is clear the same way). A claim on every task that leaves tasks out "
            f"says so: *holds, judged on 2 of 6 tasks (Compress and Memorize; X has not clearly learned the "
            f"others)*; tasks left out never make a verdict a speed difference. Every part of a claim is a test of "
            f"the round's family (\"best\": one per row it must beat; \"every task\": one per task; a combination: "
            f"one per component), and the verdict is its weakest part's. \"No worse\" is judged against the margin written in the round "
            f"file; a MAD-scale threshold through the translation written there, shown beside the verdict.")
    if n:
        floor = stats.sign_flip_floor(n)
        text += (f"\n\n**What {n} seeds allow.** An exact test that uses only the signs of the {n} per-seed "
                 f"differences (a sign-flip permutation test) has 2^{n} = {2 ** n} equally likely sign patterns when "
                 f"two rows do not differ, so its smallest two-sided p is 2/{2 ** n} = {floor:.3g}"
                 + (f", above {1 - stats.LEVEL:.2f}: no verdict here could be reached from the signs alone. Every "
                    f"decisive verdict rests on the t interval, which assumes the {n} differences are roughly normal "
                    f"(an assumption {n} values cannot check). " if floor >= 1 - stats.LEVEL else ". ")
                 + "Beside each decisive verdict stands its sign count (\"4 of 4 seeds\": how many seeds go its way).")
    return text


def learning_note(learning: pd.DataFrame, rows: list[str], columns: list[str], tag: str) -> str:
    """The rows that have not clearly learned a task within the budget, and the tasks where rows are still climbing
    when it ends (``inert.learning``)."""
    whole = learning[(learning["setting"] == ALL_SETTINGS) & learning["variant"].isin(rows)
                     & learning["column"].isin(columns)]
    rule = (f"The rule (one for every round, table and figure, on each row's learning curve, the mean over seeds): a "
            f"row *has not clearly learned* a task when its curve never clearly exceeds the input-blind level (always "
            f"the same target class: 1/K for K target classes under MAD's macro accuracy), whatever its rise: at its highest "
            f"epoch the seeds' one-sided 95% lower bound (a one-sample t test) must clear the level by "
            f"{fmt(inert_cells.LEARNED_MARGIN)}; it is *still learning* when its curve ends under "
            f"{inert_cells.CEILING:g} and gained more than {fmt(inert_cells.CLIMBING)} in the last epoch, or peaks at "
            f"the last epoch (more than {fmt(inert_cells.PEAK_GAIN)} above every earlier one); otherwise it has "
            f"*finished*.")
    unlearned = {c: [v for v in whole[(whole["column"] == c) & ~whole["learned"]]["variant"]] for c in columns}
    unlearned = {c: vs for c, vs in unlearned.items() if vs}
    text = f"{opening(tag)}: " + (
        "every row has clearly learned every task within the budget." if not unlearned else
        "rows that have not clearly learned a task within the budget: " + "; ".join(
            f"{c}: {join_words(vs)}" for c, vs in unlearned.items())
        + f". A comparison with such a row says when it starts learning, not where it ends: a verdict on it is "
          f"*not testable: X has not clearly learned T*; on the Average its word names those tasks; a claim on "
          f"every task leaves them out and its word says so (*judged on k of n tasks*); tables mark the cell "
          f"`{NOT_LEARNED}`, heat maps cross-hatch it.")
    climbing = {c: int(((whole["column"] == c) & whole["climbing"] & whole["learned"]).sum()) for c in columns}
    climbing = {c: k for c, k in climbing.items() if k}
    if climbing:
        text += (" Still climbing when the budget ends (`" + CLIMBING_MARK + "` in the tables): "
                 + join_words(f"{k} of {len(set(whole[whole['column'] == c]['variant']))} rows on {c}"
                              for c, k in climbing.items())
                 + ": there a score is taken mid-learning, and a verdict that compares such a row says so in its word "
                   f"(*at this budget*: {C.SPEED}, or {C.PART_SPEED} where cells both rows have finished carry "
                   f"part of it).")
    return text + " " + rule


def screen_note(paired: pd.DataFrame, tag: str) -> str:
    """What the ▲/▼ of a paired table are: an unadjusted screen, with its count of tests and marks."""
    cells = [str(x) for x in paired.to_numpy().ravel() if str(x) and "[" in str(x)]
    marks = sum(("▲" in x) or ("▼" in x) for x in cells)
    return (f"{opening(tag)}: ▲/▼ mark an unadjusted screen, each cell tested on its own: {marks} of the {len(cells)} "
            f"differences in this table have an interval that excludes 0; if no row differed from DeltaNet anywhere, "
            f"about {(1 - stats.LEVEL) * len(cells):.0f} would by chance. The verdicts below are adjusted for the "
            f"number of claims they judge; these marks are not.")


def training_note(runs: pd.DataFrame, rows: list[str], columns: list[str], incomplete: pd.DataFrame, tag: str,
                  conclusion: bool) -> str:
    seeds = sorted({int(s) for s in runs["seed"]}) if not runs.empty else []
    text = (f"{opening(tag)}: {len(runs)} stored runs for {len(rows)} rows on {len(columns)} tasks "
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
        return (f"{opening(tag)}: every row's runs differ from DeltaNet's (test loss per epoch) on every task it was measured "
                f"on, so each change acted on each task.")
    groups: dict[tuple[tuple[str, ...], str], list[str]] = {}
    for v, g in whole.groupby("variant", sort=False):
        cols = tuple(c for c in columns if c in set(g["column"]))
        why = inert_cells.common_reason(g["reason"])
        groups.setdefault((cols, why), []).append(v)
    parts = [f"{join_words(vs)} on {'every task measured' if list(cols) == columns else join_words(cols)} ({why})"
             for (cols, why), vs in sorted(groups.items(), key=lambda kv: (-len(kv[0][0]), kv[0]))]
    text = (f"{opening(tag)}, the change does not act here at this scale, for: {'; '.join(parts)}. Those runs are DeltaNet's bit "
            f"for bit (the same test loss at every epoch of every run), so the scores there are DeltaNet's, not "
            f"evidence about the change: they are left out of verdicts, rankings and \"best\" lists, and marked "
            f"`{NOT_ACTING}` in the tables and hatched in the heat maps.")
    if not partial.empty:
        text += " On some settings only: " + "; ".join(
            f"{v} on {setting_label(c, s)}" for v, c, s in zip(partial["variant"], partial["column"], partial["setting"])) + "."
    return text


def null_control_note(no_ops: dict[str, dict], inert: pd.DataFrame, rows: list[str], columns: list[str],
                      tag: str) -> str:
    """The null controls (inert on every task) and the declared no-ops (identity up to rounding; their paired
    differences to DeltaNet from ``tables.no_op_differences``), and what those differences measure."""
    out = []
    for v in inert_cells.null_controls(inert, columns):
        if v not in rows:
            continue
        out.append(f"**{v}** is a null control {tag}: its runs are DeltaNet's bit for bit on every task, so its "
                   f"difference to DeltaNet is exactly 0 on every seed. That shows the pipeline reproduces a run "
                   f"exactly (a paired difference elsewhere is the change's doing, not the run's); it measures no "
                   f"noise, and it is not ranked as a variant.")
    for v, diffs in no_ops.items():
        why = inert_cells.DECLARED_NO_OPS[v]
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
    return "\n\n".join(out) if out else f"{opening(tag)}: no row is a null control."


# --- what the numbers say --------------------------------------------------------------------------------

_mean = mean_of  # a row's mean over seeds on one cell


def best_per_task(best: list[Best], tag: str, learned_only: bool = False) -> list[str]:
    """Per task (and the Average): the top row among those whose change acts there (``learned_only``: and that have
    learned the task), and which rows it is clearly ahead of (paired, unadjusted; ``tables.best_per_task``), so no
    two sentences can disagree."""
    out = [f"{opening(tag)}, among the rows whose change acts on the task (null controls left out"
           + (", and rows that have not clearly learned the task within the budget" if learned_only else "")
           + "; \"clearly\": each pair on its own, unadjusted):"]
    for b in best:
        top, diffs = b.ranked[0], b.diffs
        text = f"**{b.column}**: top {top} {fmt(b.mean)} (n={b.n})"
        unclear = [r for r, d in diffs.items() if d.direction != "above"]
        if not diffs:
            pass
        elif not unclear:
            text += f", clearly ahead of all {len(diffs)} other rows"
        else:
            second = b.ranked[1]
            d = diffs[second]
            text += (f"; clearly ahead of {len(diffs) - len(unclear)} of the {len(diffs)} other rows; not of "
                     f"{join_words(unclear[:5])}{', …' if len(unclear) > 5 else ''} (against the runner-up {second}: "
                     f"{signed(d.diff)}, n={d.n})")
        if b.unlearned:
            text += f"; left out, not clearly learned within the budget: {join_words(b.unlearned)}"
        out.append(text + ".")
    return out


def against_reference(against: list[Against], tag: str, reference: str = REFERENCE) -> list[str]:
    """Per task: the rows clearly above and clearly below ``reference`` (paired, unadjusted; ``tables.
    against_reference``), and how many show no clear difference; no comparison on a task the reference has not
    clearly learned, and rows that have not clearly learned a task left out of it."""
    out = [f"{opening(tag)}, against `{reference}` (paired over seeds, each row on its own, unadjusted):"]
    for a in against:
        col, diffs = a.column, a.diffs
        if a.reference_unlearned:
            out.append(f"**{col}**: {reference} has not clearly learned it within the budget, so no row is compared "
                       f"with it there (a comparison would say when it starts learning).")
            continue
        above = [f"{r} ({signed(d.diff)})" for r, d in diffs.items() if d.direction == "above"]
        below = [f"{r} ({signed(d.diff)})" for r, d in diffs.items() if d.direction == "below"]
        rest = [r for r, d in diffs.items() if d.direction == "unclear"]
        text = f"**{col}**: clearly above it: {', '.join(above) or 'no row'}; clearly below: {', '.join(below) or 'no row'}"
        if rest:
            text += f"; no clear difference: {len(rest)} row(s)"
        if a.unlearned:
            text += f"; left out, not clearly learned within the budget: {join_words(a.unlearned)}"
        if a.reference_unlearned_tasks:
            text += (f" ({reference}'s Average includes {join_words(a.reference_unlearned_tasks)}, which it "
                     f"has not clearly learned within the budget)")
        out.append(text + ".")
    return out


def where_delta_net_lags(pairs: list[BaselinePair], tag: str) -> str:
    """DeltaNet against Gated DeltaNet per task, paired, with the per-seed differences (``tables.
    delta_net_against_gated``); the tasks one of them has not clearly learned within the budget are named apart,
    not compared."""
    parts = {"below": [], "above": [], "unclear": [], "unlearned": []}
    for p in pairs:
        col, d = p.column, p.diff
        if p.unlearned:
            parts["unlearned"].append(f"{col} ({join_words(p.unlearned)} has not clearly learned it within the budget)")
            continue
        parts[d.direction].append(f"{col} ({signed(d.diff)}; per seed {', '.join(signed(x) for x in d.per_seed)}"
                                  + (", both at the ceiling" if p.ceiling else "") + ")")
    words = {"below": "clearly lags it on", "above": "is clearly ahead of it on", "unclear": "shows no clear difference on",
             "unlearned": "is not compared with it on"}
    said = [f"{words[k]} {'; '.join(v)}" for k, v in parts.items() if v]
    return f"{opening(tag)}: DeltaNet against Gated DeltaNet " + (" — ".join(said) if said else "is not measured") + "."


def seed_spread_note(spread: pd.DataFrame, cells: int, tag: str, min_range: float) -> str:
    """A sentence on the seed-spread table: how many cells with two or more seeds disagree by ``min_range``."""
    if cells == 0:
        return f"{opening(tag)}: no row has two seeds on any setting, so the spread over seeds is not measured."
    if spread.empty:
        return (f"{opening(tag)}: in each of the {cells} (row, task, setting) cells with two or more seeds, the seeds agree "
                f"within {min_range:g} accuracy.")
    per_task = spread.groupby("task", sort=True).size()
    where = join_words([f"{task} ({n})" for task, n in per_task.items()])
    seeds = sorted({len(str(s).split(",")) for s in spread["seeds"]})
    return (f"{opening(tag)}: {len(spread)} of the {cells} (row, task, setting) cells with two or more seeds have seeds that "
            f"disagree by {min_range:g} accuracy or more: {where}. There a run either learns the setting within the "
            f"scale's budget or does not, the per-seed differences are far from normal, and a paired t interval over "
            f"{join_words([str(n) for n in seeds], 'or')} seeds says little.")


def ceiling_note(ceilings: dict[str, list[str]], tag: str, settings: dict[str, list[str]] | None = None) -> str:
    """Where DeltaNet is at the ceiling (``tables.ceiling_settings``), and what that leaves a "beats" claim: the task's
    other settings, or, where every setting the scale measures of a task is at the ceiling (``settings``: task
    column → its setting ids), nothing."""
    if not ceilings:
        return f"{opening(tag)}: DeltaNet is below {CEILING:g} on every setting, so every setting leaves room above it."
    parts = [f"{c} ({join_words(s)})" for c, s in ceilings.items()]
    settings = settings or {}
    closed = [c for c, s in ceilings.items() if c in settings and set(settings[c]) <= set(s)]
    open_ = [c for c in ceilings if c not in closed]
    then = []
    if open_:
        then.append(f"a \"beats\" claim on {join_words(open_)} rests on {'its' if len(open_) == 1 else 'their'} other "
                    "settings, and a task column that averages a ceiling setting with an open one halves the visible "
                    "difference")
    if closed:
        then.append(f"{join_words(closed)} {'is' if len(closed) == 1 else 'are'} measured only at the ceiling here, so "
                    f"a \"beats\" claim there is *{C.NOT_TESTABLE}* unless a clear difference shows anyway")
    return (f"{opening(tag)}, DeltaNet is at the ceiling (≥ {CEILING:g}) on {join_words(parts)}: no row can beat it "
            f"there, so {'; '.join(then)}.")


# --- mechanisms -------------------------------------------------------------------------------------------

def softmax_note(rows: list[str]) -> str:
    """What the logit bound says about a softmax inside the chunk (only for the rows that have one), and for which
    rows a control measures what averaging alone does (``mechanisms.CONTROLS``)."""
    present = [r for r in mechanisms.SOFTMAX_OF_SCALED_SCORES if r in rows]
    if not present:
        return "No row of this round takes a softmax of the raw scores inside the chunk."
    d = mechanisms.head_dim()
    b = mechanisms.logit_bound(d)
    controlled = [r for r in present if all(c in rows for c in mechanisms.CONTROLS.get(r, {}).values())
                  and r in mechanisms.CONTROLS]
    others = [r for r in present if r not in controlled]
    text = (f"**What \"softmax\" means here.** The layer L2-normalises q and k and the rule scales q by d_k^-1/2, so "
            f"with d_k = {d} every intra-chunk score q·k lies in [{-b:.3f}, {b:.3f}], and two weights of one softmax "
            f"row differ by at most a factor e^{2 * b:.2f} = {mechanisms.weight_ratio(d):.2f}. In "
            f"{join_words(present)} the softmax is therefore a near-uniform causal average over the chunk, not a "
            f"sharp lookup.")
    if controlled:
        text += (f" For {join_words(controlled)} this round measures what that means: "
                 + "; ".join(f"{r} against {mechanisms.CONTROLS[r]['uniform']} (the same pass with equal weights) "
                             f"and against {mechanisms.CONTROLS[r]['sharp']} (sharper weights)" for r in controlled)
                 + " (below).")
    if others:
        text += (f" For {join_words(others)} no uniform control is measured, so what averaging alone does for "
                 f"{'them' if len(others) > 1 else 'it'} is not known here: the bound says the weights are close to "
                 f"equal, not that the gain comes from that.")
    return text


def controls_note(controls: list[Controls], scores: pd.DataFrame, tag: str,
                  learning: pd.DataFrame | None = None) -> str | None:
    """Per task (and the Average), for each row with its own controls measured here (``tables.controls``): the row
    against its uniform control (is the gain averaging?) and the sharp control against the row (does sharpness
    add?), paired, with the sign count and Holm over these comparisons (their own family); then what the controls
    show, in numbers. None when no such row is measured."""
    out = []
    for ctrl in controls:
        row, uniform, sharp, cols = ctrl.row, ctrl.uniform, ctrl.sharp, ctrl.columns
        diffs, adjusted, why = ctrl.diffs, ctrl.adjusted, ctrl.why
        keys = list(diffs)

        def said(col, which, a, b):
            if (col, which) in why:
                return f"{a} − {b}: not compared ({why[(col, which)]})"
            d, q = diffs[(col, which)], adjusted[(col, which)]
            clear = not math.isnan(q) and q < 1 - stats.LEVEL
            side = "above" if d.diff >= 0 else "below"
            climbing = learning is not None and all(
                inert_cells.still_climbing(learning, r, col) is not None for r in (a, b)) and col != AVERAGE
            return (f"{a} − {b} {signed(d.diff)} [{signed(d.low)}, {signed(d.high)}], {d.agree(side)} of {d.n} seeds "
                    f"{side} 0, {C.ADJUSTMENT} p = {_p(q) if not math.isnan(q) else 'n/a'}"
                    + (" (clear)" if clear else " (not clear)")
                    + (" — both still climbing when the budget ends: a difference in learning speed" if climbing else ""))

        lines = [f"**{col}**: {said(col, 'averaging', row, uniform)}; {said(col, 'sharpness', sharp, row)}."
                 for col in cols]
        alpha = 1 - stats.LEVEL

        def clear(which, adjusted_too):
            return [c for c in cols if (c, which) in diffs and diffs[(c, which)].direction != "unclear"
                    and (not adjusted_too or adjusted[(c, which)] < alpha)]

        compared = [c for c in cols if (c, "averaging") in diffs]
        near = max((abs(diffs[(c, "averaging")].diff) for c in compared), default=math.nan)
        summary = (f"{opening(tag)}, is {row}'s gain attention or averaging? Its own controls, paired over seeds, with "
                   f"{C.ADJUSTMENT} over these {len(keys)} comparisons (their own family): {row} against "
                   f"{uniform} (equal weights: is the gain averaging?) and {sharp} against {row} (sharper weights: "
                   f"does sharpness add?).")
        raw, adj = clear("averaging", False), clear("averaging", True)
        summary += (f" **Averaging:** {uniform} is within {fmt(near)} of {row} on every task compared"
                    + (f" ({join_words(compared)})" if len(compared) < len(cols) else "")
                    + (f", and no difference is clear, even unadjusted: at this scale the data show no gain of {row}'s "
                       f"attention over averaging (they do not establish that the two are equal: no equivalence "
                       f"test is made)."
                       if not raw else
                       f"; unadjusted the difference is clear on {join_words(raw)}"
                       + (f", and after adjustment on {join_words(adj)}: there the weights matter." if adj else
                          ", and on none after adjustment.")))
        raw, adj = clear("sharpness", False), clear("sharpness", True)
        if raw:
            def on(side):
                cs = [c for c in raw if (diffs[(c, "sharpness")].diff > 0) == (side == "above")]
                return (f"clearly {side} {row} on " + join_words(
                    f"{c} ({signed(diffs[(c, 'sharpness')].diff)}, {diffs[(c, 'sharpness')].agree(side)} of "
                    f"{diffs[(c, 'sharpness')].n} seeds)" for c in cs)) if cs else ""

            summary += (f" **Sharpness:** unadjusted, {sharp} is "
                        + " and ".join(x for x in (on("above"), on("below")) if x)
                        + (f"; after {C.ADJUSTMENT} that stands on {join_words(adj)}." if adj else
                           f"; after {C.ADJUSTMENT} none of these stands (smallest adjusted p "
                           f"{_p(min(adjusted[(c, 'sharpness')] for c in raw))}): a direction every seed shares, "
                           f"not an established difference."))
        else:
            summary += f" **Sharpness:** {sharp} is not clearly apart from {row} on any task, even unadjusted."
        band = inert_cells.LEARNED_MARGIN  # two points: the rounds' "no worse" margin
        alike = [c for c in cols if (c, "averaging") in diffs and (c, "sharpness") in diffs
                 and all(-band < diffs[(c, w)].low and diffs[(c, w)].high < band for w in ("averaging", "sharpness"))]
        if alike:
            spans = {c: [_mean(scores, r, c) for r in (uniform, row, sharp)] for c in alike}
            summary += (f" On {join_words(f'{c} ({fmt(min(v))}-{fmt(max(v))})' for c, v in spans.items())} both "
                        f"differences lie within ±{fmt(band)}: equal, near-uniform and sharper weights score alike "
                        f"there, so a claim about {'those tasks' if len(alike) > 1 else 'that task'} alone (a \"no "
                        f"worse\" between {sharp} and {row}, say) holds under either reading and cannot tell them "
                        f"apart.")
        if why:
            summary += " Not compared: " + "; ".join(f"{c} ({w})" for (c, _), w in why.items()) + "."
        out.append(summary + "\n\n" + "\n\n".join(lines))
    return "\n\n".join(out) if out else None


def gated_note(worst: tuple | None, scores: pd.DataFrame, curves: pd.DataFrame, tag: str) -> str | None:
    """Where Gated DeltaNet lags DeltaNet the most on every seed (``tables.gated_lag``: column, setting and the
    paired difference), with both learning curves in numbers; None when it lags on every seed nowhere."""
    if worst is None:
        return None
    col, s, worst_d = worst
    sel = curves[(curves["column"] == col) & (curves["setting"] == s)]
    by_epoch = {v: g.groupby("epoch")["acc"].mean() for v, g in sel.groupby("variant")}
    if REFERENCE not in by_epoch or BASELINE not in by_epoch:
        return None
    g, b = per_seed(scores, REFERENCE, col, s), per_seed(scores, BASELINE, col, s)
    rise = {v: float(c.iloc[-1] - c.iloc[0]) for v, c in by_epoch.items()}
    return (f"{opening(tag)}, Gated DeltaNet lags DeltaNet by the most, on every seed, on {setting_label(col, s)}: "
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


def family_note(frames: list[pd.DataFrame], tag: str) -> str:
    """Which verdicts form the family the round adjusts, how, and why (``frames``: ``claims.adjust``'s output)."""
    rows = sum(len(f) for f in frames)
    tests = frames[0].attrs.get("family", 0) if frames else 0
    claims_tested = frames[0].attrs.get("family claims", tests) if frames else 0
    return (f"**The family, and its adjustment.** {opening(tag)}, this round judges {rows} statements: its claims and its "
            f"proposal's success criteria. They form one family, because the round's reading rests on all of them "
            f"together (the proposal's outcome is \"a criterion is contradicted\" as soon as one is), so an error "
            f"in any of them is an error of the round. {claims_tested} of them are tests (the others are not testable "
            f"at this scale, or false by construction, and need no statistics), and every part of such a statement "
            f"is a test of its own: a \"best\" one per row it must beat, an \"every task\" one per task, a "
            f"combination one per component it must also beat: {tests} tests in the family. Their p-values are "
            f"adjusted by {C.ADJUSTMENT}'s step-down method, which keeps the chance that any decisive verdict of the "
            f"family is wrong under {1 - stats.LEVEL:.0%} (the family-wise error; Benjamini-Hochberg would bound only "
            f"the expected share of wrong ones, too loose for an outcome that one wrong criterion decides). A "
            f"statement's verdict after the adjustment is its weakest part's: it holds only if every part holds, and "
            f"a contradicting part contradicts it. Its unadjusted p is its paired t test; for a statement that "
            f"several comparisons decide, the largest of their p when all must go its way and a Bonferroni bound "
            f"over them when one suffices. Each line below leads with the verdict that survives the adjustment; the "
            f"unadjusted verdict, its sign count and both p-values follow. The seed table's own verdicts are not "
            f"adjusted (they read the document's numbers, not a test here).")


def _stats_part(r) -> str:
    """"*Unadjusted: contradicted, 4 of 4 seeds, p = 0.013; Holm over the family's 12 tests: p = 0.16.*" (or nothing
    for a verdict that is not a test)."""
    p = r.get("p", math.nan)
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return ""
    raw = r["verdict here"]
    agree = f", {r['seeds agreeing']}" if r.get("seeds agreeing") else ""
    text = f"Unadjusted: {raw}{agree}, p = {_p(p)}"
    q = r.get("adjusted p", math.nan)
    if q is not None and not (isinstance(q, float) and math.isnan(q)):
        text += f"; {C.ADJUSTMENT} over the family's tests: p = {_p(q)}"
    return f" *{text}.*"


def _p(x: float) -> str:
    return "< 0.0001" if x < 1e-4 else f"{x:.2g}" if x < 0.01 else f"{x:.3f}".rstrip("0").rstrip(".") if x < 1 else "1"


def verdicts_markdown(table: pd.DataFrame, tag: str, what: str = "claims") -> str:
    """The claims (or success criteria) as a markdown list: the verdict (after the family's adjustment when
    ``table`` has it), the claim, the unadjusted verdict with its sign count and p-values, how a MAD-scale threshold
    was read at this scale, the evidence, the verdict on the seed document's own numbers, and the claim's source."""
    if table.empty:
        return f"The round has no {what}."
    adjusted = "verdict adjusted" in table.columns
    lines = []
    for _, r in table.iterrows():
        word = r["verdict adjusted"] if adjusted else r["verdict here"]
        line = f"- **{word}**: {r['claim']}."
        if r.get("seeds agreeing") and not adjusted and C.base(r["verdict here"]) in C.DECISIVE:
            line += f" *{r['seeds agreeing']}.*"
        if adjusted:
            line += _stats_part(r)
        if r["read at this scale as"]:
            line += f" *Read at this scale as: {r['read at this scale as']}.*"
        line += f" {r['evidence']}."
        seed = r["on the seed's own table"]
        line += f" *On the seed's own table: {seed}*" + (f" ({r['seed evidence']})." if r["seed evidence"] else ".")
        if r.get("source"):
            line += f" Source: {r['source']}"
        lines.append(line)
    if adjusted:
        head = (f"{opening(tag)}, of {len(table)}, after {C.ADJUSTMENT} over the round's family of "
                f"{table.attrs.get('family', '?')} tests: {C.words_in(list(table['verdict adjusted']))} "
                f"(unadjusted: {C.words_in(list(table['verdict here']))}).")
    else:
        head = f"{opening(tag)}, of {len(table)}: {C.words_in(list(table['verdict here']))}."
    return head + "\n\n" + "\n".join(lines)


def proposal_summary(statuses: list[str], proposal: str, tag: str, adjusted: list[str] | None = None) -> str:
    if not statuses:
        return f"{opening(tag)}: {proposal} has no success criteria to check."
    if adjusted is None:
        return (f"{opening(tag)}: of the {len(statuses)} success criteria of `{proposal}`, {C.words_in(statuses)}: "
                f"**{C.proposal_outcome(statuses)}**.")
    same = C.proposal_outcome(adjusted) == C.proposal_outcome(statuses)
    return (f"{opening(tag)}: of the {len(statuses)} success criteria of `{proposal}`, after {C.ADJUSTMENT} over the round's "
            f"family, {C.words_in(adjusted)}: **{C.proposal_outcome(adjusted)}**"
            + (" (the same outcome unadjusted)." if same else
               f" (unadjusted: {C.words_in(statuses)}: {C.proposal_outcome(statuses)})."))


# --- the conclusion ---------------------------------------------------------------------------------------

def conclusion(ranking: pd.DataFrame, controls: list[str], proposals: pd.DataFrame, tag: str,
               scale: str | None = None, family: pd.DataFrame | None = None) -> list[str]:
    """The study's closing sentences: the top of the ranking and how it stands paired, the baselines' ranks (with
    the tasks a row has not clearly learned, which its Average includes), the rows not ranked, the proposals'
    outcomes and, with ``family`` (``claims.study_family``), how many of the study's decisive verdicts survive adjustment.
    ``scale``: the scale's name, which names the averages (they are that scale's, not MAD's)."""
    unscored = [r for r in ranking.index if pd.isna(ranking.loc[r, "rank"])]
    ranking = ranking.drop(index=unscored)
    top = ranking.head(3)
    unlearned_col = next((c for c in ranking.columns if str(c).startswith("not clearly learned")), None)

    def place(row: str, name: str) -> str:
        if row not in ranking.index:
            return f"{name} is not ranked"
        text = f"{name} ranks #{int(ranking.loc[row, 'rank'])}"
        missing = [c for c in str(ranking.loc[row, unlearned_col]).split(", ") if c] if unlearned_col else []
        if missing:
            text += (f" (its Average includes {join_words(missing)}, which it has not clearly learned within the "
                     f"budget: there its rank says when it starts learning, not where it ends)")
        return text

    averages = f"`{scale}` averages" if scale else "averages at this scale"
    out = [f"{opening(tag)}, over the {len(ranking)} ranked rows: the highest {averages} are "
           + ", ".join(f"{r} ({fmt(row[AVERAGE])})" for r, row in top.iterrows())
           + f"; {place(REFERENCE, 'Gated DeltaNet')}, {place(BASELINE, 'DeltaNet')}."]
    clear = [r for r in ranking.index if "▲" in str(ranking.loc[r, "Δ Average vs delta_net"])]
    worse = [r for r in ranking.index if "▼" in str(ranking.loc[r, "Δ Average vs delta_net"])]
    out.append(f"Paired against DeltaNet on the Average (each row on its own, unadjusted): clearly above it: "
               f"{join_words(clear) or 'no row'}; clearly below it: {join_words(worse) or 'no row'}; the other "
               f"{len(ranking) - len(clear) - len(worse) - (BASELINE in ranking.index)} show no clear difference.")
    if unlearned_col:
        partial = [r for r in ranking.index if str(ranking.loc[r, unlearned_col])]
        if partial:
            out.append(f"{len(partial)} ranked rows have not clearly learned some task within the budget, and their "
                       f"Average includes it (column `{unlearned_col}`): {join_words(partial)}.")
    if unscored:
        out.append(f"Not scored: {join_words(unscored)} (no seed with every task complete, so no average).")
    if controls:
        out.append(f"Not ranked: {join_words(controls)} (null controls: their change does not act, or is the identity "
                   f"up to rounding).")
    groups: dict[str, list[str]] = {}
    for p, o in zip(proposals["proposal"], proposals["outcome"]):
        groups.setdefault(o, []).append(p)
    adjusted_col = f"outcome, {C.ADJUSTMENT} over the study"
    text = (f"Of the {len(proposals)} proposals, on their own success criteria (unadjusted): "
            + "; ".join(f"{o}: {join_words(ps)}" for o, ps in groups.items()) + ".")
    if adjusted_col in proposals.columns:
        moved = {p: a for p, o, a in zip(proposals["proposal"], proposals["outcome"], proposals[adjusted_col])
                 if o != a}
        text += (f" After {C.ADJUSTMENT} over the study, "
                 + ("every outcome stands." if not moved else
                    "; ".join(f"{p} becomes \"{a}\"" for p, a in moved.items()) + "; the others stand."))
    out.append(text)
    if family is not None and len(family):
        out.append(study_adjustment(family))
    return out


def study_adjustment(family: pd.DataFrame) -> str:
    """How many of the study's decisive verdicts survive Holm within each round and over the whole study."""
    def decisive(col):
        return int(family[col].map(C.base).isin(C.DECISIVE).sum())

    tests = int(family["tests"].map(len).sum()) if "tests" in family else int(family["p"].notna().sum())
    logic = int((family["verdict here"].map(C.base).isin(C.DECISIVE) & family["p"].isna()).sum())
    rounds = family["round"].nunique()
    return (f"**Multiplicity, study-wide.** The {rounds} rounds judge {len(family)} claims and success criteria, "
            f"{int(family['p'].notna().sum())} of them tests, made of {tests} tests of their parts (each row a "
            f"\"best\" must beat, each task of \"every task\", each component of a combination). Unadjusted, {decisive('verdict here')} verdicts are decisive (holds or "
            f"contradicted{f', {logic} of them by construction, not by a test' if logic else ''}); after "
            f"{C.ADJUSTMENT} within each round's family {decisive('within round')} remain, and after {C.ADJUSTMENT} "
            f"over the study's {tests} tests {decisive('over study')}.")


# --- one variant against the baselines (run_variant.ipynb) -----------------------------------------------

def row_against(diffs: dict, scores: pd.DataFrame, inert: pd.DataFrame, row: str, references: list[str],
                columns: list[str], learning: pd.DataFrame | None = None) -> list[str]:
    """One sentence per task: the row's score and its paired difference to each reference (``tables.row_against``:
    ``(column, reference) -> stats.Paired``); with ``learning``
    (``inert.learning``), a difference where either row has not clearly learned the task within the budget is named as
    one that says when it starts learning, not called."""
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
            if (col, ref) not in diffs:
                continue
            d = diffs[(col, ref)]
            word = {"above": "clearly above", "below": "clearly below"}.get(
                d.direction, f"no clear difference with {d.n} seeds")
            late = [x for x in (row, ref) if learning is not None and col != AVERAGE
                    and inert_cells.not_learned(learning, x, col)]
            if late:
                word = (f"not compared: {join_words(late)} {'has' if len(late) == 1 else 'have'} not clearly learned "
                        "it within the budget, so the difference says when it starts learning")
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


def agreement_note(frame: pd.DataFrame, scale: Scale, document: str) -> str:
    """What the agreement table (``agreement.agreement``) says: per task the held-out agreement (or all rows' when
    the scale names no calibration rows) against its target and the ceiling the seed table's noise allows."""
    from .agreement import MARGIN, RELIABLE, SOLVED, target_reading

    if frame.empty:
        return f"No row of scale `{scale.name}` is in the seed table of document {document[:3]}: no agreement to show."
    held = frame[frame["rows"] == "held-out"]
    which = "held-out" if not held.empty else "all"
    parts = []
    for _, r in frame[frame["rows"] == which].iterrows():
        if r["measure"] == "spearman":
            val = (f"ρ = {fmt(r['value'], 2)} [{fmt(r['low'], 2)}, {fmt(r['high'], 2)}] (ceiling "
                   f"{fmt(r['ceiling'], 2)}" + ("" if math.isnan(r["reliability"]) else
                                                f", own reliability {fmt(r['reliability'], 2)}"))
        else:
            val = f"{r['value']:.0%} of rows classified alike [{r['low']:.0%}, {r['high']:.0%}] ("
            val += f"differ: {r['disagree']}" if r["disagree"] else "none differ"
        if not math.isnan(r["target"]):
            val += f"; target {fmt(r['target'], 2) if r['measure'] == 'spearman' else format(r['target'], '.0%')}: "
            val += target_reading(r)
        parts.append(f"{r['task']} {val})")
    split = (f"the {int(held['n'].max())} rows held out from the scale's {len(scale.calibration_rows)} pre-registered "
             f"calibration rows (`calibration_rows` in params/scales/{scale.name}.yaml)" if not held.empty else
             "every row of the table (the scale names no calibration rows, so none is held out)")
    ranked = frame[(frame["rows"] == which) & (frame["measure"] == "spearman")]
    biased = ranked[(ranked["reliability"] >= RELIABLE) & (ranked["value"] < ranked["target"])]
    bias = (f" On {', '.join(biased['task'])} the scale reproduces its own ranking across seeds (own reliability at "
            f"least {RELIABLE:g}) and still misses the target: that gap is what the scale measures, not its seed "
            f"noise, and more seeds would not close it." if len(biased) else "")
    return (f"**How well `{scale.name}` predicts the full protocol.** Its row means against the seed table of document "
            f"{document[:3]} (MAD's protocol), over {split}: {'; '.join(parts)}. Ranked tasks: Spearman's ρ with its "
            f"paired bootstrap interval; the ceiling is the ρ a noise-free proxy would reach against a table as noisy "
            f"as the seed table; own reliability is the scale's split-half ρ with itself across seeds, stepped up to "
            f"all of them.{bias} Context and Noisy Recall, where the seed table saturates, are classified: a row learns "
            f"the task there when it scores at least {SOLVED:g}, here when it is not clearly below DeltaNet by more "
            f"than {MARGIN:g} (paired interval).")


# --- round 6: the seeds' next steps, one line each -----------------------------------------------------------

def _step_differences(variant: str, diffs) -> str:
    return ", ".join(f"{variant} − {o} {signed(d)} ({k} of {n} seeds)" for o, d, k, n in diffs)


def _step_states(states: dict[str, str], column: str) -> str:
    if column == AVERAGE:
        return "; ".join(f"{r}: {s}" for r, s in states.items())
    return ", ".join(f"{r} {s}" for r, s in states.items() if s)


def next_steps_summary(steps: pd.DataFrame, tag: str) -> str:
    """The round's answer, one line per next step (``claims.next_steps``): what was tried, what it gave with the
    rows' learning states, its verdict after the family's adjustment, and where nothing could be measured why, and
    what the other scales' stored runs measured for it."""
    if steps.empty:
        return f"{opening(tag)}: no claim of this round names a next step."
    lines = []
    for step, g in steps.groupby("step", sort=False):
        parts = []
        for _, r in g.iterrows():
            where = r["column"] if r["setting"] == ALL_SETTINGS else f"{r['column']} ({r['setting']})"
            text = f"{r['variant']} against {join_words(r['against'])} on {where}"
            if r["differences"]:
                text += f": {_step_differences(r['variant'], r['differences'])}"
            states = _step_states(r["states"], r["column"])
            if states:
                text += f" ({'states over the tasks averaged — ' if r['column'] == AVERAGE else ''}{states})"
            text += f" → **{r['verdict']}**"
            if r["why"]:
                text += f"; it cannot be told apart here: {r['why']}"
                measured = [(name, word, diffs, ids) for name, word, diffs, ids in r["elsewhere"] if diffs]
                if measured:
                    text += "; " + "; ".join(
                        f"`{name}` ({r['column']} at {join_words(ids)}) measured "
                        f"{_step_differences(r['variant'], diffs)}: {word} there"
                        for name, word, diffs, ids in measured)
                if not any(C.base(word) != C.NOT_TESTABLE for _, word, _, _ in measured):
                    task = "every task averaged" if r["column"] == AVERAGE else r["column"]
                    text += (f"; no {'other ' if measured else ''}stored scale settles it: that needs a budget in "
                             f"which every row compared learns {task} and stays below the ceiling ({CEILING:g})")
            parts.append(text)
        lines.append(f"- *{step}*: tried " + "; ".join(parts) + ".")  # italic: the bold bullets are verdicts
    return (f"**What the next steps gave.** {opening(tag)}, one line per step the seed documents proposed (verdicts "
            f"after the round's {C.ADJUSTMENT} adjustment; differences paired over seeds; a row's state from its "
            f"learning curve):\n\n" + "\n".join(lines))
