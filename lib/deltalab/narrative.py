"""Sentences generated from result tables: every number, ranking and verdict in a notebook's prose comes
from here, computed from the run it sits in.

Comparisons use the per-seed task scores: "A beats B" needs both rows measured with at least two seeds
and A's 95% interval entirely above B's; with fewer seeds a difference is reported as a single-seed
observation ("cannot tell"), never as a finding.
"""
from __future__ import annotations

import math

import pandas as pd

BEATS, LAGS, TIE, CANNOT_TELL = "beats", "lags", "no clear difference", "cannot tell"


def short(label: str) -> str:
    """``delta_net_4layer_X_in_for_loop`` → ``X``; baselines keep their names."""
    return label.replace("delta_net_4layer_", "").replace("_in_for_loop", "")


def _cell(summary: pd.DataFrame, label: str, column: str) -> pd.Series | None:
    sel = summary[(summary["label"] == label) & (summary["column"] == column)]
    return None if sel.empty else sel.iloc[0]


def compare(summary: pd.DataFrame, a: str, b: str, column: str) -> tuple[str, float]:
    """Verdict of row ``a`` against row ``b`` on one task column, and the difference of means."""
    ca, cb = _cell(summary, a, column), _cell(summary, b, column)
    if ca is None or cb is None or math.isnan(ca["mean"]) or math.isnan(cb["mean"]):
        return CANNOT_TELL, math.nan
    diff = float(ca["mean"] - cb["mean"])
    if min(ca["n"], cb["n"]) < 2:
        return CANNOT_TELL, diff
    if ca["ci_low"] > cb["ci_high"]:
        return BEATS, diff
    if ca["ci_high"] < cb["ci_low"]:
        return LAGS, diff
    return TIE, diff


def join_words(items: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    items = [str(x) for x in items]
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def fmt(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def row_against(summary: pd.DataFrame, label: str, references: list[str], columns: list[str]) -> list[str]:
    """One sentence per task: the row's score and its difference to each reference, with the verdict."""
    out = []
    for col in columns:
        c = _cell(summary, label, col)
        if c is None:
            continue
        parts = []
        for ref in references:
            if ref == label:
                continue
            verdict, diff = compare(summary, label, ref, col)
            rc = _cell(summary, ref, col)
            ref_mean = fmt(rc["mean"]) if rc is not None else "n/a"
            sign = "" if math.isnan(diff) else f"{diff:+.3f}, "
            parts.append(f"{short(ref)} {ref_mean} ({sign}{verdict})")
        out.append(f"**{col}**: {short(label)} scores {fmt(c['mean'])} (n={int(c['n'])}); " + "; ".join(parts) + ".")
    return out


def seeds_note(summary: pd.DataFrame, labels: list[str]) -> str:
    ns = sorted({int(n) for n in summary[summary["label"].isin(labels)]["n"]})
    if not ns:
        return "No runs are stored for these rows yet."
    if ns == [1]:
        return ("Every row here has one seed, so differences are single observations: the verdicts say "
                "'cannot tell' rather than claim a difference that run-to-run noise could produce.")
    return (f"Seeds per cell: {', '.join(map(str, ns))}. A difference is called only when the 95% intervals "
            f"of both rows (n ≥ 2) do not overlap.")


def best_per_task(table: pd.DataFrame) -> list[str]:
    """'Best on <task>: <row> (<score>)' for each column of a label × task table."""
    out = []
    for col in table.columns:
        s = table[col].dropna()
        if s.empty:
            continue
        top = s.max()
        winners = [short(i) for i in s.index if s[i] == top]
        out.append(f"**{col}**: best {', '.join(winners)} ({fmt(top)}).")
    return out
