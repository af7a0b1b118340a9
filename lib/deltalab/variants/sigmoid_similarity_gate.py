"""A_i = tril(Q_i K_iᵀ ⊙ σ(√d_k · cos(q_t, k_s)))                           (was A_i = tril(Q_i K_iᵀ))

differs from delta_net: line (b) only. Each intra-chunk score is multiplied by a sigmoid gate of the similarity
of its query and key: pairs that point the same way pass (σ → 1), unrelated or opposed pairs are shut (σ → 0).
The gate reads the cosine with the temperature τ = √d_k of cosine_softmax (``_parts.cosine_scores``): q and k
are unit-norm in DeltaNet, so a gate on the raw scaled score q·k/√d_k ∈ [−1/√d_k, 1/√d_k] would sit at σ ≈ 1/2
for every pair and merely halve A. State read/write are the baseline's.
"""
import torch

from deltalab.core import causal_mask, chunk_epilogue, chunk_preamble, initial_state_or_zeros
from deltalab.variants._parts import cosine_scores


def delta_rule_chunkwise(q, k, v, beta, chunk_size=32):
    c = chunk_preamble(q, k, v, beta, chunk_size)
    S = initial_state_or_zeros(c)
    mask = causal_mask(c)
    o = []
    for i in range(c.num_chunks):
        q_i, k_i, u_i, w_i = c.q[:, :, i], c.k[:, :, i], c.u[:, :, i], c.w[:, :, i]
        A_i = (q_i @ k_i.mT) * torch.sigmoid(cosine_scores(q_i, k_i)) * mask  # the changed line
        u_i = u_i - w_i @ S
        o.append(q_i @ S + A_i @ u_i)
        S = S + k_i.mT @ u_i
    return chunk_epilogue(c, o), S
