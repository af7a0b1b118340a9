"""U'_i = GELU(U_i − W_i S)                                                  (was U'_i = U_i − W_i S)

differs from delta_net: line (c) only. The exact (erf) GELU is applied elementwise to the corrected error, and
this U'_i feeds both the intra-chunk output (e) and the state write (f), as the baseline's does. Positive error
components pass almost unchanged, negative ones are squashed towards 0 (GELU(x) ≥ −0.17), so the memory is
mostly written upward. No constants.
"""
import torch.nn.functional as F

from deltalab.core import causal_mask, chunk_epilogue, chunk_preamble, initial_state_or_zeros


def delta_rule_chunkwise(q, k, v, beta, chunk_size=32):
    c = chunk_preamble(q, k, v, beta, chunk_size)
    S = initial_state_or_zeros(c)
    mask = causal_mask(c)
    o = []
    for i in range(c.num_chunks):
        q_i, k_i, u_i, w_i = c.q[:, :, i], c.k[:, :, i], c.u[:, :, i], c.w[:, :, i]
        A_i = (q_i @ k_i.mT) * mask
        u_i = F.gelu(u_i - w_i @ S)  # the changed line
        o.append(q_i @ S + A_i @ u_i)
        S = S + k_i.mT @ u_i
    return chunk_epilogue(c, o), S
