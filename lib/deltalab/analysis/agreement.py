"""How well a reduced scale predicts MAD's full protocol: its rows ranked against the seed table's.

A reduced scale (``cpu``) is a screen: worth running only if its verdicts predict the full protocol's. The full
protocol's numbers are the latest seed table (document 000: 25 rows, MAD's protocol, four seeds). Per task, as its
record in the task registry says (``tasks.Task.agreement``):

* **Ranked tasks** (Compress, Fuzzy Recall, Memorize, Selective Copy): Spearman's ρ between the scale's row means
  and the seed table's, with a 95% bootstrap interval (rows resampled in pairs, ``stats.spearman_interval``).
* **Classified tasks** (Context Recall, Noisy Recall): in the seed table 19-20 of 25 rows score ≥ 0.99, so only
  *which rows fail* can agree. A row *learns* the task in the seed table when it scores at least ``SOLVED`` (0.95);
  at the scale, when it is *not clearly below DeltaNet*: the paired difference to DeltaNet is not entirely below
  ``−(1 − SOLVED)`` (the same-scale reading of "at least 0.95" where DeltaNet is at 1.0: a drop of more than 0.05
  from DeltaNet). With fewer than ``MIN_SEEDS`` seeds the point difference decides (a pilot). Agreement is the
  fraction of rows classified alike, with its exact binomial 95% interval (``stats.share_interval``).

  **Beside a no-skill baseline.** Most rows learn both tasks in the seed table, so a high share alike can be had
  for nothing: the *constant rule* (every row in the seed table's majority class, e.g. "every row learns") scores
  that class's share (``constant``). Cohen's κ corrects the share for chance (``kappa``):

      κ = (p_o − p_e) / (1 − p_e),   p_e = p_learn(scale)·p_learn(table) + p_fail(scale)·p_fail(table)

  (p_o: the share alike; p_e: the share two classifications with these class shares would give by chance). κ = 1
  is every row alike, 0 no better than chance, and the constant rule scores κ = 0 whatever its share. κ is
  undefined when both sides put every row in one class (p_e = 1): it is then said so, never shown as a number.
  Its 95% interval is a percentile bootstrap over rows (``KAPPA_RESAMPLES`` resamples, rows drawn with both
  classifications), leaving out the resamples in which it is undefined; how many failing rows of the seed table
  the scale finds is shown beside it, since κ rests on them.

Agreement is reported over every matched row and over the **held-out** rows: those not in the scale's
pre-registered ``calibration_rows`` (``params/scales/<scale>.yaml``), on which the scale was never tuned, against
the targets the scale file sets for them (``agreement_targets``: a floor on ρ, or on the share classified alike).

**The ceiling.** The seed table is itself noisy (``noise_sd``: the spread of cells that are one model, see
``claims.seed_table_noise``), so no proxy can reach ρ = 1. ``ceiling`` is the expected ρ between a noise-free
proxy and a table as noisy as the seed table: the truth is taken to be the seed table with the rows that are one
model on a task (``same_model``: the change cannot act there in MAD's runs) tied at their mean, and the table is
simulated as that truth plus Gaussian noise of ``noise_sd`` per cell.

**The proxy's own reliability.** ``reliability`` asks the converse: how well the scale reproduces its *own* ranking
across seeds (split-half: ρ between the row means over one half of the seeds and over the other, averaged over the
splits, stepped up to every seed by Spearman-Brown where it is positive). Where it is high and ρ with the seed table
stays well below the ceiling, the gap is what the proxy measures, not its noise: more seeds would not close it, a
different protocol might.
"""
from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from collections.abc import Mapping

from ..params import Scale
from ..tasks import TASKS
from . import stats
from .names import BASELINE, BASELINES, REFERENCE

RANKED = tuple(sorted(t.column for t in TASKS.values() if t.agreement == "ranked"))  # the task registry's judgement
CLASSIFIED = tuple(sorted(t.column for t in TASKS.values() if t.agreement == "classified"))
SOLVED = 0.95  # the seed table's "learns the task" (MAD scale); its same-scale reading: not below DeltaNet by more
MARGIN = round(1 - SOLVED, 10)  # ... than this
FINISHED = 0.01  # issue #31: a baseline that has learned a setting has finished it when its mean curve gains less
# than this in its last epoch (or peaks before it); ``baselines`` gives the whole rule
N_SIM = 2000
RELIABLE = 0.8  # a scale whose own split-half reliability reaches this ranks its rows consistently across seeds
COLUMNS = ["task", "measure", "rows", "n", "value", "low", "high", "ceiling", "reliability", "target"]
KAPPA_COLUMNS = ["constant", "constant_rule", "kappa", "kappa_low", "kappa_high", "failing", "failing_found"]
KAPPA_RESAMPLES = 2000  # bootstrap resamples of κ over rows (a fixed generator: the interval is reproducible)


def ceiling(truth: pd.Series, noise_sd: float, seed: int = 0) -> float:
    """Expected ρ between ``truth`` (a noise-free proxy) and ``truth`` plus N(0, noise_sd²) per cell."""
    t = np.asarray(truth, float)
    if len(t) < 4 or not noise_sd or math.isnan(noise_sd):
        return math.nan
    if np.ptp(t) == 0:
        return 0.0
    sims = t + np.random.default_rng(seed).normal(0.0, noise_sd, size=(N_SIM, len(t)))
    return float(np.mean(stats.spearman(np.broadcast_to(t, sims.shape), sims)))


def reliability(per_seed: dict[str, dict[int, float]], rows) -> float:
    """The scale's split-half reliability over ``rows`` (module docstring): the seeds every row has, split into
    halves in every way, ρ between the halves' row means averaged over the splits, stepped up to all of them
    (Spearman-Brown: 2r / (1 + r)). A negative mean split-half ρ (the seeds disagree on the order) is returned as
    it is: the step-up assumes r ≥ 0 and would push it below −1. NaN with fewer than two common seeds or three
    rows."""
    rows = list(rows)
    seeds = sorted(set.intersection(*(set(per_seed[r]) for r in rows))) if rows else []
    if len(seeds) < 2 or len(rows) < 3:
        return math.nan
    table = np.array([[per_seed[r][s] for s in seeds] for r in rows])
    halves = [h for h in itertools.combinations(range(len(seeds)), len(seeds) // 2)
              if len(seeds) % 2 or 0 in h]  # an even split and its mirror are one split
    rhos = [float(stats.spearman(table[:, list(h)].mean(1), np.delete(table, list(h), axis=1).mean(1)))
            for h in halves]
    r = float(np.mean(rhos))
    return 2 * r / (1 + r) if r >= 0 else r


def tied_truth(seed_column: pd.Series, same_model: set[str]) -> pd.Series:
    """The seed table's column with the rows in ``same_model`` (one model on this task) set to their mean."""
    truth = seed_column.astype(float).copy()
    tied = [r for r in truth.index if r in same_model]
    if len(tied) >= 2:
        truth[tied] = truth[tied].mean()
    return truth


def classes(per_seed: dict[str, dict[int, float]], seed_column: pd.Series) -> pd.DataFrame:
    """Per row of ``seed_column``: whether it learns the task at the scale (``here``) and in the seed table
    (``there``), as the module docstring classifies them."""
    base = per_seed.get(BASELINE, {})
    out = {}
    for row in seed_column.index:
        learns_there = float(seed_column[row]) >= SOLVED
        if row == BASELINE:
            learns_here = True
        else:
            d = stats.paired(per_seed[row], base)
            clearly_below = d.beyond(MARGIN) == "worse" if d.enough else d.diff < -MARGIN
            learns_here = not clearly_below
        out[row] = dict(here=learns_here, there=learns_there)
    return pd.DataFrame.from_dict(out, orient="index", columns=["here", "there"]).astype(bool)


def classify(per_seed: dict[str, dict[int, float]], seed_column: pd.Series) -> tuple[float, tuple[str, ...]]:
    """Fraction of rows classified alike (module docstring), and the rows that are not."""
    c = classes(per_seed, seed_column)
    return float((c["here"] == c["there"]).mean()), tuple(c.index[c["here"] != c["there"]])


def kappa(here, there) -> float:
    """Cohen's κ of two yes/no classifications of the same rows (module docstring), along the last axis; NaN where
    both put every row in one class (p_e = 1: κ undefined)."""
    here, there = np.asarray(here, bool), np.asarray(there, bool)
    p_o = (here == there).mean(axis=-1)
    p_e = here.mean(axis=-1) * there.mean(axis=-1) + (~here).mean(axis=-1) * (~there).mean(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(p_e < 1, (p_o - p_e) / (1 - p_e), np.nan)[()]


def kappa_interval(here, there, seed: int = 0) -> tuple[float, float, float]:
    """(κ, low, high): ``kappa`` and its 95% percentile bootstrap interval, rows resampled with both
    classifications; resamples in which κ is undefined are left out (all NaN when every one is)."""
    here, there = np.asarray(here, bool), np.asarray(there, bool)
    point = float(kappa(here, there))
    draws = np.random.default_rng(seed).integers(0, len(here), size=(KAPPA_RESAMPLES, len(here)))
    resampled = kappa(here[draws], there[draws])
    defined = resampled[~np.isnan(resampled)]
    if math.isnan(point) or not len(defined):
        return point, math.nan, math.nan
    tail = (1 - stats.LEVEL) / 2 * 100
    return point, float(np.percentile(defined, tail)), float(np.percentile(defined, 100 - tail))


def no_skill(c: pd.DataFrame, boot_seed: int = 0) -> dict:
    """The classification ``c`` (``classes``) beside a no-skill baseline: ``KAPPA_COLUMNS``. ``constant``: the share
    the constant rule scores (every row in the seed table's majority class, ``constant_rule`` naming it; ties go
    to "every row learns"); ``kappa`` with its interval (``kappa_interval``); ``failing``: the rows the seed table
    has failing, ``failing_found``: how many of them the scale classifies failing too."""
    learns = float(c["there"].mean())
    k, lo, hi = kappa_interval(c["here"].to_numpy(), c["there"].to_numpy(), boot_seed)
    return dict(constant=max(learns, 1 - learns),
                constant_rule="every row learns" if learns >= 0.5 else "every row fails",
                kappa=k, kappa_low=lo, kappa_high=hi, failing=int((~c["there"]).sum()),
                failing_found=int((~c["there"] & ~c["here"]).sum()))


def seed_scores_of(task_scores: pd.DataFrame, column: str) -> dict[str, dict[int, float]]:
    """Row → seed → score on task ``column``, from the study's long frame (its task scores, ``setting == "all"``).
    """
    here = task_scores[task_scores["column"] == column]
    return {v: dict(zip(g["seed"].astype(int), g["acc"].astype(float))) for v, g in here.groupby("variant")}


def column_targets(targets: Mapping[str, float] | None) -> dict[str, float]:
    """A scale's ``agreement_targets`` (task → target) keyed by the tasks' table columns."""
    return {TASKS[task].column: value for task, value in (targets or {}).items()}


def agreement(scores: pd.DataFrame, seed: pd.DataFrame, calibration: tuple[str, ...] | list[str],
              noise_sd: float, same_model: dict[str, set[str]] | None = None, boot_seed: int = 0,
              targets: Mapping[str, float] | None = None) -> pd.DataFrame:
    """One row per task × row set ("all"; "held-out" and "calibration" when the scale names its ``calibration``
    rows): ``COLUMNS``, ``disagree`` (the rows classified otherwise) and, for the classified tasks, the no-skill
    baseline beside the share alike (``KAPPA_COLUMNS``, ``no_skill``). ``scores``: the study's long frame (``variant,
    column, setting, seed, acc``; task scores under ``setting == "all"``); ``seed``: the seed table (short names);
    ``same_model``: task column → the rows that are one model there (tied in the ceiling's truth); ``targets``: the
    scale's ``agreement_targets`` (task → the held-out rows' target; a task without one gets NaN)."""
    same_model = same_model or {}
    target_of = column_targets(targets)
    task_scores = scores[scores["setting"] == "all"]
    out = []
    for column in [c for c in (*RANKED, *CLASSIFIED) if c in set(task_scores["column"]) and c in seed.columns]:
        per_seed = seed_scores_of(task_scores, column)
        matched = [r for r in seed.index if r in per_seed]
        sets = [("all", matched)] + ([("held-out", [r for r in matched if r not in set(calibration)]),
                                      ("calibration", [r for r in matched if r in set(calibration)])]
                                     if calibration else [])
        for label, rows in sets:
            if len(rows) < 2:
                continue
            col = seed.loc[rows, column]
            if column in RANKED:
                means = np.array([np.mean(list(per_seed[r].values())) for r in rows])
                rho, lo, hi = stats.spearman_interval(means, col.to_numpy(), seed=boot_seed)
                ceil = ceiling(tied_truth(col, same_model.get(column, set())), noise_sd, seed=boot_seed)
                out.append(dict(task=column, measure="spearman", rows=label, n=len(rows), value=rho, low=lo, high=hi,
                                ceiling=ceil, reliability=reliability(per_seed, rows),
                                target=target_of.get(column, math.nan) if label == "held-out" else math.nan))
            else:
                c = classes({r: per_seed[r] for r in set(rows) | {BASELINE} if r in per_seed}, col)
                differ = c.index[c["here"] != c["there"]]
                lo, hi = stats.share_interval(len(rows) - len(differ), len(rows))
                out.append(dict(task=column, measure="classified alike", rows=label, n=len(rows),
                                value=float((c["here"] == c["there"]).mean()), low=lo, high=hi, ceiling=math.nan,
                                reliability=math.nan,
                                target=target_of.get(column, math.nan) if label == "held-out" else math.nan,
                                disagree=", ".join(differ), **no_skill(c, boot_seed)))
    frame = pd.DataFrame(out)
    for name in ("disagree", "constant_rule"):
        if name not in frame:
            frame[name] = ""
    for name in set(KAPPA_COLUMNS) - set(frame.columns):
        frame[name] = math.nan
    return frame.fillna({"disagree": "", "constant_rule": ""})


BASELINE_COLUMNS = ["row", "column", "setting", "epochs", "best_epoch", "first", "last", "last_gain", "learned",
                    "finished"]


def baselines(learning: pd.DataFrame, early_stop: float | None = None) -> pd.DataFrame:
    """Whether each baseline finished learning each setting within the budget, read off ``learning``
    (``inert.learning`` of ``study.curves``: the mean curve over seeds, an early-stopped run carried forward at its
    last value). The curve must have *learned* the setting (the analysis's not-learned rule: a flat curve has not
    finished, it has not begun) and then either peak before its last epoch or gain less than ``FINISHED`` in it;
    or it ends at the scale's ``early_stop`` accuracy (every seed stopped), or within ``FINISHED`` of perfect
    accuracy: less is left to gain than the plateau rule asks of a last epoch (a curve at 0.998 whose seeds stopped
    just short of ``early_stop``). One row per baseline × column × setting: ``BASELINE_COLUMNS`` (``epochs``: the
    last epoch)."""
    from .names import ALL_SETTINGS

    mine = learning[learning["variant"].isin(BASELINES) & (learning["setting"] != ALL_SETTINGS)]
    mine = mine.sort_values(["variant", "column", "setting"])
    stopped = (mine["last"] >= early_stop) if early_stop is not None else False
    plateau = mine["learned"] & ((mine["best_epoch"] < mine["last_epoch"]) | (mine["last_gain"] < FINISHED))
    finished = stopped | (1 - mine["last"] < FINISHED) | plateau
    out = mine.assign(row=mine["variant"], epochs=mine["last_epoch"].astype(int),
                      best_epoch=mine["best_epoch"].astype(int), learned=mine["learned"].astype(bool),
                      finished=finished.astype(bool))
    return out[BASELINE_COLUMNS].reset_index(drop=True)


def memorize_order(scores: pd.DataFrame) -> stats.Difference:
    """Gated DeltaNet − DeltaNet on Memorize, paired per seed (every published MAD table has it above)."""
    from .study import per_seed

    return stats.paired(per_seed(scores, REFERENCE, "Memorize"), per_seed(scores, BASELINE, "Memorize"))


def baselines_markdown(finished: pd.DataFrame, order: stats.Difference, scale: str) -> str:
    """The two baseline targets in words: the settings a baseline has not finished, and the Memorize order."""
    from .names import fmt, signed

    if finished.empty:
        return f"No baseline curve is stored at `{scale}`: the baseline targets are not measured."

    def why(r) -> str:
        if not r["learned"]:
            return (f"{r['row']} has not begun {r['column']} {r['setting']} ({fmt(r['first'])} → {fmt(r['last'])} "
                    f"over {r['epochs']} epochs)")
        return (f"{r['row']} gains {signed(r['last_gain'])} in its last epoch of {r['column']} {r['setting']} "
                f"(epoch {r['epochs']}, mean {fmt(r['last'])})")

    open_ = finished[~finished["finished"]]
    n_settings = finished[["column", "setting"]].drop_duplicates().shape[0]
    rule = (f"finished: the mean curve over seeds ends at the early-stop accuracy or within {FINISHED:g} of perfect "
            f"accuracy, or it has learned the setting and peaks before its last epoch or gains less than {FINISHED:g} "
            "in it")
    every = f"all {n_settings} settings" if n_settings > 1 else "the one setting"
    done = (f"both baselines finish learning {every} ({rule})" if open_.empty else
            f"{len(open_)} of {len(finished)} baseline × setting cells are not finished ({rule}): "
            + "; ".join(why(r) for _, r in open_.iterrows()))
    if order.n == 0:
        memo = "Gated DeltaNet against DeltaNet on Memorize: not measured"
    else:
        wins = sum(d > 0 for d in order.per_seed)
        where = "above" if order.diff > 0 else "not above"
        memo = (f"Gated DeltaNet is {where} DeltaNet on Memorize ({signed(order.diff)} on average, ahead on {wins} "
                f"of {order.n} seeds" + (f", 95% paired interval [{signed(order.low)}, {signed(order.high)}])"
                                          if order.enough else ")"))
    return f"Baselines at `{scale}`: {done}. {memo}."


def full_protocol_document() -> str:
    """The seed document whose table is the full protocol's reference: the concluding round's (the latest table)."""
    from ..params import load_round
    from .study import concluding_round

    return load_round(f"round_{concluding_round()}").seed_document


@dataclass(frozen=True)
class StoredRuns:
    """A scale (loaded), its stored records (every row its grid covers) and their per-seed scores: read once,
    then given to ``scale_agreement`` and ``scale_baselines``."""

    scale: Scale
    records: list
    scores: pd.DataFrame


def _seed_table() -> pd.DataFrame:
    from .study import seed_table

    return seed_table(full_protocol_document())


def stored_runs(scale: Scale | str, store=None) -> StoredRuns:
    """The stored runs of ``scale`` in ``store`` (default: the project's). ``scale``: the loaded Scale a command
    resolved, or a name / scale file's path read from data (a pilot's, an archived version's), loaded here."""
    from . import accuracies
    from ..params import load_scale
    from ..store import Store
    from .study import seed_scores

    sc = scale if isinstance(scale, Scale) else load_scale(scale)
    records = (store or Store()).records(sc, variants=sc.rows())
    scores, _ = seed_scores(accuracies.records_frame(records), accuracies.expected_runs(sc, list(sc.tasks)))
    return StoredRuns(sc, records, scores)


def best_of(runs: StoredRuns, other: StoredRuns) -> tuple[dict[str, StoredRuns], dict[str, str]]:
    """A two-point learning-rate sweep read off two scales' stored runs, as MAD reads its sweep: per row, task and
    seed the better of the two runs. Only the tasks the two scales train alike but for the learning rate or weight
    decay (same examples, epochs, batch and settings; another lr × wd grid) form a sweep; the others are left out,
    each with the reason (the second value), never mixed across budgets. The first value gives, on the same rows,
    tasks and seeds, each scale alone (under its name) and the sweep ("best of both"); each keeps ``runs``' scale
    and records."""
    from ..tasks import TASKS

    left_out, columns = {}, []
    for task, budget in runs.scale.tasks.items():
        there = other.scale.tasks.get(task)
        if there is None:
            left_out[TASKS[task].column] = f"{other.scale.name} does not train it"
        elif replace(budget, lrs=()) != replace(there, lrs=()):
            left_out[TASKS[task].column] = f"{other.scale.name} trains it on another budget"
        elif (runs.scale.lrs_for(task), runs.scale.wds) == (other.scale.lrs_for(task), other.scale.wds):
            left_out[TASKS[task].column] = f"{other.scale.name} trains it at the same learning rate and weight decay"
        else:
            columns.append(TASKS[task].column)
    key = ["variant", "column", "setting", "seed"]
    a, b = (r.scores[r.scores["column"].isin(columns)] for r in (runs, other))
    both = a.merge(b, on=key, suffixes=("", "_other"))
    alone = {runs.scale.name: both[[*key, "acc"]],
             other.scale.name: both[[*key, "acc_other"]].rename(columns={"acc_other": "acc"}),
             "best of both": both.assign(acc=both[["acc", "acc_other"]].max(axis=1))[[*key, "acc"]]}
    return {name: replace(runs, scores=f.reset_index(drop=True)) for name, f in alone.items()}, left_out


def scale_agreement(runs: StoredRuns, boot_seed: int = 0, per_setting: bool = False,
                    calibration: tuple[str, ...] | None = None,
                    targets: Mapping[str, float] | None = None) -> pd.DataFrame:
    """``agreement`` of a scale's stored runs (``stored_runs``) with the full protocol's seed table, held
    out from the scale's ``calibration_rows``; the seed table's noise and one-model rows as ``claims`` measures
    them. Trains nothing; a row or seed without every planned run of a task is left out of that task.
    ``calibration``: the rows held out from (default: the scale's own ``calibration_rows``), and ``targets`` the
    held-out rows' targets (default: the scale's own ``agreement_targets``; with another scale's calibration rows,
    that scale's); ``per_setting``: each of the scale's settings judged on its own (a ``setting`` column says
    which), as if it were the task's only one."""
    from . import inert as inert_cells
    from .study import expected_settings

    sc, scores = runs.scale, runs.scores
    inert = inert_cells.cells(runs.records, expected_settings(sc, list(sc.tasks)), sc)
    seed = _seed_table()
    calibration = sc.calibration_rows if calibration is None else tuple(calibration)
    targets = sc.agreement_targets if targets is None else targets
    if not per_setting:
        return with_seed_table(scores, inert, seed, calibration, boot_seed, targets=targets)
    frames = [with_seed_table(g.assign(setting="all"), inert, seed, calibration, boot_seed,
                              targets=targets).assign(setting=s)
              for s, g in scores[scores["setting"] != "all"].groupby("setting")]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*COLUMNS, "setting"])


def archived_versions(name: str) -> list[str]:
    """The archived versions of scale ``name`` as ``tools/archive_scale.py`` leaves them (``<name>-v1``,
    ``<name>-v2``, … in params/scales), oldest first."""
    from ..params import available_scales

    pattern = re.compile(rf"{re.escape(name)}-v(\d+)")
    found = {s: pattern.fullmatch(s) for s in available_scales()}
    return sorted((s for s, m in found.items() if m), key=lambda s: int(found[s].group(1)))


VERSION_COLUMNS = ["task", "measure", "version", "seeds", "n", "value", "low", "high", "diff", "diff_low",
                   "diff_high", "p", "adjusted p", "verdict"]


def versions(runs: StoredRuns, earlier: list[StoredRuns], boot_seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """Did a recalibration change how well the scale predicts the full protocol? ``runs``: the scale; ``earlier``:
    its archived versions (``archived_versions``, read with ``stored_runs``), each judged on the rows held out from
    ``runs``' calibration rows, which none of them was tuned on. Per ranked task and version: ρ with the seed table
    over the held-out rows that both the version and the scale have, with its interval; for an archived version,
    Δ = ρ(scale) − ρ(version) paired over those rows (``stats.spearman_difference``), Holm-adjusted over the family
    of every ranked task × archived version, and its verdict at ``alpha`` ("better", "worse": the scale's ρ against
    the version's; else "not established"). Classified tasks: each version's share of those rows classified alike,
    with its interval (no comparison). ``VERSION_COLUMNS``; the family's size in ``attrs["family"]``; empty without
    an archived version."""
    if not earlier:
        return pd.DataFrame(columns=VERSION_COLUMNS)
    seed = _seed_table()
    held = [r for r in seed.index if r not in set(runs.scale.calibration_rows)]
    now = runs.scores[runs.scores["setting"] == "all"]
    out = []
    for column in [c for c in (*RANKED, *CLASSIFIED) if c in set(now["column"]) and c in seed.columns]:
        here = seed_scores_of(now, column)
        for version in [*earlier, runs]:
            there = seed_scores_of(version.scores[version.scores["setting"] == "all"], column)
            rows = [r for r in held if r in here and r in there]
            if len(rows) < 3:
                continue
            row = dict(task=column, version=version.scale.name, n=len(rows),
                       seeds=int(version.scores["seed"].nunique()), diff=math.nan, diff_low=math.nan,
                       diff_high=math.nan, p=math.nan, low=math.nan, high=math.nan)
            col = seed.loc[rows, column]
            if column in RANKED:
                mean = {r: np.mean(list(there[r].values())) for r in rows}
                rho, lo, hi = stats.spearman_interval([mean[r] for r in rows], col.to_numpy(), seed=boot_seed)
                row.update(measure="spearman", value=rho, low=lo, high=hi)
                if version is not runs:
                    ours = [np.mean(list(here[r].values())) for r in rows]
                    d, dlo, dhi, p = stats.spearman_difference(ours, [mean[r] for r in rows], col.to_numpy(),
                                                               seed=boot_seed)
                    row.update(diff=d, diff_low=dlo, diff_high=dhi, p=p)
            else:
                frac, differ = classify({r: there[r] for r in set(rows) | {BASELINE} if r in there}, col)
                lo, hi = stats.share_interval(len(rows) - len(differ), len(rows))
                row.update(measure="classified alike", value=frac, low=lo, high=hi)
            out.append(row)
    frame = pd.DataFrame(out, columns=[c for c in VERSION_COLUMNS if c not in ("adjusted p", "verdict")])
    frame["adjusted p"] = stats.holm(frame["p"].tolist())
    frame["verdict"] = [("better" if d > 0 else "worse") if q < alpha else
                        ("not established" if not math.isnan(q) else "")
                        for d, q in zip(frame["diff"], frame["adjusted p"])]
    frame.attrs["family"] = int(frame["p"].notna().sum())
    frame.attrs["targets"] = column_targets(runs.scale.agreement_targets)  # the scale's, on its held-out rows
    return frame


def versions_markdown(frame: pd.DataFrame, scale: str) -> str:
    """``versions`` as Markdown: one line per task, one column per version (oldest first), each archived
    version's cell with the change to ``scale``; then the family in words. Empty for an empty frame."""
    if frame.empty:
        return ""
    names = list(dict.fromkeys(frame["version"]))
    seeds = frame.groupby("version")["seeds"].max()
    head = " | ".join(f"`{v}` ({seeds[v]} seeds)" for v in names)
    lines = [f"| task (held-out rows) | {head} |", "|---|" + "---|" * len(names)]
    for task, g in frame.groupby("task", sort=False):
        by = {r["version"]: r for _, r in g.iterrows()}

        def cell(v) -> str:
            r = by.get(v)
            if r is None:
                return "n/a"
            if r["measure"] != "spearman":
                return f"{r['value']:.0%} alike [{r['low']:.0%}, {r['high']:.0%}] (n = {r['n']})"
            text = f"{r['value']:.2f} [{r['low']:.2f}, {r['high']:.2f}] (n = {r['n']})"
            if not math.isnan(r["diff"]):
                text += (f"; `{scale}` − this: {r['diff']:+.2f} [{r['diff_low']:+.2f}, {r['diff_high']:+.2f}], "
                         f"{r['verdict']}")
            return text
        lines.append(f"| {task} | " + " | ".join(cell(v) for v in names) + " |")
    return ("\n".join(lines) + f"\n\nEvery version is judged on the rows held out from `{scale}`'s calibration. "
            f"Δ: the change in ρ from the archived version to `{scale}`, paired over the rows (95% bootstrap "
            f"interval); its verdict is Holm-adjusted over the family of {frame.attrs.get('family', 0)} comparisons "
            "(every ranked task × archived version). " + _best_reached(frame))


def _best_reached(frame: pd.DataFrame) -> str:
    """Per task, the version with the highest held-out agreement, and whether any version reached the target."""
    parts = []
    for task, g in frame.groupby("task", sort=False):
        best = g.loc[g["value"].idxmax()]
        value = f"{best['value']:.2f}" if best["measure"] == "spearman" else f"{best['value']:.0%}"
        target = frame.attrs.get("targets", {}).get(task, math.nan)
        met = "" if math.isnan(target) else (" (the target met)" if best["value"] >= target else
                                             " (short of the target)")
        parts.append(f"{task} {value} at `{best['version']}`{met}")
    return "The highest held-out agreement any version reached: " + "; ".join(parts) + "."


def pilot_scales(name: str) -> list[str]:
    """The pilots of scale ``name``, as issue #31's calibration names them (``<name>-pilot``, ``<name>-pilot-2``, …
    in params/scales), in order."""
    from ..params import available_scales

    pattern = re.compile(rf"{re.escape(name)}-pilot(?:-(\d+))?")
    found = {s: pattern.fullmatch(s) for s in available_scales()}
    return sorted((s for s, m in found.items() if m), key=lambda s: int(found[s].group(1) or 1))


PILOT_COLUMNS = ["pilot", "task", "budget", "scale_budget", "rows", "seeds", "calibration", "measure", "value", "low",
                 "high", "scale_value", "baselines", "hours", "scale_hours", "grid_hours"]


def _budget_text(sc, task: str) -> str:
    b = sc.tasks[task]
    lrs = ", ".join(f"{lr:g}" for lr in sc.lrs_for(task))
    sweep = " (best of)" if len(sc.lrs_for(task)) * len(sc.wds) > 1 else ""
    return f"{b.num_train_examples:,} × {b.epochs} epochs, lr {lrs}{sweep}"


def _baselines_text(finished: pd.DataFrame, column: str) -> str:
    """Each baseline's state at the end of a task's budget (``baselines``): finished, not begun, or still gaining."""
    parts = []
    for _, r in finished[finished["column"] == column].iterrows():
        state = (f"finished (peaks at epoch {r['best_epoch']} of {r['epochs']}, ends at {r['last']:.3f})"
                 if r["finished"] else f"not begun ({r['first']:.3f} → {r['last']:.3f})" if not r["learned"] else
                 f"gains {r['last_gain']:+.3f} in epoch {r['epochs']} (ends at {r['last']:.3f})")
        parts.append(f"{r['row']} {state}")
    return "; ".join(parts) or "not trained"


def _wall_hours(records: list, task: str, pairs: set[tuple[str, int]] | None = None) -> float:
    """Recorded wall time of ``task``'s runs, in process-hours (only the (variant, seed) ``pairs`` when given)."""
    return sum(float(r["wall_time_s"]) for r in records if r["spec"]["task"] == task
               and (pairs is None or (r["spec"]["variant"], r["spec"]["seed"]) in pairs)) / 3600


def _grid_hours(runs: StoredRuns, task: str) -> float:
    """``task``'s process-hours over the scale's whole grid: the stored runs' recorded wall time, scaled up to
    every planned run while the grid is incomplete (mean per stored run × planned runs); NaN with none stored."""
    from ..runs import row_specs

    sc = runs.scale
    stored = sum(r["spec"]["task"] == task for r in runs.records)
    planned = sum(len(row_specs(row, sc, [task], sc.seeds_for(row))) for row in sc.rows())  # as grid.plan counts
    return _wall_hours(runs.records, task) * planned / stored if stored else math.nan


def pilots(runs: StoredRuns, names: list[str] | None = None, store=None, boot_seed: int = 0) -> pd.DataFrame:
    """What each pilot of a scale reached, and what its budget would cost the scale's grid: the figures behind the
    scale file's choices, measured from the stored runs (trains nothing). ``names``: the pilots (default
    ``pilot_scales(runs.scale.name)``), each read with ``stored_runs`` from ``store``. One row per pilot × task it
    trains (``PILOT_COLUMNS``):

    * ``value`` (``low``, ``high``): the pilot's agreement with the seed table over its ``rows`` (``agreement``'s
      "all" rows; ``calibration``: they are all the scale's calibration rows, so this is not held out), NaN with
      fewer than 3 ranked rows;
      ``scale_value``: the scale's over the same rows and seeds, so the two differ only by the budget.
    * ``baselines``: each baseline at the end of the pilot's budget (``baselines``: finished, not begun, or still
      gaining).
    * ``hours``: the task's process-hours over the scale's whole grid at the pilot's budget, projected as the
      scale's hours for the task (``scale_hours``: recorded, scaled up to every planned run while the grid is
      incomplete) times the ratio of the pilot's recorded wall time to the scale's on the same rows and seeds;
      ``grid_hours``: the scale's whole grid with this one task at the pilot's budget. NaN unless the scale has
      stored the task on every row and seed the pilot trained it on."""
    from ..tasks import TASKS

    task_hours = {t: _grid_hours(runs, t) for t in runs.scale.tasks}
    grid = sum(task_hours.values())
    out = []
    for name in pilot_scales(runs.scale.name) if names is None else names:
        pilot = stored_runs(name, store=store)
        finished, _ = scale_baselines(pilot)
        rows, seeds = set(pilot.scores["variant"]), set(pilot.scores["seed"])
        same = replace(runs, scores=runs.scores[runs.scores["variant"].isin(rows) & runs.scores["seed"].isin(seeds)])
        mine, theirs = (scale_agreement(r, boot_seed, calibration=()) for r in (pilot, same))
        for task in pilot.scale.tasks:
            column = TASKS[task].column
            got, there = (f[f["task"] == column] for f in (mine, theirs))
            r = got.iloc[0] if not got.empty else None
            measured = r is not None and (r["measure"] != "spearman" or r["n"] >= 3)
            pairs = {(rec["spec"]["variant"], rec["spec"]["seed"]) for rec in pilot.records
                     if rec["spec"]["task"] == task}
            stored = {(rec["spec"]["variant"], rec["spec"]["seed"]) for rec in runs.records
                      if rec["spec"]["task"] == task}
            scale_hours = task_hours.get(task, math.nan)
            hours = (scale_hours * _wall_hours(pilot.records, task) / _wall_hours(runs.records, task, pairs)
                     if pairs and pairs <= stored else math.nan)
            out.append(dict(pilot=name, task=column, budget=_budget_text(pilot.scale, task),
                            scale_budget=_budget_text(runs.scale, task) if task in runs.scale.tasks else "not trained",
                            rows=int(r["n"]) if r is not None else len(rows), seeds=len(seeds),
                            calibration=rows <= set(runs.scale.calibration_rows),
                            measure=r["measure"] if r is not None else "",
                            value=r["value"] if measured else math.nan, low=r["low"] if measured else math.nan,
                            high=r["high"] if measured else math.nan,
                            scale_value=there["value"].iloc[0] if measured and not there.empty else math.nan,
                            baselines=_baselines_text(finished, column), hours=hours, scale_hours=scale_hours,
                            grid_hours=grid - scale_hours + hours))
    return pd.DataFrame(out, columns=PILOT_COLUMNS)


COST_CAP = 45  # issue #31: process-hours for the whole grid


def pilots_markdown(frame: pd.DataFrame, name: str) -> str:
    """``pilots`` as Markdown: one line per pilot × task, then how to read it. Empty for an empty frame."""
    if frame.empty:
        return ""

    def value(v: float, measure: str) -> str:
        return "n/a" if math.isnan(v) else f"{v:.2f}" if measure == "spearman" else f"{v:.0%} alike"

    def hours(h: float) -> str:
        return "n/a" if math.isnan(h) else f"{h:.1f}"

    lines = [f"| pilot | task | budget (`{name}`'s) | rows × seeds | pilot's agreement | `{name}`'s, same rows and "
             f"seeds | baselines at the pilot's end (mean over seeds) | the task over `{name}`'s grid, process-hours: "
             f"at the pilot's budget / at `{name}`'s | `{name}`'s grid then |", "|---|" + "---|" * 8]
    for _, r in frame.iterrows():
        m = r["measure"]
        interval = "" if math.isnan(r["low"]) else f" [{value(r['low'], m)}, {value(r['high'], m)}]"
        lines.append(f"| `{r['pilot']}` | {r['task']} | {r['budget']} ({r['scale_budget']}) | {r['rows']} × "
                     f"{r['seeds']} | {value(r['value'], m)}{interval} | {value(r['scale_value'], m)} | "
                     f"{r['baselines']} | {hours(r['hours'])} / {hours(r['scale_hours'])} | {hours(r['grid_hours'])} |")
    which = ("which are calibration rows, so it is not held out: read it against" if frame["calibration"].all() else
             "not all of them calibration rows; read it against")
    return ("\n".join(lines) + "\n\nA pilot's agreement (Spearman's ρ with the seed table, with its bootstrap "
            f"interval, or the share of rows classified alike) is over the rows it trains, {which} `{name}`'s on the "
            "same rows and seeds, not against the targets. With fewer than 3 rows (a pilot of the baselines alone) "
            f"only the baselines' state is measured. Costs are projected from the recorded wall times: `{name}`'s "
            f"hours for the task over its whole grid (scaled up to every planned run while the grid is incomplete) "
            f"times the pilot's wall time over `{name}`'s on the same rows and seeds; the grid then is `{name}`'s "
            f"whole grid with that one task at the pilot's budget (issue #31's cap: {COST_CAP} process-hours).")


def scale_versions(runs: StoredRuns, store=None, boot_seed: int = 0) -> pd.DataFrame:
    """``versions`` of a scale's stored runs against its archived versions' (from ``store``; trains nothing)."""
    return versions(runs, [stored_runs(v, store=store) for v in archived_versions(runs.scale.name)], boot_seed)


def scale_baselines(runs: StoredRuns) -> tuple[pd.DataFrame, stats.Difference]:
    """``baselines`` and ``memorize_order`` of a scale's stored runs (``stored_runs``; trains nothing)."""
    from .inert import learning
    from .study import blind_levels, curves, schedule

    finished = baselines(learning(curves(runs.records, list(BASELINES), schedule(runs.scale)), {},
                                  blind=blind_levels(runs.scale)), runs.scale.early_stop)
    return finished, memorize_order(runs.scores)


def with_seed_table(scores: pd.DataFrame, inert: pd.DataFrame, seed: pd.DataFrame, calibration, boot_seed: int = 0,
                    *, targets: Mapping[str, float]) -> pd.DataFrame:
    """``agreement`` with the seed table's noise and one-model rows measured as ``claims`` measures them (the rows
    whose change cannot act on a task in MAD's runs either, with DeltaNet); ``targets``: the scale's
    ``agreement_targets``."""
    from .claims import mad_inert, seed_table_noise

    noise = seed_table_noise(seed, inert)
    same: dict[str, set[str]] = {}
    for variant, column in mad_inert(seed, inert):
        same.setdefault(column, {BASELINE}).add(variant)
    return agreement(scores, seed, calibration, noise.sd if noise else math.nan, same, boot_seed, targets)


README_START = "<!-- agreement:start (generated by `python -m deltalab agreement --readme`; do not edit) -->"
README_END = "<!-- agreement:end -->"


def target_reading(r) -> str:
    """Whether an agreement row (held-out) meets its target, and whether its interval holds the target: the point
    estimate decides "met", but 15 rows often cannot tell a value at the target from one well below it."""
    words = "met" if r["value"] >= r["target"] else "not met"
    if r["low"] <= r["target"] <= r["high"]:
        words += "; the interval holds the target"
    return words


KAPPA_NOTE = ("Context and Noisy Recall: beside the share of rows classified alike, what the constant rule scores "
              "(every row in the seed table's majority class) and Cohen's κ, the share corrected for chance (0: no "
              "better than chance, as the constant rule; 1: every row alike), with its 95% bootstrap interval over "
              "rows (the resamples where κ is undefined left out), and the seed table's failing rows it rests on, "
              "with how many of them the scale finds: with one failing row, κ and its interval say only whether "
              "that row was found.")


def kappa_text(r) -> str:
    """A classified agreement row's no-skill baseline in words (``no_skill``): the constant rule's share, κ with its
    interval (or why it is undefined) and the seed table's failing rows found."""
    constant = f"the constant rule \"{r['constant_rule']}\" {r['constant']:.0%}"
    if math.isnan(r["kappa"]):
        return f"{constant}; κ undefined: both sides put every row in one class"
    interval = "" if math.isnan(r["kappa_low"]) else f" [{r['kappa_low']:.2f}, {r['kappa_high']:.2f}]"
    failing = int(r["failing"])
    return (f"{constant}; κ {r['kappa']:.2f}{interval}, resting on the seed table's {failing} failing "
            f"row{'s' if failing != 1 else ''} ({int(r['failing_found'])} found)")


def markdown(frame: pd.DataFrame, scale: str) -> str:
    """The agreement table as Markdown: one line per task, all rows and held-out rows side by side."""
    def cell(r) -> str:
        if r is None:
            return "n/a"
        if r["measure"] == "spearman":
            own = "" if math.isnan(r["reliability"]) else f", own reliability {r['reliability']:.2f}"
            return (f"{r['value']:.2f} [{r['low']:.2f}, {r['high']:.2f}] (ceiling {r['ceiling']:.2f}{own}, "
                    f"n = {r['n']})")
        return (f"{r['value']:.0%} classified alike [{r['low']:.0%}, {r['high']:.0%}] (n = {r['n']}); "
                f"{kappa_text(r)}")

    lines = [f"| task (`{scale}`) | measure | all rows | held-out rows | target (held-out) |", "|---|---|---|---|---|"]
    for task, g in frame.groupby("task", sort=False):
        by = {r["rows"]: r for _, r in g.iterrows()}
        held = by.get("held-out")
        unset = held is None or math.isnan(held["target"])  # no held-out rows, or the scale sets no target
        target = "" if unset else (f"≥ {held['target']:.2f}" if held["measure"] == "spearman"
                                   else f"≥ {held['target']:.0%}")
        met = "" if unset else f" ({target_reading(held)})"
        lines.append(f"| {task} | {'Spearman ρ' if g['measure'].iloc[0] == 'spearman' else 'fail/learn'} | "
                     f"{cell(by.get('all'))} | {cell(held)} | {target}{met} |")
    if (frame["measure"] == "classified alike").any():
        lines += ["", KAPPA_NOTE]
    return "\n".join(lines)


def readme_block(frame: pd.DataFrame, scale: str, baseline_text: str = "", versions_text: str = "") -> str:
    """README's generated block: the agreement table, the baseline targets in words (``baselines_markdown``), then
    the agreement of the scale's archived versions (``versions_markdown``)."""
    tail = "".join(f"\n\n{t}" for t in (baseline_text, versions_text) if t)
    return f"{README_START}\n{markdown(frame, scale)}{tail}\n{README_END}"


def replace_readme_block(text: str, block: str, where: str = "README.md") -> str:
    """``text`` with its agreement block replaced by ``block``; ValueError naming ``where`` if it has none."""
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"{where}: no agreement block ({README_START!r} … {README_END!r}) to replace")
    return text[:start] + block + text[end + len(README_END):]
