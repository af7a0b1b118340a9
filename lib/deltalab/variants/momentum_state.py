"""M = μ M + K_iᵀ U'_i;  S = S + M,  μ = 0.9                                (was S = S + K_iᵀ U'_i)

differs from delta_net: line (f) only. The delta-rule write G_i = K_iᵀ U'_i (the descent direction of the
chunk's reconstruction loss) drives a heavy-ball momentum buffer M, carried across chunks like S, and M is what
is added to the state (SGD momentum as in torch.optim.SGD: no dampening, step 1). The first chunk writes exactly
the baseline's update; later chunks add the decayed earlier writes too. μ = 0.9, the conventional momentum
value. Overshoot is partly self-corrected, since the next chunk's error U' = U − W S is measured against the
moved state. μ = 0 gives delta_net back.
"""
from deltalab.core import causal_mask, chunk_epilogue, chunk_preamble, initial_state_or_zeros

STATE_ONLY = True  # the change is to line (f) only: the state carried to the next chunk

MOMENTUM = 0.9


def delta_rule_chunkwise(q, k, v, beta, chunk_size=32, *, momentum=MOMENTUM):
    c = chunk_preamble(q, k, v, beta, chunk_size)
    S = initial_state_or_zeros(c)
    M = initial_state_or_zeros(c)  # momentum buffer, fp32 like S
    mask = causal_mask(c)
    o = []
    for i in range(c.num_chunks):
        q_i, k_i, u_i, w_i = c.q[:, :, i], c.k[:, :, i], c.u[:, :, i], c.w[:, :, i]
        A_i = (q_i @ k_i.mT) * mask
        u_i = u_i - w_i @ S
        o.append(q_i @ S + A_i @ u_i)
        M = momentum * M + k_i.mT @ u_i  # the changed lines
        S = S + M
    return chunk_epilogue(c, o), S
