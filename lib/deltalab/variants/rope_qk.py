"""A_i = tril(RoPE(Q_i) RoPE(K_i)ᵀ),  rotation angle of pair j at position t: t · 10000^(−2j/d_k)

differs from delta_net: line (b) only. Rotary position embeddings (RoFormer, base 10000, the usual default;
channels paired as (j, j + d_k/2)) are applied to the queries and keys of the intra-chunk scores, so A_i
depends on the offset t − s as well as on content. Positions are counted inside the chunk; RoPE scores
depend only on t − s, so absolute positions would give the same A_i. The state is still read with Q_i and
written with K_i: the preamble's W = T(β ⊙ K) is built from unrotated keys, and rotating the keys of the
state write without it would break the delta rule's erasure. d_k must be even.
"""
import torch

from deltalab.core import causal_mask, chunk_epilogue, chunk_preamble, initial_state_or_zeros

BASE = 10000.0


def rotary(x, cos, sin):
    """Rotate channel pairs (j, j + d/2) of ``x [.., C, d]`` by the per-position angles in ``cos, sin [C, d/2]``."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def delta_rule_chunkwise(q, k, v, beta, chunk_size=32):
    if q.shape[-1] % 2:
        raise ValueError(f"rope_qk needs an even d_k; got {q.shape[-1]}")
    c = chunk_preamble(q, k, v, beta, chunk_size)
    S = initial_state_or_zeros(c)
    mask = causal_mask(c)
    d = c.q.shape[-1]
    freq = BASE ** (-torch.arange(0, d, 2, dtype=c.q.dtype, device=c.q.device) / d)  # [d/2]
    angle = torch.arange(c.chunk_size, dtype=c.q.dtype, device=c.q.device)[:, None] * freq  # [C, d/2]
    cos, sin = angle.cos(), angle.sin()
    o = []
    for i in range(c.num_chunks):
        q_i, k_i, u_i, w_i = c.q[:, :, i], c.k[:, :, i], c.u[:, :, i], c.w[:, :, i]
        A_i = (rotary(q_i, cos, sin) @ rotary(k_i, cos, sin).mT) * mask  # the changed line
        u_i = u_i - w_i @ S
        o.append(q_i @ S + A_i @ u_i)
        S = S + k_i.mT @ u_i
    return chunk_epilogue(c, o), S
