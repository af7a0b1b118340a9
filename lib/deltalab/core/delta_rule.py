"""The delta rule: the token recurrence (the spec) and the chunkwise form every variant edits.

Layout is head-first, like fla's naive references: ``q, k: [B, H, L, d_k]``, ``v: [B, H, L, d_v]``,
``beta: [B, H, L]``. Row-vector convention: the state is ``S ∈ R^{d_k×d_v}`` and ``o_t = S_tᵀ q_t``.
``q`` is scaled by ``d_k^-1/2`` inside; keys are expected to be L2-normalised by the caller.

    e_t = β_t (v_t − S_{t−1}ᵀ k_t)          prediction error, scaled by the writing strength
    S_t = S_{t−1} + k_t e_tᵀ                 = (I − β_t k_t k_tᵀ) S_{t−1} + β_t k_t v_tᵀ
    o_t = S_tᵀ q_t                           read-out after the write

The chunkwise form (fla ``delta_rule_chunkwise``, ../shared/reference/delta-rule.md §1.2) splits the
sequence into chunks of C tokens. A preamble, batched over all chunks, turns each chunk's C rank-one
updates into two matrices with the UT transform ``T = (I + tril(diag(β) K Kᵀ, −1))⁻¹``:

    W = T (β ⊙ K)        so that the chunk's product of (I − β k kᵀ) is  I − Kᵀ W
    U = T (β ⊙ V)        the "pseudo-values"

and the loop over chunks touches the state only through four lines:

    A_i  = tril(Q_i K_iᵀ)                    causal intra-chunk scores (diagonal kept)
    U'_i = U_i − W_i S                       pseudo-values corrected by the carried state
    O_i  = Q_i S + A_i U'_i                  inter-chunk read + intra-chunk part
    S    = S + K_iᵀ U'_i

A variant of the study rewrites only that loop body; ``chunk_preamble`` and ``chunk_epilogue`` below are
the shared parts, so a variant file is the loop and nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "delta_rule_recurrence",
    "delta_rule_chunkwise",
    "chunk_preamble",
    "chunk_epilogue",
    "Chunks",
    "ut_transform",
    "check_shapes",
]


def check_shapes(q: Tensor, k: Tensor, v: Tensor, beta: Tensor, initial_state: Tensor | None = None) -> None:
    """Raise a ValueError naming the offending tensor when the head-first shapes do not agree."""
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(
            f"q, k, v must be [B, H, L, d] (head-first); got q{tuple(q.shape)}, k{tuple(k.shape)}, v{tuple(v.shape)}"
        )
    if q.shape != k.shape:
        raise ValueError(f"q and k must have the same shape; got q{tuple(q.shape)} and k{tuple(k.shape)}")
    if v.shape[:3] != q.shape[:3]:
        raise ValueError(f"v must be [B, H, L, d_v] with q's B, H, L; got v{tuple(v.shape)}, q{tuple(q.shape)}")
    if beta.shape != q.shape[:3]:
        raise ValueError(f"beta must be [B, H, L] = {tuple(q.shape[:3])}; got {tuple(beta.shape)}")
    if initial_state is not None:
        B, H, _, dk = q.shape
        want = (B, H, dk, v.shape[-1])
        if tuple(initial_state.shape) != want:
            raise ValueError(f"initial_state must be [B, H, d_k, d_v] = {want}; got {tuple(initial_state.shape)}")


def _state_dtype(x: Tensor) -> torch.dtype:
    """The state is kept in fp32 (fp64 when the inputs are fp64, for the exactness tests)."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


# ---------------------------------------------------------------------------------------------------------
# The spec: one token at a time.
# ---------------------------------------------------------------------------------------------------------
def delta_rule_recurrence(
    q: Tensor, k: Tensor, v: Tensor, beta: Tensor, *, initial_state: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Token-by-token delta rule in fp32 (fp64 for fp64 inputs). Returns ``(o [B,H,L,d_v], S [B,H,d_k,d_v])``."""
    check_shapes(q, k, v, beta, initial_state)
    dt, out_dtype = _state_dtype(q), v.dtype
    B, H, L, dk = q.shape
    q, k, v, beta = (x.to(dt) for x in (q, k, v, beta))
    q = q * dk**-0.5
    S = q.new_zeros(B, H, dk, v.shape[-1]) if initial_state is None else initial_state.to(dt)
    o = []
    for t in range(L):
        k_t, v_t, b_t = k[:, :, t], v[:, :, t], beta[:, :, t, None]
        e_t = b_t * (v_t - torch.einsum("bhkv,bhk->bhv", S, k_t))  # e = β (v − Sᵀk)
        S = S + k_t[..., :, None] * e_t[..., None, :]  # S += k eᵀ
        o.append(torch.einsum("bhkv,bhk->bhv", S, q[:, :, t]))  # o = Sᵀ q
    return torch.stack(o, dim=2).to(out_dtype), S


# ---------------------------------------------------------------------------------------------------------
# Shared parts of the chunkwise form.
# ---------------------------------------------------------------------------------------------------------
def ut_transform(k_beta: Tensor, k: Tensor) -> Tensor:
    """``T = (I + tril(diag(β) K Kᵀ, −1))⁻¹`` for every chunk, ``[..., C, C]``, by one batched triangular solve.

    ``k_beta = β ⊙ K``. The system is unit lower-triangular, so the solve is exact forward substitution
    (the same numbers as fla's row loop) without a Python loop over rows.
    """
    C = k.shape[-2]
    eye = torch.eye(C, dtype=k.dtype, device=k.device)
    unit_lower = torch.tril(k_beta @ k.transpose(-1, -2), diagonal=-1) + eye  # I + L
    return torch.linalg.solve_triangular(unit_lower, eye.expand_as(unit_lower), upper=False, unitriangular=True)


@dataclass
class Chunks:
    """What fla's loop body sees, chunked to ``[B, H, N, C, d]``; the names are the ones in fla's naive code.

    ``q`` is already scaled by ``d_k^-1/2``; ``v`` and ``k_beta`` already carry β (fla overwrites ``v`` with
    ``β ⊙ v`` in its preamble, so a loop written for fla that reads ``v`` sees this). ``w = T k_beta`` and
    ``u = T v``. ``length`` is the sequence length before padding to a multiple of C.
    """

    q: Tensor
    k: Tensor
    v: Tensor
    k_beta: Tensor
    beta: Tensor  # [B, H, N, C]
    w: Tensor
    u: Tensor
    length: int
    out_dtype: torch.dtype

    @property
    def num_chunks(self) -> int:
        return self.q.shape[2]

    @property
    def chunk_size(self) -> int:
        return self.q.shape[3]


def _pad_to_chunks(x: Tensor, C: int) -> Tensor:
    pad = (-x.shape[2]) % C
    if pad == 0:
        return x
    return F.pad(x, (0, 0, 0, pad)) if x.dim() == 4 else F.pad(x, (0, pad))


def chunk_preamble(q: Tensor, k: Tensor, v: Tensor, beta: Tensor, chunk_size: int = 32) -> Chunks:
    """Scale q, fold β into v and k, pad L to a multiple of C, chunk, and apply the UT transform.

    Runs in fp32 with autocast off (fp64 stays fp64): the triangular inverse is where low precision hurts
    (fla issues #537, #736), and it is a small share of the FLOPs. Zero padding at the end is harmless:
    padded tokens have β = 0 and k = 0, so they neither write nor change earlier outputs.
    """
    check_shapes(q, k, v, beta)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer; got {chunk_size}")
    B, H, L, dk = q.shape
    dt = _state_dtype(q)
    out_dtype = v.dtype
    with torch.autocast(device_type=q.device.type, enabled=False):
        q, k, v, beta = (_pad_to_chunks(x.to(dt), chunk_size) for x in (q, k, v, beta))
        N = q.shape[2] // chunk_size
        q = q * dk**-0.5
        v = v * beta[..., None]
        k_beta = k * beta[..., None]
        q, k, v, k_beta = (x.reshape(B, H, N, chunk_size, x.shape[-1]) for x in (q, k, v, k_beta))  # [B,H,N,C,d]
        T = ut_transform(k_beta, k)  # [B,H,N,C,C]
        w, u = T @ k_beta, T @ v
    return Chunks(q, k, v, k_beta, beta.reshape(B, H, N, chunk_size), w, u, L, out_dtype)


def chunk_epilogue(chunks: Chunks, o: Tensor | list[Tensor]) -> Tensor:
    """Stack per-chunk outputs ``[B,H,C,d_v]`` (or take ``[B,H,N,C,d_v]``), un-chunk and drop the padding."""
    if isinstance(o, (list, tuple)):
        o = torch.stack(list(o), dim=2)
    B, H, N, C, dv = o.shape
    return o.reshape(B, H, N * C, dv)[:, :, : chunks.length].to(chunks.out_dtype)


def initial_state_or_zeros(chunks: Chunks, initial_state: Tensor | None = None) -> Tensor:
    """The carried state, in fp32 (fp64 for fp64 inputs) whatever the autocast dtype."""
    B, H, _, _, dk = chunks.k.shape
    dv = chunks.v.shape[-1]
    if initial_state is None:
        return chunks.k.new_zeros(B, H, dk, dv)
    if tuple(initial_state.shape) != (B, H, dk, dv):
        raise ValueError(f"initial_state must be [B, H, d_k, d_v] = {(B, H, dk, dv)}; got {tuple(initial_state.shape)}")
    return initial_state.to(chunks.k.dtype)


def causal_mask(chunks: Chunks) -> Tensor:
    """``[C, C]`` boolean, True on and below the diagonal."""
    C = chunks.chunk_size
    return torch.ones(C, C, dtype=torch.bool, device=chunks.q.device).tril()


# ---------------------------------------------------------------------------------------------------------
# The chunkwise delta rule (the `delta_net` baseline, and the contract every variant keeps).
# ---------------------------------------------------------------------------------------------------------
def delta_rule_chunkwise(
    q: Tensor, k: Tensor, v: Tensor, beta: Tensor, chunk_size: int = 32, *, initial_state: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Chunkwise delta rule: the same math as fla's naive ``delta_rule_chunkwise``, for any length.

    Returns ``(o [B,H,L,d_v] in v's dtype, S [B,H,d_k,d_v] in fp32)``. Under bf16 autocast the loop's
    matmuls run in bf16 while the state is accumulated in fp32.
    """
    c = chunk_preamble(q, k, v, beta, chunk_size)
    S = initial_state_or_zeros(c, initial_state)
    mask = causal_mask(c)
    o = []
    for i in range(c.num_chunks):
        q_i, k_i, u_i, w_i = c.q[:, :, i], c.k[:, :, i], c.u[:, :, i], c.w[:, :, i]
        A_i = (q_i @ k_i.transpose(-1, -2)) * mask  # causal scores within the chunk
        u_i = u_i - w_i @ S  # U' = U − W S
        o.append(q_i @ S + A_i @ u_i)  # O = Q S + A U'
        S = S + k_i.transpose(-1, -2) @ u_i  # S += Kᵀ U'
    return chunk_epilogue(c, o), S
