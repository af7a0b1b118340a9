"""A_i = softmax(√d_k · cos(q_t, k_s) masked causally)                      (was A_i = tril(Q_i K_iᵀ))

differs from delta_net: line (b) only. The intra-chunk scores are cosine similarities (q and k re-normalised
to unit length) times a fixed temperature τ = √d_k, then a causal row softmax. τ = √d_k gives the cosine logits
the unit spread of scaled dot-product logits for random unit-variance features (see ``_parts.cosine_scores``);
without it cosines in [-1, 1] would make the softmax nearly uniform. State read/write are the baseline's.
"""
from deltalab.core import causal_mask, chunk_epilogue, chunk_preamble, initial_state_or_zeros
from deltalab.variants._parts import causal_softmax, cosine_scores


def cosine_softmax_attention(q_i, k_i, mask):
    """``softmax_causal(√d_k cos(Q_i, K_i))``, ``[B, H, C, C]``."""
    return causal_softmax(cosine_scores(q_i, k_i), mask)


def delta_rule_chunkwise(q, k, v, beta, chunk_size=32):
    c = chunk_preamble(q, k, v, beta, chunk_size)
    S = initial_state_or_zeros(c)
    mask = causal_mask(c)
    o = []
    for i in range(c.num_chunks):
        q_i, k_i, u_i, w_i = c.q[:, :, i], c.k[:, :, i], c.u[:, :, i], c.w[:, :, i]
        A_i = cosine_softmax_attention(q_i, k_i, mask)  # the changed line
        u_i = u_i - w_i @ S
        o.append(q_i @ S + A_i @ u_i)
        S = S + k_i.mT @ u_i
    return chunk_epilogue(c, o), S
