"""A_i = tril(RoPE(Q_i) RoPE(K_i)ᵀ);  U'_i ← U'_i with only its k = ⌈C/4⌉ largest-norm rows kept

differs from delta_net: lines (b) and (c): rope_qk's rotary intra-chunk scores (line b; base 10000, positions
counted inside the chunk, see rope_qk.py) combined with topk_error's sparse error (line c, with its causal
ranking for the output and the seed's whole-chunk top-k for the write, see topk_error.py):
O_i = Q_i S + (A_i ⊙ M) U'_i, S += K_iᵀ (m_last ⊙ U'_i). The combination round 2's seed document (004) names
as its next step: "combine with [...] RoPE-QK". The rotation touches only the intra-chunk scores, so the state,
and thus the written rows, are topk_error's. ratio = 1 gives rope_qk back. d_k must be even.
"""
import math

import torch

from deltalab.core import causal_mask, chunk_epilogue, chunk_preamble, initial_state_or_zeros
from deltalab.variants.rope_qk import BASE, rotary
from deltalab.variants.topk_error import RATIO, prefix_topk_mask


def delta_rule_chunkwise(q, k, v, beta, chunk_size=32, *, ratio=RATIO):
    if q.shape[-1] % 2:
        raise ValueError(f"topk_error_rope needs an even d_k; got {q.shape[-1]}")
    c = chunk_preamble(q, k, v, beta, chunk_size)
    S = initial_state_or_zeros(c)
    mask = causal_mask(c)
    top = max(1, math.ceil(ratio * c.chunk_size))
    d = c.q.shape[-1]
    freq = BASE ** (-torch.arange(0, d, 2, dtype=c.q.dtype, device=c.q.device) / d)  # [d/2]
    angle = torch.arange(c.chunk_size, dtype=c.q.dtype, device=c.q.device)[:, None] * freq  # [C, d/2]
    cos, sin = angle.cos(), angle.sin()
    o = []
    for i in range(c.num_chunks):
        q_i, k_i, u_i, w_i = c.q[:, :, i], c.k[:, :, i], c.u[:, :, i], c.w[:, :, i]
        A_i = (rotary(q_i, cos, sin) @ rotary(k_i, cos, sin).mT) * mask  # the changed lines
        u_i = u_i - w_i @ S
        M = prefix_topk_mask(torch.linalg.vector_norm(u_i.detach(), dim=-1), top)
        o.append(q_i @ S + (A_i * M) @ u_i)
        S = S + k_i.mT @ (M[..., -1, :, None] * u_i)
    return chunk_epilogue(c, o), S
