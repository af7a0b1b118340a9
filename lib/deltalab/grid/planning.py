"""What a grid trains, and what came of it: the plan both engines (``grid.local``, ``grid.ray_cluster``) share.

``plan`` lists the runs a scale asks for, as ``(variant reference, RunSpec)``, after checking every input (tasks,
seeds, variants: a user's file is validated before anything is trained); each row's runs are ``runs.row_specs``
(what analysis reads back), stored under ``runs.variant_id`` (both re-exported here). ``check_budget`` is what a process checks before it trains a run (it would train it under
the budget id it was planned with), ``describe`` how messages name a run. An engine counts what it did in a
``Summary`` and, after a grid in which some runs failed, raises ``RunsFailed`` naming each.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import tasks as T
from ..params import Scale
from ..runtime import default_device, resolve_precision
from ..runs import RunSpec, budget_id, resolve_tasks, row_specs, variant_id
from ..variants import VARIANTS, get_variant


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
        runs += [(ref, spec) for spec in row_specs(vid, scale, tasks, run_seeds)]
    runs.sort(key=lambda run: run[1].seed)  # stable: the whole grid at the first seed finishes first
    return runs


def stacks(runs: list[tuple[str, RunSpec]]) -> list[tuple[str, list[RunSpec]]]:
    """The runs grouped as the stacked trainer takes them (``deltalab.stack``): one group per variant × task ×
    setting (its lr × wd × seeds), in the order each group's first run comes in ``runs``."""
    groups: dict[tuple, list[RunSpec]] = {}
    for ref, spec in runs:
        groups.setdefault((ref, spec.variant, spec.task, spec.setting, spec.scale, spec.budget_id), []).append(spec)
    return [(key[0], specs) for key, specs in groups.items()]


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


@dataclass
class Summary:
    """What an engine did with a grid's runs (printed as one line, and the runs another process held)."""

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
