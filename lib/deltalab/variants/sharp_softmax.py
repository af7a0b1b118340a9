"""A_i = softmax(τ · q_t·k_s masked causally),  τ = 1 on the unscaled query       (softmax_attention: τ = d_k^-1/2)

differs from delta_net: line (b) only, and from softmax_attention only in the inverse temperature τ: the same
causal row softmax over the intra-chunk scores, applied to the corrected values U'_s, s ≤ t, with logits
τ · q_t·k_s of the layer's unit-norm q and k instead of q_t·k_s / √d_k. With d_k = 64 softmax_attention's
logits lie in [−1/8, 1/8] and its weights within a factor e^(1/4) ≈ 1.28 of uniform; at τ = 1 the logits are
the cosines themselves, in [−1, 1], and two weights of a row may differ by up to e² ≈ 7.4, so the weights can
move away from uniform. Together with uniform_average (τ = 0), softmax_attention (τ = 1/8) and cosine_softmax
(τ = 8: its √d_k · cos(q, k) is 8 q·k on unit-norm q and k, so it is this rule at τ = √d_k, already a row of
the study) this gives a ladder of inverse temperatures over the same pass.

Why τ = 1, fixed: τ = √d_k would re-train cosine_softmax; τ = 1 is the point between, the scaled dot product
with its 1/√d_k removed. A learned scalar would need a parameter in the layer, and a loop body with fla's
signature has none (the layers give every variant the same parameters). Other τ: the keyword
``inverse_temperature`` (a user file that calls this function with it; τ = d_k^-1/2 is softmax_attention).
"""
from deltalab.core import causal_mask, chunk_epilogue, chunk_preamble, initial_state_or_zeros
from deltalab.variants._parts import causal_softmax

INVERSE_TEMPERATURE = 1.0  # τ, on the unscaled dot product q·k of unit vectors


def delta_rule_chunkwise(q, k, v, beta, chunk_size=32, *, inverse_temperature=INVERSE_TEMPERATURE):
    c = chunk_preamble(q, k, v, beta, chunk_size)
    S = initial_state_or_zeros(c)
    mask = causal_mask(c)
    logit_scale = inverse_temperature * c.q.shape[-1] ** 0.5  # c.q carries d_k^-1/2 already
    o = []
    for i in range(c.num_chunks):
        q_i, k_i, u_i, w_i = c.q[:, :, i], c.k[:, :, i], c.u[:, :, i], c.w[:, :, i]
        A_i = causal_softmax(logit_scale * (q_i @ k_i.mT), mask)  # the changed line
        u_i = u_i - w_i @ S
        o.append(q_i @ S + A_i @ u_i)
        S = S + k_i.mT @ u_i
    return chunk_epilogue(c, o), S
