"""Where a change does not act: the (variant, task, setting) cells whose runs are DeltaNet's bit for bit.

A cell is *inert* when every run of the variant there trained exactly as DeltaNet's run with the same task,
setting, lr, wd and seed: the same test loss at every evaluated epoch. Its scores there are DeltaNet's by
construction, not a measurement of the change, so verdicts, rankings and "best" lists leave it out, and tables
and figures mark it. The usual reason: a sequence that fits in one chunk (``CHUNK_SIZE`` tokens; compression at
L = 32, every memorization setting) never carries a state from one chunk to the next, so a change to that state
has nothing to act on. That reason is given only for a change declared to be to the carried state alone
(``STATE_ONLY`` in its file: ``Variant.state_only``); a change inside the chunk that leaves the runs DeltaNet's on
one chunk (a clip that never binds, say) is said to be identical to DeltaNet there, with no reason guessed.

A row inert on every task measured is a **null control** (frobenius_renorm at ``cpu``: its bound is never
reached). Its differences to DeltaNet are exactly 0 on every seed: that shows the pipeline reproduces a run bit
for bit (so a paired difference is the change's doing, not the run's), but it measures no noise. A row that is a
mathematical no-op but not bit-identical (``DECLARED_NO_OPS``: normalize_keys re-normalises keys that are already
unit-norm, so only rounding differs) measures what rounding alone does to a trajectory: the run-to-run noise a
paired difference has to beat.

Two rows can also be each other's runs bit for bit without being DeltaNet's (``twins``): a change to the carried
state stacked on a change that acts inside the chunk (topk_error_decay on topk_error) is its parent on a one-chunk
task. A pairwise claim between such rows says nothing there either.

**Learned, still learning, finished** (``learning``): one rule, per row × setting and per row × task, on the mean
over seeds of the learning curve of the runs a score uses (``study.curves``). A row has *not learned* a cell (in a
verdict's words: has not clearly learned it) when its mean curve never clearly exceeds the cell's input-blind level
(``study.blind_levels``: always the same target class, 1/K under MAD's macro accuracy; 1/8 on fuzzy recall),
whatever its rise: at the epoch where the mean is highest, the seeds' one-sided 95% lower bound (a one-sample t
test) must lie above the level by ``LEARNED_MARGIN``. A learned row whose mean curve ends below ``CEILING`` is
*still learning* when that curve gained more than ``CLIMBING`` in the last epoch or peaks at the last epoch (above
every earlier epoch by more than ``PEAK_GAIN``); otherwise it has *finished* (the ceiling bounds both clauses). A
comparison with a row that has not clearly learned a cell says when that row starts learning, not where it ends;
one with a row still learning compares how fast the rows learn, not what they can learn.
"""
from __future__ import annotations

import math
from collections.abc import Collection

import pandas as pd

from .. import tasks as T
from ..layers import CHUNK_SIZE
from ..params import Scale
from ..variants import VARIANTS
from . import stats
from .names import ALL_SETTINGS, BASELINE

COLUMNS = ["variant", "column", "setting", "reason"]

# Variants whose change is the identity in the DeltaNet layer, up to rounding (checked in tests/test_analysis.py).
DECLARED_NO_OPS = {
    "normalize_keys": "the DeltaNet layer L2-normalises the keys before the loop, so re-normalising them inside it "
                      "is the identity up to rounding",
}


def _seq_len(task: str, setting: dict | None) -> int:
    return T.generator_kwargs(task, setting or {})["seq_len"]


def one_chunk(task: str, settings: list[dict]) -> bool:
    """Every one of ``settings`` of ``task`` fits in one chunk."""
    return bool(settings) and max(_seq_len(task, s) for s in settings) <= CHUNK_SIZE


def one_chunk_at_every_mad_setting(column: str) -> bool:
    """The task of ``column`` fits in one chunk at every one of MAD's settings (memorization: always 32 tokens), so
    a change that is inert on it here is inert on it in the seed documents' MAD runs too."""
    task = T.task_of_column(column).name
    return one_chunk(task, [{k: v for k, v in s.items() if k not in T.SIZES} for s in T.settings(task)])


ONE_CHUNK = (f"one chunk: its sequences fit in one chunk of {CHUNK_SIZE} tokens, so a change to the state carried "
             f"between chunks has nothing to act on")
IDENTICAL = "identical to DeltaNet here, bit for bit: the change never altered a number on these one-chunk sequences"
NEVER_CHANGED = ("its runs are DeltaNet's bit for bit although the sequences span several chunks: the change never "
                 "altered a number here")
# The registered rows whose change is to the state carried between chunks only (their files' STATE_ONLY).
STATE_ONLY = frozenset(name for name, v in VARIANTS.items() if v.state_only)


def why_inert(task: str, setting: dict | None, state_only: bool) -> str:
    """Why a row's runs on this setting are DeltaNet's bit for bit: one chunk and a change declared to be to the
    carried state alone (``ONE_CHUNK``), one chunk and a change inside it (``IDENTICAL``), or several chunks
    (``NEVER_CHANGED``)."""
    if _seq_len(task, setting) > CHUNK_SIZE:
        return NEVER_CHANGED
    return ONE_CHUNK if state_only else IDENTICAL


def common_reason(reasons) -> str:
    """The reason for a whole task column from its settings' reasons: theirs when they agree; else the one that holds
    of every setting (``IDENTICAL`` where a change inside the chunk is among them, else ``NEVER_CHANGED``)."""
    reasons = set(reasons)
    if len(reasons) == 1:
        return reasons.pop()
    return IDENTICAL if IDENTICAL in reasons else NEVER_CHANGED


def cells(records: list[dict], expected: dict[str, list[str]], scale: Scale,
          state_only: Collection[str] = STATE_ONLY) -> pd.DataFrame:
    """The inert cells: one row per (variant, column, setting id) and, where every setting of the column is inert,
    one with ``setting = "all"``; with the reason (``why_inert``). ``expected``: column → the scale's setting ids;
    ``state_only``: the rows whose change is declared to be to the carried state alone (the registered ones by
    default; a user's file adds its own variant id)."""
    losses, settings_of = _run_losses(records)
    same: dict[tuple[str, str, str], bool] = {}
    for (variant, task, sid, *rest), curve in losses.items():
        if variant == BASELINE:
            continue
        twin = losses.get((BASELINE, task, sid, *rest))
        key = (variant, task, sid)
        same[key] = same.get(key, True) and twin is not None and twin == curve
    rows = []
    for (variant, task, sid), identical in same.items():
        if identical:
            why = why_inert(task, settings_of[(task, sid)], variant in state_only)
            rows.append((variant, T.TASKS[task].column, sid, why))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    whole = []
    for (variant, column), g in frame.groupby(["variant", "column"], sort=False):
        if column in expected and set(expected[column]) <= set(g["setting"]):
            whole.append((variant, column, ALL_SETTINGS, common_reason(g["reason"])))
    frame = pd.concat([frame, pd.DataFrame(whole, columns=COLUMNS)], ignore_index=True)
    return frame.sort_values(["variant", "column", "setting"], kind="mergesort").reset_index(drop=True)


TWIN_COLUMNS = ["variant", "other", "column", "setting"]


def _run_losses(records: list[dict]) -> tuple[dict, dict]:
    """``(losses, settings_of)``: (variant, task, setting id, lr, wd, seed) → test loss per evaluated epoch, and
    (task, setting id) → the setting's changes from MAD's baseline."""
    losses: dict[tuple, list[float]] = {}
    settings_of: dict[tuple[str, str], dict] = {}
    for rec in records:
        sp = rec["spec"]
        sid = T.setting_id(sp["task"], sp["setting"]) if sp["setting"] else "baseline"
        settings_of[(sp["task"], sid)] = sp["setting"] or {}
        losses[(sp["variant"], sp["task"], sid, sp["lr"], sp["wd"], sp["seed"])] = [p["test_loss"] for p in rec["curve"]]
    return losses, settings_of


def twins(records: list[dict], expected: dict[str, list[str]]) -> pd.DataFrame:
    """The pairs of rows whose runs are each other's bit for bit: one row per (variant, other, column, setting id),
    both orders, where every run the two rows have in common (same task, setting, lr, wd, seed; at least one) has
    the same test loss at every epoch; with ``setting = "all"`` where that holds on every setting of the column."""
    losses, _ = _run_losses(records)
    by_cell: dict[tuple[str, str], dict[str, dict[tuple, list[float]]]] = {}
    for (variant, task, sid, *run), curve in losses.items():
        by_cell.setdefault((task, sid), {}).setdefault(variant, {})[tuple(run)] = curve
    rows = []
    for (task, sid), per_variant in by_cell.items():
        names = sorted(per_variant)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                common = per_variant[a].keys() & per_variant[b].keys()
                if common and all(per_variant[a][k] == per_variant[b][k] for k in common):
                    rows += [(a, b, T.TASKS[task].column, sid), (b, a, T.TASKS[task].column, sid)]
    frame = pd.DataFrame(rows, columns=TWIN_COLUMNS)
    whole = [(a, b, column, ALL_SETTINGS) for (a, b, column), g in frame.groupby(["variant", "other", "column"])
             if column in expected and set(expected[column]) <= set(g["setting"])]
    return pd.concat([frame, pd.DataFrame(whole, columns=TWIN_COLUMNS)], ignore_index=True)


def same_runs(twins: pd.DataFrame, a: str, b: str, column: str, setting: str = ALL_SETTINGS) -> bool:
    """Whether ``a``'s runs on this cell are ``b``'s bit for bit (``twins``)."""
    return bool(((twins["variant"] == a) & (twins["other"] == b) & (twins["column"] == column)
                 & (twins["setting"] == setting)).any())


LEARNED_MARGIN = 0.02  # "clearly above the input-blind level": the per-seed interval above it by this much (two points)
CLIMBING = 0.05  # still learning: a gain above this in the last epoch (mean over seeds) ...
PEAK_GAIN = 0.01  # ... or a curve whose highest point is its last, above every earlier one by more than this
CEILING = 0.99  # a curve at or above this has nothing left to learn (the seed documents' "solved" mark)
NOT_LEARNED, STILL_LEARNING, FINISHED = "not learned", "still learning", "finished"
STATES = (NOT_LEARNED, STILL_LEARNING, FINISHED)
LEARNING_COLUMNS = ["variant", "column", "setting", "epochs", "first", "peak", "last", "last_gain", "best_epoch",
                    "last_epoch", "level", "blind", "floor", "peak_low", "state", "learned", "climbing"]


def curve_state(per_seed: pd.DataFrame, level: float | None) -> dict:
    """The state of one learning curve (``per_seed``: epochs × seeds of test accuracy) against ``level``, the
    input-blind accuracy of the cell (None: the curve's own first epoch stands in for it):

    * *not learned*: the mean curve never clearly exceeds the level: at the epoch where the mean over seeds is
      highest, the seeds' one-sided 95% lower bound (``stats.lower_bound``: a one-sample t test of "above") is not
      above ``level + LEARNED_MARGIN`` (with fewer than ``stats.MIN_SEEDS`` seeds, their mean is not);
    * *still learning*: learned, the mean curve's last epoch below ``CEILING`` (a curve that high has nothing left
      to learn, whatever its gain), and it gained more than ``CLIMBING`` in its last epoch or its highest point is
      its last epoch, above every earlier one by more than ``PEAK_GAIN``;
    * *finished*: otherwise."""
    m = per_seed.mean(axis=1).sort_index()
    best = int(m.idxmax())
    blind = level is not None
    level = float(level) if blind else float(m.iloc[0])
    floor = level + LEARNED_MARGIN
    low = stats.lower_bound(per_seed.loc[best].dropna())
    gain = float(m.iloc[-1] - m.iloc[-2]) if len(m) >= 2 else math.nan
    ahead = float(m.iloc[-1] - m.iloc[:-1].max()) if len(m) >= 2 else math.nan
    if not low > floor:
        state = NOT_LEARNED
    elif m.iloc[-1] < CEILING and (gain > CLIMBING or ahead > PEAK_GAIN):
        state = STILL_LEARNING
    else:
        state = FINISHED
    return dict(epochs=len(m), first=float(m.iloc[0]), peak=float(m.max()), last=float(m.iloc[-1]), last_gain=gain,
                best_epoch=best, last_epoch=int(m.index[-1]), level=level, blind=blind, floor=floor, peak_low=float(low),
                state=state, learned=state != NOT_LEARNED, climbing=state == STILL_LEARNING)


def learning(curves: pd.DataFrame, settings: dict[str, list[str]],
             blind: dict[tuple[str, str], float] | None = None) -> pd.DataFrame:
    """The state (``curve_state``) of every (variant, column, setting id) of ``curves`` (``study.curves``: variant,
    column, setting, seed, epoch, acc) against its input-blind level ``blind[(column, setting)]``
    (``study.blind_levels``; absent: the curve's first epoch), and one more row per (variant, column) with
    ``setting = "all"`` where every setting of ``settings[column]`` is there: the state of the task's curve, the
    per-seed mean over its settings (the curve of the score a task verdict uses), against the mean of their
    levels."""
    blind = blind or {}
    rows = []
    tables = {key: g.pivot_table(index="epoch", columns="seed", values="acc")
              for key, g in curves.groupby(["variant", "column", "setting"], sort=False)}
    for (variant, column, setting), table in tables.items():
        rows.append(dict(variant=variant, column=column, setting=setting,
                         **curve_state(table, blind.get((column, setting)))))
    by_task: dict[tuple[str, str], dict[str, pd.DataFrame]] = {}
    for (variant, column, setting), table in tables.items():
        by_task.setdefault((variant, column), {})[setting] = table
    for (variant, column), parts in by_task.items():
        wanted = settings.get(column)
        if not wanted or not set(wanted) <= set(parts):
            continue
        task = sum(parts[s] for s in wanted) / len(wanted)  # seeds lacking a setting drop out (NaN)
        task = task.dropna(axis=1, how="all")
        levels = [blind.get((column, s)) for s in wanted]
        level = None if any(x is None for x in levels) else sum(levels) / len(levels)
        rows.append(dict(variant=variant, column=column, setting=ALL_SETTINGS, **curve_state(task, level)))
    return pd.DataFrame(rows, columns=LEARNING_COLUMNS)


def _learning_row(learning: pd.DataFrame, variant: str, column: str, setting: str):
    sel = learning[(learning["variant"] == variant) & (learning["column"] == column) & (learning["setting"] == setting)]
    return None if sel.empty else sel.iloc[0]


def state(learning: pd.DataFrame | None, variant: str, column: str, setting: str = ALL_SETTINGS) -> str | None:
    """The cell's state (``NOT_LEARNED``, ``STILL_LEARNING``, ``FINISHED``), or None where no curve is known."""
    if learning is None:
        return None
    row = _learning_row(learning, variant, column, setting)
    return None if row is None else str(row["state"])


def not_learned(learning: pd.DataFrame, variant: str, column: str, setting: str = ALL_SETTINGS) -> str | None:
    """Why ``variant`` has not clearly learned the cell within the budget (its curve in numbers), or None (learned,
    or no curve)."""
    row = _learning_row(learning, variant, column, setting)
    if row is None or row["state"] != NOT_LEARNED:
        return None
    return _curve_text(row)


def _curve_text(row) -> str:
    from .names import fmt

    return (f"mean accuracy over seeds {fmt(row['first'])} at its first epoch, at most {fmt(row['peak'])} over "
            f"{int(row['epochs'])} epochs (at epoch {int(row['best_epoch'])} the seeds' one-sided 95% lower bound is "
            f"{fmt(row['peak_low'])}), not clearly above "
            + (f"the input-blind level {fmt(row['level'])}" if row["blind"] else
               f"its first epoch's {fmt(row['level'])} (no input-blind level given)")
            + f" (it must clear {fmt(row['floor'])})")


def still_climbing(learning: pd.DataFrame, variant: str, column: str, setting: str = ALL_SETTINGS) -> float | None:
    """The last epoch's gain of ``variant``'s mean curve on the cell when it is still learning there, else None."""
    row = _learning_row(learning, variant, column, setting)
    if row is None or row["state"] != STILL_LEARNING:
        return None
    return float(row["last_gain"])


def reason(inert: pd.DataFrame, variant: str, column: str, setting: str = ALL_SETTINGS) -> str | None:
    """Why the change does not act on this cell, or None if it acts (or was not measured)."""
    sel = inert[(inert["variant"] == variant) & (inert["column"] == column) & (inert["setting"] == setting)]
    return None if sel.empty else str(sel["reason"].iloc[0])


def acts(inert: pd.DataFrame, variant: str, column: str, setting: str = ALL_SETTINGS) -> bool:
    return reason(inert, variant, column, setting) is None


def null_controls(inert: pd.DataFrame, columns: list[str]) -> list[str]:
    """Rows inert on every task column measured."""
    whole = inert[inert["setting"] == ALL_SETTINGS]
    return [v for v, g in whole.groupby("variant", sort=False) if set(columns) <= set(g["column"])]


def inert_columns(inert: pd.DataFrame, variant: str) -> list[str]:
    """The task columns on which ``variant``'s change does not act at all."""
    whole = inert[(inert["setting"] == ALL_SETTINGS) & (inert["variant"] == variant)]
    return [c for c in T.COLUMNS if c in set(whole["column"])]


def excluded(inert: pd.DataFrame, columns: list[str]) -> list[str]:
    """Rows that are not ranked as variants: the null controls and the declared no-ops."""
    return list(dict.fromkeys(null_controls(inert, columns) + list(DECLARED_NO_OPS)))
