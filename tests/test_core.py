"""The delta-rule core: chunkwise equals the token recurrence, and both equal fla's naive references."""
import warnings

import pytest
import torch
import torch.nn.functional as F

from deltalab.core import (
    delta_rule_chunkwise,
    delta_rule_recurrence,
    gated_delta_rule_chunkwise,
    gated_delta_rule_recurrence,
)

warnings.filterwarnings("ignore", message="Triton is not supported")


def make_inputs(B=1, H=2, L=64, dk=8, dv=6, dtype=torch.float64, seed=0, initial_state=False, gated=False):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, L, dk, generator=g, dtype=dtype)
    k = F.normalize(torch.randn(B, H, L, dk, generator=g, dtype=dtype), dim=-1)
    v = torch.randn(B, H, L, dv, generator=g, dtype=dtype)
    beta = torch.rand(B, H, L, generator=g, dtype=dtype)
    out = dict(q=q, k=k, v=v, beta=beta)
    if gated:
        out["g"] = -torch.rand(B, H, L, generator=g, dtype=dtype) * 0.5  # log decay in (-0.5, 0]
    if initial_state:
        out["initial_state"] = torch.randn(B, H, dk, dv, generator=g, dtype=dtype)
    return out


def outputs_and_grads(fn, inputs, **kwargs):
    """Run fn, then backprop a fixed random projection of (o, S); return o, S and every input's gradient."""
    leaves = {n: t.clone().requires_grad_(True) for n, t in inputs.items()}
    q, k, v = leaves["q"], leaves["k"], leaves["v"]
    rest = {n: t for n, t in leaves.items() if n not in ("q", "k", "v")}
    o, S = fn(q, k, v, **rest, **kwargs)
    g = torch.Generator().manual_seed(1)
    loss = (o * torch.randn(o.shape, generator=g, dtype=o.dtype)).sum() + (
        S * torch.randn(S.shape, generator=g, dtype=S.dtype)
    ).sum()
    loss.backward()
    return {"o": o.detach(), "S": S.detach(), **{f"d{n}": t.grad for n, t in leaves.items()}}


@pytest.mark.parametrize("initial_state", [False, True], ids=["zero_state", "initial_state"])
@pytest.mark.parametrize("chunk_size", [16, 32, 64])
@pytest.mark.parametrize("L", [63, 100, 128, 256])
def test_chunkwise_equals_recurrence_float64(L, chunk_size, initial_state):
    inputs = make_inputs(L=L, initial_state=initial_state)
    ref = outputs_and_grads(delta_rule_recurrence, inputs)
    got = outputs_and_grads(delta_rule_chunkwise, inputs, chunk_size=chunk_size)
    assert set(ref) == set(got)
    for name in ref:
        err = (ref[name] - got[name]).abs().max().item()
        assert err <= 1e-10, f"{name}: max |Δ| = {err:.3e} (L={L}, C={chunk_size})"


@pytest.mark.parametrize("initial_state", [False, True], ids=["zero_state", "initial_state"])
@pytest.mark.parametrize("chunk_size", [16, 32, 64])
@pytest.mark.parametrize("L", [63, 100, 128])
def test_gated_chunkwise_equals_recurrence_float64(L, chunk_size, initial_state):
    inputs = make_inputs(L=L, initial_state=initial_state, gated=True)
    ref = outputs_and_grads(gated_delta_rule_recurrence, inputs)
    got = outputs_and_grads(gated_delta_rule_chunkwise, inputs, chunk_size=chunk_size)
    for name in ref:
        err = (ref[name] - got[name]).abs().max().item()
        assert err <= 1e-10, f"{name}: max |Δ| = {err:.3e} (L={L}, C={chunk_size})"


@pytest.mark.parametrize("initial_state", [False, True], ids=["zero_state", "initial_state"])
def test_chunkwise_equals_fla_naive_recurrence(initial_state):
    naive = pytest.importorskip("fla.ops.delta_rule.naive")
    inputs = make_inputs(B=2, L=100, dk=16, dv=8, initial_state=initial_state)
    o_fla, S_fla = naive.delta_rule_recurrence(**inputs)  # fla computes in fp32 whatever the input dtype
    o, S = delta_rule_chunkwise(**inputs, chunk_size=32)
    assert (o - o_fla).abs().max() < 1e-5
    assert (S - S_fla).abs().max() < 1e-5


def test_chunkwise_equals_fla_naive_chunkwise_fp32():
    naive = pytest.importorskip("fla.ops.delta_rule.naive")
    inputs = make_inputs(B=2, L=128, dk=16, dv=8, dtype=torch.float32)
    o_fla, S_fla = naive.delta_rule_chunkwise(**inputs, chunk_size=32)
    o, S = delta_rule_chunkwise(**inputs, chunk_size=32)
    assert (o - o_fla).abs().max() < 1e-4
    assert (S - S_fla).abs().max() < 1e-4


@pytest.mark.parametrize("initial_state", [False, True], ids=["zero_state", "initial_state"])
def test_gated_equals_fla_naive_recurrent(initial_state):
    naive = pytest.importorskip("fla.ops.gated_delta_rule.naive")
    inputs = make_inputs(B=2, L=100, dk=16, dv=8, gated=True, initial_state=initial_state)
    seq_first = lambda x: x.transpose(1, 2)  # fla's gated references are [B, T, H, D]
    o_fla, S_fla = naive.naive_recurrent_gated_delta_rule(
        seq_first(inputs["q"]), seq_first(inputs["k"]), seq_first(inputs["v"]),
        seq_first(inputs["beta"]), seq_first(inputs["g"]),
        initial_state=inputs.get("initial_state"), output_final_state=True,
    )
    o, S = gated_delta_rule_chunkwise(**inputs, chunk_size=32)
    assert (o - seq_first(o_fla)).abs().max() < 1e-5
    assert (S - S_fla).abs().max() < 1e-5


def test_gated_with_zero_decay_is_the_delta_rule():
    inputs = make_inputs(L=96, gated=True)
    g = inputs.pop("g")
    o_gated, S_gated = gated_delta_rule_chunkwise(**inputs, g=torch.zeros_like(g))
    o, S = delta_rule_chunkwise(**inputs)
    assert torch.allclose(o, o_gated, atol=1e-12) and torch.allclose(S, S_gated, atol=1e-12)


def test_bf16_autocast_finite_with_fp32_state():
    inputs = make_inputs(B=2, L=100, dk=32, dv=32, dtype=torch.float32)
    leaves = {n: t.clone().requires_grad_(True) for n, t in inputs.items()}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        o, S = delta_rule_chunkwise(**leaves)
    assert S.dtype == torch.float32
    (o.float().sum() + S.sum()).backward()
    assert torch.isfinite(o).all() and torch.isfinite(S).all()
    assert all(torch.isfinite(t.grad).all() for t in leaves.values())
    o_ref, _ = delta_rule_chunkwise(**inputs)
    rel = ((o.float() - o_ref).norm() / o_ref.norm()).item()
    assert rel < 0.05, f"bf16 autocast output deviates by {rel:.3f} (relative) from fp32"


def test_bad_shapes_raise_clear_errors():
    inputs = make_inputs(L=32)
    with pytest.raises(ValueError, match="beta must be"):
        delta_rule_chunkwise(inputs["q"], inputs["k"], inputs["v"], inputs["beta"][..., :-1])
    with pytest.raises(ValueError, match="initial_state must be"):
        delta_rule_chunkwise(**inputs, initial_state=torch.zeros(1, 2, 3, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="g \\(log decay\\) must be"):
        gated_delta_rule_chunkwise(**inputs, g=torch.zeros(1, 2, 31, dtype=torch.float64))
    with pytest.raises(TypeError):  # beta and g are keyword-only: they cannot be swapped by position
        gated_delta_rule_chunkwise(inputs["q"], inputs["k"], inputs["v"], inputs["beta"], inputs["beta"])
