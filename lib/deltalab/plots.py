"""Figures of the study (seaborn), each saved as a modest PNG and returned as its path. Rows arrive under their
display names (``analysis.names``); every axis and colour bar says what it shows, and every error bar what it is.

No text is drawn under ``MIN_FONT`` points, and each PNG records the size of its smallest text in pixels (the
``SMALLEST_TEXT`` text chunk): the study's site never shows a figure so small that this text falls under 8 px."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

DPI = 100  # keeps figures around 50-150 KB
MIN_FONT = 8  # points: the smallest text a figure draws (11 px at DPI)
SMALLEST_TEXT = "Smallest text (px)"  # the PNG text chunk that records it
ACCURACY = "macro test accuracy"


def smallest_text(fig) -> float:
    """The size in pixels of the smallest visible text of ``fig`` as saved (points × DPI / 72)."""
    from matplotlib.text import Text

    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return min(sizes, default=MIN_FONT) * DPI / 72


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    # bbox "tight": keeps suptitles above the axes and legends outside them in the file; no version stamp, so the
    # file is reproducible; the smallest text's size, so a page can keep it legible
    fig.savefig(path, dpi=DPI, bbox_inches="tight",
                metadata={"Software": None, SMALLEST_TEXT: f"{smallest_text(fig):.1f}"})
    plt.close(fig)
    return path


def _wrapped(label: str, width: int = 10) -> str:
    """A tick label on two lines where it is long ("Selective Copy" → "Selective\\nCopy"), so neighbours do not
    overlap."""
    import textwrap

    return "\n".join(textwrap.wrap(str(label), width)) or str(label)


def _seeds(n) -> str:
    n = sorted({int(x) for x in n if x == x})
    return "" if not n else f"{n[0]} seeds" if len(n) == 1 else f"{n[0]}-{n[-1]} seeds"


def rows_by_task(summary: pd.DataFrame, rows: list[str], path: str | Path, title: str) -> Path:
    """Grouped bars: one group per task, one bar per row, the mean over seeds, with the 95% t interval of the mean
    (clipped to [0, 1]) as its error bar where it is known; the caption under the axes says so, with the number of
    seeds. ``summary``: row, column, mean, low, high, n (seeds)."""
    data = summary[summary["row"].isin(rows)]
    columns = list(dict.fromkeys(data["column"]))
    fig, ax = plt.subplots(figsize=(8, 3.8))
    sns.barplot(data=data, x="column", y="mean", hue="row", hue_order=rows, order=columns, ax=ax)
    width = 0.8 / max(len(rows), 1)
    for i, row in enumerate(rows):
        for j, col in enumerate(columns):
            sel = data[(data["row"] == row) & (data["column"] == col)]
            if len(sel) and sel["low"].notna().iloc[0]:
                m = sel["mean"].iloc[0]
                ax.errorbar(j - 0.4 + width * (i + 0.5), m, yerr=[[m - sel["low"].iloc[0]], [sel["high"].iloc[0] - m]],
                            color="black", capsize=2, lw=1)
    ax.set_ylim(0, 1.05)
    seeds = _seeds(data["n"]) if "n" in data else ""
    ax.set_xticks(range(len(columns)), [_wrapped(c) for c in columns])
    ax.set_xlabel(f"bar: the mean over {seeds or 'the seeds'}; error bar: the 95% t interval of that mean "
                  "(clipped to [0, 1])", fontsize=MIN_FONT)
    ax.set_ylabel(ACCURACY)
    ax.set_title(title)
    ax.legend(fontsize=MIN_FONT + 1, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _save(fig, path)


def heatmap(table: pd.DataFrame, path: str | Path, title: str, colorbar: str, center: float | None = None,
            cmap: str = "viridis", fmt: str = ".2f", hatched: pd.DataFrame | None = None,
            hatch_label: str | None = None, limits: tuple[float, float] | None = (0.0, 1.0),
            crossed: pd.DataFrame | None = None, cross_label: str | None = None,
            arrowed: pd.DataFrame | None = None, arrow_label: str | None = None) -> Path:
    """Rows × columns heat map with the values written in the cells and a labelled colour bar. ``hatched`` (same
    shape, booleans) marks cells drawn hatched and grey, named in the caption line ``hatch_label``; ``crossed`` marks
    cells drawn cross-hatched (another reason, ``cross_label``); ``arrowed`` marks cells with an "↑" in their corner
    (``arrow_label``). ``limits``: the colour scale's range (accuracy:
    [0, 1], so two figures' colours mean the same; None: the data's range)."""
    fig, ax = plt.subplots(figsize=(max(8.5, 1.1 * len(table.columns) + 3), 0.36 * len(table) + 1.8))
    vmin, vmax = limits if limits else (None, None)
    sns.heatmap(table.astype(float), annot=True, fmt=fmt, cmap=cmap, center=center, ax=ax, cbar=True, vmin=vmin,
                vmax=vmax, annot_kws={"fontsize": 10}, cbar_kws={"label": colorbar})
    labels = []
    for mask, hatch, label, face in ((hatched, "///", hatch_label, "lightgrey"), (crossed, "xx", cross_label, "none")):
        if mask is None:
            continue
        mask = mask.reindex(index=table.index, columns=table.columns).fillna(False)
        for i, r in enumerate(table.index):
            for j, c in enumerate(table.columns):
                if bool(mask.loc[r, c]):
                    ax.add_patch(Rectangle((j, i), 1, 1, facecolor=face, edgecolor="grey", hatch=hatch, lw=0,
                                           alpha=0.85 if face != "none" else 0.9))
        if label and bool(mask.to_numpy().any()):
            labels.append(("/// " if hatch == "///" else "xx ") + label)
    if arrowed is not None:
        mask = arrowed.reindex(index=table.index, columns=table.columns).fillna(False)
        for i, r in enumerate(table.index):
            for j, c in enumerate(table.columns):
                if bool(mask.loc[r, c]):
                    ax.text(j + 0.95, i + 0.1, "↑", ha="right", va="top", fontsize=8, color="white", weight="bold")
        if arrow_label and bool(mask.to_numpy().any()):
            labels.append("↑ " + arrow_label)
    if labels:
        ax.set_xlabel("\n".join(labels), fontsize=9)
    ax.set_title(title)
    ax.tick_params(axis="y", labelsize=9)
    ax.tick_params(axis="x", labelsize=9, rotation=20)
    return _save(fig, path)


def learning_curves(curves: pd.DataFrame, path: str | Path, title: str, panels: list[tuple[str, str]]) -> Path:
    """Macro test accuracy per epoch, one panel per (task, setting) in ``panels``, one colour per row: a thin line
    per seed and a thick line for the mean over seeds. ``curves``: row, column, setting, seed, epoch, acc."""
    rows = list(dict.fromkeys(curves["row"]))
    palette = dict(zip(rows, sns.color_palette("tab10", len(rows))))
    ncols = min(3, len(panels))  # 3 across: at most ~1,100 px, shown at 8 px text or more in a 957 px column
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.1 * ncols, 2.5 * nrows), squeeze=False)
    for ax, (column, setting) in zip(axes.flat, panels):
        sel = curves[(curves["column"] == column) & (curves["setting"] == setting)]
        for row in rows:
            mine = sel[sel["row"] == row]
            for _, g in mine.groupby("seed"):
                ax.plot(g["epoch"], g["acc"], color=palette[row], lw=0.6, alpha=0.35)
            mean = mine.groupby("epoch")["acc"].mean()
            if len(mean):
                ax.plot(mean.index, mean.values, color=palette[row], lw=1.8, marker="o", ms=2.5, label=row)
        ax.set_title(f"{column} · {setting}", fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel(ACCURACY, fontsize=8)
        ax.set_ylim(-0.02, 1.02)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=MIN_FONT)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    handles = [plt.Line2D([], [], color=palette[r], lw=1.8, label=r) for r in rows]
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 0.95), fontsize=8,
               title="thick: mean over seeds\nthin: one seed", title_fontsize=MIN_FONT)
    fig.suptitle(title, y=1.02)
    return _save(fig, path)


def scatter_ranks(merged: pd.DataFrame, path: str | Path, title: str, rho: dict | None = None) -> Path:
    """Rank here (y) against rank in the seed document (x) per task, one panel per task, 1 = best; ``merged`` has
    columns row, column, reported rank, measured rank. On ranks the line y = x means the same order on both sides.
    ``rho`` (task → (ρ, low, high, rows)) goes into the panel titles."""
    grid = sns.relplot(data=merged, x="rank in the seed document", y="rank here", col="column", col_wrap=3,
                       height=2.5, aspect=1.35, facet_kws={"sharex": False, "sharey": False})
    for name, ax in grid.axes_dict.items():
        n = int(merged[merged["column"] == name]["rank here"].count())
        ax.plot([1, max(n, 1)], [1, max(n, 1)], color="grey", lw=0.8, ls="--")
        ax.invert_xaxis()
        ax.invert_yaxis()
        r = (rho or {}).get(name)
        if r is None:
            ax.set_title(str(name), fontsize=9)
        else:
            value, low, high, rows = r
            text = "n/a" if value != value else f"{value:.2f} [{low:.2f}, {high:.2f}]"
            ax.set_title(f"{name}: ρ = {text}, {rows} rows", fontsize=8)
    grid.set_axis_labels("rank in the seed document (MAD)", "rank measured here")
    grid.figure.suptitle(title, y=1.03)
    return _save(grid.figure, path)


def intervals(frame: pd.DataFrame, path: str | Path, title: str, xlabel: str, note: str | None = None) -> Path:
    """One horizontal interval per row (``frame``: row, diff, low, high, marked, and optionally per_seed: the
    differences seed by seed, drawn as small grey ticks), in the order given, around a line at 0; a row ``marked``
    True is drawn hollow (its meaning in ``note``). ``xlabel`` says what the intervals are; the caption under it
    names the colours and the ticks."""
    fig, ax = plt.subplots(figsize=(6.2, 0.26 * len(frame) + 1.4))
    y = list(range(len(frame)))[::-1]
    seeds = "per_seed" in frame and frame["per_seed"].map(len).gt(0).any()
    for yy, (_, r) in zip(y, frame.iterrows()):
        clear = r["low"] > 0 or r["high"] < 0
        color = "tab:blue" if not clear else ("tab:green" if r["low"] > 0 else "tab:red")
        ax.plot([r["low"], r["high"]], [yy, yy], color=color, lw=1.6)
        if seeds:
            ax.plot(list(r["per_seed"]), [yy] * len(r["per_seed"]), ls="none", marker="|", ms=7, color="dimgrey",
                    alpha=0.8)
        ax.plot([r["diff"]], [yy], marker="o", ms=4.5, color=color,
                markerfacecolor="white" if r.get("marked", False) else color)
    ax.axvline(0, color="grey", lw=0.8, ls="--")
    ax.set_yticks(y)
    ax.set_yticklabels(list(frame["row"]), fontsize=MIN_FONT)
    caption = ["green / red: the interval lies above / below 0; blue: it holds 0"]
    if seeds:
        caption.append("grey ticks: the difference seed by seed")
    ax.set_xlabel("\n".join([_wrapped(xlabel, 75), *caption, *([_wrapped(note, 75)] if note else [])]),
                  fontsize=MIN_FONT)
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def scatter_reproduced(merged: pd.DataFrame, path: str | Path, title: str, rho: dict | None = None) -> Path:
    """Reproduced (y) against reported (x) per task, one panel per task; ``merged`` has columns row, column,
    reported, reproduced. ``rho`` (task → Spearman's ρ) goes into the panel titles."""
    grid = sns.relplot(data=merged, x="reported", y="reproduced", col="column", col_wrap=3, height=2.3,
                       aspect=1.1, facet_kws={"sharex": False, "sharey": False})
    for ax in grid.axes.flat:
        lo = min(ax.get_xlim()[0], ax.get_ylim()[0])
        hi = max(ax.get_xlim()[1], ax.get_ylim()[1])
        ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--")
    grid.set_titles("{col_name}")
    grid.set_axis_labels("seed document (MAD)", "measured here")
    if rho:
        for name, ax in grid.axes_dict.items():
            r = rho.get(name)
            ax.set_title(f"{name} (ρ = {'n/a' if r is None or r != r else f'{r:.2f}'})", fontsize=9)
    grid.figure.suptitle(title, y=1.02)
    return _save(grid.figure, path)


def bars(values: pd.Series, path: str | Path, title: str, xlabel: str) -> Path:
    """Horizontal bars of one value per row (e.g. tokens/s)."""
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(values) + 1.2))
    sns.barplot(x=values.to_numpy(), y=list(values.index), ax=ax, color="steelblue")
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.tick_params(axis="y", labelsize=8)
    return _save(fig, path)
