"""A_i = m · softmax(Q_i K_iᵀ masked causally) + (1 − m) · tril(Q_i K_iᵀ),  m = 1/2

differs from delta_net: line (b) only. The intra-chunk attention is a fixed equal mix of the causal softmax of
the scores and the raw (linear, unnormalised) causal scores the baseline uses, both applied to the corrected
values U'_i. m = 1/2: no preference between the two, the plain reading of "hybrid". m = 0 gives delta_net back,
m = 1 gives softmax_attention. State read/write are the baseline's.

At the study's shapes the softmax half is nearly uniform: the layer L2-normalises q and k and q arrives scaled by
d_k^-1/2 = 1/8 (d_k = 64), so every score lies in [−1/8, 1/8] and two softmax weights of a row differ by at most a
factor e^(1/4) ≈ 1.28. So A_i ≈ ½ · (running mean over the chunk) + ½ · tril(Q_i K_iᵀ): the change adds a causal
average of the corrected values U'_i to the delta rule's output, not a sharp attention.
"""
from deltalab.core import causal_mask, chunk_epilogue, chunk_preamble, initial_state_or_zeros
from deltalab.variants._parts import causal_softmax

MIX = 0.5  # weight of the softmax part


def delta_rule_chunkwise(q, k, v, beta, chunk_size=32, *, mix=MIX):
    c = chunk_preamble(q, k, v, beta, chunk_size)
    S = initial_state_or_zeros(c)
    mask = causal_mask(c)
    o = []
    for i in range(c.num_chunks):
        q_i, k_i, u_i, w_i = c.q[:, :, i], c.k[:, :, i], c.u[:, :, i], c.w[:, :, i]
        scores = q_i @ k_i.mT
        A_i = mix * causal_softmax(scores, mask) + (1 - mix) * (scores * mask)  # the changed line
        u_i = u_i - w_i @ S
        o.append(q_i @ S + A_i @ u_i)
        S = S + k_i.mT @ u_i
    return chunk_epilogue(c, o), S
