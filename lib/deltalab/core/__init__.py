"""The delta-rule core: token recurrences (the spec) and chunkwise forms, head-first ``[B, H, L, D]``."""
from .delta_rule import (
    Chunks,
    causal_mask,
    chunk_epilogue,
    chunk_preamble,
    delta_rule_chunkwise,
    delta_rule_recurrence,
    initial_state_or_zeros,
    ut_transform,
)
from .gated_delta_rule import gated_delta_rule_chunkwise, gated_delta_rule_recurrence

__all__ = [
    "Chunks",
    "causal_mask",
    "chunk_epilogue",
    "chunk_preamble",
    "delta_rule_chunkwise",
    "delta_rule_recurrence",
    "gated_delta_rule_chunkwise",
    "gated_delta_rule_recurrence",
    "initial_state_or_zeros",
    "ut_transform",
]
