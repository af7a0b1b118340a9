"""The fast training path (train_run / evaluate ``path="fast"``) against its reference twin (issue 15)."""
import warnings

import pytest
import torch
import torch.nn.functional as F
from torchmetrics.functional.classification import multiclass_accuracy

from deltalab.layers import DeltaNet, GatedDeltaNet
from deltalab.model import AutoEncoder, LanguageModel
from deltalab.params import load_scale
from deltalab.runs import budget_id, make_spec
from deltalab.train import IGNORE, evaluate, macro_accuracy, train_run
from deltalab.variants import get_variant

warnings.filterwarnings("ignore", message="Triton is not supported")


@pytest.fixture(autouse=True)
def _data_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("DELTALAB_DATA", str(tmp_path_factory.getbasetemp() / "data"))
    torch.set_num_threads(1)


def _scored_mask(shape, frac, seed=0):
    g = torch.Generator().manual_seed(seed)
    keep = torch.rand(shape, generator=g) < frac
    keep[0, -1] = True  # at least one
    return keep


@pytest.mark.parametrize("model_cls,T", [(LanguageModel, 70), (LanguageModel, 64), (AutoEncoder, 40)])
@pytest.mark.parametrize("mixer", [DeltaNet, GatedDeltaNet])
def test_scored_logits_and_gradients_equal_the_full_pass(model_cls, T, mixer):
    """``model(x, scored)`` is ``model(x)[scored]``, and the loss over the scored positions has the same
    gradients either way (float64, but the norms compute in fp32: fp32 rounding of sums in another order)."""
    torch.manual_seed(0)
    model = model_cls(16, mixer).double()
    x = torch.randint(0, 16, (3, T))
    y = torch.randint(0, 16, (3, T))
    keep = _scored_mask(x.shape, 0.3)

    def run(scored):
        model.zero_grad()
        logits = model(x, keep) if scored else model(x)[keep]
        F.cross_entropy(logits, y[keep]).backward()
        return [logits.detach()] + [p.grad.clone() for p in model.parameters()]

    fast, ref = run(True), run(False)
    assert fast[0].shape == (int(keep.sum()), 16)
    for a, b in zip(fast, ref):
        assert (a - b).abs().max() <= 1e-6 * (1 + b.abs().max())


def test_scored_mask_must_match_the_tokens():
    model = LanguageModel(16, DeltaNet)
    x = torch.randint(0, 16, (2, 32))
    with pytest.raises(ValueError, match="scored must be a bool mask"):
        model(x, torch.ones(2, 31, dtype=torch.bool))
    with pytest.raises(ValueError, match="scored must be a bool mask"):
        model(x, torch.ones(2, 32, dtype=torch.long))


@pytest.mark.parametrize("V", [3, 16, 2048])
def test_macro_accuracy_equals_torchmetrics(V):
    g = torch.Generator().manual_seed(V)
    for trial in range(20):
        n = int(torch.randint(1, 300, (1,), generator=g))
        target = torch.randint(0, min(V, 1 + trial * 7), (n,), generator=g)  # few classes present at first
        pred = torch.where(torch.rand(n, generator=g) < 0.5, target, torch.randint(0, V, (n,), generator=g))
        ignored = torch.rand(n, generator=g) < 0.3
        full_t = torch.where(ignored, torch.full_like(target, IGNORE), target)
        want = multiclass_accuracy(pred, full_t, num_classes=V, average="macro", ignore_index=IGNORE)
        keep = full_t != IGNORE
        if keep.any():
            assert macro_accuracy(pred[keep], full_t[keep], V) == float(want)


class _Fixed(torch.nn.Module):
    """A model without the ``scored`` argument: evaluate falls back to indexing its full logits."""

    def forward(self, x):
        return F.one_hot(torch.tensor([[2, 1, 0, 1]]), 3).float().expand(len(x), 4, 3)


def test_fast_evaluate_of_a_plain_model_is_the_reference():
    x, y = torch.zeros(5, 4, dtype=torch.long), torch.tensor([[2, 1, 0, 0]] * 4 + [[2, IGNORE, IGNORE, 0]])
    ref = evaluate(_Fixed(), x, y, 3, 8, "fp32", torch.device("cpu"), path="reference")
    fast = evaluate(_Fixed(), x, y, 3, 8, "fp32", torch.device("cpu"), path="fast")
    assert fast == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize("batch_size", [256, 100, 16, 1])
def test_fast_evaluate_equals_reference(batch_size):
    """Same metric batches (128 examples within forward batches of ``batch_size``), same numbers to rounding."""
    torch.manual_seed(0)
    model = LanguageModel(40, DeltaNet)
    x = torch.randint(0, 40, (300, 33))
    y = torch.where(_scored_mask(x.shape, 0.4, seed=1), torch.randint(0, 40, x.shape), torch.full_like(x, IGNORE))
    y[5] = IGNORE  # an example with nothing scored
    ref = evaluate(model, x, y, 40, batch_size, "fp32", torch.device("cpu"), path="reference")
    fast = evaluate(model, x, y, 40, batch_size, "fp32", torch.device("cpu"), path="fast")
    assert fast == pytest.approx(ref, rel=1e-5)


def test_unknown_path_is_a_clear_error():
    scale = load_scale("smoke")
    spec = make_spec("delta_net", "memorization", {}, 1e-3, 0.1, 0, "smoke", budget_id(scale, "memorization"))
    with pytest.raises(ValueError, match=r"unknown path 'stacked' \(argument or \$DELTALAB_TRAIN_PATH\); valid: fast, reference"):
        train_run(spec, scale, get_variant("delta_net"), path="stacked")


@pytest.mark.parametrize("task", ["memorization", "selective-copying", "compression", "in-context-recall"])
def test_fast_run_equals_reference_run(task):
    """A whole smoke run (2 optimizer steps, one evaluation) through both paths: the same curve to float
    rounding. memorization and selective copying train through the scored rows; compression (every position
    scored) and in-context recall (every training position scored) do not. Tolerance: AdamW divides each
    gradient by its own magnitude, so an entry that is rounding noise (a sum that cancels to ~1e-9) moves its
    weight by a sizeable part of the learning rate either way; after two steps the test loss moves by up to
    ~2e-5 relative between the paths. A wrong row or a missing term moves it by 1e-2 or more."""
    scale = load_scale("smoke")
    spec = make_spec("delta_net", task, scale.tasks[task].settings[0], 1e-3, 0.1, 0, "smoke", budget_id(scale, task))
    ref = train_run(spec, scale, get_variant("delta_net"), path="reference")
    fast = train_run(spec, scale, get_variant("delta_net"), path="fast")
    assert fast.environment["train_path"] == "fast" and ref.environment["train_path"] == "reference"
    assert [c["epoch"] for c in fast.curve] == [c["epoch"] for c in ref.curve]
    for a, b in zip(fast.curve, ref.curve):
        assert a == pytest.approx(b, rel=2e-4)
    assert (fast.best_epoch, fast.epochs_run, fast.diverged) == (ref.best_epoch, ref.epochs_run, ref.diverged)


def test_grid_bench_reports_both_paths(monkeypatch, capsys, tmp_path):
    """``bench --grid`` at toy budgets: both paths train every run into their own store; the last line is the
    JSON report with the grid figures, and the two paths' accuracies agree."""
    import json

    from deltalab.perf import gridbench

    monkeypatch.setattr(gridbench, "BUDGETS", {t: (16, 1) for t in gridbench.BUDGETS})
    monkeypatch.setattr(gridbench, "NUM_TEST", 8)
    monkeypatch.setattr(gridbench, "SEEDS", (0,))
    assert gridbench.main(["--variants", "delta_net", "--workers", "1", "--json", "--interleaved", "--keep",
                           str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    grid = report["grid"]
    from deltalab.params import load_scale

    n = sum(len(b.settings) for b in load_scale("cpu").tasks.values())  # the mini-grid: one run per cpu setting
    assert grid["old"]["runs"] == grid["new"]["runs"] == n
    assert grid["ratio"] == pytest.approx(grid["new"]["runs_per_hour"] / grid["old"]["runs_per_hour"])
    assert grid["cpu_ratio"] == pytest.approx(grid["old"]["cpu_s_per_run"] / grid["new"]["cpu_s_per_run"])
    assert report["agreement"]["max_abs_accuracy_difference"] < 0.05
    assert report["interleaved"]["runs"] == n and report["interleaved"]["ratio_cpu"] > 0
    records = sorted(tmp_path.rglob("*.json"))
    assert len(records) == 2 * n
    assert {json.loads(p.read_text())["environment"]["train_path"] for p in records} == {"fast", "reference"}


def test_gemm_bound_counts_the_linears_gemms_as_torch_does():
    """``bench --bound``: the three GEMMs per Linear it times are the FLOPs autograd runs for that Linear."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from deltalab.perf.gemmbound import gemm_flops, linear_shapes
    from deltalab.perf.trainstep import build

    model, _, _ = build("delta_net", precision="fp32")
    shapes = linear_shapes(model)
    assert len(shapes) == 11 and (128, 384) in shapes  # 2 blocks × (q/k/v, β, output, W12, W3) + the head
    for i, o in {(128, 384), (352, 128), (128, 2)}:
        lin = torch.nn.Linear(i, o, bias=False)
        xi = torch.randn(3, 5, i, requires_grad=True)
        with FlopCounterMode(display=False) as fc:
            lin(xi).sum().backward()
        assert gemm_flops([(i, o)], rows=15) == fc.get_total_flops()


def test_gemm_bound_reports_a_ceiling_and_refuses_bad_shapes(capsys):
    import json

    from deltalab.perf.gemmbound import main

    assert main(["--shapes", "2x32", "--steps", "1", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["bound"]
    assert (row["batch"], row["length"], row["threads"]) == (2, 32, 1)
    assert row["ceiling_over_reference"] == pytest.approx(row["reference_step_s"] / row["gemm_s"])
    assert row["gemm_gflops"] > 0 and row["ceiling_over_delta_net"] > 0
    with pytest.raises(SystemExit):
        main(["--shapes", "32by128"])
    assert "--shapes takes batch×length pairs" in capsys.readouterr().err
