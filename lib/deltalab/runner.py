"""Turn (variants × tasks × settings × lr × wd × seeds) into stored results, resumably and in parallel.

``plan`` lists the runs a scale asks for; ``execute`` trains every run that is not stored yet, in
``workers`` processes (each with ``threads // workers`` torch threads: on a 2-core machine two
single-thread processes out-run one two-thread process, see params/scales/cpu.yaml). Every finished run
is written to the store at once, so an interrupted grid resumes where it stopped.
"""
from __future__ import annotations

import hashlib
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from . import tasks as T
from .params import Scale, load_scale
from .runtime import set_threads
from .store import Store
from .train import RunSpec, budget_id, make_spec, train_run
from .variants import VARIANTS, get_variant


def variant_id(ref: str) -> str:
    """The store name of a variant: its short name, or ``<file stem>-<content hash>`` for a user's file
    (so an edited file is not mistaken for its earlier version)."""
    if ref in VARIANTS:
        return ref
    path = Path(ref)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    return f"{path.stem}-{digest}"


def resolve_tasks(tasks: list[str] | str | None, scale: Scale) -> list[str]:
    """``None`` or "all" → every task of the scale; otherwise validated names."""
    if tasks is None or tasks == "all" or tasks == ["all"]:
        return list(scale.tasks)
    if isinstance(tasks, str):
        tasks = [t.strip() for t in tasks.split(",") if t.strip()]
    for t in tasks:
        if t not in T.TASKS:
            raise ValueError(f"unknown task {t!r}; valid: {', '.join(T.TASKS)}")
        if t not in scale.tasks:
            raise ValueError(f"task {t!r} is not part of scale {scale.name!r}; it has: {', '.join(scale.tasks)}")
    return list(tasks)


def plan(variant_refs: list[str], scale: Scale, tasks: list[str] | None = None,
         seeds: list[int] | None = None, extra_seed_variants: tuple[str, ...] = ()) -> list[tuple[str, RunSpec]]:
    """Every run of the grid as ``(variant reference, spec)``; variants are validated first (a user file is
    checked before anything is trained)."""
    tasks = resolve_tasks(tasks, scale)
    runs = []
    for ref in variant_refs:
        get_variant(ref)  # raises on an unknown name or a file that fails the validity checks
        vid = variant_id(ref)
        run_seeds = seeds if seeds else scale.seeds_for(vid, extra_seed_variants)
        for task in tasks:
            budget = budget_id(scale, task)
            for setting in scale.tasks[task].settings:
                for lr in scale.lrs:
                    for wd in scale.wds:
                        for seed in run_seeds:
                            runs.append((ref, make_spec(vid, task, setting, lr, wd, seed, scale.name, budget)))
    runs.sort(key=lambda run: run[1].seed)  # stable: the whole grid at the first seed finishes first
    return runs


def _run_one(ref: str, spec: RunSpec, scale_name: str, store_root: str, threads: int | None,
             parent: int | None = None) -> str:
    """Worker: train ``spec`` unless stored or claimed by another process. Returns what happened. A worker
    whose grid process is gone (killed) starts nothing new."""
    if parent is not None and os.getppid() != parent:
        return "busy"
    set_threads(threads)
    store = Store(store_root)
    if store.get(spec) is not None:
        return "skipped"
    with store.claim(spec) as owned:
        if not owned:
            return "busy"
        if store.get(spec) is not None:  # finished by another process between our check and the claim
            return "skipped"
        scale = load_scale(scale_name) if not Path(scale_name).suffix else load_scale(Path(scale_name))
        result = train_run(spec, scale, get_variant(ref))
        store.put(spec, result.to_record())
    return "diverged" if result.diverged else "trained"


@dataclass
class Summary:
    trained: int = 0
    skipped: int = 0
    busy: int = 0
    diverged: int = 0
    seconds: float = 0.0

    def __str__(self) -> str:
        return (f"{self.trained + self.diverged} trained ({self.diverged} diverged), {self.skipped} already stored, "
                f"{self.busy} held by another process, in {self.seconds:.0f} s")


ENGINES = ("local", "ray")


def execute(runs: list[tuple[str, RunSpec]], scale: Scale, store: Store | None = None, workers: int = 1,
            threads: int | None = None, progress: bool = True, scale_ref: str | None = None,
            engine: str = "local", address: str | None = None, **engine_options) -> Summary:
    """Train every run not yet stored. ``workers`` > 1 uses that many processes; ``threads`` per process
    defaults to ``cpu_count // workers``. ``engine="ray"`` trains on the Ray cluster at ``address`` instead
    (``deltalab.ray_engine``; ``engine_options``: ``num_cpus``, ``num_gpus`` per run)."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; valid: {', '.join(ENGINES)}")
    if engine == "ray":
        from .ray_engine import execute_ray

        return execute_ray(runs, scale, store, address=address, progress=progress, **engine_options)
    store = store or Store()
    summary = Summary()
    t0 = time.perf_counter()
    todo = [(ref, spec) for ref, spec in runs if store.get(spec) is None]
    summary.skipped = len(runs) - len(todo)
    threads = threads or max(1, (os.cpu_count() or 1) // max(workers, 1))
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=f"{scale.name} grid", file=sys.stderr, unit="run")

    def tally(outcome: str) -> None:
        setattr(summary, outcome, getattr(summary, outcome) + 1)
        if bar is not None:
            bar.update(1)

    scale_name = scale_ref or scale.name
    if workers <= 1:
        for ref, spec in todo:
            tally(_run_one(ref, spec, scale_name, str(store.root), threads))
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            pending = {pool.submit(_run_one, ref, spec, scale_name, str(store.root), threads, os.getpid())
                       for ref, spec in todo}
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    tally(f.result())
    if bar is not None:
        bar.close()
    summary.seconds = time.perf_counter() - t0
    return summary


def run_variant(variant: str, scale: str = "cpu", tasks: list[str] | str | None = None,
                seeds: list[int] | None = None, workers: int = 1, progress: bool = True,
                store: Store | None = None, engine: str = "local", address: str | None = None,
                **engine_options) -> tuple[list[dict], Summary]:
    """Train (or reuse) one variant on a scale's tasks; return its stored records and what was done."""
    sc = load_scale(scale)
    store = store or Store()
    runs = plan([variant], sc, tasks, seeds)
    summary = execute(runs, sc, store, workers=workers, progress=progress, scale_ref=scale, engine=engine,
                      address=address, **engine_options)
    records = [r for _, spec in runs if (r := store.get(spec)) is not None]
    return records, summary
