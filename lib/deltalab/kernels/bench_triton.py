"""Benchmark (GPU only): forward and forward+backward times of the chunkwise delta rule and gated delta rule.

Compares this package's Triton kernels with fla-core's ``chunk_delta_rule`` / ``chunk_gated_delta_rule`` and
with the PyTorch chunkwise path (``deltalab.core``), in bf16, chunk size 64 for all three, at the shapes
(B, L, H, D) of ``SHAPES`` (D = 64: the study's head dim; D = 128: a common model head dim) or ``--shapes``.

    python -m deltalab.kernels.bench_triton [--rules delta,gated] [--dtype bf16] [--chunk 64] [--no-torch]
        [--shapes "B,L,H,D;B,L,H,D"] [--cap SECONDS] [--json PATH]

Times are medians from ``triton.testing.do_bench`` in milliseconds. fla takes ``[B, T, H, D]`` inputs; they are
made in that layout beforehand, so no transpose is timed. The PyTorch path's backward is autograd through the
chunk loop (slow at long L; ``--no-torch`` skips it). A shape whose measurements have taken more than ``--cap``
seconds (default 20) has its remaining ones skipped, and the output says so; a measurement that fails (out of
memory, shared memory, fla refusing its backward) is reported with its error and the run goes on. ``--json``
writes every row (with the device and versions) to a file.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import torch
import torch.nn.functional as F

SHAPES = [(128, L, 2, 64) for L in (128, 256, 512, 1024)] + [(8, 2048, 8, 64)] + [
    (32, 1024, 4, 128), (8, 4096, 16, 128)]
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
DEFAULT_CAP_S = 20.0


def parse_shapes(text: str) -> list[tuple[int, int, int, int]]:
    """``"B,L,H,D;B,L,H,D"`` -> [(B, L, H, D), ...]; a clear error for anything else."""
    shapes = []
    for part in text.split(";"):
        if not part.strip():
            continue
        try:
            dims = tuple(int(x) for x in part.split(","))
        except ValueError:
            dims = ()
        if len(dims) != 4 or min(dims) < 1:
            raise ValueError(f"--shapes: {part.strip()!r} is not four positive integers B,L,H,D "
                             "(shapes are separated by ';', e.g. \"128,512,2,64;8,4096,16,128\")")
        shapes.append(dims)
    if not shapes:
        raise ValueError("--shapes: no shape given (e.g. \"128,512,2,64;8,4096,16,128\")")
    return shapes


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


def _measure(fn, ins, backward: bool) -> tuple[float, str]:
    """(median ms, "") or (nan, the error) for an error that leaves the GPU usable."""
    try:
        return _time(fn, ins, backward), ""
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        return float("nan"), "out of memory"
    except RuntimeError as exc:  # triton's OutOfResources, fla's refusal of a backward, ...
        torch.cuda.empty_cache()
        return float("nan"), f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"


def bench(rules, shapes, dtype, chunk, with_torch, cap_s, out=print) -> list[dict]:
    rows = []
    for rule in rules:
        gated = rule == "gated"
        runners = _runners(gated, chunk, with_torch)
        for B, L, H, D in shapes:
            start = time.perf_counter()
            for name, (head_first, fn) in runners.items():
                row = dict(rule=rule, B=B, L=L, H=H, D=D, impl=name, fwd_ms=None, fwd_bwd_ms=None, note="")
                for key, backward in (("fwd_ms", False), ("fwd_bwd_ms", True)):
                    spent = time.perf_counter() - start
                    if spent > cap_s:
                        row["note"] = (row["note"] + "; " if row["note"] else "") + (
                            f"{'fwd+bwd' if backward else 'fwd'} skipped: the shape had used {spent:.0f} s "
                            f"of its {cap_s:g} s cap")
                        continue
                    ins = _inputs(B, L, H, D, dtype, gated, head_first)
                    ms, err = _measure(fn, ins, backward)
                    del ins
                    torch.cuda.empty_cache()
                    row[key] = None if err else ms
                    if err:
                        row["note"] = (row["note"] + "; " if row["note"] else "") + (
                            f"{'fwd+bwd' if backward else 'fwd'}: {err}")
                rows.append(row)
                out(_line(row))
    return rows


def _fmt(ms) -> str:
    return f"{ms:9.3f}" if ms is not None else f"{'—':>9s}"


def _line(r: dict) -> str:
    s = (f"{r['rule']:6s} {r['B']:4d} {r['L']:5d} {r['H']:2d} {r['D']:3d}  {r['impl']:16s} "
         f"{_fmt(r['fwd_ms'])} {_fmt(r['fwd_bwd_ms'])}")
    return s + (f"  # {r['note']}" if r["note"] else "")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rules", default="delta,gated")
    ap.add_argument("--dtype", default="bf16", choices=sorted(DTYPES))
    ap.add_argument("--chunk", type=int, default=64)
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch path")
    ap.add_argument("--shapes", help='B,L,H,D shapes separated by ";" (default: %s)' % (
        ";".join(",".join(map(str, s)) for s in SHAPES)))
    ap.add_argument("--cap", type=float, default=DEFAULT_CAP_S,
                    help="seconds per shape; its remaining measurements are skipped after that (default 20)")
    ap.add_argument("--json", metavar="PATH", help="also write the rows, device and versions as JSON")
    args = ap.parse_args(argv)
    try:
        shapes = parse_shapes(args.shapes) if args.shapes else SHAPES
    except ValueError as exc:
        ap.error(str(exc))
    rules = args.rules.split(",")
    bad = [r for r in rules if r not in ("delta", "gated")]
    if bad:
        ap.error(f"--rules: unknown {bad}; known: delta, gated")
    if args.cap <= 0:
        ap.error(f"--cap must be positive seconds; got {args.cap}")
    if not torch.cuda.is_available():
        sys.exit("bench_triton needs a CUDA GPU")
    dtype = DTYPES[args.dtype]
    print(f"# {torch.cuda.get_device_name()}  dtype={args.dtype}  chunk={args.chunk}  (ms, median; "
          f"cap {args.cap:g} s per shape)")
    print(f"{'rule':6s} {'B':>4s} {'L':>5s} {'H':>2s} {'D':>3s}  {'impl':16s} {'fwd':>9s} {'fwd+bwd':>9s}", flush=True)
    rows = bench(rules, shapes, dtype, args.chunk, not args.no_torch, args.cap,
                 out=lambda s: print(s, flush=True))
    if args.json:
        import triton

        try:
            import fla

            fla_version = getattr(fla, "__version__", "?")
        except ImportError:
            fla_version = None
        meta = dict(device=torch.cuda.get_device_name(), torch=torch.__version__, triton=triton.__version__,
                    fla=fla_version, python=platform.python_version(), dtype=args.dtype, chunk=args.chunk,
                    cap_s=args.cap, shapes=[list(s) for s in shapes])
        with open(args.json, "w") as f:
            json.dump(dict(meta, rows=rows), f, indent=1)
        print(f"# wrote {args.json}")


if __name__ == "__main__":
    main()
