"""The MAD protocol end to end at smoke scale, the results store, resume and concurrency, bad input."""
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from deltalab.analysis import accuracies
from deltalab.core import delta_rule_chunkwise
from deltalab.params import load_scale
from deltalab.grid import plan, run_variant
from deltalab.store import Store
from deltalab.runs import make_spec
from deltalab.train import evaluate, train_run
from deltalab.variants import VARIANTS, Variant

REPO = Path(__file__).resolve().parents[1]
TASKS = ["in-context-recall", "memorization", "compression"]


@pytest.fixture(autouse=True)
def _data_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("DELTALAB_DATA", str(tmp_path_factory.getbasetemp() / "data"))
    torch.set_num_threads(1)


def test_mad_macro_accuracy_matches_torchmetrics_docstring_example():
    """torchmetrics' example: target [2,1,0,0], prediction [2,1,0,1] → macro 0.8333 (micro would be 0.75)."""

    class Fixed(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.one_hot(torch.tensor([[2, 1, 0, 1]]), 3).float()

    m = evaluate(Fixed(), torch.zeros(1, 4, dtype=torch.long), torch.tensor([[2, 1, 0, 0]]), 3, 8, "fp32",
                 torch.device("cpu"))
    assert m["test_acc"] == pytest.approx(5 / 6)
    assert m["test_token_acc"] == pytest.approx(0.75)


def test_smoke_run_records_everything_and_reruns_skip(tmp_path):
    store = Store(tmp_path)
    records, summary = run_variant("delta_net", load_scale("smoke"), TASKS[:2], store=store, progress=False)
    assert summary.trained == 2 and summary.skipped == 0
    r = records[0]
    for key in ("spec", "label", "metrics", "curve", "wall_time_s", "train_tokens_per_s", "diverged", "environment",
                "precision", "best_epoch", "budget"):
        assert key in r, key
    assert set(r["spec"]) >= {"variant", "task", "setting", "lr", "wd", "seed", "scale"}
    assert set(r["environment"]) >= {"commit", "versions", "device"}
    assert 0.0 <= r["metrics"]["test_acc"] <= 1.0 and r["curve"][0]["epoch"] == 1
    again, summary2 = run_variant("delta_net", load_scale("smoke"), TASKS[:2], store=store, progress=False)
    assert summary2.trained == 0 and summary2.skipped == 2
    assert again == records
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob("*.lock"))


def test_same_seed_same_numbers(tmp_path):
    a, _ = run_variant("delta_net", load_scale("smoke"), ["memorization"], store=Store(tmp_path / "a"), progress=False)
    b, _ = run_variant("delta_net", load_scale("smoke"), ["memorization"], store=Store(tmp_path / "b"), progress=False)
    assert a[0]["metrics"] == b[0]["metrics"]


def test_diverged_run_is_recorded_with_its_accuracy(tmp_path):
    def nan_after_first_step(q, k, v, beta, chunk_size=32):
        o, S = delta_rule_chunkwise(q, k, v, beta, chunk_size)
        nan_after_first_step.calls += 1
        return (o * float("nan") if nan_after_first_step.calls > 2 else o), S

    nan_after_first_step.calls = 0
    variant = Variant("nan_rule", "nan_rule", "delta_net", nan_after_first_step, "o = NaN")
    scale = load_scale("smoke")
    spec = make_spec("nan_rule", "memorization", {}, 1e-3, 0.1, 0, "smoke")
    result = train_run(spec, replace(scale, tasks={"memorization": replace(scale.tasks["memorization"], epochs=3)}),
                       variant)
    assert result.diverged and not result.early_stopped
    assert 0.0 <= result.metrics["test_acc"] <= 1.0


def _grid_cmd(store: Path, tasks=TASKS):
    code = ("import sys, torch; torch.set_num_threads(1);"
            "from deltalab.params import load_scale; from deltalab.grid import plan, execute;"
            "from deltalab.store import Store;"
            f"s = load_scale('smoke'); runs = plan(['delta_net', 'gated_delta_net'], s, {list(tasks)!r});"
            f"print(execute(runs, s, Store({str(store)!r}), workers=1, threads=1, progress=False))")
    return [sys.executable, "-c", code]


def _table(store: Path):
    return accuracies.accuracies_df(accuracies.records_frame(Store(store).records(load_scale("smoke"))))


def test_killed_grid_resumes_to_the_same_table(tmp_path):
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    subprocess.run(_grid_cmd(tmp_path / "straight"), check=True, env=env, capture_output=True)
    proc = subprocess.Popen(_grid_cmd(tmp_path / "resumed"), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and len(list((tmp_path / "resumed").rglob("*.json"))) < 2:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)  # mid-grid, possibly mid-run
    proc.wait()
    n_before = len(list((tmp_path / "resumed").rglob("*.json")))
    assert 2 <= n_before < 6, "the kill should land mid-grid"
    subprocess.run(_grid_cmd(tmp_path / "resumed"), check=True, env=env, capture_output=True)
    assert len(list((tmp_path / "resumed").rglob("*.json"))) == 6
    assert not list((tmp_path / "resumed").rglob("*.tmp"))
    assert _table(tmp_path / "resumed").equals(_table(tmp_path / "straight"))


def test_two_processes_at_once_duplicate_nothing(tmp_path):
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(_grid_cmd(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    files = list(tmp_path.rglob("*.json"))
    assert len(files) == 6
    for f in files:
        json.loads(f.read_text())  # every record whole
    trained = sum(int(o.split(" trained")[0].split()[-1]) for o in outs)
    assert trained == 6, f"each run trained exactly once across both processes: {outs}"


def test_stale_lock_is_taken_over(tmp_path):
    store = Store(tmp_path)
    spec = make_spec("delta_net", "memorization", {}, 1e-3, 0.1, 0, "smoke")
    lock = store.path(spec).with_suffix(".lock")
    lock.parent.mkdir(parents=True)
    import socket

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock.write_text(f"{socket.gethostname()} {dead.pid}\n")
    with store.claim(spec) as owned:
        assert owned
    lock.write_text(f"{socket.gethostname()} {os.getpid()}\n")  # a live owner: not ours to take
    with store.claim(spec) as owned:
        assert not owned


@pytest.mark.parametrize("kwargs, message", [
    (dict(variant="no_such_variant"), "valid"),
    (dict(scale="huge"), "valid: "),
    (dict(tasks=["in-context"]), "valid: in-context-recall"),
])
def test_bad_input_names_what_is_valid_and_writes_nothing(tmp_path, kwargs, message):
    args = dict(variant="delta_net", scale="smoke", tasks=None) | kwargs
    with pytest.raises(ValueError, match=message):
        run_variant(args["variant"], load_scale(args["scale"]), args["tasks"], store=Store(tmp_path), progress=False)
    assert not any(tmp_path.iterdir())


def test_unknown_scale_key_raises(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "params/scales/smoke.yaml").read_text() + "learning_rate: 0.1\n")
    with pytest.raises(ValueError, match="unknown scale key"):
        load_scale(bad)


def test_user_file_that_fails_checks_is_rejected_before_training(tmp_path):
    bad = tmp_path / "peeking.py"
    bad.write_text(
        "import torch\n"
        "def delta_rule_chunkwise(q, k, v, beta, chunk_size=32):\n"
        "    o = v.flip(2)  # reads the future\n"
        "    return o, torch.zeros(q.shape[0], q.shape[1], q.shape[-1], v.shape[-1])\n"
    )
    with pytest.raises(ValueError, match="causal"):
        run_variant(str(bad), load_scale("smoke"), ["memorization"], store=Store(tmp_path / "store"), progress=False)
    assert not (tmp_path / "store").exists()


def test_cli_lists_every_registered_variant():
    out = subprocess.run([sys.executable, "-m", "deltalab", "variants"], capture_output=True, text=True, check=True)
    for name, v in VARIANTS.items():
        assert name in out.stdout and v.label in out.stdout


def test_cli_bad_variant_is_a_clear_error():
    out = subprocess.run([sys.executable, "-m", "deltalab", "run", "--variant", "nope", "--scale", "smoke"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "error:" in out.stderr and "delta_net" in out.stderr
    assert "Traceback" not in out.stderr


def test_plan_counts_runs_per_scale():
    scale = load_scale("smoke")
    runs = plan(["delta_net"], scale)
    n_settings = sum(len(b.settings) for b in scale.tasks.values())
    assert len(runs) == n_settings * len(scale.lrs) * len(scale.wds) * len(scale.seeds)


def test_a_changed_budget_is_a_new_run(tmp_path):
    scale = load_scale("smoke")
    longer = replace(scale, tasks=scale.tasks | {"memorization": replace(scale.tasks["memorization"], epochs=2)})
    (_, a), = plan(["delta_net"], scale, ["memorization"])
    (_, b), = plan(["delta_net"], longer, ["memorization"])
    assert a.budget_id and a.budget_id != b.budget_id
    assert Store(tmp_path).path(a) != Store(tmp_path).path(b)
    run_variant("delta_net", load_scale("smoke"), ["memorization"], store=Store(tmp_path), progress=False)
    assert len(Store(tmp_path).records(load_scale("smoke"))) == 1
    record = next(tmp_path.rglob("*.json"))
    record.rename(record.with_name(record.name.replace(a.budget_id, "000000")))  # as if from an earlier budget
    stale = json.loads(next(tmp_path.rglob("*.json")).read_text())
    stale["spec"]["budget_id"] = "000000"
    next(tmp_path.rglob("*.json")).write_text(json.dumps(stale))
    assert Store(tmp_path).records(load_scale("smoke")) == []


def test_a_task_can_sweep_its_own_learning_rates(tmp_path):
    """``tasks.<task>.lrs`` overrides the scale's ``lrs`` for that task alone: the plan and the runs a seed needs
    follow it, and a bad value names the key."""
    import yaml

    from deltalab import tasks as T
    from deltalab.params import PARAMS_DIR

    data = yaml.safe_load((PARAMS_DIR / "scales" / "smoke.yaml").read_text())
    task = next(iter(data["tasks"]))
    data["tasks"][task]["lrs"] = [0.003]
    path = tmp_path / "smoke.yaml"
    path.write_text(yaml.safe_dump(data))
    scale = load_scale(path)
    assert scale.lrs_for(task) == (0.003,) and all(scale.lrs_for(t) == scale.lrs for t in scale.tasks if t != task)
    lrs = {spec.task: set() for _, spec in plan(["delta_net"], scale)}
    for _, spec in plan(["delta_net"], scale):
        lrs[spec.task].add(spec.lr)
    assert lrs[task] == {0.003} and all(v == set(scale.lrs) for t, v in lrs.items() if t != task)
    assert {lr for _, lr, _ in accuracies.expected_runs(scale)[T.TASKS[task].column]} == {0.003}
    data["tasks"][task]["lrs"] = [-1]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=rf"tasks.{task}.lrs\[0\]"):
        load_scale(path)


# --- issue #42: one plan, one engine call, one check of a user's file --------------------------------------------

def test_ensure_plans_every_row_at_once_and_calls_the_engine_once(tmp_path, monkeypatch):
    """``grid.ensure`` of two rows: one plan, one call of the engine with both rows' runs (so ``workers=2`` can
    train two rows at once), and the Scale object itself handed to the engine; a row's counts come back per row."""
    from deltalab import grid
    from deltalab.grid import engines, planning

    calls, plans = [], []
    monkeypatch.setattr(engines, "plan", lambda *a, **k: plans.append(a) or planning.plan(*a, **k))
    def local(runs, scale, store, *, progress=True, code=None, stack=False, workers=1, threads=None):
        calls.append((runs, scale, {"workers": workers, "threads": threads}))
        return grid.Summary()

    monkeypatch.setitem(engines.ENGINES, "local", local)  # the CLI and ensure reach an engine through ENGINES
    smoke = load_scale("smoke")
    trained = grid.ensure(["delta_net", "gated_delta_net", "delta_net"], smoke, Store(tmp_path),
                          tasks=["memorization"], seeds=[0, 1], workers=2, progress=False)
    assert len(plans) == 1 and len(calls) == 1
    runs, scale, options = calls[0]
    assert scale is smoke and options["workers"] == 2
    assert {spec.variant for _, spec in runs} == {"delta_net", "gated_delta_net"} and len(runs) == 4
    assert list(trained.rows) == ["delta_net", "gated_delta_net"]  # a row named twice is one row
    assert all(s.busy == 2 and s.trained == s.skipped == 0 for s in trained.rows.values())  # nothing was stored


def test_a_user_file_is_checked_once_across_the_runs_of_a_grid(tmp_path, monkeypatch):
    """A user's variant file is loaded and checked once per process (kept by resolved path and content hash), not once
    per run: a grid of N runs in this process checks it once; an edited file is checked again."""
    import deltalab.variants as V
    from deltalab import grid

    checked = []
    real = V.check_rule
    monkeypatch.setattr(V, "check_rule", lambda rule, name: checked.append(name) or real(rule, name=name))
    rule = tmp_path / "same_as_deltanet.py"
    rule.write_text('"""O = DeltaNet\'s rule, called through a user file."""\n'
                    "from deltalab.core import delta_rule_chunkwise as _rule\n\n\n"
                    "def delta_rule_chunkwise(q, k, v, beta, chunk_size=32):\n"
                    "    return _rule(q, k, v, beta, chunk_size)\n")
    store = Store(tmp_path / "store")
    trained = grid.ensure([str(rule)], load_scale("smoke"), store, tasks=["memorization", "compression"],
                          seeds=[0, 1], workers=1, progress=False)
    assert sum(s.trained + s.diverged for s in trained.rows.values()) == len(trained.runs) == 4
    assert len(checked) == 1, checked
    rule.write_text(rule.read_text() + "# edited\n")
    V.get_variant(str(rule))
    assert len(checked) == 2


def test_a_loaded_scale_carries_its_file_and_pickles(tmp_path):
    """What goes to a worker process or a Ray task is the loaded Scale itself: it names the file it was read from
    (a path given relative or absolute) and comes back from pickle equal, file and all."""
    import pickle

    smoke = load_scale("smoke")
    assert smoke.source == (REPO / "params" / "scales" / "smoke.yaml").resolve()
    copy = tmp_path / "smoke.yaml"  # a scale file outside params/scales (its name is its file's)
    copy.write_text(smoke.source.read_text())
    mine = load_scale(copy)
    assert mine.source == copy.resolve() and mine.name == "smoke" and mine == smoke
    back = pickle.loads(pickle.dumps(mine))
    assert back == mine and back.source == mine.source
