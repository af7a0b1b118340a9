"""The five analysis rounds: train (or reuse) a round's rows, then tables, figures and verdicts.

A round (``params/rounds/round_<n>.yaml``, loaded by ``params.load_round``) is one seed document: the rows
of its table, its claims, the variant it proposes and that proposal's success criteria. ``run_round``
trains every row through the resumable store (``runner.run_variant``, baselines included) and returns a
``RoundStudy``; the round notebook only displays what the functions below compute from it.

Judging a claim (``check_claim``) at a scale with per-seed task scores:

    pairwise (beats, lags, no_worse)   narrative.compare, with n ≥ 2 on both rows: non-overlapping 95%
                                       intervals give the direction; overlapping ones are "no clear
                                       difference", which fails a claimed difference (beats, lags) and
                                       passes no_worse; n < 2: "cannot tell" (the point values are quoted)
    threshold (at_least, above, below) n ≥ 2: the whole 95% interval on one side of the threshold;
                                       n = 1: the point value decides, and the sentence says n=1
    best                               fails if some row beats the claimed one; holds if it beats every row
    saturated                          a threshold check per row; holds if ≥ ``fraction`` of the rows pass
    task "all"                         the claim on every task measured: all hold → holds, one fails → fails

The seed documents' own tables are judged the same way on their point values (``point=True``): they are
MAD-protocol means over four seeds whose spread was not published.
"""
from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from . import narrative, plots, tables
from . import tasks as T
from .narrative import BEATS, CANNOT_TELL, LAGS, TIE, fmt
from .params import Claim, Round, Scale, available_rounds, load_round, load_scale
from .layers import CHUNK_SIZE
from .runner import Summary, resolve_tasks, run_variant
from .runtime import REPO_ROOT
from .store import Store
from .variants import VARIANTS, name_of_label

SEEDS_DIR = Path(os.environ.get("DELTALAB_SEEDS") or REPO_ROOT.parent / "shared" / "seeds")  # the seed documents
REFERENCE = "gated_delta_net"  # the row every variant is measured against
BASELINE = "delta_net"
AVERAGE = "Average"
HOLDS, FAILS, UNSURE = "holds", "does not hold", "cannot tell"
SEED_COLUMN = "on the seed's own table"


# --- the seed documents -------------------------------------------------------------------------------

def seed_path(document: str) -> Path:
    """``shared/seeds/<document>`` beside the repository, with a clear error when it is not there."""
    path = SEEDS_DIR / document
    if not path.exists():
        raise FileNotFoundError(f"seed document {document!r} not found at {path}: the round notebooks expect the "
                                f"seed documents in {SEEDS_DIR} (the repository's sibling folder shared/seeds)")
    return path


def seed_table(document: str) -> pd.DataFrame:
    """A seed document's ``accuracies_df`` (``tables.read_seed_table``)."""
    return tables.read_seed_table(seed_path(document))


def point_summary(table: pd.DataFrame) -> pd.DataFrame:
    """A label × column table of means as a long summary (no intervals, n unknown), with its Average."""
    wide = table.copy()
    cols = [c for c in T.COLUMNS if c in wide.columns]
    wide[AVERAGE] = wide[cols].mean(axis=1, skipna=False)
    long = wide.rename_axis("label").reset_index().melt(id_vars="label", var_name="column", value_name="mean")
    long["ci_low"] = math.nan
    long["ci_high"] = math.nan
    long["n"] = math.nan
    return long


def proposals() -> dict[int, str]:
    """Round number → the variant its seed document proposes."""
    return {r.number: r.proposal for r in (load_round(name) for name in available_rounds())}


# --- training and the study's numbers -----------------------------------------------------------------

@dataclass
class RoundStudy:
    round: Round
    scale: Scale
    columns: list[str]  # the task columns measured (all six unless ``tasks`` restricted them)
    records: list[dict]
    runs: pd.DataFrame  # tables.records_frame(records)
    summary: pd.DataFrame  # label, column, mean, ci_low, ci_high, n; columns include Average
    trained: dict[str, Summary]
    seed: pd.DataFrame  # the seed document's table, as reported
    labels: list[str] = field(default_factory=list)  # the round's rows (+ every variant for the conclusion)

    @property
    def tag(self) -> str:
        """"at scale `cpu`" (with the tasks kept when they were restricted)."""
        extra = "" if len(self.columns) == len(T.COLUMNS) else f", {len(self.columns)} of 6 tasks"
        return f"at scale `{self.scale.name}`{extra}"

    @property
    def round_labels(self) -> list[str]:
        """The seed table's rows and the proposal, as table labels."""
        return [VARIANTS[v].label for v in self.round.rows]


def signed(x: float, digits: int = 3) -> str:
    """"+0.012" / "-0.004" / "+0.000" (never "-0.000")."""
    return "n/a" if x is None or math.isnan(x) else f"{round(x, digits) + 0.0:+.{digits}f}"


def label(name: str) -> str:
    """Table label of a registered short name."""
    return VARIANTS[name].label


def short_name(lab: str) -> str:
    """Registered short name of a table label (the names the round files use); other labels unchanged."""
    try:
        return name_of_label(lab)
    except ValueError:
        return lab


def run_round(rnd: Round | str, scale: str = "cpu", tasks=None, seeds=None, workers: int = 1,
              results_dir: str | Path | None = None, progress: bool = False, engine: str = "local",
              address: str | None = None) -> RoundStudy:
    """Train or reuse every row of the round and its proposal (and, for the concluding round, every registered
    variant) through the store, at the scale's seeds (``baseline_seeds`` for the baselines and the scale's
    ``seeded_variants``, as the grid runner does, so that a notebook trains nothing the grid did not).
    ``engine="ray"`` trains on the Ray cluster at ``address`` (``deltalab.ray_engine``)."""
    rnd = load_round(rnd) if isinstance(rnd, (str, Path)) else rnd
    sc = load_scale(scale)
    task_list = resolve_tasks(None if tasks in (None, "all") else tasks, sc)
    store = Store(results_dir) if results_dir else Store()
    names = list(rnd.rows) + ([v for v in VARIANTS if v not in rnd.rows] if rnd.conclusion else [])
    records, trained = [], {}
    for name in names:
        run_seeds = list(seeds) if seeds else list(sc.seeds_for(name))
        recs, summ = run_variant(name, scale, task_list, run_seeds, workers=workers, progress=progress, store=store,
                                 engine=engine, address=address)
        records += recs
        trained[name] = summ
    runs = tables.records_frame(records)
    columns = [c for c in T.COLUMNS if c in {T.COLUMN[t] for t in task_list}]
    return RoundStudy(rnd, sc, columns, records, runs, summary_with_average(runs, columns), trained,
                      seed_table(rnd.seed_document), [label(n) for n in names])


def summary_with_average(runs: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``tables.summary`` plus an ``Average`` column: per seed the mean over ``columns`` (a seed missing one
    of them has no average), then mean, 95% interval and n over seeds."""
    summ = tables.summary(runs)
    scores = tables.task_scores(runs)
    scores = scores[scores["column"].isin(columns)]
    per_seed = scores.groupby(["label", "seed"])["test_acc"].agg(["mean", "count"]).reset_index()
    per_seed = per_seed[per_seed["count"] == len(columns)]
    rows = []
    for lab, g in per_seed.groupby("label"):
        mean, lo, hi, n = tables.ci95(g["mean"].to_numpy())
        rows.append({"label": lab, "column": AVERAGE, "mean": mean, "ci_low": lo, "ci_high": hi, "n": n})
    return pd.concat([summ, pd.DataFrame(rows, columns=summ.columns)], ignore_index=True)


def _wide(summary: pd.DataFrame, labels: list[str], columns: list[str], value: str = "mean") -> pd.DataFrame:
    table = summary.pivot(index="label", columns="column", values=value)
    table = table.reindex(index=[lab for lab in labels if lab in table.index], columns=columns)
    table.index.name = None
    table.columns.name = None
    return table


def reproduced(study: RoundStudy, labels: list[str] | None = None) -> pd.DataFrame:
    """The round's accuracies_df as reproduced here (means over seeds) with MAD's average."""
    labels = labels or study.round_labels
    return _wide(study.summary, labels, study.columns + [AVERAGE]).rename(index=short_name)


def intervals(study: RoundStudy, labels: list[str] | None = None) -> pd.DataFrame:
    """Mean and 95% interval per cell as text ("0.512 [0.401, 0.623]"; a single seed shows the mean only),
    and the number of seeds per row."""
    labels = labels or study.round_labels
    cols = study.columns + [AVERAGE]
    out = {}
    for col in cols:
        cells = {}
        for lab in labels:
            c = narrative._cell(study.summary, lab, col)
            if c is None:
                continue
            cells[short_name(lab)] = fmt(c["mean"]) if c["n"] < 2 else (
                f"{fmt(c['mean'])} [{fmt(c['ci_low'])}, {fmt(c['ci_high'])}]")
        out[col] = cells
    table = pd.DataFrame(out).reindex(columns=cols)
    ns = study.summary[study.summary["label"].isin(labels)].groupby("label")["n"].agg(["min", "max"])
    table["n seeds"] = [(lambda lo, hi: f"{lo}" if lo == hi else f"{lo}-{hi}")(int(ns.loc[lab, "min"]), int(ns.loc[lab, "max"]))
                        for lab in labels if lab in ns.index]
    return table


def reported(study: RoundStudy) -> pd.DataFrame:
    """The seed document's table (MAD protocol, four seeds) with its average, restricted to the columns
    measured here."""
    table = tables.with_average(study.seed).rename(columns={"Average": AVERAGE})
    return table[study.columns + [AVERAGE]].rename(index=short_name)


def difference(study: RoundStudy) -> pd.DataFrame:
    """Reproduced minus reported, per row and task (rows in both tables). The Average of reproduced is over
    the tasks measured, that of reported over all six, so it is left out when tasks were restricted."""
    here, there = reproduced(study), reported(study)
    rows = [r for r in here.index if r in there.index]
    cols = study.columns + ([AVERAGE] if len(study.columns) == len(T.COLUMNS) else [])
    return here.loc[rows, cols] - there.loc[rows, cols]


def gap_to_reference(study: RoundStudy, labels: list[str] | None = None) -> pd.DataFrame:
    """Each row minus Gated DeltaNet per task (positive: better than Gated DeltaNet)."""
    labels = labels or study.round_labels
    table = _wide(study.summary, labels, study.columns + [AVERAGE])
    return tables.gap_to(table, label(REFERENCE)).rename(index=short_name)


def rank_correlation(study: RoundStudy) -> pd.DataFrame:
    """Per task: Spearman's rank correlation between reproduced and reported means over the rows in both,
    with its p-value. NaN where either side is constant (e.g. every row at the same smoke-scale score)."""
    merged = reproduced_vs_reported(study)
    rows = []
    for col in study.columns + [AVERAGE]:
        m = merged[merged["column"] == col].dropna()
        rho = p = math.nan
        if len(m) >= 3 and m["reproduced"].nunique() > 1 and m["reported"].nunique() > 1:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = stats.spearmanr(m["reproduced"], m["reported"])
            rho, p = float(res.statistic), float(res.pvalue)
        rows.append({"task": col, "spearman_rho": rho, "p_value": p, "rows": len(m)})
    return pd.DataFrame(rows).set_index("task")


def reproduced_vs_reported(study: RoundStudy) -> pd.DataFrame:
    """Long table: label, column, reproduced, reported (rows in both tables)."""
    here = reproduced(study).rename_axis("label").reset_index().melt(
        id_vars="label", var_name="column", value_name="reproduced")
    there = reported(study).rename_axis("label").reset_index().melt(
        id_vars="label", var_name="column", value_name="reported")
    return here.merge(there, on=["label", "column"])


def curves(study: RoundStudy, names: list[str]) -> pd.DataFrame:
    """Test accuracy per evaluated epoch of the runs MAD's score uses (best lr × wd per setting and seed),
    for the named variants: label, column, setting, seed, epoch, test_acc."""
    wanted = {label(n) for n in names}
    runs = study.runs.reset_index(drop=True)
    if runs.empty:
        return pd.DataFrame(columns=["label", "column", "setting", "seed", "epoch", "test_acc"])
    chosen = runs.loc[runs.groupby(["label", "column", "setting", "seed"])["test_acc"].idxmax()]
    keep = set(chosen.index)
    rows = []
    for i, rec in enumerate(study.records):
        if i not in keep or rec["label"] not in wanted:
            continue
        r = runs.loc[i]
        rows += [{"label": short_name(r["label"]), "column": r["column"], "setting": r["setting"], "seed": r["seed"],
                  "epoch": pt["epoch"], "test_acc": pt["test_acc"]} for pt in rec["curve"]]
    return pd.DataFrame(rows, columns=["label", "column", "setting", "seed", "epoch", "test_acc"])


def cost(study: RoundStudy, labels: list[str] | None = None, bench_file: str | Path | None = None
         ) -> tuple[pd.Series, str]:
    """Training throughput per row (the Series' name says what it is), and a sentence saying where it comes
    from.

    With ``bench_file`` (the JSON of ``python -m deltalab bench --json --out FILE``): the benchmark's train-step
    tokens/s, measured for every path in one run under the same conditions. Without it: the mean over each
    row's grid runs of their train tokens/s, which also carries whatever else the machine was doing while
    each run trained (a run reused from the store keeps the throughput it was measured with).
    """
    labels = labels or study.round_labels
    if bench_file:
        bench = _read_bench(bench_file)
        tps = pd.Series({lab: bench["train_tokens_per_s"][name_of_label(lab)] for lab in labels
                         if name_of_label(lab) in bench["train_tokens_per_s"]}, dtype=float)
        load = bench.get("load_average_at_start") or [float("nan")]
        threads = f"{bench['threads']} thread" + ("s" if bench["threads"] != 1 else "")
        source = (f"train-step tokens/s from `deltalab bench` (its report `{Path(bench_file).name}`: "
                  f"{bench['machine']}, {threads}, batch {bench['batch']} × length {bench['length']}, median of "
                  f"{bench['steps']} steps, load average {load[0]:.1f} at its start): every row measured in one "
                  f"run, under the same conditions")
        if load[0] >= 1.0:
            source += (". Other work was running when it started, so every figure carries that load's noise and a "
                       "small difference between two rows says little")
        what = "train tokens / s (deltalab bench)"
    else:
        tps = study.runs[study.runs["label"].isin(labels)].groupby("label")["train_tokens_per_s"].mean()
        source = ("mean train tokens/s over each row's grid runs, on the machines and under the load they were "
                  "trained with: rows trained while the machine was shared look slower than they are "
                  "(`python -m deltalab bench` compares the paths under equal conditions)")
        what = "train tokens / s (grid runs)"
    tps = tps.reindex([lab for lab in labels if lab in tps.index]).sort_values(ascending=False)
    return tps.rename(index=short_name).rename(what), source


def _read_bench(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"bench file {path} not found: write it with `python -m deltalab bench --json "
                                f"--out {path}`, or pass bench_file=None to use the grid runs' throughput")
    bench = json.loads(path.read_text())
    missing = [k for k in ("train_tokens_per_s", "date", "machine", "threads", "batch", "length", "steps")
               if k not in bench]
    if missing:
        raise ValueError(f"{path} is not a `deltalab bench --json` report: it lacks {', '.join(missing)}")
    return bench


# --- figures ----------------------------------------------------------------------------------------------

def figures(study: RoundStudy, figures_dir: str | Path | None = None,
            throughput: pd.Series | None = None) -> dict[str, Path]:
    """Every figure of a round, as PNG files: heatmap, gap to Gated DeltaNet, reproduced vs reported,
    learning curves, cost (``throughput`` as ``cost`` returns it; by default ``cost`` of the grid runs)."""
    sc, n = study.scale.name, study.round.number
    out = Path(figures_dir or REPO_ROOT / "outputs" / sc / "figures" / f"round_{n}")
    rho = rank_correlation(study)["spearman_rho"].to_dict()
    tps = cost(study)[0] if throughput is None else throughput
    paths = {
        "heatmap": plots.heatmap(reproduced(study), out / f"round_{n}_heatmap.png",
                                 f"Round {n}: MAD accuracy at scale {sc}", cmap="viridis"),
        "gap": plots.heatmap(shown(gap_to_reference(study)), out / f"round_{n}_gap_to_gated.png",
                             f"Round {n}: gap to Gated DeltaNet at scale {sc}", center=0.0, cmap="RdBu",
                             fmt="+.3f"),
        "reproduced": plots.scatter_reproduced(reproduced_vs_reported(study), out / f"round_{n}_reproduced.png",
                                               f"Round {n}: scale {sc} (y) against the seed's MAD numbers (x)",
                                               rho=rho),
        "curves": plots.learning_curves(curves(study, list(study.round.discuss)), out / f"round_{n}_curves.png",
                                        f"Round {n}: test accuracy per epoch at scale {sc}"),
        "cost": plots.bars(tps, out / f"round_{n}_cost.png", f"Round {n}: training throughput",
                           tps.name),
    }
    if study.round.conclusion:
        paths["all"] = plots.heatmap(ranking(study).drop(columns=["rank", "n seeds"]),
                                     out / f"round_{n}_all_variants.png",
                                     f"All {len(study.labels)} variants by average at scale {sc}")
    return paths


# --- claims -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Verdict:
    claim: Claim
    status: str  # HOLDS, FAILS or UNSURE
    evidence: str


_PAIRWISE = {  # compare() outcome → status, per kind
    "beats": {BEATS: HOLDS, LAGS: FAILS, TIE: FAILS},
    "lags": {LAGS: HOLDS, BEATS: FAILS, TIE: FAILS},
    "no_worse": {BEATS: HOLDS, TIE: HOLDS, LAGS: FAILS},
}
_WORDS = {BEATS: "above", LAGS: "below", TIE: "level with"}


def _point_compare(summary, a, b, column) -> tuple[str, float]:
    ca, cb = narrative._cell(summary, a, column), narrative._cell(summary, b, column)
    if ca is None or cb is None or math.isnan(ca["mean"]) or math.isnan(cb["mean"]):
        return CANNOT_TELL, math.nan
    diff = float(ca["mean"] - cb["mean"])
    return (BEATS if diff > 0 else LAGS if diff < 0 else TIE), diff


def _n(summary, lab, column) -> int:
    c = narrative._cell(summary, lab, column)
    return 0 if c is None or (isinstance(c["n"], float) and math.isnan(c["n"])) else int(c["n"])


def _pairwise(claim: Claim, summary, column, point) -> tuple[str, str]:
    a, b = label(claim.variant), label(claim.other)
    outcome, diff = (_point_compare if point else narrative.compare)(summary, a, b, column)
    ca, cb = narrative._cell(summary, a, column), narrative._cell(summary, b, column)
    if ca is None or cb is None or math.isnan(diff):
        missing = [short_name(x) for x, c in ((a, ca), (b, cb)) if c is None]
        return UNSURE, f"{column}: not measured ({', '.join(missing) or 'no score'})"
    nums = f"{claim.variant} {fmt(ca['mean'])} vs {claim.other} {fmt(cb['mean'])} ({signed(diff)})"
    if point:
        return _PAIRWISE[claim.kind][outcome], f"{column}: {nums}"
    na, nb = _n(summary, a, column), _n(summary, b, column)
    if outcome == CANNOT_TELL:
        would = _PAIRWISE[claim.kind][_point_compare(summary, a, b, column)[0]]
        return UNSURE, (f"{column}: {nums}, n={na}/{nb}: too few seeds for a 95% interval "
                        f"(the point values alone would say '{would}')")
    how = "the 95% intervals overlap" if outcome == TIE else "the 95% intervals do not overlap"
    return _PAIRWISE[claim.kind][outcome], f"{column}: {nums}, n={na}/{nb}, {how}"


def _threshold_status(kind: str, c, threshold: float, point: bool) -> tuple[str, str]:
    """Status of one cell against a threshold, and how it was judged."""
    op = {"at_least": np.greater_equal, "above": np.greater, "below": np.less}[kind]
    if point or c["n"] < 2 or math.isnan(c["ci_low"]):
        how = "point value" + ("" if point else f", n={int(c['n'])}")
        return (HOLDS if op(c["mean"], threshold) else FAILS), how
    lo, hi = c["ci_low"], c["ci_high"]
    how = f"n={int(c['n'])}, 95% interval [{fmt(lo)}, {fmt(hi)}]"
    if op(lo, threshold) and op(hi, threshold):
        return HOLDS, how
    if not op(lo, threshold) and not op(hi, threshold):
        return FAILS, how
    return UNSURE, how + " straddles the threshold"


_SYMBOL = {"at_least": "≥", "above": ">", "below": "<"}


def _threshold(claim: Claim, summary, column, point) -> tuple[str, str]:
    c = narrative._cell(summary, label(claim.variant), column)
    if c is None or math.isnan(c["mean"]):
        return UNSURE, f"{column}: {claim.variant} not measured"
    status, how = _threshold_status(claim.kind, c, claim.threshold, point)
    return status, f"{column}: {claim.variant} {fmt(c['mean'])} ({how}); the claim asks {_SYMBOL[claim.kind]} {claim.threshold:g}"


def _present(summary, rows: list[str], column) -> list[str]:
    return [lab for lab in rows if (c := narrative._cell(summary, lab, column)) is not None and not math.isnan(c["mean"])]


def _best(claim: Claim, summary, column, rows, point) -> tuple[str, str]:
    me = label(claim.variant)
    present = _present(summary, rows, column)
    if me not in present:
        return UNSURE, f"{column}: {claim.variant} not measured"
    means = {lab: float(narrative._cell(summary, lab, column)["mean"]) for lab in present}
    top = max(means, key=lambda lab: (means[lab], lab == me))
    ranking = sorted(means, key=lambda lab: -means[lab])
    rank = ranking.index(me) + 1
    top_txt = (f"{claim.variant} {fmt(means[me])} is first of {len(present)}" if top == me else
               f"{claim.variant} {fmt(means[me])} is #{rank} of {len(present)}; top: {short_name(top)} {fmt(means[top])}")
    if point:
        return (HOLDS if top == me else FAILS), f"{column}: {top_txt}"
    others = [lab for lab in present if lab != me]
    outcomes = {lab: narrative.compare(summary, me, lab, column)[0] for lab in others}
    ahead = [short_name(lab) for lab, o in outcomes.items() if o == LAGS]
    if ahead:
        return FAILS, f"{column}: {top_txt}; clearly ahead of it: {', '.join(ahead)}"
    if all(o == BEATS for o in outcomes.values()):
        return HOLDS, f"{column}: {top_txt}, clearly ahead of every other row"
    unsure = [short_name(lab) for lab, o in outcomes.items() if o != BEATS]
    n = sorted({_n(summary, lab, column) for lab in present})
    reason = "one seed" if n == [1] else "overlapping 95% intervals or single seeds"
    return UNSURE, f"{column}: {top_txt}; not separated ({reason}) from {len(unsure)} row(s) such as {', '.join(unsure[:3])}"


def _saturated(claim: Claim, summary, column, rows, point) -> tuple[str, str]:
    present = _present(summary, rows, column)
    if not present:
        return UNSURE, f"{column}: not measured"
    status = {lab: _threshold_status("at_least", narrative._cell(summary, lab, column), claim.threshold, point)[0]
              for lab in present}
    needed = math.ceil(claim.fraction * len(present) - 1e-9)
    held = sum(s == HOLDS for s in status.values())
    failed = [short_name(lab) for lab, s in status.items() if s == FAILS]
    ns = sorted({_n(summary, lab, column) for lab in present})
    how = "point values" if point else ("point values, n=1" if ns == [1] else "95% intervals")
    text = (f"{column}: {held} of {len(present)} rows ≥ {claim.threshold:g} ({how}; the claim needs {needed})"
            + (f"; below: {', '.join(failed)}" if failed else ""))
    if held >= needed:
        return HOLDS, text
    if len(failed) > len(present) - needed:
        return FAILS, text
    return UNSURE, text


def _one(claim: Claim, summary, column, rows, point) -> tuple[str, str]:
    if claim.kind in _PAIRWISE:
        return _pairwise(claim, summary, column, point)
    if claim.kind in _SYMBOL:
        return _threshold(claim, summary, column, point)
    if claim.kind == "best":
        return _best(claim, summary, column, rows, point)
    return _saturated(claim, summary, column, rows, point)


def check_claim(claim: Claim, summary: pd.DataFrame, rows: list[str], columns: list[str] | None = None,
                point: bool = False, tag: str = "") -> Verdict:
    """Judge one claim on a summary (label, column, mean, ci_low, ci_high, n). ``rows`` are the table labels
    a "best" or "saturated" claim ranges over; ``columns`` the tasks measured (for task "all"); ``point``
    judges on means alone (the seed tables). ``tag`` ("at scale `cpu`") opens the evidence."""
    columns = columns or [c for c in T.COLUMNS if c in set(summary["column"])]
    targets = columns if claim.task == "all" else [claim.task]
    parts = [_one(claim, summary, col, rows, point) if col in set(summary["column"])
             else (UNSURE, f"{col}: not measured") for col in targets]
    statuses = [s for s, _ in parts]
    status = FAILS if FAILS in statuses else HOLDS if all(s == HOLDS for s in statuses) else UNSURE
    evidence = "; ".join(text for _, text in parts)
    return Verdict(claim, status, f"{tag}: {evidence}" if tag else evidence)


def claims_table(study: RoundStudy, which: str = "claims") -> pd.DataFrame:
    """Each claim (or success criterion) of the round: verdict here, the evidence, and the verdict on the seed
    document's own table (its point values)."""
    rnd = study.round
    rows = [label(v) for v in (rnd.variants if which == "claims" else rnd.rows)]
    seed_summary = point_summary(study.seed)
    out = []
    for claim in getattr(rnd, which):
        here = check_claim(claim, study.summary, rows, study.columns, tag=study.tag)
        there = check_claim(claim, seed_summary, rows, T.COLUMNS, point=True)
        seed_status = there.status if claim.variant is None or label(claim.variant) in set(study.seed.index) and (
            claim.other is None or label(claim.other) in set(study.seed.index)) else "not in the seed table"
        out.append({"claim": claim.text, "verdict here": here.status, "evidence": here.evidence,
                    SEED_COLUMN: seed_status})
    return pd.DataFrame(out)


def _word(verdicts: list[str]) -> str:
    """"held up" (every criterion holds), "did not hold up" (one fails) or "cannot be judged yet"."""
    if FAILS in verdicts:
        return "did not hold up"
    return "held up" if verdicts and all(v == HOLDS for v in verdicts) else "cannot be judged yet"


def overall(verdicts: list[str], proposal: str, tag: str) -> str:
    """The proposal's overall verdict from its criteria's statuses."""
    k, f, u, n = verdicts.count(HOLDS), verdicts.count(FAILS), verdicts.count(UNSURE), len(verdicts)
    if n == 0:
        return f"{tag}: {proposal} has no success criteria to check."
    word = _word(verdicts)
    return (f"{tag}: {k} of {n} success criteria of `{proposal}` hold, {f} do not, {u} cannot be told apart "
            f"with this many seeds, so the proposal **{word}**"
            + (" (every criterion it set was met)." if word == "held up" else
               " (at least one of its own criteria does not hold at this scale)." if f else
               " (none fails, but not all are established)."))


def proposal_verdict(study: RoundStudy) -> str:
    table = claims_table(study, "success_criteria")
    return overall(list(table["verdict here"]), study.round.proposal, study.tag)


# --- sentences ----------------------------------------------------------------------------------------

def header(rnd: Round, scale: Scale) -> str:
    """The round's title, question, proposal and scale, as markdown."""
    rows = ", ".join(f"`{v}`" for v in rnd.variants)
    return (f"# {rnd.title}\n\n**Question.** {rnd.question}\n\n"
            f"**Seed document** `{rnd.seed_document}`: a table of {len(rnd.variants)} rows ({rows}).\n\n"
            f"**Its proposal, trained and measured here:** `{rnd.proposal}`: {rnd.proposal_rationale}\n\n"
            f"**Scale `{scale.name}`.** {scale.description}\n\n"
            f"The seed tables are MAD-protocol numbers (12,800 training examples, up to 200 epochs, a 3 × 2 "
            f"lr × wd sweep, 66 settings) said to be averaged over 4 seeds; every number measured here is at the "
            f"reduced scale `{scale.name}` named above, so absolute values are not expected to match, only "
            f"(at best) the rankings.")


def training_note(study: RoundStudy) -> str:
    n_rows = len(study.labels)
    seeds = sorted({int(s) for s in study.runs["seed"]}) if not study.runs.empty else []
    extra = (f" This concluding round also trains every other registered variant: {n_rows} rows in all."
             if study.round.conclusion else "")
    return (f"{study.tag}: {len(study.runs)} stored runs for {n_rows} rows on {len(study.columns)} tasks "
            f"(seeds used: {', '.join(map(str, seeds))}).{extra}")


def best_per_task(study: RoundStudy, labels: list[str] | None = None) -> list[str]:
    """The top row per task (and on average), whether it is clearly ahead of the runner-up, at this scale."""
    labels = labels or study.round_labels
    out = []
    for col in study.columns + [AVERAGE]:
        present = _present(study.summary, labels, col)
        if not present:
            continue
        ranked = sorted(present, key=lambda lab: -narrative._cell(study.summary, lab, col)["mean"])
        top = ranked[0]
        c = narrative._cell(study.summary, top, col)
        ties = [short_name(lab) for lab in ranked[1:] if narrative._cell(study.summary, lab, col)["mean"] == c["mean"]]
        text = f"**{col}**: {short_name(top)} {fmt(c['mean'])} (n={int(c['n'])})"
        if ties:
            text += f", tied with {', '.join(ties)}"
        elif len(ranked) > 1:
            verdict, diff = narrative.compare(study.summary, top, ranked[1], col)
            ahead = {BEATS: "clearly ahead of", TIE: "not clearly ahead of", CANNOT_TELL: "cannot tell against"}[verdict]
            text += f", {ahead} the runner-up {short_name(ranked[1])} ({signed(diff)})"
        out.append(text + ".")
    return [f"{study.tag}:"] + out


def against_reference(study: RoundStudy, labels: list[str] | None = None) -> list[str]:
    """Per task: the rows that beat Gated DeltaNet (95% intervals apart) and those only above it on points."""
    labels = labels or study.round_labels
    ref = label(REFERENCE)
    out = [f"{study.tag}, against `{REFERENCE}`:"]
    for col in study.columns + [AVERAGE]:
        clear, points = [], []
        for lab in labels:
            if lab == ref:
                continue
            verdict, diff = narrative.compare(study.summary, lab, ref, col)
            if verdict == BEATS:
                clear.append(f"{short_name(lab)} ({signed(diff)})")
            elif verdict in (TIE, CANNOT_TELL) and not math.isnan(diff) and diff > 0:
                points.append(f"{short_name(lab)} ({signed(diff)})")
        text = f"**{col}**: beaten by " + (", ".join(clear) if clear else "no row")
        if points:
            text += f"; above it on the point value only (not established): {', '.join(points)}"
        out.append(text + ".")
    return out


def where_delta_net_lags(study: RoundStudy) -> str:
    """Where DeltaNet lags Gated DeltaNet, is level with it, or cannot be told apart, at this scale."""
    groups: dict[str, list[str]] = {}
    for col in study.columns + [AVERAGE]:
        verdict, diff = narrative.compare(study.summary, label(BASELINE), label(REFERENCE), col)
        if not math.isnan(diff):
            groups.setdefault(verdict, []).append(f"{col} ({signed(diff)})")
    words = {LAGS: "lags it on", BEATS: "is ahead of it on", TIE: "shows no clear difference on",
             CANNOT_TELL: "cannot be told apart from it (too few seeds) on"}
    parts = [f"{words[v]} {', '.join(groups[v])}" for v in (LAGS, BEATS, TIE, CANNOT_TELL) if v in groups]
    return f"{study.tag}: DeltaNet against Gated DeltaNet " + ("; ".join(parts) if parts else "is not measured") + "."


def identical_to_baseline(study: RoundStudy, labels: list[str] | None = None) -> dict[str, list[str]]:
    """Per row, the task columns on which every one of its runs trained exactly as DeltaNet's run with the same
    task, setting, seed, lr and wd did: the same test loss at every evaluated epoch. There the change never
    acted (a change to the state carried across chunks, for instance, cannot act on a sequence that fits in
    one chunk), so the row's score on that column is DeltaNet's by construction, not a measurement of the
    change. Columns where the row has a run without a DeltaNet twin are left out."""
    labels = labels or study.round_labels
    base = label(BASELINE)
    losses = {}  # (label, task, setting, lr, wd, seed) -> test loss per evaluated epoch
    for rec in study.records:
        sp = rec["spec"]
        losses[(rec["label"], sp["task"], repr(sp["setting"]), sp["lr"], sp["wd"], sp["seed"])] = [
            pt["test_loss"] for pt in rec["curve"]]
    out: dict[str, list[str]] = {}
    for lab in labels:
        if lab == base:
            continue
        per_col: dict[str, bool] = {}
        for (row, *rest), curve in losses.items():
            if row != lab:
                continue
            col = T.COLUMN[rest[0]]
            twin = losses.get((base, *rest))
            per_col[col] = per_col.get(col, True) and twin is not None and twin == curve
        cols = [c for c in study.columns if per_col.get(c)]
        if cols:
            out[short_name(lab)] = cols
    return out


def identical_note(study: RoundStudy, labels: list[str] | None = None) -> str:
    """A sentence naming the rows whose runs were DeltaNet's, bit for bit, on some tasks (see
    ``identical_to_baseline``), or saying there are none."""
    same = identical_to_baseline(study, labels)
    if not same:
        return (f"{study.tag}: every row's runs differ from DeltaNet's (test loss per epoch) on every task it was "
                f"measured on, so each change acted on each task.")
    groups: dict[tuple[str, ...], list[str]] = {}
    for name, cols in same.items():
        groups.setdefault(tuple(cols), []).append(name)
    parts = [f"{', '.join(names)} on " + ("every task measured" if list(cols) == study.columns
                                          else narrative.join_words(list(cols)))
             for cols, names in sorted(groups.items(), key=lambda kv: (-len(kv[0]), kv[0]))]
    text = (f"{study.tag}, these rows trained exactly as DeltaNet did (the same test loss at every epoch, for every "
            f"run): {'; '.join(parts)}. On those tasks their change never acted, and their scores there are "
            f"DeltaNet's on the same seeds, not evidence about the change.")
    seeds: dict[str, set[int]] = {}
    for rec in study.records:
        seeds.setdefault(short_name(rec["label"]), set()).add(rec["spec"]["seed"])
    base_seeds = seeds.get(BASELINE, set())
    fewer = [name for name in same if seeds.get(name, set()) < base_seeds]
    if fewer:
        text += (f" DeltaNet's means count seeds {narrative.join_words(sorted(base_seeds))}; those of "
                 f"{narrative.join_words(fewer)} count fewer, so on those tasks their means differ from DeltaNet's "
                 f"by its extra seeds alone.")
    one_chunk = _one_chunk_tasks(study)
    if one_chunk:
        text += (f" The sequences of {narrative.join_words(one_chunk)} fit in one chunk of {CHUNK_SIZE} tokens, "
                 f"where a change that only touches the state carried from one chunk to the next has nothing to "
                 f"act on.")
    return text


def _one_chunk_tasks(study: RoundStudy) -> list[str]:
    """The measured task columns whose sequences (at every setting of the scale) fit in one chunk."""
    cols = []
    for task in T.TASKS:
        if T.COLUMN[task] not in study.columns:
            continue
        settings = study.scale.tasks[task].settings if task in study.scale.tasks else []
        lens = [T.generator_kwargs(task, st)["seq_len"] for st in settings]
        if lens and max(lens) <= CHUNK_SIZE:
            cols.append(T.COLUMN[task])
    return cols


def seed_spread(study: RoundStudy, labels: list[str] | None = None, min_range: float = 0.3) -> pd.DataFrame:
    """The (row, task, setting) cells whose seeds disagree: per seed the best accuracy over the lr × wd sweep,
    and the cell is kept when its seeds (at least two) span ``min_range`` or more. Such a cell sits on a
    knife edge of the scale's budget (a run either learns the task in time or does not), so its mean says
    more about how many seeds crossed the edge than about the row."""
    labels = labels or study.round_labels
    cols = ["row", "task", "setting", "seeds", "accuracy per seed", "range"]
    best = tables.setting_scores(study.runs[study.runs["label"].isin(labels)]).sort_values("seed")
    rows = []
    for (lab, col, setting), g in best.groupby(["label", "column", "setting"], sort=False):
        spread = float(g["test_acc"].max() - g["test_acc"].min())
        if len(g) >= 2 and spread >= min_range:
            rows.append({"row": short_name(lab), "task": col, "setting": setting,
                         "seeds": ", ".join(str(s) for s in g["seed"]),
                         "accuracy per seed": ", ".join(fmt(a) for a in g["test_acc"]), "range": spread})
    table = pd.DataFrame(rows, columns=cols)
    return table.sort_values(["task", "range"], ascending=[True, False], kind="mergesort").reset_index(drop=True)


def seed_spread_note(study: RoundStudy, labels: list[str] | None = None, min_range: float = 0.3) -> str:
    """A sentence on ``seed_spread``: how many cells with two or more seeds disagree by ``min_range`` or more,
    and on which tasks."""
    labels = labels or study.round_labels
    table = seed_spread(study, labels, min_range)
    seeds_per_cell = study.runs[study.runs["label"].isin(labels)].groupby(["label", "column", "setting"])["seed"]
    multi = int((seeds_per_cell.nunique() >= 2).sum())
    if multi == 0:
        return f"{study.tag}: no row has two seeds on any setting, so the spread over seeds is not measured."
    if table.empty:
        return (f"{study.tag}: in each of the {multi} (row, task, setting) cells with two or more seeds, the seeds "
                f"agree within {min_range:g} accuracy.")
    per_task = table.groupby("task", sort=True).size()
    where = narrative.join_words([f"{task} ({n})" for task, n in per_task.items()])
    return (f"{study.tag}: {len(table)} of the {multi} (row, task, setting) cells with two or more seeds have seeds "
            f"that disagree by {min_range:g} accuracy or more: {where}. On those cells a run either learns the "
            f"task within the scale's budget or does not, and the mean counts how many seeds did; a difference "
            f"between two rows there needs more seeds than the rest of the table.")


# --- the study's conclusion (last round) ---------------------------------------------------------------

def ranking(study: RoundStudy, names: bool = True) -> pd.DataFrame:
    """Every trained row ranked by MAD's average, with its task scores and seeds."""
    table = _wide(study.summary, study.labels, study.columns + [AVERAGE])
    table = table.sort_values(AVERAGE, ascending=False, kind="mergesort")
    ns = study.summary.groupby("label")["n"].min()
    table["n seeds"] = [int(ns[lab]) for lab in table.index]
    table.insert(0, "rank", range(1, len(table) + 1))
    return table.rename(index=short_name) if names else table


def proposals_table(study: RoundStudy) -> pd.DataFrame:
    """Each round's proposal judged on its own success criteria with every row measured here."""
    rows = []
    for name in available_rounds():
        rnd = load_round(name)
        verdicts = [check_claim(c, study.summary, [label(v) for v in rnd.rows], study.columns).status
                    for c in rnd.success_criteria]
        rows.append({"round": rnd.number, "proposal": rnd.proposal, "criteria": len(verdicts),
                     HOLDS: verdicts.count(HOLDS), FAILS: verdicts.count(FAILS), UNSURE: verdicts.count(UNSURE),
                     "verdict": _word(verdicts)})
    return pd.DataFrame(rows).set_index("round")


def conclusion(study: RoundStudy) -> list[str]:
    """The study's closing sentences: the top of the ranking, the best per task, the proposals' fate."""
    rank = ranking(study, names=False)
    top = rank.head(3)
    out = [f"{study.tag}, over all {len(rank)} rows: the highest MAD averages are "
           + ", ".join(f"{short_name(lab)} ({fmt(r[AVERAGE])})" for lab, r in top.iterrows())
           + f"; Gated DeltaNet ranks #{int(rank.loc[label(REFERENCE), 'rank'])}, "
           f"DeltaNet #{int(rank.loc[label(BASELINE), 'rank'])}."]
    if len(rank) > 1:
        a, b = rank.index[0], rank.index[1]
        verdict, diff = narrative.compare(study.summary, a, b, AVERAGE)
        out.append(f"First against second ({short_name(a)} against {short_name(b)}, {signed(diff)} on average): "
                   f"{verdict}.")
    props = proposals_table(study)
    groups = {w: [p for p, v in zip(props["proposal"], props["verdict"]) if v == w]
              for w in ("held up", "did not hold up", "cannot be judged yet")}
    out.append("Of the five proposals, judged on their own success criteria: "
               + "; ".join(f"{w}: {', '.join(ps) or 'none'}" for w, ps in groups.items()) + ".")
    return out + best_per_task(study, study.labels)[1:]


# --- display helpers ----------------------------------------------------------------------------------

def shown(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Float columns rounded for display, -0.000 printed as 0.000 (so an executed notebook diffs cleanly)."""
    out = table.copy()
    floats = out.select_dtypes("float").columns
    out[floats] = out[floats].round(digits) + 0.0
    return out


def verdicts_markdown(study: RoundStudy, which: str = "claims") -> str:
    """The claims (or success criteria) as a markdown list: verdict here, the claim, the evidence, and the
    verdict on the seed document's own numbers."""
    table = claims_table(study, which)
    if table.empty:
        return f"The round has no {which.replace('_', ' ')}."
    lines = [f"- **{r['verdict here']}**: {r['claim']}. {r['evidence']}. "
             f"*On the seed's own table: {r[SEED_COLUMN]}.*"
             for _, r in table.iterrows()]
    counts = table["verdict here"].value_counts()
    head = (f"{study.tag}, of {len(table)}: "
            + " · ".join(f"{s}: {int(counts.get(s, 0))}" for s in (HOLDS, FAILS, UNSURE)) + ".")
    return head + "\n\n" + "\n".join(lines)
