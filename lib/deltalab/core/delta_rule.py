"""The delta rule: the token recurrence (the spec) and the chunkwise form every variant edits.

Layout is head-first, like fla's naive references: ``q, k: [B, H, L, d_k]``, ``v: [B, H, L, d_v]``,
``beta: [B, H, L]``. Row-vector convention: the state is ``S ∈ R^{d_k×d_v}`` and ``o_t = S_tᵀ q_t``.
``q`` is scaled by ``d_k^-1/2`` inside; keys are expected to be L2-normalised by the caller.

    e_t = β_t (v_t − S_{t−1}ᵀ k_t)          prediction error, scaled by the writing strength
    S_t = S_{t−1} + k_t e_tᵀ                 = (I − β_t k_t k_tᵀ) S_{t−1} + β_t k_t v_tᵀ
    o_t = S_tᵀ q_t                           read-out after the write

The chunkwise form (fla ``delta_rule_chunkwise``, docs/delta-rule.md §2) splits the
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
    "delta_rule_chunkwise_ref",
    "chunk_preamble",
    "chunk_epilogue",
    "Chunks",
    "ut_transform",
    "ut_transform_ref",
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
def _unit_lower_inverse(G: Tensor) -> Tensor:
    """``(I + tril(G, −1))⁻¹`` for every ``[..., C, C]`` matrix, without autograd: block forward substitution by
    recursive doubling (fla's ``solve_tril`` merge, ``T₂₁ = −T₂₂ A₂₁ T₁₁``, applied at block sizes 1, 2, 4, …).

    All blocks of one size are done at once through strided views, so the cost is ``log₂ C`` pairs of batched
    matmuls and no per-matrix LAPACK call (``torch.linalg.solve_triangular`` loops over the batch and, with two
    threads on a busy CPU, opens one OpenMP region per matrix: seconds per call). Only inverses of the
    unit-triangular diagonal blocks and the given blocks of ``A`` are multiplied, never powers of ``A``, so the
    rounding is that of block forward substitution. C is padded to a power of two (identity padding).
    """
    C = G.shape[-1]
    P = 1 << max(C - 1, 0).bit_length()
    A = G if P == C else F.pad(G, (0, P - C, 0, P - C))
    T = torch.zeros_like(A)
    T.diagonal(dim1=-2, dim2=-1).fill_(1)
    batch = A.shape[:-2]
    s = 1
    while s < P:
        m = P // (2 * s)
        # [..., m, 2, s, m, 2, s] → the m diagonal (2s × 2s) blocks, as [..., 2, s, 2, s, m] views
        Av = torch.diagonal(A.reshape(*batch, m, 2, s, m, 2, s), dim1=-6, dim2=-3)
        Tv = torch.diagonal(T.view(*batch, m, 2, s, m, 2, s), dim1=-6, dim2=-3)
        a21 = Av[..., 1, :, 0, :, :].movedim(-1, -3)  # [..., m, s, s]
        t21 = Tv[..., 1, :, 0, :, :].movedim(-1, -3)
        if s == 1:
            t21.copy_(a21).neg_()
        else:
            t11 = Tv[..., 0, :, 0, :, :].movedim(-1, -3)
            t22 = Tv[..., 1, :, 1, :, :].movedim(-1, -3)
            t21.copy_(t22 @ (a21 @ t11)).neg_()
        s *= 2
    return T if P == C else T[..., :C, :C].contiguous()


class _UTInverse(torch.autograd.Function):
    """``T = (I + tril(G, −1))⁻¹`` with the analytic backward ``dG = tril(−Tᵀ dT Tᵀ, −1)`` (two matmuls)."""

    @staticmethod
    def forward(ctx, G: Tensor) -> Tensor:
        T = _unit_lower_inverse(G)
        ctx.save_for_backward(T)
        return T

    @staticmethod
    def backward(ctx, dT: Tensor) -> Tensor:
        (T,) = ctx.saved_tensors
        Tt = T.transpose(-1, -2)
        return torch.tril(Tt @ dT @ Tt, diagonal=-1).neg_()


def ut_transform(k_beta: Tensor, k: Tensor) -> Tensor:
    """``T = (I + tril(diag(β) K Kᵀ, −1))⁻¹`` for every chunk, ``[..., C, C]``.

    ``k_beta = β ⊙ K``. Exact forward substitution in blocks (``_unit_lower_inverse``) with a two-matmul
    backward; ``ut_transform_ref`` is the plain triangular solve it is tested against.
    """
    return _UTInverse.apply(k_beta @ k.transpose(-1, -2))


def ut_transform_ref(k_beta: Tensor, k: Tensor) -> Tensor:
    """Reference twin of ``ut_transform``: one batched ``torch.linalg.solve_triangular`` (autograd through it)."""
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


_EVERY = slice(None)
CHUNK_FIELDS = True  # False: Chunks fields are plain tensors (the reference twin of ChunkField)


class ChunkField(Tensor):
    """A ``[B, H, N, C, …]`` field of ``Chunks``: an ordinary tensor, except that chunk ``i``, ``x[:, :, i]``, is one
    of the views of a single ``x.unbind(2)``. A loop that reads the chunks one by one then gets their gradients
    back with one ``stack`` (UnbindBackward) instead of N zero-filled field-sized buffers summed (SelectBackward):
    the same values bit for bit (each chunk's gradient lands in its own slot either way). Measured at batch 32, one
    thread: a plain variant's rule forward + backward 1.18-1.24× faster at L = 128-256, a whole train step
    1.05-1.09× at L = 256 and no faster at L = 128 (docs/performance.md). Every operation on it returns an ordinary
    tensor. ``CHUNK_FIELDS = False`` gives the plain tensors back (the twin, tests/test_fast_paths.py)."""

    __torch_function__ = torch._C._disabled_torch_function_impl

    def __getitem__(self, index):
        if (isinstance(index, tuple) and len(index) == 3 and index[0] == _EVERY and index[1] == _EVERY
                and isinstance(index[2], int)):
            pieces = self.__dict__.get("_pieces")
            if pieces is None:
                pieces = self._pieces = Tensor.unbind(self, 2)
            return pieces[index[2]]
        return Tensor.__getitem__(self, index)


def _field(x: Tensor) -> Tensor:
    return x.as_subclass(ChunkField) if CHUNK_FIELDS else x


def _pad_to_chunks(x: Tensor, C: int) -> Tensor:
    pad = (-x.shape[2]) % C
    if pad == 0:
        return x
    return F.pad(x, (0, 0, 0, pad)) if x.dim() == 4 else F.pad(x, (0, pad))


def _n_major(x: Tensor, N: int, C: int) -> Tensor:
    """``[B, H, N·C, d]`` (any strides) → a contiguous ``[N, B, H, C, d]`` copy: chunk-major memory. Always a
    fresh tensor (``clone``, not ``contiguous``), so the caller may scale it in place."""
    return x.unflatten(2, (N, C)).permute(2, 0, 1, 3, 4).clone(memory_format=torch.contiguous_format)


def _chunk_view(x: Tensor) -> Tensor:
    """``[N, B, H, C, …]`` → the ``[B, H, N, C, …]`` view of the same memory."""
    return x.movedim(0, 2)


def chunk_preamble(q: Tensor, k: Tensor, v: Tensor, beta: Tensor, chunk_size: int = 32) -> Chunks:
    """Scale q, fold β into v and k, pad L to a multiple of C, chunk, and apply the UT transform.

    Runs in fp32 with autocast off (fp64 stays fp64): the triangular inverse is where low precision hurts
    (fla issues #537, #736), and it is a small share of the FLOPs. Zero padding at the end is harmless:
    padded tokens have β = 0 and k = 0, so they neither write nor change earlier outputs.

    Memory layout: every ``[B, H, N, C, d]`` field is a view of chunk-major ``[N, B, H, C, d]`` memory, so that
    one chunk, ``c.q[:, :, i]``, is a contiguous ``[B, H, C, d]`` block and its matmuls with the state run as
    one batched GEMM (a strided chunk slice makes CPU matmul fall back to a loop over the B·H matrices and
    copy each of them). Values and shapes are as before; use ``reshape``, not ``view``, to flatten a field.
    """
    check_shapes(q, k, v, beta)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer; got {chunk_size}")
    B, H, L, dk = q.shape
    dt = _state_dtype(q)
    out_dtype = v.dtype
    C = chunk_size
    with torch.autocast(device_type=q.device.type, enabled=False):
        q, k, v, beta = (_pad_to_chunks(x.to(dt), C) for x in (q, k, v, beta))
        N = q.shape[2] // C
        beta = beta.unflatten(2, (N, C)).permute(2, 0, 1, 3).contiguous()  # [N,B,H,C]
        q = _n_major(q, N, C).mul_(dk**-0.5)
        k = _n_major(k, N, C)
        v = _n_major(v, N, C).mul_(beta[..., None])
        k_beta = k * beta[..., None]
        T = ut_transform(k_beta, k)  # [N,B,H,C,C]
        w, u = T @ k_beta, T @ v
    q, k, v, k_beta, beta, w, u = (_field(_chunk_view(x)) for x in (q, k, v, k_beta, beta, w, u))
    return Chunks(q, k, v, k_beta, beta, w, u, L, out_dtype)


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
class _ChunkLoop(torch.autograd.Function):
    """The baseline's loop over chunks with a hand-written backward (fla's ``fwd_h`` / ``fwd_o`` / ``bwd_dhu`` split).

    Only the state recurrence is sequential; everything else is one batched matmul over all ``B·H·N`` chunks::

        forward   loop:  h_i = S;  U'_i = U_i − W_i h_i;  S = S + K_iᵀ U'_i          (2 matmuls per chunk)
                  then:  O = Q h + tril(Q Kᵀ) U'                                     (batched)
        backward  batched: dU'_loc = tril(Q Kᵀ)ᵀ dO,  dh_o = Qᵀ dO
                  loop (reverse):  dU'_i = dU'_loc_i + K_i dS;  dS ← dS + dh_o_i − W_iᵀ dU'_i
                  then:  dQ = dO hᵀ + (dO U'ᵀ ⊙ M) K,  dK = (dO U'ᵀ ⊙ M)ᵀ Q + U' dS₊ᵀ,  dW = −dU' hᵀ,  dU = dU'

    Inputs ``[B, H, N, C, d]`` (q already scaled), state ``[B, H, d_k, d_v]``; computes in the inputs' dtype with
    autocast off (fp32, or fp64 for the exactness tests). ``delta_rule_chunkwise_ref`` is the plain loop.
    """

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, w: Tensor, u: Tensor, S0: Tensor) -> tuple[Tensor, Tensor]:
        B, H, N, C, dk = q.shape
        dv = u.shape[-1]
        G = B * H
        # chunk-major [N, B·H, C, d]: free for chunk_preamble's outputs (their memory is already chunk-major)
        q3, k3, w3, u3 = (x.movedim(2, 0).contiguous().view(N, G, C, x.shape[-1]) for x in (q, k, w, u))
        hs = q.new_empty(N, G, dk, dv)  # state at the start of each chunk
        vn = q.new_empty(N, G, C, dv)  # U' = U − W h
        S = S0.reshape(G, dk, dv)
        for i in range(N):
            hs[i] = S
            torch.baddbmm(u3[i], w3[i], S, alpha=-1, out=vn[i])
            S = torch.baddbmm(S, k3[i].transpose(1, 2), vn[i])
        if N == 0:
            S = S.clone()
        qf, kf, hf, vf = q3.view(-1, C, dk), k3.view(-1, C, dk), hs.view(-1, dk, dv), vn.view(-1, C, dv)
        A = torch.bmm(qf, kf.transpose(1, 2)).tril_()
        o = torch.baddbmm(torch.bmm(qf, hf), A, vf)  # [N·B·H, C, dv]
        ctx.save_for_backward(q3, k3, w3, hs, vn)
        # returned as [B, H, N, C, dv] over [B, N, C, H, dv] = [B, L, H, dv] memory: the layer's head merge
        # after the epilogue is then a view
        o = o.view(N, B, H, C, dv).permute(1, 0, 3, 2, 4).contiguous().permute(0, 3, 1, 2, 4)
        return o, S.view(B, H, dk, dv)

    @staticmethod
    def backward(ctx, do: Tensor, dS_final: Tensor):
        q3, k3, w3, hs, vn = ctx.saved_tensors
        N, G, C, dk = q3.shape
        dv = vn.shape[-1]
        B = do.shape[0] if do is not None else dS_final.shape[0]
        H = G // B
        qf, kf = q3.view(-1, C, dk), k3.view(-1, C, dk)
        hf, vf = hs.view(-1, dk, dv), vn.view(-1, C, dv)
        if do is None:
            do = torch.zeros_like(vf)
        else:
            do = do.movedim(2, 0).reshape(-1, C, dv)  # chunk-major (one copy)
        A = torch.bmm(qf, kf.transpose(1, 2)).tril_()
        dvn = torch.bmm(A.transpose(1, 2), do).view(N, G, C, dv)  # intra-chunk part of dU'
        dh_o = torch.bmm(qf.transpose(1, 2), do).view(N, G, dk, dv)  # dO → h through O = Q h
        dS_after = torch.empty_like(hs)  # dS₊: gradient of the state after chunk i
        dS = dS_final.reshape(G, dk, dv) if dS_final is not None else hs.new_zeros(G, dk, dv)
        for i in range(N - 1, -1, -1):
            dS_after[i] = dS
            torch.baddbmm(dvn[i], k3[i], dS, out=dvn[i])  # S₊ = h + Kᵀ U'
            dS = torch.baddbmm(dS + dh_o[i], w3[i].transpose(1, 2), dvn[i], alpha=-1)  # U' = U − W h
        dvf = dvn.view(-1, C, dv)
        dA = torch.bmm(do, vf.transpose(1, 2)).tril_()
        dq = torch.baddbmm(torch.bmm(do, hf.transpose(1, 2)), dA, kf)
        dk_ = torch.baddbmm(torch.bmm(dA.transpose(1, 2), qf), vf, dS_after.view(-1, dk, dv).transpose(1, 2))
        dw = torch.bmm(dvf, hf.transpose(1, 2)).neg_()

        def back(x: Tensor, d: int) -> Tensor:  # [N·B·H, C, d] → [B, H, N, C, d] view of chunk-major memory
            return x.view(N, B, H, C, d).movedim(0, 2)

        return back(dq, dk), back(dk_, dk), back(dw, dk), back(dvf, dv), dS.view(B, H, dk, dv)


def delta_rule_chunkwise(
    q: Tensor, k: Tensor, v: Tensor, beta: Tensor, chunk_size: int = 32, *, initial_state: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Chunkwise delta rule: the same math as fla's naive ``delta_rule_chunkwise``, for any length.

    Returns ``(o [B,H,L,d_v] in v's dtype, S [B,H,d_k,d_v] in fp32)``. The loop runs in ``_ChunkLoop`` (the
    sequential state recurrence alone in Python, the outputs batched after it, a hand-written backward), in
    fp32 (fp64 for fp64 inputs) also under autocast; ``delta_rule_chunkwise_ref`` is the plain loop below.
    """
    c = chunk_preamble(q, k, v, beta, chunk_size)
    S0 = initial_state_or_zeros(c, initial_state)
    with torch.autocast(device_type=c.q.device.type, enabled=False):
        o, S = _ChunkLoop.apply(c.q, c.k, c.w, c.u, S0)
    return chunk_epilogue(c, o), S


def delta_rule_chunkwise_ref(
    q: Tensor, k: Tensor, v: Tensor, beta: Tensor, chunk_size: int = 32, *, initial_state: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Reference twin of ``delta_rule_chunkwise``: the straightforward loop every variant edits (autograd
    through it). Under bf16 autocast its matmuls run in bf16 while the state is accumulated in fp32."""
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
