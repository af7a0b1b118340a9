"""Parameter files: YAML under ``params/`` loaded into frozen dataclasses.

Every value is checked on load: an unknown or missing key, a value of the wrong type (``epochs: "2"``,
``epochs: 1.5``, ``lrs: 0.001`` instead of a list, an empty file), a variant name that is not registered
(``seeded_variants``, a round's rows, proposal and claims), a claim's task that is not a table column, or a
scale whose ``name`` differs from its file's name raises ValueError naming the file, the key and what is
valid.

A scale (``params/scales/<name>.yaml``) says how much of MAD's protocol a run gets:

    name, description          the file's name; in plain words, what the scale cuts from MAD
    lrs, wds                   the learning-rate × weight-decay sweep (best-of-sweep per setting)
    seeds                      seeds for every variant; baseline_seeds for the baselines and proposals
    precision                  auto | bf16 | fp32 (see deltalab.runtime); the precision a run resolves to is
                               part of its identity (runs.budget_id)
    num_test_examples          test-set size (MAD: 1280)
    eval_batch_size            examples per evaluation forward: a multiple of 128 or the whole test set (the
                               metrics then do not depend on it, so it is not part of a run's identity)
    eval_every                 evaluate on the test split every k epochs (and always at the last one)
    early_stop                 stop once test accuracy ≥ this (MAD: 0.999)
    resources                  what one run asks of a Ray node: {num_cpus: 1, num_gpus: 0} by default
    calibration_rows           the seed-table rows a reduced scale was calibrated on (pre-registered: its
                               agreement with the full protocol is reported on the other rows, held out)
    agreement_targets          per task the scale trains, the held-out rows' agreement it aims at (issue #31:
                               a floor on Spearman's ρ for a ranked task, on the share of rows classified alike
                               for a classified one; ``tasks.Task.agreement`` says which)
    tasks:                     per task: the budget and the MAD settings kept
      <task>: {num_train_examples, epochs, batch_size, settings: [changes from MAD's baseline],
               lrs: [the task's own learning rates, where they differ from the scale's]}

A round (``params/rounds/round_<n>.yaml``) is one seed document: its table's rows, its claims and its proposal's
success criteria (``Round``, ``Claim``). How a claim is written — kinds, ``margin``, ``setting``, and the
``translation`` a MAD-scale threshold needs to be testable at another scale — is in docs/claims.md.
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .runtime import PRECISIONS, REPO_ROOT
from .tasks import COLUMNS

PARAMS_DIR = REPO_ROOT / "params"
MAD_METRIC_BATCH = 128  # MAD's test batch size: the unit over which its macro accuracy and perplexity are averaged


def _check_keys(kind: str, data, cls, where: str) -> None:
    fields = [f for f in dataclasses.fields(cls) if f.metadata.get("key", True)]  # ``source``: not a file's key
    valid = {f.name for f in fields}
    required = sorted(f.name for f in fields
                      if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
    if data is None:
        optional = sorted(valid - set(required))
        raise ValueError(f"{where}: empty; a {kind} needs the keys {required} (optional: {optional})")
    if not isinstance(data, dict):
        raise ValueError(f"{where}: a {kind} must be a mapping of keys to values; got {type(data).__name__} {data!r}")
    unknown = set(data) - valid
    if unknown:
        raise ValueError(f"{where}: unknown {kind} key(s) {sorted(unknown)}; valid: {sorted(valid)}")
    missing = set(required) - set(data)
    if missing:
        raise ValueError(f"{where}: missing {kind} key(s) {sorted(missing)}")


# --- value checks: each names the file and the key, says what is valid and what it got ---------------------

def _bad(where: str, key: str, valid: str, got) -> ValueError:
    hint = ""
    if isinstance(got, str) and re.fullmatch(r"[-+]?\d+(\.\d*)?([eE][-+]?\d+)?", got.strip()):
        hint = " (a quoted or YAML-1.1 string such as 1e-3; write the number unquoted, e.g. 0.001 or 1.0e-3)"
    return ValueError(f"{where}: {key} must be {valid}; got {got!r} ({type(got).__name__}){hint}")


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _int(where: str, key: str, x, minimum: int = 1) -> int:
    if not _is_int(x) or x < minimum:
        raise _bad(where, key, "a positive integer" if minimum == 1 else f"an integer ≥ {minimum}", x)
    return x


# A run seeds torch (torch.manual_seed, and the generator of its batch order) with its seed, and numpy's data
# generators with MAD's 12345 plus it; torch takes seeds up to 2**64 − 1 (numpy any integer ≥ 0).
MAX_SEED = 2**64 - 1
SEED_RANGE = f"0 to {MAX_SEED} (2**64 − 1, the largest seed torch.manual_seed takes)"


def seed_problem(seed) -> str | None:
    """Why ``seed`` is not a valid seed (naming it and the valid range), or None."""
    if not _is_int(seed):
        return f"a seed must be an integer from {SEED_RANGE}; got {seed!r} ({type(seed).__name__})"
    if not 0 <= seed <= MAX_SEED:
        return f"seed {seed} is out of range: a seed is an integer from {SEED_RANGE}"
    return None


def _seed(where: str, key: str, x) -> int:
    _int(where, key, x, minimum=0)
    if x > MAX_SEED:
        raise _bad(where, key, f"an integer ≥ 0 and ≤ {MAX_SEED} (2**64 − 1, the largest seed torch.manual_seed "
                   "takes)", x)
    return x


def _number(where: str, key: str, x, *, positive: bool = False, low: float = 0.0, high: float = math.inf) -> float:
    ok = _is_number(x) and (x > low if positive else x >= low) and x <= high
    if not ok:
        bounds = f"> {low:g}" if positive else f"≥ {low:g}"
        raise _bad(where, key, f"a number {bounds}" + (f" and ≤ {high:g}" if high < math.inf else ""), x)
    return float(x)


def _string(where: str, key: str, x) -> str:
    if not isinstance(x, str) or not x.strip():
        raise _bad(where, key, "a non-empty string", x)
    return x


def _list(where: str, key: str, x, item, *, nonempty: bool = True) -> tuple:
    """A YAML list whose items pass ``item(where, "key[i]", value)``."""
    if not isinstance(x, (list, tuple)) or (nonempty and not x):
        raise _bad(where, key, "a non-empty list, e.g. [0, 1]" if nonempty else "a list, e.g. [] or [0, 1]", x)
    return tuple(item(where, f"{key}[{i}]", v) for i, v in enumerate(x))


def _variant_name(where: str, key: str, x) -> str:
    from .variants import VARIANTS

    if x not in VARIANTS:
        raise _bad(where, key, f"a registered variant ({', '.join(VARIANTS)})", x)
    return x


@dataclass(frozen=True)
class TaskBudget:
    num_train_examples: int
    epochs: int
    batch_size: int
    settings: tuple[dict, ...] = ({},)  # changes from MAD's baseline setting; {} is the baseline itself
    lrs: tuple[float, ...] = ()  # this task's learning-rate sweep, where it differs from the scale's ``lrs``

    def __post_init__(self):
        for name in ("num_train_examples", "epochs", "batch_size"):
            _int("task budget", name, getattr(self, name))


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
    variants: tuple[str, ...] = ()  # the rows the scale's study covers; empty: every registered variant
    precision: str = "auto"
    num_test_examples: int = 1280
    eval_batch_size: int = 512
    eval_every: int = 1
    early_stop: float = 0.999
    timings: dict[str, Any] = field(default_factory=dict)  # measured figures that justify the budget (free form)
    resources: dict[str, float] = field(default_factory=dict)  # per run on a Ray cluster: num_cpus, num_gpus
    calibration_rows: tuple[str, ...] = ()  # rows the scale was tuned on; agreement is judged on the others
    agreement_targets: dict[str, float] = field(default_factory=dict)  # task → the held-out agreement aimed at
    # the file it was read from (absolute), set by ``load_scale``: what a process that did not load it is told
    source: Path | None = field(default=None, compare=False, metadata={"key": False})

    def seeds_for(self, variant: str, extra_seed_variants: tuple[str, ...] = ()) -> tuple[int, ...]:
        """Every variant gets ``seeds``; the baselines and named proposals get ``baseline_seeds`` if longer."""
        more = ("delta_net", "gated_delta_net") + self.seeded_variants + tuple(extra_seed_variants)
        if variant in more and self.baseline_seeds:
            return tuple(dict.fromkeys(self.seeds + self.baseline_seeds))
        return self.seeds

    def lrs_for(self, task: str) -> tuple[float, ...]:
        """The learning rates a task sweeps: its own ``lrs`` where the scale file gives them, else the scale's."""
        return self.tasks[task].lrs or self.lrs

    def rows(self) -> list[str]:
        """The variants the scale's grid and tables cover: ``variants``, or every registered one."""
        from .variants import VARIANTS

        return list(self.variants) if self.variants else list(VARIANTS)


def available_scales() -> list[str]:
    return sorted(p.stem for p in (PARAMS_DIR / "scales").glob("*.yaml"))


def load_scale(name_or_path: str | Path) -> Scale:
    """Load ``params/scales/<name>.yaml`` (or a path). An unknown scale, an unknown or missing key, or a value
    of the wrong type → ValueError naming the file, the key and what is valid."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PARAMS_DIR / "scales" / f"{name_or_path}.yaml"
        if not path.is_file():
            raise ValueError(f"unknown scale {str(name_or_path)!r}; valid: {', '.join(available_scales())} (or a "
                             "path to a scale file, e.g. params/scales/smoke.yaml)")
    elif not path.is_file():
        raise ValueError(f"no scale file {str(name_or_path)!r} ({'a folder' if path.is_dir() else 'not found'}); "
                         f"a scale is a name ({', '.join(available_scales())}) or a path to a .yaml file")
    try:
        data = _yaml(path)
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot read the scale file: {e}") from e
    _check_keys("scale", data, Scale, str(path))
    return Scale(**_scale_values(data, str(path), path.stem), source=path.resolve())


def _yaml(path: Path):
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML: {e}") from e


def _scale_values(data: dict, where: str, stem: str) -> dict:
    """Every value of a scale file checked and converted (tuples, TaskBudget)."""
    from . import tasks as task_registry

    out = dict(data)
    out["name"] = _string(where, "name", data["name"])
    if out["name"] != stem:
        raise ValueError(f"{where}: name {out['name']!r} differs from the file's name {stem!r}: runs are stored "
                         f"under the name, so the two must agree (rename the file or set name: {stem})")
    out["description"] = _string(where, "description", data["description"])
    out["lrs"] = _list(where, "lrs", data["lrs"], lambda w, k, x: _number(w, k, x, positive=True))
    out["wds"] = _list(where, "wds", data["wds"], lambda w, k, x: _number(w, k, x))
    out["seeds"] = _list(where, "seeds", data["seeds"], _seed)
    out["baseline_seeds"] = _list(where, "baseline_seeds", data.get("baseline_seeds", []), _seed, nonempty=False)
    out["seeded_variants"] = _list(where, "seeded_variants", data.get("seeded_variants", []), _variant_name,
                                   nonempty=False)
    out["variants"] = _list(where, "variants", data.get("variants", []), _variant_name, nonempty=False)
    out["calibration_rows"] = _list(where, "calibration_rows", data.get("calibration_rows", []), _variant_name,
                                    nonempty=False)
    if len(set(out["calibration_rows"])) != len(out["calibration_rows"]):
        raise _bad(where, "calibration_rows", "a list of distinct variants", data["calibration_rows"])
    for key in ("seeds", "baseline_seeds"):
        if len(set(out[key])) != len(out[key]):
            raise _bad(where, key, "a list of distinct seeds", data[key])
    if data.get("precision", "auto") not in PRECISIONS:
        raise _bad(where, "precision", f"one of {', '.join(PRECISIONS)}", data["precision"])
    for key in ("num_test_examples", "eval_batch_size", "eval_every"):
        if key in data:
            out[key] = _int(where, key, data[key])
    # MAD averages its test metrics over blocks of 128 examples cut within the forward batches; the blocks (so the
    # metrics) are the same for every eval_batch_size that is a multiple of 128 or holds the whole test set, which
    # is why the budget fingerprint can leave eval_batch_size out. Any other value would change a run's numbers
    # under the same fingerprint.
    n_test = out.get("num_test_examples", Scale.num_test_examples)
    eval_batch = out.get("eval_batch_size", Scale.eval_batch_size)
    if eval_batch % MAD_METRIC_BATCH and eval_batch < n_test:
        raise _bad(where, "eval_batch_size", f"a multiple of {MAD_METRIC_BATCH} (MAD's metric batch) or at least "
                   f"num_test_examples ({n_test}), so that the test metrics do not depend on it", eval_batch)
    if "early_stop" in data:
        out["early_stop"] = _number(where, "early_stop", data["early_stop"], positive=True, high=1.0)  # an accuracy
    if not isinstance(data.get("timings", {}), dict):
        raise _bad(where, "timings", "a mapping (free-form notes)", data["timings"])
    resources = data.get("resources") or {}
    if not isinstance(resources, dict):
        raise _bad(where, "resources", "a mapping such as {num_cpus: 1, num_gpus: 1}", data["resources"])
    unknown = set(resources) - {"num_cpus", "num_gpus"}
    if unknown:
        raise ValueError(f"{where}: unknown resources key(s) {sorted(unknown)}; valid: ['num_cpus', 'num_gpus']")
    out["resources"] = {}
    if "num_cpus" in resources:
        out["resources"]["num_cpus"] = _number(where, "resources.num_cpus", resources["num_cpus"], positive=True)
    if "num_gpus" in resources:
        out["resources"]["num_gpus"] = _number(where, "resources.num_gpus", resources["num_gpus"])
    tasks = data["tasks"]
    if not isinstance(tasks, dict) or not tasks:
        raise _bad(where, "tasks", f"a non-empty mapping of task name to budget ({', '.join(task_registry.TASKS)})",
                   tasks)
    out["tasks"] = {}
    for task, budget in tasks.items():
        if task not in task_registry.TASKS:
            raise ValueError(f"{where}: unknown task {task!r}; valid: {', '.join(task_registry.TASKS)}")
        at = f"tasks.{task}"
        _check_keys("task budget", budget, TaskBudget, f"{where}: {at}")
        budget = dict(budget)
        for key in ("num_train_examples", "epochs", "batch_size"):
            _int(where, f"{at}.{key}", budget[key])
        if "lrs" in budget:
            budget["lrs"] = _list(where, f"{at}.lrs", budget["lrs"], lambda w, k, x: _number(w, k, x, positive=True))
        settings = budget.pop("settings", None) or [{}]
        if settings == "all":  # every MAD setting of the task, written as its change from the baseline
            base = task_registry.baseline(task)
            settings = [{k: v for k, v in full.items() if base.get(k) != v} for full in task_registry.settings(task)]
        if not isinstance(settings, list) or not all(isinstance(s, dict) for s in settings):
            raise _bad(where, f"{at}.settings", "'all' or a list of mappings (changes from MAD's baseline), "
                       "e.g. [{}, {vocab_size: 64}]", settings)
        seen: dict[str, int] = {}
        for i, s in enumerate(settings):
            try:
                task_registry.check_setting(task, s)  # the keys, types and values of every change
                sid = task_registry.setting_id(task, s)
            except (ValueError, TypeError) as e:
                raise ValueError(f"{where}: {at}.settings[{i}]: {e}") from e
            if sid in seen:
                raise ValueError(f"{where}: {at}.settings[{i}] repeats settings[{seen[sid]}] ({sid}); list each "
                                 "setting once")
            seen[sid] = i
        out["tasks"][task] = TaskBudget(settings=tuple(settings), **budget)
    out["agreement_targets"] = _agreement_targets(where, data.get("agreement_targets", {}), out["tasks"])
    return out


def _agreement_targets(where: str, targets, tasks: dict[str, TaskBudget]) -> dict[str, float]:
    """A scale's ``agreement_targets``: a mapping of tasks it trains to numbers in (0, 1] (ρ, or a share)."""
    if not isinstance(targets, dict):
        raise _bad(where, "agreement_targets", "a mapping of task to target, e.g. {memorization: 0.85}", targets)
    unknown = [t for t in targets if t not in tasks]
    if unknown:
        raise ValueError(f"{where}: agreement_targets: unknown task(s) {unknown}; valid: the tasks the scale trains "
                         f"({', '.join(tasks)})")
    return {t: _number(where, f"agreement_targets.{t}", v, positive=True, high=1.0) for t, v in targets.items()}


CLAIM_KINDS = {  # kind → the fields it needs besides text/kind/task (docs/claims.md: how each is judged)
    "beats": ("variant", "other"),  # variant's score is above other's on task
    "lags": ("variant", "other"),  # variant's score is below other's on task
    "no_worse": ("variant", "other", "margin"),  # variant is not below other by more than margin
    "best": ("variant",),  # variant is the top row of the round on task
    "at_least": ("variant", "threshold"),  # variant's score ≥ threshold
    "above": ("variant", "threshold"),  # variant's score > threshold
    "below": ("variant", "threshold"),  # variant's score < threshold
    "saturated": ("threshold",),  # at least ``fraction`` of the round's rows score ≥ threshold
}
FACTORIAL_KINDS = ("beats", "no_worse")  # kinds a combination claim (``components``) may take
THRESHOLD_KINDS = ("at_least", "above", "below", "saturated")  # their number is on the seed documents' MAD scale


CLAIM_TASKS = (*COLUMNS, "Average", "all")  # a table column, MAD's average of the six, or every task


@dataclass(frozen=True)
class Claim:
    """A seed document's claim (or a proposal's success criterion), written so the results can check it.

    ``task`` is a table column (``Compress`` … ``Selective Copy``), ``Average`` (MAD's mean of the six) or
    ``all`` (the claim must hold on every task measured). ``variant``/``other`` are registered short names.
    ``fraction`` only matters for ``saturated`` ("almost every variant" → 0.8); ``margin`` (``no_worse`` only,
    required there) is the largest drop, in accuracy, that still counts as "no worse"; ``setting`` (a setting id
    such as ``baseline``) judges the claim on that setting of the task instead of the task's mean over settings;
    ``source`` says what the claim tests (the seed sentence quoted with its document, or the study's finding that
    motivates it) and is shown beside its verdict. ``components`` (``beats`` / ``no_worse`` only) names the rows a
    combination is made of (top-k + RoPE-QK: ``[topk_error, rope_qk]``): the factorial control, the claim is judged
    against each of them as well as against ``other``, and holds only if it holds against every one. ``step`` names
    the seed document's next step the claim puts to the test (round 6): the round's summary says, per step, what
    was tried and what it gave.

    A threshold kind (``THRESHOLD_KINDS``) states a number on the seed documents' MAD scale. ``translation`` is the
    same-scale claim that keeps its intent, judged at the study's scale in its place: a mapping with ``why`` (the
    reason, shown in the notebook) and the fields that change (e.g. ``{kind: beats, other: gated_delta_net}``);
    the rest are inherited. Without one the claim is *not testable at this scale* (the seed tables, which are MAD
    numbers, still judge the original). docs/claims.md describes the format in full.
    """

    text: str
    kind: str
    task: str
    variant: str | None = None
    other: str | None = None
    threshold: float | None = None
    fraction: float = 1.0
    margin: float | None = None
    setting: str | None = None
    source: str | None = None
    translation: Claim | dict | None = None
    components: tuple[str, ...] | list | None = None  # a combination's parts: each is a control the variant must pass
    step: str | None = None  # the next step (of a seed document) the claim tests: round 6's summary groups by it

    def __post_init__(self):
        if self.kind not in CLAIM_KINDS:
            raise ValueError(f"claim {self.text!r}: unknown kind {self.kind!r}; valid: {', '.join(CLAIM_KINDS)}")
        missing = [f for f in CLAIM_KINDS[self.kind] if getattr(self, f) is None]
        if missing:
            raise ValueError(f"claim {self.text!r}: kind {self.kind!r} needs {', '.join(missing)}")
        if not _is_number(self.fraction) or not 0 < self.fraction <= 1:
            raise ValueError(f"claim {self.text!r}: fraction must be a number in (0, 1]; got {self.fraction!r}")
        if self.task not in CLAIM_TASKS:
            raise ValueError(f"claim {self.text!r}: unknown task {self.task!r}; valid: {', '.join(CLAIM_TASKS)}")
        if self.threshold is not None and not _is_number(self.threshold):
            raise ValueError(f"claim {self.text!r}: threshold must be a number; got {self.threshold!r}")
        if self.margin is not None and (self.kind != "no_worse" or not _is_number(self.margin)
                                        or not 0 <= self.margin < 1):
            raise ValueError(f"claim {self.text!r}: margin is for kind 'no_worse', a number in [0, 1) (accuracy); "
                             f"got {self.margin!r} on kind {self.kind!r}")
        for name in ("setting", "source", "step"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"claim {self.text!r}: {name} must be a non-empty string; got {value!r}")
        if self.translation is not None and not isinstance(self.translation, (dict, Claim)):
            raise ValueError(f"claim {self.text!r}: translation must be a mapping with `why` and the fields that "
                             f"change; got {self.translation!r}")
        if self.components is not None:
            if (self.kind not in FACTORIAL_KINDS or not isinstance(self.components, (list, tuple))
                    or len(self.components) < 2 or not all(isinstance(x, str) and x for x in self.components)):
                raise ValueError(f"claim {self.text!r}: components lists the two or more variants a combination is "
                                 f"made of, on kind {' or '.join(FACTORIAL_KINDS)}; got {self.components!r} on kind "
                                 f"{self.kind!r}")
            if self.variant in self.components:
                raise ValueError(f"claim {self.text!r}: components are the parts of {self.variant}, not itself")
            object.__setattr__(self, "components", tuple(self.components))
        if isinstance(self.translation, dict):
            object.__setattr__(self, "translation", self._translate(dict(self.translation)))
        if self.translation is not None and self.kind not in THRESHOLD_KINDS:
            raise ValueError(f"claim {self.text!r}: only a threshold kind ({', '.join(THRESHOLD_KINDS)}) takes a "
                             f"translation; {self.kind!r} is already a same-scale comparison")

    def _translate(self, changes: dict) -> Claim:
        """The translation as a Claim: this claim's fields, overridden by ``changes``; its text is the ``why``."""
        where = f"claim {self.text!r}: translation"
        if "why" not in changes:
            raise ValueError(f"{where} needs `why` (what the MAD-scale number means at any scale)")
        allowed = {f.name for f in dataclasses.fields(Claim)} - {"text", "translation"}
        unknown = set(changes) - allowed - {"why"}
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; valid: {sorted(allowed | {'why'})}")
        inherited = {f: getattr(self, f) for f in allowed}
        return Claim(text=changes.pop("why"), **(inherited | changes))


@dataclass(frozen=True)
class Round:
    """One analysis round (``params/rounds/round_<n>.yaml``): a seed document, the rows of its table, the
    claims it makes, the variant it proposes and that proposal's own success criteria."""

    number: int
    title: str
    seed_document: str  # the seed document's file name; its table is params/seed_tables/<stem>.csv
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
    data = _yaml(path)
    where = str(path)
    _check_keys("round", data, Round, where)
    _int(where, "number", data["number"])
    for key in ("title", "seed_document", "question", "proposal_rationale"):
        _string(where, key, data[key])
    data["variants"] = _list(where, "variants", data["variants"], _variant_name)
    data["proposal"] = _variant_name(where, "proposal", data["proposal"])
    data["discuss"] = _list(where, "discuss", data.get("discuss") or [], _variant_name, nonempty=False)
    if not isinstance(data.get("conclusion", False), bool):
        raise _bad(where, "conclusion", "true or false", data["conclusion"])
    for key in ("claims", "success_criteria"):
        items = []
        for i, c in enumerate(_list(where, key, data.get(key) or [], lambda w, k, x: x, nonempty=False)):
            at = f"{where}: {key}[{i}]"
            _check_keys("claim", c, Claim, at)
            for name in ("variant", "other"):
                if c.get(name) is not None:
                    _variant_name(at, name, c[name])
                if isinstance(c.get("translation"), dict) and c["translation"].get(name) is not None:
                    _variant_name(at, f"translation.{name}", c["translation"][name])
            for j, part in enumerate(c.get("components") or []):
                _variant_name(at, f"components[{j}]", part)
            try:
                items.append(Claim(**c))
            except ValueError as e:
                raise ValueError(f"{at}: {e}") from e
        data[key] = tuple(items)
    return Round(**data)
