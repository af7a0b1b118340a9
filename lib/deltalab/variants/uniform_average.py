"""A_i[t, s] = 1/(t+1) for s ≤ t, else 0: the causal mean of the chunk         (was A_i = tril(Q_i K_iᵀ))

differs from delta_net: line (b) only, and from softmax_attention only in the weights: token t's intra-chunk
output is the plain average of the corrected values U'_s over the tokens s ≤ t of its chunk, where
softmax_attention weighs them by the causal softmax of Q_i K_iᵀ. A control for the softmax-in-chunk family:
with the layer's unit-norm q and k and q scaled by d_k^-1/2 (d_k = 64), softmax_attention's logits lie in
[−1/8, 1/8], so its weights stay within a factor e^(1/4) ≈ 1.28 of these equal ones. If this row keeps
softmax_attention's gain, the gain comes from averaging, not from attending. The limit of sharp_softmax at
inverse temperature 0. The query reaches the output only through the state read Q_i S (so not at all within a
task's first chunk); the state write is the baseline's. No constants.
"""
from deltalab.core import causal_mask, chunk_epilogue, chunk_preamble, initial_state_or_zeros


def causal_mean(mask):
    """``[C, C]`` row-stochastic weights: 1/(t+1) on the causal prefix s ≤ t of row t, 0 above the diagonal."""
    return mask / mask.sum(dim=-1, keepdim=True)


def delta_rule_chunkwise(q, k, v, beta, chunk_size=32):
    c = chunk_preamble(q, k, v, beta, chunk_size)
    S = initial_state_or_zeros(c)
    A = causal_mean(causal_mask(c).to(c.q.dtype))  # the changed line: the same A_i for every chunk
    o = []
    for i in range(c.num_chunks):
        q_i, k_i, u_i, w_i = c.q[:, :, i], c.k[:, :, i], c.u[:, :, i], c.w[:, :, i]
        u_i = u_i - w_i @ S
        o.append(q_i @ S + A @ u_i)
        S = S + k_i.mT @ u_i
    return chunk_epilogue(c, o), S
