"""S = LN(S + K_iᵀ U'_i), LN over the value channels of each state row       (was S = S + K_iᵀ U'_i)

differs from delta_net: line (f) only. After the baseline write, every row of the state (the value vector the
memory holds for one key channel, [d_v]) goes through a parameter-free LayerNorm: mean removed, variance scaled
to 1 (eps = 1e-5, PyTorch's default, no affine). The next chunk reads and corrects this normalised memory. LN
runs in fp32 under autocast, so the state stays fp32.
"""
import torch.nn.functional as F

from deltalab.core import causal_mask, chunk_epilogue, chunk_preamble, initial_state_or_zeros

STATE_ONLY = True  # the change is to line (f) only: the state carried to the next chunk

EPS = 1e-5


def delta_rule_chunkwise(q, k, v, beta, chunk_size=32):
    c = chunk_preamble(q, k, v, beta, chunk_size)
    S = initial_state_or_zeros(c)
    mask = causal_mask(c)
    o = []
    for i in range(c.num_chunks):
        q_i, k_i, u_i, w_i = c.q[:, :, i], c.k[:, :, i], c.u[:, :, i], c.w[:, :, i]
        A_i = (q_i @ k_i.mT) * mask
        u_i = u_i - w_i @ S
        o.append(q_i @ S + A_i @ u_i)
        S = F.layer_norm(S + k_i.mT @ u_i, (S.shape[-1],), eps=EPS)  # the changed line
    return chunk_epilogue(c, o), S
