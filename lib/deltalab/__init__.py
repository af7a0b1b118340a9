"""deltalab: delta-rule variants (DeltaNet and its modifications) on the MAD synthetic benchmark."""
from .core import delta_rule_chunkwise, delta_rule_recurrence, gated_delta_rule_chunkwise, gated_delta_rule_recurrence

__version__ = "0.1.0"
__all__ = ["delta_rule_chunkwise", "delta_rule_recurrence", "gated_delta_rule_chunkwise", "gated_delta_rule_recurrence"]
