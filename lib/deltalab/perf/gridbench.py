"""Grid throughput, old path against new: ``python -m deltalab bench --grid [--json]`` (issue 15).

Trains a fixed mini-grid, every run of it, once through today's path (``train_run(path="reference")``: the
loop the study's cpu grids ran) and once through the new one (``path="fast"``), each with the
grid's own layout (``grid.execute``: 2 worker processes × 1 thread on a 2-core machine) into a fresh
temporary store, and prints runs per hour and training tokens per second of each and their ratio (new over
old), with the machine's conditions, and the CPU time the workers took per run (``getrusage`` of the reaped worker
processes: less disturbed than the wall clock when other work shares the cores). ``--rounds 2`` runs old,
new, new, old (drift in the machine's load then weighs on both alike). ``--interleaved`` also trains every
run through both paths back to back in one process, the comparison that other work on the machine disturbs
least. With ``--json`` the last line is one JSON object holding ``"grid": {"old":
{"runs_per_hour": …}, "new": {…}, "ratio": …}``.

The mini-grid is the ``cpu`` scale's task settings × ``--variants`` (default delta_net and decay_state,
one plain-loop variant, as 25 of the 27 rows are) × seeds 0 and 1, with the budgets of ``BUDGETS``: an eighth
of the cpu scale's training and test examples (64 test examples instead of 512, so evaluation weighs against
training as it does there) and epochs chosen so that each task's share of the mini-grid's time is close to
its share of the cpu grid's (selective copying ~21 %, in-context recall ~28 %, fuzzy recall ~17 %, noisy
recall ~11 %, compression ~10 %, memorization ~12 %). A minute or two per path with two workers on
a quiet 2-core machine. Data sets are generated (or read from the cache) before the clock starts.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import yaml

# task → (train examples per epoch, epochs); the cpu scale's settings of each task are kept
BUDGETS = {  # an eighth of cpu-v1's (examples, epochs), in the comments; 512 test examples there
    "in-context-recall": (400, 1),  # 3,200 × 3 (V=16 stops early after 1-2 epochs); both settings
    "noisy-in-context-recall": (400, 1),  # 3,200 × 2
    "fuzzy-in-context-recall": (400, 2),  # 3,200 × 3
    "selective-copying": (150, 3),  # 1,200 × 4
    "compression": (100, 12),  # 800 × 24
    "memorization": (32, 10),  # 256 × 40 (V=256 stops early after ~12 epochs); both settings
}
NUM_TEST = 64  # every task keeps the cpu scale's ratio of test to training examples (512 : 3,200 … 512 : 256)
DEFAULT_VARIANTS = ("delta_net", "decay_state")
SEEDS = (0, 1)


def bench_scale_yaml(precision: str) -> dict:
    """The mini-grid as a scale file: the cpu scale's tasks and settings at ``BUDGETS``."""
    from ..params import load_scale

    cpu = load_scale("cpu")
    tasks = {}
    for task, budget in cpu.tasks.items():
        n, epochs = BUDGETS[task]
        tasks[task] = {"num_train_examples": n, "epochs": epochs, "batch_size": budget.batch_size,
                       "settings": [dict(s) for s in budget.settings]}
    return {"name": "gridbench", "description": "python -m deltalab bench --grid: the cpu grid in miniature",
            "lrs": list(cpu.lrs), "wds": list(cpu.wds), "seeds": list(SEEDS), "precision": precision,
            "num_test_examples": NUM_TEST, "eval_batch_size": cpu.eval_batch_size, "eval_every": 1,
            "early_stop": cpu.early_stop, "tasks": tasks}


@contextmanager
def _train_path(path: str):
    """``$DELTALAB_TRAIN_PATH`` for the worker processes started inside (``train_run(path=None)`` reads it)."""
    before = os.environ.get("DELTALAB_TRAIN_PATH")
    os.environ["DELTALAB_TRAIN_PATH"] = path
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("DELTALAB_TRAIN_PATH", None)
        else:
            os.environ["DELTALAB_TRAIN_PATH"] = before


def run_grid(path: str, runs, scale, root: Path, workers: int, threads: int) -> dict:
    """Train every run of ``runs`` through ``path`` into a fresh store under ``root``; timings and records."""
    from ..grid import execute
    from ..store import Store

    store = Store(root / path)
    load0 = os.getloadavg()
    with _train_path(path):
        cpu0 = _cpu_seconds()
        t0 = time.perf_counter()
        summary = execute(runs, scale, store, workers=workers, threads=threads, progress=False)
        wall = time.perf_counter() - t0
        cpu = _cpu_seconds() - cpu0
    records = [store.get(spec) for _, spec in runs]
    missing = [spec for (_, spec), r in zip(runs, records) if r is None]
    if missing or summary.busy or summary.skipped:
        raise RuntimeError(f"the {path} grid did not train every run itself: {summary}; missing {missing[:3]}")
    wrong = {r["environment"].get("train_path") for r in records} - {path}
    if wrong:
        raise RuntimeError(f"the {path} grid's records say they were trained by {wrong}")
    tokens = sum(r["train_tokens_per_s"] * r["train_time_s"] for r in records)
    per_task: dict[str, dict[str, float]] = {}
    for r in records:
        t = per_task.setdefault(r["spec"]["task"], {"train": 0.0, "eval": 0.0})
        t["train"] += r["train_time_s"]
        t["eval"] += r["eval_time_s"]
    return {"path": path, "per_task_process_s": per_task, "runs": len(records), "wall_s": wall, "cpu_s": cpu,
            "runs_per_hour": len(records) / wall * 3600,
            "train_tokens": tokens, "tokens_per_s": tokens / wall,
            "process_s": {"train": sum(r["train_time_s"] for r in records),
                          "eval": sum(r["eval_time_s"] for r in records),
                          "run": sum(r["wall_time_s"] for r in records)},
            "load_average_before": load0, "load_average_after": os.getloadavg(),
            "records": {Path(store.path(spec)).relative_to(store.root).as_posix(): r
                        for (_, spec), r in zip(runs, records)}}


def interleaved(runs, scale, threads: int) -> dict:
    """Every run of the mini-grid trained here, in this process, through both paths back to back (reference
    first for even runs, fast first for odd ones): a comparison that load changing over minutes cannot bias,
    as each pair runs within seconds. Returns the summed seconds (wall clock and this process's CPU time) per
    path and the ratios."""
    from ..runtime import set_threads
    from ..train import train_run
    from ..variants import get_variant

    set_threads(threads)
    tot = {p: {"wall_s": 0.0, "cpu_s": 0.0} for p in ("reference", "fast")}
    for i, (ref, spec) in enumerate(runs):
        for path in (("reference", "fast") if i % 2 == 0 else ("fast", "reference")):
            t0, c0 = time.perf_counter(), time.process_time()
            train_run(spec, scale, get_variant(ref), path=path)
            tot[path]["wall_s"] += time.perf_counter() - t0
            tot[path]["cpu_s"] += time.process_time() - c0
    return {"runs": len(runs), "threads": threads, "old": tot["reference"], "new": tot["fast"],
            "ratio_wall": tot["reference"]["wall_s"] / tot["fast"]["wall_s"],
            "ratio_cpu": tot["reference"]["cpu_s"] / tot["fast"]["cpu_s"]}


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its finished children: the grid's worker processes
    are reaped when ``execute`` returns, so the difference over a grid is the CPU time it took, less
    disturbed by other work on the machine than the wall clock."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _combine(parts: list[dict]) -> dict:
    runs = sum(p["runs"] for p in parts)
    wall = sum(p["wall_s"] for p in parts)
    tokens = sum(p["train_tokens"] for p in parts)
    per_task = {t: {k: sum(p["per_task_process_s"][t][k] for p in parts) for k in ("train", "eval")}
                for t in parts[0]["per_task_process_s"]}
    cpu = sum(p["cpu_s"] for p in parts)
    return {"runs": runs, "wall_s": wall, "runs_per_hour": runs / wall * 3600, "tokens_per_s": tokens / wall,
            "cpu_s": cpu, "cpu_s_per_run": cpu / runs,
            "per_task_process_s": per_task,
            "process_s": {k: sum(p["process_s"][k] for p in parts) for k in ("train", "eval", "run")},
            "load_average": [(p["load_average_before"][0], p["load_average_after"][0]) for p in parts]}


def agreement(old: dict, new: dict) -> dict:
    """How far the two paths' results are apart, run by run (float rounding grows over training steps)."""
    diffs = []
    for key, r in old["records"].items():
        s = new["records"][key]
        diffs.append(abs(r["metrics"]["test_acc"] - s["metrics"]["test_acc"]))
    same = sum(d == 0 for d in diffs)
    return {"runs": len(diffs), "identical_accuracy": same, "max_abs_accuracy_difference": max(diffs),
            "mean_abs_accuracy_difference": sum(diffs) / len(diffs)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m deltalab bench --grid", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    p.add_argument("--rounds", type=int, default=1, help="1: old, new; 2: old, new, new, old")
    p.add_argument("--precision", default="fp32", choices=("auto", "fp32", "bf16"),
                   help="the mini-grid's precision (default fp32, as the cpu scale trains)")
    p.add_argument("--interleaved", action="store_true",
                   help="also train every run through both paths back to back in this process (1 thread): the "
                        "comparison least disturbed by other work on the machine")
    p.add_argument("--keep", default=None, help="keep the two stores under this folder (default: deleted)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.rounds not in (1, 2):
        raise SystemExit(f"error: --rounds takes 1 or 2; got {args.rounds}")

    import warnings

    import torch

    warnings.filterwarnings("ignore", message="Triton is not supported")
    from ..params import load_scale
    from ..grid import plan
    from ..runtime import _cpu_model, cpu_has_native_bf16
    from ..train import run_data
    from ..variants import VARIANTS

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"error: unknown variant(s) {', '.join(unknown)}; valid: {', '.join(VARIANTS)}")
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="deltalab-gridbench-"))
    try:
        scale_file = root / "gridbench.yaml"
        root.mkdir(parents=True, exist_ok=True)
        scale_file.write_text(yaml.safe_dump(bench_scale_yaml(args.precision), sort_keys=False))
        scale = load_scale(scale_file)
        runs = plan(variants, scale, seeds=list(SEEDS))
        for _, spec in runs:  # every data set generated or cached before the clock starts
            run_data(spec, scale)
        if not args.json:
            print(f"mini-grid: {len(variants)} variants × {sum(len(b.settings) for b in scale.tasks.values())} "
                  f"task settings × {len(SEEDS)} seeds = {len(runs)} runs per path, {args.workers} workers × "
                  f"{args.threads} thread(s), {args.precision}", file=sys.stderr, flush=True)
        order = ["reference", "fast"] if args.rounds == 1 else ["reference", "fast", "fast", "reference"]
        parts: dict[str, list[dict]] = {"reference": [], "fast": []}
        for i, path in enumerate(order):
            if not args.json:
                print(f"  {path} path (round {i // 2 + 1}) ...", file=sys.stderr, flush=True)
            sub = root / f"round{i}"
            parts[path].append(run_grid(path, runs, scale, sub, args.workers, args.threads))
        inter = None
        if args.interleaved:
            if not args.json:
                print("  both paths run by run, in this process ...", file=sys.stderr, flush=True)
            inter = interleaved(runs, scale, 1)
        old, new = _combine(parts["reference"]), _combine(parts["fast"])
        report = {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{_cpu_model()}, {os.cpu_count()} logical CPUs, {platform.platform(terse=True)}",
            "torch": torch.__version__, "cpu_native_bf16": cpu_has_native_bf16(),
            "workers": args.workers, "threads_per_worker": args.threads, "precision": args.precision,
            "variants": variants, "seeds": list(SEEDS), "runs_per_path": len(runs), "rounds": args.rounds,
            "budgets": {t: {"num_train_examples": n, "epochs": e} for t, (n, e) in BUDGETS.items()},
            "num_test_examples": NUM_TEST,
            "agreement": agreement(parts["reference"][0], parts["fast"][0]),
            "interleaved": inter,
            "grid": {"old": old | {"path": "reference"}, "new": new | {"path": "fast"},
                     "ratio": new["runs_per_hour"] / old["runs_per_hour"],
                     "cpu_ratio": old["cpu_s_per_run"] / new["cpu_s_per_run"]},
        }
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    if not args.json:
        print(f"deltalab bench --grid  {report['date']}  {report['machine']}  torch {report['torch']}")
        print(f"{len(runs)} runs per path ({', '.join(variants)} × the cpu scale's task settings × seeds "
              f"{', '.join(map(str, SEEDS))}, reduced budgets), {args.workers} workers × {args.threads} thread(s), "
              f"{args.precision}; rounds: {' → '.join(order)}")
        for name, r in (("old (reference)", old), ("new (fast)", new)):
            loads = ", ".join(f"{a:.2f}→{b:.2f}" for a, b in r["load_average"])
            print(f"  {name:<16} {r['runs_per_hour']:8.0f} runs/h  {r['tokens_per_s']:8.0f} train tok/s  "
                  f"wall {r['wall_s']:6.1f} s  CPU {r['cpu_s_per_run']:5.1f} s/run  (load average before→after "
                  f"{loads})")
        print("  seconds per task as the runs timed themselves (wall clock), old → new (train + eval):")
        for t in old["per_task_process_s"]:
            o, n = old["per_task_process_s"][t], new["per_task_process_s"][t]
            print(f"    {t:<26} {o['train']:7.1f} + {o['eval']:5.1f}  →  {n['train']:7.1f} + {n['eval']:5.1f}   "
                  f"({(o['train'] + o['eval']) / (n['train'] + n['eval']):.2f}×)")
        if inter:
            print(f"  run by run in one process, 1 thread (back to back): old {inter['old']['cpu_s']:.0f} CPU s, new "
                  f"{inter['new']['cpu_s']:.0f} CPU s: {inter['ratio_cpu']:.2f}× ({inter['ratio_wall']:.2f}× by the wall "
                  f"clock)")
        a = report["agreement"]
        print(f"  ratio new/old: {report['grid']['ratio']:.2f}× runs per hour (wall clock); "
              f"{report['grid']['cpu_ratio']:.2f}× runs per CPU-second")
        print(f"  results: {a['identical_accuracy']}/{a['runs']} runs with the same accuracy on both paths; largest "
              f"difference {a['max_abs_accuracy_difference']:.4f} (float rounding, grown over the training steps)")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
