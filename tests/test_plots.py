"""The study's figures are legible where the site shows them (deltalab.plots): no text under plots.MIN_FONT points,
the size of the smallest text recorded in each PNG (the site keeps it at 8 px or more), run_variant's task labels do
not overlap, and every error bar is named under the axes."""
from __future__ import annotations

import pandas as pd

from deltalab import plots
from deltalab.publish import site

FLOOR = round(plots.MIN_FONT * plots.DPI / 72, 1)  # px, as the PNG records it (one decimal)
TASKS = ["Compress", "Context Recall", "Fuzzy Recall", "Memorize", "Noisy Recall", "Selective Copy", "Average"]


def _summary() -> pd.DataFrame:
    return pd.DataFrame([{"row": r, "column": c, "mean": 0.5, "low": 0.4, "high": 0.6, "n": 4}
                         for r in ("l2_norm_error", "delta_net", "gated_delta_net") for c in TASKS])


def test_the_bar_chart_names_its_error_bars_and_its_labels_do_not_overlap(tmp_path, monkeypatch):
    drawn = {}
    save = plots._save

    def measured(fig, path):  # the tick labels' boxes as laid out in the saved figure
        fig.tight_layout()
        ax = fig.axes[0]
        drawn["xlabel"] = ax.get_xlabel()
        drawn["boxes"] = [t.get_window_extent(fig.canvas.get_renderer()) for t in ax.get_xticklabels()]
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", measured)
    path = plots.rows_by_task(_summary(), ["l2_norm_error", "delta_net", "gated_delta_net"], tmp_path / "b.png", "t")
    assert "error bar: the 95% t interval of that mean" in drawn["xlabel"] and "4 seeds" in drawn["xlabel"]
    boxes = drawn["boxes"]
    assert len(boxes) == len(TASKS) and all(a.x1 <= b.x0 for a, b in zip(boxes, boxes[1:])), "task labels overlap"
    width, smallest = site.png_facts(path.read_bytes())
    assert width > 0 and smallest >= FLOOR


def test_every_figure_records_its_smallest_text_and_none_is_under_the_floor(tmp_path):
    table = pd.DataFrame([[0.5, 0.25], [0.75, 1.0]], index=["a", "b"], columns=["Compress", "Memorize"])
    frame = pd.DataFrame({"row": ["a", "b"], "diff": [0.1, -0.1], "low": [0.0, -0.2], "high": [0.2, 0.0],
                          "marked": [False, True], "per_seed": [(0.05, 0.15), (-0.2, 0.0)]})
    curves = pd.DataFrame([{"row": r, "column": "Memorize", "setting": "v", "seed": s, "epoch": e, "acc": 0.1 * e}
                           for r in ("a", "b") for s in (0, 1) for e in (1, 2, 3)])
    paths = [plots.heatmap(table, tmp_path / "h.png", "t", "accuracy"),
             plots.intervals(frame, tmp_path / "i.png", "t", "difference (95% t interval)", note="hollow: x"),
             plots.learning_curves(curves, tmp_path / "c.png", "t", [("Memorize", "v")]),
             plots.bars(pd.Series([1.0, 2.0], index=["a", "b"], name="tokens/s"), tmp_path / "b.png", "t", "x")]
    for path in paths:
        _, smallest = site.png_facts(path.read_bytes())
        assert smallest >= FLOOR, (path.name, smallest)
    assert site.png_facts((tmp_path / "h.png").read_bytes())[1] != site.UNRECORDED_TEXT_PX


def test_a_figure_without_the_record_is_taken_at_the_old_smallest_size():
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 640, 10, 8, 2, 0, 0, 0))
           + chunk(b"IEND", b""))
    assert site.png_facts(png) == (640, site.UNRECORDED_TEXT_PX)
