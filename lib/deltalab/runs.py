"""A run's identity: the fields that name its record and the record's path in the store.

    RunSpec(variant, task, setting, lr, wd, seed, scale, budget_id)
    <root>/<scale>/<variant>/<task>/<setting id>/lr<lr>_wd<wd>_seed<seed>_b<budget_id>.json  (``store.Store.path``)

``budget_id`` fingerprints what else in the scale changes a run's result (the task's budget, the test set,
evaluation, early stopping, the precision it trains in), so a changed budget is a new run. This module sits
below both ``store`` (which files records by it) and ``train`` (which trains one); it imports neither.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

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
