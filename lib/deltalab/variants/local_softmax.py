"""O_i = Q_i S + A_i U'_i + softmax(Q_i K_iᵀ masked causally) V_i           (adds a third term to line (e))

differs from delta_net: line (e) only. A local softmax self-attention over the chunk (a causal window of up to
C tokens) is added to the output: queries, keys and values of the chunk itself, with V_i = β ⊙ V as fla's loop
sees v. The delta-rule path (state read, intra-chunk A_i U'_i, state update) is unchanged, so this is an
extra attention branch, not a replacement. No constants.

At the study's shapes the branch is nearly uniform: the layer L2-normalises q and k and q arrives scaled by
d_k^-1/2 = 1/8 (d_k = 64), so every score lies in [−1/8, 1/8] and two weights of a row differ by at most a factor
e^(1/4) ≈ 1.28. The added term is close to the running mean of β ⊙ v over the chunk, not a lookup.
"""
from deltalab.core import causal_mask, chunk_epilogue, chunk_preamble, initial_state_or_zeros
from deltalab.variants._parts import causal_softmax


def delta_rule_chunkwise(q, k, v, beta, chunk_size=32):
    c = chunk_preamble(q, k, v, beta, chunk_size)
    S = initial_state_or_zeros(c)
    mask = causal_mask(c)
    o = []
    for i in range(c.num_chunks):
        q_i, k_i, v_i, u_i, w_i = c.q[:, :, i], c.k[:, :, i], c.v[:, :, i], c.u[:, :, i], c.w[:, :, i]
        scores = q_i @ k_i.mT
        A_i = scores * mask
        u_i = u_i - w_i @ S
        o.append(q_i @ S + A_i @ u_i + causal_softmax(scores, mask) @ v_i)  # the changed line
        S = S + k_i.mT @ u_i
    return chunk_epilogue(c, o), S
