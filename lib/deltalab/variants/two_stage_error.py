"""Δ₁ = K_iᵀ(U_i − W_i S);  S₁ = S + Δ₁;  Δ₂ = K_iᵀ(U_i − W_i S₁);  S = S₁ + γ Δ₂,  γ = 0.5

differs from delta_net: line (f) only, as written in the seed proposal (round 4, doc 002). Mapping of the doc's
token-level formulas onto the chunk: the doc's correction "kᵀ(v̂ − S·k)" is, for a chunk of C tokens written in
sequence, exactly the baseline's K_iᵀ(U_i − W_i S): the pseudo-values U_i = T(β ⊙ V) play v̂, and W_i S =
T(β ⊙ K) S is the prediction S·k with each token's β and the writes of the earlier tokens of the chunk folded in
by the UT transform T. So stage 1 is the baseline write (Δ₁, S₁), and stage 2 repeats the same correction of
the same chunk against the intermediate state S₁ (the residual error U_i − W_i S₁) and adds γ = 0.5 of it, the
seed's value ("avoids over-correction"). The output uses the stage-1 U'_i and the state from before the chunk,
as in the baseline: the state is written only after the chunk's output. γ = 0 gives delta_net back.

Other γ: the keyword ``gamma``. The registry holds this function at γ = 1, the full step, as
``two_stage_error_full`` (round 6); for any other γ, a user file that returns
``delta_rule_chunkwise(q, k, v, beta, chunk_size, gamma=...)`` of this module (see topk_error.py).
"""
from deltalab.core import causal_mask, chunk_epilogue, chunk_preamble, initial_state_or_zeros

STATE_ONLY = True  # the change is to line (f) only: the state carried to the next chunk

GAMMA = 0.5


def delta_rule_chunkwise(q, k, v, beta, chunk_size=32, *, gamma=GAMMA):
    c = chunk_preamble(q, k, v, beta, chunk_size)
    S = initial_state_or_zeros(c)
    mask = causal_mask(c)
    o = []
    for i in range(c.num_chunks):
        q_i, k_i, u_i, w_i = c.q[:, :, i], c.k[:, :, i], c.u[:, :, i], c.w[:, :, i]
        A_i = (q_i @ k_i.mT) * mask
        e1 = u_i - w_i @ S
        o.append(q_i @ S + A_i @ e1)
        S1 = S + k_i.mT @ e1  # the changed lines
        S = S1 + gamma * (k_i.mT @ (u_i - w_i @ S1))
    return chunk_epilogue(c, o), S
