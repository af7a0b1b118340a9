"""A_i = softmax(√d_k · cos(q_t, k_s) masked causally);  S = S + K_iᵀ (tanh(‖u'_t‖₂) ⊙ U'_i)

differs from delta_net: lines (b) and (f): cosine_softmax's intra-chunk attention together with error_gated's
state write, each taken from its own variant file (``cosine_softmax_attention``, ``error_gated_write``), so the
combination is exactly the two parts and nothing else. Constants: those of the two parts (τ = √d_k).
"""
from deltalab.core import causal_mask, chunk_epilogue, chunk_preamble, initial_state_or_zeros
from deltalab.variants.cosine_softmax import cosine_softmax_attention
from deltalab.variants.error_gated import error_gated_write


def delta_rule_chunkwise(q, k, v, beta, chunk_size=32):
    c = chunk_preamble(q, k, v, beta, chunk_size)
    S = initial_state_or_zeros(c)
    mask = causal_mask(c)
    o = []
    for i in range(c.num_chunks):
        q_i, k_i, u_i, w_i = c.q[:, :, i], c.k[:, :, i], c.u[:, :, i], c.w[:, :, i]
        A_i = cosine_softmax_attention(q_i, k_i, mask)  # changed (b)
        u_i = u_i - w_i @ S
        o.append(q_i @ S + A_i @ u_i)
        S = S + k_i.mT @ error_gated_write(u_i)  # changed (f)
    return chunk_epilogue(c, o), S
