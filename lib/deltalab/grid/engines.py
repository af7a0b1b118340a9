"""Train a plan: ``execute`` hands the runs not stored yet to an engine, this machine's process pool
(``grid.local``) or a Ray cluster (``grid.ray_cluster``), under the same store rules. ``ensure`` is the one way
to train or reuse: it plans every row asked for at once and calls the engine once (``python -m deltalab run`` and
``grid``, the notebooks' "train, or reuse" cell); analysis then reads the store. ``run_variant``: ``ensure`` of one
row, returning its stored records."""
from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass, field
from typing import Callable

from ..params import Scale
from ..store import CorruptRecordError, Store
from ..runs import RunSpec, variant_id
from .local import execute_local
from .planning import Summary, plan
from .provenance import Code, check_code
from .ray_cluster import execute_ray

# name → engine: fn(runs, scale, store, *, progress, code, stack, **its own options) -> Summary, training the runs
# not stored yet under the store's rules. The CLI's --engine choices are these names (docs/extending.md: add one).
ENGINES: dict[str, Callable[..., Summary]] = {
    "local": execute_local,  # a pool of worker processes on this machine (options: workers, threads)
    "ray": execute_ray,  # one Ray task per run on the cluster at address (options: address, num_cpus, num_gpus, ...)
}


def execute(runs: list[tuple[str, RunSpec]], scale: Scale, store: Store | None = None, workers: int = 1,
            threads: int | None = None, progress: bool = True,
            engine: str = "local", address: str | None = None, allow_dirty: bool = False, stack: bool = False,
            **engine_options) -> Summary:
    """Train every run not yet stored. ``workers`` > 1 uses that many processes; ``threads`` per process
    defaults to ``cpu_count // workers``. A run another process holds is left to it and listed in
    ``Summary.held``; a corrupt record is moved aside and re-trained. ``engine="ray"`` trains on the Ray
    cluster at ``address`` instead (``deltalab.grid.ray_cluster``; ``engine_options``: ``num_cpus``, ``num_gpus``
    per run), with the same store rules. With a run to train, uncommitted code under ``lib/`` is refused
    (``provenance.DirtyTree``) unless ``allow_dirty`` (or ``DELTALAB_ALLOW_DIRTY=1``): then its diff is stored
    beside the records and named in each (``deltalab.grid.provenance``). ``stack=True``: the runs of each variant ×
    task × setting train as one stacked model (``deltalab.stack``; on Ray, one task per stack), each stored as its
    own record."""
    takes = options_of(engine)
    asked = ({"address": address} if address is not None else {}) | engine_options
    refused = [name for name in asked if name not in takes]
    if refused:
        raise ValueError(f"{', '.join(refused)}: not an option of engine={engine!r} (its options: {', '.join(takes)})")
    options = {k: v for k, v in dict(workers=workers, threads=threads).items() if k in takes}
    store = store or Store()
    code = Code()
    if any(_to_train(store, spec) for _, spec in runs):  # a study re-executed on its stored runs trains nothing
        code = check_code(allow_dirty)
    return ENGINES[engine](runs, scale, store, progress=progress, code=code, stack=stack, **options, **asked)


_SHARED = ("runs", "scale", "store", "progress", "code", "stack")  # what every engine takes


def options_of(engine: str) -> list[str]:
    """The options of the engine named ``engine`` (its parameters besides those every engine takes); ValueError
    naming the valid engines."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; valid: {', '.join(ENGINES)}")
    return [n for n in inspect.signature(ENGINES[engine]).parameters if n not in _SHARED]


def _to_train(store: Store, spec: RunSpec) -> bool:
    """Whether the grid would train ``spec``: no valid record of it is stored (a corrupt one is re-trained)."""
    try:
        return store.get(spec) is None
    except CorruptRecordError:
        return True


@dataclass
class Trained:
    """What ``ensure`` planned and what came of it: the plan (``(variant reference, spec)``, every run asked for),
    the engine's ``Summary``, and per row (variant id) how many of its runs were trained now and how many reused."""

    runs: list[tuple[str, RunSpec]]
    summary: Summary
    rows: dict[str, Summary] = field(default_factory=dict)

    def records(self, store: Store, ref: str | None = None) -> list[dict]:
        """The stored records of the plan (of the row ``ref`` only, if given), in plan order."""
        return [r for each, spec in self.runs if ref in (None, each) and (r := store.get(spec)) is not None]


def ensure(rows: list[str], scale: Scale, store: Store, *, tasks: list[str] | str | None = None,
           seeds: list[int] | None = None, engine: str = "local", extra_seed_variants: tuple[str, ...] = (),
           announce: bool = False, **options) -> Trained:
    """Train (or reuse) every run of ``rows`` (short names or a user's files) on the scale's ``tasks`` (default:
    all of the scale's) at ``seeds`` (default: each row's ``Scale.seeds_for``): one plan, every input checked before
    anything is trained, then one call of the engine, so ``workers=2`` trains two rows' runs at once. ``options``:
    as ``execute`` (``workers``, ``threads``, ``progress``, ``address``, ``allow_dirty``, ``stack``, per-run
    resources). ``announce``: say how many runs were planned (stderr) before training. A row's runs another process
    trained meanwhile count as trained now."""
    rows = list(dict.fromkeys(rows))  # a row named twice (a baseline as the variant) is one row
    runs = plan(rows, scale, tasks, seeds, extra_seed_variants=extra_seed_variants)
    if announce:
        print(f"{len(runs)} runs planned at scale {scale.name!r} in {store.root}", file=sys.stderr)
    stored = {spec for _, spec in runs if not _to_train(store, spec)}
    summary = execute(runs, scale, store, engine=engine, **options)
    per_row: dict[str, Summary] = {variant_id(ref): Summary() for ref in rows}
    for _, spec in runs:
        row = per_row[spec.variant]
        if spec in stored:
            row.skipped += 1
        elif (record := store.get(spec)) is None:
            row.busy += 1
        elif record.get("diverged"):
            row.diverged += 1
        else:
            row.trained += 1
    return Trained(runs, summary, per_row)


def run_variant(variant: str, scale: Scale, tasks: list[str] | str | None = None, seeds: list[int] | None = None,
                store: Store | None = None, **options) -> tuple[list[dict], Summary]:
    """Train (or reuse) one variant on a scale's tasks (``ensure`` of one row); return its stored records and what
    was done."""
    store = store or Store()
    trained = ensure([variant], scale, store, tasks=tasks, seeds=seeds, **options)
    return trained.records(store), trained.summary
