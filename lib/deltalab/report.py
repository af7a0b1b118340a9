"""What the notebooks call: train-or-reuse through the store, then tables, figures and sentences.

Notebooks hold no logic of their own (no ``def``/``class``): they call these functions and show results.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from . import narrative, plots, tables
from . import tasks as T
from .runner import Summary, run_variant, variant_id
from .runtime import REPO_ROOT, environment
from .store import Store
from .variants import VARIANTS, get_variant

BASELINES = ("delta_net", "gated_delta_net")


@dataclass
class VariantReport:
    label: str
    formula: str
    table: pd.DataFrame  # the variant's row and both baselines' rows, with the MAD average
    summary: pd.DataFrame  # mean, 95% interval and n per row and task
    runs: pd.DataFrame  # one row per stored run used
    trained: dict  # what was trained now vs reused, per row
    figure: Path
    sentences: list[str]
    seeds_note: str


def _tasks_arg(tasks) -> list[str] | None:
    if tasks in (None, "all"):
        return None
    return [t.strip() for t in tasks.split(",")] if isinstance(tasks, str) else list(tasks)


def variant_report(variant: str, scale: str = "cpu", tasks=None, seeds=None, workers: int = 1,
                   figures_dir: str | Path | None = None, store: Store | None = None,
                   progress: bool = False, engine: str = "local", address: str | None = None) -> VariantReport:
    """Train (or reuse) ``variant`` and both baselines on the scale's tasks; compare them. ``engine="ray"``
    trains on the Ray cluster at ``address`` (``deltalab.ray_engine``)."""
    store = store or Store()
    v = get_variant(variant)  # validity checks run here, before anything is trained or written
    task_list = _tasks_arg(tasks)
    records, trained = [], {}
    for ref in dict.fromkeys([variant, *BASELINES]):
        recs, summary = run_variant(ref, scale, task_list, seeds, workers=workers, progress=progress, store=store,
                                    engine=engine, address=address)
        records += recs
        trained[variant_id(ref) if ref not in VARIANTS else ref] = summary
    runs = tables.records_frame(records)
    labels = tables.label_order(runs["label"].unique())
    labels = [v.label] + [lab for lab in labels if lab != v.label]
    columns = [c for c in T.COLUMNS if c in set(runs["column"])]
    table = tables.accuracies_df(runs).reindex(index=labels, columns=columns)
    average = "Average" if len(columns) == len(T.COLUMNS) else f"Average of {len(columns)} tasks"
    table[average] = table[columns].mean(axis=1, skipna=False)
    summ = tables.summary(runs)
    figures_dir = Path(figures_dir or REPO_ROOT / "outputs" / scale / "figures")
    fig = plots.rows_by_task(summ, labels, figures_dir / f"run_variant_{variant_id(variant)}.png",
                             f"{narrative.short(v.label)} against the baselines (scale: {scale})")
    sentences = narrative.row_against(summ, v.label, [VARIANTS[b].label for b in BASELINES], columns)
    return VariantReport(v.label, v.formula, table, summ, runs, trained, fig, sentences,
                         narrative.seeds_note(summ, labels))


def trained_counts(trained: dict[str, Summary]) -> pd.DataFrame:
    """How many runs each row trained now and how many it reused from the store."""
    return pd.DataFrame([{"variant": k, "trained now": s.trained + s.diverged, "reused": s.skipped,
                          "diverged": s.diverged} for k, s in trained.items()]).set_index("variant")


def write_environment(path: str | Path) -> Path:
    """Versions, commit and device as JSON beside an executed notebook."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(environment(), indent=1, sort_keys=True) + "\n")
    return path
