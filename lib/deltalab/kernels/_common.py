"""Shared pieces of the Triton delta-rule kernels: precision helpers and the seven kernels.

Every kernel is written once for the whole family and specialised by ``tl.constexpr`` switches:

* ``USE_G``      gated delta rule (per-token log decay ``g``; ``gc`` is its cumulative sum inside a chunk);
* ``DECAY``      ``decay_state``: the state is multiplied by a constant λ after every chunk's write;
* ``TRANSFORM``  elementwise transform of the prediction error ``x = u − w h`` before it is used for the
  output and the state update: 0 none, 1 ``l2_norm_error`` (row-wise ``x / (‖x‖₂ + 1e-6)``),
  2 ``gelu_error`` (exact, erf-based GELU);
* ``DT`` / ``EMU`` / ``F32`` the precision of the matmul operands (see ``_cast`` and ``_mm``).

Layout inside the kernels: ``[B·H, Lp, d]`` contiguous (head-first, ``Lp`` = length padded to a multiple of
the chunk size ``C``), chunk ``i`` of head ``bh`` is rows ``i·C … i·C+C−1``. Per-chunk matrices
(``T``) are ``[B·H, N, C, C]``, per-chunk states ``[B·H, N, d_k, d_v]``, all fp32.

Notation (row-vector convention, one chunk, ``γ`` = cumulative log decay inside the chunk, ``γ_C`` its last
entry, ``D[r,s] = exp(γ_r − γ_s)`` for ``r ≥ s``; without gating γ ≡ 0 and D ≡ 1)::

    A   = tril(diag(β) K Kᵀ ⊙ D, −1),   T = (I + A)⁻¹              (kkt kernel + PyTorch solve)
    w   = T (β ⊙ K ⊙ exp(γ)),   u = T (β ⊙ V)                       (_wu_fwd)
    x   = u − w h,   e = f(x)                                        (_h_fwd, sequential)
    o   = s·(Q ⊙ exp(γ)) h + (s·Q Kᵀ ⊙ D ⊙ causal) e                 (_o_fwd)
    h  ← exp(γ_C) h + (K ⊙ exp(γ_C − γ))ᵀ e                          (_h_fwd)
"""
from __future__ import annotations

import os

import triton
import triton.language as tl

L2_EPS = 1e-6

TRANSFORMS = {None: 0, "none": 0, "l2_norm_error": 1, "gelu_error": 2}


def interpret_mode() -> bool:
    """True when Triton runs kernels in its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0", "false", "False")


def next_pow2(n: int, lo: int = 16) -> int:
    return max(lo, triton.next_power_of_2(int(n)))


# ---------------------------------------------------------------------------------------------------------
# Precision helpers.
#
# Matmul operands are rounded to the input dtype (bf16/fp16 use tensor cores, accumulation is fp32); states,
# accumulators and every stored intermediate are fp32. For fp32 inputs the dots run in IEEE fp32 (not TF32),
# so the fp32 path matches the PyTorch reference to ~1e-6.
#
# Triton 3.9's CPU interpreter gets bf16 wrong in two ways: bf16 ``tl.dot`` returns garbage and
# ``.to(tl.bfloat16)`` truncates instead of rounding to nearest even. Under the interpreter (``EMU``) a bf16
# operand is therefore rounded to nearest even by bit manipulation and kept in fp32 (the value is exactly a
# bf16 number), and the dot runs in fp32; products of bf16 numbers are exact in fp32, so this reproduces a
# bf16 tensor-core dot with fp32 accumulation.
# ---------------------------------------------------------------------------------------------------------
@triton.jit
def _cast(x, DT: tl.constexpr, EMU: tl.constexpr):
    if EMU:
        b = x.to(tl.float32).to(tl.uint32, bitcast=True)
        b = (b + 0x7FFF + ((b >> 16) & 1)) & 0xFFFF0000
        return b.to(tl.float32, bitcast=True)
    else:
        return x.to(DT)


@triton.jit
def _mm(a, b, F32: tl.constexpr):
    if F32:
        return tl.dot(a, b, input_precision="ieee")
    else:
        return tl.dot(a, b)


@triton.jit
def _decay_matrix(gr, gs, C: tl.constexpr, STRICT: tl.constexpr):
    """``exp(γ_r − γ_s)`` on (and, unless STRICT, including) the diagonal and below, 0 above.

    The exponent is masked before ``exp`` so the upper entries (positive, possibly huge) never overflow.
    """
    r = tl.arange(0, C)
    if STRICT:
        m = r[:, None] > r[None, :]
    else:
        m = r[:, None] >= r[None, :]
    diff = tl.where(m, gr[:, None] - gs[None, :], 0.0)
    return tl.where(m, tl.exp(diff), 0.0)


# ---------------------------------------------------------------------------------------------------------
# Forward.
# ---------------------------------------------------------------------------------------------------------
@triton.jit
def _kkt_fwd(
    k_ptr, beta_ptr, gc_ptr, A_ptr, Lp, DK, N,
    C: tl.constexpr, BK: tl.constexpr, USE_G: tl.constexpr,
    DT: tl.constexpr, EMU: tl.constexpr, F32: tl.constexpr,
):
    """A = strictly_lower(diag(β) K Kᵀ ⊙ D) for one chunk, fp32; the key dimension in tiles of BK."""
    i = tl.program_id(0)
    bh = tl.program_id(1).to(tl.int64)
    rt = i * C + tl.arange(0, C)
    b = tl.load(beta_ptr + bh * Lp + rt)
    a = tl.zeros([C, C], dtype=tl.float32)
    for kk in range(0, tl.cdiv(DK, BK)):
        rk = kk * BK + tl.arange(0, BK)
        k = tl.load(k_ptr + bh * Lp * DK + rt[:, None] * DK + rk[None, :], mask=rk[None, :] < DK, other=0.0).to(tl.float32)
        a += _mm(_cast(k * b[:, None], DT, EMU), tl.trans(_cast(k, DT, EMU)), F32)
    rc = tl.arange(0, C)
    if USE_G:
        g = tl.load(gc_ptr + bh * Lp + rt)
        a = a * _decay_matrix(g, g, C, True)
    a = tl.where(rc[:, None] > rc[None, :], a, 0.0)
    tl.store(A_ptr + (bh * N + i) * C * C + rc[:, None] * C + rc[None, :], a)


@triton.jit
def _wu_fwd(
    k_ptr, v_ptr, beta_ptr, gc_ptr, T_ptr, w_ptr, u_ptr, Lp, DK, DV, N,
    C: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, USE_G: tl.constexpr,
    DT: tl.constexpr, EMU: tl.constexpr, F32: tl.constexpr,
):
    """w = T (β ⊙ K ⊙ exp(γ)), u = T (β ⊙ V) for one chunk, in key tiles of BK and value tiles of BV.

    u is stored fp32; w is stored rounded to the operand precision (``_cast``), the only form in which the
    later kernels use it (w_ptr is in the compute dtype, or fp32 holding the rounded values under EMU).
    """
    i = tl.program_id(0)
    bh = tl.program_id(1).to(tl.int64)
    rt = i * C + tl.arange(0, C)
    rc = tl.arange(0, C)
    T = _cast(tl.load(T_ptr + (bh * N + i) * C * C + rc[:, None] * C + rc[None, :]), DT, EMU)
    b = tl.load(beta_ptr + bh * Lp + rt)
    if USE_G:
        bg = b * tl.exp(tl.load(gc_ptr + bh * Lp + rt))
    else:
        bg = b
    for kk in range(0, tl.cdiv(DK, BK)):
        rk = kk * BK + tl.arange(0, BK)
        mk = rk[None, :] < DK
        k = tl.load(k_ptr + bh * Lp * DK + rt[:, None] * DK + rk[None, :], mask=mk, other=0.0).to(tl.float32)
        w = _mm(T, _cast(k * bg[:, None], DT, EMU), F32)
        tl.store(w_ptr + bh * Lp * DK + rt[:, None] * DK + rk[None, :], _cast(w, DT, EMU), mask=mk)
    for j in range(0, tl.cdiv(DV, BV)):
        rv = j * BV + tl.arange(0, BV)
        mv = rv[None, :] < DV
        v = tl.load(v_ptr + bh * Lp * DV + rt[:, None] * DV + rv[None, :], mask=mv, other=0.0).to(tl.float32)
        u = _mm(T, _cast(v * b[:, None], DT, EMU), F32)
        tl.store(u_ptr + bh * Lp * DV + rt[:, None] * DV + rv[None, :], u, mask=mv)


@triton.jit
def _transform_fwd(x, TRANSFORM: tl.constexpr):
    if TRANSFORM == 1:
        n = tl.sqrt(tl.sum(x * x, axis=1))
        return x / (n + 1e-6)[:, None]
    elif TRANSFORM == 2:
        return 0.5 * x * (1.0 + tl.math.erf(x * 0.7071067811865476))
    else:
        return x


@triton.jit
def _transform_bwd(x, e, de, TRANSFORM: tl.constexpr):
    """Gradient w.r.t. x of ``e = f(x)`` given ``de``."""
    if TRANSFORM == 1:
        # e = x/(n+ε): dx = de/(n+ε) − e (e·de)/n   (at n = 0, e = 0 and dx = de/ε, as autograd gives)
        n = tl.sqrt(tl.sum(x * x, axis=1))
        ed = tl.sum(e * de, axis=1)
        n_safe = tl.where(n > 0, n, 1.0)
        return de / (n + 1e-6)[:, None] - e * (ed / n_safe)[:, None]
    elif TRANSFORM == 2:
        cdf = 0.5 * (1.0 + tl.math.erf(x * 0.7071067811865476))
        pdf = tl.exp(-0.5 * x * x) * 0.3989422804014327
        return de * (cdf + x * pdf)
    else:
        return de


@triton.jit
def _h_fwd(
    k_ptr, w_ptr, u_ptr, gc_ptr, h0_ptr, hs_ptr, x_ptr, e_ptr, ht_ptr, lam, Lp, DK, DV, N,
    C: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, USE_G: tl.constexpr, TRANSFORM: tl.constexpr,
    DECAY: tl.constexpr,
    HAS_H0: tl.constexpr, STORE_X: tl.constexpr, STORE_HT: tl.constexpr, ROUND_HE: tl.constexpr,
    DT: tl.constexpr, EMU: tl.constexpr, F32: tl.constexpr,
):
    """The sequential state kernel: one program per (value block, head), the d_k × BV state in fp32.

    Per chunk: store h (the state before the chunk), x = u − w h, e = f(x) (stored), h ← exp(γ_C) h + k̃ᵀ e,
    and with DECAY (``decay_state``) h ← λ h after the write. With ROUND_HE (the forward without backward,
    where ``_o_fwd`` is the only reader and rounds both anyway) h and e are stored rounded to the operand
    precision, which halves their traffic in bf16/fp16 and changes no result.
    """
    iv = tl.program_id(0)
    bh = tl.program_id(1).to(tl.int64)
    rk = tl.arange(0, BK)
    rv = iv * BV + tl.arange(0, BV)
    mk = rk < DK
    mv = rv < DV
    mkv = mk[:, None] & mv[None, :]
    if HAS_H0:
        h = tl.load(h0_ptr + bh * DK * DV + rk[:, None] * DV + rv[None, :], mask=mkv, other=0.0)
    else:
        h = tl.zeros([BK, BV], dtype=tl.float32)
    for i in range(0, N):
        rt = i * C + tl.arange(0, C)
        if ROUND_HE:
            tl.store(hs_ptr + (bh * N + i) * DK * DV + rk[:, None] * DV + rv[None, :], _cast(h, DT, EMU), mask=mkv)
        else:
            tl.store(hs_ptr + (bh * N + i) * DK * DV + rk[:, None] * DV + rv[None, :], h, mask=mkv)
        w = tl.load(w_ptr + bh * Lp * DK + rt[:, None] * DK + rk[None, :], mask=mk[None, :], other=0.0)
        u = tl.load(u_ptr + bh * Lp * DV + rt[:, None] * DV + rv[None, :], mask=mv[None, :], other=0.0)
        x = u - _mm(_cast(w, DT, EMU), _cast(h, DT, EMU), F32)
        if STORE_X:
            tl.store(x_ptr + bh * Lp * DV + rt[:, None] * DV + rv[None, :], x, mask=mv[None, :])
        e = _transform_fwd(x, TRANSFORM)
        if ROUND_HE:
            tl.store(e_ptr + bh * Lp * DV + rt[:, None] * DV + rv[None, :], _cast(e, DT, EMU), mask=mv[None, :])
        else:
            tl.store(e_ptr + bh * Lp * DV + rt[:, None] * DV + rv[None, :], e, mask=mv[None, :])
        k = tl.load(k_ptr + bh * Lp * DK + rt[:, None] * DK + rk[None, :], mask=mk[None, :], other=0.0).to(tl.float32)
        if USE_G:
            g = tl.load(gc_ptr + bh * Lp + rt)
            g_last = tl.load(gc_ptr + bh * Lp + i * C + C - 1)
            h = h * tl.exp(g_last)
            k = k * tl.exp(g_last - g)[:, None]
        h += _mm(tl.trans(_cast(k, DT, EMU)), _cast(e, DT, EMU), F32)
        if DECAY:
            h = h * lam
    if STORE_HT:
        tl.store(ht_ptr + bh * DK * DV + rk[:, None] * DV + rv[None, :], h, mask=mkv)


@triton.jit
def _o_fwd(
    q_ptr, k_ptr, e_ptr, gc_ptr, hs_ptr, o_ptr, scale, Lp, DK, DV, N,
    C: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, USE_G: tl.constexpr,
    DT: tl.constexpr, EMU: tl.constexpr, F32: tl.constexpr,
):
    """o = s·(Q ⊙ exp(γ)) h + (s·Q Kᵀ ⊙ D ⊙ causal) e for one (value block, chunk, head).

    The key dimension runs in tiles of BK: Q h and Q Kᵀ are accumulated over them; the decay exp(γ) scales
    the rows of Q h afterwards (diag(eᵞ) (Q h) = (Q ⊙ eᵞ) h).
    """
    iv = tl.program_id(0)
    i = tl.program_id(1)
    bh = tl.program_id(2).to(tl.int64)
    rt = i * C + tl.arange(0, C)
    rc = tl.arange(0, C)
    rv = iv * BV + tl.arange(0, BV)
    mv = rv < DV
    s = tl.zeros([C, C], dtype=tl.float32)
    qh = tl.zeros([C, BV], dtype=tl.float32)
    for kk in range(0, tl.cdiv(DK, BK)):
        rk = kk * BK + tl.arange(0, BK)
        mk = rk < DK
        q = _cast(tl.load(q_ptr + bh * Lp * DK + rt[:, None] * DK + rk[None, :], mask=mk[None, :], other=0.0), DT, EMU)
        k = _cast(tl.load(k_ptr + bh * Lp * DK + rt[:, None] * DK + rk[None, :], mask=mk[None, :], other=0.0), DT, EMU)
        h = tl.load(hs_ptr + (bh * N + i) * DK * DV + rk[:, None] * DV + rv[None, :], mask=mk[:, None] & mv[None, :], other=0.0)
        s += _mm(q, tl.trans(k), F32)
        qh += _mm(q, _cast(h, DT, EMU), F32)
    s = s * scale
    if USE_G:
        g = tl.load(gc_ptr + bh * Lp + rt)
        s = s * _decay_matrix(g, g, C, False)
        qh = qh * tl.exp(g)[:, None]
    else:
        s = tl.where(rc[:, None] >= rc[None, :], s, 0.0)
    e = tl.load(e_ptr + bh * Lp * DV + rt[:, None] * DV + rv[None, :], mask=mv[None, :], other=0.0)
    o = qh * scale + _mm(_cast(s, DT, EMU), _cast(e, DT, EMU), F32)
    tl.store(o_ptr + bh * Lp * DV + rt[:, None] * DV + rv[None, :], o, mask=mv[None, :])


# ---------------------------------------------------------------------------------------------------------
# Backward.
# ---------------------------------------------------------------------------------------------------------
@triton.jit
def _dh_bwd(
    q_ptr, k_ptr, w_ptr, x_ptr, e_ptr, gc_ptr, do_ptr, dht_ptr, dhs_ptr, dx_ptr, dh0_ptr, scale, lam, Lp, DK, DV, N,
    C: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, USE_G: tl.constexpr, TRANSFORM: tl.constexpr,
    DECAY: tl.constexpr,
    HAS_DHT: tl.constexpr, STORE_DH0: tl.constexpr,
    DT: tl.constexpr, EMU: tl.constexpr, F32: tl.constexpr,
):
    """The reverse sequential kernel: dh (gradient w.r.t. the state) in fp32, chunks from last to first.

    Per chunk: store dh (w.r.t. the state after the chunk), de = Mᵀ dO + k̃ dh, dx = f'(x)ᵀ de (stored; it is
    du), dh ← exp(γ_C) dh + s·(Q ⊙ exp(γ))ᵀ dO − wᵀ dx. With DECAY, dh is first multiplied by λ, so what is
    stored and used is the gradient w.r.t. the state after the write and before the decay.
    """
    iv = tl.program_id(0)
    bh = tl.program_id(1).to(tl.int64)
    rk = tl.arange(0, BK)
    rc = tl.arange(0, C)
    rv = iv * BV + tl.arange(0, BV)
    mk = rk < DK
    mv = rv < DV
    mkv = mk[:, None] & mv[None, :]
    if HAS_DHT:
        dh = tl.load(dht_ptr + bh * DK * DV + rk[:, None] * DV + rv[None, :], mask=mkv, other=0.0)
    else:
        dh = tl.zeros([BK, BV], dtype=tl.float32)
    for ii in range(0, N):
        i = N - 1 - ii
        rt = i * C + tl.arange(0, C)
        if DECAY:
            dh = dh * lam
        tl.store(dhs_ptr + (bh * N + i) * DK * DV + rk[:, None] * DV + rv[None, :], dh, mask=mkv)
        q = tl.load(q_ptr + bh * Lp * DK + rt[:, None] * DK + rk[None, :], mask=mk[None, :], other=0.0).to(tl.float32)
        k = tl.load(k_ptr + bh * Lp * DK + rt[:, None] * DK + rk[None, :], mask=mk[None, :], other=0.0).to(tl.float32)
        w = tl.load(w_ptr + bh * Lp * DK + rt[:, None] * DK + rk[None, :], mask=mk[None, :], other=0.0)
        do = tl.load(do_ptr + bh * Lp * DV + rt[:, None] * DV + rv[None, :], mask=mv[None, :], other=0.0)
        m = _mm(_cast(q, DT, EMU), tl.trans(_cast(k, DT, EMU)), F32) * scale
        if USE_G:
            g = tl.load(gc_ptr + bh * Lp + rt)
            g_last = tl.load(gc_ptr + bh * Lp + i * C + C - 1)
            m = m * _decay_matrix(g, g, C, False)
            k = k * tl.exp(g_last - g)[:, None]
            q = q * tl.exp(g)[:, None]
        else:
            m = tl.where(rc[:, None] >= rc[None, :], m, 0.0)
        dhc = _cast(dh, DT, EMU)
        de = _mm(tl.trans(_cast(m, DT, EMU)), _cast(do, DT, EMU), F32) + _mm(_cast(k, DT, EMU), dhc, F32)
        if TRANSFORM != 0:
            x = tl.load(x_ptr + bh * Lp * DV + rt[:, None] * DV + rv[None, :], mask=mv[None, :], other=0.0)
            e = tl.load(e_ptr + bh * Lp * DV + rt[:, None] * DV + rv[None, :], mask=mv[None, :], other=0.0)
            dx = _transform_bwd(x, e, de, TRANSFORM)
        else:
            dx = de
        tl.store(dx_ptr + bh * Lp * DV + rt[:, None] * DV + rv[None, :], dx, mask=mv[None, :])
        if USE_G:
            dh = dh * tl.exp(g_last)
        dh += _mm(tl.trans(_cast(q, DT, EMU)), _cast(do, DT, EMU), F32) * scale
        dh -= _mm(tl.trans(_cast(w, DT, EMU)), _cast(dx, DT, EMU), F32)
    if STORE_DH0:
        tl.store(dh0_ptr + bh * DK * DV + rk[:, None] * DV + rv[None, :], dh, mask=mkv)


@triton.jit
def _dqk_bwd(
    q_ptr, k_ptr, e_ptr, dx_ptr, gc_ptr, do_ptr, hs_ptr, dhs_ptr, dq_ptr, dk_ptr, dw_ptr, dg_ptr,
    scale, Lp, DK, DV, N, BH,
    C: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, USE_G: tl.constexpr,
    DT: tl.constexpr, EMU: tl.constexpr, F32: tl.constexpr,
):
    """Per (key tile, chunk, head): dq, dk (output and state-update paths) and dw = −dx hᵀ on the tile's BK
    columns, fp32. Gated, the tile's part of dγ goes to row ``ik`` of dg ``[NK, B·H, Lp]`` (summed on the host).
    """
    ik = tl.program_id(0)
    i = tl.program_id(1)
    bh = tl.program_id(2).to(tl.int64)
    rt = i * C + tl.arange(0, C)
    rc = tl.arange(0, C)
    rk = ik * BK + tl.arange(0, BK)
    mk = rk < DK
    acc_doh = tl.zeros([C, BK], dtype=tl.float32)  # dO hᵀ
    acc_dm = tl.zeros([C, C], dtype=tl.float32)  # dO eᵀ
    acc_edh = tl.zeros([C, BK], dtype=tl.float32)  # e dhᵀ   (dh: w.r.t. the state after the chunk)
    acc_dxh = tl.zeros([C, BK], dtype=tl.float32)  # dx hᵀ
    acc_hdh = tl.zeros([BK], dtype=tl.float32)  # Σ_v h ⊙ dh, per key row (summed below)
    for j in range(0, tl.cdiv(DV, BV)):
        rv = j * BV + tl.arange(0, BV)
        mv = rv < DV
        mkv = mk[:, None] & mv[None, :]
        do = _cast(tl.load(do_ptr + bh * Lp * DV + rt[:, None] * DV + rv[None, :], mask=mv[None, :], other=0.0), DT, EMU)
        e = _cast(tl.load(e_ptr + bh * Lp * DV + rt[:, None] * DV + rv[None, :], mask=mv[None, :], other=0.0), DT, EMU)
        dx = _cast(tl.load(dx_ptr + bh * Lp * DV + rt[:, None] * DV + rv[None, :], mask=mv[None, :], other=0.0), DT, EMU)
        h32 = tl.load(hs_ptr + (bh * N + i) * DK * DV + rk[:, None] * DV + rv[None, :], mask=mkv, other=0.0)
        dh32 = tl.load(dhs_ptr + (bh * N + i) * DK * DV + rk[:, None] * DV + rv[None, :], mask=mkv, other=0.0)
        h = _cast(h32, DT, EMU)
        acc_doh += _mm(do, tl.trans(h), F32)
        acc_dm += _mm(do, tl.trans(e), F32)
        acc_edh += _mm(e, tl.trans(_cast(dh32, DT, EMU)), F32)
        acc_dxh += _mm(dx, tl.trans(h), F32)
        if USE_G:
            acc_hdh += tl.sum(h32 * dh32, axis=1)
    q = tl.load(q_ptr + bh * Lp * DK + rt[:, None] * DK + rk[None, :], mask=mk[None, :], other=0.0).to(tl.float32)
    k = tl.load(k_ptr + bh * Lp * DK + rt[:, None] * DK + rk[None, :], mask=mk[None, :], other=0.0).to(tl.float32)
    qc = _cast(q, DT, EMU)
    kc = _cast(k, DT, EMU)
    causal = rc[:, None] >= rc[None, :]
    dm = tl.where(causal, acc_dm, 0.0) * scale  # gradient w.r.t. (q kᵀ) before the decay
    if USE_G:
        g = tl.load(gc_ptr + bh * Lp + rt)
        g_last = tl.load(gc_ptr + bh * Lp + i * C + C - 1)
        D = _decay_matrix(g, g, C, False)
        dq_inter = acc_doh * (tl.exp(g) * scale)[:, None]
        kdec = tl.exp(g_last - g)
        dk_state = acc_edh * kdec[:, None]
        kt = tl.sum(dk_state * k, axis=1)  # dk̃ · k̃ per row, this tile's part
        dgam = tl.sum(dq_inter * q, axis=1) - kt
        last = tl.exp(g_last) * tl.sum(acc_hdh, axis=0) + tl.sum(kt, axis=0)
        if ik == 0:  # the intra-chunk term needs M = s·Q Kᵀ ⊙ D over the whole key dimension
            qk = tl.zeros([C, C], dtype=tl.float32)
            for kk in range(0, tl.cdiv(DK, BK)):
                rk2 = kk * BK + tl.arange(0, BK)
                q2 = tl.load(q_ptr + bh * Lp * DK + rt[:, None] * DK + rk2[None, :], mask=rk2[None, :] < DK, other=0.0)
                k2 = tl.load(k_ptr + bh * Lp * DK + rt[:, None] * DK + rk2[None, :], mask=rk2[None, :] < DK, other=0.0)
                qk += _mm(_cast(q2, DT, EMU), tl.trans(_cast(k2, DT, EMU)), F32)
            dmm = tl.where(causal, acc_dm, 0.0) * (qk * scale * D)  # dM ⊙ M
            dgam += tl.sum(dmm, axis=1) - tl.sum(dmm, axis=0)
        dgam += tl.where(rc == C - 1, last, 0.0)
        tl.store(dg_ptr + (ik * BH + bh) * Lp + rt, dgam)
        dm = dm * D
    else:
        dq_inter = acc_doh * scale
        dk_state = acc_edh
    dmc = _cast(dm, DT, EMU)
    dq = dq_inter + _mm(dmc, kc, F32)
    dk = dk_state + _mm(tl.trans(dmc), qc, F32)
    tl.store(dq_ptr + bh * Lp * DK + rt[:, None] * DK + rk[None, :], dq, mask=mk[None, :])
    tl.store(dk_ptr + bh * Lp * DK + rt[:, None] * DK + rk[None, :], dk, mask=mk[None, :])
    tl.store(dw_ptr + bh * Lp * DK + rt[:, None] * DK + rk[None, :], -acc_dxh, mask=mk[None, :])


@triton.jit
def _wy_bwd(
    k_ptr, v_ptr, x_ptr, beta_ptr, gc_ptr, T_ptr, dw_ptr, du_ptr, dk_ptr, dv_ptr, dbeta_ptr, dg_ptr, Lp, DK, DV, N,
    C: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, USE_G: tl.constexpr, PRECISE_G: tl.constexpr,
    DT: tl.constexpr, EMU: tl.constexpr, F32: tl.constexpr,
):
    """Back through w = T(β⊙K⊙exp(γ)), u = T(β⊙V) and T = (I + A)⁻¹: dk (this part), dv, dβ, dγ (this part).

    dT = du (β⊙V)ᵀ + dw (β⊙K⊙eᵞ)ᵀ,  dA = −Tᵀ dT Tᵀ (strictly lower),  A = tril(diag(β) K Kᵀ ⊙ D, −1).
    The key dimension runs in tiles of BK, twice: once for dT and K Kᵀ, once for dk (which needs dA).

    dβ. The chunk's raw errors solve (I + diag(β) Ls) X = diag(β) R with R = V − (K ⊙ eᵞ) h, so row r of X is
    β_r·Y_r and, by implicit differentiation, dβ_r = G_r · Y_r = G_r · x_r / β_r with G = Tᵀ dx (= d(β⊙V)).
    This one-term form is used wherever β_r ≠ 0. The three-term form (through v, w and A), used where β_r = 0,
    is a sum of large cancelling terms when dx ⊥ x, as with ``l2_norm_error`` (the normalised error does not
    depend on the scale of x, so dβ_r ≈ 0 at the end of every chunk), and loses about 1% to bf16 rounding there.
    With PRECISE_G (set for the error transforms, whose dx carries a 1/‖x‖ factor) G = Tᵀ dx is an IEEE fp32
    dot of the unrounded T and dx instead of a half-precision one.
    """
    i = tl.program_id(0)
    bh = tl.program_id(1).to(tl.int64)
    rt = i * C + tl.arange(0, C)
    rc = tl.arange(0, C)
    T32 = tl.load(T_ptr + (bh * N + i) * C * C + rc[:, None] * C + rc[None, :])
    T = _cast(T32, DT, EMU)
    Tt = tl.trans(T)
    b = tl.load(beta_ptr + bh * Lp + rt)
    if USE_G:
        g = tl.load(gc_ptr + bh * Lp + rt)
        eg = tl.exp(g)
    else:
        eg = tl.full([C], 1.0, tl.float32)
    dT = tl.zeros([C, C], dtype=tl.float32)
    kk = tl.zeros([C, C], dtype=tl.float32)  # K Kᵀ
    dbeta = tl.zeros([C], dtype=tl.float32)  # three-term form (see the docstring)
    dgam = tl.zeros([C], dtype=tl.float32)
    for kt in range(0, tl.cdiv(DK, BK)):
        rk = kt * BK + tl.arange(0, BK)
        mk = rk[None, :] < DK
        k = tl.load(k_ptr + bh * Lp * DK + rt[:, None] * DK + rk[None, :], mask=mk, other=0.0).to(tl.float32)
        dwc = _cast(tl.load(dw_ptr + bh * Lp * DK + rt[:, None] * DK + rk[None, :], mask=mk, other=0.0), DT, EMU)
        kbg = k * (b * eg)[:, None]
        dkbg = _mm(Tt, dwc, F32)  # d(β⊙K⊙eᵞ)
        dT += _mm(dwc, tl.trans(_cast(kbg, DT, EMU)), F32)
        kc = _cast(k, DT, EMU)
        kk += _mm(kc, tl.trans(kc), F32)
        dbeta += tl.sum(dkbg * k * eg[:, None], axis=1)
        if USE_G:
            dgam += tl.sum(dkbg * kbg, axis=1)
    gx = tl.zeros([C], dtype=tl.float32)  # Σ_v G ⊙ x, the one-term form
    for j in range(0, tl.cdiv(DV, BV)):
        rv = j * BV + tl.arange(0, BV)
        mv = rv[None, :] < DV
        v = tl.load(v_ptr + bh * Lp * DV + rt[:, None] * DV + rv[None, :], mask=mv, other=0.0).to(tl.float32)
        du32 = tl.load(du_ptr + bh * Lp * DV + rt[:, None] * DV + rv[None, :], mask=mv, other=0.0)
        du = _cast(du32, DT, EMU)
        if PRECISE_G:
            dvb = _mm(tl.trans(T32), du32, True)  # d(β⊙V) = G
        else:
            dvb = _mm(Tt, du, F32)
        tl.store(dv_ptr + bh * Lp * DV + rt[:, None] * DV + rv[None, :], dvb * b[:, None], mask=mv)
        dbeta += tl.sum(dvb * v, axis=1)
        x = tl.load(x_ptr + bh * Lp * DV + rt[:, None] * DV + rv[None, :], mask=mv, other=0.0)
        gx += tl.sum(dvb * x, axis=1)
        dT += _mm(du, tl.trans(_cast(v * b[:, None], DT, EMU)), F32)
    dA = -_mm(Tt, _cast(_mm(_cast(dT, DT, EMU), Tt, F32), DT, EMU), F32)
    dA = tl.where(rc[:, None] > rc[None, :], dA, 0.0)
    if USE_G:
        dA2 = dA * _decay_matrix(g, g, C, True)
    else:
        dA2 = dA
    dA2c = _cast(dA2, DT, EMU)
    dbeta += tl.sum(dA2 * kk, axis=1)
    nz = b != 0.0
    dbeta = tl.where(nz, gx / tl.where(nz, b, 1.0), dbeta)
    tl.store(dbeta_ptr + bh * Lp + rt, dbeta)
    if USE_G:
        dAA = dA2 * kk * b[:, None]  # dA ⊙ A
        dgam += tl.sum(dAA, axis=1) - tl.sum(dAA, axis=0)
        tl.store(dg_ptr + bh * Lp + rt, dgam)
    for kt in range(0, tl.cdiv(DK, BK)):
        rk = kt * BK + tl.arange(0, BK)
        mk = rk[None, :] < DK
        k = tl.load(k_ptr + bh * Lp * DK + rt[:, None] * DK + rk[None, :], mask=mk, other=0.0).to(tl.float32)
        dwc = _cast(tl.load(dw_ptr + bh * Lp * DK + rt[:, None] * DK + rk[None, :], mask=mk, other=0.0), DT, EMU)
        dk = _mm(Tt, dwc, F32) * (b * eg)[:, None]
        dk += _mm(dA2c, _cast(k, DT, EMU), F32) * b[:, None]
        dk += _mm(tl.trans(dA2c), _cast(k * b[:, None], DT, EMU), F32)
        tl.store(dk_ptr + bh * Lp * DK + rt[:, None] * DK + rk[None, :], dk, mask=mk)
