"""A_i = tril(LN(Q_i) LN(K_i)ᵀ) / d_k^(3/2)                                  (was A_i = tril(Q_i K_iᵀ))

differs from delta_net: line (b) only. Queries and keys are passed through a parameter-free LayerNorm over the
feature dim (no affine, eps = 1e-5, PyTorch's default) before the intra-chunk scores. A LayerNormed vector has
norm √d_k, so dividing the product by d_k makes both unit vectors again, and the remaining d_k^(-1/2) is the
baseline's query scale: the scores keep the baseline's range and the change is the centring (each vector's mean
over features removed). LN is scale-invariant, so it does not matter that q arrives already scaled. The state is
read with Q_i and written with K_i, as in the baseline (W = T(β ⊙ K) is built from the raw keys).
"""
import torch.nn.functional as F

from deltalab.core import causal_mask, chunk_epilogue, chunk_preamble, initial_state_or_zeros

EPS = 1e-5


def delta_rule_chunkwise(q, k, v, beta, chunk_size=32):
    c = chunk_preamble(q, k, v, beta, chunk_size)
    S = initial_state_or_zeros(c)
    mask = causal_mask(c)
    d = c.q.shape[-1]
    o = []
    for i in range(c.num_chunks):
        q_i, k_i, u_i, w_i = c.q[:, :, i], c.k[:, :, i], c.u[:, :, i], c.w[:, :, i]
        ln_q, ln_k = F.layer_norm(q_i, (d,), eps=EPS), F.layer_norm(k_i, (d,), eps=EPS)
        A_i = (ln_q @ ln_k.mT) * (mask / d**1.5)  # the changed line
        u_i = u_i - w_i @ S
        o.append(q_i @ S + A_i @ u_i)
        S = S + k_i.mT @ u_i
    return chunk_epilogue(c, o), S
