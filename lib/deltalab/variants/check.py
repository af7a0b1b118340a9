"""Validity checks a rule must pass before anything is trained: ``check_rule(fn)`` or a VariantCheckError.

A rule is a function with fla's naive signature ``fn(q, k, v, beta, chunk_size) -> (o, S)`` on head-first
tensors. Four checks, run in this order (each one assumes the ones before it passed, so the error names the
first real problem):

1. shapes        ``(o [B,H,L,d_v], S [B,H,d_k,d_v])`` in the input dtype (fp32), for C = 16 and for the
                 model's C = 32, with L a multiple of C;
2. finite        forward and backward finite on unit-norm keys and β ∈ (0, 1), in fp32 and under
                 ``torch.autocast("cpu", dtype=torch.bfloat16)`` (where S must stay fp32);
3. deterministic two calls on the same input give bit-identical o and S;
4. causal        in float64, replacing q, k, v, β at every position > t leaves o[..., :t+1, :] unchanged, for
                 t inside a chunk and for t at a chunk's last token (the boundary), tolerance 1e-9 relative.

Shapes are small (B=2, H=2, L=64/96, d=16) so the whole check takes well under a second. It runs on one
thread: at these sizes extra threads only spin, and on a busy 2-core machine they made it 100× slower.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable

import torch
import torch.nn.functional as F

__all__ = ["VariantCheckError", "check_rule", "check_state_only", "random_inputs"]

B, H, D_K, D_V = 2, 2, 16, 16
MODEL_CHUNK = 32  # the chunk size the model trains with
CAUSAL_RTOL = 1e-9


class VariantCheckError(ValueError):
    """A rule failed a validity check; the message names the rule, the check and why."""


def random_inputs(L: int, *, seed: int = 0, dtype: torch.dtype = torch.float32, requires_grad: bool = False):
    """``(q, k, v, beta)`` as the DeltaNet layer passes them: unit-norm q and k, β = sigmoid(·) ∈ (0, 1)."""
    g = torch.Generator().manual_seed(seed)
    q = F.normalize(torch.randn(B, H, L, D_K, generator=g, dtype=torch.float64), dim=-1)
    k = F.normalize(torch.randn(B, H, L, D_K, generator=g, dtype=torch.float64), dim=-1)
    v = torch.randn(B, H, L, D_V, generator=g, dtype=torch.float64)
    beta = torch.randn(B, H, L, generator=g, dtype=torch.float64).sigmoid()
    return tuple(x.to(dtype).requires_grad_(requires_grad) for x in (q, k, v, beta))


def check_rule(fn: Callable, *, name: str = "rule") -> None:
    """Run the four checks on ``fn``; raise ``VariantCheckError`` naming the first that fails."""
    if not callable(fn):
        raise VariantCheckError(f"{name}: failed the 'shapes' check: {fn!r} is not callable")
    with one_thread():
        _check_shapes(fn, name)
        _check_finite(fn, name)
        _check_deterministic(fn, name)
        _check_causal(fn, name)


@contextmanager
def one_thread():
    """Run torch on one intra-op thread, restoring the previous setting after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _fail(name: str, check: str, why: str) -> VariantCheckError:
    return VariantCheckError(f"{name}: failed the {check!r} check: {why}")


def _call(fn, name, check, inputs, chunk_size):
    """Call ``fn`` positionally like fla's naive function; any exception becomes a VariantCheckError."""
    try:
        out = fn(*inputs, chunk_size)
    except Exception as e:  # noqa: BLE001 — a user's rule can raise anything; report it as a failed check
        raise _fail(name, check, f"calling it with chunk_size={chunk_size} raised {type(e).__name__}: {e}") from e
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise _fail(name, "shapes", f"must return a 2-tuple (o, S); got {type(out).__name__}"
                    + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else ""))
    return out


def _check_shapes(fn, name):
    for C, L in ((16, 64), (MODEL_CHUNK, 64)):
        q, k, v, beta = random_inputs(L)
        o, S = _call(fn, name, "shapes", (q, k, v, beta), C)
        for what, x, want in (("o", o, (B, H, L, D_V)), ("S", S, (B, H, D_K, D_V))):
            if not isinstance(x, torch.Tensor):
                raise _fail(name, "shapes", f"{what} must be a tensor; got {type(x).__name__} (chunk_size={C})")
            if tuple(x.shape) != want:
                raise _fail(name, "shapes", f"{what} must have shape {want} [B,H,{'L,d_v' if what == 'o' else 'd_k,d_v'}]"
                            f"; got {tuple(x.shape)} (L={L}, chunk_size={C})")
            if x.dtype != torch.float32:
                raise _fail(name, "shapes", f"{what} must be float32 for float32 inputs; got {x.dtype} (chunk_size={C})")


def _check_finite(fn, name):
    for autocast in (False, True):
        where = "under bf16 autocast" if autocast else "in fp32"
        inputs = random_inputs(96, seed=1, requires_grad=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            o, S = _call(fn, name, "finite", inputs, MODEL_CHUNK)
        if autocast and S.dtype != torch.float32:
            raise _fail(name, "finite", f"the state must stay fp32 under bf16 autocast; got S in {S.dtype}")
        for what, x in (("o", o), ("S", S)):
            if not torch.isfinite(x).all():
                raise _fail(name, "finite", f"forward {what} has non-finite values {where}")
        g = torch.Generator().manual_seed(2)  # random output weights, so no gradient cancels by symmetry
        loss = (o.float() * torch.randn(o.shape, generator=g)).sum() + (S.float() * torch.randn(S.shape, generator=g)).sum()
        if not loss.requires_grad:
            raise _fail(name, "finite", f"the outputs do not depend differentiably on the inputs {where}")
        try:
            loss.backward()
        except Exception as e:  # noqa: BLE001
            raise _fail(name, "finite", f"backward raised {type(e).__name__}: {e} ({where})") from e
        for what, x in zip("q k v beta".split(), inputs):
            if x.grad is not None and not torch.isfinite(x.grad).all():
                raise _fail(name, "finite", f"gradient of {what} has non-finite values {where}")


def _check_deterministic(fn, name):
    inputs = random_inputs(96, seed=3)
    first, second = (_call(fn, name, "deterministic", inputs, MODEL_CHUNK) for _ in range(2))
    for what, a, b in zip(("o", "S"), first, second):
        if not torch.equal(a, b):
            diff = (a.double() - b.double()).abs().max().item()
            raise _fail(name, "deterministic", f"two calls on the same input gave different {what} (max |Δ| = {diff:.3g})")


def _check_causal(fn, name):
    """Perturb every input at positions > t; outputs at positions ≤ t must not move (float64)."""
    C, L = MODEL_CHUNK, 96
    base = random_inputs(L, seed=4, dtype=torch.float64)
    fresh = random_inputs(L, seed=5, dtype=torch.float64)
    o_base, _ = _call(fn, name, "causal", base, C)
    scale = max(1.0, o_base.abs().max().item())
    for t, where in ((C + C // 2 - 1, "inside a chunk"), (C - 1, "at a chunk boundary"), (2 * C - 1, "at a chunk boundary")):
        perturbed = tuple(torch.cat([x[:, :, : t + 1], y[:, :, t + 1 :]], dim=2) for x, y in zip(base, fresh))
        o, _ = _call(fn, name, "causal", perturbed, C)
        moved = (o[:, :, : t + 1] - o_base[:, :, : t + 1]).abs().amax(dim=(0, 1, 3))  # [t+1] per position
        bad = ~(moved <= CAUSAL_RTOL * scale)  # `~(<=)` also flags NaN
        if bad.any():
            first, diff = int(bad.nonzero()[0]), moved.max().item()
            raise _fail(name, "causal", f"changing the inputs after position {t} ({where}, chunk_size={C}) changed "
                        f"the output at position {first} ≤ {t} by {diff:.3g}: the output sees future tokens")


def check_state_only(fn: Callable, *, name: str = "rule") -> None:
    """A rule declared ``STATE_ONLY`` changes only the state carried to the next chunk, so on a sequence of one chunk
    (from the zero state) its output must be DeltaNet's: checked in float64 to ``CAUSAL_RTOL``; a
    ``VariantCheckError`` otherwise."""
    from deltalab.core import delta_rule_chunkwise

    with one_thread():
        inputs = random_inputs(MODEL_CHUNK, seed=6, dtype=torch.float64)
        o, _ = _call(fn, name, "state-only", inputs, MODEL_CHUNK)
        ref, _ = delta_rule_chunkwise(*inputs, MODEL_CHUNK)
    moved = (o - ref).abs().max().item()
    if not moved <= CAUSAL_RTOL * max(1.0, ref.abs().max().item()):
        raise _fail(name, "state-only", f"it declares STATE_ONLY = True, but on one chunk its output differs from "
                    f"DeltaNet's by {moved:.3g}: the change acts inside the chunk (drop the declaration)")
