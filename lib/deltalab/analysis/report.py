"""What run_variant.ipynb calls once the grid trained or reused its rows (``grid.ensure(report.rows_of(variant),
...)``): the rows read from the store, the same row assembly, paired statistics and sentences as the round
notebooks (the rest of ``deltalab.analysis``); and ``write_environment``, the environment file beside an executed
notebook (both notebooks, scripts/study.sh).

Notebooks hold no logic of their own (no ``def``/``class``): they call these functions and show results.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .. import plots
from .. import tasks as T
from .accuracies import expected_runs, records_frame
from ..params import Scale, seed_problem
from ..runs import resolve_tasks, variant_id
from ..runtime import environment
from ..store import Store
from ..variants import VARIANTS, get_variant
from . import inert as inert_cells
from . import sentences, stats, tables
from .names import AVERAGE, BASELINES
from .study import blind_levels, curves, expected_settings, per_seed, schedule, seed_scores, stored_runs


@dataclass
class VariantReport:
    name: str  # the row's display name (its variant id)
    formula: str
    table: pd.DataFrame  # the variant's row and both baselines' rows, task means with the Average
    scores: pd.DataFrame  # per-seed scores (analysis.study.seed_scores)
    inert: pd.DataFrame  # where the change does not act (analysis.inert.cells)
    runs: pd.DataFrame  # one row per stored run used
    figure: Path
    sentences: list[str]
    seeds_note: str
    learning: pd.DataFrame  # per row and setting: learned within the budget, still climbing (analysis.inert.learning)


class ParameterError(ValueError):
    """A notebook parameter that is not valid; the message names it and what is valid. In a notebook it shows as
    that one line (IPython renders an exception through ``_render_traceback_``), not as a traceback through the
    library, so papermill's output ends with it, as the CLI's does."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


def check_parameters(variant: str, scale: str, tasks=None, seeds=None) -> Scale:
    """run_variant.ipynb's parameters, checked before anything is trained: the variant (a user's file is loaded and
    passes the rule checks), the scale (a name or a scale file's path), the tasks and the seeds (distinct, each from
    0 to ``params.MAX_SEED``). Returns the scale, loaded (the notebook's one ``load_scale``); a ``ParameterError``
    with the check's one-line message otherwise."""
    from ..params import load_scale

    try:
        get_variant(variant)
        sc = load_scale(scale)
        resolve_tasks(_tasks_arg(tasks), sc)
    except ValueError as e:
        raise ParameterError(str(e)) from None
    if seeds is not None:
        if not isinstance(seeds, (list, tuple)) or not seeds:
            raise ParameterError(f"seeds must be None (the scale's) or a non-empty list of seeds such as [0, 1]; "
                                 f"got {seeds!r}")
        for seed in seeds:
            if seed_problem(seed):
                raise ParameterError(f"seeds: {seed_problem(seed)}")
        if len(set(seeds)) != len(seeds):
            raise ParameterError(f"seeds must be distinct; got {seeds!r}")
    return sc


def _tasks_arg(tasks) -> list[str] | None:
    if tasks in (None, "all"):
        return None
    return [t.strip() for t in tasks.split(",")] if isinstance(tasks, str) else list(tasks)


def rows_of(variant: str) -> list[str]:
    """The rows of ``variant``'s report: the variant and both baselines (once each)."""
    return list(dict.fromkeys([variant, *BASELINES]))


def variant_report(variant: str, scale: Scale, store: Store, tasks=None, seeds=None,
                   figures_dir: str | Path | None = None) -> VariantReport:
    """``variant`` and both baselines (``rows_of``) on the scale's tasks, read from ``store`` (where
    ``grid.ensure(rows_of(variant), scale, store, tasks=tasks, seeds=seeds)`` trained or reused them); compared,
    paired over seeds. The figure goes to ``figures_dir`` (default: beside the store, ``<tables dir>/figures``)."""
    v = get_variant(variant)
    sc = scale
    task_list = resolve_tasks(_tasks_arg(tasks), sc)
    records = stored_runs(store, [variant_id(ref) for ref in rows_of(variant)], sc, task_list, seeds)
    name = variant_id(variant)
    rows = list(dict.fromkeys([name, *BASELINES]))
    columns = [c for c in T.COLUMNS if c in {T.TASKS[t].column for t in task_list}]
    expected = expected_settings(sc, task_list)
    scores, _ = seed_scores(records_frame(records), expected_runs(sc, task_list))
    inert = inert_cells.cells(records, expected, sc, inert_cells.STATE_ONLY | ({name} if v.state_only else set()))
    learning = inert_cells.learning(curves(records, rows, schedule(sc)), expected, blind=blind_levels(sc))
    table = tables.means(scores, rows, columns)
    figures_dir = Path(figures_dir or store.tables_dir(sc.name) / "figures")
    bars = []
    for r in rows:
        for col in columns + [AVERAGE]:
            lv = stats.level(per_seed(scores, r, col).values())
            bars.append({"row": r, "column": col, "mean": lv.mean, "low": lv.low, "high": lv.high, "n": lv.n})
    fig = plots.rows_by_task(pd.DataFrame(bars), rows, figures_dir / f"run_variant_{name}.png",
                             f"{name} against the baselines (scale {sc.name})")
    said = sentences.row_against(tables.row_against(scores, inert, name, list(BASELINES), columns), scores, inert,
                                 name, list(BASELINES), columns, learning)
    return VariantReport(name, v.formula, table, scores, inert, records_frame(records), fig, said,
                         sentences.seeds_note(scores, rows), learning)


def trained_counts(trained: dict) -> pd.DataFrame:
    """How many runs each row trained now and how many it reused from the store (``grid.ensure(...).rows``: row →
    its ``Summary``)."""
    return pd.DataFrame([{"variant": k, "trained now": s.trained + s.diverged, "reused": s.skipped,
                          "diverged": s.diverged} for k, s in trained.items()]).set_index("variant")


def write_environment(path: str | Path, scale: Scale | None = None, store: Store | None = None) -> Path:
    """Versions, commit and device as JSON beside an executed notebook, written only if its content changes.

    With ``scale``: the environment of the stored runs of the study's rows (registered variants) at that
    scale, counted over their records (commits, versions, devices, platforms, precisions, backends), so the
    file describes what produced the numbers and changes only when the stored runs do (re-running the study
    with nothing new to train leaves it as it is). Without: this machine's environment."""
    path = Path(path)
    if scale is None:
        data = environment()
    else:
        data = runs_environment((store or Store()).records(scale), scale.name)
    text = json.dumps(data, indent=1, sort_keys=True) + "\n"
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return path


def runs_environment(records: list[dict], scale: str) -> dict:
    """How many of the study's stored runs were trained under each commit, package versions, device,
    platform, precision and backend."""
    records = [r for r in records if r["spec"]["variant"] in VARIANTS]

    def count(key) -> dict[str, int]:
        c = Counter(key(r) for r in records)
        return dict(sorted(c.items()))

    env = lambda r: r.get("environment") or {}  # noqa: E731
    return {
        "scale": scale,
        "runs": len(records),
        "what": ("the environment of the stored runs of the study's rows (registered variants) at this scale, "
                 "with the number of runs under each"),
        "commits": count(lambda r: env(r).get("commit", "unknown")),
        "versions": [dict(json.loads(v), runs=n)
                     for v, n in count(lambda r: json.dumps(env(r).get("versions", {}), sort_keys=True)).items()],
        "devices": count(lambda r: env(r).get("device", "unknown")),
        "platforms": count(lambda r: env(r).get("platform", "unknown")),
        "cpu_native_bf16": count(lambda r: str(env(r).get("cpu_native_bf16", "unknown")).lower()),
        "precisions": count(lambda r: r["precision"]),
        "backends": count(lambda r: r.get("backend", "unknown")),
    }
