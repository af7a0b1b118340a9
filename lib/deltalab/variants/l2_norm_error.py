"""ê_t = e_t / (‖e_t‖₂ + ε),  E = U_i − W_i S,  ε = 1e-6                     (was U'_i = U_i − W_i S)

differs from delta_net: line (c) only, as written in the seed proposal (round 3, doc 001): the corrected error
of each token is divided by its own L2 norm, and the unit-length Ê replaces U'_i in both the intra-chunk output
(A_i Ê) and the state write (S += K_iᵀ Ê): the error keeps its direction, loses its magnitude. The seed gives no
value for ε; 1e-6 is the eps of fla's own in-kernel l2norm. A zero error row (padding) stays zero.
"""
from deltalab.core import causal_mask, chunk_epilogue, chunk_preamble, initial_state_or_zeros
from deltalab.variants._parts import row_norm

EPS = 1e-6


def delta_rule_chunkwise(q, k, v, beta, chunk_size=32):
    c = chunk_preamble(q, k, v, beta, chunk_size)
    S = initial_state_or_zeros(c)
    mask = causal_mask(c)
    o = []
    for i in range(c.num_chunks):
        q_i, k_i, u_i, w_i = c.q[:, :, i], c.k[:, :, i], c.u[:, :, i], c.w[:, :, i]
        A_i = (q_i @ k_i.mT) * mask
        e_i = u_i - w_i @ S
        u_i = e_i / (row_norm(e_i) + EPS)  # the changed line
        o.append(q_i @ S + A_i @ u_i)
        S = S + k_i.mT @ u_i
    return chunk_epilogue(c, o), S
