"""The variants registry: every rule passes the validity checks, is a drop-in for fla's naive signature, reduces
to delta_net where its docstring says it does, and the five seed-specified rules match small independent
token-level references written here. Also: check_rule rejects broken rules with the right check named, and
user files load (or fail clearly)."""
import inspect
import math
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import deltalab.variants as variants_pkg
from deltalab.core import delta_rule_chunkwise
from deltalab.variants import (
    VARIANTS, Variant, VariantCheckError, check_rule, get_variant, label_of, name_of_label, variants_table,
)
from deltalab.variants import (
    cosine_softmax, cosine_softmax_error_gated, current_key_error, decay_state, error_gated, frobenius_renorm,
    hybrid_softmax, l2_norm_error, local_softmax, momentum_state, normalize_keys, rmsprop_state,
    sigmoid_forget_gate, softmax_attention, topk_error, two_stage_error,
)
from deltalab.variants.check import one_thread, random_inputs

@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The tensors here are tiny: extra threads only spin (and crawl on a busy 2-core machine)."""
    with one_thread():
        yield


RULES = [n for n, v in VARIANTS.items() if v.rule is not None]
MIDDLES = {
    "adam_state": "adam_state_update", "adaptive_gated_softmax": "adaptive_gated_softmax_attention",
    "local_softmax": "add_local_softmax_self_attention",
    "cosine_softmax_error_gated": "cosine_softmax_attention_error_gated_update",
    "cosine_softmax": "cosine_softmax_attention", "decay_state": "decay_state_update",
    "error_gated": "error_gated_state_update", "frobenius_renorm": "frobenius_renorm_state_update",
    "gelu_error": "gelu_on_prediction_error", "hybrid_softmax": "hybrid_softmax_raw_attention",
    "layernorm_qk": "layernorm_qk_before_attention", "layernorm_state": "layernorm_state_update",
    "momentum_state": "momentum_state_update", "normalize_keys": "normalize_keys",
    "orthogonal_error": "orthogonal_error_state_update", "rmsprop_state": "rmsprop_state_update",
    "rope_qk": "rope_qk", "sigmoid_forget_gate": "sigmoid_error_forget_gate_state_update",
    "sigmoid_similarity_gate": "sigmoid_similarity_gate", "softmax_attention": "softmax_attention",
    "topk_error": "topk_error_update", "topk_softmax": "topk_softmax_attention",
    "two_stage_error": "two_stage_error_correction_update", "current_key_error": "current_key_error_update",
    "l2_norm_error": "l2_normalized_error_update",
    # round 6
    "topk_error_r0125": "topk_error_update_ratio_0125", "topk_error_r05": "topk_error_update_ratio_05",
    "topk_error_decay": "topk_error_decay_state_update", "topk_error_rope": "topk_error_update_rope_qk",
    "two_stage_error_full": "two_stage_error_correction_full_step_update",
    "current_key_error_local_softmax": "current_key_error_update_add_local_softmax_self_attention",
    "uniform_average": "uniform_average_attention", "sharp_softmax": "sharp_softmax_attention",
}
SETTINGS = {"topk_error_r0125": ("topk_error", {"ratio": 0.125}), "topk_error_r05": ("topk_error", {"ratio": 0.5}),
            "two_stage_error_full": ("two_stage_error", {"gamma": 1.0})}  # registered knob settings of a file


def inputs64(L=48, seed=0, v_scale=1.0):
    """Small float64 inputs (B=2, H=2, d=16), unit-norm q and k, β ∈ (0, 1)."""
    q, k, v, beta = random_inputs(L, seed=seed, dtype=torch.float64)
    return q, k, v * v_scale, beta


def assert_close(a, b, rtol=1e-10, what=""):
    scale = max(1.0, b.abs().max().item())
    err = (a - b).abs().max().item()
    assert err <= rtol * scale, f"{what}: max |Δ| = {err:.3g} (scale {scale:.3g})"


# ---------------------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------------------
def test_registry_entries_and_their_labels():
    want = {"delta_net": "delta_net_4layer", "gated_delta_net": "gated_delta_net_4layer"}
    want |= {s: f"delta_net_4layer_{m}_in_for_loop" for s, m in MIDDLES.items()}
    assert {n: v.label for n, v in VARIANTS.items()} == want
    assert all(isinstance(v, Variant) and v.name == n for n, v in VARIANTS.items())
    assert VARIANTS["gated_delta_net"].mixer == "gated_delta_net" and VARIANTS["gated_delta_net"].rule is None
    assert {v.mixer for n, v in VARIANTS.items() if n != "gated_delta_net"} == {"delta_net"}
    assert not any(v.sequential for v in VARIANTS.values())


@pytest.mark.parametrize("name", [n for n in RULES if n != "delta_net"])
def test_state_only_is_declared_by_exactly_the_rules_whose_one_chunk_output_is_delta_nets(name):
    """``STATE_ONLY``: the change is to the state carried between chunks only, so on one chunk (from the zero
    state) the rule's output is DeltaNet's bit for bit; every other rule's differs there."""
    x = random_inputs(32, seed=7)
    same = torch.equal(VARIANTS[name].rule(*x, 32)[0], delta_rule_chunkwise(*x, 32)[0])
    assert VARIANTS[name].state_only == same


def test_delta_net_rule_is_the_core_function():
    assert VARIANTS["delta_net"].rule is delta_rule_chunkwise


@pytest.mark.parametrize("name", RULES)
def test_rule_passes_check_rule(name):
    check_rule(VARIANTS[name].rule, name=name)


@pytest.mark.parametrize("name", [n for n in RULES if n != "delta_net" and n not in SETTINGS])
def test_rule_file_reads_like_the_math(name):
    """One file per variant; its docstring opens with the formula and says how it differs from delta_net."""
    rule = VARIANTS[name].rule
    module = inspect.getmodule(rule)
    assert Path(module.__file__).name == f"{name}.py" and rule.__name__ == "delta_rule_chunkwise"
    assert VARIANTS[name].formula and module.__doc__.strip().startswith(VARIANTS[name].formula.split("  ")[0])
    assert "differs from delta_net:" in module.__doc__


@pytest.mark.parametrize("name", SETTINGS)
def test_registered_setting_is_its_file_with_the_knob_bound(name):
    """A sweep point is the parent file's rule with a keyword knob bound; the formula names the value, and the
    parent file says how a user runs another value."""
    parent, knobs = SETTINGS[name]
    rule, module = VARIANTS[name].rule, getattr(variants_pkg, parent)
    assert rule.func is module.delta_rule_chunkwise and rule.keywords == knobs and not rule.args
    assert all(f"at {k if k != 'gamma' else 'γ ='} {v:g}" in VARIANTS[name].formula for k, v in knobs.items())
    assert name in module.__doc__ and f"Other {'ratios' if 'ratio' in knobs else 'γ'}:" in module.__doc__
    x = random_inputs(64)
    assert torch.equal(rule(*x, 32)[0], module.delta_rule_chunkwise(*x, 32, **knobs)[0])
    assert not torch.equal(rule(*x, 32)[0], module.delta_rule_chunkwise(*x, 32)[0])  # the knob acts


def test_a_setting_with_an_unknown_knob_fails_at_registration():
    from deltalab.variants import _setting

    with pytest.raises(ValueError, match="topk_error.delta_rule_chunkwise has no keyword knob gamma; its knobs: ratio"):
        _setting("bad", "bad", "topk_error", "f", gamma=1.0)


@pytest.mark.parametrize("name", RULES)
def test_rule_is_a_drop_in_for_fla_naive_signature(name):
    rule = VARIANTS[name].rule
    params = list(inspect.signature(rule).parameters.values())
    assert [p.name for p in params[:5]] == ["q", "k", "v", "beta", "chunk_size"] and params[4].default == 32
    assert all(p.kind is p.KEYWORD_ONLY for p in params[5:])  # any extra knob is keyword-only with a default
    q, k, v, beta = random_inputs(64)
    o, S = rule(q, k, v, beta, 32)  # positional, as fla's naive function is called
    o_default, _ = rule(q, k, v, beta)
    assert torch.equal(o, o_default) and o.shape == v.shape and S.shape == (2, 2, 16, 16)
    o40, _ = rule(q[:, :, :40], k[:, :, :40], v[:, :, :40], beta[:, :, :40], 32)  # any L: the preamble pads
    assert o40.shape == (2, 2, 40, 16) and torch.isfinite(o40).all()


def test_lookup_helpers_and_table():
    assert get_variant("rope_qk") is VARIANTS["rope_qk"]
    for n, v in VARIANTS.items():
        assert label_of(n) == v.label and name_of_label(v.label) == n
    with pytest.raises(ValueError, match="valid short names: delta_net, gated_delta_net, adam_state"):
        get_variant("no_such_variant")
    with pytest.raises(ValueError, match="unknown variant label"):
        name_of_label("delta_net_4layer_nope_in_for_loop")
    table = variants_table()
    assert all(v.name in table and v.label in table and v.formula in table for v in VARIANTS.values())


# ---------------------------------------------------------------------------------------------------------
# Limits where a variant is delta_net (only where that is true)
# ---------------------------------------------------------------------------------------------------------
LIMITS = {
    "decay_state, λ = 1": (lambda *x: decay_state.delta_rule_chunkwise(*x, decay=1.0), 1.0),
    "momentum_state, μ = 0": (lambda *x: momentum_state.delta_rule_chunkwise(*x, momentum=0.0), 1.0),
    "two_stage_error, γ = 0": (lambda *x: two_stage_error.delta_rule_chunkwise(*x, gamma=0.0), 1.0),
    "hybrid_softmax, m = 0": (lambda *x: hybrid_softmax.delta_rule_chunkwise(*x, mix=0.0), 1.0),
    "topk_error, ratio = 1": (lambda *x: topk_error.delta_rule_chunkwise(*x, ratio=1.0), 1.0),
    "normalize_keys, unit keys": (normalize_keys.delta_rule_chunkwise, 1.0),
    "error_gated, large errors (tanh = 1)": (error_gated.delta_rule_chunkwise, 1e3),
    "frobenius_renorm, state below the bound": (frobenius_renorm.delta_rule_chunkwise, 1e-3),
    "sigmoid_forget_gate, tiny errors (f → 1)": (sigmoid_forget_gate.delta_rule_chunkwise, 1e-9),
}


@pytest.mark.parametrize("case", LIMITS)
def test_limit_gives_delta_net_back(case):
    rule, v_scale = LIMITS[case]
    x = inputs64(v_scale=v_scale)
    o, S = rule(*x, 16)
    o_ref, S_ref = delta_rule_chunkwise(*x, 16)
    rtol = 1e-7 if "sigmoid_forget" in case else 1e-12  # f = 1 − O(ē): ē ~ 1e-9 here
    assert_close(o, o_ref, rtol, case)
    assert_close(S, S_ref, rtol, case)


def test_hybrid_softmax_with_full_mix_is_softmax_attention():
    x = inputs64()
    o, S = hybrid_softmax.delta_rule_chunkwise(*x, 16, mix=1.0)
    assert_close(o, softmax_attention.delta_rule_chunkwise(*x, 16)[0], 1e-12, "o")


def test_cosine_softmax_error_gated_is_its_two_parts():
    """With errors large enough that the gate is 1, the combination is cosine_softmax; and its write is
    error_gated's: both share the state trajectory when the attention does not touch the state."""
    x = inputs64(v_scale=1e3)
    assert_close(cosine_softmax_error_gated.delta_rule_chunkwise(*x, 16)[0], cosine_softmax.delta_rule_chunkwise(*x, 16)[0])
    x = inputs64()
    S_comb = cosine_softmax_error_gated.delta_rule_chunkwise(*x, 16)[1]
    assert_close(S_comb, error_gated.delta_rule_chunkwise(*x, 16)[1], 1e-12, "S")


def test_local_softmax_adds_a_causal_softmax_attention_on_the_chunk():
    q, k, v, beta = x = inputs64(L=32)
    C = 16
    extra = local_softmax.delta_rule_chunkwise(*x, C)[0] - delta_rule_chunkwise(*x, C)[0]
    qs, vb = q * q.shape[-1] ** -0.5, v * beta[..., None]
    for t in range(32):
        s0 = (t // C) * C  # the chunk's first token
        p = torch.softmax(qs[:, :, t, None, :] @ k[:, :, s0 : t + 1].mT, dim=-1)  # [B,H,1,t-s0+1]
        assert_close(extra[:, :, t], (p @ vb[:, :, s0 : t + 1])[:, :, 0], 1e-12, f"t={t}")


# ---------------------------------------------------------------------------------------------------------
# The five seed-specified variants against token-level references (float64)
# ---------------------------------------------------------------------------------------------------------
def token_errors(S, k, v, beta):
    """One chunk written token by token from S: the delta rule's errors e_t = β_t (v_t − S_{t−1}ᵀ k_t), [B,H,C,d_v].

    These are exactly the rows of the loop's corrected pseudo-values U'_i = U_i − W_i S; computing them this
    way uses no UT transform, so the references below share nothing with the chunkwise code."""
    E = []
    for t in range(k.shape[2]):
        e = beta[:, :, t, None] * (v[:, :, t] - torch.einsum("bhkv,bhk->bhv", S, k[:, :, t]))
        S = S + k[:, :, t, :, None] * e[:, :, None, :]
        E.append(e)
    return torch.stack(E, dim=2)


def chunk_output(S, q, k, E):
    """o_t = Sᵀq_t + Σ_{s≤t} (q_t·k_s) e_s, token by token."""
    return torch.stack([torch.einsum("bhkv,bhk->bhv", S, q[:, :, t])
                        + torch.einsum("bhs,bhsv->bhv", (q[:, :, t, None, :] * k[:, :, : t + 1]).sum(-1), E[:, :, : t + 1])
                        for t in range(q.shape[2])], dim=2)


def reference(q, k, v, beta, C, chunk_step):
    """Loop over chunks; ``chunk_step(S, q_c, k_c, v_c, beta_c, state) -> (o_c, S, state)``."""
    q = q * q.shape[-1] ** -0.5
    S = q.new_zeros(q.shape[0], q.shape[1], q.shape[-1], v.shape[-1])
    o, state = [], {}
    for s0 in range(0, q.shape[2], C):
        sl = slice(s0, s0 + C)
        o_c, S, state = chunk_step(S, q[:, :, sl], k[:, :, sl], v[:, :, sl], beta[:, :, sl], state)
        o.append(o_c)
    return torch.cat(o, dim=2), S


def check_against(rule, step, L=48, C=16):
    x = inputs64(L=L)
    o, S = rule(*x, C)
    o_ref, S_ref = reference(*x, C, step)
    assert_close(o, o_ref, 1e-10, "o")
    assert_close(S, S_ref, 1e-10, "S")


def test_rmsprop_state_matches_seed_round1():
    rho, eps = 0.9, 1e-8

    def step(S, q, k, v, beta, st):
        E = token_errors(S, k, v, beta)
        o = chunk_output(S, q, k, E)  # output with the corrected errors and the old state
        grad = torch.einsum("bhck,bhcv->bhkv", k, E)  # k_iᵀ u_i
        st["V"] = rho * st.get("V", 0) + (1 - rho) * grad**2
        return o, S + beta.mean(-1)[..., None, None] * grad / (st["V"].sqrt() + eps), st

    check_against(rmsprop_state.delta_rule_chunkwise, step)


def test_topk_error_matches_seed_round2_with_causal_output():
    top = math.ceil(0.25 * 16)

    def step(S, q, k, v, beta, st):
        E = token_errors(S, k, v, beta)
        norms = E.norm(dim=-1)
        o = []
        for t in range(q.shape[2]):  # output: top-k among the rows 0..t the token can see
            seen = norms[..., : t + 1]
            keep = torch.zeros_like(seen).scatter(-1, seen.topk(min(top, t + 1)).indices, 1.0)
            o.append(chunk_output(S, q[:, :, : t + 1], k[:, :, : t + 1], E[:, :, : t + 1] * keep[..., None])[:, :, t])
        keep = torch.zeros_like(norms).scatter(-1, norms.topk(top).indices, 1.0)  # write: the seed's top-k of the chunk
        return torch.stack(o, dim=2), S + torch.einsum("bhck,bhcv->bhkv", k, E * keep[..., None]), st

    check_against(topk_error.delta_rule_chunkwise, step)


def test_l2_norm_error_matches_seed_round3():
    def step(S, q, k, v, beta, st):
        E = token_errors(S, k, v, beta)
        E = E / (E.norm(dim=-1, keepdim=True) + 1e-6)
        return chunk_output(S, q, k, E), S + torch.einsum("bhck,bhcv->bhkv", k, E), st

    check_against(l2_norm_error.delta_rule_chunkwise, step)


def test_two_stage_error_matches_seed_round4():
    def step(S, q, k, v, beta, st):
        E1 = token_errors(S, k, v, beta)  # Δ₁ = kᵀ(v̂ − S·k), written token by token
        S1 = S + torch.einsum("bhck,bhcv->bhkv", k, E1)
        D2 = torch.einsum("bhck,bhcv->bhkv", k, token_errors(S1, k, v, beta))  # Δ₂ from S₁
        return chunk_output(S, q, k, E1), S1 + 0.5 * D2, st

    check_against(two_stage_error.delta_rule_chunkwise, step)


def test_current_key_error_matches_seed_round5():
    def step(S, q, k, v, beta, st):
        E = torch.stack([beta[:, :, t, None] * v[:, :, t] - torch.einsum("bhkv,bhk->bhv", S, k[:, :, t])
                         for t in range(k.shape[2])], dim=2)  # u_t = (β v)_t − k_t S, no WY
        return chunk_output(S, q, k, E), S + torch.einsum("bhck,bhcv->bhkv", k, E), st

    check_against(current_key_error.delta_rule_chunkwise, step)


def test_topk_error_as_literally_written_leaks_the_future():
    """Why topk_error ranks rows causally for the output: the seed's whole-chunk ranking fails the causal check."""
    from deltalab.core import causal_mask, chunk_epilogue, chunk_preamble, initial_state_or_zeros

    def literal(q, k, v, beta, chunk_size=32):
        c = chunk_preamble(q, k, v, beta, chunk_size)
        S, mask, o = initial_state_or_zeros(c), causal_mask(c), []
        for i in range(c.num_chunks):
            q_i, k_i, u_i, w_i = c.q[:, :, i], c.k[:, :, i], c.u[:, :, i], c.w[:, :, i]
            u_i = u_i - w_i @ S
            idx = u_i.norm(dim=-1).topk(math.ceil(0.25 * chunk_size), dim=-1).indices
            u_i = u_i * torch.zeros_like(u_i[..., 0]).scatter(-1, idx, 1.0)[..., None]
            o.append(q_i @ S + ((q_i @ k_i.mT) * mask) @ u_i)
            S = S + k_i.mT @ u_i
        return chunk_epilogue(c, o), S

    with pytest.raises(VariantCheckError, match="'causal'"):
        check_rule(literal, name="topk_error as written")
    x = inputs64(L=64)
    (o_lit, S_lit), (o, S) = literal(*x, 32), topk_error.delta_rule_chunkwise(*x, 32)
    assert_close(S, S_lit, 1e-12, "state write is the seed's")
    assert_close(o[:, :, 31::32], o_lit[:, :, 31::32], 1e-12, "last token of each chunk")


def test_adam_first_chunk_is_a_bias_corrected_signed_step():
    x = inputs64(L=16)
    S = VARIANTS["adam_state"].rule(*x, 16)[1]
    q, k, v, beta = x
    G = torch.einsum("bhck,bhcv->bhkv", k, token_errors(torch.zeros_like(S), k, v, beta))
    assert_close(S, beta.mean(-1)[..., None, None] * G / (G.abs() + 1e-8), 1e-10, "S after one chunk")


# ---------------------------------------------------------------------------------------------------------
# check_rule rejects broken rules, naming the check
# ---------------------------------------------------------------------------------------------------------
def peeks_ahead(q, k, v, beta, chunk_size=32):
    o, S = delta_rule_chunkwise(q, k, v, beta, chunk_size)
    return o + o.mean(dim=2, keepdim=True), S  # every position sees the sequence mean


def drops_a_position(q, k, v, beta, chunk_size=32):
    o, S = delta_rule_chunkwise(q, k, v, beta, chunk_size)
    return o[:, :, 1:], S


def returns_only_o(q, k, v, beta, chunk_size=32):
    return delta_rule_chunkwise(q, k, v, beta, chunk_size)[0]


def nan_forward(q, k, v, beta, chunk_size=32):
    o, S = delta_rule_chunkwise(q, k, v, beta, chunk_size)
    return o * float("nan"), S


def nan_backward(q, k, v, beta, chunk_size=32):
    o, S = delta_rule_chunkwise(q, k, v, beta, chunk_size)
    return o + 0 * (q * 0).sqrt().sum(), S  # forward is fine, d√x at 0 is inf: 0·inf = NaN in backward


def noisy(q, k, v, beta, chunk_size=32):
    o, S = delta_rule_chunkwise(q, k, v, beta, chunk_size)
    return o + 1e-6 * torch.rand_like(o), S


def downcasts_state(q, k, v, beta, chunk_size=32):
    o, S = delta_rule_chunkwise(q, k, v, beta, chunk_size)
    return o, S.to(torch.get_autocast_dtype("cpu")) if torch.is_autocast_enabled("cpu") else S


def raises(q, k, v, beta, chunk_size=32):
    assert q.shape[2] % 64 == 0, "needs L % 64 == 0"
    return delta_rule_chunkwise(q, k, v, beta, chunk_size)


@pytest.mark.parametrize("fn, check, why", [
    (peeks_ahead, "causal", "sees future tokens"),
    (drops_a_position, "shapes", r"o must have shape \(2, 2, 64, 16\)"),
    (returns_only_o, "shapes", "2-tuple"),
    (nan_forward, "finite", "forward o has non-finite"),
    (nan_backward, "finite", "gradient of q has non-finite"),
    (noisy, "deterministic", "different o"),
    (downcasts_state, "finite", "state must stay fp32"),
    (raises, "finite", "AssertionError: needs L % 64"),
])
def test_check_rule_names_the_failed_check(fn, check, why):
    with pytest.raises(VariantCheckError, match=f"{fn.__name__}: failed the '{check}' check: .*{why}") as e:
        check_rule(fn, name=fn.__name__)
    assert isinstance(e.value, ValueError)


# ---------------------------------------------------------------------------------------------------------
# User files
# ---------------------------------------------------------------------------------------------------------
USER_RULE = '''"""S = 0.5 · (S + K_iᵀ U'_i)  (a user's own variant)"""
from deltalab.variants.decay_state import delta_rule_chunkwise as _decayed


def delta_rule_chunkwise(q, k, v, beta, chunk_size=32):
    return _decayed(q, k, v, beta, chunk_size, decay=0.5)
'''


def test_user_file_loads_as_a_variant(tmp_path):
    path = tmp_path / "half_decay.py"
    path.write_text(USER_RULE)
    var = get_variant(str(path))
    assert (var.name, var.label, var.mixer) == ("half_decay", "delta_net_4layer_half_decay_in_for_loop", "delta_net")
    assert var.formula.startswith("S = 0.5") and label_of(str(path)) == var.label
    x = random_inputs(64)
    assert torch.equal(var.rule(*x, 32)[0], decay_state.delta_rule_chunkwise(*x, 32, decay=0.5)[0])
    full = tmp_path / "delta_net_4layer_half_decay_in_for_loop.py"
    full.write_text(USER_RULE)
    assert get_variant(full).label == "delta_net_4layer_half_decay_in_for_loop"


def test_registered_variant_file_runs_unchanged_as_a_user_file(tmp_path):
    path = tmp_path / "my_two_stage.py"
    shutil.copy(inspect.getfile(two_stage_error), path)
    x = random_inputs(64)
    assert torch.equal(get_variant(path).rule(*x, 32)[0], two_stage_error.delta_rule_chunkwise(*x, 32)[0])


def test_bad_user_files_fail_clearly_before_training(tmp_path):
    empty = tmp_path / "nothing_here.py"
    empty.write_text("import torch\n\ndef other(q, k, v, beta, chunk_size=32):\n    return q, k\n")
    with pytest.raises(ValueError, match="defines no function delta_rule_chunkwise"):
        get_variant(str(empty))
    broken = tmp_path / "broken.py"
    broken.write_text("import no_such_module_here\n")
    with pytest.raises(ValueError, match="importing variant file .*broken.py failed: ModuleNotFoundError"):
        get_variant(str(broken))
    with pytest.raises(ValueError, match="variant file not found"):
        get_variant(str(tmp_path / "missing.py"))
    leaky = tmp_path / "leaky.py"
    leaky.write_text("import torch\nfrom deltalab.core import delta_rule_chunkwise as f\n\n"
                     "def delta_rule_chunkwise(q, k, v, beta, chunk_size=32):\n"
                     "    o, S = f(q, k, v, beta, chunk_size)\n    return o + o.flip(2), S\n")
    with pytest.raises(VariantCheckError, match="leaky.py: failed the 'causal' check"):
        get_variant(str(leaky))


def test_a_user_file_declares_a_state_only_change_and_a_false_declaration_is_refused(tmp_path):
    declared = tmp_path / "half_decay.py"
    declared.write_text(USER_RULE + "\nSTATE_ONLY = True\n")
    assert get_variant(declared).state_only and not get_variant_undeclared(tmp_path).state_only
    wrong = tmp_path / "gelu_declared.py"
    wrong.write_text("from deltalab.variants.gelu_error import delta_rule_chunkwise\n\nSTATE_ONLY = True\n")
    with pytest.raises(VariantCheckError, match="gelu_declared.py: failed the 'state-only' check: it declares "
                       "STATE_ONLY = True, but on one chunk its output differs from DeltaNet's"):
        get_variant(wrong)
    not_bool = tmp_path / "half_decay_yes.py"
    not_bool.write_text(USER_RULE + "\nSTATE_ONLY = 'yes'\n")
    with pytest.raises(ValueError, match=r"STATE_ONLY in variant file .*half_decay_yes.py must be True or False.*got 'yes'"):
        get_variant(not_bool)


def get_variant_undeclared(tmp_path):
    path = tmp_path / "half_decay_undeclared.py"
    path.write_text(USER_RULE)
    return get_variant(path)


def test_package_exports():
    assert set(variants_pkg.__all__) >= {"Variant", "VARIANTS", "get_variant", "variants_table", "label_of",
                                         "name_of_label", "check_rule", "VariantCheckError", "load_rule_file"}
