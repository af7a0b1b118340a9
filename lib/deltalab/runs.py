"""A run's identity: the fields that name its record and the record's path in the store.

    RunSpec(variant, task, setting, lr, wd, seed, scale, budget_id)
    <root>/<scale>/<variant>/<task>/<setting id>/lr<lr>_wd<wd>_seed<seed>_b<budget_id>.json  (``store.Store.path``)

``budget_id`` fingerprints what else in the scale changes a run's result (the task's budget, the test set,
evaluation, early stopping, the precision it trains in), so a changed budget is a new run. This module sits
below both ``store`` (which files records by it) and ``train`` (which trains one); it imports neither.

Which runs a scale asks for of one row is also a run's identity: ``row_specs`` lists them (every setting × lr × wd
× seed of the tasks asked for), so the grid plans what it trains and analysis reads what was planned from one
definition; ``variant_id`` is the name a row's runs are stored under, ``resolve_tasks`` the tasks asked for.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from . import tasks as T
from .params import Scale
from .runtime import default_device, resolve_precision


@dataclass(frozen=True)
class RunSpec:
    """One training run: a variant on one task setting, at one (lr, wd), one seed, under one scale."""

    variant: str  # registered short name, or a user file's id
    task: str
    setting: tuple[tuple[str, object], ...]  # the changes from MAD's baseline, as sorted (key, value) pairs
    lr: float
    wd: float
    seed: int
    scale: str
    budget_id: str = ""  # fingerprint of the scale's budget for this task (see budget_id): a changed budget is a new run

    @property
    def setting_dict(self) -> dict:
        return dict(self.setting)


def budget_id(scale: Scale, task: str, precision: str | None = None) -> str:
    """A short fingerprint of everything in a scale that changes a run's result besides its spec: the task's
    budget, the test set, evaluation and early stopping, and the precision the run trains in. ``precision``
    is the resolved one (``fp32`` or ``bf16``); ``None`` resolves the scale's policy on this machine's default
    device, so an ``auto`` scale gives a bf16 run and an fp32 run of one cell different ids (and files)."""
    b = scale.tasks[task]
    precision = precision or resolve_precision(scale.precision, default_device())
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"budget_id needs a resolved precision (fp32 or bf16); got {precision!r}")
    key = (b.num_train_examples, b.epochs, b.batch_size, scale.num_test_examples, scale.eval_every,
           scale.early_stop, precision)
    return hashlib.sha256(repr(key).encode()).hexdigest()[:6]


def make_spec(variant: str, task: str, setting: dict, lr: float, wd: float, seed: int, scale: str,
              budget: str = "") -> RunSpec:
    return RunSpec(variant, task, tuple(sorted(setting.items())), float(lr), float(wd), int(seed), scale, budget)


def variant_id(ref: str) -> str:
    """The store name of a variant: its short name, or ``<file stem>-<content hash>`` for a user's file
    (so an edited file is not mistaken for its earlier version)."""
    from .variants import VARIANTS

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


def row_specs(vid: str, scale: Scale, tasks: list[str], seeds) -> list[RunSpec]:
    """The runs of one row (variant id ``vid``) on ``tasks`` (resolved), at ``seeds``: every setting × lr × wd × seed
    of each task, in that order, under the budget id this machine trains it with."""
    specs = []
    for task in tasks:
        budget = budget_id(scale, task)
        for setting in scale.tasks[task].settings:
            for lr in scale.lrs_for(task):
                for wd in scale.wds:
                    for seed in seeds:
                        specs.append(make_spec(vid, task, setting, lr, wd, seed, scale.name, budget))
    return specs
