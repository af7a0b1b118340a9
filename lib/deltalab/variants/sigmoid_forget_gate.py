"""S = f_i · (S + K_iᵀ U'_i),  f_i = 2σ(−ē_i),  ē_i = RMS of the chunk's corrected error U'_i

differs from delta_net: line (f) only. decay_state with its constant λ replaced by a forget gate computed from
the chunk's prediction error: ē_i is the root-mean-square of U'_i over the chunk's real tokens and value
channels (one scalar per batch and head). When the memory already predicted the chunk (ē = 0) the gate is
f = 2σ(0) = 1 and nothing is forgotten; the larger the error, the more of the old memory is judged stale and
decayed (f = 0.54 at ē = 1, 0.24 at ē = 2). The factor 2 is what makes "no error" mean "no forgetting". The gate
is applied after the chunk's output, as decay_state's, so it stays causal (a gate from the whole chunk's error
applied before the output would let early tokens see later ones). U'_i itself is the baseline's.
"""
import torch

from deltalab.core import causal_mask, chunk_epilogue, chunk_preamble, initial_state_or_zeros
from deltalab.variants._parts import real_tokens, safe_sqrt

STATE_ONLY = True  # the change is to line (f) only: the state carried to the next chunk


def delta_rule_chunkwise(q, k, v, beta, chunk_size=32):
    c = chunk_preamble(q, k, v, beta, chunk_size)
    S = initial_state_or_zeros(c)
    mask = causal_mask(c)
    o = []
    for i in range(c.num_chunks):
        q_i, k_i, u_i, w_i = c.q[:, :, i], c.k[:, :, i], c.u[:, :, i], c.w[:, :, i]
        A_i = (q_i @ k_i.mT) * mask
        u_i = u_i - w_i @ S
        o.append(q_i @ S + A_i @ u_i)
        e_rms = safe_sqrt(u_i.pow(2).sum((-1, -2), keepdim=True) / (real_tokens(c, i) * u_i.shape[-1]))
        S = 2 * torch.sigmoid(-e_rms) * (S + k_i.mT @ u_i)  # the changed line
    return chunk_epilogue(c, o), S
