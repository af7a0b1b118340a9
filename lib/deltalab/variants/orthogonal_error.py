"""S = S + K_iᵀ E⊥,  e⊥_t = u'_t − (⟨u'_t, p_t⟩ / (‖p_t‖² + ε)) p_t,  P_i = W_i S,  ε = 1e-6

differs from delta_net: line (f) only. The write uses only the part of each token's corrected error that is
orthogonal to what the memory currently predicts for it, p_t = (W_i S)_t — the very term line (c) subtracts
(U'_i = U_i − P_i) — so a write adds new directions to the stored value but never rescales the predicted one.
ε = 1e-6 keeps the projection defined where the memory predicts nothing (S = 0 in the first chunk, where
E⊥ = U'_i). The output still uses U'_i; only what is stored changes.
"""
from deltalab.core import causal_mask, chunk_epilogue, chunk_preamble, initial_state_or_zeros

STATE_ONLY = True  # the change is to line (f) only: the state carried to the next chunk

EPS = 1e-6


def delta_rule_chunkwise(q, k, v, beta, chunk_size=32):
    c = chunk_preamble(q, k, v, beta, chunk_size)
    S = initial_state_or_zeros(c)
    mask = causal_mask(c)
    o = []
    for i in range(c.num_chunks):
        q_i, k_i, u_i, w_i = c.q[:, :, i], c.k[:, :, i], c.u[:, :, i], c.w[:, :, i]
        A_i = (q_i @ k_i.mT) * mask
        p_i = w_i @ S
        u_i = u_i - p_i
        o.append(q_i @ S + A_i @ u_i)
        coef = (u_i * p_i).sum(-1, keepdim=True) / (p_i.pow(2).sum(-1, keepdim=True) + EPS)  # the changed lines
        S = S + k_i.mT @ (u_i - coef * p_i)
    return chunk_epilogue(c, o), S
