"""Judge a seed document's claims: on the study's paired per-seed scores, and on the seed table's own numbers.

Verdict words (and only these):

    holds                          a clear difference the claimed way (for "no worse": the whole interval of the
                                   difference above −margin; for a threshold: the row's whole interval past it)
    contradicted                   a clear difference the other way
    not established with n seeds   no clear difference (or fewer than ``stats.MIN_SEEDS`` seeds)
    not testable at this scale     the claim cannot be put to these data: the change does not act on the cells it
                                   is about (a row is DeltaNet's runs there, or, for a comparison of two rows, the
                                   two are each other's runs bit for bit), or it states a MAD-scale number that its
                                   round file does not translate

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
range only over rows whose change acts there, and never over the null controls.

The seed tables are judged the same way with ``TableEvidence``: their point values, a difference being clear only
beyond the tables' own run-to-run noise (``stats.table_noise``, measured on the rows that are DeltaNet on Memorize);
a threshold on the point value.
"""
from __future__ import annotations

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


def not_established(n: int) -> str:
    return f"not established with {n} seeds"


VERDICT = re.compile(r"holds|contradicted|not established with \d+ seeds|not testable at this scale")
SEED_TABLE_SEEDS = 4  # the seed documents' tables are said to average four seeds


def is_verdict(word: str) -> bool:
    return VERDICT.fullmatch(word) is not None


# --- evidence: where the numbers come from ----------------------------------------------------------------

class SeedEvidence:
    """The study's scores: per-seed, paired. ``scores``: study.Study.scores; ``inert``: inert.cells; ``twins``:
    inert.twins (None: no pair of rows is known to share its runs)."""

    table = False

    def __init__(self, scores: pd.DataFrame, inert: pd.DataFrame, columns: list[str], twins: pd.DataFrame | None = None):
        self.scores, self.inert, self.columns = scores, inert, columns
        self.twins = pd.DataFrame(columns=inert_cells.TWIN_COLUMNS) if twins is None else twins
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

    def same_runs(self, a: str, b: str, column: str, setting: str) -> list[str]:
        """The task columns of this cell (the Average: every task measured) on which ``a``'s runs are ``b``'s bit
        for bit."""
        cols = self.columns if column == AVERAGE else [column]
        return [c for c in cols if inert_cells.same_runs(self.twins, a, b, c, setting)]

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
        per = ", ".join(signed(x) for x in d.per_seed)
        return f"n={d.n}, 95% interval [{signed(d.low)}, {signed(d.high)}] (per seed: {per})" if d.n >= 2 else (
            f"n={d.n} (per seed: {per})")

    def describe_level(self, lv: stats.Level) -> str:
        return f"n={lv.n}, 95% interval [{fmt(lv.low)}, {fmt(lv.high)}]" if lv.n >= 2 else f"n={lv.n}"


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
        return stats.Level(value, value, value, SEED_TABLE_SEEDS)

    def not_acting(self, v: str, column: str, setting: str) -> str | None:
        if (v, column) in self.mad_inert:
            return "its change cannot act on this task in MAD's runs either (one chunk at every MAD setting)"
        return None

    def same_runs(self, a: str, b: str, column: str, setting: str) -> list[str]:
        return []  # a table has no runs to compare

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


# --- verdicts ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Verdict:
    claim: Claim
    status: str  # one of the verdict words
    evidence: str
    judged_as: Claim | None = None  # the same-scale translation a threshold claim was judged as


def _where(column: str, setting: str) -> str:
    return column if setting == ALL_SETTINGS else f"{column} ({setting})"


_PAIR = {"beats": {"above": HOLDS, "below": CONTRADICTED}, "lags": {"below": HOLDS, "above": CONTRADICTED}}
_SYMBOL = {"at_least": "≥", "above": ">", "below": "<"}


def _pairwise(c: Claim, ev, column: str, setting: str) -> tuple[str, str]:
    a, b = c.variant, c.other
    where = _where(column, setting)
    for v in (a, b):
        why = ev.not_acting(v, column, setting)
        if why:
            return NOT_TESTABLE, f"{where}: the change of {v} does not act here ({why})"
    same = ev.same_runs(a, b, column, setting)
    if same and (column != AVERAGE or same == ev.columns):
        return NOT_TESTABLE, (f"{where}: {a}'s runs are {b}'s bit for bit here (the same test loss at every epoch of "
                              f"every run both have), so what tells the two rows apart does not act here")
    d = ev.difference(a, b, column, setting)
    if not (ev.measured(a, column, setting) and ev.measured(b, column, setting)):
        return not_established(0), f"{where}: not measured"
    nums = ev.pair_text(a, b, column, setting, d)
    if same:  # the Average, over tasks of which some cannot tell the two rows apart
        nums += (f"; on {join_words(same)} {a}'s runs are {b}'s bit for bit, so the difference comes from the other "
                 f"{len(ev.columns) - len(same)} tasks")
    if c.kind == "no_worse":
        status = {"within": HOLDS, "worse": CONTRADICTED}.get(d.beyond(c.margin), not_established(ev.seeds(d)))
        return status, f"{where}: {nums}, {ev.describe(d)}; no worse means a drop under {fmt(c.margin)}"
    status = _PAIR[c.kind].get(d.direction)
    upper, lower = (b, a) if c.kind == "beats" else (a, b)  # the claim needs `lower` clearly above `upper`...
    if status is None and _paired_mean(ev, upper, lower, column, setting) >= CEILING:  # ...where there is no room
        return NOT_TESTABLE, (f"{where}: {nums}, {ev.describe(d)}; {upper} is at the ceiling here (≥ {CEILING:g}), "
                              f"so {lower} could not come out clearly above it")
    return status or not_established(ev.seeds(d)), f"{where}: {nums}, {ev.describe(d)}"


def _paired_mean(ev, row: str, other: str, column: str, setting: str) -> float:
    """``row``'s mean over the seeds it shares with ``other`` (the seeds the paired difference is taken over; a
    seed table's point value)."""
    if ev.table:
        return ev.mean(row, column, setting)
    mine, theirs = ev.values(row, column, setting), ev.values(other, column, setting)
    common = set(mine) & set(theirs)
    return sum(mine[s] for s in common) / len(common) if common else math.nan


def _threshold_status(kind: str, lv: stats.Level, threshold: float, seeds: int) -> str:
    if not lv.enough:
        return not_established(seeds)
    past = {"at_least": lambda x: x >= threshold, "above": lambda x: x > threshold, "below": lambda x: x < threshold}[kind]
    if past(lv.low) and past(lv.high):
        return HOLDS
    if not past(lv.low) and not past(lv.high):
        return CONTRADICTED
    return not_established(seeds)


def _threshold(c: Claim, ev, column: str, setting: str) -> tuple[str, str]:
    where = _where(column, setting)
    why = ev.not_acting(c.variant, column, setting)
    if why:
        return NOT_TESTABLE, f"{where}: the change of {c.variant} does not act here ({why})"
    if not ev.measured(c.variant, column, setting):
        return not_established(0), f"{where}: {c.variant} not measured"
    lv = ev.level(c.variant, column, setting)
    status = _threshold_status(c.kind, lv, c.threshold, ev.seeds(lv))
    return status, (f"{where}: {c.variant} {fmt(lv.mean)} ({ev.describe_level(lv)}); the claim asks "
                    f"{_SYMBOL[c.kind]} {c.threshold:g}")


def candidates(ev, rows: list[str], column: str, setting: str) -> tuple[list[str], list[str]]:
    """(rows measured whose change acts on the cell and that are not null controls, rows left out)."""
    kept, out = [], []
    for r in rows:
        if not ev.measured(r, column, setting):
            continue
        (out if r in ev.controls or ev.not_acting(r, column, setting) else kept).append(r)
    return kept, out


def _best(c: Claim, ev, column: str, setting: str, rows: list[str]) -> tuple[str, str]:
    where = _where(column, setting)
    me = c.variant
    why = ev.not_acting(me, column, setting)
    if why:
        return NOT_TESTABLE, f"{where}: the change of {me} does not act here ({why})"
    present, left_out = candidates(ev, rows, column, setting)
    if me not in present:
        return not_established(0), f"{where}: {me} not measured"
    ranked = sorted(present, key=lambda r: -ev.mean(r, column, setting))
    head = f"{where}: {me} {fmt(ev.mean(me, column, setting))} is #{ranked.index(me) + 1} of {len(present)}"
    if ranked[0] != me:
        head += f" (top: {ranked[0]} {fmt(ev.mean(ranked[0], column, setting))})"
    if left_out:
        head += f"; left out, their change does not act here: {', '.join(left_out)}"
    diffs = {r: ev.difference(me, r, column, setting) for r in present if r != me}
    ahead = [r for r, d in diffs.items() if d.direction == "below"]
    if ahead:
        return CONTRADICTED, f"{head}; clearly ahead of it: {', '.join(f'{r} ({signed(-diffs[r].diff)})' for r in ahead)}"
    if all(d.direction == "above" for d in diffs.values()):
        return HOLDS, f"{head}, clearly ahead of every other row"
    unsure = [r for r, d in diffs.items() if d.direction != "above"]
    n = min(ev.seeds(diffs[r]) for r in unsure)
    return not_established(n), f"{head}; not clearly ahead of {len(unsure)} row(s): {', '.join(unsure[:4])}" + (
        ", …" if len(unsure) > 4 else "")


def _saturated(c: Claim, ev, column: str, setting: str, rows: list[str]) -> tuple[str, str]:
    where = _where(column, setting)
    present, left_out = candidates(ev, rows, column, setting)
    if not present:
        return not_established(0), f"{where}: not measured"
    status = {r: _threshold_status("at_least", ev.level(r, column, setting), c.threshold,
                                   ev.seeds(ev.level(r, column, setting))) for r in present}
    needed = math.ceil(c.fraction * len(present) - 1e-9)
    held = [r for r, s in status.items() if s == HOLDS]
    below = [r for r, s in status.items() if s == CONTRADICTED]
    clearly = "" if ev.table else "clearly "
    text = f"{where}: {len(held)} of {len(present)} rows {clearly}≥ {c.threshold:g} (the claim needs {needed})"
    if below:
        text += f"; {clearly}below: {', '.join(below)}"
    if left_out:
        text += f"; left out, their change does not act here: {', '.join(left_out)}"
    if len(held) >= needed:
        return HOLDS, text
    if len(below) > len(present) - needed:
        return CONTRADICTED, text
    unsure = [r for r, s in status.items() if s not in (HOLDS, CONTRADICTED)]
    return not_established(min(ev.seeds(ev.level(r, column, setting)) for r in unsure)), text


def _one(c: Claim, ev, column: str, rows: list[str]) -> tuple[str, str]:
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
    statuses = [s for s, _ in parts]
    if CONTRADICTED in statuses:
        return CONTRADICTED
    testable = [s for s in statuses if s != NOT_TESTABLE]
    if not testable:
        return NOT_TESTABLE
    if all(s == HOLDS for s in testable):
        return HOLDS
    return not_established(min(int(re.search(r"\d+", s).group()) for s in testable if s != HOLDS))


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
    parts = [_one(target, ev, col, rows) if col in columns + [AVERAGE] else (not_established(0), f"{col}: not measured")
             for col in targets]
    evidence = "; ".join(text for _, text in parts)
    status = combine(parts)
    if AVERAGE in targets and len(columns) < len(COLUMNS):  # a notebook run on some of the tasks
        evidence = (f"The Average here is over the {len(columns)} tasks measured ({join_words(columns)}), not MAD's "
                    f"{len(COLUMNS)}; {evidence}")
    left_out = [col for col, (s, _) in zip(targets, parts) if s == NOT_TESTABLE]
    if len(targets) > 1 and left_out and status != NOT_TESTABLE:
        evidence = (f"Judged on the {len(targets) - len(left_out)} of {len(targets)} tasks where it can be tested "
                    f"(not testable at this scale, so left out: {join_words(left_out)}); {evidence}")
    return Verdict(claim, status, evidence, judged_as)


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


def claims_table(claims: tuple[Claim, ...], here: SeedEvidence, there: TableEvidence, rows: list[str],
                 columns: list[str], seed_rows: set[str]) -> pd.DataFrame:
    """Each claim: the verdict here with its evidence, how a threshold was read at this scale, the verdict on the
    seed table's own numbers ("not in the seed table" when a row it names is not there), and its source."""
    out = []
    for claim in claims:
        v = judge(claim, here, rows, columns)
        named = [x for x in (claim.variant, claim.other) if x is not None]
        in_seed = all(x in seed_rows for x in named)
        t = judge(claim, there, [r for r in rows if r in seed_rows], columns) if in_seed else None
        out.append({"claim": claim.text, "verdict here": v.status, "evidence": v.evidence,
                    "read at this scale as": _translation_text(v.judged_as),
                    "on the seed's own table": t.status if t else "not in the seed table",
                    "seed evidence": t.evidence if t else "", "source": claim.source or ""})
    return pd.DataFrame(out, columns=["claim", "verdict here", "evidence", "read at this scale as",
                                      "on the seed's own table", "seed evidence", "source"])


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
    for s in statuses:
        keys["not established" if s.startswith("not established") else s] += 1
    return keys


def proposal_outcome(statuses: list[str]) -> str:
    """A proposal on its own success criteria, in the verdict words: "every testable criterion holds", "a
    criterion is contradicted", "no criterion contradicted, not all established", or "no criterion testable"."""
    testable = [s for s in statuses if s != NOT_TESTABLE]
    if CONTRADICTED in testable:
        return "a criterion is contradicted"
    if not testable:
        return "no criterion testable"
    if all(s == HOLDS for s in testable):
        return "every testable criterion holds"
    return "no criterion contradicted, not all established"


def words_in(statuses: list[str]) -> str:
    return join_words(f"{n} {w}" for w, n in summary_counts(statuses).items())


def proposals_table(rounds: list, here: SeedEvidence, columns: list[str]) -> pd.DataFrame:
    """Each round's proposal judged on its own success criteria with the rows measured here (``rounds``: the
    ``params.Round`` of every round)."""
    out = []
    for rnd in rounds:
        statuses = [judge(c, here, list(rnd.rows), columns).status for c in rnd.success_criteria]
        counts = summary_counts(statuses)
        out.append({"round": rnd.number, "proposal": rnd.proposal, "criteria": len(statuses), **counts,
                    "outcome": proposal_outcome(statuses)})
    return pd.DataFrame(out).set_index("round")
