"""Where a train step's time goes: ``python -m deltalab bench --profile`` (docs/performance.md, issue 15).

``torch.profiler`` over train steps of a task's model at the ``cpu`` scale's shapes (batch 32), every op's self
CPU time attributed to the part of the model that issued it. Forward ops are labelled by the module (or the
autograd Function) they run in; backward ops by the forward op that recorded their autograd node (the
profiler's sequence numbers link the two), so ``dW = xᵀ dy`` of a SwiGLU projection counts as "dense
matmuls", and the chunk loop's hand-written backward as "rule: chunk loop".

    dense matmuls          every nn.Linear (q/k/v, β, output, SwiGLU W12/W3, head), forward and backward
    rule: UT transform     the triangular inverse of every chunk (``_UTInverse``)
    rule: chunk loop       delta_net's ``_ChunkLoop`` / the gated loop; for the other variants the whole loop
                           is autograd through plain ops and counts as "rule: rest"
    rule: rest             the preamble (chunk-major copies, β scaling, W = T Kβ, U = T V), the epilogue, and
                           for variants their loop body
    short conv + SiLU      the depthwise causal conv of q, k, v and its SiLU
    norms                  RMSNorms (pre-norms, final, per-head output) and the L2 norm of q and k
    SwiGLU activation      SiLU(a) ⊙ b
    embedding, loss        embedding lookup and its gradient; log-softmax + NLL
    AdamW                  ``optimizer.step`` and ``zero_grad``
    gradient accumulation  autograd writing .grad of the leaves
    other                  residual adds, head split/merge copies, β/gate projections' elementwise work, glue

The profiler times ops by the wall clock, so the table gives each category's share of the profiled ops' total;
the step itself is timed by this process's CPU time (``time.process_time``), which other work on the machine
disturbs less. The fixed cost of a step (the interpreter, op dispatch, autograd's bookkeeping) is measured
apart, as the step time at batch 1 (``batch_scaling``).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict

import torch
import torch.nn as nn
import torch.nn.functional as F

# autograd Functions and record_function labels → category (the nearest one above an op wins)
_NAMED = {
    "_UTInverse": "rule: UT transform",
    "_ChunkLoop": "rule: chunk loop",
    "_GatedChunkLoop": "rule: chunk loop",
    "_CausalConvSiLUFn": "short conv + SiLU",
    "_RMSNormFn": "norms",
    "_L2NormFn": "norms",
    "_SwiGLUActFn": "SwiGLU activation",
}
_LABEL = "deltalab::"
CATEGORIES = ["dense matmuls", "rule: UT transform", "rule: chunk loop", "rule: rest", "short conv + SiLU", "norms",
              "SwiGLU activation", "embedding", "loss", "AdamW", "gradient accumulation", "other"]


def _module_label(module: nn.Module) -> str | None:
    from ..layers import RMSNorm, ShortConv

    if isinstance(module, nn.Linear):
        return "dense matmuls"
    if isinstance(module, nn.Embedding):
        return "embedding"
    if isinstance(module, RMSNorm):
        return "norms"
    if isinstance(module, ShortConv):
        return "short conv + SiLU"
    return None


def label_model(model: nn.Module) -> list:
    """Wrap every labelled module's forward in a ``record_function`` (and every mixer's rule in "rule: rest");
    returns the hook handles."""
    from torch.autograd.profiler import record_function

    handles = []
    for m in model.modules():
        label = _module_label(m)
        if label is None:
            continue
        stack: list = []

        def pre(_m, _a, label=label, stack=stack):
            rf = record_function(_LABEL + label)
            rf.__enter__()
            stack.append(rf)

        def post(_m, _a, _o, stack=stack):
            stack.pop().__exit__(None, None, None)

        handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    for m in model.modules():
        rule = getattr(m, "rule", None)
        if callable(rule) and not isinstance(rule, nn.Module):
            def labelled(*a, _rule=rule, **k):
                with record_function(_LABEL + "rule: rest"):
                    return _rule(*a, **k)

            m.rule = labelled
    return handles


def _own_label(name: str) -> str | None:
    if name.startswith(_LABEL):
        return name[len(_LABEL):]
    base = name[:-len("Backward")] if name.endswith("Backward") else name
    return _NAMED.get(base)


def attribute(events) -> dict[str, float]:
    """Self CPU time (µs) per category over a list of profiler ``FunctionEvent``s."""
    fwd_label: dict[int, str] = {}
    cache: dict[int, str] = {}

    def label_of(e) -> str:
        key = id(e)
        if key in cache:
            return cache[key]
        chain = []
        found = None
        node = e
        while node is not None:
            if id(node) in cache:
                found = cache[id(node)]
                break
            chain.append(node)
            own = _own_label(node.name)
            if own is not None:
                found = own
                break
            if node.name.startswith("autograd::engine::evaluate_function: "):
                fn = node.name.split(": ", 1)[1]
                if fn.startswith("torch::autograd::AccumulateGrad"):
                    found = "gradient accumulation"
                else:
                    found = fwd_label.get(node.sequence_nr, "other")
                break
            if node.name.startswith("Optimizer.") or node.name.startswith("Optimizer#"):
                found = "AdamW"
                break
            if node.name.startswith("deltalab-loss"):
                found = "loss"
                break
            node = node.cpu_parent
        found = found or "other"
        for n in chain:
            cache[id(n)] = found
        return found

    # forward events first (in time order), so that every backward node finds its forward label
    for e in sorted(events, key=lambda ev: ev.time_range.start):
        if e.sequence_nr >= 0 and not e.name.startswith("autograd::engine"):
            fwd_label.setdefault(e.sequence_nr, label_of(e))
    out: dict[str, float] = defaultdict(float)
    for e in events:
        out[label_of(e)] += e.self_cpu_time_total
    return dict(out)


def _task_batch(task: str, setting: dict, batch: int):
    from .. import tasks as T

    x, y = T.load(task, "train", max(batch, 64), T.SEED, **T.generator_kwargs(task, setting))
    backbone = T.TASKS[task].backbone
    return torch.from_numpy(x[:batch]), torch.from_numpy(y[:batch]), T.vocab_size(task, setting), backbone


def _make_step(model, opt, x, y, vocab: int, scored: bool):
    from torch.autograd.profiler import record_function

    from ..train import IGNORE

    def step():
        if scored:
            keep = y != IGNORE
            logits = model(x, keep)
            with record_function("deltalab-loss"):
                loss = F.cross_entropy(logits.float(), y[keep])
        else:
            logits = model(x)
            with record_function("deltalab-loss"):
                loss = F.cross_entropy(logits.float().reshape(-1, vocab), y.reshape(-1), ignore_index=IGNORE)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def profile_step(variant: str, task: str, setting: dict | None = None, *, batch: int = 32, steps: int = 3,
                 warmup: int = 2, threads: int = 1, scored: bool = False) -> dict:
    """Breakdown of one train step of ``variant`` on ``task``'s model and data shapes (see the module doc)."""
    from torch.profiler import ProfilerActivity, profile

    from ..model import build_model
    from ..train import mixer_factory
    from ..variants import get_variant

    torch.set_num_threads(threads)
    x, y, vocab, backbone = _task_batch(task, setting or {}, batch)
    torch.manual_seed(0)
    model = build_model(backbone, vocab, mixer_factory(get_variant(variant)), max_length=x.shape[1])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    step = _make_step(model, opt, x, y, vocab, scored and backbone == "lm")
    for _ in range(warmup):
        step()
    plain = []
    for _ in range(steps):
        t0 = time.process_time()
        step()
        plain.append(time.process_time() - t0)
    handles = label_model(model)
    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    for h in handles:
        h.remove()
    per = {k: v / steps / 1e3 for k, v in attribute(prof.events()).items()}  # ms per step
    step_ms = statistics.median(plain) * 1e3
    return {"variant": variant, "task": task, "setting": setting or {}, "batch": batch, "length": x.shape[1],
            "threads": threads, "scored_only": scored, "step_ms": step_ms, "tokens_per_s": batch * x.shape[1] / (step_ms / 1e3),
            "breakdown_ms": per}


def profile_eval(variant: str, task: str, setting: dict | None = None, *, num_test: int = 512,
                 eval_batch_size: int = 256, threads: int = 1) -> dict:
    """CPU time of ``train.evaluate`` on ``num_test`` test examples, reference and fast path, each split into
    model forward and metrics (best of two, interleaved)."""
    from .. import tasks as T
    from ..model import build_model
    from ..train import evaluate, mixer_factory
    from ..variants import get_variant

    torch.set_num_threads(threads)
    setting = setting or {}
    x, y = T.load(task, "test", num_test, T.SEED, **T.generator_kwargs(task, setting))
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    vocab = T.vocab_size(task, setting)
    torch.manual_seed(0)
    model = build_model(T.TASKS[task].backbone, vocab, mixer_factory(get_variant(variant)), max_length=x.shape[1])
    fwd = [0.0]
    inner = model.forward

    def timed(*a, **k):
        t0 = time.process_time()
        out = inner(*a, **k)
        fwd[0] += time.process_time() - t0
        return out

    model.forward = timed
    out: dict = {"variant": variant, "task": task, "setting": setting, "num_test": num_test,
                 "eval_batch_size": eval_batch_size}
    for _ in range(2):
        for path in ("reference", "fast"):
            fwd[0] = 0.0
            t0 = time.process_time()
            evaluate(model, x, y, vocab, eval_batch_size, "fp32", torch.device("cpu"), path=path)
            total = (time.process_time() - t0) * 1e3
            if path not in out or total < out[path]["eval_ms"]:
                out[path] = {"eval_ms": total, "forward_ms": fwd[0] * 1e3, "metrics_ms": total - fwd[0] * 1e3}
    return out


def batch_scaling(variant: str, task: str, setting: dict | None = None, *, batches=(1, 32, 128), rounds: int = 4,
                  threads: int = 1) -> dict:
    """CPU µs per token of a train step at several batch sizes, measured interleaved (best of ``rounds``).

    Batch 1 is about the fixed cost of a step (op dispatch, Python, autograd bookkeeping). Batch 128 against
    32 bounds what training four seeds as one stacked computation could gain: a stacked step does the work of
    a batch-128 step (every activation four times as large) plus per-run weights (bmm instead of mm), so it
    cannot take less time per token than the batch-128 step of one model."""
    from ..model import build_model
    from ..train import mixer_factory
    from ..variants import get_variant

    torch.set_num_threads(threads)
    steps = {}
    for b in batches:
        x, y, vocab, backbone = _task_batch(task, setting or {}, b)
        torch.manual_seed(0)
        model = build_model(backbone, vocab, mixer_factory(get_variant(variant)), max_length=x.shape[1])
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
        steps[b] = (_make_step(model, opt, x, y, vocab, False), b * x.shape[1])
        steps[b][0]()
    best = {b: float("inf") for b in batches}
    for _ in range(rounds):
        for b, (step, _tokens) in steps.items():
            t0 = time.process_time()
            step()
            best[b] = min(best[b], time.process_time() - t0)
    return {"variant": variant, "task": task, "threads": threads,
            "us_per_token": {b: best[b] / steps[b][1] * 1e6 for b in batches},
            "step_ms": {b: best[b] * 1e3 for b in batches}}


SHAPES = [  # (task, setting): the cpu scale's shapes — lengths 32 (AutoEncoder and a 2,048-way head), 128, 256
    ("memorization", {"vocab_size": 2048}),
    ("compression", {}),
    ("in-context-recall", {}),
    ("selective-copying", {}),
]


def _table(rows: list[dict]) -> str:
    head = f"{'category':<24}" + "".join(f"{r['task'][:10] + ' L' + str(r['length']):>17}" for r in rows)
    lines = [head, "-" * len(head)]
    for c in CATEGORIES:
        cells = []
        for r in rows:
            ms = r["breakdown_ms"].get(c, 0.0)
            cells.append(f"{ms:8.1f} ms {100 * ms / sum(r['breakdown_ms'].values()):4.0f}%")
        lines.append(f"{c:<24}" + "".join(f"{s:>17}" for s in cells))
    lines.append(f"{'profiled ops, total':<24}" + "".join(f"{sum(r['breakdown_ms'].values()):14.1f} ms" for r in rows))
    lines.append(f"{'step, CPU time':<24}" + "".join(f"{r['step_ms']:14.1f} ms" for r in rows))
    lines.append(f"{'tokens/s':<24}" + "".join(f"{r['tokens_per_s']:17.0f}" for r in rows))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m deltalab bench --profile", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variant", default="delta_net")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--scored-only", action="store_true", help="train through the scored-positions path")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    import warnings

    warnings.filterwarnings("ignore", message="Triton is not supported")
    rows = [profile_step(args.variant, t, s, threads=args.threads, steps=args.steps, scored=args.scored_only)
            for t, s in SHAPES]
    evals = [profile_eval(args.variant, t, s, threads=args.threads) for t, s in SHAPES]
    scaling = [batch_scaling(args.variant, t, s, threads=args.threads) for t, s in SHAPES[1:]]
    if args.json:
        print(json.dumps({"steps": rows, "eval": evals, "batch_scaling": scaling}))
        return 0
    import os

    print(f"train step of {args.variant}, batch 32, {args.threads} thread(s), CPU time per step "
          f"(load average {os.getloadavg()[0]:.2f})")
    print(_table(rows))
    print("\nevaluation of 512 test examples (train.evaluate at eval_batch_size 256), CPU time:")
    for e in evals:
        r, f = e["reference"], e["fast"]
        print(f"  {e['task']:<22} reference {r['eval_ms']:6.0f} ms (forward {r['forward_ms']:6.0f}, metrics "
              f"{r['metrics_ms']:4.0f})   fast {f['eval_ms']:6.0f} ms (forward {f['forward_ms']:6.0f}, metrics "
              f"{f['metrics_ms']:4.0f})   {r['eval_ms'] / f['eval_ms']:.2f}×")
    print("\nCPU µs per token of a train step by batch size (batch 1 ≈ the fixed cost per step; batch 128 bounds a "
          "stacked step of four seeds):")
    for r in scaling:
        cells = "  ".join(f"batch {b}: {us:6.1f} µs/token ({r['step_ms'][b]:6.1f} ms)" for b, us in r["us_per_token"].items())
        print(f"  {r['task']:<22} {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
