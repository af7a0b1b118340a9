"""U'_i = V_i − K_i S;  O_i = Q_i S + A_i U'_i + softmax(Q_i K_iᵀ masked causally) V_i

differs from delta_net: lines (c) and (e): current_key_error's error (line c: the chunk's β-scaled values
minus the memory's prediction K_i S for the chunk's own keys, no WY correction; see current_key_error.py),
feeding both the output and the write, plus local_softmax's extra attention pass over the chunk (line e: a
causal softmax of the chunk's scaled scores applied to V_i = β ⊙ V; see local_softmax.py). The combination
round 5's seed document (000) expects "could provide the best of both worlds". The extra pass does not touch
the state, so the state is current_key_error's. No constants.

At the study's shapes the extra pass is nearly uniform, as local_softmax's: the layer L2-normalises q and k and q
arrives scaled by d_k^-1/2 = 1/8 (d_k = 64), so every score lies in [−1/8, 1/8] and two weights of a row differ by
at most a factor e^(1/4) ≈ 1.28. The added term is close to the running mean of β ⊙ v over the chunk.
"""
from deltalab.core import causal_mask, chunk_epilogue, chunk_preamble, initial_state_or_zeros
from deltalab.variants._parts import causal_softmax


def delta_rule_chunkwise(q, k, v, beta, chunk_size=32):
    c = chunk_preamble(q, k, v, beta, chunk_size)
    S = initial_state_or_zeros(c)
    mask = causal_mask(c)
    o = []
    for i in range(c.num_chunks):
        q_i, k_i, v_i = c.q[:, :, i], c.k[:, :, i], c.v[:, :, i]
        scores = q_i @ k_i.mT
        A_i = scores * mask
        u_i = v_i - k_i @ S  # the changed lines
        o.append(q_i @ S + A_i @ u_i + causal_softmax(scores, mask) @ v_i)
        S = S + k_i.mT @ u_i
    return chunk_epilogue(c, o), S
