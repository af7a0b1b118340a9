"""Command line: ``python -m deltalab <command>``.

    variants                         list the registered variants: short name, table label, formula
    run   --variant V [--scale S]    train (or reuse) one variant on a scale's tasks, print its row and the
                                     baselines' (writes nothing but its runs' records)
    grid  [--scale S] [--variants]   the whole grid (the scale's rows × its tasks by default), resumable; then
                                     the study's tables, as `table` writes them
    status [--scale S] [--workers N] what the grid has stored, what live locks hold and what is missing, per
                                     seed, and the time left projected from the stored runs' wall times
    table [--scale S]                the study's tables (registered variants) from the stored runs, written
                                     beside the store: outputs/<scale>/accuracies_df.csv and
                                     accuracies_summary.csv for the repository's store outputs/results,
                                     <store>/tables/<scale>/ for a store elsewhere (DELTALAB_RESULTS)
    table --variants V,W [--out D]   print only those rows (a user's file or id too); write them to D if given
          run and grid take --engine local|ray [--address HOST:PORT] (README: "On a Ray cluster")
    migrate-store [--scale S]        re-key records stored before the precision was part of a run's id
    bench [...]                      train-step throughput of every path (see deltalab.bench)

A table computed from an incomplete store (a run the scale plans for the registered variants is not
stored) says so and is written as accuracies_df.incomplete.csv / accuracies_summary.incomplete.csv, never
over a complete table. Exit status: 0 when done; 1 when runs of the grid (or of `run`'s variant) are still
not stored afterwards (another process holds them: each is listed with its lock), or when `table` finds the
store incomplete, or when runs failed, here or on the Ray cluster (each other run is stored; the failed runs
are listed with their cause, and running the grid again retries them); 2 on bad input or a
store problem (the message names the file).
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


def _study_table(scale: str, store) -> int:
    """Write the study's tables beside ``store``, print them; 1 if the store is incomplete for the scale."""
    from . import tables
    from .params import load_scale
    from .runner import missing, plan
    from .variants import VARIANTS

    sc = load_scale(scale)
    expected = tables.expected_runs(sc)
    runs = tables.study_runs(tables.records_frame(store.records(scale)))
    if runs.empty:
        print(f"no stored runs of the registered variants for scale {scale!r} in {store.root}", file=sys.stderr)
        return 1
    lacking = missing(plan(sc.rows(), sc), store)
    paths = tables.write_accuracies(runs, scale, store.tables_dir(scale), complete=not lacking, expected=expected)
    print(tables.with_average(tables.accuracies_df(runs, expected=expected)).round(3).to_string())
    precisions = sorted(runs["precision"].unique())
    print(f"\nscale: {scale}; store: {store.root}; precision: {', '.join(precisions)}; "
          f"written: {paths['accuracies']} and {paths['summary']}")
    summ = tables.summary(runs, expected=expected)
    gaps = summ[summ["missing"] != ""]
    for _, c in gaps.iterrows():
        print(f"  {c['variant']} / {c['column']}: n = {c['n']}; incomplete seeds not counted: {c['missing']}")
    if lacking:
        print(f"INCOMPLETE: {len(lacking)} of the runs the scale plans for the registered variants are not stored "
              f"(so the table went to the *.incomplete.csv names and no complete table was overwritten):",
              file=sys.stderr)
        for line in lacking[:20]:
            print(f"  {line}", file=sys.stderr)
        if len(lacking) > 20:
            print(f"  … and {len(lacking) - 20} more", file=sys.stderr)
        return 1
    return 0


def _rows_table(scale: str, store, variants: list[str], out: str | None = None) -> int:
    """Print the rows of ``variants`` (short names, user files or their ids) from the store; write them to
    ``out`` if given (never the study's tables)."""
    from pathlib import Path

    from . import tables
    from .params import load_scale
    from .runner import variant_id

    ids = [variant_id(v) if Path(v).suffix == ".py" else v for v in variants]
    expected = tables.expected_runs(load_scale(scale))
    runs = tables.records_frame(store.records(scale, variants=ids))
    if runs.empty:
        print(f"no stored runs of {', '.join(ids)} for scale {scale!r} in {store.root}", file=sys.stderr)
        return 1
    table = tables.accuracies_df(runs, expected=expected)
    print(tables.with_average(table).round(3).to_string())
    if out:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / "accuracies_df.csv", out / "accuracies_summary.csv"]
        table.to_csv(paths[0], float_format="%.6f")
        tables.summary(runs, expected=expected).to_csv(paths[1], index=False, float_format="%.6f")
        print(f"\nwritten: {paths[0]} and {paths[1]}")
    return 0


def _missing_report(runs, store) -> int:
    """After training: 1 (and the list, with each lock) when planned runs are still not stored."""
    from .runner import missing

    lacking = missing(runs, store)
    if lacking:
        print(f"MISSING: {len(lacking)} planned run(s) are not stored; re-run once the lock is released or its "
              "lease has expired:", file=sys.stderr)
        for line in lacking:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0


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

    status = sub.add_parser("status", help="the grid's progress per seed and the time left (trains nothing)")
    status.add_argument("--scale", default="cpu")
    status.add_argument("--workers", type=int, default=2, help="processes the projection assumes (default 2)")

    table = sub.add_parser("table", help="the study's tables from the stored runs, written beside the store")
    table.add_argument("--scale", default="cpu")
    table.add_argument("--variants", default=None, help="only these rows (short names, .py files or ids): printed, "
                       "and written to --out if given; the study's tables are left alone")
    table.add_argument("--out", default=None, help="with --variants: the folder to write their table to")

    migrate = sub.add_parser("migrate-store", help="re-key records stored before the precision was part of a "
                             "run's id (file name and spec.budget_id)")
    migrate.add_argument("--scale", default="cpu")
    migrate.add_argument("--dry-run", action="store_true")

    sub.add_parser("bench", help="train-step throughput benchmark", add_help=False)

    args, rest = parser.parse_known_args(argv)
    if args.command == "bench":
        from .perf.bench import main as bench_main

        return bench_main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")

    from .runner import RunsFailed
    from .variants import VARIANTS, variants_table

    try:
        if args.command == "variants":
            print(variants_table())
            return 0
        from .params import load_scale
        from .runner import execute, plan, run_variant
        from .store import Store, StoreError

        store = Store()
        if args.command == "run":
            records, summary = run_variant(args.variant, args.scale, _csv(args.tasks), _seeds(args.seeds),
                                           workers=args.workers, store=store, **_engine(args))
            print(summary, file=sys.stderr)
            rows = [args.variant] + [b for b in ("delta_net", "gated_delta_net") if b != args.variant]
            _rows_table(args.scale, store, rows)
            return _missing_report(plan([args.variant], load_scale(args.scale), _csv(args.tasks),
                                        _seeds(args.seeds)), store)
        if args.command == "grid":
            scale = load_scale(args.scale)
            variants = _csv(args.variants) or scale.rows()
            extra = tuple(_csv(args.extra_seed_variants) or ())
            runs = plan(variants, scale, _csv(args.tasks), _seeds(args.seeds), extra_seed_variants=extra)
            print(f"{len(runs)} runs planned at scale {scale.name!r} in {store.root}", file=sys.stderr)
            print(execute(runs, scale, store, workers=args.workers, scale_ref=args.scale, **_engine(args)),
                  file=sys.stderr)
            _study_table(scale.name, store)  # says so if the store is incomplete for the scale
            return _missing_report(runs, store)
        if args.command == "status":
            from .runner import grid_status, status_report

            if args.workers < 1:
                raise ValueError(f"--workers must be at least 1; got {args.workers}")
            scale = load_scale(args.scale)
            print(f"scale {scale.name!r}, store {store.root}:")
            print(status_report(grid_status(plan(scale.rows(), scale), store), args.workers))
            return 0
        if args.command == "table":
            load_scale(args.scale)  # validates the name
            if args.variants:
                return _rows_table(args.scale, store, _csv(args.variants), args.out)
            if args.out:
                parser.error("--out goes with --variants (the study's tables go beside the store)")
            return _study_table(args.scale, store)
        if args.command == "migrate-store":
            result = store.migrate_budget_ids(args.scale, dry_run=args.dry_run)
            for outcome, files in result.items():
                print(f"{outcome}: {len(files)}")
                if outcome in ("conflict", "corrupt"):
                    for f in files:
                        print(f"  {f}")
            return 1 if result["conflict"] else 0
    except (ValueError, StoreError) as e:  # bad input or a store problem: a clear message, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RunsFailed as e:  # some runs failed (here or on the cluster); every other run is stored
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 1


if __name__ == "__main__":
    sys.exit(main())
