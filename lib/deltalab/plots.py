"""Figures of the study (seaborn), each saved as a modest PNG and returned as its path."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

DPI = 100  # keeps figures around 50-150 KB


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    # bbox "tight": keeps suptitles above the axes and legends outside them in the file
    fig.savefig(path, dpi=DPI, metadata={"Software": None}, bbox_inches="tight")  # no version stamp: reproducible
    plt.close(fig)
    return path


def rows_by_task(summary: pd.DataFrame, labels: list[str], path: str | Path, title: str) -> Path:
    """Grouped bars: one group per task, one bar per row label, with 95% intervals where n ≥ 2."""
    data = summary[summary["label"].isin(labels)].copy()
    data["row"] = data["label"].str.replace("delta_net_4layer_", "", regex=False).str.replace(
        "_in_for_loop", "", regex=False)
    order = [lab.replace("delta_net_4layer_", "").replace("_in_for_loop", "") for lab in labels]
    columns = [c for c in ["Compress", "Context Recall", "Fuzzy Recall", "Memorize", "Noisy Recall",
                           "Selective Copy"] if c in set(data["column"])]
    fig, ax = plt.subplots(figsize=(9, 3.6))
    sns.barplot(data=data, x="column", y="mean", hue="row", hue_order=order, order=columns, ax=ax)
    width = 0.8 / max(len(order), 1)
    for i, row in enumerate(order):
        for j, col in enumerate(columns):
            sel = data[(data["row"] == row) & (data["column"] == col)]
            if len(sel) and sel["n"].iloc[0] >= 2:
                x = j - 0.4 + width * (i + 0.5)
                ax.errorbar(x, sel["mean"].iloc[0], yerr=[[sel["mean"].iloc[0] - sel["ci_low"].iloc[0]],
                                                          [sel["ci_high"].iloc[0] - sel["mean"].iloc[0]]],
                            color="black", capsize=2, lw=1)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("")
    ax.set_ylabel("MAD accuracy")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _save(fig, path)


def heatmap(table: pd.DataFrame, path: str | Path, title: str, center: float | None = None,
            cmap: str = "viridis", fmt: str = ".2f") -> Path:
    """Rows × tasks heat map with the values written in the cells."""
    shown = table.rename(index=lambda s: s.replace("delta_net_4layer_", "").replace("_in_for_loop", ""))
    fig, ax = plt.subplots(figsize=(8.5, 0.32 * len(shown) + 1.6))
    sns.heatmap(shown, annot=True, fmt=fmt, cmap=cmap, center=center, ax=ax, cbar=True,
                annot_kws={"fontsize": 7})
    ax.set_title(title)
    ax.tick_params(axis="y", labelsize=8)
    ax.tick_params(axis="x", labelsize=8, rotation=20)
    return _save(fig, path)


def learning_curves(curves: pd.DataFrame, path: str | Path, title: str) -> Path:
    """Test accuracy per epoch, one panel per task, one line per row label (mean over seeds and settings)."""
    data = curves.copy()
    data["row"] = data["label"].str.replace("delta_net_4layer_", "", regex=False).str.replace(
        "_in_for_loop", "", regex=False)
    grid = sns.relplot(data=data, x="epoch", y="test_acc", hue="row", col="column", col_wrap=3, kind="line",
                       height=2.3, aspect=1.3, facet_kws={"sharex": False}, errorbar=None, marker="o")
    grid.set_titles("{col_name}")
    sns.move_legend(grid, "upper left", bbox_to_anchor=(1.0, 0.95), fontsize=8, title=None)
    grid.figure.suptitle(title, y=1.02)
    return _save(grid.figure, path)


def scatter_reproduced(merged: pd.DataFrame, path: str | Path, title: str, rho: dict | None = None) -> Path:
    """Reproduced (y) against reported (x) per task, one panel per task; ``merged`` has columns
    label, column, reported, reproduced. ``rho`` (task → Spearman's ρ) goes into the panel titles."""
    grid = sns.relplot(data=merged, x="reported", y="reproduced", col="column", col_wrap=3, height=2.3,
                       aspect=1.1, facet_kws={"sharex": False, "sharey": False})
    for ax in grid.axes.flat:
        lo = min(ax.get_xlim()[0], ax.get_ylim()[0])
        hi = max(ax.get_xlim()[1], ax.get_ylim()[1])
        ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--")
    grid.set_titles("{col_name}")
    if rho:
        for name, ax in grid.axes_dict.items():
            r = rho.get(name)
            ax.set_title(f"{name} (ρ = {'n/a' if r is None or r != r else f'{r:.2f}'})", fontsize=9)
    grid.figure.suptitle(title, y=1.02)
    return _save(grid.figure, path)


def bars(values: pd.Series, path: str | Path, title: str, xlabel: str) -> Path:
    """Horizontal bars of one value per row label (e.g. tokens/s)."""
    shown = values.rename(index=lambda s: s.replace("delta_net_4layer_", "").replace("_in_for_loop", ""))
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(shown) + 1.2))
    sns.barplot(x=shown.to_numpy(), y=list(shown.index), ax=ax, color="steelblue")
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.tick_params(axis="y", labelsize=8)
    return _save(fig, path)
