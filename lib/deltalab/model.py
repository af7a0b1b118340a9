"""The MAD backbones (docs/mad.md §3): a 4-layer language model and the
auto-encoder used for compression.

    LanguageModel:  h = Embed(x);  h = h + f_i(RMSNorm_i(h)) for f in [mixer, SwiGLU, mixer, SwiGLU];
                    logits = W_head RMSNorm_f(h)                      (untied head, no positions)
    AutoEncoder:    the same stack encodes x; z = h[:, -1] (the last position);
                    logits_i = W_head norm(MLP(z + sincos_i))         for every position i

"4layer" in the seed tables' row names is this 4-layer stack: two token mixers, two SwiGLUs, width 128.
Both pad the token sequence once, at the input, to a multiple of the mixers' chunk size (the padding
sits after the last real token, so a causal stack's real outputs cannot see it), and cut it off again.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .layers import RMSNorm


def swiglu_hidden(dim: int) -> int:
    """MAD's SwiGLU inner width: ``int(8d/3)`` rounded up to a multiple of 16 (352 for d = 128)."""
    return 16 * math.ceil(int(8 * dim / 3) / 16)


class _SwiGLUActFn(torch.autograd.Function):
    """``SiLU(a) ⊙ b`` for ``[a | b] = h`` (the stacked W1, W2 projection). The backward writes ``da`` and ``db``
    straight into the two halves of one gradient (no ``cat``) and recomputes SiLU(a) instead of storing it."""

    @staticmethod
    def forward(ctx, h: Tensor) -> Tensor:
        a, b = h.chunk(2, dim=-1)
        ctx.save_for_backward(h)
        return F.silu(a).mul_(b)

    @staticmethod
    def backward(ctx, dout: Tensor) -> Tensor:
        (h,) = ctx.saved_tensors
        a, b = h.chunk(2, dim=-1)
        dh = torch.empty_like(h)
        da, db = dh.chunk(2, dim=-1)
        torch.mul(F.silu(a), dout, out=db)
        torch.ops.aten.silu_backward.grad_input(dout * b, a, grad_input=da)
        return dh


def swiglu_act_ref(h: Tensor) -> Tensor:
    """Reference twin of ``_SwiGLUActFn``."""
    a, b = h.chunk(2, dim=-1)
    return F.silu(a) * b


class SwiGLU(nn.Module):
    """``W3(SiLU(W1 x) ⊙ W2 x)`` without biases."""

    reference = False  # True: the op-by-op activation (layers.use_reference_ops)

    def __init__(self, dim: int = 128, hidden: int | None = None):
        super().__init__()
        hidden = hidden or swiglu_hidden(dim)
        self.w12 = nn.Linear(dim, 2 * hidden, bias=False)  # W1 and W2 stacked: one matmul
        self.w3 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        h = self.w12(x)
        return self.w3(swiglu_act_ref(h) if self.reference else _SwiGLUActFn.apply(h))


class Backbone(nn.Module):
    """Pre-norm residual stack ``[mixer, SwiGLU] × n_blocks`` with a final RMSNorm."""

    def __init__(self, dim: int, make_mixer: Callable[[], nn.Module], n_blocks: int = 2):
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(n_blocks):
            layers += [make_mixer(), SwiGLU(dim)]
        self.layers = nn.ModuleList(layers)
        self.norms = nn.ModuleList(RMSNorm(dim) for _ in layers)
        self.norm_f = RMSNorm(dim)

    def forward(self, h: Tensor, rows: Tensor | None = None) -> Tensor:
        """``h [B, L, D]`` → ``[B, L, D]``; with ``rows`` (indices into the flattened ``B·L`` positions) the last
        layer (a SwiGLU: position-wise) and the final norm run at those positions only → ``[len(rows), D]``."""
        last = len(self.layers) - 1 if rows is not None else len(self.layers)
        for norm, layer in zip(self.norms[:last], self.layers[:last]):
            h = h + layer(norm(h))
        if rows is not None:
            if not isinstance(self.layers[last], SwiGLU):
                raise TypeError(f"scored rows need a position-wise last layer; got {type(self.layers[last]).__name__}")
            h = h.reshape(-1, h.shape[-1]).index_select(0, rows)
            h = h + self.layers[last](self.norms[last](h))
        return self.norm_f(h)


def _pad_tokens(x: Tensor, multiple: int) -> Tensor:
    pad = (-x.shape[1]) % multiple
    return F.pad(x, (0, pad)) if pad else x


class LanguageModel(nn.Module):
    """MAD's LanguageModel: ``(B, T)`` int64 tokens → ``(B, T, V)`` logits."""

    takes_scored = True  # forward(x, scored) returns the scored positions' logits alone (deltalab.train uses it)

    def __init__(self, vocab_size: int, make_mixer: Callable[[], nn.Module], dim: int = 128, pad_multiple: int = 32):
        super().__init__()
        self.vocab_size, self.pad_multiple = vocab_size, pad_multiple
        self.embed = nn.Embedding(vocab_size, dim)
        nn.init.normal_(self.embed.weight, std=0.02)  # MAD: Embedding ~ N(0, 0.02), Linear layers keep PyTorch's init
        self.backbone = Backbone(dim, make_mixer)
        self.head = nn.Linear(dim, vocab_size, bias=False)

    def forward(self, x: Tensor, scored: Tensor | None = None) -> Tensor:
        """``(B, T)`` tokens → ``(B, T, V)`` logits, or with ``scored`` (bool ``[B, T]``) the logits of the scored
        positions alone, ``[n, V]`` in row-major order (``logits[scored]`` of the full pass). The last SwiGLU,
        the final norm and the head are position-wise, so they then run at those rows only; every scored logit
        and every gradient is the same sum as in the full pass (an unscored position's gradient there is
        exactly zero), added up over fewer rows."""
        T = x.shape[1]
        xp = _pad_tokens(x, self.pad_multiple)
        rows = None if scored is None else _scored_rows(scored, x.shape, xp.shape[1])
        h = self.backbone(self.embed(xp), rows)
        if rows is not None:
            return self.head(h)
        return self.head(h[:, :T] if h.shape[1] != T else h)


def _scored_rows(scored: Tensor, shape: torch.Size, padded_length: int) -> Tensor:
    """Indices of the scored positions in the flattened ``[B · padded_length]`` positions, row-major."""
    if scored.shape != shape or scored.dtype != torch.bool:
        raise ValueError(f"scored must be a bool mask of the tokens' shape {tuple(shape)}; "
                         f"got {scored.dtype} {tuple(scored.shape)}")
    pos = scored.nonzero()
    return pos[:, 0] * padded_length + pos[:, 1]


def sincos_positions(length: int, dim: int) -> Tensor:
    """Transformer sinusoidal position table ``[length, dim]``."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2], table[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
    return table


class AutoEncoder(nn.Module):
    """MAD's AutoEncoder for compression: encode the sequence, keep the last position, decode every position
    from it plus a sinusoidal position code through a fixed non-expanding MLP. All Linear weights are
    re-initialised N(0, 0.02), as MAD's AutoEncoder does."""

    takes_scored = True

    def __init__(self, vocab_size: int, make_mixer: Callable[[], nn.Module], dim: int = 128, max_length: int = 4096,
                 pad_multiple: int = 32):
        super().__init__()
        self.vocab_size, self.pad_multiple = vocab_size, pad_multiple
        self.embed = nn.Embedding(vocab_size, dim)
        self.encoder = Backbone(dim, make_mixer)
        self.decoder = nn.Sequential(
            RMSNorm(dim), nn.Linear(dim, dim), nn.GELU(), RMSNorm(dim), nn.Linear(dim, dim), nn.GELU(), RMSNorm(dim)
        )
        self.head = nn.Linear(dim, vocab_size)
        self.register_buffer("positions", sincos_positions(max_length, dim), persistent=False)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
                if getattr(m, "bias", None) is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: Tensor, scored: Tensor | None = None) -> Tensor:
        """``(B, T)`` → ``(B, T, V)``; with ``scored`` the logits of those positions alone, ``[n, V]`` (the decoder
        is position-wise, so it then runs at those positions only; see ``LanguageModel.forward``)."""
        B, T = x.shape
        if T > self.positions.shape[0]:
            raise ValueError(f"sequence length {T} exceeds the AutoEncoder's max_length {self.positions.shape[0]}")
        h = self.encoder(self.embed(_pad_tokens(x, self.pad_multiple)))
        z = h[:, T - 1, None, :] + self.positions[:T].to(h.dtype)  # [B, T, D]: last real position + position i
        if scored is not None:
            z = z.reshape(B * T, -1).index_select(0, _scored_rows(scored, x.shape, T))
        return self.head(self.decoder(z))


def build_model(backbone: str, vocab_size: int, make_mixer: Callable[[], nn.Module], dim: int = 128,
                max_length: int = 4096) -> nn.Module:
    """``backbone`` is "lm" (LanguageModel) or "autoencoder" (AutoEncoder, for compression)."""
    if backbone == "lm":
        return LanguageModel(vocab_size, make_mixer, dim)
    if backbone == "autoencoder":
        return AutoEncoder(vocab_size, make_mixer, dim, max_length=max_length)
    raise ValueError(f"unknown backbone {backbone!r}; valid: 'lm', 'autoencoder'")
