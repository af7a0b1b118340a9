"""The study's answer, as the site's landing page opens with it: a few sentences and a compact agreement table,
generated from the concluding round's executed tables (its ranking, its proposals' outcomes, its agreement with the
full protocol), so every number in them is a number of those tables.

The tables are read back from the notebook's HTML output (``html_table``): the site reads executed notebooks, never
the results store, so the landing page cannot disagree with the round's page. The ranking's intervals are the
notebook's (the paired difference of each row's Average to DeltaNet's over its seeds, 95% t interval, unadjusted);
the proposals' outcomes are its Holm-adjusted ones.
"""
from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass
from html.parser import HTMLParser

DELTA = "Δ Average vs delta_net"
BASELINE = "delta_net"
REFERENCE = "gated_delta_net"
MISSING = "—"  # a cell with nothing to show (no target, no interval): the legend under the table says so


@dataclass
class Table:
    """An HTML table read back: ``columns`` (the header's names, index columns included: pandas writes the index
    names in a second header row) and ``rows`` (text cells, a row-spanning cell repeated on every row it spans)."""
    columns: list[str]
    rows: list[list[str]]

    def records(self) -> list[dict[str, str]]:
        return [dict(zip(self.columns, r)) for r in self.rows]


class _TableReader(HTMLParser):
    """The first table's header rows and body rows; a body cell spanning rows (pandas spans the outer level of a
    MultiIndex) is repeated on each row it spans."""

    def __init__(self):
        super().__init__()
        self.head: list[list[str]] = []
        self.body: list[list[str]] = []
        self.pending: dict[int, list] = {}  # column → [text, rows still to fill]
        self.row: list[str] | None = None
        self.cell: list[str] | None = None
        self.span = 1
        self.in_body = False
        self.done = False

    def _fill(self):
        while self.in_body and len(self.row) in self.pending:
            column = len(self.row)
            text, left = self.pending[column]
            self.row.append(text)
            if left <= 1:
                del self.pending[column]
            else:
                self.pending[column][1] = left - 1

    def handle_starttag(self, tag, attrs):
        if self.done:
            return
        if tag in ("thead", "tbody"):
            self.in_body = tag == "tbody"
        elif tag == "tr":
            self.row = []
        elif tag in ("th", "td") and self.row is not None:
            self._fill()
            self.cell = []
            self.span = int(dict(attrs).get("rowspan") or 1)

    def handle_endtag(self, tag):
        if self.done:
            return
        if tag in ("th", "td") and self.cell is not None:
            text = re.sub(r"\s+", " ", "".join(self.cell)).strip()
            if self.in_body and self.span > 1:
                self.pending[len(self.row)] = [text, self.span - 1]
            self.row.append(text)
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self._fill()
            (self.body if self.in_body else self.head).append(self.row)
            self.row = None
        elif tag == "table":
            self.done = True

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def html_table(markup: str) -> Table:
    """The first table of ``markup`` (a pandas DataFrame's HTML): header names and text cells per row."""
    reader = _TableReader()
    reader.feed(markup)
    head = reader.head or [[]]
    columns = list(head[0])
    for extra in head[1:]:  # pandas puts the index names in a second header row, under empty cells
        columns = [c or (extra[i] if i < len(extra) else "") for i, c in enumerate(columns)]
    return Table(columns, [r + [""] * (len(columns) - len(r)) for r in reader.body])


def number(text: str) -> float:
    """A table cell as a number (NaN when it holds none: empty, "NaN", "n/a")."""
    try:
        return float(text.replace("−", "-"))
    except (ValueError, AttributeError):
        return math.nan


@dataclass(frozen=True)
class Ranked:
    """One row of the concluding round's ranking, as its table shows it."""
    row: str
    rank: int | None
    average: float
    delta: str  # "+0.152 ▲ [+0.120, +0.185]", or "" for DeltaNet
    seeds: str
    not_learned: str

    @property
    def difference(self) -> str:
        return self.delta.split(" [")[0].replace("▲", "").replace("▼", "").strip()

    @property
    def interval(self) -> str:
        found = re.search(r"\[[^\]]*\]", self.delta)
        return found.group(0) if found else ""

    @property
    def direction(self) -> str:
        return "above" if "▲" in self.delta else "below" if "▼" in self.delta else "unclear"


def ranking(markup: str) -> list[Ranked]:
    """The ranking table (``tables.ranking`` as the notebook shows it) read back, in its order."""
    table = html_table(markup)
    index = table.columns[0] if table.columns else ""
    unlearned = next((c for c in table.columns if c.startswith(("not clearly learned", "not learned"))), None)
    found = []
    for r in table.records():
        rank = number(r.get("rank", ""))
        found.append(Ranked(r[index], None if math.isnan(rank) else int(rank), number(r.get("Average", "")),
                            r.get(DELTA, ""), r.get("n seeds", ""), r.get(unlearned, "") if unlearned else ""))
    return found


def _names(rows: list[str]) -> str:
    rows = [f"`{r}`" for r in rows]
    return rows[0] if len(rows) == 1 else ", ".join(rows[:-1]) + " and " + rows[-1]


def answer(ranking_markup: str, proposals_markup: str | None, scale: str, top: int = 3) -> list[str]:
    """The study's answer in a few sentences (Markdown paragraphs), from the concluding round's ranking table and
    its table of the proposals' outcomes: which rows come out on top on the Average, by how much over DeltaNet and
    with what certainty (the paired interval over seeds, as the table has it), how many rows are clearly above or
    below DeltaNet, and how the proposals fared after the study's Holm adjustment."""
    rows = ranking(ranking_markup)
    ranked = [r for r in rows if r.rank is not None]
    base = next((r for r in rows if r.row == BASELINE), None)
    if not ranked or base is None:
        return [f"At scale `{scale}` the concluding round ranks no row against DeltaNet: there is no answer yet."]
    seeds = sorted({r.seeds for r in ranked if r.seeds})
    seeds_text = f"{seeds[0]} seeds" if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]} seeds per row"
    leaders = [r for r in ranked if r.row != BASELINE][:top]
    if not leaders:
        return [f"At scale `{scale}` the concluding round ranks no row but DeltaNet: there is no answer yet."]
    first, rest = leaders[0], leaders[1:]
    certainty = {"above": "clearly above", "below": "clearly below", "unclear": "not clearly different"}
    said = [
        f"**The answer.** At scale `{scale}`, **`{first.row}`** comes out on top of {len(ranked)} ranked rows: its "
        f"Average over the tasks is {first.average:.3f} against DeltaNet's {base.average:.3f}, {first.difference} "
        f"(95% interval {first.interval}, paired over {seeds_text}: {certainty[first.direction]})"
        + (f", though that Average includes a task it has not clearly learned within the budget ({first.not_learned})"
           if first.not_learned else "") + "."
        + (" Next: " + " and ".join(f"`{r.row}` {r.difference} {r.interval}" for r in rest)
           + "; these intervals compare each row with DeltaNet, not the leaders with one another." if rest else "")]
    above = [r.row for r in ranked if r.direction == "above"]
    below = [r.row for r in ranked if r.direction == "below"]
    unclear = len(ranked) - len(above) - len(below) - 1  # DeltaNet itself is neither
    place = {r.row: r.rank for r in ranked}
    said.append(
        f"{len(above)} {'row is' if len(above) == 1 else 'rows are'} clearly above DeltaNet on the Average, "
        f"{len(below)} clearly below and {unclear} not clearly different (each row on its own, unadjusted); "
        + (f"DeltaNet ranks #{place[BASELINE]}" if BASELINE in place else "DeltaNet is not ranked")
        + (f", Gated DeltaNet #{place[REFERENCE]}" if REFERENCE in place else "") + "."
        + (" " + proposals_answer(proposals_markup) if proposals_markup else ""))
    return said


def proposals_answer(markup: str) -> str:
    """How the rounds' proposals fared on their own success criteria, Holm-adjusted over the study (the proposals
    table's last outcome column)."""
    table = html_table(markup)
    column = next((c for c in reversed(table.columns) if c.startswith("outcome")), None)
    records = [r for r in table.records() if r.get("proposal")]
    if column is None or not records:
        return "The proposals' outcomes are not in the concluding round's table."
    outcomes: dict[str, list[str]] = {}
    for r in records:
        outcomes.setdefault(r[column], []).append(r["proposal"])
    adjusted = "after Holm over the study" if "study" in column else ("after Holm within the round" if "round" in
                                                                       column else "unadjusted")
    parts = [f"{outcome}: {_names(names) if len(names) <= 2 else f'{len(names)} of {len(records)}'}"
             for outcome, names in outcomes.items()]
    return (f"The {len(records)} rounds' proposals on their own success criteria ({adjusted}): "
            + "; ".join(parts) + ".")


@dataclass(frozen=True)
class Agreement:
    task: str
    measure: str
    rows: str  # "held-out" / "all"
    n: str
    value: float
    low: float
    high: float
    target: float

    def _figure(self, x: float) -> str:
        """A ρ to two decimals, a share of rows classified alike as a percentage."""
        return f"{x:.2f}" if self.measure == "spearman" else f"{x:.0%}"

    @property
    def shown(self) -> str:
        if math.isnan(self.value):
            return MISSING
        return f"ρ = {self._figure(self.value)}" if self.measure == "spearman" else f"{self._figure(self.value)} alike"

    @property
    def interval(self) -> str:
        if math.isnan(self.low) or math.isnan(self.high):
            return MISSING
        return f"[{self._figure(self.low)}, {self._figure(self.high)}]"

    @property
    def goal(self) -> str:
        return MISSING if math.isnan(self.target) else self._figure(self.target)

    @property
    def met(self) -> str:
        """"met" / "not met" (``agreement.target_reading``: the point value decides), with "*" when the interval
        holds the target; "—" without a target."""
        if math.isnan(self.target) or math.isnan(self.value):
            return MISSING
        from ..analysis.agreement import target_reading

        words = target_reading({"value": self.value, "target": self.target, "low": self.low, "high": self.high})
        return words.split(";")[0] + ("*" if "interval holds" in words else "")


def agreement(markup: str) -> list[Agreement]:
    """Per task, the held-out agreement of the agreement table (all rows' where the scale holds none out)."""
    table = html_table(markup)
    found: dict[str, Agreement] = {}
    for r in table.records():
        task, rows = r.get("task", ""), r.get("rows", "")
        if rows not in ("held-out", "all") or (rows == "all" and task in found):
            continue
        found[task] = Agreement(task, r.get("measure", ""), rows, r.get("n", ""), number(r.get("value", "")),
                                number(r.get("low", "")), number(r.get("high", "")), number(r.get("target", "")))
    return list(found.values())


def agreement_table(markup: str, scale: str) -> str:
    """The compact per-task agreement table (HTML) the landing page shows beside the ranking figure, with its
    legend; no cell is NaN (a cell with nothing to show reads "—")."""
    found = agreement(markup)
    if not found:
        return ""
    head = "<thead><tr><th>task</th><th>agreement [95%]</th><th>target: met?</th></tr></thead>"
    body = "".join(
        f"<tr><th>{html.escape(a.task)}</th><td>{html.escape(a.shown)} {html.escape(a.interval)}</td>"
        f"<td>{html.escape(a.goal)}{': ' + html.escape(a.met) if a.met != MISSING else ''}</td></tr>" for a in found)
    rows = sorted({a.rows for a in found})
    ns = sorted({a.n for a in found if a.n})
    over = (f"the {'/'.join(ns)} rows held out from the scale's calibration" if rows == ["held-out"]
            else f"{'/'.join(ns)} rows")
    legend = (f"Per task, how far the {scale} screen predicts the full protocol's seed table, over {over}: "
              "Spearman's ρ of the row means where the task ranks rows, the share of rows classified alike (learned "
              "or not) where it saturates; 95% bootstrap interval; the point value decides whether the target is "
              f"met; *: the interval holds the target (the rows cannot tell). {MISSING}: nothing to show (no target, "
              "or no interval).")
    return (f'<table class="site-agreement">{head}<tbody>{body}</tbody></table>\n'
            f'<p class="site-legend">{html.escape(legend)}</p>')
