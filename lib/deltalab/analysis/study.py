"""A round's data: its rows' runs read from the store (the grid trains them first: ``grid.ensure``), then the
per-seed scores everything else uses.

MAD's score (mad/analysis.py), per row, task and seed:

    best(setting, seed) = max over the lr × wd sweep of test accuracy
    score(task, seed)   = mean over the task's settings of best(setting, seed)
    Average(seed)       = mean over the task columns measured of score(task, seed)

A seed counts for a task only when every run the scale plans for it (each setting × lr × wd) is stored, and for the
Average only when every task counts: a missing run is reported as missing (``Study.incomplete``), never averaged
around. The rule is ``deltalab.analysis.accuracies``'s (one implementation for the notebooks and the CSV tables).

``scores`` holds all of it in one long frame, ``variant, column, setting, seed, acc``: a setting's score under its
setting id, a task's under ``setting = "all"``, the Average as ``column = "Average"``. Rows are variant ids.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import accuracies
from .. import tasks as T
from ..params import PARAMS_DIR, Round, Scale, available_rounds, load_round
from ..runs import resolve_tasks, row_specs
from ..store import Store
from . import inert as inert_cells
from .names import ALL_SETTINGS, AVERAGE, display_name

SEED_TABLES_DIR = PARAMS_DIR / "seed_tables"  # the seed documents' tables, one CSV per document
SCORE_COLUMNS = ["variant", "column", "setting", "seed", "acc"]


# --- the seed documents' tables -----------------------------------------------------------------------

def seed_documents() -> list[str]:
    """The seed documents whose table the repository carries (``params/seed_tables/<stem>.csv``)."""
    return sorted(f"{p.stem}.txt" for p in SEED_TABLES_DIR.glob("*.csv"))


def seed_table_path(document: str) -> Path:
    """``params/seed_tables/<document stem>.csv``, with a clear error when the repository has no such table."""
    path = SEED_TABLES_DIR / f"{Path(document).stem}.csv"
    if not path.exists():
        raise FileNotFoundError(f"no table for seed document {document!r}: {path} does not exist; the seed "
                                f"documents with a table in params/seed_tables: {', '.join(seed_documents())}")
    return path


def seed_table(document: str) -> pd.DataFrame:
    """A seed document's ``accuracies_df`` as committed (``accuracies.read_seed_table``), rows under their short
    names."""
    return accuracies.read_seed_table(seed_table_path(document)).rename(index=display_name)


def proposals() -> dict[int, str]:
    """Round number → the variant its seed document proposes."""
    return {r.number: r.proposal for r in (load_round(name) for name in available_rounds())}


def concluding_round() -> int:
    """The number of the round whose file sets ``conclusion: true`` (the one that trains every variant)."""
    last = [r.number for r in (load_round(name) for name in available_rounds()) if r.conclusion]
    if len(last) != 1:
        raise ValueError(f"exactly one round file must set conclusion: true; rounds that do: {last or 'none'}")
    return last[0]


# --- per-seed scores ----------------------------------------------------------------------------------

def setting_of(task: str, setting: dict | None) -> str:
    """The setting id of a task's setting, as the run records name it ("baseline" for MAD's baseline)."""
    return T.setting_id(task, setting) if setting else "baseline"


def expected_settings(scale: Scale, tasks: list[str]) -> dict[str, list[str]]:
    """Task column → the setting ids the scale measures it on, in the tables' column order."""
    by_column = {T.TASKS[t].column: [setting_of(t, s) for s in scale.tasks[t].settings] for t in tasks}
    return {c: by_column[c] for c in T.COLUMNS if c in by_column}


def seed_scores(runs: pd.DataFrame, expected: dict[str, set[tuple[str, float, float]]]
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(scores, incomplete)`` from one row per run (``accuracies.records_frame``) and the runs a seed needs per task
    column (``accuracies.expected_runs(scale, tasks)``: each setting × lr × wd): ``scores`` as the module docstring
    says; ``incomplete``: the (variant, column, seed) that lack a planned run, with the runs they lack. Which seeds
    count is decided by ``deltalab.analysis.accuracies`` (``setting_scores``, ``seed_coverage``, ``task_scores``), the same rule
    as the study's CSV tables."""
    empty_missing = pd.DataFrame(columns=["variant", "column", "seed", "missing"])
    if runs.empty:
        return pd.DataFrame(columns=SCORE_COLUMNS), empty_missing
    runs = accuracies.planned(runs, expected)
    best = accuracies.setting_scores(runs, expected=expected).rename(columns={"test_acc": "acc"})
    tasks = accuracies.task_scores(runs, expected=expected).rename(columns={"test_acc": "acc"})
    tasks = tasks.assign(setting=ALL_SETTINGS)[SCORE_COLUMNS]
    averages = []
    for (variant, seed), g in tasks.groupby(["variant", "seed"], sort=False):
        if set(g["column"]) == set(expected):
            averages.append({"variant": variant, "column": AVERAGE, "setting": ALL_SETTINGS, "seed": seed,
                             "acc": float(g["acc"].mean())})
    scores = pd.concat([best[SCORE_COLUMNS], tasks, pd.DataFrame(averages, columns=SCORE_COLUMNS)],
                       ignore_index=True)
    scores["seed"] = scores["seed"].astype(int)
    cover = accuracies.seed_coverage(runs, expected)
    missing = cover[~cover["complete"]].rename(columns={"lacks": "missing"})
    return scores, (missing[["variant", "column", "seed", "missing"]].reset_index(drop=True) if not missing.empty
                    else empty_missing)


def per_seed(scores: pd.DataFrame, variant: str, column: str, setting: str = ALL_SETTINGS) -> dict[int, float]:
    """``seed → score`` of one row on one task (or one setting of it)."""
    sel = scores[(scores["variant"] == variant) & (scores["column"] == column) & (scores["setting"] == setting)]
    return dict(zip(sel["seed"].astype(int), sel["acc"].astype(float)))


# --- a round --------------------------------------------------------------------------------------------

@dataclass
class Study:
    round: Round
    scale: Scale
    columns: list[str]  # the task columns measured (all six unless ``tasks`` restricted them)
    settings: dict[str, list[str]]  # column → its setting ids at this scale
    records: list[dict]
    runs: pd.DataFrame  # accuracies.records_frame(records)
    scores: pd.DataFrame  # variant, column, setting, seed, acc (see the module docstring)
    incomplete: pd.DataFrame  # variant, column, seed, missing: seeds not counted for a task
    inert: pd.DataFrame  # inert.cells(records, ...): where the change does not act
    seed: pd.DataFrame  # the seed document's table, as reported (short names)
    rows: list[str] = field(default_factory=list)  # every row trained (the round's + every variant for the conclusion)
    twins: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=inert_cells.TWIN_COLUMNS))  # inert.twins

    @property
    def tag(self) -> str:
        """"at scale `cpu`" (with the tasks kept when they were restricted)."""
        extra = "" if len(self.columns) == len(T.COLUMNS) else f", {len(self.columns)} of {len(T.COLUMNS)} tasks"
        return f"at scale `{self.scale.name}`{extra}"

    @property
    def round_rows(self) -> list[str]:
        """The seed table's rows and the proposal."""
        return list(self.round.rows)

    @property
    def table_rows(self) -> list[str]:
        """The seed table's rows (what its "best" and "saturated" claims range over)."""
        return list(self.round.variants)


def round_rows(rnd: Round, scale: Scale) -> list[str]:
    """Every row of the round: its rows and proposal and, for the concluding round, every other variant of the
    scale. A row the scale's grid does not have is refused (e.g. round 6's rows at the archived cpu-v1)."""
    names = list(rnd.rows) + ([v for v in scale.rows() if v not in rnd.rows] if rnd.conclusion else [])
    outside = [n for n in names if n not in scale.rows()]
    if outside:  # e.g. round 6's rows at the archived cpu-v1, whose grid never had them: never train them there
        raise ValueError(f"round {rnd.number}'s rows {', '.join(outside)} are not part of scale {scale.name!r} "
                         f"(its `variants`: {', '.join(scale.rows())}); run the round at a scale whose grid has them")
    return names


def stored_runs(store: Store, rows: list[str], scale: Scale, tasks: list[str], seeds=None) -> list[dict]:
    """The stored records of the runs the grid plans for ``rows`` (variant ids) on ``tasks`` at ``seeds`` (default:
    each row's ``Scale.seeds_for``), as ``grid.ensure`` planned them (``runs.row_specs``); a run not stored is
    left out (the scores say which seeds it leaves incomplete)."""
    records = []
    for row in rows:  # in the grid's order: a row's runs at its first seed first (``grid.plan``)
        specs = sorted(row_specs(row, scale, tasks, seeds or scale.seeds_for(row)), key=lambda spec: spec.seed)
        records += [r for spec in specs if (r := store.get(spec)) is not None]
    return records


def read_round(rnd: Round, scale: Scale, store: Store, tasks=None, seeds=None) -> Study:
    """The Study of every row of the round (``round_rows``) from ``store``, at the scale's seeds for each
    (``Scale.seeds_for``) or ``seeds``: what ``grid.ensure(round_rows(rnd, scale), ...)`` trained or reused."""
    task_list = resolve_tasks(tasks, scale)
    names = round_rows(rnd, scale)
    records = stored_runs(store, names, scale, task_list, seeds)
    return assemble(rnd, scale, task_list, records, seed_table(rnd.seed_document), names)


def assemble(rnd: Round, scale: Scale, task_list: list[str], records: list[dict], seed: pd.DataFrame,
             names: list[str]) -> Study:
    """The Study of already collected records."""
    runs = accuracies.records_frame(records)
    columns = [c for c in T.COLUMNS if c in {T.TASKS[t].column for t in task_list}]
    expected = expected_settings(scale, task_list)
    scores, incomplete = seed_scores(runs, accuracies.expected_runs(scale, task_list))
    inert = inert_cells.cells(records, expected, scale)
    return Study(rnd, scale, columns, expected, records, runs, scores, incomplete, inert, seed, names,
                 twins=inert_cells.twins(records, expected))


# --- learning curves ------------------------------------------------------------------------------------

CURVE_COLUMNS = ["variant", "column", "setting", "seed", "epoch", "acc", "evaluated"]


def evaluated_epochs(scale: Scale, task: str) -> list[int]:
    """The epochs at which a run of ``task`` is evaluated at this scale (every ``eval_every``, and the last)."""
    last = scale.tasks[task].epochs
    return [e for e in range(1, last + 1) if e % scale.eval_every == 0 or e == last]


def blind_levels(scale: Scale) -> dict[tuple[str, str], float]:
    """(task column, setting id) → the accuracy of an input-blind model on the scale's test set
    (``tasks.blind_accuracy``): the level near which a row that has not begun the setting stays (``inert.learning``)."""
    return {(T.TASKS[t].column, setting_of(t, s)): T.blind_accuracy(t, s, scale.num_test_examples)
            for t, budget in scale.tasks.items() for s in budget.settings}


def schedule(scale: Scale) -> dict[str, list[int]]:
    """Task → its evaluated epochs at this scale (``evaluated_epochs``)."""
    return {t: evaluated_epochs(scale, t) for t in scale.tasks}


def curves(records: list[dict], names: list[str], schedule: dict[str, list[int]]) -> pd.DataFrame:
    """Test accuracy per evaluated epoch of the runs MAD's score uses (the best lr × wd per setting and seed) for
    the named rows. A run that stopped early (it reached the scale's early-stop accuracy) is carried forward at
    its last value over the rest of its task's schedule (``schedule[task]``: ``evaluated_epochs``), so a mean over
    seeds at an epoch always counts every seed; ``evaluated`` is False on those carried points."""
    best: dict[tuple, dict] = {}
    for rec in records:
        sp = rec["spec"]
        if sp["variant"] not in names:
            continue
        key = (sp["variant"], sp["task"], setting_of(sp["task"], sp["setting"]), sp["seed"])
        if key not in best or rec["metrics"]["test_acc"] > best[key]["metrics"]["test_acc"]:
            best[key] = rec
    rows = []
    for (variant, task, setting, seed), rec in best.items():
        points = sorted((int(p["epoch"]), float(p["test_acc"])) for p in rec["curve"])
        for epoch, acc in points:
            rows.append((variant, T.TASKS[task].column, setting, seed, epoch, acc, True))
        if points and rec.get("early_stopped"):
            last_epoch, last = points[-1]
            rows += [(variant, T.TASKS[task].column, setting, seed, e, last, False)
                     for e in schedule[task] if e > last_epoch]
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def learning_of(study: Study) -> pd.DataFrame:
    """``inert.learning`` of every row of ``study`` against the scale's input-blind levels: the states the
    notebook's tables, figures and verdicts use."""
    return inert_cells.learning(curves(study.records, study.rows, schedule(study.scale)), study.settings,
                                blind=blind_levels(study.scale))


def stored_study(rnd: Round | str, scale: Scale, store: Store) -> Study:
    """The round's rows as ``scale``'s store holds them (an archived scale: nothing is trained, a row the scale never
    ran is simply absent): a Study of what is there."""
    rnd = load_round(rnd) if isinstance(rnd, (str, Path)) else rnd
    names = [n for n in rnd.rows if n in scale.rows()]
    records = store.records(scale, variants=names)
    return assemble(rnd, scale, list(scale.tasks), records, seed_table(rnd.seed_document), names)
