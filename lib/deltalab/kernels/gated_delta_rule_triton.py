"""Triton chunkwise gated delta rule (Gated DeltaNet)."""
from __future__ import annotations

from torch import Tensor

from ._chunk import chunk_delta_rule_triton

__all__ = ["gated_delta_rule_chunkwise_triton"]


def gated_delta_rule_chunkwise_triton(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    beta: Tensor,
    g: Tensor,
    chunk_size: int = 32,
    initial_state: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Drop-in for ``deltalab.core.gated_delta_rule_chunkwise``; ``g`` is the log decay ``[B,H,L]`` (≤ 0).

    Returns ``(o in v's dtype, S fp32)``; gradients for q, k, v, beta, g and initial_state.
    """
    return chunk_delta_rule_triton(q, k, v, beta, g, chunk_size, initial_state, None)
