"""Parameter files: YAML under ``params/`` loaded into frozen dataclasses. An unknown key raises.

A scale (``params/scales/<name>.yaml``) says how much of MAD's protocol a run gets:

    name, description          what the scale is and, in plain words, what it cuts from MAD
    lrs, wds                   the learning-rate × weight-decay sweep (best-of-sweep per setting)
    seeds                      seeds for every variant; baseline_seeds for the baselines and proposals
    precision                  auto | bf16 | fp32 (see deltalab.runtime)
    num_test_examples          test-set size (MAD: 1280)
    eval_every                 evaluate on the test split every k epochs (and always at the last one)
    early_stop                 stop once test accuracy ≥ this (MAD: 0.999)
    resources                  what one run asks of a Ray node: {num_cpus: 1, num_gpus: 0} by default
    tasks:                     per task: the budget and the MAD settings kept
      <task>: {num_train_examples, epochs, batch_size, settings: [changes from MAD's baseline]}
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .runtime import PRECISIONS, REPO_ROOT

PARAMS_DIR = REPO_ROOT / "params"


def _check_keys(kind: str, data: dict, cls, where: str) -> None:
    valid = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - valid
    if unknown:
        raise ValueError(f"{where}: unknown {kind} key(s) {sorted(unknown)}; valid: {sorted(valid)}")
    missing = {f.name for f in dataclasses.fields(cls)
               if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING} - set(data)
    if missing:
        raise ValueError(f"{where}: missing {kind} key(s) {sorted(missing)}")


@dataclass(frozen=True)
class TaskBudget:
    num_train_examples: int
    epochs: int
    batch_size: int
    settings: tuple[dict, ...] = ({},)  # changes from MAD's baseline setting; {} is the baseline itself

    def __post_init__(self):
        for name in ("num_train_examples", "epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer; got {getattr(self, name)!r}")


@dataclass(frozen=True)
class Scale:
    name: str
    description: str
    lrs: tuple[float, ...]
    wds: tuple[float, ...]
    seeds: tuple[int, ...]
    tasks: dict[str, TaskBudget]
    baseline_seeds: tuple[int, ...] = ()
    seeded_variants: tuple[str, ...] = ()  # besides the two baselines, the variants that get baseline_seeds
    precision: str = "auto"
    num_test_examples: int = 1280
    eval_batch_size: int = 512
    eval_every: int = 1
    early_stop: float = 0.999
    timings: dict[str, Any] = field(default_factory=dict)  # measured figures that justify the budget (free form)
    resources: dict[str, float] = field(default_factory=dict)  # per run on a Ray cluster: num_cpus, num_gpus

    def seeds_for(self, variant: str, extra_seed_variants: tuple[str, ...] = ()) -> tuple[int, ...]:
        """Every variant gets ``seeds``; the baselines and named proposals get ``baseline_seeds`` if longer."""
        more = ("delta_net", "gated_delta_net") + self.seeded_variants + tuple(extra_seed_variants)
        if variant in more and self.baseline_seeds:
            return tuple(dict.fromkeys(self.seeds + self.baseline_seeds))
        return self.seeds


def available_scales() -> list[str]:
    return sorted(p.stem for p in (PARAMS_DIR / "scales").glob("*.yaml"))


def load_scale(name_or_path: str | Path) -> Scale:
    """Load ``params/scales/<name>.yaml`` (or a path). Unknown scale or key → ValueError naming the valid ones."""
    from . import tasks as task_registry

    path = Path(name_or_path)
    if not path.suffix:
        path = PARAMS_DIR / "scales" / f"{name_or_path}.yaml"
    if not path.exists():
        raise ValueError(f"unknown scale {str(name_or_path)!r}; valid: {', '.join(available_scales())}")
    data = yaml.safe_load(path.read_text())
    _check_keys("scale", data, Scale, str(path))
    tasks = {}
    for task, budget in data["tasks"].items():
        if task not in task_registry.TASKS:
            raise ValueError(f"{path}: unknown task {task!r}; valid: {', '.join(task_registry.TASKS)}")
        _check_keys("task budget", budget, TaskBudget, f"{path}: tasks.{task}")
        settings = budget.pop("settings", None) or [{}]
        if settings == "all":  # every MAD setting of the task, written as its change from the baseline
            base = task_registry.baseline(task)
            settings = [{k: v for k, v in full.items() if base.get(k) != v} for full in task_registry.settings(task)]
        settings = tuple(settings)
        for s in settings:
            task_registry.generator_kwargs(task, s)  # validates the keys and values of every change
        tasks[task] = TaskBudget(settings=settings, **budget)
    data["tasks"] = tasks
    bad = set(data.get("resources") or {}) - {"num_cpus", "num_gpus"}
    if bad:
        raise ValueError(f"{path}: unknown resources key(s) {sorted(bad)}; valid: ['num_cpus', 'num_gpus']")
    if data.get("precision", "auto") not in PRECISIONS:
        raise ValueError(f"{path}: precision must be one of {PRECISIONS}; got {data['precision']!r}")
    for key in ("lrs", "wds", "seeds", "baseline_seeds", "seeded_variants"):
        if key in data:
            data[key] = tuple(data[key])
    return Scale(**data)


CLAIM_KINDS = {  # kind → the fields it needs besides text/kind/task
    "beats": ("variant", "other"),  # variant's score is above other's on task
    "lags": ("variant", "other"),  # variant's score is below other's on task
    "no_worse": ("variant", "other"),  # variant does not lag other on task
    "best": ("variant",),  # variant is the top row of the round on task
    "at_least": ("variant", "threshold"),  # variant's score ≥ threshold
    "above": ("variant", "threshold"),  # variant's score > threshold
    "below": ("variant", "threshold"),  # variant's score < threshold
    "saturated": ("threshold",),  # at least ``fraction`` of the round's rows score ≥ threshold
}


@dataclass(frozen=True)
class Claim:
    """A seed document's claim (or a proposal's success criterion), written so the results can check it.

    ``task`` is a table column (``Compress`` … ``Selective Copy``), ``Average`` (MAD's mean of the six) or
    ``all`` (the claim must hold on every task measured). ``variant``/``other`` are registered short names.
    ``fraction`` only matters for ``saturated`` ("almost every variant" → 0.8). See ``CLAIM_KINDS`` and
    ``deltalab.rounds.check_claim`` for how each kind is judged.
    """

    text: str
    kind: str
    task: str
    variant: str | None = None
    other: str | None = None
    threshold: float | None = None
    fraction: float = 1.0

    def __post_init__(self):
        if self.kind not in CLAIM_KINDS:
            raise ValueError(f"claim {self.text!r}: unknown kind {self.kind!r}; valid: {', '.join(CLAIM_KINDS)}")
        missing = [f for f in CLAIM_KINDS[self.kind] if getattr(self, f) is None]
        if missing:
            raise ValueError(f"claim {self.text!r}: kind {self.kind!r} needs {', '.join(missing)}")
        if not 0 < self.fraction <= 1:
            raise ValueError(f"claim {self.text!r}: fraction must be in (0, 1]; got {self.fraction}")


@dataclass(frozen=True)
class Round:
    """One analysis round (``params/rounds/round_<n>.yaml``): a seed document, the rows of its table, the
    claims it makes, the variant it proposes and that proposal's own success criteria."""

    number: int
    title: str
    seed_document: str  # file name under shared/seeds/
    question: str
    variants: tuple[str, ...]  # the rows of the seed document's table (short names)
    proposal: str  # the variant the document proposes; trained and measured in this round
    proposal_rationale: str
    claims: tuple[Claim, ...] = ()
    success_criteria: tuple[Claim, ...] = ()
    discuss: tuple[str, ...] = ()  # variants whose learning curves the round shows
    conclusion: bool = False  # the last round: train every registered variant and conclude the study

    @property
    def rows(self) -> tuple[str, ...]:
        """Everything the round trains: its table's rows and its proposal."""
        return tuple(dict.fromkeys(self.variants + (self.proposal,)))


def _resolve(path: Path) -> Path:
    """A relative path as given (from the working directory) or, failing that, from the repository root
    (papermill and nbval run notebooks from other directories)."""
    if path.is_absolute() or path.exists():
        return path
    return REPO_ROOT / path


def available_rounds() -> list[str]:
    return sorted(p.stem for p in (PARAMS_DIR / "rounds").glob("*.yaml"))


def load_round(name_or_path: str | Path) -> Round:
    """Load ``params/rounds/<name>.yaml`` (or a path). Unknown round, key or claim kind → ValueError."""
    path = Path(name_or_path)
    path = PARAMS_DIR / "rounds" / f"{name_or_path}.yaml" if not path.suffix else _resolve(path)
    if not path.exists():
        raise ValueError(f"unknown round {str(name_or_path)!r}; valid: {', '.join(available_rounds())}")
    data = yaml.safe_load(path.read_text())
    _check_keys("round", data, Round, str(path))
    for key in ("claims", "success_criteria"):
        items = []
        for c in data.get(key, []) or []:
            _check_keys("claim", c, Claim, f"{path}: {key}")
            items.append(Claim(**c))
        data[key] = tuple(items)
    for key in ("variants", "discuss"):
        data[key] = tuple(data.get(key, ()) or ())
    return Round(**data)
