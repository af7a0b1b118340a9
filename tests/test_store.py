"""Nothing wrong, nothing lost (issue #13): the tables and the store under bad input and faults.

Each test names the fault it covers. Most build records by hand (no training); the few that train use the
smoke scale. New names are imported inside the tests, so each one fails on its own against the code before
the fix.
"""
import json
import re
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd
import pytest

from deltalab.analysis import accuracies
from deltalab.params import load_round, load_scale
from deltalab.grid import plan, run_variant, variant_id
from deltalab.runtime import REPO_ROOT, default_device, resolve_precision
from deltalab.store import Store
from deltalab.runs import make_spec
from deltalab.variants import VARIANTS

CPU_STORE = REPO_ROOT / "outputs" / "results"
ENV = os.environ | {"OMP_NUM_THREADS": "1"}


def _record(spec, acc: float, precision: str = "fp32", label: str | None = None) -> dict:
    """A run record as train_run writes it, with made-up numbers."""
    return {
        "spec": asdict(spec) | {"setting": spec.setting_dict},
        "label": label or VARIANTS[spec.variant].label,
        "metrics": {"test_acc": acc, "test_token_acc": acc, "test_ppl": 1.0, "test_loss": 0.0},
        "best_epoch": 1, "epochs_run": 1, "curve": [], "diverged": False, "early_stopped": False,
        "wall_time_s": 1.0, "train_time_s": 1.0, "eval_time_s": 0.0, "train_tokens_per_s": 1000.0,
        "num_params": 1, "precision": precision, "backend": "pytorch", "budget": {},
        "environment": {"commit": "abc", "device": "cpu", "platform": "x", "versions": {"torch": "2"}},
    }


def _cpu_spec(variant, task, setting, seed):
    return make_spec(variant, task, setting, 1e-3, 0.1, seed, "cpu-v1", "b")


# --- 1. an incomplete seed is not averaged around ---------------------------------------------------------

def test_a_seed_counts_only_with_every_setting_of_its_task():
    recs = [_record(_cpu_spec("delta_net", "in-context-recall", s, seed), acc)
            for seed, accs in ((0, (1.0, 0.6)), (1, (1.0, None)), (2, (1.0, 0.8)))
            for s, acc in zip(({}, {"vocab_size": 64}), accs) if acc is not None]
    runs = accuracies.records_frame(recs)
    cell = accuracies.summary(runs).set_index("column").loc["Context Recall"]
    assert cell["n"] == 2 and cell["mean"] == pytest.approx((0.8 + 0.9) / 2)  # not (0.8 + 1.0 + 0.9) / 3
    assert cell["missing"] == "seed 1: vs64"
    only_incomplete = accuracies.summary(accuracies.records_frame(recs[2:3]))
    assert only_incomplete["n"].tolist() == [0] and only_incomplete["mean"].isna().all()


def test_a_partial_sweep_is_no_score_and_the_notebooks_use_the_same_rule():
    """One rule for the CSV tables and the round notebooks (analysis.study.seed_scores uses deltalab.analysis.accuracies): with a
    two-point lr sweep, a seed whose setting has only one of them counts neither for the setting nor for the task."""
    from deltalab.analysis import study

    expected = {"Compress": {("baseline", 1e-3, 0.1), ("baseline", 1e-2, 0.1)}}
    recs = [_record(make_spec("delta_net", "compression", {}, lr, 0.1, seed, "cpu-v1", "b"), acc)
            for seed, lr, acc in ((0, 1e-3, 0.3), (0, 1e-2, 0.5), (1, 1e-3, 0.4))]
    runs = accuracies.records_frame(recs)
    cell = accuracies.summary(runs, expected=expected).iloc[0]
    assert cell["n"] == 1 and cell["mean"] == pytest.approx(0.5)
    assert cell["missing"] == "seed 1: baseline lr 0.01 wd 0.1"
    assert accuracies.setting_scores(runs, expected=expected)["seed"].tolist() == [0]
    scores, incomplete = study.seed_scores(runs, expected)
    assert set(scores["seed"]) == {0} and study.per_seed(scores, "delta_net", "Compress") == {0: pytest.approx(0.5)}
    assert incomplete.to_dict("records") == [{"variant": "delta_net", "column": "Compress", "seed": 1,
                                              "missing": "baseline lr 0.01 wd 0.1"}]


def test_the_committed_store_incomplete_seed_is_left_out():
    """sigmoid_similarity_gate, seed 1, in-context recall: the baseline run without its V=64 run."""
    runs = accuracies.records_frame(Store(CPU_STORE).records(load_scale("cpu-v1"), variants=["sigmoid_similarity_gate"],
                                                         tasks=["in-context-recall"]))
    assert sorted(runs["seed"].unique()) == [0, 1, 2] and len(runs) == 5
    cell = accuracies.summary(runs).iloc[0]
    assert cell["n"] == 2 and cell["missing"] == "seed 1: vs64"
    complete = runs[runs["seed"] != 1].groupby("seed")["test_acc"].mean().mean()
    assert cell["mean"] == pytest.approx(complete)


@pytest.mark.parametrize("scale", ["cpu-v1", "cpu"])
def test_committed_tables_are_what_table_computes_from_the_committed_store(tmp_path, scale):
    """accuracies_df.csv and accuracies_summary.csv, recomputed from the committed runs, byte for byte."""
    sc = load_scale(scale)
    runs = accuracies.records_frame(Store(CPU_STORE).records(sc))
    paths = accuracies.write_accuracies(runs, scale, tmp_path, expected=accuracies.expected_runs(sc))
    for name in ("accuracies", "summary"):
        committed = REPO_ROOT / "outputs" / scale / paths[name].name
        assert committed.read_bytes() == paths[name].read_bytes(), committed


# --- 2. a row is a variant id, never a label --------------------------------------------------------------

def test_a_user_file_named_like_a_baseline_is_a_row_of_its_own():
    recs = [_record(_cpu_spec("delta_net", "memorization", s, 0), 0.5) for s in ({}, {"vocab_size": 2048})]
    recs += [_record(_cpu_spec("delta_net_4layer-1a2b3c4d", "memorization", s, 0), 0.9, label="delta_net_4layer")
             for s in ({}, {"vocab_size": 2048})]
    table = accuracies.accuracies_df(accuracies.records_frame(recs))
    assert table.loc["delta_net_4layer", "Memorize"] == pytest.approx(0.5)  # not max(0.5, 0.9)
    assert table.loc["delta_net_4layer@1a2b3c4d", "Memorize"] == pytest.approx(0.9)


def test_an_edited_user_file_is_a_row_of_its_own():
    label = "delta_net_4layer_my_rule_in_for_loop"
    recs = [_record(_cpu_spec(vid, "memorization", s, 0), acc, label=label)
            for vid, acc in (("my_rule-aaaaaaaa", 0.2), ("my_rule-bbbbbbbb", 0.7)) for s in ({}, {"vocab_size": 2048})]
    table = accuracies.accuracies_df(accuracies.records_frame(recs))
    assert table["Memorize"].to_dict() == {f"{label}@aaaaaaaa": pytest.approx(0.2),
                                           f"{label}@bbbbbbbb": pytest.approx(0.7)}


def test_two_ids_with_one_label_are_an_error():
    recs = [_record(_cpu_spec(vid, "compression", {}, 0), 0.3, label="delta_net_4layer") for vid in ("old_a", "old_b")]
    with pytest.raises(ValueError, match="label collision.*old_a, old_b"):
        accuracies.accuracies_df(accuracies.records_frame(recs))


# --- 3. user variants stay out of the study's table -------------------------------------------------------

def test_user_rows_are_not_in_the_study_table(tmp_path):
    recs = [_record(_cpu_spec(v, "compression", {}, 0), 0.3, label=lab)
            for v, lab in (("delta_net", None), ("my_rule-1a2b3c4d", "delta_net_4layer_my_rule_in_for_loop"))]
    paths = accuracies.write_accuracies(accuracies.records_frame(recs), "cpu", tmp_path)
    assert list(pd.read_csv(paths["accuracies"], index_col=0).index) == ["delta_net_4layer"]
    assert "my_rule" not in paths["summary"].read_text()


def test_a_user_table_is_written_only_where_asked(tmp_path, monkeypatch):
    from deltalab.__main__ import main

    monkeypatch.setenv("DELTALAB_RESULTS", str(tmp_path / "results"))
    store = Store()
    sc = load_scale("smoke")
    precision = resolve_precision(sc.precision, default_device())
    rule = tmp_path / "my_rule.py"
    rule.write_text("from deltalab.core import delta_rule_chunkwise\n")
    vid = variant_id(str(rule))
    for ref in ("delta_net", str(rule)):
        for _, spec in plan([ref], sc):
            label = None if ref == "delta_net" else "delta_net_4layer_my_rule_in_for_loop"
            store.put(spec, _record(spec, 0.4, precision=precision, label=label))
    assert main(["table", "--scale", "smoke", "--variants", f"delta_net,{rule}", "--out", str(tmp_path / "mine")]) == 0
    mine = pd.read_csv(tmp_path / "mine" / "accuracies_df.csv", index_col=0)
    assert list(mine.index) == ["delta_net_4layer", f"delta_net_4layer_my_rule_in_for_loop@{vid[-8:]}"]
    assert not (tmp_path / "results" / "tables").exists()  # the study's tables are left alone
    main(["table", "--scale", "smoke"])
    study = pd.read_csv(tmp_path / "results" / "tables" / "smoke" / "accuracies_df.incomplete.csv", index_col=0)
    assert list(study.index) == ["delta_net_4layer"]


# --- 4. precision is part of a run's identity -------------------------------------------------------------

def test_budget_id_hashes_the_precision_used():
    from deltalab.runs import budget_id

    auto = replace(load_scale("smoke"), precision="auto")
    assert budget_id(auto, "memorization", "fp32") != budget_id(auto, "memorization", "bf16")
    here = resolve_precision("auto", default_device())
    assert budget_id(auto, "memorization") == budget_id(auto, "memorization", here)
    assert budget_id(replace(auto, precision="fp32"), "memorization") == budget_id(auto, "memorization", "fp32")


def test_a_cell_mixing_precisions_is_refused_and_the_summary_shows_it():
    recs = [_record(_cpu_spec("delta_net", "compression", {}, seed), 0.3, precision=p)
            for seed, p in ((0, "fp32"), (1, "fp32"))]
    assert accuracies.summary(accuracies.records_frame(recs))["precision"].tolist() == ["fp32"]
    recs.append(_record(_cpu_spec("delta_net", "compression", {}, 2), 0.3, precision="bf16"))
    with pytest.raises(ValueError, match="delta_net / Compress mixes.*bf16: seeds 2; fp32: seeds 0, 1"):
        accuracies.summary(accuracies.records_frame(recs))


def test_committed_store_is_keyed_by_the_precision_it_trained_in():
    from deltalab.runs import budget_id

    cpu = load_scale("cpu-v1")
    files = sorted((CPU_STORE / "cpu-v1").glob("*/*/*/*.json"))
    assert len(files) == 625
    for f in files:
        record = json.loads(f.read_text())
        assert record["precision"] == "fp32"
        want = budget_id(cpu, record["spec"]["task"], "fp32")
        assert record["spec"]["budget_id"] == want and f.name.endswith(f"_b{want}.json"), f
    assert len(Store(CPU_STORE).records(load_scale("cpu-v1"))) == 625


def test_migrate_store_rekeys_records_of_the_precision_policy(tmp_path):
    from deltalab.store import legacy_budget_id

    sc = replace(load_scale("smoke"), precision="auto")  # an `auto` scale keeps runs of either precision
    store = Store(tmp_path)
    old_specs = []
    for task, precision in (("memorization", "fp32"), ("compression", "bf16")):
        (_, spec), = plan(["delta_net"], sc, [task])
        spec = replace(spec, budget_id=legacy_budget_id(sc, task, "auto"))  # as the code before #13 named it
        store.put(spec, _record(spec, 0.5, precision=precision))
        old_specs.append((spec, precision))
    other = replace(old_specs[0][0], budget_id="000000")  # an earlier budget of the scale: left alone
    store.put(other, _record(other, 0.1))
    assert Store(tmp_path).records(sc) == []  # not found under the new ids
    assert store.migrate_budget_ids(sc, dry_run=True)["renamed"] and not Store(tmp_path).records(sc)
    result = store.migrate_budget_ids(sc)
    assert len(result["renamed"]) == 2 and len(result["other budget"]) == 1 and not result["conflict"]
    found = Store(tmp_path).records(sc)
    assert sorted(r["precision"] for r in found) == ["bf16", "fp32"]
    from deltalab.runs import budget_id

    for spec, precision in old_specs:
        new = replace(spec, budget_id=budget_id(sc, spec.task, precision))
        assert not store.path(spec).exists() and store.get(new)["spec"]["budget_id"] == new.budget_id
    assert store.path(other).exists()
    again = store.migrate_budget_ids(sc)
    assert not again["renamed"] and len(again["current"]) == 2


# --- 5. tables go beside their store; an incomplete store does not overwrite a complete table --------------

def _fill(store: Store, scale: str = "smoke", drop: int = 0) -> list:
    """Store a made-up record for every run the scale plans for the registered variants (but the last ``drop``)."""
    sc = load_scale(scale)
    precision = resolve_precision(sc.precision, default_device())
    runs = plan(list(VARIANTS), sc)
    for i, (_, spec) in enumerate(runs[:len(runs) - drop]):
        store.put(spec, _record(spec, 0.1 + 0.8 * (i % 7) / 7, precision=precision))
    return runs


def test_table_is_written_beside_its_store_and_incomplete_never_overwrites(tmp_path, monkeypatch, capsys):
    from deltalab.__main__ import main

    repo_tables = REPO_ROOT / "outputs" / "smoke"
    before = {p: p.stat().st_mtime_ns for p in repo_tables.glob("*.csv")} if repo_tables.exists() else {}
    monkeypatch.setenv("DELTALAB_RESULTS", str(tmp_path / "results"))
    store = Store()
    runs = _fill(store)
    assert main(["table", "--scale", "smoke"]) == 0
    here = tmp_path / "results" / "tables" / "smoke"
    complete = (here / "accuracies_df.csv").read_text()
    assert len(pd.read_csv(here / "accuracies_df.csv", index_col=0)) == len(VARIANTS)
    store.path(runs[-1][1]).unlink()  # one run short of the plan
    assert main(["table", "--scale", "smoke"]) == 1
    err = capsys.readouterr().err
    assert "INCOMPLETE: 1 of the runs" in err and runs[-1][1].variant in err
    assert (here / "accuracies_df.csv").read_text() == complete  # the complete table is kept
    assert (here / "accuracies_df.incomplete.csv").exists() and (here / "accuracies_summary.incomplete.csv").exists()
    after = {p: p.stat().st_mtime_ns for p in repo_tables.glob("*.csv")} if repo_tables.exists() else {}
    assert after == before  # nothing written into the repository's outputs/smoke/


def test_the_repository_store_writes_its_tables_to_outputs_scale():
    assert Store(CPU_STORE).tables_dir("cpu") == REPO_ROOT / "outputs" / "cpu"
    assert Store("/somewhere/else").tables_dir("cpu") == Path("/somewhere/else/tables/cpu")


# --- 6. a corrupt record is named, and a grid re-trains it ------------------------------------------------

@pytest.mark.parametrize("content", ["", '{"spec": {"variant": "delta_net", "task": "memo', '{"label": "x"}'])
def test_a_corrupt_record_is_named_by_every_reader(tmp_path, monkeypatch, capsys, content):
    from deltalab.__main__ import main

    monkeypatch.setenv("DELTALAB_RESULTS", str(tmp_path))
    store = Store()
    (_, spec), = plan(["delta_net"], load_scale("smoke"), ["memorization"])
    path = store.path(spec)
    path.parent.mkdir(parents=True)
    path.write_text(content)
    for read in (lambda: store.get(spec), lambda: store.records(load_scale("smoke"))):
        with pytest.raises(ValueError, match=rf"{path}: not a valid run record.*not counted as stored.*Delete it"
                                             r".*re-train"):
            read()
    assert main(["table", "--scale", "smoke"]) == 1  # named, not counted: the store is incomplete
    err = capsys.readouterr().err
    assert f"bad record (not counted as stored): {path}: not a valid run record" in err and "Traceback" not in err
    assert path.read_text() == content  # nothing deleted


def test_a_grid_moves_a_corrupt_record_aside_and_retrains_it(tmp_path):
    store = Store(tmp_path)
    (_, spec), = plan(["delta_net"], load_scale("smoke"), ["memorization"])
    path = store.path(spec)
    path.parent.mkdir(parents=True)
    path.write_text('{"spec": {"variant": "delta_ne')
    with pytest.warns(UserWarning, match="moved aside"):
        records, summary = run_variant("delta_net", load_scale("smoke"), ["memorization"], store=store, progress=False)
    assert summary.trained == 1 and records[0]["spec"]["task"] == "memorization"
    assert store.get(spec) is not None and path.with_name(path.name + ".corrupt").exists()


# --- 7. locks expire; a grid lists what it could not take and exits non-zero -------------------------------

def _lock(store, spec, text, age_s=0.0):
    lock = store.lock_path(spec)
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(text)
    t = time.time() - age_s
    os.utime(lock, (t, t))
    return lock


def test_a_lock_from_another_host_is_taken_over_once_its_lease_expired(tmp_path):
    store = Store(tmp_path, lease_s=60)
    spec = make_spec("delta_net", "memorization", {}, 1e-3, 0.1, 0, "smoke")
    _lock(store, spec, "another-host 12345 999 ab\n", age_s=10)
    with store.claim(spec) as owned:
        assert not owned  # its lease is still running
    _lock(store, spec, "another-host 12345 999 ab\n", age_s=120)
    with store.claim(spec) as owned:
        assert owned


def test_a_lock_of_a_reused_pid_is_stale(tmp_path):
    store = Store(tmp_path, lease_s=3600)
    spec = make_spec("delta_net", "memorization", {}, 1e-3, 0.1, 0, "smoke")
    # this process is alive, but it is not the process that wrote the lock (another start time)
    _lock(store, spec, f"{socket.gethostname()} {os.getpid()} 1 ab\n")
    with store.claim(spec) as owned:
        assert owned


def test_a_held_lock_keeps_its_lease_with_a_heartbeat(tmp_path):
    spec = make_spec("delta_net", "memorization", {}, 1e-3, 0.1, 0, "smoke")
    holder, other = Store(tmp_path, lease_s=1.0), Store(tmp_path, lease_s=1.0)
    with holder.claim(spec) as owned:
        assert owned
        lock = holder.lock_path(spec)
        time.sleep(2.5)  # two and a half leases: only the heartbeat keeps it fresh
        assert time.time() - lock.stat().st_mtime < 1.0
        # seen from another host (so that only the lease counts), it is still held
        text = lock.read_text()
        fake = tmp_path / "elsewhere.lock"
        fake.write_text("another-host" + text[text.index(" "):])
        os.utime(fake, (lock.stat().st_atime, lock.stat().st_mtime))
        assert not other.lock_state(fake)[0]
        with other.claim(spec) as taken:
            assert not taken
    assert not lock.exists()


def test_a_grid_lists_the_runs_it_could_not_take_and_exits_nonzero(tmp_path, monkeypatch, capsys):
    from deltalab.__main__ import main

    monkeypatch.setenv("DELTALAB_RESULTS", str(tmp_path))
    (_, spec), = plan(["delta_net"], load_scale("smoke"), ["memorization"])
    lock = _lock(Store(), spec, "another-host 4242 77 ab\n")  # a live lease held elsewhere
    code = main(["grid", "--scale", "smoke", "--variants", "delta_net", "--tasks", "memorization", "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 1
    assert "MISSING: 1 planned run" in err and str(lock) in err and "pid 4242 on another-host" in err


# --- 8. kill -9 of a grid: its workers exit --------------------------------------------------------------

def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_workers_exit_when_their_grid_process_is_killed(tmp_path):
    code = ("from deltalab.params import load_scale; from deltalab.grid import plan, execute;"
            "from deltalab.store import Store;"
            "s = load_scale('smoke'); runs = plan(['delta_net', 'gated_delta_net'], s);"
            f"execute(runs, s, Store({str(tmp_path)!r}), workers=2, threads=1, progress=False)")
    grid = subprocess.Popen([sys.executable, "-c", code], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not list(tmp_path.rglob("*.lock")):
            time.sleep(0.1)
        workers = [p for p in _children(grid.pid) if "resource_tracker" not in Path(f"/proc/{p}/cmdline").read_text()]
        assert len(workers) == 2 and list(tmp_path.rglob("*.lock")), "a worker should be training"
    finally:
        grid.send_signal(signal.SIGKILL)
        grid.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.2)
    assert not any(_alive(p) for p in workers), "orphan workers still running"
    store = Store(tmp_path)
    for lock in tmp_path.rglob("*.lock"):  # the killed runs' locks are stale: a re-run takes them over
        assert store.lock_state(lock)[0], lock


# --- 9. an unwritable store fails before training, naming the path ----------------------------------------

def test_an_unwritable_store_fails_before_training_naming_the_path(tmp_path, monkeypatch):
    import deltalab.grid.local as local
    from deltalab.grid import execute

    monkeypatch.setattr(local, "train_run", lambda *a, **k: pytest.fail("trained into an unwritable store"))
    (_, spec), = plan(["delta_net"], load_scale("smoke"), ["memorization"])
    store = Store(tmp_path)
    folder = store.path(spec).parent
    folder.parent.mkdir(parents=True)
    folder.write_text("a file where the run's folder should be")
    with pytest.raises(OSError, match=f"not writable at {folder}"):
        execute([("delta_net", spec)], load_scale("smoke"), store, progress=False)


def test_a_full_disk_fails_before_training_naming_the_folder(tmp_path, monkeypatch):
    import errno

    import deltalab.grid.local as local
    from deltalab.grid import execute
    import deltalab.store as store_mod

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(local, "train_run", lambda *a, **k: pytest.fail("trained onto a full disk"))
    monkeypatch.setattr(store_mod.os, "fsync", full)
    (_, spec), = plan(["delta_net"], load_scale("smoke"), ["memorization"])
    store = Store(tmp_path)
    with pytest.raises(OSError, match=f"not writable at {store.path(spec).parent}: No space left"):
        execute([("delta_net", spec)], load_scale("smoke"), store, progress=False)
    assert not list(tmp_path.rglob("*.lock")) and not list(tmp_path.rglob("*.tmp"))


def test_a_failed_put_names_the_record_and_leaves_nothing(tmp_path, monkeypatch):
    import errno

    import deltalab.store as store_mod

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    (_, spec), = plan(["delta_net"], load_scale("smoke"), ["memorization"])
    store = Store(tmp_path)
    monkeypatch.setattr(store_mod.json, "dump", full)
    with pytest.raises(OSError, match=f"could not write the run record {store.path(spec)}: No space left"):
        store.put(spec, _record(spec, 0.5))
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_records_are_written_with_the_umask_mode(tmp_path):
    (_, spec), = plan(["delta_net"], load_scale("smoke"), ["memorization"])
    old = os.umask(0o022)
    try:
        path = Store(tmp_path).put(spec, _record(spec, 0.5))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


# --- 10. params: every value type-checked, naming the file and the key ------------------------------------

SMOKE = (REPO_ROOT / "params" / "scales" / "smoke.yaml").read_text()
MEMO = "memorization: {num_train_examples: 32, "


@pytest.mark.parametrize("edit, key, valid", [
    (lambda s: s.replace(MEMO + "epochs: 1", MEMO + 'epochs: "2"'), "tasks.memorization.epochs", "positive integer"),
    (lambda s: s.replace(MEMO + "epochs: 1", MEMO + "epochs: 1.5"), "tasks.memorization.epochs", "positive integer"),
    (lambda s: s.replace("lrs: [0.001]", "lrs: 0.001"), "lrs", "non-empty list"),
    (lambda s: s.replace("seeds: [0]", 'seeds: [0]\nresources: {num_gpus: "1"}'), "resources.num_gpus", "number"),
    (lambda s: s.replace("seeds: [0]", "seeds: [0]\nresources: {num_cpus: 0}"), "resources.num_cpus", "number > 0"),
    (lambda s: s.replace("lrs: [0.001]", "lrs: [1e-3]"), r"lrs\[0\]", "number > 0"),
    (lambda s: s.replace("seeds: [0]", "seeds: 0"), "seeds", "non-empty list"),
    (lambda s: s.replace("seeds: [0]", "seeds: [0]\nseeded_variants: [l2_norm_eror]"), r"seeded_variants\[0\]",
     "registered variant"),
    (lambda s: s.replace("name: smoke", "name: smoky"), "name", "differs from the file's name"),
    (lambda s: s.replace("precision: fp32", "precision: fp16"), "precision", "one of auto, bf16, fp32"),
    (lambda s: s.replace("num_test_examples: 16", "num_test_examples: 0"), "num_test_examples", "positive integer"),
    (lambda s: s.replace("num_test_examples: 16", "num_test_examples: 512").replace("eval_batch_size: 16",
                                                                                     "eval_batch_size: 192"),
     "eval_batch_size", "multiple of 128"),  # would re-cut the metric's 128-example blocks under the same run id
    (lambda s: "", "empty", "needs the keys"),
])
def test_bad_scale_values_name_the_file_and_the_key(tmp_path, edit, key, valid):
    path = tmp_path / "smoke.yaml"
    text = edit(SMOKE)
    assert text != SMOKE or not text
    path.write_text(text)
    with pytest.raises(ValueError, match=rf"{path}.*{key}.*{valid}"):
        load_scale(path)


ROUND = (REPO_ROOT / "params" / "rounds" / "round_1.yaml").read_text()


@pytest.mark.parametrize("edit, key", [
    (lambda s: s.replace("kind: lags, task: Fuzzy Recall", "kind: lags, task: Fuzzy Recal", 1),
     "unknown task 'Fuzzy Recal'"),
    (lambda s: s.replace("variant: layernorm_state", "variant: layernorm_stat", 1), r"claims\[3\].*variant"),
    (lambda s: s.replace("proposal: rmsprop_state", "proposal: rmsprop"), "proposal"),
    (lambda s: s.replace("translation: {kind: beats, other: gated_delta_net,",
                         "translation: {kind: beats, other: gated_deltanet,", 1), r"translation\.other"),
    (lambda s: s.replace("margin: 0.02}", 'margin: "0.02"}', 1), "margin.*a number in"),
])
def test_round_file_names_are_checked_against_columns_and_registry(tmp_path, edit, key):
    path = tmp_path / "round_1.yaml"
    path.write_text(edit(ROUND))
    assert path.read_text() != ROUND
    with pytest.raises(ValueError, match=rf"{path}.*{key}"):
        load_round(path)


# --- 11. a rule that raises mid-training says which run ---------------------------------------------------

def _fragile_rule(folder: Path) -> Path:
    """A user's rule that passes the validity checks (batch 2) and raises once training starts."""
    rule = folder / "fragile.py"
    rule.write_text(
        "from deltalab.core import delta_rule_chunkwise as base\n"
        "def delta_rule_chunkwise(q, k, v, beta, chunk_size=32):\n"
        "    if q.shape[0] > 2:  # the checks use a batch of 2; training does not\n"
        "        raise RuntimeError('boom in my rule')\n"
        "    return base(q, k, v, beta, chunk_size)\n")
    return rule


def test_a_rule_that_raises_mid_training_names_variant_task_setting_and_seed(tmp_path):
    rule = _fragile_rule(tmp_path)
    with pytest.raises(RuntimeError, match=r"variant fragile-[0-9a-f]{8} \(.*fragile.py\), task memorization, "
                                           r"setting baseline, lr 0.001, wd 0.1, seed 0 .*boom in my rule"):
        run_variant(str(rule), load_scale("smoke"), ["memorization"], store=Store(tmp_path / "store"), progress=False)


# --- 12. reproducible outputs ----------------------------------------------------------------------------

def test_environment_json_describes_the_runs_and_is_not_rewritten(tmp_path):
    from deltalab.analysis.report import write_environment

    store = Store(tmp_path / "results")
    sc = load_scale("smoke")
    for _, spec in plan(["delta_net", "gated_delta_net"], sc, ["memorization"]):
        store.put(spec, _record(spec, 0.5))
    path = write_environment(tmp_path / "environment.json", scale=load_scale("smoke"), store=store)
    data = json.loads(path.read_text())
    assert data["runs"] == 2 and data["commits"] == {"abc": 2} and data["precisions"] == {"fp32": 2}
    os.utime(path, (1, 1))
    write_environment(path, scale=load_scale("smoke"), store=store)  # nothing new trained: left as it is
    assert path.stat().st_mtime == 1


# the cheapest committed cpu run (about 4 s of training), and the fields of a record that describe the machine
COMMITTED_RUN = CPU_STORE / "cpu-v2" / "sharp_softmax" / "memorization" / "baseline" / "lr0.001_wd0.1_seed3_bcfbeb1.json"
MACHINE_FIELDS = {"wall_time_s", "train_time_s", "eval_time_s", "train_tokens_per_s", "environment"}


# fp32 kernels of another instruction set sum in another order: the committed run re-trained under AVX2 (on an
# AVX-512 machine, under scripts/test.sh's AVX2 variables) differs from its record by at most 3.0e-7 relative over
# its learning curve and 1.9e-7 in its final metrics (test_loss 0.6439741998910904 against 0.6439743191003799;
# accuracies, best epoch and every other field equal): rounding, grown over four epochs. The tolerance is over 30
# times that and 100 times below the 3 digits a table prints, so a number a reader sees cannot move within it,
# while a change to the code (which moves a loss by 1e-3 or more) fails it.
REPRODUCTION_RTOL = 1e-5


def test_a_record_says_the_cpu_capability_it_was_trained_under(monkeypatch):
    """New records store ATen's CPU capability and any cap on the instruction set; for a record from before, the
    capability is inferred where the record allows (a bf16-capable CPU has AVX-512), else unknown."""
    import torch

    from deltalab.runtime import environment, recorded_cpu_capability

    monkeypatch.setenv("MKL_ENABLE_INSTRUCTIONS", "AVX2")
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    env = environment(torch.device("cpu"))
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert env["cpu_isa_limits"] == {"MKL_ENABLE_INSTRUCTIONS": "AVX2"}
    assert recorded_cpu_capability(env) == (env["cpu_capability"], "recorded")
    committed = json.loads(COMMITTED_RUN.read_text())["environment"]
    assert "cpu_capability" not in committed and committed["cpu_native_bf16"] is True
    assert recorded_cpu_capability(committed)[0] == "AVX512"
    assert recorded_cpu_capability(committed | {"cpu_native_bf16": False})[0] is None


def test_a_committed_run_is_reproduced_by_training_it_again(tmp_path):
    """A committed cpu run, planned again as the cpu grid plans it and trained again by the grid's local engine into
    an empty store (in a fresh process with one thread, as the grid trained it), is the committed record: its path,
    every metric and every learning-curve value, and every other field but the timings and the environment
    (commit, host), of which the train path must match too. Exactly, bit for bit, where that is promised: the
    record's torch version (skipped under another) and its CPU capability (``runtime.recorded_cpu_capability``: ATen's
    dispatch level, with no cap on the instruction set in either environment). Elsewhere, as on an AVX2-only
    laptop, every metric and curve value to a relative ``REPRODUCTION_RTOL`` (1e-5): see its comment. The test
    prints which of the two it checked, and against what."""
    import torch

    from deltalab.runtime import recorded_cpu_capability

    committed = json.loads(COMMITTED_RUN.read_text())
    if committed["environment"]["versions"]["torch"] != torch.__version__:
        pytest.skip(f"the record was trained under torch {committed['environment']['versions']['torch']}, "
                    f"this is {torch.__version__}")
    s = committed["spec"]
    sc = load_scale(s["scale"])
    (_, spec), = [run for run in plan([s["variant"]], sc, [s["task"]], seeds=[s["seed"]]) if not run[1].setting]
    assert Store(CPU_STORE).path(spec) == COMMITTED_RUN  # the plan names the committed run
    code = ("from deltalab.grid import execute, plan\n"
            "from deltalab.params import load_scale\n"
            "from deltalab.store import Store\n"
            f"sc = load_scale({s['scale']!r})\n"
            f"runs = [run for run in plan([{s['variant']!r}], sc, [{s['task']!r}], seeds=[{s['seed']}]) "
            "if not run[1].setting]\n"
            f"print(execute(runs, sc, Store({str(tmp_path)!r}), workers=1, threads=1, progress=False))\n")
    # ENV is this process's environment: ATEN_CPU_CAPABILITY and the GEMM libraries' caps reach the run
    done = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("1 trained (0 diverged)"), done.stdout
    again = json.loads(Store(tmp_path).path(spec).read_text())

    was, known = recorded_cpu_capability(committed["environment"])
    now, limits = again["environment"]["cpu_capability"], again["environment"]["cpu_isa_limits"]
    if os.environ.get("ATEN_CPU_CAPABILITY"):  # a capped pass (scripts/test.sh's AVX2 one) took the capped path
        assert now == os.environ["ATEN_CPU_CAPABILITY"].upper() and limits == {
            k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")
            if k in os.environ}, (now, limits)
    exact = was is not None and was == now and not limits and not committed["environment"].get("cpu_isa_limits")
    against = (f"the record's CPU capability: {was} ({known}); this run's: {now}"
               + (f" under {', '.join(f'{k}={v}' for k, v in limits.items())}" if limits else ""))
    print(f"\nchecked {'exactly, bit for bit' if exact else f'to a relative {REPRODUCTION_RTOL:g}'} against "
          f"{COMMITTED_RUN.relative_to(REPO_ROOT)}: {against}")
    if exact:
        assert again["metrics"] == committed["metrics"], against
        assert again["curve"] == committed["curve"], against
    else:
        assert again["metrics"] == pytest.approx(committed["metrics"], rel=REPRODUCTION_RTOL, abs=0), against
        assert len(again["curve"]) == len(committed["curve"]), against
        for point, was_point in zip(again["curve"], committed["curve"]):
            assert point == pytest.approx(was_point, rel=REPRODUCTION_RTOL, abs=0), against
    assert again["environment"].get("train_path") == committed["environment"].get("train_path")
    assert ({k: v for k, v in again.items() if k not in MACHINE_FIELDS | {"metrics", "curve"}}
            == {k: v for k, v in committed.items() if k not in MACHINE_FIELDS | {"metrics", "curve"}})


@pytest.mark.skipif(not os.environ.get("DELTALAB_SLOW"), reason="runs the whole smoke study twice (minutes); "
                    "set DELTALAB_SLOW=1")
def test_study_twice_in_a_row_changes_no_file(tmp_path):
    env = ENV | {"SCALE": "smoke", "DELTALAB_RESULTS": str(tmp_path / "results"), "PYTHON": sys.executable,
                 "PAPERMILL": str(Path(sys.executable).with_name("papermill"))}
    subprocess.run(["bash", str(REPO_ROOT / "scripts" / "study.sh")], env=env, check=True, capture_output=True)
    out = tmp_path / "results" / "tables" / "smoke"

    def snapshot():
        return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()}

    first = snapshot()
    assert (out / "accuracies_df.csv").exists() and (out / "round_5.ipynb").exists()
    subprocess.run(["bash", str(REPO_ROOT / "scripts" / "study.sh")], env=env, check=True, capture_output=True)
    second = snapshot()
    assert second.keys() == first.keys()
    changed = [str(p) for p in first if first[p][0] != second[p][0]]
    assert not changed, changed


# --- 11. a grid over many sittings: what is stored, held and left, and the time left ---------------------

def test_status_counts_each_run_once_and_projects_from_stored_wall_times(tmp_path, monkeypatch, capsys):
    from deltalab.__main__ import main
    from deltalab.grid import grid_status, status_report

    monkeypatch.setenv("DELTALAB_RESULTS", str(tmp_path))
    store = Store()
    sc = load_scale("smoke")
    runs = plan(["delta_net", "decay_state"], sc, ["compression", "memorization"], seeds=[0, 1])
    by = {(s.variant, s.task, s.seed): s for _, s in runs}
    for key, wall in ((("delta_net", "compression", 0), 10.0), (("delta_net", "compression", 1), 30.0),
                      (("decay_state", "compression", 0), 100.0)):
        store.put(by[key], _record(by[key], 0.5) | {"wall_time_s": wall})
    _lock(store, by[("delta_net", "memorization", 0)], "another-host 4242 77 ab\n")  # a live lease
    _lock(store, by[("delta_net", "memorization", 1)], "another-host 4242 77 ab\n",
          age_s=2 * store.lease_s)  # an expired lease: the run counts as missing

    status = grid_status(runs, store).set_index(["variant", "task", "seed"])
    assert status["state"].value_counts().to_dict() == {"stored": 3, "held": 1, "missing": 4}
    # decay_state's missing compression seed: its own stored seed (100 s), not the setting's median
    assert status.loc[("decay_state", "compression", 1), "estimate_s"] == 100.0
    assert pd.isna(status.loc[("delta_net", "compression", 0), "estimate_s"])  # stored: nothing left to estimate
    assert status.xs("memorization", level="task")["estimate_s"].isna().all()  # no stored run of the setting

    report = status_report(grid_status(runs, store), workers=2)
    assert "stored: 3 of 8 runs" in report and "left: 5 runs, about 0.0 process-hours" in report
    assert "4 run(s) of settings with no stored run are not in that figure" in report

    monkeypatch.chdir(tmp_path)
    assert main(["status", "--scale", "smoke", "--workers", "0"]) == 2
    assert "argument --workers: must be at least 1" in capsys.readouterr().err


# --- 13. a failing run does not stop the grid; the lease is a positive number ----------------------------

def test_a_run_that_raises_does_not_stop_the_grid(tmp_path, monkeypatch, capsys):
    """The other runs are trained and stored; the grid then exits 1 naming the failed run and its cause."""
    from deltalab.__main__ import main

    rule = _fragile_rule(tmp_path)
    monkeypatch.setenv("DELTALAB_RESULTS", str(tmp_path / "store"))
    code = main(["grid", "--scale", "smoke", "--variants", f"{rule},delta_net", "--tasks", "memorization",
                 "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 1
    assert re.search(r"1 of 2 runs failed on this machine \(the others are stored\):\n  variant fragile-[0-9a-f]{8} "
                     r"\(.*fragile.py\), task memorization, .*boom in my rule", err)
    (_, spec), = plan(["delta_net"], load_scale("smoke"), ["memorization"])
    assert Store().get(spec) is not None  # delta_net's run, after the failed one, was trained and stored


@pytest.mark.parametrize("value", ["0", "-5", "nan", "soon"])
def test_a_bad_lock_lease_is_refused_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv("DELTALAB_LOCK_LEASE_S", value)
    with pytest.raises(ValueError, match=r"DELTALAB_LOCK_LEASE_S must be a .*number of seconds .*" + re.escape(repr(value))):
        Store()
    monkeypatch.setenv("DELTALAB_LOCK_LEASE_S", "90")
    assert Store().lease_s == 90.0 and Store(lease_s=5).lease_s == 5.0


def test_the_heartbeat_survives_a_failed_touch(tmp_path, monkeypatch):
    """One failed utime (a transient error) does not end the lease's renewal."""
    from deltalab import store as store_mod

    (_, spec), = plan(["delta_net"], load_scale("smoke"), ["memorization"])
    store = Store(tmp_path, lease_s=0.4)  # heartbeat every 0.1 s
    real, calls = os.utime, []

    def flaky(path, *a, **kw):
        calls.append(path)
        if len(calls) == 1:
            raise OSError("transient")
        return real(path, *a, **kw)

    monkeypatch.setattr(store_mod.os, "utime", flaky)
    with store.claim(spec) as owned:
        assert owned
        time.sleep(0.9)
        assert len(calls) >= 3 and not store.lock_state(store.lock_path(spec))[0]  # renewed after the failure


def test_a_store_mixing_training_paths_is_refused_naming_the_runs():
    """The fast path agrees with the reference only to rounding: one study, one path (else a change that does
    not act would no longer be DeltaNet's runs bit for bit)."""
    recs = [_record(_cpu_spec(v, "compression", {}, seed), 0.3) for v in ("delta_net", "decay_state") for seed in (0, 1)]
    recs[3]["environment"] = recs[3]["environment"] | {"train_path": "fast"}
    with pytest.raises(ValueError, match=r"mix training paths \(reference: 3, fast: 1; e\.g\. fast: "
                                         r"decay_state/compression/baseline/seed 1\)"):
        accuracies.summary(accuracies.records_frame(recs))
    recs[3]["environment"]["train_path"] = "reference"
    assert accuracies.summary(accuracies.records_frame(recs))["n"].tolist() == [2, 2]


def test_a_missing_variant_file_is_named(capsys):
    from deltalab.__main__ import main

    assert main(["table", "--scale", "smoke", "--variants", "delta_net,no_such_rule.py"]) == 2
    assert "'no_such_rule.py' is neither a registered variant nor a file" in capsys.readouterr().err
