"""Task settings (``<task>.yaml``: ``baseline:`` + one-at-a-time ``changes:``) and the conventions of MAD §1.

A YAML file per task, next to this module, is the settings registry::

    baseline: {vocab_size: 16, seq_len: 128, ..., num_train_examples: 12800, num_test_examples: 1280}
    changes:  {vocab_size: [32, 64, 128], seq_len: [...], num_train_examples: [...]}

``settings(task)`` is ``[baseline] + [baseline | {key: value} for key, values in changes for value in values]``,
in file order: MAD varies one variable at a time and never forms a grid. The baseline lists every generator
argument of the task, so its keys (less the two data-set sizes) are the keys a task accepts.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

IGNORE_INDEX = -100  # MADConfig.target_ignore_index: targets that are not scored
SPLITS = ("train", "test")
SEED = 12345  # MADConfig.seed; every MAD setting uses it
SIZES = ("num_train_examples", "num_test_examples")  # data-set sizes, not generator arguments

TASK_DIR = Path(__file__).parent

# Short names used in setting ids; they are MAD's own path shorthands (mad/paths.py).
ABBREV = {
    "vocab_size": "vs",
    "seq_len": "sl",
    "num_train_examples": "ntr",
    "num_test_examples": "nte",
    "k_motif_size": "km",
    "v_motif_size": "vm",
    "multi_query": "mq",
    "frac_noise": "fn",
    "noise_vocab_size": "nvs",
    "num_tokens_to_copy": "ntc",
}


def task_names() -> list[str]:
    """The tasks that have a settings file."""
    return sorted(p.stem for p in TASK_DIR.glob("*.yaml"))


@lru_cache(maxsize=None)
def _read(task: str) -> tuple[dict, tuple[tuple[str, tuple], ...]]:
    """Parse and check ``<task>.yaml``; cached, and returned as immutable pieces so callers get fresh dicts."""
    path = TASK_DIR / f"{task}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown task {task!r}; valid tasks: {task_names()}")
    doc = yaml.safe_load(path.read_text())
    if set(doc) != {"baseline", "changes"}:
        raise ValueError(f"{path.name}: expected exactly the sections ['baseline', 'changes'], got {sorted(doc)}")
    base, changes = doc["baseline"], doc["changes"]
    for key in [*base, *changes]:
        if key not in ABBREV:
            raise ValueError(f"{path.name}: unknown key {key!r}; valid keys: {sorted(ABBREV)}")
    for size in SIZES:
        if size not in base:
            raise ValueError(f"{path.name}: baseline must set {size}")
    for key, values in changes.items():
        if key not in base:
            raise ValueError(f"{path.name}: change of {key!r}, which the baseline does not set")
        if not isinstance(values, list) or not values:
            raise ValueError(f"{path.name}: changes.{key} must be a non-empty list, got {values!r}")
    return base, tuple((k, tuple(v)) for k, v in changes.items())


def baseline(task: str) -> dict:
    """The task's baseline setting (a fresh dict)."""
    return dict(_read(task)[0])


def settings(task: str) -> list[dict]:
    """MAD's settings of ``task``: the baseline first, then one complete dict per one-at-a-time change."""
    base, changes = _read(task)
    return [dict(base)] + [{**base, key: value} for key, values in changes for value in values]


def _fmt(value) -> str:
    """A filesystem-safe rendering of a setting value: 0.4 -> '0p4', True -> '1'."""
    if isinstance(value, bool):
        return str(int(value))
    return str(value).replace(".", "p").replace("-", "m")


def setting_id(task: str, setting: dict) -> str:
    """Short stable id of a (possibly partial) setting: the keys that differ from the baseline, in baseline order.

    ``setting_id("in-context-recall", {"vocab_size": 32})`` is ``"vs32"``; the baseline itself is ``"baseline"``.
    """
    base = baseline(task)
    unknown = sorted(set(setting) - set(base))
    if unknown:
        raise ValueError(f"{task}: unknown setting keys {unknown}; valid keys: {list(base)}")
    parts = [f"{ABBREV[k]}{_fmt(setting[k])}" for k in base if k in setting and setting[k] != base[k]]
    return "_".join(parts) or "baseline"
