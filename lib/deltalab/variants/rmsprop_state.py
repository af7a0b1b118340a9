"""G = K_iᵀ U'_i;  V = ρ V + (1 − ρ) G²;  S = S + β̄ G / (√V + ε),  ρ = 0.9, ε = 1e-8

differs from delta_net: line (f) only, as written in the seed proposal (round 1, doc 003). The delta-rule write
G = K_iᵀ U'_i is treated as a gradient and rescaled per state cell by RMSProp: V, the running second moment of
G, is carried across chunks like S, and the step size is β̄, the mean β over the chunk's real tokens (β as given
to the function, before it is folded into v). ρ = 0.9 and ε = 1e-8 are the seed's values (RMSProp's usual
ones). The output uses the corrected U'_i with the state from before the chunk, as in the baseline; S is only
written after it. Note the step |β̄ G/(√V + ε)| ≤ β̄/√(1 − ρ) ≈ 3.2 β̄ per cell, whatever the size of G: the
update is close to a signed step (this is the seed's math, kept as is). √V is clamped at 1e-30 (see ``_parts``),
which changes no value but keeps the gradient finite where V = 0.
"""
from deltalab.core import causal_mask, chunk_epilogue, chunk_preamble, initial_state_or_zeros
from deltalab.variants._parts import mean_beta, safe_sqrt

STATE_ONLY = True  # the change is to line (f) only: the state carried to the next chunk

RHO, EPS = 0.9, 1e-8


def delta_rule_chunkwise(q, k, v, beta, chunk_size=32):
    c = chunk_preamble(q, k, v, beta, chunk_size)
    S = initial_state_or_zeros(c)
    V = initial_state_or_zeros(c)  # second moment, fp32 like S
    mask = causal_mask(c)
    o = []
    for i in range(c.num_chunks):
        q_i, k_i, u_i, w_i = c.q[:, :, i], c.k[:, :, i], c.u[:, :, i], c.w[:, :, i]
        A_i = (q_i @ k_i.mT) * mask
        u_i = u_i - w_i @ S
        o.append(q_i @ S + A_i @ u_i)
        G = k_i.mT @ u_i  # the changed lines
        V = RHO * V + (1 - RHO) * G * G
        S = S + mean_beta(c, i) * G / (safe_sqrt(V) + EPS)
    return chunk_epilogue(c, o), S
