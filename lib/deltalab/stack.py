"""Many runs as one model: ``train_stack`` trains the runs of one variant × task × setting (at ``mad``: 3 lr × 2 wd ×
4 seeds = 24 runs) together, each exactly as ``train.train_run`` trains it alone.

Where the run dimension lives: every parameter is stacked, ``W[r]`` being run r's (``[R, *shape]``), and every
activation carries it in front, ``[R, B, L, D]``.

    Linear          y[r] = x[r] W[r]ᵀ (+ b[r])            one ``bmm`` / ``baddbmm`` over the runs
    Embedding       E[r][x[r]]                            one lookup into the runs' tables laid end to end
    RMSNorm, conv   per-run weights broadcast over [B, L]  the layers' fast elementwise passes, run dim in front
    delta rule      runs × batch folded into the batch     one call of the rule on ``[R·B, H, L, d]`` (every run
                                                          shares the shapes; the rule is batch-independent)
    loss            each run's mean cross-entropy          their sum is backpropagated: run r's parameters get
                                                          run r's gradient and nothing else

Per run, as alone: the initial weights (each run's model is built from its own seed, then stacked), the data
(data seed 12345 + seed) and its order (a generator seeded with the run's seed), AdamW's state and update with the
run's own lr and wd (``adamw_step``: ``torch.optim.AdamW``'s single-tensor step, the per-run numbers as a run
dimension), the cosine schedule (a ``CosineAnnealingLR`` per run), evaluation (``train.evaluate`` on the run's own
weights), early stopping and the best-epoch rule. A run that stops (early, or at its last epoch) leaves the stack at
the end of that epoch and its result is handed over at once (``on_result``); a run whose loss turns non-finite is
frozen at that step (its update masked, as a lone run breaks before its step), evaluated at the epoch's end and
flagged diverged, alone. The host reads the device once per epoch, not once per step.

On CUDA the step (forward, backward, update) is captured in a CUDA graph once per stack composition and replayed
(``DELTALAB_STACK_GRAPH=0`` turns that off; a capture that fails warns and the stack trains eagerly): the step
then costs one launch. That path has not yet run on a GPU.
tests/test_stack.py checks on the CPU, in fp32, that a stack's records equal the lone runs' within 1e-5.
"""
from __future__ import annotations

import os
import sys
import time
import warnings
from dataclasses import asdict
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from . import tasks as T
from .layers import (DeltaNet, GatedDeltaNet, RMSNorm, ShortConv, _l2norm, _merge_heads, _split_heads,
                     rms_normalise, rms_normalise_backward)
from .model import AutoEncoder, LanguageModel, SwiGLU, _pad_tokens, _SwiGLUActFn, build_model
from .params import Scale
from .runtime import autocast, default_device, environment, resolve_precision
from .runs import RunSpec
from .train import IGNORE, Evaluations, RunResult, evaluate, fast_rule, mixer_of, run_data

BETAS, EPS = (0.9, 0.999), 1e-8  # torch.optim.AdamW's defaults, which train_run uses


# ---------------------------------------------------------------------------------------------------------
# Layers with a run dimension in front
# ---------------------------------------------------------------------------------------------------------
def _runs_view(w: Tensor, x: Tensor) -> Tensor:
    """``w [R, D]`` shaped to broadcast over ``x [R, ..., D]``."""
    return w.view(w.shape[0], *([1] * (x.dim() - 2)), w.shape[-1])


class _StackedRMSNormFn(torch.autograd.Function):
    """``layers._RMSNormFn`` with one weight per run: ``x [R, ..., D]``, ``weight [R, D]``."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, eps: float) -> Tensor:
        xn, r = rms_normalise(x, eps)
        ctx.save_for_backward(xn, r, weight)
        return (xn * _runs_view(weight, xn)).to(x.dtype)

    @staticmethod
    def backward(ctx, dy: Tensor):
        xn, r, weight = ctx.saved_tensors
        dyf = dy.float()
        R, D = weight.shape
        dw = (dyf * xn).reshape(R, -1, D).sum(1) if ctx.needs_input_grad[1] else None
        dx = rms_normalise_backward(dyf * _runs_view(weight, xn), xn, r)
        return dx.to(dy.dtype), (dw.to(weight.dtype) if dw is not None else None), None


class _StackedCausalConvSiLUFn(torch.autograd.Function):
    """``layers._CausalConvSiLUFn`` with one weight per run: ``x [R, B, L, D]``, ``w [R, D, K]``."""

    @staticmethod
    def forward(ctx, x: Tensor, w: Tensor) -> Tensor:
        x = x.contiguous()
        K, L = w.shape[2], x.shape[2]
        tap = [w[:, :, i].reshape(w.shape[0], 1, 1, w.shape[1]) for i in range(K)]
        y = torch.mul(x, tap[K - 1])
        for j in range(1, min(K, L)):  # tap K-1-j reads x_{t-j}
            y[:, :, j:].addcmul_(x[:, :, :-j], tap[K - 1 - j])
        ctx.save_for_backward(x, w, y)
        return F.silu(y)

    @staticmethod
    def backward(ctx, dout: Tensor):
        x, w, y = ctx.saved_tensors
        R, D, K = w.shape
        L = x.shape[2]
        taps = range(1, min(K, L))
        tap = [w[:, :, i].reshape(R, 1, 1, D) for i in range(K)]
        dy = torch.ops.aten.silu_backward(dout.contiguous(), y)
        dx = dw = None
        if ctx.needs_input_grad[0]:
            dx = torch.mul(dy, tap[K - 1])
            for j in taps:
                dx[:, :, :-j].addcmul_(dy[:, :, j:], tap[K - 1 - j])
        if ctx.needs_input_grad[1]:
            acc = torch.promote_types(x.dtype, torch.float32)
            dw = torch.zeros(R, K, D, dtype=acc, device=x.device)
            dw[:, K - 1] += (x * dy).sum((1, 2), dtype=acc)
            for j in taps:
                dw[:, K - 1 - j] += (x[:, :, :-j] * dy[:, :, j:]).sum((1, 2), dtype=acc)
            dw = dw.transpose(1, 2).to(w.dtype)
        return dx, dw


def _linear(x: Tensor, w: Tensor, b: Tensor | None = None) -> Tensor:
    """``x [R, ..., I]`` through each run's ``w [R, O, I]`` (and bias ``[R, O]``): one batched matmul."""
    R, O = w.shape[0], w.shape[1]
    x2 = x.reshape(R, -1, x.shape[-1])
    y = torch.bmm(x2, w.transpose(1, 2)) if b is None else torch.baddbmm(b.unsqueeze(1), x2, w.transpose(1, 2))
    return y.reshape(*x.shape[:-1], O)


def _fold(x: Tensor) -> Tensor:
    """``[R, B, ...]`` → ``[R·B, ...]``: the runs become part of the batch."""
    return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])


class StackedModel(nn.Module):
    """R copies of one architecture (``models``, built alone, each from its run's seed) as one module: its
    parameters are theirs stacked (``params[name][r]`` is run r's ``name``); ``forward(x [R, B, T])`` gives each run's
    logits ``[R, B, T, V]``, computed as each model computes them (``model.LanguageModel``, ``model.AutoEncoder``,
    ``layers.DeltaNet``, ``layers.GatedDeltaNet``) with the run dimension in front. ``template`` (the first model) gives
    the structure and the rule; ``load_run(r)`` writes run r's weights into it, which is then that run's model."""

    def __init__(self, models: list[nn.Module]):
        super().__init__()
        self.template = models[0]
        kinds = {type(m) for m in models}
        if len(kinds) != 1 or not isinstance(self.template, (LanguageModel, AutoEncoder)):
            raise TypeError(f"a stack needs models of one backbone class; got {sorted(k.__name__ for k in kinds)}")
        for m in self.template.modules():
            if getattr(m, "reference", False):
                raise TypeError(f"{type(m).__name__} is switched to its reference ops; the stack runs the fast ones")
        names = [n for n, _ in self.template.named_parameters()]
        for m in models[1:]:
            if [n for n, _ in m.named_parameters()] != names:
                raise TypeError("a stack needs models with the same parameters")
        self.names = names
        self.params = nn.ParameterDict({n.replace(".", "/"): nn.Parameter(torch.stack(
            [dict(m.named_parameters())[n].detach() for m in models])) for n in names})
        self.template.requires_grad_(False)

    @property
    def runs(self) -> int:
        return next(iter(self.params.values())).shape[0]

    def p(self, name: str) -> Tensor:
        return self.params[name.replace(".", "/")]

    @torch.no_grad()
    def load_run(self, r: int) -> nn.Module:
        for name, param in self.template.named_parameters():
            param.copy_(self.p(name)[r])
        return self.template

    def keep(self, rows: list[int]) -> None:
        """Keep only the runs ``rows`` (in that order): the finished ones leave the stack."""
        index = torch.tensor(rows, device=next(iter(self.params.values())).device)
        for key, param in self.params.items():
            self.params[key] = nn.Parameter(param.detach().index_select(0, index))

    # --- forward, module by module -----------------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        m = self.template
        if isinstance(m, LanguageModel):
            T_ = x.shape[2]
            h = self._backbone("backbone", m.backbone, self._embed(_pad_tokens_runs(x, m.pad_multiple)))
            return _linear(h[:, :, :T_] if h.shape[2] != T_ else h, self.p("head.weight"))
        T_ = x.shape[2]  # AutoEncoder
        if T_ > m.positions.shape[0]:
            raise ValueError(f"sequence length {T_} exceeds the AutoEncoder's max_length {m.positions.shape[0]}")
        h = self._backbone("encoder", m.encoder, self._embed(_pad_tokens_runs(x, m.pad_multiple)))
        z = h[:, :, T_ - 1, None, :] + m.positions[:T_].to(h.dtype)
        for i, layer in enumerate(m.decoder):
            z = self._module(f"decoder.{i}", layer, z)
        return _linear(z, self.p("head.weight"), self.p("head.bias"))

    def _embed(self, x: Tensor) -> Tensor:
        w = self.p("embed.weight")
        R, V = w.shape[0], w.shape[1]
        offsets = torch.arange(R, device=x.device).view(R, 1, 1) * V
        return F.embedding(x + offsets, w.reshape(R * V, -1))

    def _backbone(self, prefix: str, bb, h: Tensor) -> Tensor:
        for i, (norm, layer) in enumerate(zip(bb.norms, bb.layers)):
            h = h + self._module(f"{prefix}.layers.{i}", layer, self._norm(f"{prefix}.norms.{i}", h))
        return self._norm(f"{prefix}.norm_f", h)

    def _norm(self, name: str, x: Tensor) -> Tensor:
        return _StackedRMSNormFn.apply(x, self.p(f"{name}.weight"), self._eps(name))

    def _eps(self, name: str) -> float:
        return self.template.get_submodule(name).eps

    def _module(self, name: str, layer: nn.Module, x: Tensor) -> Tensor:
        if isinstance(layer, SwiGLU):
            return _linear(_SwiGLUActFn.apply(_linear(x, self.p(f"{name}.w12.weight"))), self.p(f"{name}.w3.weight"))
        if isinstance(layer, GatedDeltaNet):  # before DeltaNet: not a subclass today, but the more specific
            return self._gated_delta_net(name, layer, x)
        if isinstance(layer, DeltaNet):
            return self._delta_net(name, layer, x)
        if isinstance(layer, RMSNorm):
            return self._norm(name, x)
        if isinstance(layer, nn.Linear):
            return _linear(x, self.p(f"{name}.weight"), self.p(f"{name}.bias") if layer.bias is not None else None)
        if isinstance(layer, nn.GELU):
            return layer(x)
        raise TypeError(f"the stacked model has no run-dimension form of {type(layer).__name__} ({name})")

    def _qkv(self, name: str, layer, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        conv: ShortConv = layer.conv
        w = self.p(f"{name}.conv.weight")
        R = w.shape[0]
        w = w.to(x.dtype).view(R, w.shape[1], conv.kernel_size)
        q, k, v = _StackedCausalConvSiLUFn.apply(_linear(x, self.p(f"{name}.qkv_proj.weight")), w).chunk(3, dim=-1)
        H = layer.num_heads
        return _l2norm(_split_heads(_fold(q), H)), _l2norm(_split_heads(_fold(k), H)), _split_heads(_fold(v), H)

    def _beta(self, name: str, x: Tensor) -> Tensor:
        return _fold(torch.sigmoid(_linear(x, self.p(f"{name}.b_proj.weight")).float())).transpose(1, 2)

    def _out(self, name: str, o: Tensor, x: Tensor) -> Tensor:
        R = x.shape[0]
        o = _merge_heads(o).to(x.dtype)
        return _linear(o.reshape(R, -1, *o.shape[1:]), self.p(f"{name}.o_proj.weight"))

    def _head_norm(self, name: str, o: Tensor, R: int) -> Tensor:
        """Per-head RMSNorm of ``o [R·B, H, L, d]`` with run r's weight on its B sequences."""
        flat = o.reshape(R, -1, o.shape[-1])
        return _StackedRMSNormFn.apply(flat, self.p(f"{name}.weight"), self._eps(name)).reshape(o.shape)

    def _delta_net(self, name: str, layer: DeltaNet, x: Tensor) -> Tensor:
        q, k, v = self._qkv(name, layer, x)
        o = self._head_norm(f"{name}.o_norm", layer.run_rule(q, k, v, self._beta(name, x)), x.shape[0])
        return self._out(name, o, x)

    def _gated_delta_net(self, name: str, layer: GatedDeltaNet, x: Tensor) -> Tensor:
        R, H = x.shape[0], layer.num_heads
        q, k, v = self._qkv(name, layer, x)
        a_log = _runs_view(self.p(f"{name}.A_log"), x)
        dt_bias = _runs_view(self.p(f"{name}.dt_bias"), x)
        g = _fold(-a_log.float().exp() * F.softplus(_linear(x, self.p(f"{name}.a_proj.weight")).float() + dt_bias))
        o, _ = layer.rule(q, k, v, beta=self._beta(name, x), g=g.transpose(1, 2), chunk_size=layer.chunk_size)
        gate = _split_heads(_fold(_linear(x, self.p(f"{name}.g_proj.weight"))), H)
        o = self._head_norm(f"{name}.o_norm.norm", o, R) * F.silu(gate.float()).to(o.dtype)
        return self._out(name, o, x)


def _pad_tokens_runs(x: Tensor, multiple: int) -> Tensor:
    """``model._pad_tokens`` for ``[R, B, T]`` tokens."""
    R, B, T_ = x.shape
    return _pad_tokens(x.reshape(R * B, T_), multiple).reshape(R, B, -1)


# ---------------------------------------------------------------------------------------------------------
# AdamW with a run dimension
# ---------------------------------------------------------------------------------------------------------
def adamw_step(params: list[Tensor], grads: list[Tensor], exp_avgs: list[Tensor], exp_avg_sqs: list[Tensor],
               bc2_sqrt: float | Tensor, decay: Tensor, neg_step_size: Tensor, alive: Tensor | None = None) -> None:
    """One step of ``torch.optim.AdamW`` (its single-tensor loop: betas 0.9/0.999, eps 1e-8, no amsgrad) on
    stacked tensors ``[R, ...]``, every run with its own lr and wd:

        p ← p · (1 − lr_r wd_r)                          ``decay [R]``
        m ← lerp(m, g, 1 − β₁);  v ← β₂ v + (1 − β₂) g²
        p ← p − (lr_r / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)   ``neg_step_size [R]`` = −lr_r / (1 − β₁ᵗ)

    ``bc2_sqrt`` is √(1 − β₂ᵗ) (a float, or a 0-d tensor in a CUDA graph). The per-run factors are computed in
    double and rounded to the parameters' dtype once, as AdamW rounds its Python scalars, so each run's update is
    the one AdamW makes alone. ``alive [R]`` (bool): a run that
    is not alive keeps its parameters (its moments may go non-finite; it is finished)."""
    beta1, beta2 = BETAS
    for p, g, m, v in zip(params, grads, exp_avgs, exp_avg_sqs):
        shape = (p.shape[0],) + (1,) * (p.dim() - 1)
        p.mul_(decay.view(shape))
        m.lerp_(g, 1 - beta1)
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        denom = (v.sqrt() / bc2_sqrt).add_(EPS)
        update = neg_step_size.view(shape) * m / denom  # addcdiv's order: (value · m) / denom
        if alive is not None:
            update = torch.where(alive.view(shape), update, 0.0)
        p.add_(update)


class _Schedule:
    """Run r's learning rate per epoch, exactly as ``CosineAnnealingLR(AdamW(lr, wd), T_max=epochs, eta_min=1e-6)``
    steps it in ``train_run`` (its recursive form, on a one-number optimizer)."""

    def __init__(self, lr: float, wd: float, epochs: int):
        self._opt = torch.optim.AdamW([torch.zeros(1, requires_grad=True)], lr=lr, weight_decay=wd)
        self._sched = torch.optim.lr_scheduler.CosineAnnealingLR(self._opt, T_max=epochs, eta_min=1e-6)

    @property
    def lr(self) -> float:
        return self._opt.param_groups[0]["lr"]

    def step(self) -> None:
        self._opt.step()  # no gradient: changes nothing, and keeps the scheduler's order check quiet
        self._sched.step()


# ---------------------------------------------------------------------------------------------------------
# The trainer
# ---------------------------------------------------------------------------------------------------------
def stack_key(spec: RunSpec) -> tuple:
    """The runs one stack may hold: the same variant, task, setting, scale and budget (so the same shapes)."""
    return spec.variant, spec.task, spec.setting, spec.scale, spec.budget_id


def _check_specs(specs: list[RunSpec]) -> None:
    if not specs:
        raise ValueError("a stack needs at least one run")
    keys = {stack_key(s) for s in specs}
    if len(keys) != 1:
        raise ValueError(f"a stack holds runs of one variant × task × setting × scale × budget; got {len(keys)}: "
                         f"{sorted(map(str, keys))[:4]}")
    if len(set(specs)) != len(specs):
        raise ValueError("a stack holds each run once")


class _Member:
    """What a lone run keeps in ``train_run``'s loop, for one run of the stack."""

    def __init__(self, spec: RunSpec, data: dict, budget_epochs: int):
        self.spec = spec
        self.x_te, self.y_te = torch.from_numpy(data["x_test"]), torch.from_numpy(data["y_test"])
        self.order = torch.Generator().manual_seed(spec.seed)
        self.schedule = _Schedule(spec.lr, spec.wd, budget_epochs)
        self.evals = Evaluations()
        self.diverged = False
        self.train_time = self.eval_time = self.setup_time = 0.0
        self.train_tokens = 0
        self.epoch = 0


def train_stack(specs: list[RunSpec], scale: Scale, variant, *, device: torch.device | None = None,
                on_result: Callable[[RunSpec, RunResult], None] | None = None, progress: bool = False,
                graph: bool | None = None) -> list[RunResult]:
    """Train ``specs`` (runs of one variant × task × setting, see ``stack_key``) as one stacked model; return their
    results in ``specs``' order, each what ``train.train_run(spec, scale, variant)`` returns for it alone (up to float
    rounding: tests/test_stack.py) but for the times. ``on_result(spec, result)`` is called the moment a run
    finishes, so a caller can store it while the others train on. Times: each epoch's training time is shared out
    equally among the runs trained in it; evaluation is timed per run; ``environment.stack`` is the stack's size.
    ``graph``: capture the step in a CUDA graph (default: on CUDA unless ``DELTALAB_STACK_GRAPH=0``)."""
    _check_specs(specs)
    path = os.environ.get("DELTALAB_TRAIN_PATH") or "reference"
    if path != "reference":
        raise ValueError(f"the stacked trainer runs the reference path; $DELTALAB_TRAIN_PATH is {path!r}")
    t_start = time.perf_counter()
    device = device or default_device()
    if graph is None:
        graph = device.type == "cuda" and os.environ.get("DELTALAB_STACK_GRAPH", "1") != "0"
    if graph and device.type != "cuda":
        raise ValueError("graph=True needs a CUDA device")
    precision = resolve_precision(scale.precision, device)
    spec0 = specs[0]
    budget = scale.tasks[spec0.task]
    vocab = T.vocab_size(spec0.task, spec0.setting_dict)
    data_of: dict[int, dict] = {}
    for s in specs:  # one seed, one data set: the runs of a seed at each (lr, wd) share it
        if s.seed not in data_of:
            data_of[s.seed] = run_data(s, scale)
    members = [_Member(s, data_of[s.seed], budget.epochs) for s in specs]
    x_tr = torch.stack([torch.from_numpy(data_of[s.seed]["x_train"]) for s in specs]).to(device)  # [R, N, T]
    y_tr = torch.stack([torch.from_numpy(data_of[s.seed]["y_train"]) for s in specs]).to(device)
    max_length = max(x_tr.shape[2], members[0].x_te.shape[1])
    rule, backend = fast_rule(variant, device)
    models = []
    for s in specs:  # each run's initial weights, drawn as train_run draws them
        torch.manual_seed(s.seed)
        models.append(build_model(T.TASKS[s.task].backbone, vocab, mixer_of(variant, rule),
                                  max_length=max_length).to(device))
    num_params = sum(p.numel() for p in models[0].parameters())
    stack = StackedModel(models)
    del models
    state = {key: (torch.zeros_like(p), torch.zeros_like(p)) for key, p in stack.params.items()}
    setup = time.perf_counter() - t_start
    for m in members:
        m.setup_time = setup / len(members)

    active = list(range(len(members)))  # indices into members, in stack order
    results: dict[int, RunResult] = {}
    n_train, batch = x_tr.shape[1], budget.batch_size
    step = 0
    stepper = _GraphedStep(stack, state, precision, vocab, device) if graph else None
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=budget.epochs, desc=f"{spec0.variant} {spec0.task} ×{len(specs)}", file=sys.stderr,
                   leave=False)
    for epoch in range(1, budget.epochs + 1):
        t0 = time.perf_counter()
        A = len(active)
        perms = torch.stack([torch.randperm(n_train, generator=members[i].order) for i in active]).to(device)
        lrs = [members[i].schedule.lr for i in active]
        wds = [members[i].spec.wd for i in active]
        decay = torch.tensor([1 - lr * wd for lr, wd in zip(lrs, wds)], dtype=torch.float32, device=device)
        neg_lr = torch.tensor([-lr for lr in lrs], dtype=torch.float64, device=device)  # per step: / (1 − β₁ᵗ)
        runs = torch.arange(A, device=device).view(A, 1)
        alive = torch.ones(A, dtype=torch.bool, device=device)
        loss_sum = torch.zeros(A, dtype=torch.float64, device=device)
        n_batches = torch.zeros(A, dtype=torch.int64, device=device)
        tokens = torch.zeros(A, dtype=torch.int64, device=device)
        for start in range(0, n_train, batch):
            idx = perms[:, start:start + batch]
            xb, yb = x_tr[runs, idx], y_tr[runs, idx]  # [A, b, T]: run r's batch from run r's data and order
            step += 1
            neg_step = (neg_lr / (1 - BETAS[0] ** step)).float()  # as AdamW: in double, rounded once
            bc2_sqrt = (1 - BETAS[1] ** step) ** 0.5
            if stepper is not None and stepper.fits(xb):
                losses = stepper(xb, yb, bc2_sqrt, decay, neg_step, alive)
            else:
                losses = _step(stack, state, xb, yb, precision, vocab, bc2_sqrt, decay, neg_step, alive)
            counted = alive  # _step has already cleared the runs whose loss is not finite
            loss_sum += torch.where(counted, losses.double(), 0.0)
            n_batches += counted
            tokens += counted * xb[0].numel()
        elapsed = time.perf_counter() - t0
        alive_now, sums, counts, toks = alive.tolist(), loss_sum.tolist(), n_batches.tolist(), tokens.tolist()
        last = epoch == budget.epochs
        finished = []
        for j, i in enumerate(active):
            m = members[i]
            m.schedule.step()
            m.epoch = epoch
            m.train_time += elapsed / A
            m.train_tokens += toks[j]
            diverged = not alive_now[j]
            if diverged or last or epoch % scale.eval_every == 0:
                t1 = time.perf_counter()
                metrics = evaluate(stack.load_run(j), m.x_te, m.y_te, vocab, scale.eval_batch_size, precision,
                                   device, path=path)
                m.eval_time += time.perf_counter() - t1
                metrics["train_loss"] = sums[j] / max(counts[j], 1)
                m.evals.add(epoch, metrics, diverged, scale.early_stop)
            m.diverged = diverged
            if diverged or m.evals.early_stopped or last:
                finished.append(j)
                results[i] = _result(m, variant, scale, budget, n_train, num_params, precision, device, path,
                                     len(specs), backend)
                if on_result is not None:
                    on_result(m.spec, results[i])
        if bar is not None:
            bar.update(1)
        if finished:
            keep = [j for j in range(A) if j not in finished]
            active = [active[j] for j in keep]
            if not active:
                break
            stack.keep(keep)
            for key, (m1, m2) in list(state.items()):
                index = torch.tensor(keep, device=device)
                state[key] = (m1.index_select(0, index), m2.index_select(0, index))
            x_tr, y_tr = x_tr[keep], y_tr[keep]
            if stepper is not None:
                stepper = _GraphedStep(stack, state, precision, vocab, device)
    if bar is not None:
        bar.close()
    return [results[i] for i in range(len(members))]


def _losses(stack: StackedModel, xb: Tensor, yb: Tensor, precision: str, vocab: int, cache: bool = True) -> Tensor:
    """Each run's mean cross-entropy over its scored positions, ``[R]``, as ``train_run`` computes a lone run's.
    ``cache=False``: autocast without its cast cache (what a CUDA graph capture needs)."""
    ctx = autocast(precision, xb.device) if cache or precision != "bf16" else \
        torch.autocast(device_type=xb.device.type, dtype=torch.bfloat16, cache_enabled=False)
    with ctx:
        logits = stack(xb)
    logits = logits.float()
    R = logits.shape[0]
    if xb.device.type == "cuda":  # one loss for all runs (the same means, summed in another order)
        ce = F.cross_entropy(logits.reshape(-1, vocab), yb.reshape(-1), ignore_index=IGNORE, reduction="none")
        return ce.view(R, -1).sum(1) / (yb != IGNORE).view(R, -1).sum(1)
    return torch.stack([F.cross_entropy(logits[r].reshape(-1, vocab), yb[r].reshape(-1), ignore_index=IGNORE)
                        for r in range(R)])  # on the CPU, each run's loss as train_run computes it, to the bit


def _step(stack: StackedModel, state: dict, xb: Tensor, yb: Tensor, precision: str, vocab: int,
          bc2_sqrt: float | Tensor, decay: Tensor, neg_step: Tensor, alive: Tensor, cache: bool = True) -> Tensor:
    """Forward, backward and AdamW for every run; a run whose loss is not finite is cleared from ``alive`` (in
    place) before the update, so it keeps the weights that gave that loss (a lone run breaks there)."""
    losses = _losses(stack, xb, yb, precision, vocab, cache)
    alive &= torch.isfinite(losses)
    keys = list(stack.params)
    params = [stack.params[k] for k in keys]
    grads = torch.autograd.grad(losses.sum(), params)
    with torch.no_grad():
        adamw_step([p.data for p in params], list(grads), [state[k][0] for k in keys], [state[k][1] for k in keys],
                   bc2_sqrt, decay, neg_step, alive)
    return losses.detach()


class _GraphedStep:
    """``_step`` on CUDA as one graph for the full batches: the inputs and the step's numbers (``decay``,
    ``neg_step``, √(1 − β₂ᵗ), ``alive``) are copied into static buffers and the graph replayed; a short last batch
    runs eagerly. Captured at the first full batch after ``WARMUP`` eager steps on a side stream (as
    ``torch.cuda.graph`` asks), with autocast's cast cache off. ``_record`` is the one CUDA-specific piece (a test
    replaces it to check the buffers' logic on the CPU). Not yet run on a GPU."""

    WARMUP = 3

    def __init__(self, stack: StackedModel, state: dict, precision: str, vocab: int, device: torch.device):
        self.stack, self.state, self.precision, self.vocab, self.device = stack, state, precision, vocab, device
        self.replay = None
        self.failed = False  # the capture failed: every step runs eagerly
        self.shape = None
        self.seen = 0

    def fits(self, xb: Tensor) -> bool:
        if self.shape is None:
            self.shape = tuple(xb.shape)
        return tuple(xb.shape) == self.shape

    def __call__(self, xb, yb, bc2_sqrt: float, decay, neg_step, alive) -> Tensor:
        if self.failed or (self.replay is None and self.seen < self.WARMUP):
            self.seen += 1
            with self._side_stream():
                return _step(self.stack, self.state, xb, yb, self.precision, self.vocab, bc2_sqrt, decay, neg_step,
                             alive, cache=False)
        if self.replay is None:
            self.x, self.y = torch.empty_like(xb), torch.empty_like(yb)
            self.decay, self.neg_step, self.alive = torch.empty_like(decay), torch.empty_like(neg_step), \
                torch.empty_like(alive)
            self.bc2_sqrt = torch.ones((), device=self.device)
            self.losses = torch.empty(xb.shape[0], device=self.device)
            try:
                self.replay = self._record(lambda: _step(self.stack, self.state, self.x, self.y, self.precision,
                                                         self.vocab, self.bc2_sqrt, self.decay, self.neg_step,
                                                         self.alive, cache=False))
            except Exception as e:  # a capture that fails (an op that syncs, a library that cannot be captured)
                warnings.warn(f"the stacked step could not be captured in a CUDA graph ({type(e).__name__}: {e}); "
                              "this stack trains without one", RuntimeWarning, stacklevel=2)
                self.failed = True
                return self(xb, yb, bc2_sqrt, decay, neg_step, alive)
        self.x.copy_(xb)
        self.y.copy_(yb)
        self.decay.copy_(decay)
        self.neg_step.copy_(neg_step)
        self.bc2_sqrt.fill_(bc2_sqrt)
        self.alive.copy_(alive)
        self.replay()
        alive.copy_(self.alive)
        return self.losses.clone()

    def _side_stream(self):
        from contextlib import nullcontext

        if self.device.type != "cuda":
            return nullcontext()
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        return _StreamThenJoin(stream, self.device)

    def _record(self, body: Callable[[], Tensor]) -> Callable[[], None]:
        """Capture ``body`` (its result written into ``self.losses``) in a CUDA graph; return its replay."""
        graph = torch.cuda.CUDAGraph()
        torch.cuda.synchronize(self.device)
        with torch.cuda.graph(graph):
            self.losses.copy_(body())
        return graph.replay


class _StreamThenJoin:
    """``with torch.cuda.stream(s)``, and the current stream waits for ``s`` afterwards."""

    def __init__(self, stream, device):
        self.stream, self.device, self.ctx = stream, device, torch.cuda.stream(stream)

    def __enter__(self):
        return self.ctx.__enter__()

    def __exit__(self, *exc):
        self.ctx.__exit__(*exc)
        torch.cuda.current_stream(self.device).wait_stream(self.stream)
        return False


def _result(m: _Member, variant, scale: Scale, budget, n_train: int, num_params: int, precision: str,
            device: torch.device, path: str, size: int, backend: str) -> RunResult:
    best, best_epoch = m.evals.chosen()
    wall = m.setup_time + m.train_time + m.eval_time
    return RunResult(
        spec=asdict(m.spec) | {"setting": m.spec.setting_dict},
        label=variant.label,
        metrics={k: v for k, v in best.items() if k != "epoch"},
        best_epoch=best_epoch,
        epochs_run=m.epoch,
        curve=m.evals.curve,
        diverged=m.diverged,
        early_stopped=m.evals.early_stopped,
        wall_time_s=wall,
        train_time_s=m.train_time,
        eval_time_s=m.eval_time,
        train_tokens_per_s=m.train_tokens / m.train_time if m.train_time > 0 else float("nan"),
        num_params=num_params,
        precision=precision,
        backend=backend,
        budget={"num_train_examples": n_train, "num_test_examples": len(m.x_te), "epochs": budget.epochs,
                "batch_size": budget.batch_size, "eval_every": scale.eval_every},
        environment=environment(device) | {"train_path": path, "stack": size},
    )
