"""deltalab: delta-rule variants (DeltaNet and its modifications) on the MAD synthetic benchmark."""
import os

# OpenMP's default busy-waiting makes a 2-thread torch process 2-6x slower whenever anything else runs on
# the machine (docs/performance.md); passive waiting costs little when it is idle. Only takes effect if
# torch has not been imported yet.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .core import delta_rule_chunkwise, delta_rule_recurrence, gated_delta_rule_chunkwise, gated_delta_rule_recurrence

__version__ = "0.1.0"
__all__ = ["delta_rule_chunkwise", "delta_rule_recurrence", "gated_delta_rule_chunkwise", "gated_delta_rule_recurrence"]
