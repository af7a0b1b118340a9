"""How fast a train step could possibly be: ``python -m deltalab bench --bound`` (docs/performance.md, issue 15).

Every path computes the model's dense projections (q/k/v, β, output, SwiGLU W12 and W3, the head), and each
``nn.Linear`` costs three GEMMs per train step at the step's ``M = batch × length`` rows::

    Y = X Wᵀ   [M, in] × [in, out]        dX = dY W   [M, out] × [out, in]        dW = dYᵀ X   [out, M] × [M, in]

This module times exactly those GEMMs, one after another as a step issues them, with nothing else (no rule, no
norms, no conv, no optimizer), at the grid's thread count, and puts them beside the measured train steps of
the fla-naive reference and of delta_net's default path. ``reference step / GEMMs`` is the most any path can gain
over the reference while torch's GEMM runs at the speed measured here: the rest of the step (the rule, norms,
conv, activations, loss, AdamW) could at best vanish. The GEMM rate is also shown against the machine's matmul
peak (a 2,048³ fp32 GEMM at the same thread count), which says how much faster a better GEMM could make them.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

import torch
import torch.nn as nn

from .trainstep import DIM, VOCAB, _times, build, matmul_peak, measure_path


def linear_shapes(model: nn.Module) -> list[tuple[int, int]]:
    """``(in_features, out_features)`` of every ``nn.Linear`` of ``model``, in module order."""
    return [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]


def gemm_flops(shapes: list[tuple[int, int]], rows: int) -> int:
    """FLOPs of the three GEMMs (forward, input gradient, weight gradient) of every Linear at ``rows`` rows."""
    return sum(3 * 2 * rows * i * o for i, o in shapes)


def time_gemms(shapes: list[tuple[int, int]], rows: int, repeats: int = 7, warmup: int = 2) -> float:
    """Median seconds of one step's worth of the Linears' GEMMs (fp32), each on its own operands as in a step."""
    g = torch.Generator().manual_seed(0)
    ops = [(torch.randn(rows, i, generator=g), torch.randn(o, i, generator=g), torch.randn(rows, o, generator=g))
           for i, o in shapes]

    def step():
        for x, w, dy in ops:
            x @ w.T  # Y = X Wᵀ
            dy @ w  # dX = dY W
            dy.T @ x  # dW = dYᵀ X

    return statistics.median(_times(step, warmup, repeats))


def measure(*, batch: int, length: int, threads: int, steps: int = 7) -> dict:
    torch.set_num_threads(threads)
    model, _, _ = build("delta_net", precision="fp32")
    shapes = linear_shapes(model)
    rows = batch * length
    gemm_s = time_gemms(shapes, rows, repeats=steps)
    flops = gemm_flops(shapes, rows)
    peak = matmul_peak(threads, torch.float32, 2048, 4)
    step = {path: measure_path(path, threads=threads, batch=batch, length=length, warmup=2, steps=steps,
                               eval_steps=1, flops=False, precision="fp32")["train_step_s"]
            for path in ("reference", "delta_net")}
    return {
        "batch": batch, "length": length, "threads": threads, "vocab": VOCAB, "width": DIM,
        "linears": len(shapes), "gemm_s": gemm_s, "gemm_gflops": flops / gemm_s / 1e9, "matmul_peak_gflops": peak,
        "gemm_share_of_peak": flops / gemm_s / 1e9 / peak,
        "reference_step_s": step["reference"], "delta_net_step_s": step["delta_net"],
        "delta_net_over_reference": step["reference"] / step["delta_net"],
        "ceiling_over_reference": step["reference"] / gemm_s,
        "ceiling_over_delta_net": step["delta_net"] / gemm_s,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m deltalab bench --bound", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the grid's 2 × 1 layout)")
    p.add_argument("--shapes", default="32x128,32x256,128x128", help="comma-separated batch×length (default: "
                   "the cpu scale's batch 32 at lengths 128 and 256, and batch 128)")
    p.add_argument("--steps", type=int, default=7)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    try:
        shapes = [tuple(int(n) for n in s.lower().split("x")) for s in args.shapes.split(",") if s.strip()]
        if any(len(s) != 2 or min(s) < 1 for s in shapes):
            raise ValueError
    except ValueError:
        p.error(f"--shapes takes batch×length pairs such as 32x128,128x128; got {args.shapes!r}")
    load = os.getloadavg()[0]
    rows = [measure(batch=b, length=n, threads=args.threads, steps=args.steps) for b, n in shapes]
    if args.json:
        print(json.dumps({"load_average_at_start": load, "bound": rows}))
        return 0
    print(f"The dense projections' GEMMs alone against whole fp32 train steps; {args.threads} thread(s), "
          f"load average at start {load:.2f} (compare on a quiet machine only)\n")
    print(f"{'batch×len':>10} {'GEMMs ms':>9} {'GFLOP/s':>8} {'of peak':>8} {'ref step ms':>12} {'dn step ms':>11} "
          f"{'dn/ref':>7} {'ceiling/ref':>12} {'ceiling/dn':>11}")
    for r in rows:
        print(f"{r['batch']:>5}×{r['length']:<4} {1e3 * r['gemm_s']:9.1f} {r['gemm_gflops']:8.1f} "
              f"{r['gemm_share_of_peak']:8.0%} {1e3 * r['reference_step_s']:12.1f} {1e3 * r['delta_net_step_s']:11.1f} "
              f"{r['delta_net_over_reference']:7.2f} {r['ceiling_over_reference']:12.2f} {r['ceiling_over_delta_net']:11.2f}")
    print("\nceiling/ref: reference step ÷ GEMMs, the most any path can gain over the reference at this GEMM speed "
          "(everything but the projections' GEMMs taking no time); of peak: the GEMMs' rate against a 2,048³ fp32 "
          "GEMM at the same thread count.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
