"""Where a grid stands, read from the store (nothing is trained or written): ``missing`` lists the planned runs not
stored (with the lock that holds each, or what is wrong with its record), ``grid_status`` gives one row per planned
run, and ``status_report`` what ``python -m deltalab status`` prints: per seed, what is stored, held and missing,
and the time left projected from the stored runs' wall times."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import tasks as T
from ..store import CorruptRecordError, Store
from ..runs import RunSpec
from .planning import describe


def missing(runs: list[tuple[str, RunSpec]], store: Store) -> list[str]:
    """The planned runs not in the store, each with the lock that holds it if one does, or with what is wrong
    with its record when that is not valid (not counted as stored). Reads only."""
    out = []
    for _, spec in runs:
        try:
            record = store.get(spec)
        except CorruptRecordError as e:
            out.append(f"{describe(spec)}: bad record {e.args[0].split(', so it is not counted')[0]}")
            continue
        if record is None:
            lock = store.lock_path(spec)
            out.append(f"{describe(spec)}: " + (store.lock_state(lock)[1] if lock.exists() else "not stored"))
    return out


def grid_status(runs: list[tuple[str, RunSpec]], store: Store) -> pd.DataFrame:
    """One row per planned run: variant, task, setting id, seed, ``state`` (``stored``, ``held`` by a live
    lock, ``bad``: a record that is not valid, not counted as stored, or ``missing``), the stored run's
    ``wall_time_s``, ``estimate_s``: for a run not stored, the median wall time of the same variant and setting
    at its stored seeds, else of every stored run of that setting (NaN where no run of the setting is stored
    yet), ``problem``: what is wrong with a bad record (its path and field), and of a stored run the ``commit``
    that trained it, the ``diff`` of the uncommitted code it was trained with (its hash, ``grid.provenance``;
    empty if none was stored) and its ``path`` in the store. Reads only."""
    rows = []
    for _, spec in runs:
        problem = ""
        try:
            record = store.get(spec)
        except CorruptRecordError as e:
            record, problem = None, e.args[0].split(", so it is not counted")[0]
        lock = store.lock_path(spec)
        if problem:
            state = "bad"
        elif record is not None:
            state = "stored"
        elif lock.exists() and not store.lock_state(lock)[0]:
            state = "held"
        else:
            state = "missing"
        rows.append({"variant": spec.variant, "task": spec.task,
                     "setting": T.setting_id(spec.task, spec.setting_dict) if spec.setting else "baseline",
                     "seed": spec.seed, "state": state,
                     "wall_time_s": float(record["wall_time_s"]) if record is not None else np.nan,
                     "problem": problem,
                     "commit": str(record.get("environment", {}).get("commit", "")) if record is not None else "",
                     "diff": str(record.get("environment", {}).get("diff", "")) if record is not None else "",
                     "path": str(store.path(spec).relative_to(store.root)) if record is not None else ""})
    frame = pd.DataFrame(rows, columns=["variant", "task", "setting", "seed", "state", "wall_time_s", "problem",
                                        "commit", "diff", "path"])
    same_row = frame.groupby(["variant", "task", "setting"])["wall_time_s"].transform("median")
    same_setting = frame.groupby(["task", "setting"])["wall_time_s"].transform("median")
    frame["estimate_s"] = np.where(frame["state"] == "stored", np.nan, same_row.fillna(same_setting))
    return frame[["variant", "task", "setting", "seed", "state", "wall_time_s", "estimate_s", "problem", "commit",
                  "diff", "path"]]


SHOWN = 5  # dirty records named by status_report


def dirty_report(status: pd.DataFrame) -> str:
    """The stored records whose commit is ``-dirty`` (trained from uncommitted code under ``lib/``): how many, how
    many of them name no stored diff (the code that trained them is not known), and the first few paths (of those
    without a diff first); empty when there is none."""
    stored = status[status["state"] == "stored"]
    dirty = stored[stored["commit"].str.endswith("-dirty")]
    if dirty.empty:
        return ""
    unknown = dirty["diff"] == ""
    lines = [f"from uncommitted code: {len(dirty)} of {len(stored)} stored records name a -dirty commit, "
             f"{int(unknown.sum())} of them with no stored diff (the code that trained them is not known) and "
             f"{int((~unknown).sum())} with their diff beside them (_diffs/<hash>.diff); the first:"]
    first = pd.concat([dirty[unknown], dirty[~unknown]]).head(SHOWN)
    lines += [f"  {r.path} ({r.commit}" + (f", diff {r.diff})" if r.diff else ")") for r in first.itertuples()]
    if len(dirty) > SHOWN:
        lines.append(f"  … and {len(dirty) - SHOWN} more")
    return "\n".join(lines)


def status_report(status: pd.DataFrame, workers: int) -> str:
    """What a grid has done and what is left, per seed, with the time left projected from the stored runs'
    wall times at ``workers`` processes (as measured: on busy cores the projection is pessimistic)."""
    states = ["stored", "held", "missing"] + (["bad"] if (status["state"] == "bad").any() else [])
    counts = pd.crosstab(status["seed"], status["state"]).reindex(columns=states, fill_value=0)
    counts["planned"] = counts.sum(axis=1)
    left = status[status["state"] != "stored"]
    unknown = int(left["estimate_s"].isna().sum())
    hours = left["estimate_s"].sum() / 3600
    stored = status[status["state"] == "stored"]
    lines = [counts.to_string(), "",
             f"stored: {len(stored)} of {len(status)} runs, {stored['wall_time_s'].sum() / 3600:.1f} process-hours "
             f"of wall time as recorded"]
    if len(left):
        lines.append(f"left: {len(left)} runs, about {hours:.1f} process-hours by the stored runs' wall times "
                     f"(median per variant and setting, else per setting), so about {hours / workers:.1f} h at "
                     f"{workers} processes" + (f"; {unknown} run(s) of settings with no stored run are not in "
                                                "that figure" if unknown else ""))
    bad = status[status["state"] == "bad"]
    if len(bad):
        lines.append(f"bad records: {len(bad)}, not counted as stored (nothing was deleted; a grid moves each aside "
                     "to <name>.corrupt and re-trains its run):")
        lines += [f"  {p}" for p in bad["problem"]]
    dirty = dirty_report(status) if "commit" in status else ""
    return "\n".join(lines + ([dirty] if dirty else []))
