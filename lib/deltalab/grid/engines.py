"""Train a plan: ``execute`` hands the runs not stored yet to an engine, this machine's process pool
(``grid.local``) or a Ray cluster (``grid.ray_cluster``), under the same store rules; ``run_variant`` plans and
trains one variant and returns its stored records (``python -m deltalab run``, run_variant.ipynb, the rounds)."""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Callable

from ..params import Scale, load_scale
from ..store import CorruptRecordError, Store
from ..runs import RunSpec
from .local import execute_local
from .planning import Summary, plan
from .provenance import Code, check_code
from .ray_cluster import execute_ray

# name → engine: fn(runs, scale, store, *, progress, code, stack, **its own options) -> Summary, training the runs
# not stored yet under the store's rules. The CLI's --engine choices are these names (docs/extending.md: add one).
ENGINES: dict[str, Callable[..., Summary]] = {
    "local": execute_local,  # a pool of worker processes on this machine (options: workers, threads, scale_ref)
    "ray": execute_ray,  # one Ray task per run on the cluster at address (options: address, num_cpus, num_gpus, ...)
}


def execute(runs: list[tuple[str, RunSpec]], scale: Scale, store: Store | None = None, workers: int = 1,
            threads: int | None = None, progress: bool = True, scale_ref: str | None = None,
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
    options = {k: v for k, v in dict(workers=workers, threads=threads, scale_ref=scale_ref).items() if k in takes}
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


def run_variant(variant: str, scale: str | Scale = "cpu", tasks: list[str] | str | None = None,
                seeds: list[int] | None = None, workers: int = 1, progress: bool = True,
                store: Store | None = None, engine: str = "local", address: str | None = None,
                allow_dirty: bool = False, **engine_options) -> tuple[list[dict], Summary]:
    """Train (or reuse) one variant on a scale's tasks; return its stored records and what was done.
    ``engine``/``address``/``allow_dirty``/``engine_options``: as ``execute``. ``scale``: a name, a path to a
    scale file (its runs are stored under the scale's name) or a loaded ``Scale`` (of params/scales)."""
    sc = scale if isinstance(scale, Scale) else load_scale(scale)
    ref = scale.name if isinstance(scale, Scale) else str(Path(scale).resolve()) if Path(scale).suffix else scale
    store = store or Store()
    runs = plan([variant], sc, tasks, seeds)
    summary = execute(runs, sc, store, workers=workers, progress=progress, scale_ref=ref, engine=engine,
                      address=address, allow_dirty=allow_dirty, **engine_options)
    records = [r for _, spec in runs if (r := store.get(spec)) is not None]
    return records, summary

