"""From stored run records to the study's tables.

MAD's score, per variant and task (mad/analysis.py):

    best(setting, seed) = max over the (lr, wd) sweep of test accuracy
    score(task, seed)   = mean over the task's settings of best(setting, seed)
    score(task)         = mean over seeds, reported with a 95% t-interval and n

``accuracies_df`` is the seed documents' table: an unnamed index of row labels, the six task columns in
their order, fractions in [0, 1].
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from . import tasks as T
from .runtime import REPO_ROOT
from .variants import VARIANTS

COLUMNS = list(T.COLUMNS)


def records_frame(records: list[dict]) -> pd.DataFrame:
    """One row per run."""
    rows = []
    for r in records:
        s = r["spec"]
        rows.append({
            "variant": s["variant"], "label": r["label"], "task": s["task"], "column": T.COLUMN[s["task"]],
            "setting": T.setting_id(s["task"], s["setting"]) if s["setting"] else "baseline",
            "lr": s["lr"], "wd": s["wd"], "seed": s["seed"], "scale": s["scale"],
            "test_acc": r["metrics"]["test_acc"], "test_token_acc": r["metrics"]["test_token_acc"],
            "test_ppl": r["metrics"]["test_ppl"], "best_epoch": r["best_epoch"], "epochs_run": r["epochs_run"],
            "diverged": r["diverged"], "train_tokens_per_s": r["train_tokens_per_s"], "wall_time_s": r["wall_time_s"],
            "precision": r["precision"],
        })
    return pd.DataFrame(rows)


def setting_scores(runs: pd.DataFrame, metric: str = "test_acc") -> pd.DataFrame:
    """Per (label, column, setting, seed): best over the lr × wd sweep."""
    if runs.empty:
        return pd.DataFrame(columns=["label", "column", "setting", "seed", metric])
    return runs.groupby(["label", "column", "setting", "seed"], as_index=False)[metric].max()


def task_scores(runs: pd.DataFrame, metric: str = "test_acc") -> pd.DataFrame:
    """Per (label, column, seed): best over the lr × wd sweep (``setting_scores``), then mean over settings."""
    if runs.empty:
        return pd.DataFrame(columns=["label", "column", "seed", metric])
    return setting_scores(runs, metric).groupby(["label", "column", "seed"], as_index=False)[metric].mean()


def ci95(values: np.ndarray) -> tuple[float, float, float, int]:
    """Mean and two-sided 95% Student-t interval; the interval is NaN with fewer than two values."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    mean = float(values.mean()) if n else math.nan
    if n < 2:
        return mean, math.nan, math.nan, n
    half = float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half, n


def summary(runs: pd.DataFrame, metric: str = "test_acc") -> pd.DataFrame:
    """Long table: label, column, mean, ci_low, ci_high, n (seeds)."""
    rows = []
    for (label, column), g in task_scores(runs, metric).groupby(["label", "column"]):
        mean, lo, hi, n = ci95(g[metric].to_numpy())
        rows.append({"label": label, "column": column, "mean": mean, "ci_low": lo, "ci_high": hi, "n": n})
    return pd.DataFrame(rows, columns=["label", "column", "mean", "ci_low", "ci_high", "n"])


def label_order(labels) -> list[str]:
    """Registry order (baselines first as registered), then any other label alphabetically."""
    registered = [v.label for v in VARIANTS.values()]
    known = [lab for lab in registered if lab in set(labels)]
    return known + sorted(set(labels) - set(registered))


def accuracies_df(runs: pd.DataFrame, metric: str = "test_acc") -> pd.DataFrame:
    """The seeds' table: rows = labels, the six columns, the mean over seeds (NaN where not run)."""
    s = summary(runs, metric)
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
    """A seed document's table (a pandas repr followed by prose) as a DataFrame in the same format."""
    lines = Path(path).read_text().splitlines()
    header, rows = lines[0], []
    row = re.compile(r"^\s*\d+\s+(\S+)" + r"\s+(-?\d+\.\d+)" * len(COLUMNS))  # prose may follow the last number
    for line in lines[1:]:
        m = row.match(line)
        if not m:
            break
        rows.append([m.group(1)] + [float(x) for x in m.groups()[1:]])
    if "Compress" not in header or not rows:
        raise ValueError(f"{path}: no accuracies table found at the top")
    table = pd.DataFrame([r[1:] for r in rows], index=[r[0] for r in rows], columns=COLUMNS)
    return table


def write_accuracies(runs: pd.DataFrame, scale: str, out_dir: str | Path | None = None) -> dict[str, Path]:
    """``outputs/<scale>/accuracies_df.csv`` (the seeds' format) and ``accuracies_summary.csv`` (mean, CI, n),
    each written atomically."""
    out_dir = Path(out_dir or REPO_ROOT / "outputs" / scale)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"accuracies": out_dir / "accuracies_df.csv", "summary": out_dir / "accuracies_summary.csv"}
    frames = {"accuracies": accuracies_df(runs), "summary": summary(runs)}
    for key, path in paths.items():
        tmp = path.with_suffix(".csv.tmp")
        frames[key].to_csv(tmp, index=(key == "accuracies"), float_format="%.6f")
        tmp.replace(path)
    return paths
