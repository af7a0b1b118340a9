"""S = S + K_iᵀ (g ⊙ U'_i),  g_t = tanh(‖u'_t‖₂)                            (was S = S + K_iᵀ U'_i)

differs from delta_net: line (f) only. Each token's corrected error row u'_t is gated by a scalar computed from
its own magnitude before it is written: a token the memory already predicts (small error) writes weakly — the
write then scales like ‖u'‖² — while a token with error norm ≳ 2 writes (almost) fully, as in the baseline
(g = tanh(2) = 0.96). tanh is the saturating map with slope 1 at 0; no other constant. The output still uses
the ungated U'_i, so only what is stored changes. Causal: the gate is per token and used after the output.
"""
import torch

from deltalab.core import causal_mask, chunk_epilogue, chunk_preamble, initial_state_or_zeros
from deltalab.variants._parts import row_norm

STATE_ONLY = True  # the change is to line (f) only: the state carried to the next chunk


def error_gated_write(u_i):
    """``g ⊙ U'`` with ``g_t = tanh(‖u'_t‖₂)``: the error rows as they are written into the state."""
    return torch.tanh(row_norm(u_i)) * u_i


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
        S = S + k_i.mT @ error_gated_write(u_i)  # the changed line
    return chunk_epilogue(c, o), S
