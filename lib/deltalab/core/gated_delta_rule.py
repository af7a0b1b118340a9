"""The gated delta rule (Gated DeltaNet): the delta rule with a per-token decay ``α_t = exp(g_t)`` of the state.

Head-first layout as in ``delta_rule.py``; ``g`` is the **log** decay, ``[B, H, L]``, ``g ≤ 0``. Forget first,
then compute the error against the decayed state (fla's order, confirmed in fla issue #885):

    S'_t = α_t S_{t−1}
    e_t  = β_t (v_t − S'_tᵀ k_t)
    S_t  = S'_t + k_t e_tᵀ                   = α_t (I − β_t k_t k_tᵀ) S_{t−1} + β_t k_t v_tᵀ
    o_t  = S_tᵀ q_t

Chunkwise (docs/delta-rule.md §3): with ``γ_r = Σ_{s≤r} g_s`` inside a chunk and
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

from .delta_rule import _n_major, _pad_to_chunks, _state_dtype, _UTInverse, check_shapes

__all__ = ["gated_delta_rule_recurrence", "gated_delta_rule_chunkwise", "gated_delta_rule_chunkwise_ref"]


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


class _GatedChunkLoop(torch.autograd.Function):
    """The gated loop over chunks with a hand-written backward; every decay factor is computed outside (by
    autograd, so ``g``'s gradient needs nothing here). Inputs chunk-major ``[N, G, C, d]`` (``G = B·H``)::

        forward   loop:  h_i = S;  U'_i = U_i − W_i h_i;  S = a_i S + K̃_iᵀ U'_i       a_i = exp(γ_C), K̃ = K ⊙ exp(γ_C − γ)
                  then:  O = Q̃ h + A U'                                             Q̃ = Q ⊙ exp(γ), A = Q Kᵀ ⊙ D
        backward  dU'_i = Aᵀ dO_i + K̃_i dS;  dS ← a_i dS + Q̃_iᵀ dO_i − W_iᵀ dU'_i  (reverse loop)
                  dQ̃ = dO hᵀ, dA = dO U'ᵀ, dK̃ = U' dS₊ᵀ, da_i = ⟨dS₊, h_i⟩, dW = −dU' hᵀ, dU = dU'
    """

    @staticmethod
    def forward(ctx, qd, kd, w, u, A, a, S0):
        N, G, C, dk = qd.shape
        dv = u.shape[-1]
        hs = qd.new_empty(N, G, dk, dv)
        vn = qd.new_empty(N, G, C, dv)
        S = S0
        for i in range(N):
            hs[i] = S
            torch.baddbmm(u[i], w[i], S, alpha=-1, out=vn[i])
            S = torch.baddbmm(S * a[i, :, None, None], kd[i].transpose(1, 2), vn[i])
        if N == 0:
            S = S.clone()
        o = torch.baddbmm(torch.bmm(qd.view(-1, C, dk), hs.view(-1, dk, dv)), A.view(-1, C, C), vn.view(-1, C, dv))
        ctx.save_for_backward(qd, kd, w, A, a, hs, vn)
        return o.view(N, G, C, dv), S

    @staticmethod
    def backward(ctx, do, dS_final):
        qd, kd, w, A, a, hs, vn = ctx.saved_tensors
        N, G, C, dk = qd.shape
        dv = vn.shape[-1]
        do = torch.zeros_like(vn) if do is None else do.contiguous()
        dof, hf, vf = do.view(-1, C, dv), hs.view(-1, dk, dv), vn.view(-1, C, dv)
        dvn = torch.bmm(A.view(-1, C, C).transpose(1, 2), dof).view(N, G, C, dv)
        dh_o = torch.bmm(qd.view(-1, C, dk).transpose(1, 2), dof).view(N, G, dk, dv)
        dS_after = torch.empty_like(hs)
        dS = torch.zeros_like(hs[0]) if dS_final is None else dS_final.contiguous()
        for i in range(N - 1, -1, -1):
            dS_after[i] = dS
            torch.baddbmm(dvn[i], kd[i], dS, out=dvn[i])
            dS = torch.baddbmm(torch.addcmul(dh_o[i], dS, a[i, :, None, None]), w[i].transpose(1, 2), dvn[i], alpha=-1)
        dvf = dvn.view(-1, C, dv)
        dqd = torch.bmm(dof, hf.transpose(1, 2)).view(N, G, C, dk)
        dA = torch.bmm(dof, vf.transpose(1, 2)).view(N, G, C, C)
        dkd = torch.bmm(vf, dS_after.view(-1, dk, dv).transpose(1, 2)).view(N, G, C, dk)
        da = (dS_after * hs).sum((-2, -1))
        dw = torch.bmm(dvf, hf.transpose(1, 2)).neg_().view(N, G, C, dk)
        return dqd, dkd, dw, dvn, dA, da, dS


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
    """Chunkwise gated delta rule, any length. Returns ``(o in v's dtype, S in fp32)``.

    Chunk-major memory (``[N, B·H, C, d]``), the decay factors and the UT transform batched by autograd, and the
    loop in ``_GatedChunkLoop`` (state recurrence alone in Python, hand-written backward). Runs in fp32 (fp64
    for fp64 inputs) with autocast off. ``gated_delta_rule_chunkwise_ref`` is the plain loop.
    """
    check_shapes(q, k, v, beta, initial_state)
    _check_g(q, g)
    B, H, L, dk = q.shape
    dv = v.shape[-1]
    C = chunk_size
    dt, out_dtype = _state_dtype(q), v.dtype
    with torch.autocast(device_type=q.device.type, enabled=False):
        q, k, v, beta, g = (_pad_to_chunks(x.to(dt), C) for x in (q, k, v, beta, g))
        N = q.shape[2] // C
        G = B * H
        beta = beta.reshape(B, H, N, C).permute(2, 0, 1, 3).reshape(N, G, C, 1)
        gamma = g.reshape(B, H, N, C).permute(2, 0, 1, 3).reshape(N, G, C).cumsum(-1)  # γ_r inside the chunk
        q = _n_major(q, N, C).view(N, G, C, dk).mul_(dk**-0.5)
        k = _n_major(k, N, C).view(N, G, C, dk)
        v_beta = _n_major(v, N, C).view(N, G, C, dv).mul_(beta)
        k_beta = k * beta
        lower = torch.ones(C, C, dtype=torch.bool, device=q.device).tril()
        # D[r, s] = exp(γ_r − γ_s) on and below the diagonal; the exponent is masked before exp so that the
        # (positive, possibly huge) upper entries never overflow.
        D = (gamma[..., :, None] - gamma[..., None, :]).masked_fill(~lower, float("-inf")).exp()
        T = _UTInverse.apply((k_beta @ k.transpose(-1, -2)) * D)  # (I + tril(diag(β) K Kᵀ ⊙ D, −1))⁻¹
        decay_in = gamma[..., None].exp()  # exp(γ_r): decay from the chunk start to token r
        u = T @ v_beta
        w = T @ (k_beta * decay_in)
        gamma_last = gamma[..., -1]  # [N, G]
        kd = k * (gamma_last[..., None] - gamma)[..., None].exp()  # K ⊙ exp(γ_C − γ_r)
        A = (q @ k.transpose(-1, -2)) * D
        S0 = q.new_zeros(G, dk, dv) if initial_state is None else initial_state.to(dt).reshape(G, dk, dv)
        o, S = _GatedChunkLoop.apply(q * decay_in, kd, w, u, A, gamma_last.exp(), S0)
    # [N, B, H, C, dv] → [B, H, N·C, dv] over [B, L, H, dv] memory (the head merge after it is a view)
    o = o.view(N, B, H, C, dv).permute(1, 0, 3, 2, 4).contiguous().permute(0, 3, 1, 2, 4).reshape(B, H, N * C, dv)
    if N * C != L:
        o = o[:, :, :L]
    return o.to(out_dtype), S.view(B, H, dk, dv)


def gated_delta_rule_chunkwise_ref(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    beta: Tensor,
    g: Tensor,
    chunk_size: int = 32,
    initial_state: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Reference twin of ``gated_delta_rule_chunkwise``: the straightforward loop (autograd through it)."""
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
