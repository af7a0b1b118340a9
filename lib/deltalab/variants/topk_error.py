"""U'_i ← U'_i with only its k = ⌈C/4⌉ largest-norm rows kept (the rest zeroed), for output and write

differs from delta_net: line (c), as written in the seed proposal (round 2, doc 004): after the correction
U'_i = U_i − W_i S, the ⌈0.25·C⌉ rows (tokens) with the largest L2 norm are kept and the others zeroed, and the
sparse U'_i is used both in the intra-chunk output and in the state write. Ratio 0.25 and max(1, ·) are the
seed's. The state write follows the seed exactly (top-k over the whole chunk).

One deviation, forced by causality: the seed ranks the rows over the whole chunk also for the output, so whether
token s counts in token t's output (s ≤ t) would depend on the errors of later tokens of the chunk — a leak of
the future that ``check_rule``'s causality check rejects. Here token t's output keeps the rows s ≤ t that are
top-k among the rows 0..t it can see; for the chunk's last token this is the seed's selection. Written as a
mask M[t, s] on A_i (no Python loop): O_i = Q_i S + (A_i ⊙ M) U'_i, S += K_iᵀ (m_last ⊙ U'_i). The ranking
carries no gradient (it is piecewise constant); ties are broken by position (earlier row ranks higher).

Other ratios: the keyword ``ratio`` (ratio = 1 keeps every row: delta_net). The registry holds this function at
ratio 0.125 and 0.5 as ``topk_error_r0125`` and ``topk_error_r05`` (round 6's sweep); for any other ratio, a
user file passed as the variant (``-p variant path/to/topk_error_r0375.py``)::

    from deltalab.variants.topk_error import delta_rule_chunkwise as topk_error

    def delta_rule_chunkwise(q, k, v, beta, chunk_size=32):
        return topk_error(q, k, v, beta, chunk_size, ratio=0.375)
"""
import math

import torch

from deltalab.core import causal_mask, chunk_epilogue, chunk_preamble, initial_state_or_zeros

RATIO = 0.25


def prefix_topk_mask(norms, top):
    """``M[.., t, s]`` = 1 iff s ≤ t and row s is among the ``top`` largest ``norms [.., C]`` of rows 0..t."""
    C = norms.shape[-1]
    earlier = torch.ones(C, C, dtype=torch.bool, device=norms.device).triu(1)  # [r, s]: r < s
    beats = (norms[..., :, None] > norms[..., None, :]) | ((norms[..., :, None] == norms[..., None, :]) & earlier)
    rank = beats.cumsum(dim=-2)  # [.., t, s]: rows r ≤ t that rank above s
    return (rank < top) & torch.ones(C, C, dtype=torch.bool, device=norms.device).tril()


def delta_rule_chunkwise(q, k, v, beta, chunk_size=32, *, ratio=RATIO):
    c = chunk_preamble(q, k, v, beta, chunk_size)
    S = initial_state_or_zeros(c)
    mask = causal_mask(c)
    top = max(1, math.ceil(ratio * c.chunk_size))
    o = []
    for i in range(c.num_chunks):
        q_i, k_i, u_i, w_i = c.q[:, :, i], c.k[:, :, i], c.u[:, :, i], c.w[:, :, i]
        A_i = (q_i @ k_i.mT) * mask
        u_i = u_i - w_i @ S
        M = prefix_topk_mask(torch.linalg.vector_norm(u_i.detach(), dim=-1), top)  # the changed lines
        o.append(q_i @ S + (A_i * M) @ u_i)
        S = S + k_i.mT @ (M[..., -1, :, None] * u_i)
    return chunk_epilogue(c, o), S
