"""The autograd Function behind every Triton entry point: chunkwise (gated) delta rule with an optional
transform of the prediction error. Host-side glue: padding, layout, the small triangular solve, launches."""
from __future__ import annotations

import torch
import torch.nn.functional as F
import triton.language as tl
from torch import Tensor

from . import _common as K

_TL_DTYPE = {torch.bfloat16: tl.bfloat16, torch.float16: tl.float16, torch.float32: tl.float32}


def _pad(x: Tensor, C: int) -> Tensor:
    pad = (-x.shape[2]) % C
    if pad == 0:
        return x.contiguous()
    return (F.pad(x, (0, 0, 0, pad)) if x.dim() == 4 else F.pad(x, (0, pad))).contiguous()


def _precision(dtype: torch.dtype) -> tuple:
    """(DT, EMU, F32): operand dtype, bf16 emulation under the interpreter, IEEE-fp32 dots."""
    DT = _TL_DTYPE[dtype]
    EMU = bool(K.interpret_mode() and dtype == torch.bfloat16)
    F32 = bool(dtype == torch.float32 or EMU)
    return DT, EMU, F32


KERNELS = ("_kkt_fwd", "_wu_fwd", "_h_fwd", "_o_fwd", "_dh_bwd", "_dqk_bwd", "_wy_bwd")
SEQUENTIAL = ("_h_fwd", "_dh_bwd")  # one program per (value tile, head) walks the chunks; the state is d_k x BV


def tiles(dk: int, dv: int, transform: int = 0) -> dict[str, dict]:
    """Block sizes (``BK``, ``BV``) and launch options (``num_warps``, ``num_stages``) of each kernel.

    The chunk-parallel kernels take the key dimension in tiles of at most 64 (``_dqk_bwd`` has one program per
    key tile; the others loop over them) and values in tiles of at most 64 (32 in ``_dqk_bwd``, which loads five
    tiles per step). The sequential kernels keep the whole key dimension of the state, ``BK = next_pow2(d_k)``,
    with a value tile of 64, 32 from d_k = 256; ``l2_norm_error`` needs whole value rows (``BV = next_pow2(d_v)``,
    d_k · d_v ≤ 128²). Software pipelining (``num_stages``) is what costs shared memory in the loops, so it is
    lowered as the tiles grow. Every choice keeps each kernel within 90% of the shared memory per block of an
    Ampere/Ada card (101,376 bytes) and of Hopper (232,448), for d_k, d_v in 16..256: ``deltalab.kernels.smem``
    compiles them for sm_80 and sm_90 and checks (tests/test_triton_smem.py; the table is in docs/triton.md).
    """
    BKS = K.next_pow2(dk)
    BK = min(BKS, 64)
    BV = min(K.next_pow2(dv), 64)
    out = {name: dict(BK=BK, BV=BV, num_warps=4, num_stages=3) for name in KERNELS}
    out["_dqk_bwd"].update(BV=min(BV, 32), num_stages=2)
    if transform == 1:
        BVS = K.next_pow2(dv)
        if BKS * BVS > 128 * 128:
            raise ValueError(
                f"l2_norm_error's Triton kernel keeps whole value rows of the d_k x d_v state in one tile and "
                f"supports d_k * d_v <= 128 * 128; got d_k={dk}, d_v={dv} (use the PyTorch path)"
            )
        seq = dict(BK=BKS, BV=BVS, num_stages=2 if max(BKS, BVS) <= 64 else 1)
    elif BKS <= 64:
        seq = dict(BK=BKS, BV=BV, num_stages=3)
    elif BKS == 128:
        seq = dict(BK=BKS, BV=BV, num_stages=2)
    else:
        seq = dict(BK=BKS, BV=min(BV, 32), num_stages=1)
    for name in SEQUENTIAL:
        out[name].update(seq)
    return out


class _Prep:
    """Padded, head-flattened inputs shared by forward and backward."""

    def __init__(self, q, k, v, beta, g, C):
        B, H, L, dk = q.shape
        self.B, self.H, self.L, self.dk, self.dv, self.C = B, H, L, dk, v.shape[-1], C
        self.Lp = L + (-L) % C
        self.N = self.Lp // C
        self.BH = B * H


def _gamma(g: Tensor | None, B: int, H: int, Lp: int, C: int) -> Tensor | None:
    """Cumulative log decay inside each chunk, fp32, [B·H, Lp]."""
    if g is None:
        return None
    return g.reshape(B * H, Lp // C, C).cumsum(-1).reshape(B * H, Lp).contiguous()


def _solve(A: Tensor) -> Tensor:
    """T = (I + A)⁻¹ for unit lower-triangular I + A, batched over [B·H, N, C, C] (PyTorch, fp32).

    ``unitriangular`` takes the diagonal as ones without reading it, so A (zero diagonal) is passed as it is."""
    C = A.shape[-1]
    eye = torch.eye(C, dtype=A.dtype, device=A.device)
    return torch.linalg.solve_triangular(A, eye.expand_as(A), upper=False, unitriangular=True).contiguous()


def _forward_core(q, k, v, beta, gc, h0, p: _Prep, transform: int, decay, dtype, *, for_backward: bool, T=None):
    """Run kkt/solve (unless T is given), w/u, the state kernel and (not for backward) the output kernel.

    w is kept in the operand precision (``_rounded``); so are h and e in the forward without backward, whose
    only reader, ``_o_fwd``, rounds them anyway. The backward keeps h and e in fp32.
    """
    DT, EMU, F32 = _precision(dtype)
    BH, Lp, dk, dv, C, N = p.BH, p.Lp, p.dk, p.dv, p.C, p.N
    t = tiles(dk, dv, transform)
    dev = q.device
    f32 = dict(device=dev, dtype=torch.float32)
    rounded = dict(device=dev, dtype=_rounded(dtype))
    use_g = gc is not None
    gc_arg = gc if use_g else beta  # placeholder pointer, never read
    if T is None:
        A = torch.empty(BH, N, C, C, **f32)
        K._kkt_fwd[(N, BH)](
            k, beta, gc_arg, A, Lp, dk, N, C=C, USE_G=use_g, DT=DT, EMU=EMU, F32=F32, **t["_kkt_fwd"]
        )
        T = _solve(A)
    w = torch.empty(BH, Lp, dk, **rounded)
    u = torch.empty(BH, Lp, dv, **f32)
    K._wu_fwd[(N, BH)](
        k, v, beta, gc_arg, T, w, u, Lp, dk, dv, N, C=C, USE_G=use_g, DT=DT, EMU=EMU, F32=F32, **t["_wu_fwd"],
    )
    he = rounded if not for_backward else f32
    hs = torch.empty(BH, N, dk, dv, **he)
    e = torch.empty(BH, Lp, dv, **he)
    store_x = for_backward and transform != 0
    x = torch.empty(BH, Lp, dv, **f32) if store_x else e
    ht = torch.empty(BH, dk, dv, **f32)
    K._h_fwd[(triton_cdiv(dv, t["_h_fwd"]["BV"]), BH)](
        k, w, u, gc_arg, h0 if h0 is not None else ht, hs, x, e, ht, 1.0 if decay is None else float(decay),
        Lp, dk, dv, N, C=C, USE_G=use_g, TRANSFORM=transform, DECAY=decay is not None,
        HAS_H0=h0 is not None, STORE_X=store_x, STORE_HT=not for_backward, ROUND_HE=not for_backward,
        DT=DT, EMU=EMU, F32=F32, **t["_h_fwd"],
    )
    if for_backward:
        return T, w, hs, x, e
    o = torch.empty(BH, Lp, dv, **f32)
    K._o_fwd[(triton_cdiv(dv, t["_o_fwd"]["BV"]), N, BH)](
        q, k, e, gc_arg, hs, o, p.dk**-0.5, Lp, dk, dv, N, C=C, USE_G=use_g,
        DT=DT, EMU=EMU, F32=F32, **t["_o_fwd"],
    )
    return T, o, ht


def _rounded(dtype: torch.dtype) -> torch.dtype:
    """Storage of a tensor kept rounded to the operand precision: the compute dtype, or fp32 holding the
    rounded values under the interpreter's bf16 emulation (``_cast`` with EMU rounds in fp32)."""
    return torch.float32 if K.interpret_mode() and dtype == torch.bfloat16 else dtype


def triton_cdiv(a: int, b: int) -> int:
    return (a + b - 1) // b


class ChunkDeltaRuleFunction(torch.autograd.Function):
    """Inputs are padded, head-flattened: q, k [B·H, Lp, d_k], v [B·H, Lp, d_v] in the compute dtype,
    beta [B·H, Lp] fp32, gc [B·H, Lp] fp32 (within-chunk cumsum of g) or None, h0 [B·H, d_k, d_v] fp32 or None."""

    @staticmethod
    def forward(ctx, q, k, v, beta, gc, h0, p: _Prep, transform: int, decay):
        T, o, ht = _forward_core(q, k, v, beta, gc, h0, p, transform, decay, q.dtype, for_backward=False)
        ctx.save_for_backward(q, k, v, beta, gc, h0, T)
        ctx.p, ctx.transform, ctx.decay = p, transform, decay
        return o, ht

    @staticmethod
    def backward(ctx, do, dht):
        q, k, v, beta, gc, h0, T = ctx.saved_tensors
        p, transform, decay = ctx.p, ctx.transform, ctx.decay
        dtype = q.dtype
        DT, EMU, F32 = _precision(dtype)
        BH, Lp, dk, dv, C, N = p.BH, p.Lp, p.dk, p.dv, p.C, p.N
        t = tiles(dk, dv, transform)
        f32 = dict(device=q.device, dtype=torch.float32)
        use_g = gc is not None
        gc_arg = gc if use_g else beta
        _, w, hs, x, e = _forward_core(q, k, v, beta, gc, h0, p, transform, decay, dtype, for_backward=True, T=T)
        do = do.float().contiguous()
        dhs = torch.empty(BH, N, dk, dv, **f32)
        dx = torch.empty(BH, Lp, dv, **f32)
        dh0 = torch.empty(BH, dk, dv, **f32)
        has_dht = dht is not None
        K._dh_bwd[(triton_cdiv(dv, t["_dh_bwd"]["BV"]), BH)](
            q, k, w, x, e, gc_arg, do, dht.float().contiguous() if has_dht else dh0, dhs, dx, dh0,
            dk**-0.5, 1.0 if decay is None else float(decay), Lp, dk, dv, N,
            C=C, USE_G=use_g, TRANSFORM=transform, DECAY=decay is not None, HAS_DHT=has_dht,
            STORE_DH0=True, DT=DT, EMU=EMU, F32=F32, **t["_dh_bwd"],
        )
        dq = torch.empty(BH, Lp, dk, **f32)
        dk1 = torch.empty(BH, Lp, dk, **f32)
        dw = torch.empty(BH, Lp, dk, **f32)
        nk = triton_cdiv(dk, t["_dqk_bwd"]["BK"])
        dg1 = torch.empty(nk, BH, Lp, **f32) if use_g else beta  # one row per key tile, summed below
        K._dqk_bwd[(nk, N, BH)](
            q, k, e, dx, gc_arg, do, hs, dhs, dq, dk1, dw, dg1, dk**-0.5, Lp, dk, dv, N, BH,
            C=C, USE_G=use_g, DT=DT, EMU=EMU, F32=F32, **t["_dqk_bwd"],
        )
        dk2 = torch.empty(BH, Lp, dk, **f32)
        dvv = torch.empty(BH, Lp, dv, **f32)
        dbeta = torch.empty(BH, Lp, **f32)
        dg2 = torch.empty(BH, Lp, **f32) if use_g else beta
        K._wy_bwd[(N, BH)](
            k, v, x, beta, gc_arg, T, dw, dx, dk2, dvv, dbeta, dg2, Lp, dk, dv, N,
            C=C, USE_G=use_g, PRECISE_G=transform != 0, DT=DT, EMU=EMU, F32=F32,
            **t["_wy_bwd"],
        )
        # gradient w.r.t. γ (the within-chunk cumsum of g); autograd takes it back through the cumsum
        dgc = dg1.sum(0) + dg2 if use_g else None
        return (
            dq.to(q.dtype), (dk1 + dk2).to(k.dtype), dvv.to(v.dtype), dbeta, dgc,
            dh0 if h0 is not None else None, None, None, None,
        )


def chunk_delta_rule_triton(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    beta: Tensor,
    g: Tensor | None = None,
    chunk_size: int = 32,
    initial_state: Tensor | None = None,
    transform: str | None = None,
    decay: float | None = None,
) -> tuple[Tensor, Tensor]:
    """Head-first [B,H,L,d] front end shared by the public functions. Returns (o in v's dtype, S fp32)."""
    from ..core.delta_rule import check_shapes

    check_shapes(q, k, v, beta, initial_state)
    if g is not None and g.shape != q.shape[:3]:
        raise ValueError(f"g (log decay) must be [B, H, L] = {tuple(q.shape[:3])}; got {tuple(g.shape)}")
    C = int(chunk_size)
    if C < 16 or C & (C - 1):
        raise ValueError(f"the Triton kernels need a power-of-two chunk_size >= 16; got {chunk_size}")
    if q.shape[-1] > 256 or v.shape[-1] > 256:
        raise ValueError("the Triton kernels support head dims up to 256")
    if transform not in K.TRANSFORMS:
        raise ValueError(f"unknown transform {transform!r}; known: {sorted(t for t in K.TRANSFORMS if t)}")
    dtype = q.dtype
    if dtype not in _TL_DTYPE:
        raise TypeError(f"the Triton kernels take bf16, fp16 or fp32 inputs; got {dtype} (use the PyTorch path)")
    out_dtype = v.dtype
    B, H, L, dk = q.shape
    dv = v.shape[-1]
    p = _Prep(q, k, v, beta, g, C)
    Lp = p.Lp

    def flat(x, d):
        return _pad(x.to(dtype), C).reshape(B * H, Lp, d)

    qf, kf, vf = flat(q, dk), flat(k, dk), flat(v, dv)
    bf = _pad(beta.float(), C).reshape(B * H, Lp)
    gc = None
    if g is not None:
        gc = _gamma(_pad(g.float(), C).reshape(B * H, Lp), B, H, Lp, C)
    h0 = None if initial_state is None else initial_state.float().reshape(B * H, dk, dv).contiguous()
    o, ht = ChunkDeltaRuleFunction.apply(qf, kf, vf, bf, gc, h0, p, K.TRANSFORMS[transform], decay)
    o = o.reshape(B, H, Lp, dv)[:, :, :L].to(out_dtype)
    return o, ht.reshape(B, H, dk, dv)
