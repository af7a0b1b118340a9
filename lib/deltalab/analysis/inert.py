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

**Rows that have not learned a cell within the budget** (``learning``). A comparison with a row whose learning curve
has not left its starting level says when that row starts learning, not where it ends. The test, on the mean over
seeds of the learning curve of the runs a score uses (``study.curves``): a row has *not learned* a setting within
the budget when its curve rises, from its first evaluated epoch to its highest point, by less than the bar
``max(MIN_RISE, LEARNED_SHARE × DeltaNet's rise on the same setting)`` — a tenth of what DeltaNet, the model every
variant modifies and the one the scale was calibrated on, gains over the same budget, and never under two points
(the rounds' "no worse" margin) — *and* its highest point stays under ``STARTED_SHARE`` of the way from an
input-blind guess to perfect accuracy (``study.blind_levels``: always the same target class, 1/K under MAD's macro
accuracy). The second clause keeps a row that learned a setting within its first epoch (a flat curve at 0.999 on
in-context recall at MAD's vocabulary of 16) from being read as one that has not begun it (a flat curve near the
blind guess). A task column counts as not learned when none of its settings is. A row is *still
climbing* a setting when its mean curve gained more than ``CLIMBING`` in the last epoch: a score there is taken
mid-learning, and a difference between two climbing rows compares how fast they learn.
"""
from __future__ import annotations

from collections.abc import Collection

import pandas as pd

from .. import tasks as T
from ..layers import CHUNK_SIZE
from ..params import Scale
from ..variants import VARIANTS
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
    task = {c: t for t, c in T.COLUMN.items()}[column]
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
            rows.append((variant, T.COLUMN[task], sid, why))
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
                    rows += [(a, b, T.COLUMN[task], sid), (b, a, T.COLUMN[task], sid)]
    frame = pd.DataFrame(rows, columns=TWIN_COLUMNS)
    whole = [(a, b, column, ALL_SETTINGS) for (a, b, column), g in frame.groupby(["variant", "other", "column"])
             if column in expected and set(expected[column]) <= set(g["setting"])]
    return pd.concat([frame, pd.DataFrame(whole, columns=TWIN_COLUMNS)], ignore_index=True)


def same_runs(twins: pd.DataFrame, a: str, b: str, column: str, setting: str = ALL_SETTINGS) -> bool:
    """Whether ``a``'s runs on this cell are ``b``'s bit for bit (``twins``)."""
    return bool(((twins["variant"] == a) & (twins["other"] == b) & (twins["column"] == column)
                 & (twins["setting"] == setting)).any())


LEARNED_SHARE = 0.1  # a row has learned a setting when it rises by at least this share of DeltaNet's rise ...
MIN_RISE = 0.02  # ... and by at least this much accuracy (the rounds' "no worse" margin)
STARTED_SHARE = 0.1  # ... or it stands at least this share of the way from an input-blind guess to perfect accuracy
CLIMBING = 0.05  # still climbing: a gain above this in the last epoch (mean over seeds)
LEARNING_COLUMNS = ["variant", "column", "setting", "epochs", "first", "peak", "last", "rise", "bar", "last_gain",
                    "learned", "climbing", "best_epoch", "last_epoch", "started"]


def learning(curves: pd.DataFrame, settings: dict[str, list[str]], yardstick: str = BASELINE,
             blind: dict[tuple[str, str], float] | None = None) -> pd.DataFrame:
    """Per (variant, column, setting id) of ``curves`` (``study.curves``: variant, column, setting, seed, epoch, acc):
    the mean curve over seeds, its first, highest and last values, its rise (highest − first), the bar it must reach
    (``max(MIN_RISE, LEARNED_SHARE × yardstick's rise)``), the gain of its last epoch, whether it has learned
    the setting and is still climbing (module docstring), the epochs of its (first) highest and last values, and
    ``started``: the level that marks a setting learned without a rise (``STARTED_SHARE`` of the way from
    ``blind[(column, setting)]``, ``study.blind_levels``, to 1; NaN where ``blind`` does not give it, and then only
    the rise decides). One more row per (variant, column) with ``setting = "all"`` where every setting of
    ``settings[column]`` is there: learned when any setting is, climbing when every one is."""
    blind = blind or {}
    rows = []
    means = {key: g.groupby("epoch")["acc"].mean().sort_index()
             for key, g in curves.groupby(["variant", "column", "setting"], sort=False)}
    rise = {key: float(m.max() - m.iloc[0]) for key, m in means.items()}
    for (variant, column, setting), m in means.items():
        ref = rise.get((yardstick, column, setting))
        bar = max(MIN_RISE, LEARNED_SHARE * ref) if ref is not None else MIN_RISE
        gain = float(m.iloc[-1] - m.iloc[-2]) if len(m) >= 2 else float("nan")
        r = rise[(variant, column, setting)]
        level = blind.get((column, setting))
        started = level + STARTED_SHARE * (1 - level) if level is not None else float("nan")
        rows.append((variant, column, setting, len(m), float(m.iloc[0]), float(m.max()), float(m.iloc[-1]), r, bar,
                     gain, r >= bar or bool(m.max() >= started), gain > CLIMBING, int(m.idxmax()), int(m.index[-1]),
                     started))
    frame = pd.DataFrame(rows, columns=LEARNING_COLUMNS)
    whole = []
    for (variant, column), g in frame.groupby(["variant", "column"], sort=False):
        if column in settings and set(settings[column]) <= set(g["setting"]):
            g = g[g["setting"].isin(settings[column])]
            nan = float("nan")
            whole.append((variant, column, ALL_SETTINGS, int(g["epochs"].max()), nan, nan, nan, nan, nan, nan,
                          bool(g["learned"].any()), bool(g["climbing"].all()), nan, nan, nan))
    return pd.concat([frame, pd.DataFrame(whole, columns=LEARNING_COLUMNS)], ignore_index=True)


def _learning_row(learning: pd.DataFrame, variant: str, column: str, setting: str):
    sel = learning[(learning["variant"] == variant) & (learning["column"] == column) & (learning["setting"] == setting)]
    return None if sel.empty else sel.iloc[0]


def not_learned(learning: pd.DataFrame, variant: str, column: str, setting: str = ALL_SETTINGS) -> str | None:
    """Why ``variant`` has not learned the cell within the budget (its curve in numbers), or None (learned, or no
    curve)."""
    row = _learning_row(learning, variant, column, setting)
    if row is None or bool(row["learned"]):
        return None
    if setting == ALL_SETTINGS:
        parts = learning[(learning["variant"] == variant) & (learning["column"] == column)
                         & (learning["setting"] != ALL_SETTINGS)]
        if len(parts) == 1:
            return _curve_text(parts.iloc[0])
        return "; ".join(f"{s}: {_curve_text(r)}" for s, (_, r) in zip(parts["setting"], parts.iterrows()))
    return _curve_text(row)


def _curve_text(row) -> str:
    from .names import fmt

    bar = float(row["bar"])
    why = f"a tenth of {BASELINE}'s rise there, {fmt(bar / LEARNED_SHARE)}" if bar > MIN_RISE else "the floor"
    text = (f"mean accuracy over seeds {fmt(row['first'])} at its first epoch, at most {fmt(row['peak'])} over "
            f"{int(row['epochs'])} epochs: a rise of {fmt(row['rise'])}, under the bar of {fmt(bar)}, {why}")
    if not pd.isna(row["started"]):
        text += (f", and under {fmt(row['started'])}, {STARTED_SHARE:g} of the way from an input-blind guess to "
                 "perfect accuracy")
    return text


def still_climbing(learning: pd.DataFrame, variant: str, column: str, setting: str = ALL_SETTINGS) -> float | None:
    """The last epoch's gain of ``variant``'s mean curve on the cell when it is still climbing (on a task column:
    the smallest over its settings, all climbing), else None."""
    row = _learning_row(learning, variant, column, setting)
    if row is None or not bool(row["climbing"]):
        return None
    if setting == ALL_SETTINGS:
        parts = learning[(learning["variant"] == variant) & (learning["column"] == column)
                         & (learning["setting"] != ALL_SETTINGS)]
        return float(parts["last_gain"].min())
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
