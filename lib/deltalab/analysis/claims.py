"""Judge a seed document's claims: on the study's paired per-seed scores, and on the seed table's own numbers.

Verdict words (and only these):

    holds                          a clear difference the claimed way (for "no worse": the whole interval of the
                                   difference above −margin; for a threshold: the row's whole interval past it)
    contradicted                   a clear difference the other way, or a claim false by construction (below)
    not established with n seeds   no clear difference (or fewer than ``stats.MIN_SEEDS`` seeds)
    not testable at this scale     the claim cannot be put to these data: the change does not act on the cells it
                                   is about (a row is DeltaNet's runs there, or, for a comparison of two rows, the
                                   two are each other's runs bit for bit); a row it compares has not clearly learned the
                                   setting within the budget (``inert.learning``); the scale does not measure the
                                   setting it names; or it states a MAD-scale number that its round file does not
                                   translate

The first three may be qualified (``qualified``): ", judged on k of n tasks (…)" where a task "all" claim leaves
tasks out as not testable (named, with why); " at this budget (X still learning T)" naming the rows not finished on
the cells that decide it; and, after a decisive word, ": a speed difference, not a capacity one" when every cell
deciding it has such a row, or ": in part a speed difference" when cells the rows have finished carry part of it
(on an Average: the difference over only the tasks both rows have finished is clear the same way; that difference
picks the word and is not a test of the family). Parts left out never add the speed qualifier.

How each kind is judged (``docs/claims.md`` has the round-file format):

    beats / lags / no_worse   the paired difference variant − other (``stats.paired``); no_worse against the
                              claim's ``margin``
    at_least / above / below  the row's interval (``stats.level``) against the threshold
    best                      holds if the row is clearly ahead of every other row, contradicted if some row is
                              clearly ahead of it
    saturated                 per row a threshold check; holds if at least ``fraction`` of the rows hold
    task "all"                every task measured: all hold → holds, one contradicted → contradicted

A threshold kind is judged at the study's scale through its ``translation`` (``params.Claim``). Cells where a
change does not act (``inert``) are left out: a claim about such a cell is not testable; "best" and "saturated"
range only over rows whose change acts there, and never over the null controls. **False by construction**: a
claim that a row is ahead of another (``beats``; ``lags`` read the other way) on a task where the row's change
cannot act, here or in MAD's runs (one chunk at every MAD setting), credits the change with what DeltaNet does by
itself: it is *contradicted*, and the evidence shows the difference the seed tables report for that row against
DeltaNet beside the tables' own noise.

**Multiplicity.** Each verdict carries one p-value (``Verdict.p``): the paired t test behind its interval (p < 0.05
exactly when the interval decides), for a claim that several comparisons decide ("best", task "all", a
combination against its controls) the largest of their p when all must go its way and a Bonferroni bound over the
parts tested when one suffices (``_combined_p``). ``adjust`` applies Holm's step-down adjustment
(``stats.holm``) over a family — a round's claims and its proposal's success criteria — and gives the verdict that
survives it (``verdict adjusted``); a verdict that is not a test (not testable, false by construction) is left out of
the family's count and keeps its word.

The seed tables are judged the same way with ``TableEvidence``: their point values, a difference being clear only
beyond the tables' own run-to-run noise (``stats.table_noise``, measured on the rows that are DeltaNet on Memorize);
a threshold on the point value.
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

import pandas as pd

from ..params import THRESHOLD_KINDS, Claim
from ..tasks import COLUMNS
from . import inert as inert_cells
from . import stats
from .names import ALL_SETTINGS, AVERAGE, BASELINE, fmt, join_words, signed
from .study import per_seed
from .tables import CEILING

HOLDS = "holds"
CONTRADICTED = "contradicted"
NOT_TESTABLE = "not testable at this scale"
DECISIVE = (HOLDS, CONTRADICTED)
ADJUSTMENT = "Holm"  # the family-wise adjustment of every round's verdicts (stats.holm)
BY_CONSTRUCTION = "False by construction"  # opens the evidence of a claim contradicted by construction


def not_established(n: int) -> str:
    return f"not established with {n} seeds"


SPEED = "a speed difference, not a capacity one"  # closes a decisive verdict that rests only on cells still learned
PART_SPEED = "in part a speed difference"  # ... one that cells both rows have finished carry in part
UNLEARNED_VERB = "not clearly learned"  # the rule's words: the curve never *clearly* exceeds the input-blind level
_BASE = r"holds|contradicted|not established with \d+ seeds"
_SCOPE = r", judged (?:on \d+ of \d+ tasks|against \d+ of \d+ rows) \([^()]+\)"
VERDICT = re.compile(rf"(?:{_BASE})(?:{_SCOPE})?(?: at this budget \([^()]+\)(?:: (?:{SPEED}|{PART_SPEED}))?)?"
                     rf"|not testable at this scale|not testable: [^()]+ ha(?:s|ve) {UNLEARNED_VERB} [^()]+")
SEED_TABLE_SEEDS = 4  # the seed documents' tables are said to average four seeds


def is_verdict(word: str) -> bool:
    return VERDICT.fullmatch(word) is not None


def base(word: str) -> str:
    """The verdict word without what it says about its scope and the budget: "holds, judged on 2 of 6 tasks (…) at
    this budget (…): …" → "holds"; "not testable: X has not clearly learned T" → "not testable at this scale"."""
    if word.startswith("not testable"):
        return NOT_TESTABLE
    m = re.match(_BASE, word)
    return m.group(0) if m else word


_UNLEARNED = re.compile(rf"not testable: (.+) ha(?:s|ve) {UNLEARNED_VERB} (.+)")


def has_not_learned(rows: str) -> str:
    """"X has not clearly learned", "X and Y have not clearly learned" (``rows``: already joined)."""
    return f"{rows} {'have' if ' and ' in rows else 'has'} {UNLEARNED_VERB}"


def unlearned_word(row: str, where: str) -> str:
    """The word of a verdict on a cell ``row`` has not clearly learned (``inert.learning``): not a test."""
    return f"not testable: {has_not_learned(row)} {where}"


@dataclass(frozen=True)
class Budget:
    """What a verdict word says beside its base word (``qualified``). ``scope``: for a claim over several tasks (or
    rows) some of which were left out, what it was judged on and why the others were left out ("judged on 2 of 6
    tasks (Compress and Memorize; X has not clearly learned the others)"); ``notes``: (row, state, where) of the rows
    it compares that have not finished the cells it was judged on (state ``inert.STILL_LEARNING`` or, on an
    Average, ``inert.NOT_LEARNED``); ``speed``: ``SPEED`` when every cell deciding it has such a row, ``PART_SPEED``
    when cells the rows have finished carry part of it, "" when none has (said only after a decisive word)."""

    scope: str = ""
    notes: tuple = ()
    speed: str = ""


def qualified(word: str, budget: Budget | None) -> str:
    """``word`` with its scope and the rows it compares that are not finished (``budget``), grouped: "holds at this
    budget (a, b still learning Selective Copy): a speed difference, not a capacity one". A word that is not a test:
    unchanged."""
    if budget is None or base(word) == NOT_TESTABLE:
        return word
    text = f"{word}, {budget.scope}" if budget.scope else word
    if not budget.notes:
        return text
    cells: dict[tuple[str, str], list[str]] = {}  # (row, state) → where
    for row, state, where in budget.notes:
        if where not in cells.setdefault((row, state), []):
            cells[(row, state)].append(where)
    groups: dict[tuple[str, tuple[str, ...]], list[str]] = {}  # (state, wheres) → rows
    for (row, state), wheres in cells.items():
        groups.setdefault((state, tuple(wheres)), []).append(row)

    def rows(who: list[str]) -> str:
        return join_words(who) if len(who) <= 3 else f"{who[0]} and {len(who) - 1} other rows"

    def said(state: str, who: list[str]) -> str:
        return f"{rows(who)} still learning" if state == inert_cells.STILL_LEARNING else has_not_learned(rows(who))

    text += " at this budget (" + "; ".join(f"{said(state, who)} {join_words(wheres)}"
                                             for (state, wheres), who in groups.items()) + ")"
    return f"{text}: {budget.speed}" if budget.speed and word in DECISIVE else text


def combined_speed(kinds) -> str:
    """One speed qualifier from those of the parts that decide a verdict: ``SPEED`` if every part's is, "" if none
    has one, else ``PART_SPEED``."""
    kinds = list(kinds)
    if not any(kinds):
        return ""
    return SPEED if all(k == SPEED for k in kinds) else PART_SPEED


def seeds_of(status: str) -> int | None:
    """The n of "not established with n seeds" (None for another word; the budget's qualifier is ignored)."""
    m = re.fullmatch(r"not established with (\d+) seeds", base(status))
    return int(m.group(1)) if m else None


# --- evidence: where the numbers come from ----------------------------------------------------------------

class SeedEvidence:
    """The study's scores: per-seed, paired. ``scores``: study.Study.scores; ``inert``: inert.cells; ``twins``:
    inert.twins (None: no pair of rows is known to share its runs); ``learning``: inert.learning (None: every row is
    taken to have learned every cell); ``settings``: column → the setting ids the scale measures (None: any setting
    a claim names is taken to be measured); ``seed_tables``: document → TableEvidence, where a claim false by
    construction finds the row's reported difference to DeltaNet."""

    table = False

    def __init__(self, scores: pd.DataFrame, inert: pd.DataFrame, columns: list[str], twins: pd.DataFrame | None = None,
                 learning: pd.DataFrame | None = None, settings: dict[str, list[str]] | None = None,
                 seed_tables: dict[str, TableEvidence] | None = None):
        self.scores, self.inert, self.columns = scores, inert, columns
        self.twins = pd.DataFrame(columns=inert_cells.TWIN_COLUMNS) if twins is None else twins
        self.learning = learning
        self.settings = settings
        self.seed_tables = seed_tables or {}
        self.controls = inert_cells.excluded(inert, columns)

    def values(self, v: str, column: str, setting: str) -> dict[int, float]:
        return per_seed(self.scores, v, column, setting)

    def measured(self, v: str, column: str, setting: str) -> bool:
        return bool(self.values(v, column, setting))

    def mean(self, v: str, column: str, setting: str) -> float:
        vals = self.values(v, column, setting)
        return sum(vals.values()) / len(vals) if vals else math.nan

    def difference(self, a: str, b: str, column: str, setting: str) -> stats.Difference:
        return stats.paired(self.values(a, column, setting), self.values(b, column, setting))

    def level(self, v: str, column: str, setting: str) -> stats.Level:
        return stats.level(self.values(v, column, setting).values())

    def not_acting(self, v: str, column: str, setting: str) -> str | None:
        """Why ``v``'s change does not act on this cell, or None."""
        if v == BASELINE:
            return None
        if column == AVERAGE:
            return "a null control: its change acts on no task here" if v in inert_cells.null_controls(
                self.inert, self.columns) else None
        return inert_cells.reason(self.inert, v, column, setting)

    def inert_in_mad(self, v: str, column: str) -> bool:
        """Whether ``v``'s change cannot act on ``column`` in MAD's runs either: inert here for lack of a second
        chunk, on a task that is one chunk at every MAD setting."""
        return (column in COLUMNS and v != BASELINE and inert_cells.one_chunk_at_every_mad_setting(column)
                and inert_cells.reason(self.inert, v, column) == inert_cells.ONE_CHUNK)

    def same_runs(self, a: str, b: str, column: str, setting: str) -> list[str]:
        """The task columns of this cell (the Average: every task measured) on which ``a``'s runs are ``b``'s bit
        for bit."""
        cols = self.columns if column == AVERAGE else [column]
        return [c for c in cols if inert_cells.same_runs(self.twins, a, b, c, setting)]

    def unmeasured_setting(self, column: str, setting: str) -> str | None:
        """Why the scale has no such cell (a setting it does not measure), or None."""
        if self.settings is None or setting == ALL_SETTINGS or column not in self.settings:
            return None
        if setting in self.settings[column]:
            return None
        return (f"this scale does not measure {column} at setting {setting} (it measures "
                f"{join_words(self.settings[column])}), so there is nothing to judge")

    def not_learned(self, v: str, column: str, setting: str) -> str | None:
        """Why ``v`` has not clearly learned this cell within the budget (``inert.learning``), or None."""
        return None if self.learning is None else inert_cells.not_learned(self.learning, v, column, setting)

    def unlearned_columns(self, v: str) -> list[str]:
        """The task columns ``v`` has not clearly learned within the budget."""
        return [c for c in self.columns if self.not_learned(v, c, ALL_SETTINGS)]

    def last_gain(self, v: str, column: str, setting: str) -> float | None:
        """``v``'s mean accuracy gain in the last epoch of the cell when it is still climbing, else None."""
        return None if self.learning is None else inert_cells.still_climbing(self.learning, v, column, setting)

    def learning_state(self, v: str, column: str, setting: str) -> str | None:
        """``v``'s state on the cell (``inert.learning``), or None where no curve is known."""
        return inert_cells.state(self.learning, v, column, setting)

    def unfinished(self, v: str, column: str, setting: str) -> list[tuple[str, str, str]]:
        """(row, state, where) for the cells of this one (the Average: every task measured) that ``v`` has not
        finished (``inert.learning``: still learning, or, on the Average, not clearly learned)."""
        if self.learning is None:
            return []
        cells = [(c, ALL_SETTINGS) for c in self.columns] if column == AVERAGE else [(column, setting)]
        out = []
        for c, s in cells:
            state = inert_cells.state(self.learning, v, c, s)
            if state in (inert_cells.STILL_LEARNING, inert_cells.NOT_LEARNED):
                out.append((v, state, _cell(c, s)))
        return out

    def finished_tasks(self, a: str, b: str) -> list[str]:
        """The task columns both rows have finished (``inert.learning``)."""
        return [c for c in self.columns
                if not (self.unfinished(a, c, ALL_SETTINGS) or self.unfinished(b, c, ALL_SETTINGS))]

    def average_over(self, v: str, tasks: list[str]) -> dict[int, float]:
        """``v``'s per-seed mean over ``tasks`` (the Average's way: per seed over the tasks, seeds that have all)."""
        per = [self.values(v, c, ALL_SETTINGS) for c in tasks]
        seeds = set.intersection(*(set(x) for x in per)) if per else set()
        return {s: sum(x[s] for x in per) / len(per) for s in sorted(seeds)}

    def finished_difference(self, a: str, b: str) -> tuple[list[str], stats.Difference]:
        """The paired difference a − b of the Average taken over only the tasks both rows have finished (the part of
        an Average's difference that is not one of learning speed), with those tasks."""
        tasks = self.finished_tasks(a, b)
        return tasks, stats.paired(self.average_over(a, tasks), self.average_over(b, tasks))

    def seeds(self, d: stats.Difference | stats.Level) -> int:
        return d.n

    def pair_text(self, a: str, b: str, column: str, setting: str, d: stats.Difference) -> str:
        """"a 0.264 vs b 0.150 (+0.115)", the means taken over the seeds both rows have (said when one has more)."""
        va, vb = self.values(a, column, setting), self.values(b, column, setting)
        common = sorted(set(va) & set(vb))
        ma, mb = (sum(v[s] for s in common) / len(common) if common else math.nan for v in (va, vb))
        text = f"{a} {fmt(ma)} vs {b} {fmt(mb)} ({signed(d.diff)})"
        if len(common) < max(len(va), len(vb)):
            text += f" on the {len(common)} seeds both have"
        return text

    def describe(self, d: stats.Difference) -> str:
        """"n=4, 95% interval [+0.045, +0.307], 4 of 4 seeds above 0 (per seed: …)"."""
        per = ", ".join(signed(x) for x in d.per_seed)
        if d.n < 2:
            return f"n={d.n} (per seed: {per})"
        side = "below" if d.diff < 0 else "above"
        return (f"n={d.n}, 95% interval [{signed(d.low)}, {signed(d.high)}], {_of(d.agree(side), d.n)} {side} 0 "
                f"(per seed: {per})")

    def describe_level(self, lv: stats.Level) -> str:
        return f"n={lv.n}, 95% interval [{fmt(lv.low)}, {fmt(lv.high)}]" if lv.n >= 2 else f"n={lv.n}"

    def reported_as_deltanet(self, v: str, column: str) -> str:
        """What the seed tables report for ``v`` against DeltaNet on ``column`` (the first table that has the row),
        beside that table's own noise."""
        for document, table in self.seed_tables.items():
            if table.measured(v, column, ALL_SETTINGS) and table.measured(BASELINE, column, ALL_SETTINGS):
                return f"the seed document {document} reports " + table.reported_as_deltanet(v, column)
        return f"no seed table reports {v}"


class TableEvidence:
    """A seed document's table (rows × the six columns, point values, short names) with its own noise.

    ``noise``: the tables' run-to-run noise of one task cell (``stats.table_noise``); the Average's is taken as
    sd/√6 (six tasks of independent, equal noise: an assumption, said where it is used). A threshold is judged on
    the point value. ``mad_inert``: the
    (variant, column) pairs whose change cannot act in MAD's runs either (one chunk at every MAD setting)."""

    table = True

    def __init__(self, table: pd.DataFrame, noise: stats.TableNoise | None, mad_inert: set[tuple[str, str]]):
        self.frame = table.copy()
        self.frame[AVERAGE] = table.mean(axis=1, skipna=False)
        self.noise, self.mad_inert = noise, mad_inert
        self.controls: list[str] = []

    def _noise(self, column: str) -> stats.TableNoise | None:
        if self.noise is None or column != AVERAGE:
            return self.noise
        n_cols = len(self.frame.columns) - 1
        return stats.TableNoise(self.noise.sd / math.sqrt(n_cols), self.noise.k, self.noise.rows, AVERAGE)

    def measured(self, v: str, column: str, setting: str) -> bool:
        return v in self.frame.index and column in self.frame.columns

    def mean(self, v: str, column: str, setting: str) -> float:
        return float(self.frame.loc[v, column]) if self.measured(v, column, setting) else math.nan

    def difference(self, a: str, b: str, column: str, setting: str) -> stats.Difference:
        if not (self.measured(a, column, setting) and self.measured(b, column, setting)):
            return stats.Difference(math.nan, math.nan, math.nan, 0, (), False)
        return stats.point_difference(self.mean(a, column, setting), self.mean(b, column, setting), self._noise(column))

    def level(self, v: str, column: str, setting: str) -> stats.Level:
        """A reported cell against a threshold: its point value (the noise measured on Memorize says nothing about a
        cell near a ceiling, where the spread is bounded)."""
        if not self.measured(v, column, setting):
            return stats.Level(math.nan, math.nan, math.nan, 0, False)
        value = self.mean(v, column, setting)
        return stats.Level(value, value, value, SEED_TABLE_SEEDS, values=(value,))

    def not_acting(self, v: str, column: str, setting: str) -> str | None:
        if (v, column) in self.mad_inert:
            return "its change cannot act on this task in MAD's runs either (one chunk at every MAD setting)"
        return None

    def inert_in_mad(self, v: str, column: str) -> bool:
        return (v, column) in self.mad_inert

    @property
    def columns(self) -> list[str]:
        """The task columns the table reports (its Average is theirs)."""
        return [c for c in self.frame.columns if c != AVERAGE]

    def same_runs(self, a: str, b: str, column: str, setting: str) -> list[str]:
        return []  # a table has no runs to compare

    def unmeasured_setting(self, column: str, setting: str) -> str | None:
        return None  # a seed table reports each task's mean over MAD's settings

    def not_learned(self, v: str, column: str, setting: str) -> str | None:
        return None  # a table has no learning curves

    def unlearned_columns(self, v: str) -> list[str]:
        return []

    def last_gain(self, v: str, column: str, setting: str) -> float | None:
        return None

    def unfinished(self, v: str, column: str, setting: str) -> list[tuple[str, str, str]]:
        return []  # a table has no learning curves

    def finished_tasks(self, a: str, b: str) -> list[str]:
        return self.columns  # a table has no learning curves: every task counts as finished

    def learning_state(self, v: str, column: str, setting: str) -> str | None:
        return None

    def seeds(self, d) -> int:
        return SEED_TABLE_SEEDS

    def pair_text(self, a: str, b: str, column: str, setting: str, d: stats.Difference) -> str:
        return f"{a} {fmt(self.mean(a, column, setting))} vs {b} {fmt(self.mean(b, column, setting))} ({signed(d.diff)})"

    def describe(self, d: stats.Difference) -> str:
        if not d.enough:
            return "no noise estimate for this table"
        return f"the table's own noise puts a clear difference beyond ±{fmt(d.high - d.diff)}"

    def describe_level(self, lv: stats.Level) -> str:
        return "the point value"

    def reported_as_deltanet(self, v: str, column: str) -> str:
        d = self.difference(v, BASELINE, column, ALL_SETTINGS)
        text = f"{self.pair_text(v, BASELINE, column, ALL_SETTINGS, d)} on {column}"
        if not d.enough:
            return text + " (no noise estimate for that table)"
        within = "within" if d.direction == "unclear" else "beyond"
        return text + f", {within} that table's own noise (±{fmt(d.high - d.diff)})"

    def reported_as_deltanet_here(self, v: str, column: str) -> str:
        return "this table reports " + self.reported_as_deltanet(v, column)


# --- verdicts ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Verdict:
    claim: Claim
    status: str  # one of the verdict words
    evidence: str
    judged_as: Claim | None = None  # the same-scale translation a threshold claim was judged as
    p: float = math.nan  # the verdict's p-value (NaN: not a test: not testable, by construction, too few seeds)
    agree: str = ""  # for a decisive verdict: how many seeds go its way ("4 of 4 seeds")
    n: int = 0  # the seeds behind it (what "not established with n seeds" says)
    tests: tuple = ()  # its parts' tests, (verdict word, p) each: what it adds to its family (``adjust``)
    notes: Budget = Budget()  # its scope and the rows it compares that are not finished (``qualified``)


@dataclass(frozen=True)
class Part:
    """One task's (or the Average's) verdict of a claim, with its p-value and sign count."""

    status: str
    text: str
    p: float = math.nan
    agree: str = ""
    n: int = 0
    tests: tuple = ()  # (word, p) of each comparison behind it; by default its own (``Part.family``)
    notes: tuple = ()  # (row, state, where): rows it compares that are not finished
    speed: str = ""  # SPEED / PART_SPEED / "": how much of a decisive part is one of learning speed (``_speed``)
    left: str = ""  # a part not testable: why, with "{}" for where ("the change of X does not act on {}")

    def family(self) -> tuple:
        """The tests this part puts in its family: its comparisons, or itself (nothing when it is not a test)."""
        if self.tests:
            return self.tests
        return () if math.isnan(self.p) else ((base(self.status), self.p),)


def _where(column: str, setting: str) -> str:
    return column if setting == ALL_SETTINGS else f"{column} ({setting})"


def _cell(column: str, setting: str) -> str:
    """The cell as a verdict word names it (no brackets: the word's own)."""
    return column if setting == ALL_SETTINGS else f"{column} at setting {setting}"


_UNMEASURED = "this scale does not measure {} at the setting named"
_PAIR = {"beats": {"above": HOLDS, "below": CONTRADICTED}, "lags": {"below": HOLDS, "above": CONTRADICTED}}
_SYMBOL = {"at_least": "≥", "above": ">", "below": "<"}


def _of(k: int, n: int) -> str:
    return f"{k} of {n} seeds"


def _learning_note(ev, a: str, b: str, column: str, setting: str) -> str:
    """Where one or both rows are still climbing when the budget ends (task cells only)."""
    if column == AVERAGE:
        return ""
    gains = {r: ev.last_gain(r, column, setting) for r in (a, b)}
    climbing = {r: g for r, g in gains.items() if g is not None}
    if len(climbing) == 2:
        return (f"; both rows are still climbing when the budget ends (mean accuracy {signed(gains[a])} and "
                f"{signed(gains[b])} in the last epoch), so the difference compares how fast they learn, not where "
                f"they end")
    if climbing:
        (r, g), = climbing.items()
        return f"; {r} is still climbing when the budget ends ({signed(g)} in the last epoch)"
    return ""


def _p(x: float) -> str:
    return "< 0.0001" if x < 1e-4 else f"{x:.2g}" if x < 0.01 else f"{x:.3f}"


def _speed(ev, a: str, b: str, column: str, setting: str, same_way) -> tuple[str, str]:
    """How much of a decisive difference of ``a`` and ``b`` on the cell is one of learning speed (``SPEED``,
    ``PART_SPEED`` or ""), and what the evidence says of it. Neither row unfinished there: "". A task cell one of them
    has not finished: ``SPEED``. On the Average: the difference over only the tasks both rows have finished
    (``finished_difference``: a description that picks the word, not a test of the family) decides; clear the same
    way (``same_way``) → the finished tasks carry part of it, ``PART_SPEED``; otherwise, or no such task,
    ``SPEED``."""
    if not (ev.unfinished(a, column, setting) or ev.unfinished(b, column, setting)):
        return "", ""
    if column != AVERAGE:
        return SPEED, ""
    tasks, d = ev.finished_difference(a, b)
    if not tasks:
        return SPEED, f"; {a} and {b} have finished no task in common, so all of the difference may be one of speed"
    said = f"; on only the {len(tasks)} tasks both have finished ({join_words(tasks)}), {a} − {b} is {signed(d.diff)}"
    if d.n >= 2:
        said += f" ({ev.describe(d)}; p = {_p(d.p())}, a description that picks the word, not a test of the family)"
    if d.n >= 2 and same_way(d):
        return PART_SPEED, said + ": the finished tasks carry part of the difference"
    return SPEED, said + ": no clear difference that way, so it rests on the tasks still being learned"


def _pairwise(c: Claim, ev, column: str, setting: str) -> Part:
    a, b = c.variant, c.other
    where = _where(column, setting)
    ahead = a if c.kind in ("beats", "no_worse") else b  # the row the claim puts ahead (or level)
    if c.kind != "no_worse" and ev.inert_in_mad(ahead, column):
        return Part(CONTRADICTED, (f"{BY_CONSTRUCTION}: {where}: the change of {ahead} acts only on the state carried "
                                   f"between chunks, and this task is one chunk at every MAD setting, so here and in "
                                   f"MAD's runs {ahead} is DeltaNet on it: the change cannot put it ahead of "
                                   f"{a if ahead == b else b}; whatever it is said to gain is DeltaNet's own. "
                                   f"{_reported(ev, ahead, column)}"))
    for v in (a, b):
        why = ev.not_acting(v, column, setting)
        if why:
            return Part(NOT_TESTABLE, f"{where}: the change of {v} does not act here ({why})",
                        left=f"the change of {v} does not act on {{}}")
    same = ev.same_runs(a, b, column, setting)
    if same and (column != AVERAGE or same == ev.columns):
        return Part(NOT_TESTABLE, (f"{where}: {a}'s runs are {b}'s bit for bit here (the same test loss at every "
                                   f"epoch of every run both have), so what tells the two rows apart does not act "
                                   f"here"), left=f"{a}'s runs are {b}'s bit for bit on {{}}")
    missing = ev.unmeasured_setting(column, setting)
    if missing:
        return Part(NOT_TESTABLE, f"{where}: {missing}", left=_UNMEASURED)
    if not (ev.measured(a, column, setting) and ev.measured(b, column, setting)):
        return Part(not_established(0), f"{where}: not measured")
    for v in (a, b):
        why = ev.not_learned(v, column, setting)
        if why and column != AVERAGE:
            return Part(unlearned_word(v, _cell(column, setting)),
                        (f"{where}: {has_not_learned(v)} {where} within the budget ({why}), so a comparison with it "
                         f"measures when it starts learning, not where it ends"), left=f"{has_not_learned(v)} {{}}")
    unlearned = {v: ev.unlearned_columns(v) for v in (a, b)} if column == AVERAGE else {}
    if unlearned and any(set(cols) == set(ev.columns) for cols in unlearned.values()):
        v = next(v for v, cols in unlearned.items() if set(cols) == set(ev.columns))
        return Part(NOT_TESTABLE, f"{where}: {v} has clearly learned no task within the budget",
                    left=f"{v} has clearly learned no task, so not {{}}")
    d = ev.difference(a, b, column, setting)
    nums = ev.pair_text(a, b, column, setting, d)
    if same:  # the Average, over tasks of which some cannot tell the two rows apart
        nums += (f"; on {join_words(same)} {a}'s runs are {b}'s bit for bit, so the difference comes from the other "
                 f"{len(ev.columns) - len(same)} tasks")
    groups: dict[tuple[str, ...], list[str]] = {}
    for v, cols in unlearned.items():
        if cols:
            groups.setdefault(tuple(cols), []).append(v)
    for cols, who in groups.items():
        nums += (f"; {has_not_learned(join_words(who))} {join_words(cols)} within the budget, so on "
                 f"{'that task' if len(cols) == 1 else 'those tasks'} the difference says when "
                 f"{'it starts' if len(who) == 1 else 'they start'} learning")
    note = _learning_note(ev, a, b, column, setting)
    notes = tuple(ev.unfinished(a, column, setting) + ev.unfinished(b, column, setting))
    if column == AVERAGE:
        nums = f"the Average over {join_words(ev.columns)}: {nums}"
    if c.kind == "no_worse":
        side = d.beyond(c.margin)
        status = {"within": HOLDS, "worse": CONTRADICTED}.get(side, not_established(ev.seeds(d)))
        agree = _of(d.agree("above" if side == "within" else "below", -c.margin), d.n) if status in DECISIVE else ""
        speed, said = _speed(ev, a, b, column, setting, lambda f: f.beyond(c.margin) == side) \
            if status in DECISIVE else ("", "")
        return Part(status, (f"{where}: {nums}, {ev.describe(d)}; no worse means a drop under {fmt(c.margin)}{note}"
                             f"{said}"), d.p(-c.margin), agree, ev.seeds(d), notes=notes, speed=speed)
    status = _PAIR[c.kind].get(d.direction)
    upper, lower = (b, a) if c.kind == "beats" else (a, b)  # the claim needs `lower` clearly above `upper`...
    if status is None and _paired_mean(ev, upper, lower, column, setting) >= CEILING:  # ...where there is no room
        return Part(NOT_TESTABLE, (f"{where}: {nums}, {ev.describe(d)}; {upper} is at the ceiling here (≥ "
                                   f"{CEILING:g}), so {lower} could not come out clearly above it"),
                    left=f"{upper} is at the ceiling on {{}}")
    agree = _of(d.agree(d.direction), d.n) if status else ""
    speed, said = _speed(ev, a, b, column, setting, lambda f: f.direction == d.direction) if status else ("", "")
    return Part(status or not_established(ev.seeds(d)), f"{where}: {nums}, {ev.describe(d)}{note}{said}", d.p(0.0),
                agree, ev.seeds(d), notes=notes, speed=speed)


def _reported(ev, row: str, column: str) -> str:
    said = ev.reported_as_deltanet_here(row, column) if ev.table else ev.reported_as_deltanet(row, column)
    return said[0].upper() + said[1:]


def _paired_mean(ev, row: str, other: str, column: str, setting: str) -> float:
    """``row``'s mean over the seeds it shares with ``other`` (the seeds the paired difference is taken over; a
    seed table's point value)."""
    if ev.table:
        return ev.mean(row, column, setting)
    mine, theirs = ev.values(row, column, setting), ev.values(other, column, setting)
    common = set(mine) & set(theirs)
    return sum(mine[s] for s in common) / len(common) if common else math.nan


_PAST = {"at_least": lambda x, t: x >= t, "above": lambda x, t: x > t, "below": lambda x, t: x < t}


def _threshold_status(kind: str, lv: stats.Level, threshold: float, seeds: int) -> str:
    if not lv.enough:
        return not_established(seeds)
    past = _PAST[kind]
    if past(lv.low, threshold) and past(lv.high, threshold):
        return HOLDS
    if not past(lv.low, threshold) and not past(lv.high, threshold):
        return CONTRADICTED
    return not_established(seeds)


def _level_agree(kind: str, status: str, lv: stats.Level, threshold: float) -> str:
    if status not in DECISIVE or not lv.values:
        return ""
    up = kind != "below"
    side = "above" if (status == HOLDS) == up else "below"
    return _of(lv.agree(side, threshold), len(lv.values))


def _threshold(c: Claim, ev, column: str, setting: str) -> Part:
    where = _where(column, setting)
    why = ev.not_acting(c.variant, column, setting)
    if why:
        return Part(NOT_TESTABLE, f"{where}: the change of {c.variant} does not act here ({why})",
                    left=f"the change of {c.variant} does not act on {{}}")
    missing = ev.unmeasured_setting(column, setting)
    if missing:
        return Part(NOT_TESTABLE, f"{where}: {missing}", left=_UNMEASURED)
    if not ev.measured(c.variant, column, setting):
        return Part(not_established(0), f"{where}: {c.variant} not measured")
    why = ev.not_learned(c.variant, column, setting)
    if why and column != AVERAGE:
        return Part(unlearned_word(c.variant, _cell(column, setting)),
                    (f"{where}: {has_not_learned(c.variant)} {where} within the budget ({why}), so its score says "
                     f"when it starts learning, not where it ends"), left=f"{has_not_learned(c.variant)} {{}}")
    lv = ev.level(c.variant, column, setting)
    status = _threshold_status(c.kind, lv, c.threshold, ev.seeds(lv))
    notes = tuple(ev.unfinished(c.variant, column, setting))  # a level, not a difference: all of it at this budget
    return Part(status, (f"{where}: {c.variant} {fmt(lv.mean)} ({ev.describe_level(lv)}); the claim asks "
                         f"{_SYMBOL[c.kind]} {c.threshold:g}"), lv.p(c.threshold),
                _level_agree(c.kind, status, lv, c.threshold), ev.seeds(lv), notes=notes,
                speed=SPEED if notes else "")


def candidates(ev, rows: list[str], column: str, setting: str) -> tuple[list[str], list[str], list[str]]:
    """(rows measured whose change acts on the cell, that have learned it and are not null controls; rows left out
    because their change does not act there or they are null controls; rows left out because they have not clearly
    learned the cell within the budget)."""
    kept, out, unlearned = [], [], []
    for r in rows:
        if not ev.measured(r, column, setting):
            continue
        if r in ev.controls or ev.not_acting(r, column, setting):
            out.append(r)
        elif column != AVERAGE and ev.not_learned(r, column, setting):
            unlearned.append(r)
        else:
            kept.append(r)
    return kept, out, unlearned


def _left_out(out: list[str], unlearned: list[str]) -> str:
    text = f"; left out, their change does not act here: {', '.join(out)}" if out else ""
    if unlearned:
        text += f"; left out, not clearly learned within the budget: {', '.join(unlearned)}"
    return text


def _best(c: Claim, ev, column: str, setting: str, rows: list[str]) -> Part:
    where = _where(column, setting)
    me = c.variant
    why = ev.not_acting(me, column, setting)
    if why:
        return Part(NOT_TESTABLE, f"{where}: the change of {me} does not act here ({why})",
                    left=f"the change of {me} does not act on {{}}")
    missing = ev.unmeasured_setting(column, setting)
    if missing:
        return Part(NOT_TESTABLE, f"{where}: {missing}", left=_UNMEASURED)
    why = ev.not_learned(me, column, setting) if column != AVERAGE else None
    if why and ev.measured(me, column, setting):
        return Part(unlearned_word(me, _cell(column, setting)),
                    (f"{where}: {has_not_learned(me)} {where} within the budget ({why}), so where it ranks says when "
                     f"it starts learning, not where it ends"), left=f"{has_not_learned(me)} {{}}")
    present, left_out, unlearned = candidates(ev, rows, column, setting)
    if me not in present:
        return Part(not_established(0), f"{where}: {me} not measured")
    ranked = sorted(present, key=lambda r: -ev.mean(r, column, setting))
    head = f"{where}: {me} {fmt(ev.mean(me, column, setting))} is #{ranked.index(me) + 1} of {len(present)}"
    if ranked[0] != me:
        head += f" (top: {ranked[0]} {fmt(ev.mean(ranked[0], column, setting))})"
    head += _left_out(left_out, unlearned)
    diffs = {r: ev.difference(me, r, column, setting) for r in present if r != me}
    if not diffs:
        return Part(not_established(0), f"{head}; no other row to compare")
    ps = {r: d.p() for r, d in diffs.items()}
    # every row it must beat is a test of the family ("best" = ahead of each): (word, p) per comparison
    word = {r: {"above": HOLDS, "below": CONTRADICTED}.get(d.direction, not_established(ev.seeds(d)))
            for r, d in diffs.items()}
    tests = tuple((word[r], ps[r]) for r in diffs if not math.isnan(ps[r]))
    ahead = [r for r, d in diffs.items() if d.direction == "below"]
    if ahead:
        first = min(ahead, key=lambda r: ps[r])
        p = min(1.0, len(diffs) * ps[first])  # one row ahead suffices: Bonferroni over the rows compared
        notes = tuple(ev.unfinished(me, column, setting) + ev.unfinished(first, column, setting))
        speed, said = _speed(ev, me, first, column, setting, lambda f: f.direction == "below")
        return Part(CONTRADICTED, (f"{head}; clearly ahead of it: "
                                   f"{', '.join(f'{r} ({signed(-diffs[r].diff)})' for r in ahead)}{said}"), p,
                    _of(diffs[first].agree("below"), diffs[first].n), ev.seeds(diffs[first]), tests, notes, speed)
    p = _largest(ps.values())  # every row must be behind: the largest p (intersection-union)
    notes = tuple(x for r in ([me] if column == AVERAGE else [me, *diffs]) for x in ev.unfinished(r, column, setting))
    if all(d.direction == "above" for d in diffs.values()):
        weakest = max(diffs, key=lambda r: ps[r])
        # every comparison decides: all of it speed only if every one is (on the Average: the tasks `me` has not
        # finished, the ones its word names, against each row's)
        speeds = [_speed(ev, me, r, column, setting, lambda f: f.direction == "above")[0] for r in diffs]
        speed = combined_speed(speeds) if notes else ""
        return Part(HOLDS, f"{head}, clearly ahead of every other row", p,
                    _of(min(d.agree("above") for d in diffs.values()), diffs[weakest].n), ev.seeds(diffs[weakest]),
                    tests, notes, speed)
    unsure = [r for r, d in diffs.items() if d.direction != "above"]
    n = min(ev.seeds(diffs[r]) for r in unsure)
    return Part(not_established(n), f"{head}; not clearly ahead of {len(unsure)} row(s): {', '.join(unsure[:4])}" + (
        ", …" if len(unsure) > 4 else ""), p, "", n, tests, notes)


def _partial_conjunction(ps: list[float], k: int) -> float:
    """p of "at least k of these m hypotheses are false" (Benjamini & Heller's Bonferroni form): (m − k + 1) times the
    k-th smallest p."""
    finite = sorted(x for x in ps if not math.isnan(x))
    if k < 1:
        return 0.0
    if k > len(finite):
        return math.nan
    return min(1.0, (len(ps) - k + 1) * finite[k - 1])


def _saturated(c: Claim, ev, column: str, setting: str, rows: list[str]) -> Part:
    where = _where(column, setting)
    missing = ev.unmeasured_setting(column, setting)
    if missing:
        return Part(NOT_TESTABLE, f"{where}: {missing}", left=_UNMEASURED)
    present, left_out, unlearned = candidates(ev, rows, column, setting)
    if not present:
        return Part(not_established(0), f"{where}: not measured")
    levels = {r: ev.level(r, column, setting) for r in present}
    status = {r: _threshold_status("at_least", lv, c.threshold, ev.seeds(lv)) for r, lv in levels.items()}
    needed = math.ceil(c.fraction * len(present) - 1e-9)
    held = [r for r, s in status.items() if s == HOLDS]
    below = [r for r, s in status.items() if s == CONTRADICTED]
    clearly = "" if ev.table else "clearly "
    text = f"{where}: {len(held)} of {len(present)} rows {clearly}≥ {c.threshold:g} (the claim needs {needed})"
    if below:
        text += f"; {clearly}below: {', '.join(below)}"
    text += _left_out(left_out, unlearned)
    ps = [lv.p(c.threshold) for lv in levels.values()]
    n = min(ev.seeds(lv) for lv in levels.values())
    notes = tuple(x for r in present for x in ev.unfinished(r, column, setting)) if column != AVERAGE else ()
    # a row at a level, not a difference: the rows still learning are at this budget, the others are not
    speed = combined_speed(SPEED if ev.unfinished(r, column, setting) else "" for r in present) if notes else ""
    if len(held) >= needed:
        return Part(HOLDS, text, _partial_conjunction(ps, needed), f"{len(held)} of {len(present)} rows", n,
                    notes=notes, speed=speed)
    if len(below) > len(present) - needed:
        return Part(CONTRADICTED, text, _partial_conjunction(ps, len(present) - needed + 1),
                    f"{len(below)} of {len(present)} rows below", n, notes=notes, speed=speed)
    unsure = [r for r, s in status.items() if s not in (HOLDS, CONTRADICTED)]
    return Part(not_established(min(ev.seeds(levels[r]) for r in unsure)), text, _partial_conjunction(ps, needed),
                notes=notes)


def _largest(ps) -> float:
    """The largest p (NaN if any is NaN: a comparison that is no test cannot make the claim's)."""
    ps = list(ps)
    return math.nan if not ps or any(math.isnan(x) for x in ps) else max(ps)


def _one(c: Claim, ev, column: str, rows: list[str]) -> Part:
    setting = c.setting or ALL_SETTINGS
    if ev.table and setting != ALL_SETTINGS:
        setting = ALL_SETTINGS  # a seed table reports only the task's mean over MAD's settings
    if c.kind in _PAIR or c.kind == "no_worse":
        return _pairwise(c, ev, column, setting)
    if c.kind in _SYMBOL:
        return _threshold(c, ev, column, setting)
    if c.kind == "best":
        return _best(c, ev, column, setting, rows)
    return _saturated(c, ev, column, setting, rows)


def combine(parts: list[tuple[str, str]]) -> str:
    """One verdict from a claim's per-task verdicts (task "all"): one contradicted → contradicted; all holding →
    holds; tasks not testable are left out (all of them: not testable); otherwise not established (fewest seeds)."""
    statuses = [base(s) for s, *_ in parts]
    if CONTRADICTED in statuses:
        return CONTRADICTED
    testable = [s for s in statuses if s != NOT_TESTABLE]
    if not testable:
        return NOT_TESTABLE
    if all(s == HOLDS for s in testable):
        return HOLDS
    return not_established(min(seeds_of(s) for s in testable if s != HOLDS))


def _combined_p(parts: list[Part], status: str) -> tuple[float, str, int]:
    """The p, sign count and seeds of a claim of several parts (task "all": one per task; a combination: one per row
    it is judged against): all must hold → the largest p; one contradicted part suffices → Bonferroni over the parts
    tested (their number times the smallest contradicting p)."""
    tested = [p for p in parts if base(p.status) != NOT_TESTABLE]
    if status == CONTRADICTED:
        against = [p for p in tested if p.status == CONTRADICTED]
        first = min(against, key=lambda p: (math.isnan(p.p), p.p))
        by_construction = [p for p in against if p.text.startswith(BY_CONSTRUCTION)]
        if by_construction:
            return math.nan, "", 0
        return min(1.0, len(tested) * first.p), first.agree, first.n
    if status == HOLDS:
        weakest = max(tested, key=lambda p: -1 if math.isnan(p.p) else p.p)
        return _largest(p.p for p in tested), weakest.agree, weakest.n
    return _largest(p.p for p in tested), "", 0


def judge(claim: Claim, ev, rows: list[str], columns: list[str]) -> Verdict:
    """Judge one claim on one body of evidence. ``rows``: what "best" and "saturated" range over; ``columns``: the
    task columns measured (for task "all")."""
    target, judged_as = claim, None
    if claim.kind in THRESHOLD_KINDS and not ev.table:
        if claim.translation is None:
            return Verdict(claim, NOT_TESTABLE, f"{claim.threshold:g} is a number on the seed documents' MAD scale "
                                                f"and the round file gives no same-scale reading of it")
        target = judged_as = claim.translation
    targets = columns if target.task == "all" else [target.task]
    against = [target] + [dataclasses.replace(target, other=part, components=None)
                          for part in (target.components or ()) if part != target.other]
    parts, labels = [], []
    for col in targets:
        for one in against:
            parts.append(_one(one, ev, col, rows) if col in columns + [AVERAGE] else
                         Part(NOT_TESTABLE, f"{col}: this notebook does not measure {col}, so there is nothing to "
                                            f"judge", left="this notebook does not measure {}"))
            labels.append((col, one.other))
    evidence = "; ".join(p.text for p in parts)
    if len(against) > 1:  # the factorial control of a combination
        evidence = (f"The combination {target.variant} of {join_words(target.components)} is judged against "
                    f"{join_words(o.other for o in against)}, and the claim holds only if it holds against each; "
                    f"{evidence}")
    status = combine([(p.status, p.text) for p in parts])
    if len(parts) == 1:
        p, agree, n = parts[0].p, parts[0].agree, parts[0].n
    else:
        p, agree, n = _combined_p(parts, status)
    if status == NOT_TESTABLE:
        p = math.nan  # not a test
    if status.startswith("not established"):
        n = seeds_of(status)
    if AVERAGE in targets and len(columns) < len(COLUMNS):  # a notebook run on some of the tasks
        evidence = (f"The Average here is over the {len(columns)} tasks measured ({join_words(columns)}), not MAD's "
                    f"{len(COLUMNS)}; {evidence}")
    left_out = list(dict.fromkeys(col for (col, _), part in zip(labels, parts) if base(part.status) == NOT_TESTABLE))
    if len(targets) > 1 and left_out and status != NOT_TESTABLE:
        evidence = (f"Judged on the {len(targets) - len(left_out)} of {len(targets)} tasks where it can be tested "
                    f"(not testable at this scale, so left out: {join_words(left_out)}); {evidence}")
    word, budget = _word(status, parts, [col if len(targets) > 1 else other for col, other in labels],
                         "tasks" if len(targets) > 1 else "rows", _cell(target.task, target.setting or ALL_SETTINGS))
    tests = () if status == NOT_TESTABLE else tuple(t for part in parts for t in part.family())
    return Verdict(claim, word, evidence, judged_as, p, agree if status in DECISIVE else "", n, tests, budget)


def scope(labels: list[str], parts: list[Part], what: str, cell: str = "") -> str:
    """What a claim over several tasks (``what`` = "tasks"; a combination on one ``cell``: the "rows" it is judged
    against; ``labels``: each part's task or row) was judged on when some parts were left out as not testable, and
    why: "judged on 2 of 6 tasks (Compress and Memorize; X has not clearly learned the others)"; "" when none was
    left out (or none tested)."""
    tested = list(dict.fromkeys(lab for lab, p in zip(labels, parts) if base(p.status) != NOT_TESTABLE))
    why: dict[str, list[str]] = {}  # the reason (with "{}" for where) → the labels it leaves out
    for lab, p in zip(labels, parts):
        if base(p.status) == NOT_TESTABLE and lab not in tested and lab not in {x for v in why.values() for x in v}:
            why.setdefault(p.left or "{} not testable at this scale", []).append(lab)
    if not why or not tested:
        return ""
    total = len(tested) + sum(len(v) for v in why.values())
    if what == "rows":
        reasons = [r.replace("{}", cell) for r in why]
    elif len(why) == 1 and total - len(tested) > 1:
        reasons = [next(iter(why)).replace("{}", "the others")]
    else:
        reasons = [r.replace("{}", join_words(labs)) for r, labs in why.items()]
    on = "against" if what == "rows" else "on"
    return f"judged {on} {len(tested)} of {total} {what} ({join_words(tested)}; {'; '.join(reasons)})"


def _word(status: str, parts: list[Part], labels: list[str], what: str, cell: str) -> tuple[str, Budget]:
    """The verdict's word from its combined ``status``: a claim on one cell a row has not clearly learned keeps that
    part's word ("not testable: X has not clearly learned T"); otherwise the word says what the claim was judged on
    when parts were left out (``scope``), which rows it compares are not finished on the parts that decide it, and
    how much of a decisive verdict is a difference in learning speed: only parts that were tested say so, never the
    parts left out (``qualified``)."""
    if status == NOT_TESTABLE:
        found = [_UNLEARNED.fullmatch(p.status) for p in parts]
        if not all(found):  # some part is not testable for another reason: the scale's word
            return status, Budget()
        rows = list(dict.fromkeys(m.group(1) for m in found))
        wheres = list(dict.fromkeys(m.group(2) for m in found))
        return unlearned_word(join_words(rows), join_words(wheres)), Budget()
    deciding = [p for p in parts if p.status == status] if status == CONTRADICTED else \
        [p for p in parts if base(p.status) != NOT_TESTABLE]
    budget = Budget(scope(labels, parts, what, cell), tuple(dict.fromkeys(x for p in deciding for x in p.notes)),
                    combined_speed(p.speed for p in deciding))
    return qualified(status, budget), budget


def by_construction(v: Verdict) -> bool:
    """Whether the verdict is "contradicted" by construction (not a test)."""
    return base(v.status) == CONTRADICTED and math.isnan(v.p) and BY_CONSTRUCTION in v.evidence


# --- multiplicity ------------------------------------------------------------------------------------------

def adjusted_status(status: str, p_adjusted: float, n: int, alpha: float = 1 - stats.LEVEL,
                    notes: Budget | None = None) -> str:
    """The verdict that survives the family's adjustment: a decisive verdict whose adjusted p is not under ``alpha``
    becomes "not established with n seeds" (saying the same of its scope and the budget, ``notes``: the verdict's
    ``Budget``); a verdict that is not a test (NaN) keeps its word."""
    word = base(status)
    if word not in DECISIVE or math.isnan(p_adjusted) or p_adjusted < alpha:
        return status
    return qualified(not_established(n), notes)


def claim_p(status: str, tests, adjusted) -> float:
    """A claim's adjusted p from its parts' (``tests``: (word, p) each; ``adjusted``: their Holm-adjusted p): its
    weakest part's. Holding needs every part: the largest; contradicted by any one contradicting part: the
    smallest of those; otherwise the largest (NaN: no test)."""
    if not tests:
        return math.nan
    if base(status) == CONTRADICTED:
        against = [q for (w, _), q in zip(tests, adjusted) if w == CONTRADICTED]
        if against:
            return min(against)
    return max(adjusted)


def family_p(tests_per_claim: list[tuple], statuses: list[str]) -> list[float]:
    """Holm over a family whose every part is a test (``tests_per_claim``: each claim's (word, p) parts): each
    claim's adjusted p, its weakest part's (``claim_p``)."""
    flat = [p for tests in tests_per_claim for _, p in tests]
    adjusted = stats.holm(flat)
    out, i = [], 0
    for tests, status in zip(tests_per_claim, statuses):
        out.append(claim_p(status, tests, adjusted[i:i + len(tests)]))
        i += len(tests)
    return out


def adjust(frames: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """Holm over one family, made of the rows of ``frames`` (``claims_table``'s: a round's claims and its proposal's
    success criteria), every part of a claim a test of its own ("best": one per row it must beat; task "all": one
    per task; a combination: one per control): each frame comes back with ``adjusted p`` (the claim's weakest
    part's) and ``verdict adjusted``; ``family`` (the number of tests in the family) and ``family claims`` (the
    claims that are tests) in ``frame.attrs``."""
    tests = [t for f in frames for t in f["tests"]]
    statuses = [s for f in frames for s in f["verdict here"]]
    adjusted = family_p(tests, statuses)
    out, i = [], 0
    for f in frames:
        g = f.copy()
        g["adjusted p"] = adjusted[i:i + len(f)]
        g["verdict adjusted"] = [adjusted_status(s, q, n, notes=b) for s, q, n, b in
                                 zip(g["verdict here"], g["adjusted p"], g["n"], g["budget"])]
        g.attrs["family"] = sum(len(t) for t in tests)
        g.attrs["family claims"] = sum(bool(t) for t in tests)
        g.attrs["family rows"] = len(tests)
        out.append(g)
        i += len(f)
    return out


# --- a round's claims --------------------------------------------------------------------------------------

def seed_table_noise(seed: pd.DataFrame, inert: pd.DataFrame) -> stats.TableNoise | None:
    """The seed table's run-to-run noise: the spread of the reported cells of rows whose change cannot act on a
    task in MAD's runs either (inert here on a task that is one chunk at every MAD setting), DeltaNet included.
    The column with the most such rows is used; None if no column has two."""
    best = None
    for column in seed.columns:
        if not inert_cells.one_chunk_at_every_mad_setting(column):
            continue
        same = [v for v in inert[(inert["column"] == column) & (inert["setting"] == ALL_SETTINGS)]["variant"]
                if v in seed.index]
        rows = ([BASELINE] if BASELINE in seed.index else []) + same
        if len(rows) >= 2 and (best is None or len(rows) > best.k):
            best = stats.table_noise({r: float(seed.loc[r, column]) for r in rows}, column)
    return best


def mad_inert(seed: pd.DataFrame, inert: pd.DataFrame) -> set[tuple[str, str]]:
    """(variant, column) of the seed table whose change cannot act in MAD's runs: inert here on a task that is one
    chunk at every MAD setting."""
    whole = inert[inert["setting"] == ALL_SETTINGS]
    return {(v, c) for v, c in zip(whole["variant"], whole["column"])
            if c in seed.columns and inert_cells.one_chunk_at_every_mad_setting(c)}


def table_evidence(seed: pd.DataFrame, inert: pd.DataFrame, columns: list[str]) -> TableEvidence:
    """The seed table as evidence, restricted to the columns measured here."""
    return TableEvidence(seed[columns], seed_table_noise(seed, inert), mad_inert(seed, inert))


def seed_tables(tables: dict[str, pd.DataFrame], inert: pd.DataFrame, columns: list[str]) -> dict[str, TableEvidence]:
    """Seed documents' tables as evidence (``tables``: document → its table, ``study.seed_table``)."""
    return {doc: table_evidence(t, inert, columns) for doc, t in tables.items()}


def every_seed_table(inert: pd.DataFrame, columns: list[str]) -> dict[str, TableEvidence]:
    """Every seed document's table the repository carries (``study.seed_documents``), as evidence."""
    from .study import seed_documents, seed_table

    return seed_tables({doc: seed_table(doc) for doc in seed_documents()}, inert, columns)


STEP_COLUMNS = ["step", "claim", "variant", "against", "column", "setting", "verdict", "differences", "states",
                "why", "elsewhere"]


def _differences(c: Claim, ev, column: str, setting: str) -> list[tuple[str, float, int, int]]:
    """(other, mean paired difference, seeds on its side, seeds) of a pairwise claim's variant against each row it is
    judged against (``other`` and its ``components``); [] for another kind."""
    if c.kind not in (*_PAIR, "no_worse"):
        return []
    out = []
    for o in [c.other] + [x for x in (c.components or ()) if x != c.other]:
        d = ev.difference(c.variant, o, column, setting)
        if d.n:
            out.append((o, d.diff, d.agree("below" if d.diff < 0 else "above"), d.n))
    return out


def _states(c: Claim, ev, column: str, setting: str) -> dict[str, str]:
    """Row → its state on the cell (``inert.learning``; on the Average: the tasks it has not finished, or
    "finished")."""
    rows = [r for r in [c.variant, c.other, *(c.components or ())] if r]
    out = {}
    for r in dict.fromkeys(rows):
        if column == AVERAGE:
            left = ev.unfinished(r, AVERAGE, ALL_SETTINGS)
            out[r] = "; ".join(f"{s} {w}" for _, s, w in left) if left else inert_cells.FINISHED
        else:
            out[r] = ev.learning_state(r, column, setting) or ""
    return out


def why_not_testable(c: Claim, ev, word: str, column: str, setting: str) -> str:
    """What keeps a claim from being put to these data, in a few words (a verdict word that is not a test)."""
    m = _UNLEARNED.fullmatch(word)
    if m:
        return f"{has_not_learned(m.group(1))} {m.group(2)} within the budget"
    if column not in ev.columns + [AVERAGE]:
        return f"this notebook does not measure {column}"
    rows = [r for r in [c.variant, c.other] if r]
    if column == AVERAGE:
        for r in rows:
            if ev.columns and set(ev.unlearned_columns(r)) == set(ev.columns):
                return f"{r} has clearly learned no task within the budget"
    if c.kind in _PAIR and len(rows) == 2 and not ev.table:
        upper = rows[1] if c.kind == "beats" else rows[0]
        if _paired_mean(ev, upper, rows[0] if upper == rows[1] else rows[1], column, setting) >= CEILING:
            return (f"{upper} is at the ceiling on {_where(column, setting)} (≥ {CEILING:g}), so no row can come out "
                    f"above it")
    for r in rows:
        why = ev.not_acting(r, column, setting)
        if why:
            return f"the change of {r} does not act on {_where(column, setting)} ({why})"
    same = ev.same_runs(rows[0], rows[1], column, setting) if len(rows) == 2 else []
    if same:
        return f"{rows[0]}'s runs are {rows[1]}'s bit for bit on {join_words(same)}"
    return NOT_TESTABLE


def next_steps(items: tuple[Claim, ...], verdicts: pd.DataFrame, here: SeedEvidence,
               elsewhere: dict[str, SeedEvidence] | None = None, rows: list[str] | None = None) -> pd.DataFrame:
    """Per claim that names a ``step`` (a seed document's next step; round 6): what was tried (the variant against
    the rows it is judged against, on which cell), what it gave (the verdict after the family's adjustment,
    ``verdicts["verdict adjusted"]`` in the order of ``items``, the paired differences, the rows' states), and,
    where it is not testable here, why, and what the other scales' stored runs (``elsewhere``: scale name →
    evidence) measured for the same claim: (scale, verdict, differences, the settings measured there)."""
    out = []
    words = list(verdicts["verdict adjusted"] if "verdict adjusted" in verdicts else verdicts["verdict here"])
    for c, word in zip(items, words):
        if not c.step:
            continue
        target = c.translation if (c.kind in THRESHOLD_KINDS and c.translation is not None) else c
        column, setting = target.task, target.setting or ALL_SETTINGS
        why, there = "", []
        if base(word) == NOT_TESTABLE:
            why = why_not_testable(target, here, word, column, setting)
            for name, ev in (elsewhere or {}).items():
                if column not in ev.columns + [AVERAGE]:
                    continue
                v = judge(c, ev, rows or [], ev.columns)
                measured = (ev.settings or {}).get(column, [])
                there.append((name, v.status, _differences(target, ev, column, setting), measured))
        out.append({"step": c.step, "claim": c.text, "variant": target.variant,
                    "against": list(dict.fromkeys(x for x in [target.other, *(target.components or ())] if x)),
                    "column": column, "setting": setting, "verdict": word,
                    "differences": _differences(target, here, column, setting),
                    "states": _states(target, here, column, setting), "why": why, "elsewhere": there})
    return pd.DataFrame(out, columns=STEP_COLUMNS)


def archived_evidence(rnd, scales: list[str], results_dir=None) -> dict[str, SeedEvidence]:
    """Scale name → the round's rows as that scale's store holds them (``study.stored_study``: nothing trained),
    as evidence with their learning states (``study.learning_of``): what ``next_steps`` reads back where a claim is
    not testable here."""
    from ..params import load_scale
    from ..store import Store
    from .study import learning_of, stored_study

    store = Store(results_dir) if results_dir else Store()
    out = {}
    for name in scales:  # archived scales, named by the notebook's parameter
        past = stored_study(rnd, load_scale(name), store)
        out[name] = SeedEvidence(past.scores, past.inert, past.columns, past.twins, learning_of(past), past.settings)
    return out


CLAIM_COLUMNS = ["claim", "verdict here", "p", "seeds agreeing", "n", "evidence", "read at this scale as",
                 "on the seed's own table", "seed evidence", "source", "tests", "budget"]


def claims_table(claims: tuple[Claim, ...], here: SeedEvidence, there: TableEvidence, rows: list[str],
                 columns: list[str], seed_rows: set[str]) -> pd.DataFrame:
    """Each claim: the verdict here (unadjusted) with its p-value, the seeds that go its way and its evidence, how
    a threshold was read at this scale, the verdict on the seed table's own numbers ("not in the seed table" when a
    row it names is not there), and its source. ``adjust`` adds the verdict after the family's adjustment."""
    out = []
    for claim in claims:
        v = judge(claim, here, rows, columns)
        named = [x for x in (claim.variant, claim.other) if x is not None]
        in_seed = all(x in seed_rows for x in named)
        t = judge(claim, there, [r for r in rows if r in seed_rows], columns) if in_seed else None
        out.append({"claim": claim.text, "verdict here": v.status, "p": v.p, "seeds agreeing": v.agree, "n": v.n,
                    "evidence": v.evidence, "read at this scale as": _translation_text(v.judged_as),
                    "on the seed's own table": t.status if t else "not in the seed table",
                    "seed evidence": t.evidence if t else "", "source": claim.source or "", "tests": v.tests,
                    "budget": v.notes})
    return pd.DataFrame(out, columns=CLAIM_COLUMNS)


def _translation_text(t: Claim | None) -> str:
    if t is None:
        return ""
    what = {"beats": f"{t.variant} beats {t.other}", "lags": f"{t.variant} lags {t.other}",
            "no_worse": f"{t.variant} no worse than {t.other} (margin {fmt(t.margin)})",
            "best": f"{t.variant} is the best row", "at_least": f"{t.variant} ≥ {t.threshold:g}",
            "above": f"{t.variant} > {t.threshold:g}", "below": f"{t.variant} < {t.threshold:g}",
            "saturated": f"at least {t.fraction:.0%} of the rows ≥ {t.threshold:g}"}[t.kind]
    where = t.task if not t.setting else f"{t.task}, setting {t.setting}"
    return f"{what} on {where}: {t.text}"


def summary_counts(statuses: list[str]) -> dict[str, int]:
    """How many of each verdict word ("not established" counted together whatever n)."""
    keys = {HOLDS: 0, CONTRADICTED: 0, "not established": 0, NOT_TESTABLE: 0}
    for s in map(base, statuses):
        keys["not established" if s.startswith("not established") else s] += 1
    return keys


def proposal_outcome(statuses: list[str]) -> str:
    """A proposal on its own success criteria, in the verdict words: "every testable criterion holds", "a
    criterion is contradicted", "no criterion contradicted, not all established", or "no criterion testable"."""
    testable = [s for s in map(base, statuses) if s != NOT_TESTABLE]
    if CONTRADICTED in testable:
        return "a criterion is contradicted"
    if not testable:
        return "no criterion testable"
    if all(s == HOLDS for s in testable):
        return "every testable criterion holds"
    return "no criterion contradicted, not all established"


def words_in(statuses: list[str]) -> str:
    return join_words(f"{n} {w}" for w, n in summary_counts(statuses).items())


def study_family(rounds: list, here: SeedEvidence, columns: list[str]) -> pd.DataFrame:
    """Every round's claims and success criteria judged on ``here`` (rows as each round's notebook ranges over them),
    one row each: round, which list, the claim, the verdict unadjusted, its p, the verdict after Holm within the
    round's family (its claims and criteria) and after Holm over the whole study (every round's)."""
    out = []
    for rnd in rounds:
        for which, items, rows in (("claim", rnd.claims, list(rnd.variants)),
                                   ("criterion", rnd.success_criteria, list(rnd.rows))):
            for c in items:
                v = judge(c, here, rows, columns)
                out.append({"round": rnd.number, "proposal": rnd.proposal, "list": which, "claim": c.text,
                            "verdict here": v.status, "p": v.p, "n": v.n, "tests": v.tests, "budget": v.notes})
    frame = pd.DataFrame(out, columns=["round", "proposal", "list", "claim", "verdict here", "p", "n", "tests",
                                       "budget"])
    within = pd.Series(math.nan, index=frame.index)
    for _, g in frame.groupby("round", sort=False):
        within[g.index] = family_p(list(g["tests"]), list(g["verdict here"]))
    frame["p within round"] = within
    frame["p over study"] = family_p(list(frame["tests"]), list(frame["verdict here"]))
    frame["within round"] = [adjusted_status(s, q, n, notes=b) for s, q, n, b in
                             zip(frame["verdict here"], frame["p within round"], frame["n"], frame["budget"])]
    frame["over study"] = [adjusted_status(s, q, n, notes=b) for s, q, n, b in
                           zip(frame["verdict here"], frame["p over study"], frame["n"], frame["budget"])]
    return frame


def proposals_table(rounds: list, here: SeedEvidence, columns: list[str], family: pd.DataFrame | None = None
                    ) -> pd.DataFrame:
    """Each round's proposal judged on its own success criteria with the rows measured here (``rounds``: the
    ``params.Round`` of every round): the counts and outcome unadjusted, and the outcome after Holm within the
    round's family and over the study (``family``: ``study_family``, computed when not given)."""
    family = study_family(rounds, here, columns) if family is None else family
    out = []
    for rnd in rounds:
        mine = family[(family["round"] == rnd.number) & (family["list"] == "criterion")]
        statuses = list(mine["verdict here"])
        counts = summary_counts(statuses)
        out.append({"round": rnd.number, "proposal": rnd.proposal, "criteria": len(statuses), **counts,
                    "outcome": proposal_outcome(statuses),
                    f"outcome, {ADJUSTMENT} within the round": proposal_outcome(list(mine["within round"])),
                    f"outcome, {ADJUSTMENT} over the study": proposal_outcome(list(mine["over study"]))})
    return pd.DataFrame(out).set_index("round")
