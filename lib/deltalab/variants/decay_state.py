"""S = λ · (S + K_iᵀ U'_i),  λ = 0.9 per chunk                              (was S = S + K_iᵀ U'_i)

differs from delta_net: line (f) only. After each chunk's write the whole state is multiplied by a fixed
decay λ, so the next chunk reads, corrects and overwrites a decayed memory: the forget-before-error order of
fla's gated delta rule (reference §2), with a constant gate applied once per chunk (the loop cannot decay per
token without the gated preamble). Decaying after the write, not λS + K_iᵀU'_i, matters: the latter leaves
−(1−λ)·old value on every key the chunk overwrites. λ = 0.9: a half-life of 6.6 chunks ≈ 210 tokens at C = 32,
longer than MAD's 128-token sequences (the first chunk is still at 0.73 by the end) yet visible within one.
The returned final S carries the last chunk's decay too. λ = 1 gives delta_net back.
"""
from deltalab.core import causal_mask, chunk_epilogue, chunk_preamble, initial_state_or_zeros

STATE_ONLY = True  # the change is to line (f) only: the state carried to the next chunk

DECAY = 0.9


def delta_rule_chunkwise(q, k, v, beta, chunk_size=32, *, decay=DECAY):
    c = chunk_preamble(q, k, v, beta, chunk_size)
    S = initial_state_or_zeros(c)
    mask = causal_mask(c)
    o = []
    for i in range(c.num_chunks):
        q_i, k_i, u_i, w_i = c.q[:, :, i], c.k[:, :, i], c.u[:, :, i], c.w[:, :, i]
        A_i = (q_i @ k_i.mT) * mask
        u_i = u_i - w_i @ S
        o.append(q_i @ S + A_i @ u_i)
        S = decay * (S + k_i.mT @ u_i)  # the changed line
    return chunk_epilogue(c, o), S
