"""The grid on this machine: a pool of worker processes, each training one run at a time into the store.

``execute_local`` trains every planned run that is not stored yet, in ``workers`` processes (each with
``threads // workers`` torch threads: on a 2-core machine two single-thread processes out-run one two-thread
process, see params/scales/cpu.yaml). A worker claims its run (``Store.claim``) and writes its record the moment it
finishes, so an interrupted grid resumes where it stopped; a worker whose grid process is killed stops.
``grid.engines.execute`` chooses between this engine and the Ray one. With ``stack=True`` a worker trains a whole
stack at a time (``planning.stacks``: the runs of one variant × task × setting not stored yet, as one model, see
``deltalab.stack``), claiming each member and storing each the moment it finishes.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import ExitStack
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from ..params import Scale
from ..runtime import set_threads
from ..store import Store
from ..runs import RunSpec
from ..train import train_run
from ..variants import get_variant
from .planning import RunError, RunsFailed, Summary, check_budget, describe, stacks
from .provenance import Code, store_diff


def _watch_parent(parent: int, every: float = 1.0) -> None:
    """Worker initializer: a daemon thread ends this process once its grid process is gone (killed), so a
    running worker does not train on for nobody; the lock of the run it held is then stale."""
    def watch():
        while True:
            time.sleep(every)
            if os.getppid() != parent:
                os._exit(70)

    threading.Thread(target=watch, name="watch grid process", daemon=True).start()


def _run_one(ref: str, spec: RunSpec, scale: Scale, store_root: str, threads: int | None,
             parent: int | None = None, code: Code = Code()) -> str:
    """Worker: train ``spec`` unless stored or claimed by another process. Returns what happened. A worker
    whose grid process is gone (killed) starts nothing new (and ``_watch_parent`` ends a running one). ``code``:
    the uncommitted code the grid was allowed to train with (``grid.provenance``): its diff is stored beside the
    record, and named in it."""
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
        check_budget(spec, scale)
        store.check_writable(spec)  # a full disk or unwritable store fails now, not after training
        try:
            result = train_run(spec, scale, get_variant(ref))
        except Exception as e:
            raise RunError(f"{describe(spec, ref)} failed: {type(e).__name__}: {e}") from e
        record = result.to_record()
        if store_diff(store.root, spec.scale, code):
            record["environment"]["diff"] = code.hash
        store.put(spec, record)
    return "diverged" if result.diverged else "trained"


def _run_stack(ref: str, specs: list[RunSpec], scale: Scale, store_root: str, threads: int | None,
               parent: int | None = None, code: Code = Code()) -> list[str]:
    """Worker: train the members of a stack that are neither stored nor claimed by another process, as one model
    (``stack.train_stack``), storing each as it finishes. Returns what happened to each of ``specs``. ``code``:
    as ``_run_one``."""
    if parent is not None and os.getppid() != parent:
        return ["busy"] * len(specs)
    from ..stack import train_stack

    set_threads(threads)
    store = Store(store_root)
    outcome: dict[RunSpec, str] = {}
    with ExitStack() as held:
        owned = []
        for spec in specs:
            if store.get(spec, quarantine=True) is not None:
                outcome[spec] = "skipped"
            elif not held.enter_context(store.claim(spec)):
                outcome[spec] = "busy"
            elif store.get(spec, quarantine=True) is not None:  # finished by another process meanwhile
                outcome[spec] = "skipped"
            else:
                owned.append(spec)
        if owned:
            for spec in owned:
                check_budget(spec, scale)
                store.check_writable(spec)  # a full disk or unwritable store fails now, not after training

            def put(spec: RunSpec, result) -> None:
                record = result.to_record()
                if store_diff(store.root, spec.scale, code):
                    record["environment"]["diff"] = code.hash
                store.put(spec, record)
                outcome[spec] = "diverged" if result.diverged else "trained"

            try:
                train_stack(owned, scale, get_variant(ref), on_result=put)
            except Exception as e:
                raise RunError(f"a stack of {len(owned)} runs ({describe(owned[0], ref)} and the other lr, wd and "
                               f"seeds of its cell) failed: {type(e).__name__}: {e}") from e
    return [outcome[spec] for spec in specs]


def execute_local(runs: list[tuple[str, RunSpec]], scale: Scale, store: Store | None = None, workers: int = 1,
                  threads: int | None = None, progress: bool = True, code: Code = Code(),
                  stack: bool = False) -> Summary:
    """Train every run not yet stored on this machine. ``workers`` > 1 uses that many processes; ``threads`` per
    process defaults to ``cpu_count // workers``. A run another process holds is left to it and listed in
    ``Summary.held``; a corrupt record is moved aside and re-trained. The workers get ``scale`` itself (it pickles;
    nothing is loaded again); ``code``: as ``_run_one``. ``stack``: a worker
    trains a stack of runs at a time (``deltalab.stack``) instead of one run. Raises ``RunsFailed`` after the grid
    if some runs failed (every other run is stored)."""
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

    def settle_stack(specs: list[RunSpec], outcomes) -> None:
        """Tally a finished stack; when it raised (or its worker died), its members not stored are failures."""
        try:
            done = outcomes()
        except (RunError, BrokenProcessPool) as e:
            for spec in specs:
                if store.get(spec) is not None:
                    tally("trained", spec)
                else:
                    failures.append((spec, e))
                    tally("failed", spec)
            return
        for spec, outcome in zip(specs, done):
            tally(outcome, spec)

    # a unit of work: one run (``_run_one``) or, with ``stack``, the runs of one cell (``_run_stack``)
    if stack:
        units = [(_run_stack, ref, specs, settle_stack) for ref, specs in stacks(todo)]
    else:
        units = [(_run_one, ref, spec, settle) for ref, spec in todo]
    if workers <= 1:
        for work, ref, what, done in units:
            done(what, lambda: work(ref, what, scale, str(store.root), threads, code=code))
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                                 initializer=_watch_parent, initargs=(os.getpid(),)) as pool:
            pending = {pool.submit(work, ref, what, scale, str(store.root), threads, os.getpid(), code): (what, done)
                       for work, ref, what, done in units}
            try:
                while pending:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for f in finished:
                        what, done = pending.pop(f)
                        done(what, f.result)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)  # the runs in progress finish; none start
                raise
    if bar is not None:
        bar.close()
    summary.seconds = time.perf_counter() - t0
    if failures:
        raise RunsFailed(failures, len(todo))
    return summary
