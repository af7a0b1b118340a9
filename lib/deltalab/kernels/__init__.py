"""Triton kernels for the delta-rule family (see docs/triton.md).

``available()`` says whether they can run here (CUDA with Triton, or ``TRITON_INTERPRET=1`` on CPU);
``triton_rule_for(name)`` maps a rule name to its Triton function, or None when the rule stays on PyTorch. A
registered variant names its twin itself (``variants.Variant.triton``, one of ``KERNELS``); ``kernel(function)``
imports one. The kernel modules are imported lazily, so importing this package never needs Triton.
"""
from __future__ import annotations

import os
from typing import Callable

__all__ = [
    "available",
    "kernel",
    "triton_rule_for",
    "KERNELS",
    "delta_rule_chunkwise_triton",
    "gated_delta_rule_chunkwise_triton",
    "l2_norm_error_triton",
    "gelu_error_triton",
    "decay_state_triton",
]

# Triton function -> its module. Plain-delta-rule signature (q, k, v, beta, chunk_size, *, initial_state) except
# the gated rule's, which has the gated signature (q, k, v, *, beta, g, chunk_size, initial_state).
KERNELS: dict[str, str] = {
    "delta_rule_chunkwise_triton": "delta_rule_triton",
    "gated_delta_rule_chunkwise_triton": "gated_delta_rule_triton",
    "l2_norm_error_triton": "delta_rule_triton",
    "gelu_error_triton": "delta_rule_triton",
    "decay_state_triton": "delta_rule_triton",
}
# the twins of the core rules (deltalab.core), which are not variants; a variant's twin is its ``triton`` field
CORE_TWINS = {"delta_rule": "delta_rule_chunkwise_triton", "gated_delta_rule": "gated_delta_rule_chunkwise_triton"}


def _interpret() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0", "false", "False")


def available() -> bool:
    """True when the Triton kernels can run: triton importable and (CUDA present or TRITON_INTERPRET=1)."""
    try:
        import triton  # noqa: F401
    except Exception:
        return False
    if _interpret():
        return True
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:
        return False


def kernel(function: str) -> Callable:
    """The Triton function named ``function`` (one of ``KERNELS``), its module imported on first use."""
    if function not in KERNELS:
        raise ValueError(f"no Triton kernel {function!r}; valid: {', '.join(KERNELS)}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{KERNELS[function]}"), function)


def triton_rule_for(name: str) -> Callable | None:
    """The Triton function for a core rule's name or a registered variant's (its ``Variant.triton``), or None
    (unknown name, a rule without a Triton path, or not available)."""
    from ..variants import VARIANTS

    twin = CORE_TWINS.get(name) or (VARIANTS[name].triton if name in VARIANTS else None)
    if twin is None or not available():
        return None
    return kernel(twin)


def __getattr__(attr: str):
    if attr in KERNELS:
        return kernel(attr)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
