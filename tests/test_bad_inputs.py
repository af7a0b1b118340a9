"""Bad input to the CLI and the store (issue #29): each gets a one-line error naming the file or the flag, what was
wrong and what is valid (exit 2 for usage errors, with the usage), and nothing is trained before the inputs are
checked.

1. a row over fewer seeds than the table asks for is marked with its n, and rows of different precisions are
   marked with theirs (`table --variants`, `run`, the study's table);
2. a run record that is not valid (a string, NaN or 2.5 for an accuracy, a missing metric, a time that is not a
   number) is named with its path and field, not counted as stored, listed by `status`, and never deleted;
3. --seeds, --workers, --scale (a name or a file, whose every value is checked, task settings included) are
   checked by argparse before any work; a scale file's runs are stored under its name through grid/run/table/status;
4. `table` on a read-only store or a full disk prints the table and a one-line warning, writes nothing half-way,
   and reading creates nothing in the store;
5. Ray: a server at --address that is not a Ray head, or a head that wants a token this process lacks, fails in
   seconds naming the address (and which token file to remove or how to pass the right one).

Everything here uses tiny stores of made-up records in tmp_path; nothing is trained.
"""
from __future__ import annotations

import errno
import json
import math
import os
import socket
import threading
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import pytest

from deltalab.analysis import accuracies
from deltalab.__main__ import main
from deltalab.params import load_scale
from deltalab.grid import plan
from deltalab.store import CorruptRecordError, Store
from deltalab.runs import budget_id, make_spec
from deltalab.variants import VARIANTS

TINY = """\
name: {name}
description: four seeds, two tasks, three rows (the bad-input tests)
lrs: [0.001]
wds: [0.1]
seeds: [0, 1, 2, 3]
precision: {precision}
num_test_examples: 16
eval_batch_size: 16
variants: [delta_net, gated_delta_net, l2_norm_error]
tasks:
  compression: {{num_train_examples: 32, epochs: 1, batch_size: 16, settings: [{{seq_len: {seq_len}}}, {{vocab_size: 32}}]}}
  memorization: {{num_train_examples: 32, epochs: 1, batch_size: 16}}
"""


def _scale_file(folder: Path, name: str = "tiny", precision: str = "fp32", seq_len=32) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(TINY.format(name=name, precision=precision, seq_len=seq_len))
    return path


def _record(spec, acc: float, precision: str = "fp32") -> dict:
    """A run record as train_run writes it, with made-up numbers."""
    return {
        "spec": asdict(spec) | {"setting": spec.setting_dict},
        "label": VARIANTS[spec.variant].label,
        "metrics": {"test_acc": acc, "test_token_acc": acc, "test_ppl": 1.5, "test_loss": 0.4},
        "best_epoch": 1, "epochs_run": 1, "curve": [], "diverged": False, "early_stopped": False,
        "wall_time_s": 2.0, "train_time_s": 1.5, "eval_time_s": 0.5, "train_tokens_per_s": 1000.0,
        "num_params": 1, "precision": precision, "backend": "pytorch", "budget": {},
        "environment": {"commit": "abc", "device": "cpu", "platform": "x", "versions": {"torch": "2"}},
    }


def _fill(store: Store, scale, variants=None, precision: str = "fp32") -> list:
    """Store a made-up record of every run the scale plans for ``variants`` (default: its rows), in ``precision``."""
    runs = []
    for ref, spec in plan(variants or scale.rows(), scale):
        spec = make_spec(spec.variant, spec.task, spec.setting_dict, spec.lr, spec.wd, spec.seed, spec.scale,
                         budget_id(scale, spec.task, precision))
        store.put(spec, _record(spec, 0.2 + 0.1 * spec.seed, precision))
        runs.append((ref, spec))
    return runs


def _one(scale, variant: str, task: str, seed: int, setting: dict | None = None):
    """The spec of one planned run (the task's first setting unless ``setting``)."""
    specs = [spec for _, spec in plan([variant], scale, [task], [seed])]
    return next(spec for spec in specs if setting is None or spec.setting_dict == setting)


def _tree(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.is_dir(), p.stat().st_mtime_ns) for p in root.rglob("*")}


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """(scale file, loaded scale, store) with every run of the scale's rows stored; DELTALAB_RESULTS points at it."""
    monkeypatch.setenv("DELTALAB_RESULTS", str(tmp_path / "results"))
    path = _scale_file(tmp_path)
    scale = load_scale(path)
    store = Store()
    _fill(store, scale)
    return path, scale, store


@pytest.fixture
def no_training(monkeypatch):
    """Any attempt to train fails the test."""
    import deltalab.grid.local

    def refuse(*args, **kwargs):
        raise AssertionError("a run was trained")

    monkeypatch.setattr(deltalab.grid.local, "train_run", refuse)


# --- 1. a row over fewer seeds than asked is marked; so are rows of different precisions -------------------------

def test_table_variants_marks_a_row_over_fewer_seeds(tiny, capsys):
    path, scale, store = tiny
    gone = _one(scale, "delta_net", "memorization", 3)
    store.path(gone).unlink()
    assert main(["table", "--scale", str(path), "--variants", "delta_net,gated_delta_net"]) == 1
    out, err = capsys.readouterr()
    rows = {line.split("  ")[0].strip(): line for line in out.splitlines()[1:] if line.strip()}
    assert "delta_net_4layer [n=3 of 4 seeds]" in rows and "gated_delta_net_4layer" in rows
    assert "note: delta_net_4layer: fewer seeds than the table asks for (0, 1, 2, 3): Memorize n=3, not counted: " \
           "seed 3 (no run stored)" in err
    # a seed that lacks one setting of a task is not counted either, and the note says which
    part = _one(scale, "gated_delta_net", "compression", 1, {"vocab_size": 32})
    store.path(part).unlink()
    assert main(["table", "--scale", str(path), "--variants", "gated_delta_net"]) == 1
    out, err = capsys.readouterr()
    assert "gated_delta_net_4layer [n=3 of 4 seeds]" in out
    assert "Compress n=3, not counted: seed 1 (lacks vs32)" in err


def test_run_marks_a_baseline_row_over_fewer_seeds(tiny, capsys, no_training):
    path, scale, store = tiny
    gone = _one(scale, "gated_delta_net", "compression", 1)
    store.path(gone).unlink()
    assert main(["run", "--variant", "l2_norm_error", "--scale", str(path)]) == 0  # its own runs are all stored
    out, err = capsys.readouterr()
    assert "gated_delta_net_4layer [n=3 of 4 seeds]" in out
    assert [line for line in out.splitlines() if line.startswith("delta_net_4layer ")][0].startswith(
        "delta_net_4layer    ")  # complete: unmarked
    assert "note: gated_delta_net_4layer: fewer seeds than the table asks for" in err
    assert "0 trained" in err and not store.path(gone).exists()


def test_the_study_table_marks_its_short_rows(tiny, capsys):
    path, scale, store = tiny
    gone = _one(scale, "l2_norm_error", "compression", 0)
    store.path(gone).unlink()
    assert main(["table", "--scale", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "delta_net_4layer_l2_normalized_error_update_in_for_loop [n=3 of 4 seeds]" in out
    assert "INCOMPLETE: 1 of the runs" in err and "note: delta_net_4layer_l2_normalized_error" in err


def test_rows_of_different_precisions_are_marked(tmp_path, monkeypatch, capsys):
    """Under `precision: auto` a store can hold bf16 runs (a bf16 machine) beside fp32 runs: each row says which."""
    monkeypatch.setenv("DELTALAB_RESULTS", str(tmp_path / "results"))
    scale = load_scale(_scale_file(tmp_path, "tiny-auto", precision="auto"))
    store = Store()
    _fill(store, scale, ["delta_net", "l2_norm_error"], precision="fp32")
    _fill(store, scale, ["gated_delta_net"], precision="bf16")
    path = str(tmp_path / "tiny-auto.yaml")
    assert main(["table", "--scale", path, "--variants", "delta_net,gated_delta_net"]) == 0
    out, err = capsys.readouterr()
    assert "delta_net_4layer [fp32]" in out and "gated_delta_net_4layer [bf16]" in out
    assert "rows of different precisions (bf16, fp32)" in err
    # the study's table, printed and written (incomplete: this machine plans its rows in one precision only)
    assert main(["table", "--scale", path]) == 1
    out, err = capsys.readouterr()
    assert "gated_delta_net_4layer [bf16]" in out and "precision: bf16, fp32" in out
    written = pd.read_csv(tmp_path / "results" / "tables" / "tiny-auto" / "accuracies_df.incomplete.csv", index_col=0)
    assert sorted(written.index) == ["delta_net_4layer [fp32]", "delta_net_4layer_l2_normalized_error_update_in_"
                                     "for_loop [fp32]", "gated_delta_net_4layer [bf16]"]
    # one precision: no mark anywhere
    marks, notes = accuracies.row_marks(accuracies.records_frame(store.records(scale, variants=["delta_net"])),
                                    {"delta_net": scale.seeds}, accuracies.expected_runs(scale))
    assert marks == {} and notes == []


# --- 2. a run record that is not valid is named, not counted, listed by status, and kept ----------------------

BAD_RECORDS = {
    "test_acc is a string": (lambda r: r["metrics"].__setitem__("test_acc", "0.9"),
                             "metrics.test_acc must be a finite number in [0, 1]; got '0.9' (str)"),
    "no test_acc": (lambda r: r["metrics"].pop("test_acc"), "missing metrics.test_acc"),
    "test_acc is NaN": (lambda r: r["metrics"].__setitem__("test_acc", math.nan),
                        "metrics.test_acc must be a finite number in [0, 1]; got nan (float)"),
    "test_acc is 2.5": (lambda r: r["metrics"].__setitem__("test_acc", 2.5),
                        "metrics.test_acc must be a finite number in [0, 1]; got 2.5 (float)"),
    "wall_time_s is a word": (lambda r: r.__setitem__("wall_time_s", "fast"),
                              "wall_time_s must be a finite number ≥ 0 (seconds); got 'fast' (str)"),
    "diverged is a string": (lambda r: r.__setitem__("diverged", "no"), "diverged must be true or false"),
    "seed is negative": (lambda r: r["spec"].__setitem__("seed", -1), "spec.seed must be an integer ≥ 0"),
    "not JSON": (None, "Expecting property name"),
}


@pytest.mark.parametrize("case", list(BAD_RECORDS))
def test_a_bad_record_is_named_not_counted_listed_and_kept(tiny, capsys, case):
    path, scale, store = tiny
    edit, field = BAD_RECORDS[case]
    spec = _one(scale, "delta_net", "memorization", 2)
    file = store.path(spec)
    if edit is None:
        file.write_text("{]")
    else:
        record = json.loads(file.read_text())
        edit(record)
        file.write_text(json.dumps(record))
    content = file.read_bytes()

    with pytest.raises(CorruptRecordError, match=f"{file}: not a valid run record .*{field[:30]}"):
        store.get(spec)
    bad: list = []
    records = store.records(scale, bad=bad)
    assert len(bad) == 1 and str(file) in str(bad[0]) and field in str(bad[0])
    assert len(records) == len(plan(scale.rows(), scale)) - 1  # not counted as stored

    assert main(["table", "--scale", str(path), "--variants", "delta_net"]) == 1
    out, err = capsys.readouterr()
    assert f"bad record (not counted as stored): {file}: not a valid run record (" in err and field in err
    assert "Traceback" not in err and "delta_net_4layer [n=3 of 4 seeds]" in out

    assert main(["status", "--scale", str(path)]) == 0
    out, _ = capsys.readouterr()
    assert "bad records: 1, not counted as stored" in out and str(file) in out and field in out
    assert file.read_bytes() == content  # nothing deleted or changed


def test_status_counts_a_bad_record_in_its_own_column(tiny):
    from deltalab.grid import grid_status

    _, scale, store = tiny
    spec = _one(scale, "delta_net", "compression", 0)
    store.path(spec).write_text(store.path(spec).read_text().replace('"wall_time_s": 2.0', '"wall_time_s": "2"'))
    status = grid_status(plan(scale.rows(), scale), store)
    assert status["state"].value_counts().to_dict() == {"stored": len(status) - 1, "bad": 1}
    assert "wall_time_s must be a finite number" in status.loc[status["state"] == "bad", "problem"].iloc[0]


# --- 3. flags and scale files are checked before any work -----------------------------------------------------

@pytest.mark.parametrize("argv, flag, valid", [
    (["grid", "--scale", "smoke", "--seeds", "-1"], "--seeds", "integers ≥ 0"),
    (["run", "--variant", "delta_net", "--scale", "smoke", "--seeds", "-1"], "--seeds", "integers ≥ 0"),
    (["grid", "--scale", "smoke", "--seeds", "a"], "--seeds", "integers ≥ 0"),
    (["grid", "--scale", "smoke", "--seeds", "0,0"], "--seeds", "distinct seeds"),
    (["run", "--variant", "delta_net", "--scale", "smoke", "--seeds", "18446744073709551616"], "--seeds",
     "seed 18446744073709551616 is out of range: a seed is an integer from 0 to 18446744073709551615"),
    (["grid", "--scale", "smoke", "--seeds", "0,99999999999999999999999"], "--seeds",
     "seed 99999999999999999999999 is out of range: a seed is an integer from 0 to 18446744073709551615"),
    (["grid", "--scale", "smoke", "--workers", "0"], "--workers", "at least 1"),
    (["grid", "--scale", "smoke", "--workers", "-1"], "--workers", "at least 1"),
    (["run", "--variant", "delta_net", "--scale", "smoke", "--workers", "0"], "--workers", "at least 1"),
    (["status", "--scale", "smoke", "--workers", "0"], "--workers", "at least 1"),
    (["grid", "--scale", "smoke", "--engine", "ray", "--cpus-per-run", "0"], "--cpus-per-run", "> 0"),
    (["grid", "--scale", "smoke", "--engine", "ray", "--gpus-per-run", "-1"], "--gpus-per-run", "≥ 0"),
    (["grid", "--scale", "nosuch"], "--scale", "unknown scale 'nosuch'; valid: "),
    (["table", "--scale", "nosuch.yaml"], "--scale", "no scale file 'nosuch.yaml' (not found)"),
])
def test_a_bad_flag_exits_2_with_the_usage_before_any_work(tmp_path, monkeypatch, capsys, no_training, argv, flag,
                                                           valid):
    monkeypatch.setenv("DELTALAB_RESULTS", str(tmp_path / "results"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "usage: python -m deltalab" in err and f"error: argument {flag}: " in err and valid in err
    assert "Traceback" not in err
    assert not (tmp_path / "results").exists()  # nothing planned, claimed or stored


@pytest.mark.parametrize("edit, where, valid", [
    (("seq_len: 32}", "seq_len: -32}"), "tasks.compression.settings[0]: compression: seq_len",
     "a positive integer; got -32"),
    (("seq_len: 32}", "seq_len: 0}"), "tasks.compression.settings[0]: compression: seq_len", "a positive integer"),
    (("seq_len: 32}", "vocab_size: -4}"), "tasks.compression.settings[0]: compression: vocab_size",
     "a positive integer"),
    (("seq_len: 32}", "num_train_examples: 0}"), "tasks.compression.settings[0]: compression: num_train_examples",
     "a positive integer"),
    (("batch_size: 16, settings", "batch_size: -16, settings"), "tasks.compression.batch_size", "a positive integer"),
    (("num_test_examples: 16", "num_test_examples: -16"), "num_test_examples", "a positive integer"),
    (("seeds: [0, 1, 2, 3]", "seeds: [0, -1]"), "seeds[1]", "an integer ≥ 0"),
    (("seeds: [0, 1, 2, 3]", "seeds: [0, 18446744073709551616]"), "seeds[1]",
     "an integer ≥ 0 and ≤ 18446744073709551615"),
    (("lrs: [0.001]", "lrs: [-0.001]"), "lrs[0]", "a number > 0"),
    (("memorization: {num_train_examples: 32,", "memorization: {num_train_examples: 32, settings: [{seq_len: 33}],"),
     "tasks.memorization.settings[0]: memorization: seq_len must be even", ""),
    (("{seq_len: 32}, {vocab_size: 32}", "{seq_len: 32}, {seq_len: 32}"),
     "tasks.compression.settings[1] repeats settings[0]", ""),
    (("eval_batch_size: 16", "eval_batch_size: 16\nearly_stop: 1.5"), "early_stop", "≤ 1"),
    (("eval_batch_size: 16", "eval_batch_size: 16\nagreement_targets: {selective-copying: 0.7}"),
     "agreement_targets: unknown task(s) ['selective-copying']", "valid: the tasks the scale trains (compression, "
     "memorization)"),
    (("eval_batch_size: 16", "eval_batch_size: 16\nagreement_targets: {memorization: 85}"),
     "agreement_targets.memorization", "a number > 0 and ≤ 1; got 85"),
    (("eval_batch_size: 16", "eval_batch_size: 16\nagreement_targets: [0.85]"), "agreement_targets",
     "a mapping of task to target"),
])
def test_every_scale_value_is_checked_at_load_naming_the_field(tmp_path, monkeypatch, capsys, no_training, edit,
                                                               where, valid):
    monkeypatch.setenv("DELTALAB_RESULTS", str(tmp_path / "results"))
    path = _scale_file(tmp_path)
    old, new = edit
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new, 1))
    with pytest.raises(ValueError, match="(?s)" + __import__("re").escape(f"{path}: {where}") + ".*"
                       + __import__("re").escape(valid)):
        load_scale(path)
    assert main(["grid", "--scale", str(path), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "usage:" in err and f"error: argument --scale: {path}: {where}" in err
    assert not (tmp_path / "results").exists()  # nothing trained, nothing stored


def test_an_engine_is_one_entry_of_grid_engines_that_the_cli_offers(tiny, monkeypatch, capsys, no_training):
    """Adding an engine is one entry in ``grid.ENGINES``: the CLI's --engine offers it and ``execute`` hands it the
    runs with the options it takes; an option it does not take is refused, naming the engines that do."""
    from deltalab.grid import Summary, engines

    path, scale, store = tiny
    got = {}

    def inline(runs, scale, store, *, progress, code, stack, workers):
        got.update(runs=len(runs), scale=scale.name, workers=workers, stack=stack)
        return Summary(skipped=len(runs))

    monkeypatch.setitem(engines.ENGINES, "inline", inline)
    assert main(["grid", "--scale", str(path), "--engine", "inline", "--workers", "3"]) == 0
    assert got == {"runs": len(plan(scale.rows(), scale)), "scale": "tiny", "workers": 3, "stack": False}
    assert main(["grid", "--scale", str(path), "--engine", "inline", "--gpus-per-run", "1"]) == 2
    assert "--gpus-per-run is an option of --engine ray" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"num_gpus: not an option of engine='inline' \(its options: workers\)"):
        engines.execute([], scale, store, engine="inline", num_gpus=1)
    assert main(["grid", "--scale", str(path), "--engine", "nosuch"]) == 2
    assert "invalid choice: 'nosuch' (choose from 'local', 'ray', 'inline')" in capsys.readouterr().err


def test_a_scale_file_works_through_grid_run_table_and_status(tiny, capsys, no_training, monkeypatch, tmp_path):
    path, scale, store = tiny
    monkeypatch.chdir(tmp_path)
    rel = path.name  # relative to the working directory
    assert main(["grid", "--scale", rel, "--variants", "delta_net", "--tasks", "compression", "--seeds", "0"]) == 0
    out, err = capsys.readouterr()
    assert "unknown scale" not in err and "0 trained (0 diverged), 2 already stored" in err
    assert (store.root / "tables" / "tiny" / "accuracies_df.csv").exists()  # under the scale's name
    assert main(["run", "--variant", "delta_net", "--scale", rel, "--tasks", "memorization", "--seeds", "1"]) == 0
    assert main(["table", "--scale", rel]) == 0
    assert main(["status", "--scale", rel]) == 0
    out, err = capsys.readouterr()
    assert "scale 'tiny', store" in out and f"stored: {len(plan(scale.rows(), scale))} of" in out
    assert sorted(p.name for p in store.root.iterdir()) == ["tables", "tiny"]


def test_an_extra_seed_variant_that_is_not_one_is_refused_before_training(tmp_path, monkeypatch, capsys,
                                                                          no_training):
    monkeypatch.setenv("DELTALAB_RESULTS", str(tmp_path / "results"))
    assert main(["grid", "--scale", "smoke", "--variants", "delta_net", "--extra-seed-variants", "nosuch"]) == 2
    assert "extra seed variant 'nosuch' is neither" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


# --- 4. reading works on a read-only store and a full disk; reading creates nothing ------------------------------

def test_table_on_a_read_only_store_prints_and_warns(tiny, capsys, monkeypatch):
    """The store's folder refuses every write (as a read-only mount does; chmod does not stop root): the table is
    printed, a one-line warning names the folder, exit 0, and nothing in the store is created or changed."""
    path, scale, store = tiny
    root = store.root
    before = _tree(root)
    real_mkdir, real_open = Path.mkdir, os.open

    def refuse(target) -> None:
        if str(target).startswith(str(root)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(target))

    def mkdir(self, *args, **kwargs):
        if not self.exists():
            refuse(self)
        return real_mkdir(self, *args, **kwargs)

    def open_(file, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse(file)
        return real_open(file, flags, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", open_)
    assert main(["table", "--scale", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "delta_net_4layer" in out and "not written (see the warning)" in out
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"warning: could not write the tables to {root / 'tables' / 'tiny'}")
    assert lines[0].endswith("Read-only file system; the table is printed only (no file was changed)")
    assert main(["status", "--scale", str(path)]) == 0
    assert main(["table", "--scale", str(path), "--variants", "delta_net"]) == 0
    assert _tree(root) == before  # no lock, no folder, no table


def test_table_on_a_full_disk_prints_warns_and_writes_nothing_half_way(tiny, capsys, monkeypatch):
    """The disk fills while the second CSV is written: the first is not put in place either, the old pair stays as
    it was, no temporary file is left, and the table is printed with a one-line warning."""
    path, scale, store = tiny
    out_dir = store.root / "tables" / "tiny"
    out_dir.mkdir(parents=True)
    for name in ("accuracies_df.csv", "accuracies_summary.csv"):
        (out_dir / name).write_text("old\n")
    real_to_csv = pd.DataFrame.to_csv

    def to_csv(self, target, *args, **kwargs):
        if "summary" in str(target):
            Path(target).write_text("variant,la")  # part of it, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_to_csv(self, target, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", to_csv)
    assert main(["table", "--scale", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "delta_net_4layer" in out
    assert [line for line in err.splitlines() if line.strip()] == [
        f"warning: could not write the tables to {out_dir}: No space left on device; the table is printed only "
        "(no file was changed)"]
    assert sorted(p.name for p in out_dir.iterdir()) == ["accuracies_df.csv", "accuracies_summary.csv"]
    assert all((out_dir / n).read_text() == "old\n" for n in ("accuracies_df.csv", "accuracies_summary.csv"))
    # --out that cannot be written: the rows are printed, the error names the folder, exit 2
    assert main(["table", "--scale", str(path), "--variants", "delta_net", "--out", str(store.root / "mine")]) == 2
    out, err = capsys.readouterr()
    assert "delta_net_4layer" in out and f"error: could not write the table to {store.root / 'mine'}" in err
    assert not list((store.root / "mine").glob("*"))


def test_reading_creates_nothing_in_the_store(tiny):
    from deltalab.grid import grid_status, missing

    _, scale, store = tiny
    before = _tree(store.root)
    runs = plan(scale.rows(), scale) + plan(["delta_net"], scale, seeds=[7])  # some not stored
    assert len(missing(runs, store)) == len(plan(["delta_net"], scale, seeds=[7]))
    grid_status(runs, store)
    store.records(scale, bad=[])
    assert _tree(store.root) == before


# --- 5. Ray: not a Ray head, or a head that wants another token -------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_address_that_is_not_a_ray_head_fails_in_seconds_naming_it(tmp_path, monkeypatch, capsys):
    pytest.importorskip("ray", reason="Ray is not installed")
    from http.server import HTTPServer, SimpleHTTPRequestHandler

    from deltalab.grid import ray_cluster

    server = HTTPServer(("127.0.0.1", 0), SimpleHTTPRequestHandler)  # `python -m http.server PORT`
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = f"127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("DELTALAB_RESULTS", str(tmp_path / "results"))
    try:
        t0 = time.time()
        with pytest.raises(ValueError, match=f"{address} is not the head of a Ray cluster"):
            ray_cluster.connect(address)
        argv = ["grid", "--scale", "smoke", "--variants", "delta_net", "--tasks", "memorization", "--seeds", "0",
                "--engine", "ray", "--address", address]
        assert main(argv) == 2
        assert time.time() - t0 < 30
    finally:
        server.shutdown()
        server.server_close()
    err = capsys.readouterr().err
    assert f"error: {address} is not the head of a Ray cluster (it does not speak gRPC" in err
    assert "Traceback" not in err
    assert not list((tmp_path / "results").rglob("*.json"))


def test_a_head_that_refuses_the_token_says_which_file_to_remove_or_how_to_pass_one(monkeypatch):
    """A gRPC server answering as a token-authenticated Ray head does to a missing or wrong token."""
    pytest.importorskip("ray", reason="Ray is not installed")
    grpc = pytest.importorskip("grpc")
    from concurrent.futures import ThreadPoolExecutor

    from deltalab.grid import ray_cluster

    class Refuse(grpc.GenericRpcHandler):
        def service(self, details):
            def deny(request, context):
                context.abort(grpc.StatusCode.UNAUTHENTICATED,
                              "InvalidAuthToken: Authentication token is missing or incorrect")
            return grpc.unary_unary_rpc_method_handler(deny)

    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((Refuse(),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    try:
        t0 = time.time()
        with pytest.raises(ValueError) as caught:
            ray_cluster.connect(f"127.0.0.1:{port}")
        assert time.time() - t0 < 30
    finally:
        server.stop(0)
    message = str(caught.value)
    assert message.startswith(f"cannot connect to the Ray cluster at 127.0.0.1:{port}: it requires token "
                              "authentication and this process sent no token")
    assert f"remove {Path.home() / '.ray' / 'auth_token'}" in message and "RAY_AUTH_MODE=token" in message
    assert "RAY_AUTH_TOKEN_PATH=<the file holding it>" in message and "\n" not in message


@pytest.mark.parametrize("seeds, message", [
    ([0, 2**64], "seeds: seed 18446744073709551616 is out of range: a seed is an integer from 0 to 18446744073709551615 "
                 "(2**64 − 1, the largest seed torch.manual_seed takes)"),
    ([-1], "seeds: seed -1 is out of range: a seed is an integer from 0 to 18446744073709551615 (2**64 − 1, the "
           "largest seed torch.manual_seed takes)"),
    ([0, 1.5], "seeds: a seed must be an integer from 0 to 18446744073709551615 (2**64 − 1, the largest seed "
               "torch.manual_seed takes); got 1.5 (float)"),
    ("0,1", "seeds must be None (the scale's) or a non-empty list of seeds such as [0, 1]; got '0,1'"),
    ([0, 0], "seeds must be distinct; got [0, 0]"),
])
def test_run_variant_notebooks_seeds_are_bounded_before_any_work(tmp_path, monkeypatch, no_training, seeds, message):
    """run_variant.ipynb's first cell checks its parameters (report.check_parameters): a seed torch.manual_seed would
    refuse is refused there, with one line naming it and the valid range."""
    from deltalab.analysis.report import ParameterError, check_parameters

    monkeypatch.setenv("DELTALAB_RESULTS", str(tmp_path / "results"))
    with pytest.raises(ParameterError) as e:
        check_parameters("delta_net", "smoke", "memorization", seeds)
    assert str(e.value) == message and e.value._render_traceback_() == [f"ParameterError: {message}"]
    check_parameters("delta_net", "smoke", "memorization", [0, 2**64 - 1])  # the bounds themselves are valid
    assert not (tmp_path / "results").exists()


def test_the_largest_valid_seed_seeds_torch_and_the_data():
    """The bound is what the run's seeding takes: torch.manual_seed and numpy's generators accept MAX_SEED, torch
    refuses one more."""
    import numpy as np
    import torch

    from deltalab import tasks as T
    from deltalab.params import MAX_SEED

    torch.manual_seed(MAX_SEED)
    torch.Generator().manual_seed(MAX_SEED)
    np.random.default_rng([T.SEED + MAX_SEED, 0])
    with pytest.raises(Exception):
        torch.manual_seed(MAX_SEED + 1)
    torch.manual_seed(0)
