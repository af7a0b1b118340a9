"""Triton chunkwise delta rule, and the generic kernel's error-transform variants (same signature)."""
from __future__ import annotations

from torch import Tensor

from ._chunk import chunk_delta_rule_triton

__all__ = ["delta_rule_chunkwise_triton", "l2_norm_error_triton", "gelu_error_triton", "decay_state_triton"]


def delta_rule_chunkwise_triton(
    q: Tensor, k: Tensor, v: Tensor, beta: Tensor, chunk_size: int = 32, *, initial_state: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Drop-in for ``deltalab.core.delta_rule_chunkwise``: ``(o [B,H,L,d_v] in v's dtype, S [B,H,d_k,d_v] fp32)``.

    q is scaled by ``d_k^-1/2`` inside, keys are expected L2-normalised; any length (padded internally);
    ``chunk_size`` a power of two ≥ 16; bf16/fp16/fp32 inputs with the state kept in fp32.
    """
    return chunk_delta_rule_triton(q, k, v, beta, None, chunk_size, initial_state, None)


def l2_norm_error_triton(
    q: Tensor, k: Tensor, v: Tensor, beta: Tensor, chunk_size: int = 32, *, initial_state: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Delta rule with each row of the corrected pseudo-values ``U' = U − W S`` replaced by
    ``U'_row / (‖U'_row‖₂ + 1e-6)`` before it is used for the output and the state update."""
    return chunk_delta_rule_triton(q, k, v, beta, None, chunk_size, initial_state, "l2_norm_error")


def gelu_error_triton(
    q: Tensor, k: Tensor, v: Tensor, beta: Tensor, chunk_size: int = 32, *, initial_state: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Delta rule with ``U' = U − W S`` replaced by ``GELU(U')`` (exact, erf form) before it is used."""
    return chunk_delta_rule_triton(q, k, v, beta, None, chunk_size, initial_state, "gelu_error")


DECAY_STATE_LAMBDA = 0.9  # the value of deltalab.variants.decay_state.DECAY


def decay_state_triton(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    beta: Tensor,
    chunk_size: int = 32,
    *,
    initial_state: Tensor | None = None,
    decay: float = DECAY_STATE_LAMBDA,
) -> tuple[Tensor, Tensor]:
    """Delta rule whose state is multiplied by a constant ``decay`` after every chunk's write:
    ``S ← λ (S + K_iᵀ U'_i)``; the returned final state carries the last chunk's decay too."""
    return chunk_delta_rule_triton(q, k, v, beta, None, chunk_size, initial_state, None, float(decay))
