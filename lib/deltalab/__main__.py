"""Command line: ``python -m deltalab <command>``.

    variants                         list the registered variants: short name, table label, formula
    run   --variant V [--scale S]    train (or reuse) one variant on a scale's tasks, print its row and the
                                     baselines' (writes nothing but its runs' records)
    grid  [--scale S] [--variants]   the whole grid (the scale's rows × its tasks by default), resumable; then
                                     the study's tables, as `table` writes them; --stack trains each
                                     variant × task × setting's runs as one model (deltalab.stack)
    status [--scale S] [--workers N] what the grid has stored, what live locks hold and what is missing, per
                                     seed, and the time left projected from the stored runs' wall times
    table [--scale S]                the study's tables (registered variants) from the stored runs, written
                                     beside the store: outputs/<scale>/accuracies_df.csv and
                                     accuracies_summary.csv for the repository's store outputs/results,
                                     <store>/tables/<scale>/ for a store elsewhere (DELTALAB_RESULTS)
    table --variants V,W [--out D]   print only those rows (a user's file or id too); write them to D if given
          run and grid take --engine local|ray [--address HOST:PORT] (README: "On a Ray cluster")
          run and grid refuse to train from uncommitted changes under lib/ unless --allow-dirty (or
          DELTALAB_ALLOW_DIRTY=1), which stores their diff beside the records; status lists dirty records
    agreement [--scale S] [--readme] the scale's rank agreement with MAD's full protocol (the seed table)
    agreement --scale S --best-of T  the same for a two-point lr sweep: per run the better of S's and T's
    migrate-store [--scale S]        re-key records stored before the precision was part of a run's id
    import-records ARCHIVE           add a tar.gz of records (scripts/gpu_check.sh's) to the store; refuses,
                                     writing nothing, when it would replace a different record
    bench [...]                      train-step throughput of every path (see deltalab.perf.bench)
    site [--scale S] [--out D]       the executed study as a static site, nothing re-executed (see deltalab.publish.site)

A table computed from an incomplete store (a run the scale plans for the registered variants is not
stored) says so and is written as accuracies_df.incomplete.csv / accuracies_summary.incomplete.csv, never
over a complete table. A printed row over fewer seeds than the table asks for is marked with its n and named in
a note; rows of different precisions are marked with theirs. A run record that is not valid is named (path and
field) and not counted as stored (`status` lists such records; nothing is deleted). When the tables cannot be
written beside the store (read-only, full disk) `table` prints them with a one-line warning naming the folder.

--scale takes a scale's name or a path to a scale file (its runs are stored under the scale's name); it, --seeds
(integers ≥ 0), --workers (≥ 1) and the per-run resources are checked before anything runs.

Exit status: 0 when done; 1 when runs of the grid (or of `run`'s variant) are still not stored afterwards
(another process holds them: each is listed with its lock), or when `table` finds the store incomplete (a run
missing or a record not valid; with --variants, a row over fewer seeds than asked), or when runs failed, here or
on the Ray cluster (each other run is stored; the failed runs are listed with their cause, and running the grid
again retries them); 2 on a usage error (with the usage), bad input or a store problem (the message names the
file or the flag).
"""
from __future__ import annotations

import argparse
import sys


def _csv(value: str | None) -> list[str] | None:
    if value is None or value == "all":
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _seeds(value: str | list[int] | None) -> list[int] | None:
    """--seeds: comma-separated distinct integers from 0 to ``params.MAX_SEED`` (argparse type: a bad value exits 2
    with the usage)."""
    if value is None or isinstance(value, list):
        return value
    items = [v.strip() for v in value.split(",") if v.strip()]
    try:
        seeds = [int(v) for v in items]
    except ValueError:
        seeds = None
    if not seeds or any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError(f"takes comma-separated integers ≥ 0, e.g. 0,1,2; got {value!r}")
    from .params import seed_problem

    for s in seeds:
        if seed_problem(s):
            raise argparse.ArgumentTypeError(seed_problem(s))
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"takes distinct seeds, e.g. 0,1,2; got {value!r}")
    return seeds


def _workers(value: str) -> int:
    """--workers: an integer ≥ 1."""
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (an integer number of processes); got {value!r}")
    return n


def _amount(minimum: float, strict: bool):
    """--cpus-per-run / --gpus-per-run: a finite number > (or ≥) ``minimum``."""
    def parse(value: str) -> float:
        import math

        try:
            x = float(value)
        except ValueError:
            x = math.nan
        if not math.isfinite(x) or x < minimum or (strict and x == minimum):
            raise argparse.ArgumentTypeError(f"must be a number {'>' if strict else '≥'} {minimum:g}; got {value!r}")
        return x
    return parse


def _scale(value: str):
    """--scale: a scale's name (params/scales/<name>.yaml) or a path to a scale file, loaded and checked now (the
    command's one ``load_scale``; a bad one exits 2 with the usage before anything runs). The loaded ``Scale``
    carries its file's path (``Scale.source``) for processes that need it; its runs are stored under its name."""
    from .params import load_scale

    try:
        return load_scale(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _report_bad(bad: list) -> None:
    """One line per record that is not valid (``Store.records(bad=...)``): its path and the field; not counted."""
    for e in bad:
        print(f"bad record (not counted as stored): {e.path}: not a valid run record ({e.problem})", file=sys.stderr)
    if bad:
        print(f"  {len(bad)} bad record(s) left out; nothing was deleted (a grid moves each aside to <name>.corrupt "
              "and re-trains its run)", file=sys.stderr)


def _study_table(sc, store, planned: list | None = None) -> int:
    """Write the study's tables beside ``store``, print them; 1 if the store is incomplete for the scale ``sc``
    (a loaded Scale): a run of ``planned`` (default: ``grid.plan`` of the scale's rows) is not stored. A row over
    fewer seeds than the scale plans, or of another precision than the others, is
    marked. When the tables cannot be written (a read-only store, a full disk) the table is printed with a
    warning naming the folder, and no file is changed."""
    from .analysis import accuracies
    from .grid import missing, plan

    scale = sc.name
    expected = accuracies.expected_runs(sc)
    bad: list = []
    runs = accuracies.study_runs(accuracies.records_frame(store.records(sc, bad=bad)))
    _report_bad(bad)
    if runs.empty:
        print(f"no stored runs of the registered variants for scale {scale!r} in {store.root}", file=sys.stderr)
        return 1
    lacking = missing(planned if planned is not None else plan(sc.rows(), sc), store)
    out_dir = store.tables_dir(scale)
    try:
        paths = accuracies.write_accuracies(runs, scale, out_dir, complete=not lacking, expected=expected)
        written = f"written: {paths['accuracies']} and {paths['summary']}"
    except OSError as e:
        written = "not written (see the warning)"
        where = f" ({e.filename})" if e.filename and str(e.filename) != str(out_dir) else ""
        warning = (f"warning: could not write the tables to {out_dir}{where}: {e.strerror or e}; the table is printed "
                   "only (no file was changed)")
    else:
        warning = None
    marks, notes = accuracies.row_marks(runs, {v: sc.seeds_for(v) for v in runs["variant"].unique()}, expected)
    table = accuracies.with_average(accuracies.accuracies_df(runs, expected=expected))
    print(accuracies.marked(table, marks).round(3).to_string())
    precisions = sorted(runs["precision"].unique())
    print(f"\nscale: {scale}; store: {store.root}; precision: {', '.join(precisions)}; {written}")
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if warning:
        print(warning, file=sys.stderr)
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


def _rows_table(sc, store, variants: list[str], out: str | None = None,
                seeds: dict[str, tuple[int, ...]] | None = None) -> int:
    """Print the rows of ``variants`` (short names, user files or their ids) from the store of scale ``sc`` (a
    loaded Scale); write them to ``out`` if given (never the study's tables). A row whose mean is over fewer
    seeds than asked (``seeds``: variant id → its seeds; default the scale's, ``Scale.seeds_for``) is marked
    with its n and named in a note, as are rows of different precisions; 1 when a row is short or a record is
    bad, 2 when ``out`` cannot be written."""
    from pathlib import Path

    from .analysis import accuracies
    from .grid import variant_id

    ids = [variant_id(v) if Path(v).suffix == ".py" else v for v in variants]
    expected = accuracies.expected_runs(sc)
    bad: list = []
    runs = accuracies.records_frame(store.records(sc, variants=ids, bad=bad))
    _report_bad(bad)
    if runs.empty:
        print(f"no stored runs of {', '.join(ids)} for scale {sc.name!r} in {store.root}", file=sys.stderr)
        return 1
    want = {v: tuple((seeds or {}).get(v) or sc.seeds_for(v)) for v in ids}
    marks, notes = accuracies.row_marks(runs, want, expected)
    table = accuracies.accuracies_df(runs, expected=expected)
    print(accuracies.marked(accuracies.with_average(table), marks).round(3).to_string())
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if out:
        out = Path(out)
        paths = [out / "accuracies_df.csv", out / "accuracies_summary.csv"]
        try:
            accuracies.write_frames({paths[0]: (accuracies.marked(table, accuracies.precision_marks(runs)), True),
                                     paths[1]: (accuracies.summary(runs, expected=expected), False)})
        except OSError as e:
            where = f" ({e.filename})" if e.filename and str(e.filename) != str(out) else ""
            print(f"error: could not write the table to {out}{where}: {e.strerror or e} (no file was changed; pass "
                  "another --out)", file=sys.stderr)
            return 2
        print(f"\nwritten: {paths[0]} and {paths[1]}")
    short = any("seeds" in m for m in marks.values())
    return 1 if short or bad else 0


def _missing_report(runs, store) -> int:
    """After training: 1 (and the list, with each lock) when planned runs are still not stored."""
    from .grid import missing

    lacking = missing(runs, store)
    if lacking:
        print(f"MISSING: {len(lacking)} planned run(s) are not stored; re-run once the lock is released or its "
              "lease has expired:", file=sys.stderr)
        for line in lacking:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0


def _engine_args(parser: argparse.ArgumentParser) -> None:
    from .grid import ENGINES

    parser.add_argument("--engine", choices=tuple(ENGINES), default="local",
                        help="local: this machine's processes (--workers); ray: one task per run on a Ray cluster "
                             "(deltalab.grid.ENGINES)")
    parser.add_argument("--address", default=None,
                        help="ray: the head node's host:port (default: $RAY_ADDRESS, else a cluster started on "
                             "this machine, else a new local one)")
    parser.add_argument("--cpus-per-run", type=_amount(0, strict=True), default=None,
                        help="ray: CPUs each run asks for (default: the scale's resources, else 1)")
    parser.add_argument("--gpus-per-run", type=_amount(0, strict=False), default=None,
                        help="ray: GPUs each run asks for (default: the scale's resources, else 0)")
    parser.add_argument("--allow-dirty", action="store_true",
                        help="train from uncommitted changes under lib/: their diff is stored beside the records "
                             "(<store>/<scale>/_diffs/<hash>.diff) and its hash in each (deltalab.grid.provenance)")


_ENGINE_FLAGS = {"address": "address", "cpus_per_run": "num_cpus", "gpus_per_run": "num_gpus"}  # flag → option


def _engine(args) -> dict:
    """--engine and the options given for it; a flag the engine does not take names the engines that do."""
    from .grid.engines import ENGINES, options_of

    given = {flag: getattr(args, flag) for flag in _ENGINE_FLAGS if getattr(args, flag) is not None}
    for flag in given:
        if _ENGINE_FLAGS[flag] not in options_of(args.engine):
            takers = [e for e in ENGINES if _ENGINE_FLAGS[flag] in options_of(e)]
            raise ValueError(f"--{flag.replace('_', '-')} is an option of --engine {' or '.join(takers)}")
    return {"engine": args.engine} | {_ENGINE_FLAGS[flag]: value for flag, value in given.items()}


def _parser() -> argparse.ArgumentParser:
    """Every command's arguments (``COMMANDS`` runs them; ``PASSED_ON`` commands parse their own)."""
    parser = argparse.ArgumentParser(prog="python -m deltalab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("variants", help="list the registered variants")

    run = sub.add_parser("run", help="train one variant (a short name or a path to a .py file)")
    run.add_argument("--variant", required=True)
    run.add_argument("--scale", type=_scale, default="cpu", help="a scale's name or a path to a scale file")
    run.add_argument("--tasks", default=None, help="comma-separated task names (default: all of the scale's)")
    run.add_argument("--seeds", type=_seeds, default=None,
                     help="comma-separated seeds ≥ 0 (default: the scale's)")
    run.add_argument("--workers", type=_workers, default=1)
    _engine_args(run)

    grid = sub.add_parser("grid", help="train every variant × task of a scale (resumable)")
    grid.add_argument("--scale", type=_scale, default="cpu", help="a scale's name or a path to a scale file")
    grid.add_argument("--variants", default="all", help="comma-separated short names or file paths, or 'all'")
    grid.add_argument("--tasks", default=None)
    grid.add_argument("--seeds", type=_seeds, default=None, help="comma-separated seeds ≥ 0 (default: the scale's)")
    grid.add_argument("--workers", type=_workers, default=2,
                      help="processes (default 2: one per core on a laptop)")
    grid.add_argument("--extra-seed-variants", default="", help="variants that get the scale's baseline_seeds")
    grid.add_argument("--stack", action="store_true", help="train the lr × wd × seed runs of each variant × task × "
                      "setting as one stacked model (deltalab.stack); each run is stored as its own record")
    _engine_args(grid)

    status = sub.add_parser("status", help="the grid's progress per seed and the time left (trains nothing)")
    status.add_argument("--scale", type=_scale, default="cpu", help="a scale's name or a path to a scale file")
    status.add_argument("--workers", type=_workers, default=2, help="processes the projection assumes (default 2)")

    table = sub.add_parser("table", help="the study's tables from the stored runs, written beside the store")
    table.add_argument("--scale", type=_scale, default="cpu", help="a scale's name or a path to a scale file")
    table.add_argument("--variants", default=None, help="only these rows (short names, .py files or ids): printed, "
                       "and written to --out if given; the study's tables are left alone")
    table.add_argument("--out", default=None, help="with --variants: the folder to write their table to")
    table.set_defaults(usage=table.print_usage)

    migrate = sub.add_parser("migrate-store", help="re-key records stored before the precision was part of a "
                             "run's id (file name and spec.budget_id)")
    migrate.add_argument("--scale", type=_scale, default="cpu", help="a scale's name or a path to a scale file")
    migrate.add_argument("--dry-run", action="store_true")

    imp = sub.add_parser("import-records", help="add the records of a tar.gz (scripts/gpu_check.sh's archive) to the "
                         "store, refusing any that would replace a different record")
    imp.add_argument("archive")
    imp.add_argument("--dry-run", action="store_true", help="check and list, write nothing")

    agree = sub.add_parser("agreement", help="the scale's rank agreement with the full protocol's seed table (trains "
                           "nothing)")
    agree.add_argument("--scale", type=_scale, default="cpu", help="a scale's name or a path to a scale file")
    agree.add_argument("--readme", action="store_true", help="also write the table into README.md's agreement block")
    agree.add_argument("--per-setting", action="store_true", help="also judge each of the scale's settings alone")
    agree.add_argument("--calibration-of", type=_scale, default=None, help="hold out from another scale's "
                       "calibration_rows (e.g. cpu's, to read an older scale's runs of the same rows)")
    agree.add_argument("--best-of", type=_scale, default=None, help="another scale that trains some tasks alike "
                       "but for the learning rate: per row, task and seed the better of the two runs (a two-point "
                       "sweep, as MAD reads its sweep), on the rows and tasks both have")

    sub.add_parser("bench", help="train-step throughput benchmark", add_help=False)
    sub.add_parser("site", help="the study as a static site, from the executed notebooks (see deltalab.publish.site)",
                   add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse, then run the command's function (``COMMANDS``): bad input exits 2 with its message, failed runs 1."""
    parser = _parser()
    try:
        args, rest = parser.parse_known_args(argv)
    except SystemExit as e:  # a usage error (exit 2, with the usage) or --help (0)
        return e.code if isinstance(e.code, int) else 2
    if args.command in PASSED_ON:
        return PASSED_ON[args.command](rest)
    if rest:
        try:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        except SystemExit as e:
            return e.code if isinstance(e.code, int) else 2

    from .grid import RunsFailed
    from .store import StoreError

    try:
        return COMMANDS[args.command](args)
    except (ValueError, StoreError) as e:  # bad input or a store problem: a clear message, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RunsFailed as e:  # some runs failed (here or on the cluster); every other run is stored
        print(f"error: {e}", file=sys.stderr)
        return 1


# --- the commands: each takes the parsed arguments (``--scale`` already a loaded Scale) and returns the exit status

def _variants(args) -> int:
    from .variants import variants_table

    print(variants_table())
    return 0


def _run(args) -> int:
    """Train (or reuse) one variant; print its row and the baselines'."""
    from .analysis.names import BASELINES
    from .grid import ensure, variant_id
    from .store import Store

    store = Store()
    trained = ensure([args.variant], args.scale, store, tasks=_csv(args.tasks), seeds=args.seeds,
                     workers=args.workers, allow_dirty=args.allow_dirty, **_engine(args))
    print(trained.summary, file=sys.stderr)
    rows = [args.variant] + [b for b in BASELINES if b != args.variant]
    _rows_table(args.scale, store, rows, seeds={variant_id(args.variant): args.seeds} if args.seeds else None)
    return _missing_report(trained.runs, store)


def _grid(args) -> int:
    """The whole grid (the scale's rows by default), then the study's tables."""
    from .grid import ensure
    from .store import Store

    store = Store()
    rows, tasks, extra = _csv(args.variants) or args.scale.rows(), _csv(args.tasks), _csv(args.extra_seed_variants)
    trained = ensure(rows, args.scale, store, tasks=tasks, seeds=args.seeds, extra_seed_variants=tuple(extra or ()),
                     announce=True, workers=args.workers, allow_dirty=args.allow_dirty, stack=args.stack,
                     **_engine(args))
    print(trained.summary, file=sys.stderr)
    whole = rows == args.scale.rows() and not (tasks or args.seeds or extra)  # the plan the study's tables read
    _study_table(args.scale, store, trained.runs if whole else None)  # says so if the store is incomplete
    return _missing_report(trained.runs, store)


def _status(args) -> int:
    from .grid import grid_status, plan, status_report
    from .store import Store

    store = Store()
    print(f"scale {args.scale.name!r}, store {store.root}:")
    print(status_report(grid_status(plan(args.scale.rows(), args.scale), store), args.workers))
    return 0


def _table(args) -> int:
    from .store import Store

    if args.out and not args.variants:
        print("error: --out goes with --variants (the study's tables go beside the store)", file=sys.stderr)
        args.usage(sys.stderr)
        return 2
    if args.variants:
        return _rows_table(args.scale, Store(), _csv(args.variants), args.out)
    return _study_table(args.scale, Store())


def _agreement(args) -> int:
    """The scale's rank agreement with the full protocol (or, with --best-of, of a two-point lr sweep)."""
    from .analysis import agreement
    from .store import Store

    store = Store()
    held_by = args.calibration_of  # its held-out rows and its targets
    held = dict(calibration=held_by.calibration_rows, targets=held_by.agreement_targets) if held_by else {}
    runs = agreement.stored_runs(args.scale, store=store)
    if args.best_of:
        if args.readme or args.per_setting:
            raise ValueError("--best-of compares a two-point sweep with each scale alone; it does not go "
                             "with --readme (one scale's agreement) or --per-setting")
        return _best_of(runs, agreement.stored_runs(args.best_of, store=store), held)
    frame = agreement.scale_agreement(runs, **held)
    name = args.scale.name
    baseline_text = agreement.baselines_markdown(*agreement.scale_baselines(runs), name)
    print(agreement.markdown(frame, name))
    print(f"\n{baseline_text}")
    print(f"\nper row set (calibration: the rows the scale was tuned on):\n{frame.round(3).to_string(index=False)}")
    versions_text = agreement.versions_markdown(agreement.scale_versions(runs, store=store), name)
    if versions_text:
        print(f"\nthe archived versions of `{name}`:\n{versions_text}")
    pilots_text = agreement.pilots_markdown(agreement.pilots(runs, store=store), name)
    if pilots_text:
        print(f"\nthe pilots of `{name}`:\n{pilots_text}")
    if args.per_setting:
        each = agreement.scale_agreement(runs, per_setting=True, **held)
        print(f"\neach setting alone:\n{each.round(3).to_string(index=False)}")
    if args.readme:
        _write_readme_block(agreement.readme_block(frame, name, baseline_text, versions_text))
    return 0


def _best_of(runs, other, held: dict) -> int:
    """``agreement --best-of``: the agreement of each scale alone and of the better of both runs."""
    from .analysis import agreement

    sweep, left_out = agreement.best_of(runs, other)
    seeds = sorted(set(sweep["best of both"].scores["seed"].astype(int)))
    print(f"on the rows, tasks and seeds ({', '.join(map(str, seeds)) or 'none'}) both scales have")
    for column, why in left_out.items():
        print(f"{column}: left out ({why})")
    for name, each in sweep.items():
        frame = agreement.scale_agreement(each, **held)
        print(f"\n{agreement.markdown(frame, name)}\n\n{frame.round(3).to_string(index=False)}")
    return 0


def _write_readme_block(block: str) -> None:
    from .analysis import agreement
    from .runtime import REPO_ROOT

    readme = REPO_ROOT / "README.md"
    readme.write_text(agreement.replace_readme_block(readme.read_text(), block, str(readme)))
    print(f"wrote the agreement block of {readme}", file=sys.stderr)


def _import_records(args) -> int:
    from .archive import import_archive
    from .store import Store

    store = Store()
    result = import_archive(args.archive, store, dry_run=args.dry_run)
    verb = "would add" if args.dry_run else "added"
    print(f"{verb} {len(result['added'])} record(s) to {store.root}; {len(result['same'])} already there, identical")
    return 0


def _migrate_store(args) -> int:
    from .store import Store

    result = Store().migrate_budget_ids(args.scale, dry_run=args.dry_run)
    for outcome, files in result.items():
        print(f"{outcome}: {len(files)}")
        if outcome in ("conflict", "corrupt"):
            for f in files:
                print(f"  {f}")
    return 1 if result["conflict"] else 0


def _bench(rest: list[str]) -> int:
    from .perf.bench import main as bench_main

    return bench_main(rest)


def _site(rest: list[str]) -> int:
    from .publish.site import main as site_main

    return site_main(rest)


COMMANDS = {"variants": _variants, "run": _run, "grid": _grid, "status": _status, "table": _table,
            "agreement": _agreement, "import-records": _import_records, "migrate-store": _migrate_store}
PASSED_ON = {"bench": _bench, "site": _site}  # commands with their own parser: the arguments after the name

if __name__ == "__main__":
    sys.exit(main())
