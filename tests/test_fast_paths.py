"""Every fast path against its reference twin (values and gradients); see docs/performance.md."""
import warnings

import pytest
import torch
import torch.nn.functional as F

from deltalab.core import chunk_preamble, delta_rule_chunkwise
from deltalab.core.delta_rule import (
    _unit_lower_inverse,
    delta_rule_chunkwise_ref,
    ut_transform,
    ut_transform_ref,
)
from deltalab.layers import (
    DeltaNet,
    GatedDeltaNet,
    RMSNorm,
    ShortConv,
    _L2NormFn,
    l2norm_ref,
    use_reference_ops,
)
from deltalab.model import LanguageModel, SwiGLU
from deltalab.variants import VARIANTS

warnings.filterwarnings("ignore", message="Triton is not supported")


def _grads(fn, inputs, seed=1):
    leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
    out = fn(*leaves)
    outs = out if isinstance(out, tuple) else (out,)
    g = torch.Generator().manual_seed(seed)
    loss = sum((o * torch.randn(o.shape, generator=g, dtype=o.dtype)).sum() for o in outs)
    loss.backward()
    return [o.detach() for o in outs] + [t.grad for t in leaves]


def _max_err(a, b):
    """Largest |Δ| over paired tensors; a missing gradient (None) counts as zeros."""
    zero = lambda x, y: torch.zeros_like(y if x is None else x) if x is None else x  # noqa: E731
    return max((zero(x, y) - zero(y, x)).abs().max().item() for x, y in zip(a, b))


@pytest.mark.parametrize("C", [1, 2, 16, 20, 32, 64])
def test_unit_lower_inverse_is_the_inverse(C):
    g = torch.Generator().manual_seed(0)
    k = F.normalize(torch.randn(3, 2, C, 16, generator=g, dtype=torch.float64), dim=-1)
    beta = torch.rand(3, 2, C, 1, generator=g, dtype=torch.float64)
    G = (beta * k) @ k.mT
    T = _unit_lower_inverse(G)
    eye = torch.eye(C, dtype=torch.float64)
    assert (T @ (torch.tril(G, -1) + eye) - eye).abs().max() < 1e-12
    assert torch.equal(T, torch.tril(T))  # lower triangular, unit diagonal
    assert torch.equal(T.diagonal(dim1=-2, dim2=-1), torch.ones(3, 2, C, dtype=torch.float64))


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-4)])
def test_ut_transform_equals_solve_triangular(dtype, tol):
    g = torch.Generator().manual_seed(0)
    k = F.normalize(torch.randn(2, 2, 4, 32, 16, generator=g, dtype=dtype), dim=-1)
    beta = torch.rand(2, 2, 4, 32, 1, generator=g, dtype=dtype)
    fast = _grads(lambda kk, bb: ut_transform(kk * bb, kk), [k, beta])
    ref = _grads(lambda kk, bb: ut_transform_ref(kk * bb, kk), [k, beta])
    assert _max_err(fast, ref) < tol


def _rule_inputs(B=2, H=2, L=100, dk=16, dv=8, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, L, dk, generator=g, dtype=dtype)
    k = F.normalize(torch.randn(B, H, L, dk, generator=g, dtype=dtype), dim=-1)
    v = torch.randn(B, H, L, dv, generator=g, dtype=dtype)
    beta = torch.rand(B, H, L, generator=g, dtype=dtype)
    S0 = torch.randn(B, H, dk, dv, generator=g, dtype=dtype)
    return q, k, v, beta, S0


@pytest.mark.parametrize("L,C", [(100, 32), (128, 32), (64, 16), (20, 32), (96, 64)])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-11), (torch.float32, 2e-4)])
def test_chunk_loop_equals_reference_loop(L, C, dtype, tol):
    ins = _rule_inputs(L=L, dtype=dtype)
    fast = _grads(lambda q, k, v, b, s: delta_rule_chunkwise(q, k, v, b, C, initial_state=s), ins)
    ref = _grads(lambda q, k, v, b, s: delta_rule_chunkwise_ref(q, k, v, b, C, initial_state=s), ins)
    assert _max_err(fast, ref) < tol


def test_chunk_loop_without_output_gradient():
    """Only the final state is used: the loop's backward gets no dO."""
    ins = _rule_inputs(L=64)
    fast = _grads(lambda q, k, v, b, s: delta_rule_chunkwise(q, k, v, b, 32, initial_state=s)[1], ins)
    ref = _grads(lambda q, k, v, b, s: delta_rule_chunkwise_ref(q, k, v, b, 32, initial_state=s)[1], ins)
    assert _max_err(fast, ref) < 1e-11


def test_chunk_preamble_fields_are_chunk_major_views_and_inputs_untouched():
    q, k, v, beta, _ = _rule_inputs(L=32)  # one chunk: the chunk-major copy must still be a copy
    before = [t.clone() for t in (q, k, v, beta)]
    c = chunk_preamble(q, k, v, beta, 32)
    for t, b in zip((q, k, v, beta), before):
        assert torch.equal(t, b)
    c = chunk_preamble(*_rule_inputs(L=96)[:4], 32)
    assert c.q.shape == (2, 2, 3, 32, 16) and c.u.shape == (2, 2, 3, 32, 8)
    assert c.q[:, :, 1].is_contiguous() and c.w[:, :, 2].is_contiguous()


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_causal_conv_silu_equals_conv1d(dtype, tol):
    torch.manual_seed(0)
    conv = ShortConv(24).to(dtype)
    x = torch.randn(37, 9, 24, dtype=dtype)  # odd batch: a partial last block

    def run(ref):
        use_reference_ops(conv, ref)
        conv.zero_grad()
        out = _grads(conv, [x])
        return out + [conv.weight.grad.clone()]

    assert _max_err(run(False), run(True)) < tol


def test_causal_conv_silu_short_sequences():
    torch.manual_seed(0)
    conv = ShortConv(8).double()
    for L in (1, 2, 3):
        x = torch.randn(2, L, 8, dtype=torch.float64)
        use_reference_ops(conv, True)
        ref = conv(x)
        use_reference_ops(conv, False)
        assert torch.allclose(conv(x), ref, atol=1e-12)


def test_rms_norm_and_l2_norm_equal_references():
    torch.manual_seed(0)
    norm = RMSNorm(64)
    norm.weight.data.uniform_(0.5, 1.5)
    x = torch.randn(4, 2, 50, 64) * 3

    def run(ref):
        use_reference_ops(norm, ref)
        norm.zero_grad()
        return _grads(norm, [x]) + [norm.weight.grad.clone()]

    assert _max_err(run(False), run(True)) < 2e-5
    xt = torch.randn(3, 40, 2, 16).transpose(1, 2)  # a head view, as the layers pass it
    assert _max_err(_grads(lambda t: _L2NormFn.apply(t, 1e-6), [xt]), _grads(l2norm_ref, [xt])) < 2e-6


def test_swiglu_equals_reference():
    torch.manual_seed(0)
    mlp = SwiGLU(32).double()
    x = torch.randn(3, 10, 32, dtype=torch.float64)

    def run(ref):
        use_reference_ops(mlp, ref)
        mlp.zero_grad()
        return _grads(mlp, [x]) + [p.grad.clone() for p in mlp.parameters()]

    assert _max_err(run(False), run(True)) < 1e-12


@pytest.mark.parametrize("mixer", [DeltaNet, GatedDeltaNet])
def test_model_fast_equals_reference_ops(mixer):
    """The whole LanguageModel with every fast path against the op-by-op twins (fp32 norms: fp32 tolerance)."""
    torch.manual_seed(0)
    model = LanguageModel(16, mixer)
    x = torch.randint(0, 16, (3, 70))

    def run(ref):
        use_reference_ops(model, ref)
        model.zero_grad()
        logits = model(x)
        (logits * torch.linspace(-1, 1, logits.numel()).view_as(logits)).sum().backward()
        return [logits.detach()] + [p.grad.clone() for p in model.parameters()]

    fast, ref = run(False), run(True)
    for a, b in zip(fast, ref):
        assert (a - b).abs().max() <= 1e-4 * (1 + b.abs().max())


def test_reference_ops_flag_reaches_every_fast_module():
    model = use_reference_ops(LanguageModel(16, DeltaNet))
    flagged = [m for m in model.modules() if hasattr(type(m), "reference")]
    assert flagged and all(m.reference for m in flagged)
    assert {type(m).__name__ for m in flagged} >= {"RMSNorm", "ShortConv", "DeltaNet", "SwiGLU"}


@pytest.mark.parametrize("L,C", [(100, 32), (128, 32), (63, 16), (20, 32)])
@pytest.mark.parametrize("initial_state", [False, True])
def test_gated_chunk_loop_equals_reference_loop(L, C, initial_state):
    from deltalab.core.gated_delta_rule import gated_delta_rule_chunkwise, gated_delta_rule_chunkwise_ref

    q, k, v, beta, S0 = _rule_inputs(L=L)
    g = -torch.rand(beta.shape, generator=torch.Generator().manual_seed(3), dtype=beta.dtype) * 0.7
    ins = [q, k, v, beta, g] + ([S0] if initial_state else [])

    def call(fn):
        return lambda q, k, v, b, g, *s: fn(q, k, v, beta=b, g=g, chunk_size=C, initial_state=s[0] if s else None)

    assert _max_err(_grads(call(gated_delta_rule_chunkwise), ins), _grads(call(gated_delta_rule_chunkwise_ref), ins)) < 1e-11


@pytest.mark.parametrize("name", [n for n, v in VARIANTS.items() if v.rule is not None])
def test_chunk_fields_equal_plain_tensors_for_every_rule(name, monkeypatch):
    """``ChunkField``: reading chunk i as one of the views of one unbind gives every rule the same outputs and
    gradients, bit for bit, as plain tensors (whose chunk reads are selects), at three chunks with padding."""
    from deltalab.core import delta_rule

    inputs = _rule_inputs(L=80, dtype=torch.float32)[:4]
    fast = _grads(VARIANTS[name].rule, inputs)
    monkeypatch.setattr(delta_rule, "CHUNK_FIELDS", False)
    plain = _grads(VARIANTS[name].rule, inputs)
    assert chunk_preamble(*inputs).q.__class__ is torch.Tensor  # the twin really ran on plain tensors
    for a, b in zip(fast, plain):
        assert (a is None and b is None) or torch.equal(a, b)


def test_a_chunk_field_is_a_tensor_except_for_reading_one_chunk():
    from deltalab.core.delta_rule import ChunkField

    c = chunk_preamble(*_rule_inputs(L=96)[:4], 32)
    assert isinstance(c.q, ChunkField) and type(c.q * 2) is torch.Tensor and type(c.q[:, :, 1]) is torch.Tensor
    assert c.q[:, :, 1] is c.q[:, :, 1]  # one unbind, read many times
    assert torch.equal(c.q[:, :, -1], c.q.unbind(2)[-1]) and torch.equal(c.beta[:, :, 2], c.beta.unbind(2)[2])
    assert torch.equal(c.q[:, :, 0:2], torch.stack(c.q.unbind(2)[:2], dim=2))  # any other index: plain indexing
    assert torch.equal(c.q[0], c.q.unbind(0)[0])
