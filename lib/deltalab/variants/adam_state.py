"""G = K_iᵀ U'_i;  M = b₁M + (1−b₁)G;  V = b₂V + (1−b₂)G²;  S = S + β̄ · M̂ / (√V̂ + ε)

differs from delta_net: line (f) only. The delta-rule write G = K_iᵀ U'_i (the descent direction of the
chunk's reconstruction loss) is fed to Adam instead of being added to S: first and second moments M, V are
carried across chunks like S, bias-corrected with the chunk count n = i + 1 (M̂ = M/(1 − b₁ⁿ),
V̂ = V/(1 − b₂ⁿ)), and the step size is β̄, the mean β over the chunk's real tokens — the same step rule as the
seed's rmsprop_state (round 1 doc 003), of which this is the momentum-plus-bias-correction version.
b₁ = 0.9, b₂ = 0.999, ε = 1e-8: Adam's published defaults. The output uses U'_i and the state from before the
chunk, as in the baseline. √V̂ is clamped at 1e-30 (``_parts.safe_sqrt``) to keep the gradient finite at V = 0.
"""
from deltalab.core import causal_mask, chunk_epilogue, chunk_preamble, initial_state_or_zeros
from deltalab.variants._parts import mean_beta, safe_sqrt

STATE_ONLY = True  # the change is to line (f) only: the state carried to the next chunk

B1, B2, EPS = 0.9, 0.999, 1e-8


def delta_rule_chunkwise(q, k, v, beta, chunk_size=32):
    c = chunk_preamble(q, k, v, beta, chunk_size)
    S = initial_state_or_zeros(c)
    M, V = initial_state_or_zeros(c), initial_state_or_zeros(c)  # Adam moments, fp32 like S
    mask = causal_mask(c)
    o = []
    for i in range(c.num_chunks):
        q_i, k_i, u_i, w_i = c.q[:, :, i], c.k[:, :, i], c.u[:, :, i], c.w[:, :, i]
        A_i = (q_i @ k_i.mT) * mask
        u_i = u_i - w_i @ S
        o.append(q_i @ S + A_i @ u_i)
        G = k_i.mT @ u_i  # the changed lines
        M = B1 * M + (1 - B1) * G
        V = B2 * V + (1 - B2) * G * G
        n = i + 1
        S = S + mean_beta(c, i) * (M / (1 - B1**n)) / (safe_sqrt(V / (1 - B2**n)) + EPS)
    return chunk_epilogue(c, o), S
