"""k̂_t = k_t / ‖k_t‖₂;  A_i = tril(Q_i K̂_iᵀ);  S = S + K̂_iᵀ U'_i          (K_i replaced by K̂_i in (b) and (f))

differs from delta_net: lines (b) and (f) use the chunk's keys re-normalised to unit L2 norm inside the loop
(F.normalize, eps 1e-12). For keys that are already unit-norm — the DeltaNet layer L2-normalises them — this is
the identity up to rounding, so in the study this row measures run-to-run noise against delta_net; it differs
only where keys reach the loop with norms other than 1 (e.g. after bf16 rounding of the normalised keys, the
pitfall of fla PR #806). W and U are the preamble's, built from the keys as passed.
"""
import torch.nn.functional as F

from deltalab.core import causal_mask, chunk_epilogue, chunk_preamble, initial_state_or_zeros


def delta_rule_chunkwise(q, k, v, beta, chunk_size=32):
    c = chunk_preamble(q, k, v, beta, chunk_size)
    S = initial_state_or_zeros(c)
    mask = causal_mask(c)
    o = []
    for i in range(c.num_chunks):
        q_i, k_i, u_i, w_i = c.q[:, :, i], c.k[:, :, i], c.u[:, :, i], c.w[:, :, i]
        k_i = F.normalize(k_i, dim=-1)  # the changed line
        A_i = (q_i @ k_i.mT) * mask
        u_i = u_i - w_i @ S
        o.append(q_i @ S + A_i @ u_i)
        S = S + k_i.mT @ u_i
    return chunk_epilogue(c, o), S
