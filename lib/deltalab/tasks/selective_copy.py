"""Selective copying (MAD spec §2.4): copy the content tokens, skipping the blanks, after a copy token."""
from __future__ import annotations

import numpy as np

from .settings import IGNORE_INDEX

__all__ = ["selective_copying"]


def selective_copying(
    rng: np.random.Generator, split: str, vocab_size: int, seq_len: int, num_tokens_to_copy: int
) -> tuple[np.ndarray, np.ndarray]:
    """One selective-copy instance; no shift, and train and test are built alike.

    Vocabulary: content [0, V-2) | blank V-2 | copy V-1. With c = num_tokens_to_copy, nb = L - 2c - 1::

        to_copy ~ Uniform(content)^c                     (with replacement)
        body    = to_copy with nb blanks interleaved     (order kept; all C(c+nb, c) placements equally likely)
        x = body + [copy] + [blank]*c                    (length L)
        y = [-100]*(c+nb+1) + to_copy                    (only the last c positions are scored)

    MAD places the blanks with the global ``np.random``; here they come from ``rng``.
    """
    copy, blank, c = vocab_size - 1, vocab_size - 2, num_tokens_to_copy
    if vocab_size < 3:
        raise ValueError(f"vocab_size must be >= 3 (content, blank, copy), got {vocab_size}")
    if c < 1:
        raise ValueError(f"num_tokens_to_copy must be >= 1, got {c}")
    if seq_len <= 2 * c + 1:
        raise ValueError(f"seq_len must be > 2 * num_tokens_to_copy + 1 = {2 * c + 1}, got {seq_len}")
    n_body = seq_len - c - 1  # c content tokens + nb blanks

    to_copy = rng.integers(0, blank, c)
    body = np.full(n_body, blank)
    body[np.sort(rng.choice(n_body, size=c, replace=False))] = to_copy
    x = np.concatenate([body, [copy], np.full(c, blank)])
    y = np.concatenate([np.full(n_body + 1, IGNORE_INDEX), to_copy])
    return x.astype(np.int64), y.astype(np.int64)
