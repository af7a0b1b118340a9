"""Benchmark (GPU only): forward and forward+backward times of the chunkwise delta rule and gated delta rule.

Compares this package's Triton kernels with fla-core's ``chunk_delta_rule`` / ``chunk_gated_delta_rule`` and
with the PyTorch chunkwise path (``deltalab.core``), in bf16, chunk size 64 for all three, at
B=128, H=2, D=64, L ∈ {128, 256, 512, 1024} and B=8, H=8, D=64, L=2048.

    python -m deltalab.kernels.bench_triton [--rules delta,gated] [--dtype bf16] [--chunk 64] [--no-torch]

Times are medians from ``triton.testing.do_bench`` in milliseconds. fla takes ``[B, T, H, D]`` inputs; they are
made in that layout beforehand, so no transpose is timed. The PyTorch path's backward is autograd through the
chunk loop (slow at long L; ``--no-torch`` skips it).
"""
from __future__ import annotations

import argparse
import sys

import torch
import torch.nn.functional as F

SHAPES = [(128, L, 2, 64) for L in (128, 256, 512, 1024)] + [(8, 2048, 8, 64)]
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def _inputs(B, L, H, D, dtype, gated, head_first, device="cuda"):
    shape = (B, H, L) if head_first else (B, L, H)
    q = torch.randn(*shape, D, device=device, dtype=dtype)
    k = F.normalize(torch.randn(*shape, D, device=device, dtype=torch.float32), dim=-1).to(dtype)
    v = torch.randn(*shape, D, device=device, dtype=dtype)
    beta = torch.rand(*shape, device=device, dtype=torch.float32).sigmoid()
    g = F.logsigmoid(torch.randn(*shape, device=device, dtype=torch.float32) + 2.0) if gated else None
    ins = [q, k, v, beta] + ([g] if gated else [])
    for x in ins:
        x.requires_grad_(True)
    return ins


def _runners(gated: bool, C: int, with_torch: bool):
    """name -> (head_first, fn(ins) -> o)."""
    from deltalab.core import delta_rule_chunkwise, gated_delta_rule_chunkwise
    from deltalab.kernels import delta_rule_chunkwise_triton, gated_delta_rule_chunkwise_triton

    r = {}
    if gated:
        r["deltalab-triton"] = (True, lambda i: gated_delta_rule_chunkwise_triton(
            i[0], i[1], i[2], beta=i[3], g=i[4], chunk_size=C)[0])
        if with_torch:
            r["deltalab-torch"] = (True, lambda i: gated_delta_rule_chunkwise(
                i[0], i[1], i[2], beta=i[3], g=i[4], chunk_size=C)[0])
    else:
        r["deltalab-triton"] = (True, lambda i: delta_rule_chunkwise_triton(i[0], i[1], i[2], i[3], C)[0])
        if with_torch:
            r["deltalab-torch"] = (True, lambda i: delta_rule_chunkwise(i[0], i[1], i[2], i[3], C)[0])
    try:
        if gated:
            from fla.ops.gated_delta_rule import chunk_gated_delta_rule

            # fla's gated kernels use a fixed chunk of 64
            r["fla-core"] = (False, lambda i: chunk_gated_delta_rule(i[0], i[1], i[2], i[4], i[3])[0])
        else:
            from fla.ops.delta_rule import chunk_delta_rule

            r["fla-core"] = (False, lambda i: chunk_delta_rule(i[0], i[1], i[2], i[3], chunk_size=C)[0])
    except ImportError as exc:  # pragma: no cover - depends on the environment
        print(f"# fla-core not importable ({exc}); skipping it", file=sys.stderr)
    return r


def _time(fn, ins, backward: bool) -> float:
    from triton.testing import do_bench

    if not backward:
        def step():
            with torch.no_grad():
                fn(ins)
    else:
        o = fn(ins)
        do = torch.randn_like(o)

        def step():
            out = fn(ins)
            torch.autograd.grad(out, ins, do)
    return do_bench(step, warmup=10, rep=50)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rules", default="delta,gated")
    ap.add_argument("--dtype", default="bf16", choices=sorted(DTYPES))
    ap.add_argument("--chunk", type=int, default=64)
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch path")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        sys.exit("bench_triton needs a CUDA GPU")
    dtype = DTYPES[args.dtype]
    print(f"# {torch.cuda.get_device_name()}  dtype={args.dtype}  chunk={args.chunk}  (ms, median)")
    print(f"{'rule':6s} {'B':>4s} {'L':>5s} {'H':>2s} {'D':>3s}  {'impl':16s} {'fwd':>9s} {'fwd+bwd':>9s}")
    for rule in args.rules.split(","):
        gated = rule == "gated"
        runners = _runners(gated, args.chunk, not args.no_torch)
        for B, L, H, D in SHAPES:
            for name, (head_first, fn) in runners.items():
                ins = _inputs(B, L, H, D, dtype, gated, head_first)
                try:
                    tf = _time(fn, ins, backward=False)
                    tb = _time(fn, ins, backward=True)
                except torch.cuda.OutOfMemoryError:
                    tf = tb = float("nan")
                    torch.cuda.empty_cache()
                print(f"{rule:6s} {B:4d} {L:5d} {H:2d} {D:3d}  {name:16s} {tf:9.3f} {tb:9.3f}", flush=True)
                del ins
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
