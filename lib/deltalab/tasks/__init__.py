"""The six MAD synthetic tasks (spec: docs/mad.md §1–2).

    x, y = generate("in-context-recall", "test", 1280, seed=12345, vocab_size=32)   # int64 [n, T]; -100 = unscored
    x, y = load(...same arguments...)                                               # the same, cached as .npy
    for s in settings("selective-copying"): ...                                     # baseline + MAD's changes

Each data set has its own generator, ``np.random.default_rng([seed, 0])`` for train and ``[seed, 1]`` for
test, so the splits differ and neither depends on the other's size; memorization's fact table, shared by
both splits, comes from ``[seed, 2]``. No global RNG is used anywhere. A task's valid keyword arguments
are the generator keys of its baseline in ``<task>.yaml``; missing ones take the baseline value.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import Callable

import numpy as np

from .compression import compression
from .memorization import fact_table, memorization
from .recall import fuzzy_in_context_recall, in_context_recall
from .selective_copy import selective_copying
from .settings import IGNORE_INDEX, SEED, SIZES, SPLITS, baseline, setting_id, settings, task_names

__all__ = [
    "Task", "TASKS", "COLUMNS", "task_of_column", "IGNORE_INDEX", "SEED", "SPLITS", "GENERATOR_VERSION",
    "generate", "load", "load_setting", "baseline", "settings", "setting_id", "generator_kwargs", "check_setting",
    "vocab_size", "blind_accuracy",
    "fact_table", "default_cache_dir",
]

BACKBONES = ("lm", "autoencoder")
AGREEMENT_KINDS = ("ranked", "classified")


@dataclass(frozen=True)
class Task:
    """One MAD task: everything the package knows about it besides its settings (``<name>.yaml``)."""

    name: str
    generator: Callable  # fn(rng, split, **generator_kwargs) -> (x, y), one instance
    column: str  # its column in the results tables
    shorthand: str  # MAD's path shorthand
    agreement: str  # how a scale's agreement with the seed table judges it (analysis.agreement): "ranked" (Spearman's
    # ρ of the row means) or "classified" (the seed table saturates, so only which rows fail can agree)
    backbone: str = "lm"  # "lm", or "autoencoder" (compression is forced onto it in MAD, docs/mad.md §3)

    def __post_init__(self):
        if self.backbone not in BACKBONES:
            raise ValueError(f"task {self.name!r}: backbone must be one of {BACKBONES}; got {self.backbone!r}")
        if self.agreement not in AGREEMENT_KINDS:
            raise ValueError(f"task {self.name!r}: agreement must be one of {AGREEMENT_KINDS}; got {self.agreement!r}")


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("in-context-recall", in_context_recall, "Context Recall", "CR", "classified"),
    Task("fuzzy-in-context-recall", fuzzy_in_context_recall, "Fuzzy Recall", "FR", "ranked"),
    # in-context recall with noise slots (docs/mad.md §1)
    Task("noisy-in-context-recall", in_context_recall, "Noisy Recall", "NR", "classified"),
    Task("selective-copying", selective_copying, "Selective Copy", "SC", "ranked"),
    Task("compression", compression, "Compress", "C", "ranked", backbone="autoencoder"),
    Task("memorization", memorization, "Memorize", "M", "ranked"),
)}
COLUMNS = sorted(t.column for t in TASKS.values())  # the results table's task columns, in its order


def task_of_column(column: str) -> Task:
    """The task whose results-table column is ``column``; ValueError naming the valid columns."""
    for task in TASKS.values():
        if task.column == column:
            return task
    raise ValueError(f"unknown task column {column!r}; valid: {', '.join(COLUMNS)}")


GENERATOR_VERSION = 1  # bump whenever a generator's output changes; it is part of the cache key
_SPLIT_STREAM = {"train": 0, "test": 1}  # memorization's fact table uses stream 2


def _check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid tasks: {sorted(TASKS)}")
    return task


def _coerce(task: str, key: str, value, like):
    """``value`` as the Python type of the baseline value ``like`` (bool, int or float), or ValueError."""
    if isinstance(like, bool):
        ok = isinstance(value, (bool, np.bool_))
        cast = bool
    elif isinstance(like, int):
        ok = isinstance(value, Integral) and not isinstance(value, (bool, np.bool_))
        cast = int
    else:
        ok = isinstance(value, Real) and not isinstance(value, (bool, np.bool_))
        cast = float
    if not ok:
        raise ValueError(f"{task}: {key} must be {type(like).__name__}, got {value!r}")
    return cast(value)


def generator_kwargs(task: str, setting: dict | None = None, **overrides) -> dict:
    """The full generator arguments of ``task``: baseline, then ``setting``, then ``overrides``.

    Data-set sizes (num_train_examples, num_test_examples) in ``setting`` are dropped; any other key that the
    task does not take raises ValueError listing the valid ones.
    """
    base = {k: v for k, v in baseline(_check_task(task)).items() if k not in SIZES}
    given = {k: v for k, v in (setting or {}).items() if k not in SIZES} | overrides
    unknown = sorted(set(given) - set(base))
    if unknown:
        raise ValueError(f"{task}: unknown setting keys {unknown}; valid keys: {sorted(base)}")
    return base | {k: _coerce(task, k, v, base[k]) for k, v in given.items()}


_MINIMUM = {"noise_vocab_size": 0}  # the integer keys that may be 0; every other size or length is ≥ 1


def check_setting(task: str, setting: dict | None = None) -> dict:
    """``generator_kwargs`` of a (partial) setting, with its values checked too: the data-set sizes and every
    integer (lengths, vocabulary sizes, motif sizes, tokens to copy) positive (``noise_vocab_size`` ≥ 0), every
    number finite, and the generator's own constraints (``seq_len`` even, long enough for its motifs, ...),
    found by building one example without caching anything. ValueError naming the task, the key, what it got
    and what is valid."""
    setting = setting or {}
    kwargs = generator_kwargs(task, setting)
    for size in SIZES:
        if size in setting:
            value = setting[size]
            if not isinstance(value, Integral) or isinstance(value, (bool, np.bool_)) or value < 1:
                raise ValueError(f"{task}: {size} must be a positive integer; got {value!r}")
    for key, value in kwargs.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int) and value < _MINIMUM.get(key, 1):
            floor = _MINIMUM.get(key, 1)
            raise ValueError(f"{task}: {key} must be {'a positive integer' if floor == 1 else f'an integer ≥ {floor}'}"
                             f"; got {value!r}")
        if isinstance(value, float) and not np.isfinite(value):
            raise ValueError(f"{task}: {key} must be a finite number; got {value!r}")
    try:
        built = dict(kwargs)
        if task == "memorization":
            built["facts"] = fact_table(built["vocab_size"], SEED)
        TASKS[task].generator(np.random.default_rng([SEED, 0]), "test", **built)
    except ValueError as e:
        raise ValueError(f"{task}: {e}") from e
    return kwargs


def vocab_size(task: str, setting: dict | None = None) -> int:
    """The vocabulary size a model needs for ``task`` at ``setting`` (special tokens included)."""
    return generator_kwargs(task, setting)["vocab_size"]


def generate(task: str, split: str, num_examples: int, seed: int = SEED, **setting) -> tuple[np.ndarray, np.ndarray]:
    """``num_examples`` instances of ``task``: (inputs, targets), int64 ``[num_examples, T]``, -100 = unscored."""
    kwargs = generator_kwargs(task, **setting)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {list(SPLITS)}")
    if not isinstance(num_examples, Integral) or num_examples < 1:
        raise ValueError(f"num_examples must be a positive integer, got {num_examples!r}")
    if task == "memorization":  # the table is fixed by the seed alone and shared by both splits
        kwargs["facts"] = fact_table(kwargs["vocab_size"], seed)
    rng = np.random.default_rng([seed, _SPLIT_STREAM[split]])
    pairs = [TASKS[task].generator(rng, split, **kwargs) for _ in range(num_examples)]
    return np.stack([x for x, _ in pairs]), np.stack([y for _, y in pairs])


def blind_accuracy(task: str, setting: dict | None = None, num_examples: int = 512) -> float:
    """MAD's accuracy (macro over the target classes) of an input-blind model, one that always predicts the same
    target class: 1/K for the K classes among the targets of ``num_examples`` test examples (the first of them
    scores 1, every other 0). A model that has not begun the task scores near or below it (a random guess scores
    about 1/V)."""
    _, y = generate(task, "test", num_examples, **(setting or {}))
    return 1.0 / len(np.unique(y[y != IGNORE_INDEX]))


# --- on-disk cache ---------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$DELTALAB_DATA`` if set, else ``<repo>/data`` (gitignored)."""
    return Path(os.environ.get("DELTALAB_DATA") or Path(__file__).resolve().parents[3] / "data")


def _cache_path(cache_dir: Path, task: str, split: str, num_examples: int, seed: int, kwargs: dict) -> Path:
    """``<cache_dir>/<task>/<split>_<setting id>_n<num>_s<seed>_<hash>.npy``; the hash covers every input."""
    key = {"task": task, "split": split, "num_examples": num_examples, "seed": seed, "setting": kwargs,
           "version": GENERATOR_VERSION}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return cache_dir / task / f"{split}_{setting_id(task, kwargs)}_n{num_examples}_s{seed}_{digest}.npy"


def _save_atomic(path: Path, array: np.ndarray) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(
    task: str, split: str, num_examples: int, seed: int = SEED, cache_dir: str | os.PathLike | None = None, **setting
) -> tuple[np.ndarray, np.ndarray]:
    """Like ``generate``, but read from / written to a .npy cache holding ``stack([inputs, targets])``."""
    kwargs = generator_kwargs(task, **setting)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {list(SPLITS)}")
    path = _cache_path(Path(cache_dir or default_cache_dir()), task, split, num_examples, seed, kwargs)
    if path.exists():
        data = np.load(path)
        return data[0], data[1]
    x, y = generate(task, split, num_examples, seed, **kwargs)
    _save_atomic(path, np.stack([x, y]))
    return x, y


def load_setting(
    task: str, setting: dict, split: str, seed: int = SEED, cache_dir: str | os.PathLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The cached data set of one settings dict (as from ``settings(task)``), sized by its
    ``num_train_examples`` or ``num_test_examples``."""
    full = baseline(_check_task(task)) | setting
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {list(SPLITS)}")
    n = full["num_train_examples"] if split == "train" else full["num_test_examples"]
    return load(task, split, n, seed, cache_dir, **generator_kwargs(task, full))


if sorted(TASKS) != task_names():
    raise RuntimeError(f"the task registry {sorted(TASKS)} and the settings files {task_names()} "
                       "(lib/deltalab/tasks/<task>.yaml) name different tasks")
