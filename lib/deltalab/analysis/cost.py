"""What a row costs to train: only from a ``deltalab bench`` report taken on a quiet machine, or not at all.

The grid's own runs record their tokens/s, but they trained side by side with whatever else the machine was doing,
so those figures compare the machine's load as much as the variants. A bench report (``python -m deltalab bench
--json --out FILE``) measures every path in one run under the same conditions and records the load average at
its start; it is used only when that load is under ``QUIET_LOAD`` (nothing else was running).
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

QUIET_LOAD = 1.0  # one-minute load average at the bench's start: at or above, other work shared the cores
REQUIRED = ("train_tokens_per_s", "date", "machine", "threads", "batch", "length", "steps")


def read_bench(path: str | Path) -> dict:
    """A ``deltalab bench --json`` report, or a clear error naming the file and what it lacks."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"bench file {path} not found: write it with `python -m deltalab bench --json "
                                f"--out {path}`, or pass bench_file=None (no cost figure)")
    bench = json.loads(path.read_text())
    missing = [k for k in REQUIRED if k not in bench]
    if missing:
        raise ValueError(f"{path} is not a `deltalab bench --json` report: it lacks {', '.join(missing)}")
    return bench


def load_at_start(bench: dict) -> float:
    return float((bench.get("load_average_at_start") or [float("nan")])[0])


def is_quiet(bench: dict) -> bool:
    return load_at_start(bench) < QUIET_LOAD


def throughput(bench: dict, rows: list[str]) -> pd.Series:
    """Train-step tokens/s of the rows the bench measured, fastest first."""
    tps = pd.Series({r: float(bench["train_tokens_per_s"][r]) for r in rows if r in bench["train_tokens_per_s"]},
                    dtype=float, name="train tokens / s (deltalab bench)")
    return tps.sort_values(ascending=False, kind="mergesort")


def cost_note(bench: dict | None, bench_name: str | None = None) -> str:
    """Where a cost figure comes from, or why there is none."""
    if bench is None:
        return ("No cost figure: no `deltalab bench` report was given, and the grid runs' own tokens/s carry the "
                "load of whatever else the machine was doing while each trained.")
    threads = f"{bench['threads']} thread" + ("s" if bench["threads"] != 1 else "")
    what = (f"`deltalab bench` report `{bench_name or 'bench.json'}` ({bench['machine']}, {threads}, batch "
            f"{bench['batch']} × length {bench['length']}, median of {bench['steps']} steps)")
    load = load_at_start(bench)
    if not is_quiet(bench):
        return (f"No cost figure: the {what} started at a load average of {load:.1f}, so other work shared the cores "
                f"while it measured and a difference between two rows would say more about that work than about "
                f"the rows. Re-measure on a quiet machine (load under {QUIET_LOAD:g}) to get one.")
    return f"Train-step tokens/s from the {what}, load average {load:.1f} at its start: every row measured in one run."
