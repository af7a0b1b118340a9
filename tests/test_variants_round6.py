"""Round 6's variants against their math: the uniform control is a causal prefix mean, the sharp softmax is the
softmax family's pass at another inverse temperature (softmax_attention at d_k^-1/2, cosine_softmax at √d_k,
uniform_average at 0), the full two-stage step is its formula at γ = 1, and each combination is its two parents
(limits, shared state trajectories, the extra term). Registry-wide checks (validity, signature, labels) are in
test_variants.py."""
import math

import pytest
import torch

from deltalab.core import delta_rule_chunkwise
from deltalab.variants import (
    VARIANTS, cosine_softmax, current_key_error, current_key_error_local_softmax, decay_state, get_variant,
    local_softmax, rope_qk, sharp_softmax, softmax_attention, topk_error, topk_error_decay, topk_error_rope,
    uniform_average,
)
from deltalab.variants.check import one_thread, random_inputs
from test_variants import assert_close, check_against, chunk_output, inputs64, token_errors


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with one_thread():
        yield


def test_uniform_average_is_the_causal_prefix_mean_of_the_chunk():
    def step(S, q, k, v, beta, st):
        E = token_errors(S, k, v, beta)  # the corrected values U'_i, token by token
        mean = E.cumsum(dim=2) / torch.arange(1, E.shape[2] + 1, dtype=E.dtype)[:, None]  # mean of e_s, s ≤ t
        o = torch.einsum("bhkv,bhck->bhcv", S, q) + mean
        return o, S + torch.einsum("bhck,bhcv->bhkv", k, E), st

    check_against(uniform_average.delta_rule_chunkwise, step)


def test_uniform_average_ignores_the_query_within_a_first_chunk():
    q, k, v, beta = inputs64(L=16)
    o = uniform_average.delta_rule_chunkwise(q, k, v, beta, 16)[0]
    assert_close(uniform_average.delta_rule_chunkwise(q.flip(-1), k, v, beta, 16)[0], o, 1e-12, "o")


def test_sharp_softmax_at_one_over_root_dk_is_softmax_attention():
    x = inputs64()
    d = x[0].shape[-1]
    o, S = sharp_softmax.delta_rule_chunkwise(*x, 16, inverse_temperature=d**-0.5)
    o_ref, S_ref = softmax_attention.delta_rule_chunkwise(*x, 16)
    assert_close(o, o_ref, 1e-12, "o")
    assert_close(S, S_ref, 1e-12, "S")


def test_sharp_softmax_ladder_ends_are_uniform_average_and_cosine_softmax():
    """τ = 0 is the uniform control; τ = √d_k on unit-norm q, k is cosine_softmax's √d_k · cos(q, k)."""
    x = inputs64()
    d = x[0].shape[-1]
    assert_close(sharp_softmax.delta_rule_chunkwise(*x, 16, inverse_temperature=0.0)[0],
                 uniform_average.delta_rule_chunkwise(*x, 16)[0], 1e-12, "τ = 0")
    assert_close(sharp_softmax.delta_rule_chunkwise(*x, 16, inverse_temperature=d**0.5)[0],
                 cosine_softmax.delta_rule_chunkwise(*x, 16)[0], 1e-10, "τ = √d_k")


def test_sharp_softmax_weights_are_a_softmax_of_the_cosines():
    def step(S, q, k, v, beta, st):
        E = token_errors(S, k, v, beta)
        logits = (q * q.shape[-1] ** 0.5) @ k.mT  # q arrives scaled by d^-1/2: undo it, τ = 1
        P = logits.masked_fill(~torch.ones_like(logits, dtype=torch.bool).tril(), -math.inf).softmax(-1)
        return torch.einsum("bhkv,bhck->bhcv", S, q) + P @ E, S + torch.einsum("bhck,bhcv->bhkv", k, E), st

    check_against(sharp_softmax.delta_rule_chunkwise, step)
    q, k = random_inputs(64)[:2]  # unit-norm q, k: logits in [−1, 1], so weights within e² of each other
    logits = q @ k.mT
    assert logits.abs().max() <= 1 + 1e-6


def test_two_stage_error_full_step_is_its_formula_at_gamma_one():
    def step(S, q, k, v, beta, st):
        E1 = token_errors(S, k, v, beta)  # Δ₁ = kᵀ(v̂ − S·k), written token by token
        S1 = S + torch.einsum("bhck,bhcv->bhkv", k, E1)
        D2 = torch.einsum("bhck,bhcv->bhkv", k, token_errors(S1, k, v, beta))  # Δ₂ from S₁
        return chunk_output(S, q, k, E1), S1 + D2, st  # S = S₁ + Δ₂: the full step

    check_against(VARIANTS["two_stage_error_full"].rule, step)


@pytest.mark.parametrize("name, ratio", [("topk_error_r0125", 0.125), ("topk_error_r05", 0.5)])
def test_topk_ratio_sweep_keeps_the_stated_rows_in_the_write(name, ratio):
    """The chunk's state write uses exactly ⌈ratio · C⌉ rows of U'_i: with one chunk from S = 0 and orthonormal
    keys, S = Kᵀ(m ⊙ U') has exactly that many non-zero rows in the key basis."""
    C = 16
    q, k, v, beta = random_inputs(C, dtype=torch.float64)
    k = torch.linalg.qr(torch.randn(2, 2, C, C, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))[0]
    S = VARIANTS[name].rule(q, k, v, beta, C)[1]
    rows = (k @ S).abs().amax(-1) > 1e-9  # row s of K S is the written error of token s
    assert (rows.sum(-1) == math.ceil(ratio * C)).all()


def test_a_user_file_runs_another_ratio_as_the_docstring_says(tmp_path):
    path = tmp_path / "topk_error_r0125_mine.py"
    path.write_text("from deltalab.variants.topk_error import delta_rule_chunkwise as topk_error\n\n\n"
                    "def delta_rule_chunkwise(q, k, v, beta, chunk_size=32):\n"
                    "    return topk_error(q, k, v, beta, chunk_size, ratio=0.125)\n")
    x = random_inputs(64)
    assert torch.equal(get_variant(path).rule(*x, 32)[0], VARIANTS["topk_error_r0125"].rule(*x, 32)[0])


def test_topk_error_decay_is_its_two_parents():
    x = inputs64()
    for got, want, what in (
        (topk_error_decay.delta_rule_chunkwise(*x, 16, decay=1.0), topk_error.delta_rule_chunkwise(*x, 16), "λ = 1"),
        (topk_error_decay.delta_rule_chunkwise(*x, 16, ratio=1.0), decay_state.delta_rule_chunkwise(*x, 16), "ratio = 1"),
    ):
        assert_close(got[0], want[0], 1e-12, f"o, {what}")
        assert_close(got[1], want[1], 1e-12, f"S, {what}")
    one = inputs64(L=16)  # one chunk: the decay only reaches the returned state
    o, S = topk_error_decay.delta_rule_chunkwise(*one, 16)
    o_ref, S_ref = topk_error.delta_rule_chunkwise(*one, 16)
    assert_close(o, o_ref, 1e-12, "o, one chunk")
    assert_close(S, decay_state.DECAY * S_ref, 1e-12, "S, one chunk")


def test_topk_error_rope_is_its_two_parents():
    x = inputs64()
    o, S = topk_error_rope.delta_rule_chunkwise(*x, 16, ratio=1.0)
    o_ref, S_ref = rope_qk.delta_rule_chunkwise(*x, 16)
    assert_close(o, o_ref, 1e-12, "o, ratio = 1")
    assert_close(S, S_ref, 1e-12, "S, ratio = 1")
    o, S = topk_error_rope.delta_rule_chunkwise(*x, 16)  # the rotation only touches intra-chunk scores
    assert_close(S, topk_error.delta_rule_chunkwise(*x, 16)[1], 1e-12, "S is topk_error's")
    assert (o - topk_error.delta_rule_chunkwise(*x, 16)[0]).abs().max() > 1e-3  # and it does change the output


def test_current_key_error_local_softmax_adds_local_softmax_pass_to_current_key_error():
    x = inputs64()
    o, S = current_key_error_local_softmax.delta_rule_chunkwise(*x, 16)
    o_cke, S_cke = current_key_error.delta_rule_chunkwise(*x, 16)
    extra = local_softmax.delta_rule_chunkwise(*x, 16)[0] - delta_rule_chunkwise(*x, 16)[0]  # the extra pass
    assert_close(o - o_cke, extra, 1e-12, "o")
    assert_close(S, S_cke, 1e-12, "S")
