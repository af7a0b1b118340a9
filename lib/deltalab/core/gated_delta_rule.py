"""The gated delta rule (Gated DeltaNet): the delta rule with a per-token decay ``α_t = exp(g_t)`` of the state.

Head-first layout as in ``delta_rule.py``; ``g`` is the **log** decay, ``[B, H, L]``, ``g ≤ 0``. Forget first,
then compute the error against the decayed state (fla's order, confirmed in fla issue #885):

    S'_t = α_t S_{t−1}
    e_t  = β_t (v_t − S'_tᵀ k_t)
    S_t  = S'_t + k_t e_tᵀ                   = α_t (I − β_t k_t k_tᵀ) S_{t−1} + β_t k_t v_tᵀ
    o_t  = S_tᵀ q_t

Chunkwise (../shared/reference/delta-rule.md §2): with ``γ_r = Σ_{s≤r} g_s`` inside a chunk and
``D[r, s] = exp(γ_r − γ_s)`` for r ≥ s (else 0),

    T  = (I + tril(diag(β) K Kᵀ ⊙ D, −1))⁻¹,    U = T (β ⊙ V),    W = T (β ⊙ K ⊙ exp(γ))
    loop:  U' = U − W S
           O  = (Q ⊙ exp(γ)) S + (Q Kᵀ ⊙ D) U'
           S  = exp(γ_C) S + (K ⊙ exp(γ_C − γ))ᵀ U'

``beta`` and ``g`` are keyword-only everywhere, so the two cannot be swapped (fla's naive functions take
``(beta, g)`` in one and ``(g, beta)`` in the other).
"""
from __future__ import annotations

import torch
from torch import Tensor

from .delta_rule import _pad_to_chunks, _state_dtype, check_shapes

__all__ = ["gated_delta_rule_recurrence", "gated_delta_rule_chunkwise"]


def _check_g(q: Tensor, g: Tensor) -> None:
    if g.shape != q.shape[:3]:
        raise ValueError(f"g (log decay) must be [B, H, L] = {tuple(q.shape[:3])}; got {tuple(g.shape)}")


def gated_delta_rule_recurrence(
    q: Tensor, k: Tensor, v: Tensor, *, beta: Tensor, g: Tensor, initial_state: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Token-by-token gated delta rule in fp32 (fp64 for fp64 inputs): the spec for the chunkwise form."""
    check_shapes(q, k, v, beta, initial_state)
    _check_g(q, g)
    dt, out_dtype = _state_dtype(q), v.dtype
    B, H, L, dk = q.shape
    q, k, v, beta, g = (x.to(dt) for x in (q, k, v, beta, g))
    q = q * dk**-0.5
    S = q.new_zeros(B, H, dk, v.shape[-1]) if initial_state is None else initial_state.to(dt)
    o = []
    for t in range(L):
        S = S * g[:, :, t, None, None].exp()  # forget first
        k_t = k[:, :, t]
        e_t = beta[:, :, t, None] * (v[:, :, t] - torch.einsum("bhkv,bhk->bhv", S, k_t))
        S = S + k_t[..., :, None] * e_t[..., None, :]
        o.append(torch.einsum("bhkv,bhk->bhv", S, q[:, :, t]))
    return torch.stack(o, dim=2).to(out_dtype), S


def gated_delta_rule_chunkwise(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    beta: Tensor,
    g: Tensor,
    chunk_size: int = 32,
    initial_state: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Chunkwise gated delta rule, any length. Returns ``(o in v's dtype, S in fp32)``."""
    check_shapes(q, k, v, beta, initial_state)
    _check_g(q, g)
    B, H, L, dk = q.shape
    dv = v.shape[-1]
    C = chunk_size
    dt, out_dtype = _state_dtype(q), v.dtype
    with torch.autocast(device_type=q.device.type, enabled=False):
        q, k, v, beta, g = (_pad_to_chunks(x.to(dt), C) for x in (q, k, v, beta, g))
        N = q.shape[2] // C
        q = (q * dk**-0.5).reshape(B, H, N, C, dk)
        k = k.reshape(B, H, N, C, dk)
        v_beta = (v * beta[..., None]).reshape(B, H, N, C, dv)
        k_beta = (k * beta.reshape(B, H, N, C, 1))
        gamma = g.reshape(B, H, N, C).cumsum(-1)  # γ_r, cumulative log decay inside the chunk
        lower = torch.ones(C, C, dtype=torch.bool, device=q.device).tril()
        # D[r, s] = exp(γ_r − γ_s) on and below the diagonal; the exponent is masked before exp so that the
        # (positive, possibly huge) upper entries never overflow.
        D = (gamma[..., :, None] - gamma[..., None, :]).masked_fill(~lower, float("-inf")).exp()
        eye = torch.eye(C, dtype=dt, device=q.device)
        unit_lower = torch.tril((k_beta @ k.transpose(-1, -2)) * D, diagonal=-1) + eye
        T = torch.linalg.solve_triangular(unit_lower, eye.expand_as(unit_lower), upper=False, unitriangular=True)
        u = T @ v_beta
        w = T @ (k_beta * gamma[..., None].exp())
        decay_in = gamma[..., None].exp()  # exp(γ_r): decay from the chunk start to token r
        gamma_last = gamma[..., -1:]  # [B,H,N,1]
        decay_out = (gamma_last - gamma)[..., None].exp()  # exp(γ_C − γ_r): decay from token r to chunk end
    S = q.new_zeros(B, H, dk, dv) if initial_state is None else initial_state.to(dt)
    o = []
    for i in range(N):
        q_i, k_i = q[:, :, i], k[:, :, i]
        A_i = (q_i @ k_i.transpose(-1, -2)) * D[:, :, i]
        u_i = u[:, :, i] - w[:, :, i] @ S  # U' = U − W S
        o.append((q_i * decay_in[:, :, i]) @ S + A_i @ u_i)
        S = S * gamma_last[:, :, i, :, None].exp() + (k_i * decay_out[:, :, i]).transpose(-1, -2) @ u_i
    o = torch.stack(o, dim=2).reshape(B, H, N * C, dv)[:, :, :L]
    return o.to(out_dtype), S
