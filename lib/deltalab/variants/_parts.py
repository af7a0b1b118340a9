"""Pieces shared by several variant loops (one place, so two variants never carry two copies).

Every helper works on one chunk, ``[B, H, C, ·]``; ``mask`` is ``causal_mask(chunks)`` (True on and below the
diagonal). Imports are absolute, so a variant file copied out as a user file runs unchanged.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from deltalab.core import Chunks

# sqrt's derivative is infinite at 0; clamping at 1e-30 (sqrt = 1e-15, far below every ε used with it) keeps
# the forward value and gives a zero gradient instead of 0·inf = NaN where a second moment is exactly 0.
TINY = 1e-30


def causal_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Row softmax of ``[.., C, C]`` scores over the allowed (s ≤ t) entries: -inf on the strict upper triangle."""
    return scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)


def cosine_scores(q: Tensor, k: Tensor) -> Tensor:
    """``τ · cos(q_t, k_s)`` with ``τ = √d_k``.

    Why √d_k: for random vectors with unit-variance entries, the dot-product logit ``q·k/√d_k`` has standard
    deviation 1, and so has ``√d_k · cos`` (cos of two random vectors has std ``1/√d_k``). The temperature thus
    gives cosine logits the spread of ordinary scaled dot-product logits while being scale-free.
    """
    return math.sqrt(q.shape[-1]) * (F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).mT)


def row_norm(x: Tensor) -> Tensor:
    """``‖x_t‖₂`` per row, keepdim. ``vector_norm``'s gradient at a zero row (padding) is 0, not NaN."""
    return torch.linalg.vector_norm(x, dim=-1, keepdim=True)


def safe_sqrt(x: Tensor) -> Tensor:
    return x.clamp_min(TINY).sqrt()


def real_tokens(c: Chunks, i: int) -> int:
    """Number of un-padded tokens in chunk ``i`` (C except, possibly, in the last chunk)."""
    return min(c.chunk_size, c.length - i * c.chunk_size)


def mean_beta(c: Chunks, i: int) -> Tensor:
    """``β̄``: mean β over the real tokens of chunk ``i``, ``[B, H, 1, 1]`` (broadcasts against a state)."""
    return (c.beta[:, :, i].sum(-1) / real_tokens(c, i))[..., None, None]
