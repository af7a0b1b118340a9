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
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd

from . import tasks as T
from .params import Scale, load_scale
from .runtime import default_device, resolve_precision, set_threads
from .store import CorruptRecordError, Store
from .train import RunSpec, budget_id, make_spec, train_run
from .variants import VARIANTS, get_variant


def variant_id(ref: str) -> str:
    """The store name of a variant: its short name, or ``<file stem>-<content hash>`` for a user's file
    (so an edited file is not mistaken for its earlier version)."""
    if ref in VARIANTS:
        return ref
    path = Path(ref)
    if not path.is_file():
        raise ValueError(f"{ref!r} is neither a registered variant nor a file (`python -m deltalab variants` lists "
                         "the registered ones; a file is a path to a .py rule)")
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
    for seed in seeds or ():
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seeds must be integers ≥ 0; got {seed!r}")
    if seeds and len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct; got {list(seeds)}")
    for name in extra_seed_variants:
        if name not in VARIANTS and name not in variant_refs:
            raise ValueError(f"extra seed variant {name!r} is neither a registered variant nor one of the variants "
                             f"planned ({', '.join(variant_refs)})")
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


class RunError(RuntimeError):
    """A run that raised while training, with the run it was (variant, task, setting, seed) in its message."""


class RunsFailed(RuntimeError):
    """Raised after a grid in which some runs failed (raised, or their worker process died); every other run is
    stored, and running the grid again retries only the runs still missing."""

    def __init__(self, failures: list[tuple[RunSpec, BaseException]], total: int, where: str = "on this machine"):
        self.failures = failures
        lines = [_failure_line(spec, error) for spec, error in failures[:20]]
        more = [f"… and {len(failures) - 20} more"] if len(failures) > 20 else []
        super().__init__(f"{len(failures)} of {total} runs failed {where} (the others are stored):\n  "
                         + "\n  ".join(lines + more))


def _failure_line(spec: RunSpec, error: BaseException) -> str:
    """One line per failed run: a ``RunError`` names its run itself; anything else (a Ray task error, a dead worker
    process) is put after the run's description, reduced to its cause or its last line."""
    if isinstance(error, RunError):
        return str(error)
    cause = getattr(error, "cause", None)
    if isinstance(cause, BaseException):
        return f"{describe(spec)}: {type(cause).__name__}: {cause}"
    lines = str(error).strip().splitlines()
    return f"{describe(spec)}: {lines[-1] if lines else type(error).__name__}"


def describe(spec: RunSpec, ref: str | None = None) -> str:
    """``variant X, task T, setting S, lr …, wd …, seed N (scale)`` for messages."""
    sid = T.setting_id(spec.task, spec.setting_dict) if spec.setting else "baseline"
    name = spec.variant if ref in (None, spec.variant) else f"{spec.variant} ({ref})"
    return (f"variant {name}, task {spec.task}, setting {sid}, lr {spec.lr:g}, wd {spec.wd:g}, seed {spec.seed} "
            f"(scale {spec.scale})")


def check_budget(spec: RunSpec, scale: Scale) -> None:
    """The run's budget id is the one this process would train under (same scale file, same precision)."""
    if spec.budget_id and spec.budget_id != budget_id(scale, spec.task):
        precision = resolve_precision(scale.precision, default_device())
        raise ValueError(f"{describe(spec)} was planned under budget {spec.budget_id}, but this process would "
                         f"train it under {budget_id(scale, spec.task)} ({precision}; the scale file or the "
                         "precision differs between planning and training): plan and train on the same kind of "
                         "machine, or pin the scale's precision")


def _watch_parent(parent: int, every: float = 1.0) -> None:
    """Worker initializer: a daemon thread ends this process once its grid process is gone (killed), so a
    running worker does not train on for nobody; the lock of the run it held is then stale."""
    def watch():
        while True:
            time.sleep(every)
            if os.getppid() != parent:
                os._exit(70)

    threading.Thread(target=watch, name="watch grid process", daemon=True).start()


def _run_one(ref: str, spec: RunSpec, scale_name: str, store_root: str, threads: int | None,
             parent: int | None = None) -> str:
    """Worker: train ``spec`` unless stored or claimed by another process. Returns what happened. A worker
    whose grid process is gone (killed) starts nothing new (and ``_watch_parent`` ends a running one)."""
    if parent is not None and os.getppid() != parent:
        return "busy"
    set_threads(threads)
    store = Store(store_root)
    if store.get(spec, quarantine=True) is not None:
        return "skipped"
    with store.claim(spec) as owned:
        if not owned:
            return "busy"
        if store.get(spec, quarantine=True) is not None:  # finished by another process meanwhile
            return "skipped"
        scale = load_scale(scale_name) if not Path(scale_name).suffix else load_scale(Path(scale_name))
        check_budget(spec, scale)
        store.check_writable(spec)  # a full disk or unwritable store fails now, not after training
        try:
            result = train_run(spec, scale, get_variant(ref))
        except Exception as e:
            raise RunError(f"{describe(spec, ref)} failed: {type(e).__name__}: {e}") from e
        store.put(spec, result.to_record())
    return "diverged" if result.diverged else "trained"


@dataclass
class Summary:
    trained: int = 0
    skipped: int = 0
    busy: int = 0
    diverged: int = 0
    failed: int = 0
    seconds: float = 0.0
    held: list[str] = field(default_factory=list)  # the runs not taken: each run and the lock that held it

    def __str__(self) -> str:
        text = (f"{self.trained + self.diverged} trained ({self.diverged} diverged), {self.skipped} already "
                f"stored, {self.busy} held by another process, {self.failed} failed, in {self.seconds:.0f} s")
        if self.held:
            text += "\nnot taken (another process holds the lock; it expires if that process is gone):\n  "
            text += "\n  ".join(self.held)
        return text


ENGINES = ("local", "ray")


def execute(runs: list[tuple[str, RunSpec]], scale: Scale, store: Store | None = None, workers: int = 1,
            threads: int | None = None, progress: bool = True, scale_ref: str | None = None,
            engine: str = "local", address: str | None = None, **engine_options) -> Summary:
    """Train every run not yet stored. ``workers`` > 1 uses that many processes; ``threads`` per process
    defaults to ``cpu_count // workers``. A run another process holds is left to it and listed in
    ``Summary.held``; a corrupt record is moved aside and re-trained. ``engine="ray"`` trains on the Ray
    cluster at ``address`` instead (``deltalab.ray_engine``; ``engine_options``: ``num_cpus``, ``num_gpus``
    per run), with the same store rules."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; valid: {', '.join(ENGINES)}")
    if engine == "ray":
        from .ray_engine import execute_ray

        return execute_ray(runs, scale, store, address=address, progress=progress, **engine_options)
    if address is not None or engine_options:
        raise ValueError(f"address and {', '.join(engine_options) or 'per-run resources'} are options of "
                         "engine='ray'")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer ≥ 1 (processes); got {workers!r}")
    store = store or Store()
    summary = Summary()
    t0 = time.perf_counter()
    todo = [(ref, spec) for ref, spec in runs if store.get(spec, quarantine=True) is None]
    summary.skipped = len(runs) - len(todo)
    threads = threads or max(1, (os.cpu_count() or 1) // max(workers, 1))
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=f"{scale.name} grid", file=sys.stderr, unit="run")

    def tally(outcome: str, spec: RunSpec) -> None:
        setattr(summary, outcome, getattr(summary, outcome) + 1)
        if outcome == "busy":
            summary.held.append(f"{describe(spec)}: {store.lock_state(store.lock_path(spec))[1]}")
        if bar is not None:
            bar.update(1)

    failures: list[tuple[RunSpec, BaseException]] = []

    def settle(spec: RunSpec, outcome) -> None:
        """Tally a finished run; a run that raised (or whose worker died) is a failure, and the grid goes on."""
        try:
            tally(outcome(), spec)
        except (RunError, BrokenProcessPool) as e:
            failures.append((spec, e))
            tally("failed", spec)

    scale_name = scale_ref or scale.name
    if workers <= 1:
        for ref, spec in todo:
            settle(spec, lambda: _run_one(ref, spec, scale_name, str(store.root), threads))
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                                 initializer=_watch_parent, initargs=(os.getpid(),)) as pool:
            pending = {pool.submit(_run_one, ref, spec, scale_name, str(store.root), threads, os.getpid()): spec
                       for ref, spec in todo}
            try:
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for f in done:
                        settle(pending.pop(f), f.result)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)  # the runs in progress finish; none start
                raise
    if bar is not None:
        bar.close()
    summary.seconds = time.perf_counter() - t0
    if failures:
        raise RunsFailed(failures, len(todo))
    return summary


def missing(runs: list[tuple[str, RunSpec]], store: Store) -> list[str]:
    """The planned runs not in the store, each with the lock that holds it if one does, or with what is wrong
    with its record when that is not valid (not counted as stored). Reads only."""
    out = []
    for _, spec in runs:
        try:
            record = store.get(spec)
        except CorruptRecordError as e:
            out.append(f"{describe(spec)}: bad record {e.args[0].split(', so it is not counted')[0]}")
            continue
        if record is None:
            lock = store.lock_path(spec)
            out.append(f"{describe(spec)}: " + (store.lock_state(lock)[1] if lock.exists() else "not stored"))
    return out


def run_variant(variant: str, scale: str | Scale = "cpu", tasks: list[str] | str | None = None,
                seeds: list[int] | None = None, workers: int = 1, progress: bool = True,
                store: Store | None = None, engine: str = "local", address: str | None = None,
                **engine_options) -> tuple[list[dict], Summary]:
    """Train (or reuse) one variant on a scale's tasks; return its stored records and what was done.
    ``engine``/``address``/``engine_options``: as ``execute``. ``scale``: a name, a path to a scale file (its
    runs are stored under the scale's name) or a loaded ``Scale`` (of params/scales)."""
    sc = scale if isinstance(scale, Scale) else load_scale(scale)
    ref = scale.name if isinstance(scale, Scale) else str(Path(scale).resolve()) if Path(scale).suffix else scale
    store = store or Store()
    runs = plan([variant], sc, tasks, seeds)
    summary = execute(runs, sc, store, workers=workers, progress=progress, scale_ref=ref, engine=engine,
                      address=address, **engine_options)
    records = [r for _, spec in runs if (r := store.get(spec)) is not None]
    return records, summary


def grid_status(runs: list[tuple[str, RunSpec]], store: Store) -> pd.DataFrame:
    """One row per planned run: variant, task, setting id, seed, ``state`` (``stored``, ``held`` by a live
    lock, ``bad``: a record that is not valid, not counted as stored, or ``missing``), the stored run's
    ``wall_time_s``, ``estimate_s``: for a run not stored, the median wall time of the same variant and setting
    at its stored seeds, else of every stored run of that setting (NaN where no run of the setting is stored
    yet), and ``problem``: what is wrong with a bad record (its path and field). Reads only."""
    rows = []
    for _, spec in runs:
        problem = ""
        try:
            record = store.get(spec)
        except CorruptRecordError as e:
            record, problem = None, e.args[0].split(", so it is not counted")[0]
        lock = store.lock_path(spec)
        if problem:
            state = "bad"
        elif record is not None:
            state = "stored"
        elif lock.exists() and not store.lock_state(lock)[0]:
            state = "held"
        else:
            state = "missing"
        rows.append({"variant": spec.variant, "task": spec.task,
                     "setting": T.setting_id(spec.task, spec.setting_dict) if spec.setting else "baseline",
                     "seed": spec.seed, "state": state,
                     "wall_time_s": float(record["wall_time_s"]) if record is not None else np.nan,
                     "problem": problem})
    frame = pd.DataFrame(rows, columns=["variant", "task", "setting", "seed", "state", "wall_time_s", "problem"])
    same_row = frame.groupby(["variant", "task", "setting"])["wall_time_s"].transform("median")
    same_setting = frame.groupby(["task", "setting"])["wall_time_s"].transform("median")
    frame["estimate_s"] = np.where(frame["state"] == "stored", np.nan, same_row.fillna(same_setting))
    return frame[["variant", "task", "setting", "seed", "state", "wall_time_s", "estimate_s", "problem"]]


def status_report(status: pd.DataFrame, workers: int) -> str:
    """What a grid has done and what is left, per seed, with the time left projected from the stored runs'
    wall times at ``workers`` processes (as measured: on busy cores the projection is pessimistic)."""
    states = ["stored", "held", "missing"] + (["bad"] if (status["state"] == "bad").any() else [])
    counts = pd.crosstab(status["seed"], status["state"]).reindex(columns=states, fill_value=0)
    counts["planned"] = counts.sum(axis=1)
    left = status[status["state"] != "stored"]
    unknown = int(left["estimate_s"].isna().sum())
    hours = left["estimate_s"].sum() / 3600
    stored = status[status["state"] == "stored"]
    lines = [counts.to_string(), "",
             f"stored: {len(stored)} of {len(status)} runs, {stored['wall_time_s'].sum() / 3600:.1f} process-hours "
             f"of wall time as recorded"]
    if len(left):
        lines.append(f"left: {len(left)} runs, about {hours:.1f} process-hours by the stored runs' wall times "
                     f"(median per variant and setting, else per setting), so about {hours / workers:.1f} h at "
                     f"{workers} processes" + (f"; {unknown} run(s) of settings with no stored run are not in "
                                                "that figure" if unknown else ""))
    bad = status[status["state"] == "bad"]
    if len(bad):
        lines.append(f"bad records: {len(bad)}, not counted as stored (nothing was deleted; a grid moves each aside "
                     "to <name>.corrupt and re-trains its run):")
        lines += [f"  {p}" for p in bad["problem"]]
    return "\n".join(lines)
