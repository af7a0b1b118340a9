"""The accuracy tables of the stored runs: from run records to the study's tables (``accuracies_df.csv``,
``accuracies_summary.csv``) and the per-seed scores every notebook table is built from.

MAD's score, per variant and task (mad/analysis.py):

    best(setting, seed) = max over the (lr, wd) sweep of test accuracy
    score(task, seed)   = mean over the task's settings of best(setting, seed)
    score(task)         = mean over seeds, reported with a 95% t-interval and n

A seed counts for a task only when every run the scale plans for it (each setting × lr × wd) is stored: a
seed with a missing run is left out of the mean and its missing runs are listed (``missing``), never averaged
around. Runs of settings the scale no longer has are not used.

A row is a variant id (a registered short name, or a user file's ``<stem>-<content hash>``), never its
display label: two ids with one label is an error, and a user file's row is labelled with its hash
(``…@1a2b3c4d``), so an edited file is a row of its own. A cell's runs must share one precision (``fp32``
or ``bf16``); the summary shows it and a cell that mixes two is refused.

A printed table never shows a row as more than it is (``row_marks``): a row whose mean is over fewer seeds than
the table asks for is marked with its n (``DeltaNet [n=3 of 4 seeds]``) and a note names the seeds left out;
rows of different precisions each carry theirs (``[bf16]``), in the written ``accuracies_df`` too.

``accuracies_df`` is the seed documents' table: an unnamed index of row labels, the six task columns in
their order, fractions in [0, 1]. The study's tables (``write_accuracies``) hold the registered variants
only; a user's variants are reported in their own notebook (run_variant.ipynb) or table.
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from .. import tasks as T
from ..variants import VARIANTS

COLUMNS = list(T.COLUMNS)
_USER_ID = re.compile(r".+-([0-9a-f]{8})")  # grid.variant_id of a user's file


def row_label(variant: str, recorded_label: str) -> str:
    """The display label of a variant id: the registry's label; a user file's label with its content hash."""
    if variant in VARIANTS:
        return VARIANTS[variant].label
    m = _USER_ID.fullmatch(variant)
    return f"{recorded_label}@{m.group(1)}" if m else recorded_label


def records_frame(records: list[dict]) -> pd.DataFrame:
    """One row per run; ``variant`` is the row's identity, ``label`` its display (one label per id)."""
    rows = []
    for r in records:
        s = r["spec"]
        rows.append({
            "variant": s["variant"], "label": row_label(s["variant"], r["label"]), "task": s["task"],
            "column": T.TASKS[s["task"]].column,
            "setting": T.setting_id(s["task"], s["setting"]) if s["setting"] else "baseline",
            "lr": s["lr"], "wd": s["wd"], "seed": s["seed"], "scale": s["scale"],
            "test_acc": r["metrics"]["test_acc"], "test_token_acc": r["metrics"]["test_token_acc"],
            "test_ppl": r["metrics"]["test_ppl"], "best_epoch": r["best_epoch"], "epochs_run": r["epochs_run"],
            "diverged": r["diverged"], "train_tokens_per_s": r["train_tokens_per_s"], "wall_time_s": r["wall_time_s"],
            "precision": r["precision"],
            "train_path": (r.get("environment") or {}).get("train_path", "reference"),
        })
    frame = pd.DataFrame(rows)
    check_labels(frame)
    return frame


def check_labels(runs: pd.DataFrame) -> None:
    """Each display label belongs to one variant id; a collision is a ValueError naming the ids."""
    if runs.empty:
        return
    ids = runs.groupby("label")["variant"].unique()
    clashes = {lab: sorted(v) for lab, v in ids.items() if len(v) > 1}
    if clashes:
        lab, which = next(iter(clashes.items()))
        raise ValueError(f"label collision: the variants {', '.join(which)} all display as {lab!r}; a table row is "
                         "one variant, so rename the user file (or keep the runs of one of them in another store)")


def expected_runs(scale, tasks: list[str] | None = None) -> dict[str, set[tuple[str, float, float]]]:
    """Per table column, the runs a seed needs to count: (setting id, lr, wd) for each of the scale's
    settings of the task and each point of its sweep (``tasks``: only these of the scale's tasks)."""
    out = {}
    for task, budget in scale.tasks.items():
        if tasks is not None and task not in tasks:
            continue
        sids = [T.setting_id(task, s) if s else "baseline" for s in budget.settings]
        out[T.TASKS[task].column] = {(sid, float(lr), float(wd)) for sid in sids for lr in scale.lrs_for(task)
                                     for wd in scale.wds}
    return out


def _with_ids(runs: pd.DataFrame) -> pd.DataFrame:
    """A hand-made frame (tests, notebooks) may lack the columns ``records_frame`` gives: the label is then the
    row's id and the sweep a single point."""
    missing = {"variant": lambda r: r["label"], "lr": 0.0, "wd": 0.0}
    if all(c in runs for c in missing):
        return runs
    runs = runs.copy()
    for c, fill in missing.items():
        if c not in runs:
            runs[c] = fill(runs) if callable(fill) else fill
    return runs


def _expected_for(runs: pd.DataFrame, expected: dict | None) -> dict:
    """``expected`` as given; else from the (one) scale the runs were trained under; for a hand-made frame
    without a ``scale`` column, every (setting, lr, wd) the frame holds for the column."""
    if expected is not None:
        return expected
    if "scale" not in runs:
        return {col: set(zip(g["setting"], g["lr"].astype(float), g["wd"].astype(float)))
                for col, g in runs.groupby("column")}
    from ..params import load_scale

    scales = sorted(runs["scale"].unique())
    if len(scales) != 1:
        raise ValueError(f"runs of several scales ({', '.join(scales)}) in one table; pass expected= "
                         "(accuracies.expected_runs(scale)) or keep one scale per table")
    try:
        return expected_runs(load_scale(scales[0]))
    except ValueError as e:
        raise ValueError(f"cannot tell which runs a seed needs: {e}; pass "
                         "expected=accuracies.expected_runs(scale)") from e


def planned(runs: pd.DataFrame, expected: dict) -> pd.DataFrame:
    """The runs that are part of the plan (a setting or sweep point the scale dropped is not used)."""
    if runs.empty:
        return runs
    keys = list(zip(runs["column"], runs["setting"], runs["lr"].astype(float), runs["wd"].astype(float)))
    return runs[[(s, lr, wd) in expected.get(c, ()) for c, s, lr, wd in keys]]


def check_train_path(runs: pd.DataFrame) -> None:
    """Every run trained on one training path (``train.train_run``: reference or fast). The paths agree only to
    rounding, so a store mixing them would make a row whose change does not act differ from DeltaNet's runs where
    it should equal them bit for bit: a ValueError naming the runs of the less common path."""
    if runs.empty or "train_path" not in runs or runs["train_path"].nunique() < 2:
        return
    counts = runs["train_path"].value_counts()
    odd = runs[runs["train_path"] == counts.index[-1]]
    example = ", ".join(f"{r.variant}/{r.task}/{r.setting}/seed {r.seed}" for r in odd.head(3).itertuples())
    raise ValueError(f"the stored runs mix training paths ({', '.join(f'{p}: {n}' for p, n in counts.items())}; e.g. "
                     f"{counts.index[-1]}: {example}): one study is trained on one path (unset DELTALAB_TRAIN_PATH, "
                     "or set it the same for every run, and re-train the others)")


def check_precision(runs: pd.DataFrame) -> None:
    """Every cell's runs share one precision; a cell that mixes two is a ValueError naming it."""
    if runs.empty or "precision" not in runs:
        return
    n = runs.groupby(["variant", "column"])["precision"].nunique()
    if (n > 1).any():
        variant, column = n[n > 1].index[0]
        cell = runs[(runs["variant"] == variant) & (runs["column"] == column)]
        how = "; ".join(f"{p}: seeds {', '.join(str(s) for s in sorted(g['seed'].unique()))}"
                        for p, g in cell.groupby("precision"))
        raise ValueError(f"the cell {variant} / {column} mixes runs of two precisions ({how}); their numbers "
                         "cannot be averaged: pin the scale's precision and keep one precision per store")


def setting_scores(runs: pd.DataFrame, metric: str = "test_acc", expected: dict | None = None) -> pd.DataFrame:
    """Per (variant, label, column, setting, seed): best over the lr × wd sweep. With ``expected``
    (``expected_runs``): over the planned runs only, and only where every planned sweep point of the setting is
    stored (a partial sweep is not a setting's score)."""
    if runs.empty:
        return pd.DataFrame(columns=["variant", "label", "column", "setting", "seed", metric])
    runs = _with_ids(runs)
    check_precision(runs)
    check_train_path(runs)
    keys = ["variant", "label", "column", "setting", "seed"]
    if expected is not None and not runs.empty:
        runs = planned(runs, expected)
        want: dict[tuple, set] = {}
        for column, points in expected.items():
            for sid, lr, wd in points:
                want.setdefault((column, sid), set()).add((lr, wd))
        cells = list(zip(*(runs[k] for k in keys)))
        have: dict[tuple, set] = {}
        for cell, lr, wd in zip(cells, runs["lr"].astype(float), runs["wd"].astype(float)):
            have.setdefault(cell, set()).add((lr, wd))
        runs = runs[[have[c] == want[(c[2], c[3])] for c in cells]]
    return runs.groupby(keys, as_index=False)[metric].max()


def seed_coverage(runs: pd.DataFrame, expected: dict) -> pd.DataFrame:
    """Per (variant, label, column, seed): whether the seed is complete and which planned runs it lacks."""
    rows = []
    for (variant, label, column, seed), g in runs.groupby(["variant", "label", "column", "seed"]):
        want = expected.get(column, set())
        have = set(zip(g["setting"], g["lr"].astype(float), g["wd"].astype(float)))
        lacks = sorted(want - have)
        sweep = len({(lr, wd) for _, lr, wd in want}) > 1
        text = ", ".join(f"{s} lr {lr:g} wd {wd:g}" if sweep else s for s, lr, wd in lacks)
        rows.append({"variant": variant, "label": label, "column": column, "seed": seed, "complete": not lacks,
                     "lacks": text})
    return pd.DataFrame(rows, columns=["variant", "label", "column", "seed", "complete", "lacks"])


def task_scores(runs: pd.DataFrame, metric: str = "test_acc", expected: dict | None = None) -> pd.DataFrame:
    """Per (variant, label, column, seed) with every planned run stored: best over the lr × wd sweep
    (``setting_scores``), then mean over the task's settings. ``expected``: ``expected_runs(scale)``
    (default: from the runs' scale). A seed that lacks a run is not scored (``summary`` lists it)."""
    if runs.empty:
        return pd.DataFrame(columns=["variant", "label", "column", "seed", metric])
    runs = _with_ids(runs)
    expected = _expected_for(runs, expected)
    runs = planned(runs, expected)
    cover = seed_coverage(runs, expected)
    complete = cover[cover["complete"]][["variant", "column", "seed"]]
    scores = setting_scores(runs, metric).merge(complete, on=["variant", "column", "seed"])
    return scores.groupby(["variant", "label", "column", "seed"], as_index=False)[metric].mean()


def ci95(values: np.ndarray) -> tuple[float, float, float, int]:
    """Mean and two-sided 95% Student-t interval; the interval is NaN with fewer than two values."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    mean = float(values.mean()) if n else math.nan
    if n < 2:
        return mean, math.nan, math.nan, n
    half = float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half, n


SUMMARY_COLUMNS = ["variant", "label", "column", "mean", "ci_low", "ci_high", "n", "precision", "missing"]


def summary(runs: pd.DataFrame, metric: str = "test_acc", expected: dict | None = None) -> pd.DataFrame:
    """Long table: variant, label, column, mean, ci_low, ci_high, n (complete seeds), precision (of the cell's
    runs), missing (the planned runs of incomplete seeds, e.g. "seed 1: vs64"; empty when none)."""
    if runs.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    runs = _with_ids(runs)
    expected = _expected_for(runs, expected)
    kept = planned(runs, expected)
    scores = task_scores(kept, metric, expected)
    cover = seed_coverage(kept, expected)
    rows = []
    for (label, variant, column), cell in kept.groupby(["label", "variant", "column"]):
        g = scores[(scores["variant"] == variant) & (scores["column"] == column)]
        mean, lo, hi, n = ci95(g[metric].to_numpy())
        c = cover[(cover["variant"] == variant) & (cover["column"] == column) & ~cover["complete"]]
        rows.append({"variant": variant, "label": label, "column": column, "mean": mean, "ci_low": lo,
                     "ci_high": hi, "n": n,
                     "precision": "/".join(sorted(cell["precision"].unique())) if "precision" in cell else "",
                     "missing": "; ".join(f"seed {s}: {t}" for s, t in zip(c["seed"], c["lacks"]))})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def label_order(labels) -> list[str]:
    """Registry order (baselines first as registered), then any other label alphabetically."""
    registered = [v.label for v in VARIANTS.values()]
    known = [lab for lab in registered if lab in set(labels)]
    return known + sorted(set(labels) - set(registered))


def accuracies_df(runs: pd.DataFrame, metric: str = "test_acc", expected: dict | None = None) -> pd.DataFrame:
    """The seeds' table: rows = labels, the six columns, the mean over complete seeds (NaN where none)."""
    s = summary(runs, metric, expected)
    table = s.pivot(index="label", columns="column", values="mean").reindex(columns=COLUMNS)
    table = table.reindex(label_order(table.index))
    table.index.name = None
    table.columns.name = None
    return table


def with_average(table: pd.DataFrame) -> pd.DataFrame:
    """Append MAD's overall score: the mean over the six task columns (NaN if any is missing)."""
    out = table.copy()
    out["Average"] = table[COLUMNS].mean(axis=1, skipna=False)
    return out


def gap_to(table: pd.DataFrame, reference_label: str = "gated_delta_net_4layer") -> pd.DataFrame:
    """Each row minus the reference row, per column (positive: better than the reference)."""
    if reference_label not in table.index:
        raise ValueError(f"reference row {reference_label!r} is not in the table; rows: {list(table.index)}")
    return table - table.loc[reference_label]


def read_seed_table(path: str | Path) -> pd.DataFrame:
    """A seed document's table as committed under ``params/seed_tables/`` (one CSV per document: ``#`` comment
    lines naming the source, then a ``variant`` column and the six task columns) as a DataFrame in the
    ``accuracies_df`` format: an unnamed index of row names, the six columns, fractions in [0, 1]."""
    table = pd.read_csv(path, comment="#", index_col=0)
    if list(table.columns) != COLUMNS or table.empty:
        raise ValueError(f"{path}: expected a variant column and the columns {COLUMNS}, got {list(table.columns)}")
    table.index.name = None
    return table.astype(float)


def study_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs of the study's rows: registered variants only (a user's variants are not the study's)."""
    return runs[runs["variant"].isin(list(VARIANTS))] if not runs.empty else runs


def seeds_counted(runs: pd.DataFrame, expected: dict | None = None, metric: str = "test_acc") -> dict:
    """(variant, column) → the seeds a cell's mean is over (those with every planned run stored)."""
    if runs.empty:
        return {}
    runs = _with_ids(runs)
    scores = task_scores(runs, metric, _expected_for(runs, expected))
    return {key: sorted(int(s) for s in g["seed"]) for key, g in scores.groupby(["variant", "column"])}


def row_marks(runs: pd.DataFrame, want: dict[str, tuple[int, ...]] | None = None,
              expected: dict | None = None) -> tuple[dict[str, str], list[str]]:
    """What a table of ``runs`` must say about its rows, so that no row reads as more than it is:

    - a row with a cell whose mean is over fewer of the seeds the table asks for (``want``: variant id → its
      seeds) is marked ``[n=3 of 4 seeds]`` (the smallest such n), with a note naming each short cell and the
      seeds it leaves out (and what each lacks);
    - when the table's rows are of more than one precision, every row is marked with its own (``[bf16]``),
      with a note saying so.

    Returns (label → mark to append, note lines); both empty for a complete single-precision table."""
    if runs.empty:
        return {}, []
    runs = _with_ids(runs)
    expected = _expected_for(runs, expected)
    summ = summary(runs, expected=expected)
    counted = seeds_counted(runs, expected)
    cover = seed_coverage(planned(runs, expected), expected)
    lacks: dict[tuple, dict[int, str]] = {}
    for c in cover[~cover["complete"]].itertuples(index=False):
        lacks.setdefault((c.variant, c.column), {})[int(c.seed)] = c.lacks
    precisions = sorted({p for cell in summ["precision"] for p in str(cell).split("/") if p})
    mixed = len(precisions) > 1
    marks: dict[str, str] = {}
    notes: list[str] = []
    for (variant, label), rows in summ.groupby(["variant", "label"], sort=False):
        parts = []
        seeds = tuple((want or {}).get(variant, ()))
        short = []
        for r in rows.itertuples(index=False):
            have = counted.get((variant, r.column), [])
            left = [s for s in seeds if s not in have]
            if left:
                why = lacks.get((variant, r.column), {})
                short.append((r.column, int(r.n), [f"seed {s} ({'lacks ' + why[s] if s in why else 'no run stored'})"
                                                   for s in left]))
        if short:
            parts.append(f"n={min(n for _, n, _ in short)} of {len(seeds)} seeds")
            notes.append(f"{label}: fewer seeds than the table asks for ({', '.join(str(s) for s in seeds)}): "
                         + "; ".join(f"{c} n={n}, not counted: {', '.join(left)}" for c, n, left in short))
        if mixed:
            parts.append("/".join(sorted({p for cell in rows["precision"] for p in str(cell).split("/") if p})))
        if parts:
            marks[label] = f" [{', '.join(parts)}]"
    if mixed:
        notes.append(f"this table holds rows of different precisions ({', '.join(precisions)}), each marked with its "
                     "own: their numbers are not directly comparable (pin the scale's precision to train them alike)")
    return marks, notes


def marked(table: pd.DataFrame, marks: dict[str, str]) -> pd.DataFrame:
    """``table`` with each row label followed by its mark (``row_marks``)."""
    if not marks:
        return table
    out = table.copy()
    out.index = [f"{label}{marks.get(label, '')}" for label in table.index]
    return out


def precision_marks(runs: pd.DataFrame) -> dict[str, str]:
    """label → `` [bf16]``/`` [fp32]`` for every row, when the runs are of more than one precision; else {}."""
    if runs.empty or "precision" not in runs or runs["precision"].nunique() < 2:
        return {}
    return {label: f" [{'/'.join(sorted(g.unique()))}]" for label, g in runs.groupby("label")["precision"]}


def write_frames(frames: dict[Path, tuple[pd.DataFrame, bool]]) -> None:
    """Write each frame (path → (frame, with its index)) as CSV, all or none: every file goes to a temporary
    file beside it first, and only once all are whole are they renamed into place (a full disk or a read-only
    folder leaves the old files as they were, and no temporary file behind). OSError if that fails."""
    tmps: dict[Path, Path] = {}
    try:
        for path, (frame, index) in frames.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # per process: two grids finishing at once
            tmps[path] = tmp
            frame.to_csv(tmp, index=index, float_format="%.6f")
        for path, tmp in tmps.items():
            tmp.replace(path)
    finally:
        for tmp in tmps.values():
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass


def write_accuracies(runs: pd.DataFrame, scale: str, out_dir: str | Path | None = None, complete: bool = True,
                     expected: dict | None = None) -> dict[str, Path]:
    """The study's tables from the registered variants' runs: ``accuracies_df.csv`` (the seeds' format) and
    ``accuracies_summary.csv`` (mean, CI, n, precision, missing runs), written together into ``out_dir``
    (default: beside the store, ``Store().tables_dir(scale)``): both or neither (``write_frames``). A table
    computed from an incomplete store (``complete=False``: some run the scale plans for the registered variants
    is not stored) is written as ``accuracies_df.incomplete.csv`` / ``accuracies_summary.incomplete.csv``
    instead, so it never overwrites a complete one. Rows of more than one precision carry their precision in
    their label (``DeltaNet [bf16]``), so they are never side by side unmarked. OSError (naming nothing) when
    the folder cannot be written: the caller says where."""
    if out_dir is None:
        from ..store import Store

        out_dir = Store().tables_dir(scale)
    out_dir = Path(out_dir)
    runs = study_runs(runs)
    suffix = ".csv" if complete else ".incomplete.csv"
    paths = {"accuracies": out_dir / f"accuracies_df{suffix}", "summary": out_dir / f"accuracies_summary{suffix}"}
    table = marked(accuracies_df(runs, expected=expected), precision_marks(_with_ids(runs)) if not runs.empty else {})
    write_frames({paths["accuracies"]: (table, True),
                  paths["summary"]: (summary(runs, expected=expected), False)})
    return paths
