"""U'_i ← U'_i with only its k = ⌈C/4⌉ largest-norm rows kept;  S = λ · (S + K_iᵀ U'_i),  λ = 0.9

differs from delta_net: lines (c) and (f): topk_error's sparse error (line c, with its causal ranking for the
output and the seed's whole-chunk top-k for the write; see topk_error.py) combined with decay_state's
per-chunk decay of the state after each write (line f, λ = 0.9; see decay_state.py for why after the write
and why 0.9). The combination round 2's seed document (004) names as its next step: "combine with lightweight
decay (α)"; α is λ here. The decay acts only on the state carried to the next chunk, so on a sequence of one
chunk this rule is topk_error. λ = 1 gives topk_error back, ratio = 1 gives decay_state back.
"""
import math

import torch

from deltalab.core import causal_mask, chunk_epilogue, chunk_preamble, initial_state_or_zeros
from deltalab.variants.decay_state import DECAY
from deltalab.variants.topk_error import RATIO, prefix_topk_mask


def delta_rule_chunkwise(q, k, v, beta, chunk_size=32, *, ratio=RATIO, decay=DECAY):
    c = chunk_preamble(q, k, v, beta, chunk_size)
    S = initial_state_or_zeros(c)
    mask = causal_mask(c)
    top = max(1, math.ceil(ratio * c.chunk_size))
    o = []
    for i in range(c.num_chunks):
        q_i, k_i, u_i, w_i = c.q[:, :, i], c.k[:, :, i], c.u[:, :, i], c.w[:, :, i]
        A_i = (q_i @ k_i.mT) * mask
        u_i = u_i - w_i @ S
        M = prefix_topk_mask(torch.linalg.vector_norm(u_i.detach(), dim=-1), top)  # the changed lines
        o.append(q_i @ S + (A_i * M) @ u_i)
        S = decay * (S + k_i.mT @ (M[..., -1, :, None] * u_i))
    return chunk_epilogue(c, o), S
