"""Train-step throughput of every path: ``python -m deltalab bench`` (or ``python -m deltalab.perf.bench``).

Model: the 4-layer MAD LanguageModel (width 128, vocab 16, two mixers + two SwiGLUs), batch 128, length 128.
A *train step* is what ``deltalab.train`` does per batch: forward under the run's autocast, cross-entropy,
``zero_grad``, backward and an AdamW step. Paths:

    reference        DeltaNet with fla's naive ``fla.ops.delta_rule.naive.delta_rule_chunkwise`` as the rule,
                     in fp32, and the layers' op-by-op reference twins (``layers.use_reference_ops``): the
                     model as the seed results ran it, before the fast paths
    delta_net        the project's default path, at ``resolve_precision('auto')``
    <variant>        every registered variant (gated_delta_net included), at the same precision

    python -m deltalab bench [--threads 2] [--variants a,b] [--quick] [--json] [--out FILE] [--in-process]
                            [--thread-layouts | --no-thread-layouts] [--omp-passive] [--steps N] [--warmup N]
                            [--batch 128] [--length 128] [--precision auto|fp32|bf16]
    python -m deltalab bench --grid [--json] ...     runs per hour of a mini-grid, old vs new path (perf.gridbench)
    python -m deltalab bench --profile [...]         where a train step's time goes (perf.profiling)
    python -m deltalab bench --bound [...]           the dense GEMMs alone against whole train steps: how fast a
                                                     step could be (perf.gemmbound)

On a CPU with native bf16 (avx512_bf16 / AMX) the report adds delta_net and gated_delta_net at fp32 and at
bf16 autocast side by side, so that the precision policy is chosen on measurements.

Each path runs in its own fresh process (``--in-process`` to skip that), so that its peak memory is the
peak resident set size of a process that built and trained only that path: ``resource.getrusage`` ``ru_maxrss``
(it counts everything torch allocated, unlike tracemalloc, which sees only Python's allocator). The figure
printed is that peak and, in brackets, its increase over the RSS just after the imports.

Timing: ``--warmup`` untimed steps, then ``--steps`` timed ones; the median step time is reported (the
minimum too, in the JSON). Other processes on the machine slow the steps down, so compare figures taken
in one run. FLOPs per token are counted with ``torch.utils.flop_counter.FlopCounterMode`` over one train
step (matmuls and convs, forward + backward; elementwise work and the optimizer are not counted), and the
utilisation is that count × tokens/s over the matmul peak measured here (a 2048³ fp32 matmul, a 1024³ bf16
one, at the chosen threads, best of several).

``--thread-layouts`` (on by default for a full run) also compares, for delta_net, one process with two
threads (libgomp's default spin-waiting, and ``OMP_WAIT_POLICY=PASSIVE``) against two concurrent
single-thread processes (summed throughput): the grid's choice. ``--omp-passive`` runs every path with
``OMP_WAIT_POLICY=PASSIVE``: with other load on the cores, spin-waiting makes two-thread steps 2-6× slower
(docs/performance.md).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone

import torch

from . import trainstep
from .trainstep import DIM, VOCAB, matmul_peak, measure_path


# ---------------------------------------------------------------------------------------------------------
# The driver: one child process per path (each measured by ``trainstep.measure_path``).
# ---------------------------------------------------------------------------------------------------------
def _worker_cmd(path: str, args, threads: int, precision: str | None = None) -> list[str]:
    return [sys.executable, "-m", "deltalab.perf.bench", "--worker", path, "--threads", str(threads),
            "--batch", str(args.batch), "--length", str(args.length), "--warmup", str(args.warmup),
            "--steps", str(args.steps), "--eval-steps", str(args.eval_steps),
            "--precision", precision or args.precision] + (["--no-flops"] if args.no_flops else []) + (
        ["--cpu-time"] if args.cpu_time else [])


def _child_env(threads: int, passive: bool = False) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONWARNINGS="ignore")
    if passive:  # read by libgomp when torch is imported, so it can only be set for a fresh process
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    return env


def _parse_child(proc: subprocess.CompletedProcess | subprocess.Popen, out: str, err: str, path: str) -> dict:
    for line in reversed(out.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"benchmark worker for {path!r} failed (rc {proc.returncode}):\n{err[-3000:]}")


def run_path(path: str, args, precision: str | None = None) -> dict:
    if args.in_process:
        return measure_path(path, threads=args.threads, batch=args.batch, length=args.length, warmup=args.warmup,
                            steps=args.steps, eval_steps=args.eval_steps, flops=not args.no_flops,
                            precision=precision or args.precision)
    proc = subprocess.run(_worker_cmd(path, args, args.threads, precision), capture_output=True, text=True,
                          env=_child_env(args.threads, args.omp_passive))
    return _parse_child(proc, proc.stdout, proc.stderr, path)


PRECISION_PATHS = ("delta_net", "gated_delta_net")


def precision_compare(args) -> dict:
    """On a CPU with native bf16: the train step of ``PRECISION_PATHS`` at fp32 and at bf16 autocast, each in
    its own process, alternating, so that the precision policy can be chosen on measurements."""
    out: dict[str, dict] = {}
    for path in PRECISION_PATHS:
        for prec in ("fp32", "bf16"):
            r = run_path(path, args, prec)
            out.setdefault(path, {})[prec] = {"train_tokens_per_s": r["train_tokens_per_s"],
                                              "eval_tokens_per_s": r["eval_tokens_per_s"]}
        out[path]["bf16_over_fp32"] = out[path]["bf16"]["train_tokens_per_s"] / out[path]["fp32"]["train_tokens_per_s"]
    return out


def thread_layouts(path: str, args) -> dict:
    """1 process × 2 threads (OpenMP's default spin-waiting, and OMP_WAIT_POLICY=PASSIVE) vs 2 concurrent
    processes × 1 thread (throughput summed)."""
    one = subprocess.run(_worker_cmd(path, args, 2) + ["--no-flops"], capture_output=True, text=True,
                         env=_child_env(2))
    r1 = _parse_child(one, one.stdout, one.stderr, path)
    onep = subprocess.run(_worker_cmd(path, args, 2) + ["--no-flops"], capture_output=True, text=True,
                          env=_child_env(2, passive=True))
    r1p = _parse_child(onep, onep.stdout, onep.stderr, path)
    procs = [subprocess.Popen(_worker_cmd(path, args, 1) + ["--no-flops"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=_child_env(1)) for _ in range(2)]
    rs = []
    for p in procs:
        out, err = p.communicate()
        rs.append(_parse_child(p, out, err, path))
    return {
        "path": path,
        "1x2_train_tokens_per_s": r1["train_tokens_per_s"],
        "1x2_passive_train_tokens_per_s": r1p["train_tokens_per_s"],
        "2x1_train_tokens_per_s": sum(r["train_tokens_per_s"] for r in rs),
        "2x1_per_process": [r["train_tokens_per_s"] for r in rs],
        "1x2_eval_tokens_per_s": r1["eval_tokens_per_s"],
        "2x1_eval_tokens_per_s": sum(r["eval_tokens_per_s"] for r in rs),
    }


def _paths(variants_arg: str | None) -> list[str]:
    from ..variants import VARIANTS

    if variants_arg:
        chosen = [v.strip() for v in variants_arg.split(",") if v.strip()]
        unknown = [v for v in chosen if v not in VARIANTS and v != "reference"]
        if unknown:
            raise SystemExit(f"error: unknown variant(s) {', '.join(unknown)}; valid: {', '.join(VARIANTS)}")
    else:
        chosen = list(VARIANTS)
    out = ["reference", "delta_net"] + [v for v in chosen if v not in ("reference", "delta_net")]
    return out


def _cpu_model() -> str:
    from ..runtime import _cpu_model as m

    return m()


def _table(results: dict, peaks: dict, sequential: set) -> str:
    ref = results["reference"]["train_tokens_per_s"]
    base = results["delta_net"]["train_tokens_per_s"]
    head = (f"{'path':<28}{'prec':>5}{'train tok/s':>13}{'×ref':>7}{'×delta':>8}{'eval tok/s':>12}"
            f"{'MFLOP/tok':>11}{'util':>7}{'peak RSS MB':>17}")
    lines = [head, "-" * len(head)]
    for name, r in results.items():
        t = r["train_tokens_per_s"]
        fl = r.get("train_flops_per_token")
        peak = peaks["bf16" if r["precision"] == "bf16" else "fp32"]
        util = f"{100 * fl * t / (peak * 1e9):6.1f}%" if fl else "     -"
        mflop = f"{fl / 1e6:11.2f}" if fl else f"{'-':>11}"
        rss = f"{r['peak_rss_mb']:7.0f} (+{r['peak_rss_mb'] - r['rss_after_imports_mb']:4.0f})"
        mark = " *" if name in sequential else ""
        lines.append(f"{name + mark:<28}{r['precision']:>5}{t:13.0f}{t / ref:7.2f}{t / base:8.2f}"
                     f"{r['eval_tokens_per_s']:12.0f}{mflop}{util:>7}{rss:>17}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m deltalab bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--variants", default=None, help="comma-separated short names (reference and delta_net always run)")
    p.add_argument("--quick", action="store_true", help="a short run: fewer steps, no thread-layout comparison")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--out", default=None, help="also write the JSON object to this file")
    p.add_argument("--in-process", action="store_true", help="run every path in this process (RSS not per path)")
    p.add_argument("--thread-layouts", dest="thread_layouts", action="store_true", default=None)
    p.add_argument("--no-thread-layouts", dest="thread_layouts", action="store_false")
    p.add_argument("--no-flops", action="store_true", help="skip the FLOP count")
    p.add_argument("--omp-passive", action="store_true",
                   help="run the paths with OMP_WAIT_POLICY=PASSIVE (see docs/performance.md: a busy CPU)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--length", type=int, default=128)
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--eval-steps", type=int, default=None)
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                   help="autocast precision of every path but the reference (default: resolve_precision('auto'))")
    p.add_argument("--cpu-time", action="store_true",
                   help="time steps by process CPU time, not the wall clock (a load-robust yardstick at --threads 1)")
    p.add_argument("--grid", action="store_true",
                   help="the grid benchmark instead (deltalab.perf.gridbench: the reference vs the fast training path)")
    p.add_argument("--profile", action="store_true",
                   help="the train-step profile instead (deltalab.perf.profiling: where a step's time goes)")
    p.add_argument("--bound", action="store_true",
                   help="the dense GEMMs alone against whole train steps instead (deltalab.perf.gemmbound: how fast a "
                        "step could possibly be)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    if argv is None:
        argv = sys.argv[1:]
    modes = [m for m in ("--grid", "--profile", "--bound") if m in argv]
    if len(modes) > 1:
        p.error(f"{' and '.join(modes)} are separate benchmarks: give one")
    if modes:  # their own options: see `--grid --help`, `--profile --help`, `--bound --help`
        rest = [a for a in argv if a != modes[0]]
        if modes[0] == "--grid":
            from .gridbench import main as sub_main
        elif modes[0] == "--profile":
            from .profiling import main as sub_main
        else:
            from .gemmbound import main as sub_main
        return sub_main(rest)
    args = p.parse_args(argv)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    args.steps = args.steps if args.steps is not None else (3 if args.quick else 7)
    args.eval_steps = args.eval_steps if args.eval_steps is not None else (3 if args.quick else 5)
    if args.thread_layouts is None:
        args.thread_layouts = not args.quick

    import warnings

    warnings.filterwarnings("ignore", message="Triton is not supported")
    if args.cpu_time:
        trainstep.CLOCK = time.process_time  # what ``trainstep._times`` times steps by
    if args.worker:
        res = measure_path(args.worker, threads=args.threads, batch=args.batch, length=args.length,
                           warmup=args.warmup, steps=args.steps, eval_steps=args.eval_steps, flops=not args.no_flops,
                           precision=args.precision)
        print(json.dumps(res))
        return 0

    from ..runtime import cpu_has_native_bf16, resolve_precision
    from ..variants import VARIANTS

    paths = _paths(args.variants)
    sequential = {n for n, v in VARIANTS.items() if v.sequential}
    t_start = time.perf_counter()
    peaks = {"fp32": matmul_peak(args.threads, torch.float32, 2048, 3 if args.quick else 6),
             "bf16": matmul_peak(args.threads, torch.bfloat16, 1024 if not args.quick else 512, 2 if args.quick else 3)}
    results: dict[str, dict] = {}
    for path in paths:
        if not args.json:
            print(f"  {path} ...", file=sys.stderr, flush=True)
        results[path] = run_path(path, args)
    layouts = thread_layouts("delta_net", args) if args.thread_layouts else None
    precisions = precision_compare(args) if cpu_has_native_bf16() else None

    ref = results["reference"]["train_tokens_per_s"]
    base = results["delta_net"]["train_tokens_per_s"]
    util = {}
    for n, r in results.items():
        fl = r.get("train_flops_per_token")
        peak = peaks["bf16" if r["precision"] == "bf16" else "fp32"]
        util[n] = fl * r["train_tokens_per_s"] / (peak * 1e9) if fl else None
    report = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{_cpu_model()}, {os.cpu_count()} logical CPUs, {platform.platform(terse=True)}",
        "torch": torch.__version__,
        "threads": args.threads,
        "omp_wait_policy": "PASSIVE" if args.omp_passive else os.environ.get("OMP_WAIT_POLICY", "default"),
        "clock": "process CPU time" if args.cpu_time else "wall clock",
        "load_average_at_start": os.getloadavg(),
        "batch": args.batch, "length": args.length, "warmup": args.warmup, "steps": args.steps,
        "precision": resolve_precision(args.precision, torch.device("cpu")),
        "precision_compare": precisions,
        "cpu_native_bf16": cpu_has_native_bf16(),
        "matmul_peak_gflops": peaks,
        "train_tokens_per_s": {n: r["train_tokens_per_s"] for n, r in results.items()},
        "eval_tokens_per_s": {n: r["eval_tokens_per_s"] for n, r in results.items()},
        "ratio_to_reference": {n: r["train_tokens_per_s"] / ref for n, r in results.items()},
        "ratio_to_delta_net": {n: r["train_tokens_per_s"] / base for n, r in results.items()},
        "train_flops_per_token": {n: r.get("train_flops_per_token") for n, r in results.items()},
        "forward_flops_per_token": {n: r.get("forward_flops_per_token") for n, r in results.items()},
        "flop_utilisation": util,
        "peak_rss_mb": {n: r["peak_rss_mb"] for n, r in results.items()},
        "peak_memory_method": ("resource.getrusage ru_maxrss of a process running only that path"
                               if not args.in_process else "resource.getrusage ru_maxrss of this process (cumulative)"),
        "train_step_min_s": {n: r["train_step_min_s"] for n, r in results.items()},
        "sequential": sorted(sequential),
        "below_half_of_delta_net": sorted(n for n, r in results.items()
                                          if n != "reference" and r["train_tokens_per_s"] < 0.5 * base),
        "thread_layouts": layouts,
        "wall_s": time.perf_counter() - t_start,
    }
    if args.out:  # written whole or not at all
        tmp = f"{args.out}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(report, f, indent=1)
        os.replace(tmp, args.out)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"deltalab.bench  {report['date']}  {report['machine']}  torch {torch.__version__}  "
          f"load average at start {report['load_average_at_start'][0]:.2f}  OMP_WAIT_POLICY {report['omp_wait_policy']}")
    print(f"LanguageModel 4 layers, width {DIM}, vocab {VOCAB}, batch {args.batch}, length {args.length}, "
          f"{args.threads} threads; train step = fwd + bwd + AdamW; median of {args.steps} steps after {args.warmup} "
          f"({report['clock']})")
    print(f"matmul peak at {args.threads} threads: fp32 {peaks['fp32']:.1f} GFLOP/s, bf16 {peaks['bf16']:.1f} GFLOP/s "
          f"(native bf16: {cpu_has_native_bf16()}; the paths ran at: {report['precision']})\n")
    print(_table(results, peaks, sequential))
    print(f"\nMFLOP/tok: train-step matmul+conv FLOPs per token (FlopCounterMode); util: of the measured matmul peak "
          f"at the path's precision. peak RSS: {report['peak_memory_method']} (in brackets: increase over the RSS "
          f"after imports).  * = registered as inherently sequential")
    slow = report["below_half_of_delta_net"]
    print(f"below 0.5× delta_net: {', '.join(slow) if slow else 'none'}")
    if layouts:
        print(f"\nthread layouts ({layouts['path']}): 1 process × 2 threads {layouts['1x2_train_tokens_per_s']:.0f} tok/s "
              f"({layouts['1x2_passive_train_tokens_per_s']:.0f} with OMP_WAIT_POLICY=PASSIVE); "
              f"2 processes × 1 thread {layouts['2x1_train_tokens_per_s']:.0f} tok/s in total "
              f"({' + '.join(f'{t:.0f}' for t in layouts['2x1_per_process'])}); eval "
              f"{layouts['1x2_eval_tokens_per_s']:.0f} vs {layouts['2x1_eval_tokens_per_s']:.0f}")
    if precisions:
        print(f"\nprecision (native bf16 here; batch {args.batch}, length {args.length}, {args.threads} threads, "
              f"train tok/s):")
        for path, r in precisions.items():
            print(f"  {path:<18} fp32 {r['fp32']['train_tokens_per_s']:8.0f}   bf16 {r['bf16']['train_tokens_per_s']:8.0f}"
                  f"   bf16/fp32 {r['bf16_over_fp32']:.2f}   (eval: fp32 {r['fp32']['eval_tokens_per_s']:.0f}, "
                  f"bf16 {r['bf16']['eval_tokens_per_s']:.0f})")
    print(f"\nwall time {report['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
