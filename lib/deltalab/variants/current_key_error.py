"""U'_i = V_i − K_i S   (V_i = β ⊙ V as fla's loop sees v; no WY correction)   (was U'_i = U_i − W_i S)

differs from delta_net: line (c) only, as written in the seed proposal (round 5, doc 000): the error is the
chunk's β-scaled values minus the memory's direct prediction for the chunk's own keys, K_i S, in place of the
UT-transformed pseudo-values U_i corrected by W_i S. It feeds both the output (A_i U'_i) and the write
(S += K_iᵀ U'_i). Every token of the chunk is thus corrected against the state from before the chunk,
ignoring the writes of earlier tokens of the same chunk (a Jacobi-style update instead of the delta rule's
sequential one), and the prediction K_i S is not scaled by β while the target β ⊙ v is, as in the seed's code.
The preamble's U and W are computed but unused.
"""
from deltalab.core import causal_mask, chunk_epilogue, chunk_preamble, initial_state_or_zeros


def delta_rule_chunkwise(q, k, v, beta, chunk_size=32):
    c = chunk_preamble(q, k, v, beta, chunk_size)
    S = initial_state_or_zeros(c)
    mask = causal_mask(c)
    o = []
    for i in range(c.num_chunks):
        q_i, k_i, v_i = c.q[:, :, i], c.k[:, :, i], c.v[:, :, i]
        A_i = (q_i @ k_i.mT) * mask
        u_i = v_i - k_i @ S  # the changed line
        o.append(q_i @ S + A_i @ u_i)
        S = S + k_i.mT @ u_i
    return chunk_epilogue(c, o), S
