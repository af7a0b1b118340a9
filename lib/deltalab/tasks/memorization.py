"""Memorization (MAD spec §2.6): recall facts from a fixed key -> value table, learned in the weights."""
from __future__ import annotations

import numpy as np

from .settings import IGNORE_INDEX

__all__ = ["fact_table", "memorization"]

FACT_STREAM = 2  # the table's rng is default_rng([seed, 2]); streams 0 and 1 are the train and test splits


def fact_table(vocab_size: int, seed: int) -> np.ndarray:
    """The fixed fact table: ``facts[k]`` is the value of key ``k``. Depends on the seed only, not the split.

    With n = V-1 ordinary tokens: keys [0, n//2), values [n//2, n), insert token V-1. Each key gets a
    distinct value, uniformly at random (MAD shuffles keys and values and zips them; for V=256 that is
    127 facts with values in 127..254, one value unused).
    """
    if vocab_size < 3:
        raise ValueError(f"vocab_size must be >= 3 (a key, a value, the insert token), got {vocab_size}")
    n_plain = vocab_size - 1
    rng = np.random.default_rng([seed, FACT_STREAM])
    return rng.permutation(np.arange(n_plain // 2, n_plain))[: n_plain // 2].astype(np.int64)


def memorization(
    rng: np.random.Generator, split: str, vocab_size: int, seq_len: int, facts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One memorization instance; no shift, train and test drawn alike from the same ``facts``.

    With INS = V-1, repeat L/2 times::

        k ~ Uniform(keys) ;  x += [k, INS] ;  y += [-100, facts[k]]
    """
    if seq_len < 2 or seq_len % 2:
        raise ValueError(f"seq_len must be even and >= 2 (key, insert-token pairs), got {seq_len}")
    keys = rng.integers(0, len(facts), seq_len // 2)
    x = np.stack([keys, np.full_like(keys, vocab_size - 1)], axis=1).ravel()
    y = np.stack([np.full_like(keys, IGNORE_INDEX), facts[keys]], axis=1).ravel()
    return x.astype(np.int64), y.astype(np.int64)
