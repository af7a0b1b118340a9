"""What the model's own constants say about why a variant behaves as it does.

Softmax inside the chunk. The DeltaNet layer L2-normalises q and k, and the chunkwise rule scales q by d_k^-1/2,
so every intra-chunk score is q·k/√d_k ∈ [−1/√d_k, 1/√d_k] = [−1/8, 1/8] at d_k = 64. A softmax over scores
that close differs from the uniform average by at most a factor e^(2/√d_k) = e^(1/4) ≈ 1.28 between any two
weights of a row: the variants below compute a near-uniform causal average of their chunk, not a sharp lookup.
cosine_softmax and cosine_softmax_error_gated are the exception: they rescale the cosine by √d_k (logits in
[−8, 8]). Round 6's controls bracket softmax_attention: uniform_average (equal weights, inverse temperature 0) and
sharp_softmax (logits the cosines themselves, in [−1, 1]). Only softmax_attention has such controls (``CONTROLS``):
for the other rows of the family the bound on the weights holds, but no measurement says what averaging alone
does for them.
"""
from __future__ import annotations

import math

from ..layers import DeltaNet

# Variants that take a softmax of the raw scaled scores q·k/√d_k inside the chunk (see each file's docstring).
SOFTMAX_OF_SCALED_SCORES = ("softmax_attention", "local_softmax", "hybrid_softmax", "topk_softmax",
                            "adaptive_gated_softmax", "current_key_error_local_softmax")


# A row → its own controls, each differing from it only in the softmax's inverse temperature: "uniform" (τ = 0,
# equal weights: is the gain averaging?) and "sharp" (a larger τ: does sharpness add?).
CONTROLS = {"softmax_attention": {"uniform": "uniform_average", "sharp": "sharp_softmax"}}


def head_dim() -> int:
    """d_k of the study's DeltaNet layer (width 128, two heads)."""
    return DeltaNet().head_dim


def logit_bound(d_k: int) -> float:
    """The largest |q·k|/√d_k for unit-norm q and k."""
    return 1 / math.sqrt(d_k)


def weight_ratio(d_k: int) -> float:
    """The largest ratio of two weights of one softmax row over such scores: e^(2/√d_k)."""
    return math.exp(2 * logit_bound(d_k))
