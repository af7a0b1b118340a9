"""DeltaNet and Gated DeltaNet token mixers at MAD scale (width 128).

Both follow fla's layers (docs/delta-rule.md §4) in plain PyTorch:

    q, k, v = SiLU(causal_conv4(W_q x)), SiLU(causal_conv4(W_k x)), SiLU(causal_conv4(W_v x))
    q, k    = q / ‖q‖₂, k / ‖k‖₂                     per head
    β       = sigmoid(W_β x)                         one writing strength per head and token
    o       = rule(q, k, v, β)                       the delta rule (or a variant of it)
    y       = W_o RMSNorm(o)                         per-head RMSNorm

Heads: 2 heads of d_k = d_v = 64 at width 128. Why: a head dim of 64 is what fla's kernels and the field's
DeltaNet runs use, so each head keeps a 64×64 associative memory (the capacity that matters on the recall
tasks); two heads still let the layer read two different things per token. Gated DeltaNet uses the same
2 × 64 × 64 state, so the two baselines differ only by the decay gate and the output gate.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .core import delta_rule_chunkwise, gated_delta_rule_chunkwise

Rule = Callable[..., tuple[Tensor, Tensor]]
CHUNK_SIZE = 32  # the chunk length of the layers' chunkwise rule (fla's naive default)


# ---------------------------------------------------------------------------------------------------------
# Fast elementwise pieces: autograd Functions with hand-written backwards (fewer passes over memory than
# autograd's op-by-op graph, and no zero-filled slice/pad/cat gradients). Each has a reference twin (the
# plain op-by-op form), used when a module's ``reference`` flag is set (see ``use_reference_ops``) and in
# tests/test_fast_paths.py.
# ---------------------------------------------------------------------------------------------------------
def rms_normalise(x: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """``(xn, r)`` in fp32: ``xn = x r`` with ``r = (mean x² + ε)^-1/2`` (the forward of every RMSNorm here)."""
    xf = x.float()
    r = torch.rsqrt(torch.linalg.vector_norm(xf, dim=-1, keepdim=True).square_().div_(xf.shape[-1]).add_(eps))
    return xf * r, r


def rms_normalise_backward(dxn: Tensor, xn: Tensor, r: Tensor) -> Tensor:
    """The gradient through ``rms_normalise``: y = x r  →  dx = r (dxn − xn · mean(dxn ⊙ xn))."""
    return (dxn - xn * (dxn * xn).mean(-1, keepdim=True)).mul_(r)


class _RMSNormFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, eps: float) -> Tensor:
        xn, r = rms_normalise(x, eps)
        ctx.save_for_backward(xn, r, weight)
        return (xn * weight).to(x.dtype)

    @staticmethod
    def backward(ctx, dy: Tensor):
        xn, r, weight = ctx.saved_tensors
        dyf = dy.float()
        dw = (dyf * xn).reshape(-1, xn.shape[-1]).sum(0) if ctx.needs_input_grad[1] else None
        dx = rms_normalise_backward(dyf * weight, xn, r)
        return dx.to(dy.dtype), (dw.to(weight.dtype) if dw is not None else None), None


def rms_norm_ref(x: Tensor, weight: Tensor, eps: float) -> Tensor:
    """Reference twin of ``_RMSNormFn``: ``x / rms(x) · w`` op by op, in fp32."""
    xf = x.float()
    y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return (y * weight).to(x.dtype)


class _L2NormFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, eps: float) -> Tensor:
        xf = x.float()
        r = torch.rsqrt(torch.linalg.vector_norm(xf, dim=-1, keepdim=True).square_().add_(eps))
        y = xf * r
        ctx.save_for_backward(y, r)
        return y.to(x.dtype)

    @staticmethod
    def backward(ctx, dy: Tensor):
        y, r = ctx.saved_tensors
        dyf = dy.float()
        # y = x r with r = (‖x‖² + ε)^-1/2  →  dx = r (dy − y (y · dy))
        return (dyf - y * (dyf * y).sum(-1, keepdim=True)).mul_(r).to(dy.dtype), None


def l2norm_ref(x: Tensor, eps: float = 1e-6) -> Tensor:
    """Reference twin of ``_L2NormFn``: L2 normalisation op by op, in fp32."""
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).sum(-1, keepdim=True) + eps)).to(x.dtype)


def _block_rows(x: Tensor, target_bytes: int = 3 << 19) -> int:
    """Sequences per block so that one ``[b, L, D]`` block is about 1.5 MB: the K taps, SiLU and the weight
    gradient of a block then run while it is in cache (measured 2× faster than whole-tensor passes)."""
    per_seq = x[0].numel() * x.element_size()
    return max(1, target_bytes // max(per_seq, 1))


class _CausalConvSiLUFn(torch.autograd.Function):
    """``SiLU(depthwise causal conv(x))`` on ``[B, L, D]`` with weight ``[D, K]``: K shifted multiply-adds in
    place, in the ``[B, L, D]`` layout (no transposes, no padded copy), block by block over the batch; the
    pre-activation is kept for backward."""

    @staticmethod
    def forward(ctx, x: Tensor, w: Tensor) -> Tensor:
        x = x.contiguous()
        K, L = w.shape[1], x.shape[1]
        y, out = torch.empty_like(x), torch.empty_like(x)
        bs = _block_rows(x)
        for b0 in range(0, x.shape[0], bs):
            xb, yb = x[b0:b0 + bs], y[b0:b0 + bs]
            torch.mul(xb, w[:, K - 1], out=yb)
            for j in range(1, min(K, L)):  # tap K-1-j reads x_{t-j}
                yb[:, j:].addcmul_(xb[:, :-j], w[:, K - 1 - j])
            torch.ops.aten.silu.out(yb, out=out[b0:b0 + bs])
        ctx.save_for_backward(x, w, y)
        return out

    @staticmethod
    def backward(ctx, dout: Tensor):
        x, w, y = ctx.saved_tensors
        dout = dout.contiguous()
        B, L, D = x.shape
        K = w.shape[1]
        taps = range(1, min(K, L))
        need_x, need_w = ctx.needs_input_grad[:2]
        dx = torch.empty_like(x) if need_x else None
        dw = torch.zeros(K, D, dtype=torch.promote_types(x.dtype, torch.float32), device=x.device) if need_w else None
        bs = _block_rows(x)
        dy_buf = torch.empty((min(bs, B), L, D), dtype=x.dtype, device=x.device)
        for b0 in range(0, B, bs):
            n = min(bs, B - b0)
            xb, dy = x[b0:b0 + n], dy_buf[:n]
            torch.ops.aten.silu_backward.grad_input(dout[b0:b0 + n], y[b0:b0 + n], grad_input=dy)
            if need_x:
                dxb = dx[b0:b0 + n]
                torch.mul(dy, w[:, K - 1], out=dxb)
                for j in taps:
                    dxb[:, :-j].addcmul_(dy[:, j:], w[:, K - 1 - j])
            if need_w:
                dw[K - 1] += (xb * dy).sum((0, 1), dtype=dw.dtype)
                for j in taps:
                    dw[K - 1 - j] += (xb[:, :-j] * dy[:, j:]).sum((0, 1), dtype=dw.dtype)
        return dx, (dw.t().to(w.dtype) if need_w else None)


def causal_conv_silu_ref(x: Tensor, weight: Tensor) -> Tensor:
    """Reference twin of ``_CausalConvSiLUFn``: left pad + ``F.conv1d(groups=D)`` + SiLU, weight ``[D, 1, K]``."""
    K = weight.shape[-1]
    xt = F.pad(x.transpose(1, 2), (K - 1, 0))  # left pad: causal, [B, D, L+K-1]
    return F.silu(F.conv1d(xt, weight.to(x.dtype), groups=x.shape[-1])).transpose(1, 2)


class RMSNorm(nn.Module):
    """``x / rms(x) · w`` over the last dim, computed in fp32."""

    reference = False  # True: the op-by-op twin (set by use_reference_ops)

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        if self.reference:
            return rms_norm_ref(x, self.weight, self.eps)
        return _RMSNormFn.apply(x, self.weight, self.eps)


class ShortConv(nn.Module):
    """Depthwise causal conv1d (kernel 4, no bias) followed by SiLU, on ``[B, L, D]``."""

    reference = False

    def __init__(self, dim: int, kernel_size: int = 4):
        super().__init__()
        self.kernel_size = kernel_size
        self.weight = nn.Parameter(torch.empty(dim, 1, kernel_size))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Conv1d's default init

    def forward(self, x: Tensor) -> Tensor:
        if self.reference:
            return causal_conv_silu_ref(x, self.weight)
        return _CausalConvSiLUFn.apply(x, self.weight.to(x.dtype).view(self.weight.shape[0], self.kernel_size))


def use_reference_ops(model: nn.Module, reference: bool = True) -> nn.Module:
    """Switch every module with a fast path (RMSNorm, ShortConv, DeltaNet's L2 norm, SwiGLU) to its reference
    twin, or back. The benchmark's ``reference`` path and the tests use it; the math is the same either way."""
    for m in model.modules():
        if hasattr(type(m), "reference"):
            m.reference = reference
    return model


def _split_heads(x: Tensor, num_heads: int) -> Tensor:
    B, L, _ = x.shape
    return x.view(B, L, num_heads, -1).transpose(1, 2)  # [B, H, L, d]


def _merge_heads(x: Tensor) -> Tensor:
    B, H, L, d = x.shape
    return x.transpose(1, 2).reshape(B, L, H * d)


def _l2norm(x: Tensor, eps: float = 1e-6) -> Tensor:
    """L2 normalisation in fp32 (fla PR #806: bf16-normalised keys are not unit-norm enough)."""
    return _L2NormFn.apply(x, eps)


class DeltaNet(nn.Module):
    """DeltaNet token mixer. ``rule`` is any function with ``delta_rule_chunkwise``'s signature
    ``(q, k, v, beta, chunk_size) -> (o, S)``: that is where the study's variants plug in.

    Width 128 → 2 heads of 64 (see the module docstring). Sequences whose length is not a multiple of
    ``chunk_size`` are zero-padded at the end before the rule (harmless for a causal rule) so that a rule
    written for fla's naive function, which asserts ``L % chunk_size == 0``, plugs in unchanged.
    """

    def __init__(self, dim: int = 128, num_heads: int = 2, rule: Rule = delta_rule_chunkwise,
                 chunk_size: int = CHUNK_SIZE):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.dim, self.num_heads, self.head_dim = dim, num_heads, dim // num_heads
        self.rule, self.chunk_size = rule, chunk_size
        self.qkv_proj = nn.Linear(dim, 3 * dim, bias=False)  # W_q, W_k, W_v stacked: one matmul
        self.conv = ShortConv(3 * dim)  # the three depthwise convs stacked (depthwise: channels independent)
        self.b_proj = nn.Linear(dim, num_heads, bias=False)
        self.o_norm = RMSNorm(self.head_dim)
        self.o_proj = nn.Linear(dim, dim, bias=False)

    reference = False

    def qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        q, k, v = self.conv(self.qkv_proj(x)).chunk(3, dim=-1)
        H = self.num_heads
        norm = l2norm_ref if self.reference else _l2norm
        return norm(_split_heads(q, H)), norm(_split_heads(k, H)), _split_heads(v, H)

    def run_rule(self, q: Tensor, k: Tensor, v: Tensor, beta: Tensor) -> Tensor:
        L, C = q.shape[2], self.chunk_size
        pad = (-L) % C
        if pad:
            q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
            beta = F.pad(beta, (0, pad))
        o, _ = self.rule(q, k, v, beta, C)
        return o[:, :, :L] if pad else o

    def forward(self, x: Tensor) -> Tensor:  # x: [B, L, D]
        q, k, v = self.qkv(x)  # [B, H, L, d]
        beta = torch.sigmoid(self.b_proj(x).float()).transpose(1, 2)  # [B, H, L]
        o = self.o_norm(self.run_rule(q, k, v, beta))
        return self.o_proj(_merge_heads(o).to(x.dtype))


class GatedRMSNorm(nn.Module):
    """``RMSNorm(o) · w ⊙ SiLU(gate)`` (fla's FusedRMSNormGated)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.norm = RMSNorm(dim, eps)

    def forward(self, o: Tensor, gate: Tensor) -> Tensor:
        return self.norm(o) * F.silu(gate.float()).to(o.dtype)


class GatedDeltaNet(nn.Module):
    """Gated DeltaNet token mixer: DeltaNet plus a decay ``α_t = exp(g_t)`` of the state and an output gate.

        g_t = −exp(A_log) · softplus(W_a x_t + dt_bias)         Mamba2-style log decay, g_t < 0
        y   = W_o (RMSNorm(o) ⊙ SiLU(W_g x))

    fla's initialisation: ``A = U(0, 16)``, ``A_log = log A``; ``dt`` log-uniform in [1e-3, 1e-1] (clamped at
    1e-4) and ``dt_bias = softplus⁻¹(dt)``. Width 128 → 2 heads with d_k = d_v = 64, the same state as
    ``DeltaNet`` (see the module docstring). Weight decay applies to every parameter, A_log and dt_bias
    included, as in MAD's protocol (fla's own training excludes those two).
    """

    def __init__(self, dim: int = 128, num_heads: int = 2, chunk_size: int = CHUNK_SIZE,
                 rule: Callable[..., tuple[Tensor, Tensor]] = gated_delta_rule_chunkwise):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.dim, self.num_heads, self.head_dim, self.chunk_size = dim, num_heads, dim // num_heads, chunk_size
        self.rule = rule  # gated_delta_rule_chunkwise's signature (beta=, g= keyword-only); Triton twin on CUDA
        self.qkv_proj = nn.Linear(dim, 3 * dim, bias=False)
        self.conv = ShortConv(3 * dim)
        self.b_proj = nn.Linear(dim, num_heads, bias=False)
        self.a_proj = nn.Linear(dim, num_heads, bias=False)
        self.g_proj = nn.Linear(dim, dim, bias=False)
        self.A_log = nn.Parameter(torch.empty(num_heads).uniform_(0, 16).log())
        dt = torch.exp(torch.empty(num_heads).uniform_(math.log(1e-3), math.log(1e-1))).clamp(min=1e-4)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # softplus⁻¹(dt)
        self.o_norm = GatedRMSNorm(self.head_dim)
        self.o_proj = nn.Linear(dim, dim, bias=False)

    reference = False

    def forward(self, x: Tensor) -> Tensor:  # x: [B, L, D]
        H = self.num_heads
        q, k, v = self.conv(self.qkv_proj(x)).chunk(3, dim=-1)
        norm = l2norm_ref if self.reference else _l2norm
        q, k, v = norm(_split_heads(q, H)), norm(_split_heads(k, H)), _split_heads(v, H)
        beta = torch.sigmoid(self.b_proj(x).float()).transpose(1, 2)  # [B, H, L]
        g = (-self.A_log.float().exp() * F.softplus(self.a_proj(x).float() + self.dt_bias)).transpose(1, 2)
        o, _ = self.rule(q, k, v, beta=beta, g=g, chunk_size=self.chunk_size)
        o = self.o_norm(o, _split_heads(self.g_proj(x), H))
        return self.o_proj(_merge_heads(o).to(x.dtype))
