"""Command line: ``python -m deltalab <command>``.

    variants                         list the registered variants: short name, table label, formula
    run   --variant V [--scale S]    train (or reuse) one variant on a scale's tasks, print its row
    grid  [--scale S] [--variants]   the whole grid (27 variants × 6 tasks by default), resumable
          run and grid take --engine local|ray [--address HOST:PORT] (README: "On a Ray cluster")
    table [--scale S]                aggregate stored runs into outputs/<scale>/accuracies_df.csv
    bench [...]                      train-step throughput of every path (see deltalab.bench)
"""
from __future__ import annotations

import argparse
import sys


def _csv(value: str | None) -> list[str] | None:
    if value is None or value == "all":
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _seeds(value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise SystemExit(f"error: --seeds takes comma-separated integers, e.g. 0,1,2; got {value!r}")


def _print_table(scale: str, variants: list[str] | None = None) -> None:
    from . import tables
    from .store import Store

    every = tables.records_frame(Store().records(scale))
    if every.empty:
        print(f"no stored runs for scale {scale!r}")
        return
    paths = tables.write_accuracies(every, scale)
    runs = every if variants is None else every[every["variant"].isin(variants)]
    table = tables.with_average(tables.accuracies_df(runs))
    print(table.round(3).to_string())
    print(f"\nscale: {scale}; written: {paths['accuracies']} and {paths['summary']}")


def _engine_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local: this machine's processes (--workers); ray: one task per run on a Ray cluster")
    parser.add_argument("--address", default=None,
                        help="ray: the head node's host:port (default: $RAY_ADDRESS, else a cluster started on "
                             "this machine, else a new local one)")
    parser.add_argument("--cpus-per-run", type=float, default=None,
                        help="ray: CPUs each run asks for (default: the scale's resources, else 1)")
    parser.add_argument("--gpus-per-run", type=float, default=None,
                        help="ray: GPUs each run asks for (default: the scale's resources, else 0)")


def _engine(args) -> dict:
    if args.engine == "local":
        for flag in ("address", "cpus_per_run", "gpus_per_run"):
            if getattr(args, flag) is not None:
                raise ValueError(f"--{flag.replace('_', '-')} is an option of --engine ray")
        return {}
    return {"engine": "ray", "address": args.address, "num_cpus": args.cpus_per_run, "num_gpus": args.gpus_per_run}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deltalab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("variants", help="list the registered variants")

    run = sub.add_parser("run", help="train one variant (a short name or a path to a .py file)")
    run.add_argument("--variant", required=True)
    run.add_argument("--scale", default="cpu")
    run.add_argument("--tasks", default=None, help="comma-separated task names (default: all of the scale's)")
    run.add_argument("--seeds", default=None, help="comma-separated seeds (default: the scale's)")
    run.add_argument("--workers", type=int, default=1)
    _engine_args(run)

    grid = sub.add_parser("grid", help="train every variant × task of a scale (resumable)")
    grid.add_argument("--scale", default="cpu")
    grid.add_argument("--variants", default="all", help="comma-separated short names or file paths, or 'all'")
    grid.add_argument("--tasks", default=None)
    grid.add_argument("--seeds", default=None)
    grid.add_argument("--workers", type=int, default=2, help="processes (default 2: one per core on a laptop)")
    grid.add_argument("--extra-seed-variants", default="", help="variants that get the scale's baseline_seeds")
    _engine_args(grid)

    table = sub.add_parser("table", help="aggregate stored runs into accuracies_df.csv")
    table.add_argument("--scale", default="cpu")

    sub.add_parser("bench", help="train-step throughput benchmark", add_help=False)

    args, rest = parser.parse_known_args(argv)
    if args.command == "bench":
        from .bench import main as bench_main

        return bench_main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")

    from .ray_engine import RunsFailed
    from .variants import VARIANTS, variants_table

    try:
        if args.command == "variants":
            print(variants_table())
            return 0
        from .params import load_scale
        from .runner import execute, plan, run_variant, variant_id
        from .store import Store

        if args.command == "run":
            records, summary = run_variant(args.variant, args.scale, _csv(args.tasks), _seeds(args.seeds),
                                           workers=args.workers, **_engine(args))
            print(summary, file=sys.stderr)
            _print_table(args.scale, variants=[variant_id(args.variant), "delta_net", "gated_delta_net"])
            return 0
        if args.command == "grid":
            scale = load_scale(args.scale)
            variants = _csv(args.variants) or list(VARIANTS)
            extra = tuple(_csv(args.extra_seed_variants) or ())
            runs = plan(variants, scale, _csv(args.tasks), _seeds(args.seeds), extra_seed_variants=extra)
            print(f"{len(runs)} runs planned at scale {scale.name!r}", file=sys.stderr)
            print(execute(runs, scale, Store(), workers=args.workers, scale_ref=args.scale, **_engine(args)),
                  file=sys.stderr)
            _print_table(args.scale)
            return 0
        if args.command == "table":
            load_scale(args.scale)  # validates the name
            _print_table(args.scale)
            return 0
    except ValueError as e:  # bad input: a clear message, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RunsFailed as e:  # some runs failed on the cluster; every other run is stored
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 1


if __name__ == "__main__":
    sys.exit(main())
