"""The stacked trainer (deltalab.stack): runs trained together equal the same runs trained alone (``train_run``),
member by member: curves, selected metrics, best epoch, early stop and divergence. smoke scale, fp32, CPU."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from deltalab.params import load_scale
from deltalab.stack import adamw_step, train_stack
from deltalab.runs import budget_id, make_spec
from deltalab.train import train_run
from deltalab.variants import get_variant

TOL = 1e-5  # absolute, and relative for the perplexities (≈ 10²–10³ at smoke)


def _scale(task: str, **changes):
    """smoke with ``task`` alone and its budget (or the scale) changed."""
    sc = load_scale("smoke")
    budget = dataclasses.replace(sc.tasks[task], **{k: v for k, v in changes.items() if k == "epochs"})
    return dataclasses.replace(sc, tasks={task: budget}, **{k: v for k, v in changes.items() if k != "epochs"})


def _specs(sc, variant: str, task: str, points: list[tuple[float, float, int]]):
    setting = sc.tasks[task].settings[0]
    return [make_spec(variant, task, setting, lr, wd, seed, sc.name, budget_id(sc, task)) for lr, wd, seed in points]


def _assert_same(alone, stacked) -> float:
    """The results agree as records do (curves, metrics, epochs, flags); returns the largest difference."""
    worst = 0.0
    for a, b in zip(alone, stacked):
        assert a.spec == b.spec
        assert (a.best_epoch, a.epochs_run, a.diverged, a.early_stopped) == \
               (b.best_epoch, b.epochs_run, b.diverged, b.early_stopped), a.spec
        assert [c["epoch"] for c in a.curve] == [c["epoch"] for c in b.curve]
        for ca, cb in zip(a.curve + [a.metrics], b.curve + [b.metrics]):
            assert ca.keys() == cb.keys()
            for k in ca:
                if math.isnan(ca[k]):  # a diverged model's perplexity: NaN alone, NaN in the stack
                    assert math.isnan(cb[k]), (a.spec, k, cb[k])
                    continue
                assert math.isclose(ca[k], cb[k], rel_tol=TOL, abs_tol=TOL), (a.spec, k, ca[k], cb[k])
                worst = max(worst, abs(ca[k] - cb[k]) / max(1.0, abs(ca[k])))
        assert (a.num_params, a.precision, a.backend, a.budget, a.label) == \
               (b.num_params, b.precision, b.backend, b.budget, b.label)
    return worst


@pytest.mark.parametrize("variant,task", [("delta_net", "in-context-recall"), ("gated_delta_net", "compression"),
                                          ("gated_delta_net", "memorization"), ("delta_net", "selective-copying")])
def test_a_stack_equals_its_runs_trained_alone(variant, task):
    sc = _scale(task, epochs=2)
    specs = _specs(sc, variant, task, [(1e-3, 0.0, 0), (1e-3, 0.1, 1), (5e-4, 0.1, 0), (3e-3, 0.0, 2)])
    v = get_variant(variant)
    _assert_same([train_run(s, sc, v) for s in specs], train_stack(specs, sc, v))


def test_adamw_step_is_torch_adamw_per_run():
    """Two runs with their own lr and wd, three steps: each run's parameters are what torch.optim.AdamW gives alone."""
    g = torch.Generator().manual_seed(0)
    start = torch.randn(2, 5, 3, generator=g)
    grads = [torch.randn(2, 5, 3, generator=g) for _ in range(3)]
    lrs, wds = [1e-3, 3e-2], [0.1, 0.0]
    alone = []
    for r in range(2):
        p = torch.nn.Parameter(start[r].clone())
        opt = torch.optim.AdamW([p], lr=lrs[r], weight_decay=wds[r])
        for gr in grads:
            p.grad = gr[r].clone()
            opt.step()
        alone.append(p.detach())
    p, m, v = start.clone(), torch.zeros_like(start), torch.zeros_like(start)
    decay = torch.tensor([1 - lr * wd for lr, wd in zip(lrs, wds)])
    for t, gr in enumerate(grads, 1):
        adamw_step([p], [gr], [m], [v], (1 - 0.999 ** t) ** 0.5, decay,
                   (torch.tensor([-lr for lr in lrs], dtype=torch.float64) / (1 - 0.9 ** t)).float())
    assert torch.equal(p, torch.stack(alone))


def test_an_early_stopped_member_stops_while_the_others_go_on():
    """Early stopping at a threshold between two runs' first-epoch accuracies: the better run stops at epoch 1
    (its curve ends there), the other trains on (up to its 3 epochs); both equal their lone runs."""
    task, v = "in-context-recall", get_variant("delta_net")
    points = [(1e-3, 0.1, 0), (3e-3, 0.1, 0)]
    never = _scale(task, epochs=1, early_stop=1.01)
    first = [r.curve[0]["test_acc"] for r in (train_run(s, never, v) for s in _specs(never, "delta_net", task, points))]
    assert first[0] != first[1], "the two runs need different first-epoch accuracies for this test"
    sc = _scale(task, epochs=3, early_stop=(first[0] + first[1]) / 2)
    specs = _specs(sc, "delta_net", task, points)
    alone = [train_run(s, sc, v) for s in specs]
    seen = []
    stacked = train_stack(specs, sc, v, on_result=lambda spec, result: seen.append((spec, result.epochs_run)))
    _assert_same(alone, stacked)
    stopper = max(range(2), key=lambda i: first[i])
    assert stacked[stopper].early_stopped and stacked[stopper].epochs_run == 1
    other = stacked[1 - stopper]
    assert other.epochs_run > 1 and len(other.curve) == other.epochs_run
    assert seen == [(specs[stopper], 1), (specs[1 - stopper], other.epochs_run)]  # handed over as each finished


def test_a_diverged_member_is_flagged_alone_and_does_not_touch_the_others():
    """lr 1e4 diverges (a non-finite loss in epoch 2); its record says so as the lone run's does, and the other
    runs of the stack are the runs of a stack without it."""
    task, v = "in-context-recall", get_variant("delta_net")
    sc = _scale(task, epochs=3)
    specs = _specs(sc, "delta_net", task, [(1e-3, 0.1, 0), (1e4, 0.1, 0), (5e-4, 0.0, 1)])
    alone = [train_run(s, sc, v) for s in specs]
    assert [r.diverged for r in alone] == [False, True, False]
    stacked = train_stack(specs, sc, v)
    _assert_same(alone, stacked)
    without = train_stack([specs[0], specs[2]], sc, v)
    for a, b in zip(without, [stacked[0], stacked[2]]):
        assert a.curve == b.curve and a.metrics == b.metrics


def test_a_stack_refuses_runs_of_different_cells():
    sc = load_scale("smoke")
    specs = _specs(sc, "delta_net", "in-context-recall", [(1e-3, 0.1, 0)]) + \
        _specs(sc, "gated_delta_net", "in-context-recall", [(1e-3, 0.1, 0)])
    with pytest.raises(ValueError, match="one variant × task × setting"):
        train_stack(specs, sc, get_variant("delta_net"))


@pytest.mark.slow  # three smoke grids through the command line
def test_grid_stack_stores_records_a_plain_grid_sees_as_stored(tmp_path, monkeypatch, capsys):
    """``grid --stack`` trains only the members not stored yet (one is, from a plain grid), stores each as its own
    record at the lone run's path; a plain grid then finds every run stored, and the records equal a plain grid's."""
    from deltalab.__main__ import main
    from deltalab.grid import plan
    from deltalab.store import Store

    args = ["grid", "--scale", "smoke", "--variants", "delta_net", "--tasks", "in-context-recall,memorization",
            "--seeds", "0,1,2", "--workers", "1"]
    monkeypatch.setenv("DELTALAB_RESULTS", str(tmp_path / "stacked"))
    assert main(args[:-4] + ["--seeds", "1", "--workers", "1"]) == 0  # seed 1 alone, first
    runs = plan(["delta_net"], load_scale("smoke"), ["in-context-recall", "memorization"], [0, 1, 2])
    store = Store()
    before = {spec: store.path(spec).read_bytes() for _, spec in runs if spec.seed == 1}
    capsys.readouterr()
    assert main(args + ["--stack"]) == 0
    assert "4 trained (0 diverged), 2 already stored" in capsys.readouterr().err
    for _, spec in runs:
        record = store.get(spec)
        assert record is not None and store.path(spec).exists()
        if spec.seed == 1:
            assert store.path(spec).read_bytes() == before[spec]  # the stored member was not trained again
        else:
            assert record["environment"]["stack"] == 2
    assert main(args) == 0
    assert "0 trained (0 diverged), 6 already stored" in capsys.readouterr().err

    monkeypatch.setenv("DELTALAB_RESULTS", str(tmp_path / "alone"))
    assert main(args) == 0
    alone = Store()
    for _, spec in runs:
        a, b = alone.get(spec), store.get(spec)
        for ca, cb in zip(a["curve"] + [a["metrics"]], b["curve"] + [b["metrics"]]):
            assert all(math.isclose(ca[k], cb[k], rel_tol=TOL, abs_tol=TOL) for k in ca)


@pytest.mark.parametrize("capture_fails", [False, True])
def test_the_graphed_steps_buffers_replay_the_eager_steps(capture_fails):
    """``_GraphedStep``'s logic (warm-up, static buffers, the step's numbers copied in, ``alive`` carried out, a short
    last batch eager) with its CUDA capture replaced by a plain call: the same weights and flags as ``_step``, step
    by step, a diverging member (lr 1e4) included. A capture that fails warns and leaves the stack eager. The
    capture itself needs a GPU (scripts/gpu_check.sh)."""
    import copy

    from deltalab import tasks as T
    from deltalab.model import build_model
    from deltalab.stack import StackedModel, _GraphedStep, _step
    from deltalab.train import mixer_factory

    class Replayed(_GraphedStep):
        def _record(self, body):
            if capture_fails:
                raise RuntimeError("operation not permitted when stream is capturing")
            return lambda: self.losses.copy_(body())

    task, v = "in-context-recall", get_variant("delta_net")
    setting = load_scale("smoke").tasks[task].settings[0]
    x, y = (torch.from_numpy(a) for a in T.generate(task, "train", 40, T.SEED, **T.generator_kwargs(task, setting)))
    vocab = T.vocab_size(task, setting)
    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        models.append(build_model("lm", vocab, mixer_factory(v)))
    stacks = [StackedModel(copy.deepcopy(models)) for _ in range(2)]
    states = [{k: (torch.zeros_like(p), torch.zeros_like(p)) for k, p in s.params.items()} for s in stacks]
    alives = [torch.ones(2, dtype=torch.bool) for _ in range(2)]
    graphed = Replayed(stacks[1], states[1], "fp32", vocab, torch.device("cpu"))
    lrs = torch.tensor([-1e-3, -1e4], dtype=torch.float64)
    decay = torch.tensor([1 - 1e-3 * 0.1, 1 - 1e4 * 0.1])
    for t, start in enumerate([0, 16, 32, 0, 16, 32, 0, 16], 1):  # 16, 16, 8 examples: a short last batch
        xb = torch.stack([x[start:start + 16], x[start:start + 16].flip(0)])
        yb = torch.stack([y[start:start + 16], y[start:start + 16].flip(0)])
        neg, bc2 = (lrs / (1 - 0.9 ** t)).float(), (1 - 0.999 ** t) ** 0.5
        eager = _step(stacks[0], states[0], xb, yb, "fp32", vocab, bc2, decay, neg, alives[0])
        capturing = graphed.seen == _GraphedStep.WARMUP and graphed.replay is None and not graphed.failed
        if graphed.fits(xb) and capture_fails and capturing:
            with pytest.warns(RuntimeWarning, match="could not be captured"):
                replayed = graphed(xb, yb, bc2, decay, neg, alives[1])
        elif graphed.fits(xb):
            replayed = graphed(xb, yb, bc2, decay, neg, alives[1])
        else:
            replayed = _step(stacks[1], states[1], xb, yb, "fp32", vocab, bc2, decay, neg, alives[1])
        assert torch.equal(alives[0], alives[1]) and torch.allclose(eager, replayed, equal_nan=True)
        for key in stacks[0].params:
            assert torch.equal(stacks[0].params[key][0], stacks[1].params[key][0]), (t, key)
    assert (graphed.replay is None) == graphed.failed == capture_fails and alives[0].tolist() == [True, False]
