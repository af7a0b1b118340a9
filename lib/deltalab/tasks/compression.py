"""Compression (MAD spec §2.5): reproduce the whole input (run on the AutoEncoder backbone)."""
from __future__ import annotations

import numpy as np

__all__ = ["compression"]


def compression(rng: np.random.Generator, split: str, vocab_size: int, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """One compression instance; no shift, and train and test are built alike.

    Vocabulary: content [0, V-1) | compression token V-1::

        x = (L-1 tokens ~ Uniform(content)) + [V-1]
        y = x                                        (every position scored, the compression token included)
    """
    if vocab_size < 2 or seq_len < 2:
        raise ValueError(f"vocab_size and seq_len must be >= 2, got {vocab_size} and {seq_len}")
    x = np.append(rng.integers(0, vocab_size - 1, seq_len - 1), vocab_size - 1).astype(np.int64)
    return x, x.copy()
