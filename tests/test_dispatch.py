"""On CUDA a run uses a variant's Triton twin; elsewhere the PyTorch rule. The layers accept either."""
import os

import pytest
import torch

from deltalab.layers import DeltaNet, GatedDeltaNet
from deltalab.train import fast_rule
from deltalab.variants import VARIANTS

kernels = pytest.importorskip("deltalab.kernels")
needs_triton = pytest.mark.skipif(not kernels.available(), reason="needs CUDA or TRITON_INTERPRET=1")


def test_a_variant_names_its_triton_twin_in_its_record():
    twins = {v.name: v.triton for v in VARIANTS.values() if v.triton is not None}
    assert twins == {"delta_net": "delta_rule_chunkwise_triton", "gated_delta_net": "gated_delta_rule_chunkwise_triton",
                     "l2_norm_error": "l2_norm_error_triton", "gelu_error": "gelu_error_triton",
                     "decay_state": "decay_state_triton"}
    assert set(twins.values()) <= set(kernels.KERNELS)
    with pytest.raises(ValueError, match="no Triton kernel 'nope'; valid: delta_rule_chunkwise_triton"):
        kernels.kernel("nope")


def test_cpu_runs_use_pytorch():
    for v in VARIANTS.values():
        assert fast_rule(v, torch.device("cpu")) == (v.rule, "pytorch")


@needs_triton
@pytest.mark.parametrize("name", ["delta_net", "gated_delta_net", "l2_norm_error", "softmax_attention"])
def test_cuda_runs_use_the_triton_twin_where_there_is_one(name):
    rule, backend = fast_rule(VARIANTS[name], torch.device("cuda"))
    twin = kernels.triton_rule_for(name)
    assert (backend == "triton") == (twin is not None)
    assert rule is (twin if twin is not None else VARIANTS[name].rule)
    if name in ("delta_net", "gated_delta_net", "l2_norm_error"):
        assert backend == "triton"


@needs_triton
@pytest.mark.skipif(torch.cuda.is_available(), reason="the interpreter path is the CPU check")
@pytest.mark.parametrize("layer, twin", [(DeltaNet, "delta_net"), (GatedDeltaNet, "gated_delta_net")])
def test_layer_with_triton_rule_matches_pytorch(layer, twin):
    torch.manual_seed(0)
    reference = layer(dim=32, num_heads=2, chunk_size=16)
    fast = layer(dim=32, num_heads=2, chunk_size=16, rule=kernels.triton_rule_for(twin))
    fast.load_state_dict(reference.state_dict())
    x = torch.randn(2, 40, 32)
    y_ref, y = reference(x), fast(x)
    rel = ((y - y_ref).norm() / y_ref.norm()).item()
    assert rel < 1e-4, f"relative error {rel:.2e}"
