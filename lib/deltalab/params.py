"""Parameter files: YAML under ``params/`` loaded into frozen dataclasses. An unknown key raises.

A scale (``params/scales/<name>.yaml``) says how much of MAD's protocol a run gets:

    name, description          what the scale is and, in plain words, what it cuts from MAD
    lrs, wds                   the learning-rate × weight-decay sweep (best-of-sweep per setting)
    seeds                      seeds for every variant; baseline_seeds for the baselines and proposals
    precision                  auto | bf16 | fp32 (see deltalab.runtime)
    num_test_examples          test-set size (MAD: 1280)
    eval_every                 evaluate on the test split every k epochs (and always at the last one)
    early_stop                 stop once test accuracy ≥ this (MAD: 0.999)
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
    precision: str = "auto"
    num_test_examples: int = 1280
    eval_batch_size: int = 512
    eval_every: int = 1
    early_stop: float = 0.999
    timings: dict[str, Any] = field(default_factory=dict)  # measured figures that justify the budget (free form)

    def seeds_for(self, variant: str, extra_seed_variants: tuple[str, ...] = ()) -> tuple[int, ...]:
        """Every variant gets ``seeds``; the baselines and named proposals get ``baseline_seeds`` if longer."""
        if variant in ("delta_net", "gated_delta_net") + tuple(extra_seed_variants) and self.baseline_seeds:
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
        settings = tuple(budget.pop("settings", None) or [{}])
        for s in settings:
            task_registry.generator_kwargs(task, s)  # validates the keys and values of every change
        tasks[task] = TaskBudget(settings=settings, **budget)
    data["tasks"] = tasks
    if data.get("precision", "auto") not in PRECISIONS:
        raise ValueError(f"{path}: precision must be one of {PRECISIONS}; got {data['precision']!r}")
    for key in ("lrs", "wds", "seeds", "baseline_seeds"):
        if key in data:
            data[key] = tuple(data[key])
    return Scale(**data)


@dataclass(frozen=True)
class Claim:
    """A seed document's claim, written so the results can check it.

    kind: "beats" (``variant`` beats ``other`` on ``task``), "below" (``variant`` scores below ``other``),
    "saturated" (every variant of the round ≥ ``threshold`` on ``task``), "at_least" / "above" (``variant``'s
    score ≥ / > ``threshold`` on ``task``). ``task`` is a table column or "Average".
    """

    text: str
    kind: str
    task: str
    variant: str | None = None
    other: str | None = None
    threshold: float | None = None


@dataclass(frozen=True)
class Round:
    number: int
    title: str
    seed_document: str
    question: str
    variants: tuple[str, ...]
    proposal: str
    proposal_rationale: str
    claims: tuple[Claim, ...] = ()
    success_criteria: tuple[Claim, ...] = ()
    discuss: tuple[str, ...] = ()  # variants whose learning curves the round shows


def load_round(name_or_path: str | Path) -> Round:
    path = Path(name_or_path)
    if not path.suffix:
        path = PARAMS_DIR / "rounds" / f"{name_or_path}.yaml"
    if not path.exists():
        valid = sorted(p.stem for p in (PARAMS_DIR / "rounds").glob("*.yaml"))
        raise ValueError(f"unknown round {str(name_or_path)!r}; valid: {', '.join(valid)}")
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
