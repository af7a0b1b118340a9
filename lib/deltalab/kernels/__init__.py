"""Triton kernels for the delta-rule family (see docs/triton.md).

``available()`` says whether they can run here (CUDA with Triton, or ``TRITON_INTERPRET=1`` on CPU);
``triton_rule_for(name)`` maps a rule name to its Triton function, or None when the rule stays on PyTorch.
The kernel modules are imported lazily, so importing this package never needs Triton.
"""
from __future__ import annotations

import os
from typing import Callable

__all__ = [
    "available",
    "triton_rule_for",
    "TRITON_RULES",
    "delta_rule_chunkwise_triton",
    "gated_delta_rule_chunkwise_triton",
    "l2_norm_error_triton",
    "gelu_error_triton",
    "decay_state_triton",
]

# rule name -> (module, function). Plain-delta-rule signature (q, k, v, beta, chunk_size, *, initial_state)
# except the gated rule, which has the gated signature (q, k, v, *, beta, g, chunk_size, initial_state).
TRITON_RULES: dict[str, tuple[str, str]] = {
    "delta_rule": ("delta_rule_triton", "delta_rule_chunkwise_triton"),
    "delta_net": ("delta_rule_triton", "delta_rule_chunkwise_triton"),
    "gated_delta_rule": ("gated_delta_rule_triton", "gated_delta_rule_chunkwise_triton"),
    "gated_delta_net": ("gated_delta_rule_triton", "gated_delta_rule_chunkwise_triton"),
    "l2_norm_error": ("delta_rule_triton", "l2_norm_error_triton"),
    "gelu_error": ("delta_rule_triton", "gelu_error_triton"),
    "decay_state": ("delta_rule_triton", "decay_state_triton"),
}


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


def triton_rule_for(name: str) -> Callable | None:
    """The Triton function for a rule name, or None (unknown rule, rule without a Triton path, or not available)."""
    entry = TRITON_RULES.get(name)
    if entry is None or not available():
        return None
    import importlib

    mod = importlib.import_module(f"{__name__}.{entry[0]}")
    return getattr(mod, entry[1])


def __getattr__(attr: str):
    for mod_name, fn in TRITON_RULES.values():
        if fn == attr:
            import importlib

            return getattr(importlib.import_module(f"{__name__}.{mod_name}"), fn)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
