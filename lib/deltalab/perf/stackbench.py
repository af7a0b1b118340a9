"""The stacked trainer's step against the lone trainer's, and what a grid would take at those speeds (a benchmark,
not a test: it prints measured figures and a projection from them).

    python -m deltalab.perf.stackbench [--runs R] [--batch B] [--json FILE] [--project SCALE:VARIANTS[:LR,WD,SEED]] ...

For each cell shape (task × setting: vocabulary and sequence length) it times, on this machine's default device:

    single    one run's train step as ``train.train_run`` takes it (forward, loss, backward, AdamW, ``loss.item()``)
    stacked   R runs' step as ``stack.train_stack`` takes it (``stack._step``; on CUDA the captured graph too)

for each rule backend the device has (CUDA: the Triton twin and the PyTorch function; CPU: PyTorch), and reports
seconds per step and per run-step. ``--project`` then adds up a grid from those times: per stack (the runs of one
variant × task × setting, ``grid.planning.stacks``), epochs × (batches per epoch × its stacked step time + its runs ×
one evaluation). That is an upper bound: every run trains all its epochs (early stopping only shortens a run), and
stacks run one after another. On a CPU the figures are CPU figures, labelled so; with ``--batch`` (or ``--runs``)
below the grid's, a step time is measured at that size and scaled linearly to the grid's (labelled "scaled").

Defaults: ``--project mad:delta_net`` (the 144 runs of one variant at ``mad``) and
``--project mad-full:delta_net,gated_delta_net:0.001,0.1,0`` (both baselines at one sweep point: 132 runs).
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from .. import tasks as T
from ..model import build_model
from ..params import load_scale
from ..runtime import autocast, default_device, device_name, resolve_precision
from ..train import IGNORE, evaluate, fast_rule, mixer_factory

DEFAULT_PROJECTIONS = ("mad:delta_net", "mad-full:delta_net,gated_delta_net:0.001,0.1,0")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device, warmup: int, steps: int) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _models(task: str, setting: dict, variant, runs: int, backend: str, device: torch.device, length: int):
    rule_device = device if backend == "triton" else torch.device("cpu")  # mixer_factory's rule for that backend
    out = []
    for seed in range(runs):
        torch.manual_seed(seed)
        out.append(build_model(T.TASKS[task].backbone, T.vocab_size(task, setting),
                               mixer_factory(variant, rule_device), max_length=length).to(device))
    return out


def time_cell(task: str, setting: dict, variant, *, runs: int, batch: int, backend: str, device: torch.device,
              precision: str, warmup: int, steps: int, eval_examples: int, graph: bool) -> dict:
    """Seconds per step of one lone run and of a stack of ``runs``, and of one run's evaluation of
    ``eval_examples`` test examples, at ``task``/``setting``'s shapes (its data generator's batch)."""
    from ..stack import StackedModel, _GraphedStep, _step

    x, y = T.generate(task, "train", max(batch, eval_examples), T.SEED, **T.generator_kwargs(task, setting))
    x, y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
    vocab = T.vocab_size(task, setting)
    xb, yb = x[:batch], y[:batch]
    model = _models(task, setting, variant, 1, backend, device, x.shape[1])[0]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)

    def single():  # train_run's step
        with autocast(precision, device):
            logits = model(xb)
        loss = F.cross_entropy(logits.float().reshape(-1, vocab), yb.reshape(-1), ignore_index=IGNORE)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()

    t_single = _timed(single, device, warmup, steps)
    t_eval = _timed(lambda: evaluate(model, x[:eval_examples].cpu(), y[:eval_examples].cpu(), vocab,
                                     eval_examples, precision, device), device, 1, max(1, steps // 4))
    stack = StackedModel(_models(task, setting, variant, runs, backend, device, x.shape[1]))
    state = {k: (torch.zeros_like(p), torch.zeros_like(p)) for k, p in stack.params.items()}
    xs, ys = xb.expand(runs, *xb.shape).contiguous(), yb.expand(runs, *yb.shape).contiguous()
    decay = torch.full((runs,), 1 - 1e-4, device=device)
    neg = torch.full((runs,), -1e-3, device=device)
    alive = torch.ones(runs, dtype=torch.bool, device=device)
    count = [0]

    def stacked_eager():
        count[0] += 1
        _step(stack, state, xs, ys, precision, vocab, (1 - 0.999 ** count[0]) ** 0.5, decay, neg, alive)

    out = {"task": task, "setting": setting, "backend": backend, "runs": runs, "batch": batch,
           "seq_len": int(x.shape[1]), "vocab": vocab, "single_step_s": t_single,
           "stacked_step_s": _timed(stacked_eager, device, warmup, steps), "eval_s": t_eval,
           "eval_examples": eval_examples}
    if graph:
        stepper = _GraphedStep(stack, state, precision, vocab, device)
        stepper.fits(xs)

        def stacked_graph():
            count[0] += 1
            stepper(xs, ys, (1 - 0.999 ** count[0]) ** 0.5, decay, neg, alive)

        out["stacked_graph_step_s"] = _timed(stacked_graph, device, warmup + _GraphedStep.WARMUP + 1, steps)
        out["graph_captured"] = stepper.replay is not None and not stepper.failed  # else the figure is eager
    out["speedup_per_run"] = t_single * runs / min(out["stacked_step_s"], out.get("stacked_graph_step_s", math.inf))
    return out


def project(spec: str, measure, device: torch.device, batch: int | None, runs_cap: int | None) -> dict:
    """The upper-bound time of ``SCALE:VARIANTS[:LR,WD,SEED]``'s grid from ``measure(task, setting, variant, runs,
    batch)`` (seconds per stacked step, per evaluation, at that size)."""
    from ..grid.planning import plan, stacks
    from ..variants import get_variant

    parts = spec.split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"--project takes SCALE:VARIANTS[:LR,WD,SEED]; got {spec!r}")
    scale = load_scale(parts[0])
    runs = plan(parts[1].split(","), scale)
    if len(parts) == 3:
        lr, wd, seed = parts[2].split(",")
        runs = [(r, s) for r, s in runs if s.lr == float(lr) and s.wd == float(wd) and s.seed == int(seed)]
        if not runs:
            raise ValueError(f"--project {spec}: no run of {parts[0]} at lr {lr}, wd {wd}, seed {seed}")
    total, cells, scaled = 0.0, [], False
    for ref, specs in stacks(runs):
        budget = scale.tasks[specs[0].task]
        setting = specs[0].setting_dict
        n_train = setting.get("num_train_examples", budget.num_train_examples)
        R, B = len(specs), budget.batch_size
        r_meas, b_meas = min(R, runs_cap or R), min(B, batch or B)
        m = measure(specs[0].task, setting, get_variant(ref), r_meas, b_meas)
        step = min(m["stacked_step_s"], m.get("stacked_graph_step_s", math.inf)) * (R / r_meas) * (B / b_meas)
        evaluation = m["eval_s"] * scale.num_test_examples / m["eval_examples"]
        scaled |= (r_meas, b_meas) != (R, B) or m["eval_examples"] != scale.num_test_examples
        seconds = budget.epochs * (math.ceil(n_train / B) * step + R * evaluation)
        total += seconds
        cells.append({"variant": specs[0].variant, "task": specs[0].task, "setting": setting, "runs": R,
                      "step_s": step, "eval_s": evaluation, "seconds": seconds})
    return {"projection": spec, "runs": len(runs), "stacks": len(cells), "seconds": total, "scaled": scaled,
            "device": device_name(device), "cells": cells}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m deltalab.perf.stackbench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", default="mad", help="the scale whose shapes and precision the timing uses")
    ap.add_argument("--variant", default="delta_net")
    ap.add_argument("--tasks", default="in-context-recall", help="tasks timed at their first setting (comma list)")
    ap.add_argument("--runs", type=int, default=None, help="stack size timed (default: 24 on CUDA, 4 on a CPU)")
    ap.add_argument("--batch", type=int, default=None, help="sequences per run and step (default: the scale's "
                    "batch on CUDA, 8 on a CPU)")
    ap.add_argument("--eval-examples", type=int, default=None, help="test examples one evaluation is timed on "
                    "(default: the scale's on CUDA, 16 on a CPU)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--project", action="append", default=None, help="SCALE:VARIANTS[:LR,WD,SEED] (repeatable; "
                    f"default: {' and '.join(DEFAULT_PROJECTIONS)}); 'none' for no projection")
    ap.add_argument("--json", default=None, help="also write every figure to this file")
    args = ap.parse_args(argv)
    device = default_device()
    cuda = device.type == "cuda"
    scale = load_scale(args.scale)
    precision = resolve_precision(scale.precision, device)
    runs = args.runs or (24 if cuda else 4)
    batch_cap = args.batch or (None if cuda else 8)
    eval_cap = args.eval_examples or (None if cuda else 16)
    backends = ["pytorch"]
    from ..variants import get_variant

    if cuda and fast_rule(get_variant(args.variant), device)[1] == "triton":
        backends.insert(0, "triton")
    label = "GPU" if cuda else "CPU"
    report = {"device": device_name(device), "kind": label, "precision": precision, "timings": [], "projections": []}
    print(f"{label} figures: {device_name(device)}, {precision}")
    cache: dict = {}

    def measure(task, setting, variant, r, b, backend=backends[0]):
        key = (task, tuple(sorted(setting.items())), variant.name, r, b, backend)
        if key not in cache:
            budget = scale.tasks.get(task)
            e = min(eval_cap or scale.num_test_examples, scale.num_test_examples)
            cache[key] = time_cell(task, setting, variant, runs=r, batch=b or (budget.batch_size if budget else 128),
                                   backend=backend, device=device, precision=precision, warmup=args.warmup,
                                   steps=args.steps, eval_examples=e, graph=cuda)
        return cache[key]

    for task in args.tasks.split(","):
        budget = scale.tasks[task]
        for backend in backends:
            m = measure(task, budget.settings[0], get_variant(args.variant), runs, batch_cap or budget.batch_size,
                        backend)
            report["timings"].append(m)
            graph = f", graphed {m['stacked_graph_step_s'] * 1e3:.1f} ms" if "stacked_graph_step_s" in m else ""
            print(f"  {task} {backend} (batch {m['batch']} × {m['seq_len']}): single {m['single_step_s'] * 1e3:.1f} "
                  f"ms/step; stack of {runs} {m['stacked_step_s'] * 1e3:.1f} ms/step{graph} "
                  f"({m['speedup_per_run']:.2f}× the lone steps)")
    for spec in (args.project or list(DEFAULT_PROJECTIONS)):
        if spec == "none":
            continue
        p = project(spec, measure, device, batch_cap, None if cuda else runs)
        report["projections"].append(p)
        note = " (scaled from smaller measured sizes)" if p["scaled"] else ""
        print(f"  projected {spec}: {p['runs']} runs in {p['stacks']} stacks, {p['seconds'] / 60:.1f} min on this "
              f"{label}, upper bound (every run trains all its epochs){note}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
