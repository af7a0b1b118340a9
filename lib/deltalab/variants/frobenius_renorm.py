"""S = S' / max(1, ‖S'‖_F / R),  S' = S + K_iᵀ U'_i,  R = √(d_k d_v)         (was S = S')

differs from delta_net: line (f) only. After the baseline write, the state is renormed (torch.renorm's sense:
rescaled only if its norm exceeds a bound) so that its Frobenius norm never exceeds R = √(d_k·d_v), i.e. the
RMS of its entries never exceeds 1. A state below the bound is left untouched, so with small values this is
exactly delta_net. Written as a division by max(1, ‖S'‖/R) rather than a min with R/‖S'‖, whose derivative is
infinite at S' = 0.
"""
import math

import torch

from deltalab.core import causal_mask, chunk_epilogue, chunk_preamble, initial_state_or_zeros

STATE_ONLY = True  # the change is to line (f) only: the state carried to the next chunk


def delta_rule_chunkwise(q, k, v, beta, chunk_size=32):
    c = chunk_preamble(q, k, v, beta, chunk_size)
    S = initial_state_or_zeros(c)
    mask = causal_mask(c)
    R = math.sqrt(S.shape[-2] * S.shape[-1])
    o = []
    for i in range(c.num_chunks):
        q_i, k_i, u_i, w_i = c.q[:, :, i], c.k[:, :, i], c.u[:, :, i], c.w[:, :, i]
        A_i = (q_i @ k_i.mT) * mask
        u_i = u_i - w_i @ S
        o.append(q_i @ S + A_i @ u_i)
        S = S + k_i.mT @ u_i
        S = S / (torch.linalg.matrix_norm(S) / R).clamp_min(1)[..., None, None]  # the changed line
    return chunk_epilogue(c, o), S
