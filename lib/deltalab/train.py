"""MAD's training protocol (docs/mad.md §4–5), one run at a time.

    AdamW(lr, wd) on every parameter · cosine schedule to 1e-6 over the epochs, stepped per epoch, no warm-up
    cross-entropy over the scored positions (-100 ignored) · bf16 autocast where the hardware has it
    evaluate on the test split every `eval_every` epochs · stop early once test accuracy ≥ 0.999
    report the metrics of the evaluated epoch with the lowest test perplexity (MAD's checkpoint rule)

Accuracy is MAD's: torchmetrics' macro multiclass accuracy on the scored positions, computed per batch of
128 test examples and averaged over batches weighted by their size (Lightning's epoch mean). Plain
per-token (micro) accuracy is reported beside it.
"""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics.functional.classification import multiclass_accuracy

from . import tasks as T
from .layers import DeltaNet, GatedDeltaNet
from .model import build_model
from .params import MAD_METRIC_BATCH, Scale
from .runs import RunSpec
from .runtime import autocast, default_device, environment, resolve_precision

IGNORE = -100


def fast_rule(variant, device: torch.device):
    """The rule a run uses: the variant's Triton twin (``Variant.triton``, in ``deltalab.kernels``) on CUDA when it
    has one, else its PyTorch function. Returns ``(rule, backend)``; for gated_delta_net the rule is the gated
    function."""
    if device.type == "cuda" and variant.triton is not None:
        from . import kernels

        if kernels.available():
            return kernels.kernel(variant.triton), "triton"
    return variant.rule, "pytorch"


def mixer_factory(variant, device: torch.device | None = None) -> Callable[[], torch.nn.Module]:
    """The token mixer of a registered variant (``deltalab.variants.Variant``), with its rule for ``device``
    (``fast_rule``)."""
    return mixer_of(variant, fast_rule(variant, device or torch.device("cpu"))[0])


def mixer_of(variant, rule) -> Callable[[], torch.nn.Module]:
    """The token mixer of ``variant`` running ``rule`` (as ``fast_rule`` chose it)."""
    if variant.mixer == "gated_delta_net":
        return (lambda: GatedDeltaNet(rule=rule)) if rule is not None else (lambda: GatedDeltaNet())
    if variant.mixer == "delta_net":
        return lambda: DeltaNet(rule=rule)
    raise ValueError(f"unknown mixer {variant.mixer!r}; valid: 'delta_net', 'gated_delta_net'")


def run_data(spec: RunSpec, scale: Scale) -> dict[str, np.ndarray]:
    """Train and test arrays of a run. The data seed is MAD's 12345 plus the run's seed, so repeated seeds
    see fresh data as well as a fresh initialisation."""
    budget = scale.tasks[spec.task]
    setting = spec.setting_dict
    n_train = setting.get("num_train_examples", budget.num_train_examples)
    n_test = scale.num_test_examples
    data_seed = T.SEED + spec.seed
    x_tr, y_tr = T.load(spec.task, "train", n_train, data_seed, **T.generator_kwargs(spec.task, setting))
    x_te, y_te = T.load(spec.task, "test", n_test, data_seed, **T.generator_kwargs(spec.task, setting))
    return {"x_train": x_tr, "y_train": y_tr, "x_test": x_te, "y_test": y_te}


TRAIN_PATHS = ("fast", "reference")  # see train_run
EVAL_FORWARD_TOKENS = 4096  # the fast path's forward chunk in evaluation (measured fastest on a 2-core CPU)


def _metric_batches(n: int, batch_size: int):
    """``(start, end)`` of the batches MAD's metrics are averaged over: 128 examples each, within forward batches
    of ``batch_size`` (as the reference evaluation cuts them)."""
    for start in range(0, n, batch_size):
        end = min(start + batch_size, n)
        for m in range(start, end, MAD_METRIC_BATCH):
            yield m, min(m + MAD_METRIC_BATCH, end)


def macro_accuracy(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> float:
    """torchmetrics' ``multiclass_accuracy(average="macro")`` of scored positions, from per-class counts (three
    length-V bincounts instead of torchmetrics' V²-bin confusion matrix: 25 ms → 0.2 ms per 128 examples at
    V = 2,048). The counts are integers and the averaging is torchmetrics' own ``_accuracy_reduce``, so the
    value is the same; tests/test_fast_paths.py checks it against ``multiclass_accuracy``."""
    from torchmetrics.functional.classification.accuracy import _accuracy_reduce

    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    tp = torch.bincount(target[pred == target], minlength=num_classes)
    fn = torch.bincount(target, minlength=num_classes) - tp
    fp = torch.bincount(pred, minlength=num_classes) - tp
    tn = target.numel() - tp - fp - fn
    return float(_accuracy_reduce(tp, fp, tn, fn, average="macro", multidim_average="global"))


def _scored_logits(model, xb: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Logits of the scored positions, ``[n, V]``: only those rows are computed when the model can (and
    something is unscored)."""
    if bool(keep.all()):
        logits = model(xb)
        return logits.reshape(-1, logits.shape[-1])
    if getattr(model, "takes_scored", False):
        return model(xb, keep)
    return model(xb)[keep]


@torch.inference_mode()
def evaluate(model, x: torch.Tensor, y: torch.Tensor, vocab: int, batch_size: int, precision: str,
             device: torch.device, path: str = "reference") -> dict[str, float]:
    """MAD's test metrics: per-128-example-batch macro accuracy and perplexity, averaged weighted by batch
    size; plus micro token accuracy and the token-mean loss.

    ``path="reference"`` (the default): forward passes of ``batch_size`` examples, full logits, torchmetrics'
    ``multiclass_accuracy`` with ``ignore_index``. ``path="fast"``: the same metric batches, each
    forwarded in chunks of at most ``EVAL_FORWARD_TOKENS`` tokens (a 256 × 128-token forward runs 1.3-1.5×
    slower per token than 32 × 128 here: its activations overflow the cache), logits computed at the scored
    positions only (``LanguageModel.forward(x, scored)``), and ``macro_accuracy``. The two agree to float
    rounding (tests/test_fast_paths.py)."""
    if path not in TRAIN_PATHS:
        raise ValueError(f"unknown path {path!r}; valid: {', '.join(TRAIN_PATHS)}")
    model.eval()
    acc_sum = ppl_sum = loss_sum = 0.0
    n_seen = correct = scored = 0
    if path == "reference":  # the evaluation the seed results and the first cpu grids ran
        for start in range(0, len(x), batch_size):
            xb, yb = x[start:start + batch_size].to(device), y[start:start + batch_size].to(device)
            with autocast(precision, device):
                logits = model(xb)
            logits = logits.float()
            for m in range(0, len(xb), MAD_METRIC_BATCH):
                lg, tg = logits[m:m + MAD_METRIC_BATCH], yb[m:m + MAD_METRIC_BATCH]
                nb = len(tg)
                ce = F.cross_entropy(lg.reshape(-1, vocab), tg.reshape(-1), ignore_index=IGNORE, reduction="sum")
                k = int((tg != IGNORE).sum())
                pred = lg.argmax(-1)
                acc = multiclass_accuracy(pred.reshape(-1), tg.reshape(-1), num_classes=vocab, average="macro",
                                          ignore_index=IGNORE)
                acc_sum += float(acc) * nb
                ppl_sum += math.exp(min(float(ce) / max(k, 1), 80.0)) * nb  # exp capped: a diverged model has huge CE
                loss_sum += float(ce)
                correct += int(((pred == tg) & (tg != IGNORE)).sum())
                scored += k
                n_seen += nb
    else:
        rows = max(1, min(batch_size, EVAL_FORWARD_TOKENS // max(x.shape[1], 1)))
        for m0, m1 in _metric_batches(len(x), batch_size):
            xm, ym = x[m0:m1].to(device), y[m0:m1].to(device)
            keep = ym != IGNORE
            parts = []
            for s in range(0, len(xm), rows):
                with autocast(precision, device):
                    parts.append(_scored_logits(model, xm[s:s + rows], keep[s:s + rows]).float())
            lg, tg = torch.cat(parts), ym[keep]
            nb, k = len(ym), len(tg)
            ce = F.cross_entropy(lg, tg, reduction="sum")
            pred = lg.argmax(-1)
            acc_sum += (macro_accuracy(pred, tg, vocab) if k else 0.0) * nb
            ppl_sum += math.exp(min(float(ce) / max(k, 1), 80.0)) * nb
            loss_sum += float(ce)
            correct += int((pred == tg).sum())
            scored += k
            n_seen += nb
    model.train()
    return {"test_acc": acc_sum / n_seen, "test_ppl": ppl_sum / n_seen, "test_loss": loss_sum / max(scored, 1),
            "test_token_acc": correct / max(scored, 1)}


@dataclass
class Evaluations:
    """A run's evaluations as MAD keeps them: the learning curve, the best epoch by test perplexity (a diverged
    model's never counts) and whether the early-stop accuracy was reached. ``train_run`` and the stacked trainer
    (``deltalab.stack``) keep one per run."""

    curve: list[dict] = field(default_factory=list)
    best: dict | None = None
    best_epoch: int = -1
    early_stopped: bool = False

    def add(self, epoch: int, metrics: dict, diverged: bool, early_stop: float) -> None:
        self.curve.append({"epoch": epoch, **metrics})
        if not diverged and (self.best is None or metrics["test_ppl"] < self.best["test_ppl"]):
            self.best, self.best_epoch = metrics, epoch
        if metrics["test_acc"] >= early_stop and not diverged:
            self.early_stopped = True

    def chosen(self) -> tuple[dict, int]:
        """The reported metrics (with or without ``epoch``) and their epoch: the best, or, for a run that diverged
        before any evaluation of a finite model, what the model does now."""
        if self.best is None:
            return self.curve[-1], self.curve[-1]["epoch"]
        return self.best, self.best_epoch


@dataclass
class RunResult:
    spec: dict
    label: str
    metrics: dict  # at the selected (lowest test perplexity) epoch
    best_epoch: int
    epochs_run: int
    curve: list[dict]  # per evaluated epoch
    diverged: bool
    early_stopped: bool
    wall_time_s: float
    train_time_s: float
    eval_time_s: float
    train_tokens_per_s: float
    num_params: int
    precision: str
    backend: str  # "pytorch" or "triton": which implementation of the rule ran
    budget: dict
    environment: dict = field(default_factory=dict)

    def to_record(self) -> dict:
        return asdict(self)


def train_run(spec: RunSpec, scale: Scale, variant, *, device: torch.device | None = None,
              progress: bool = False, path: str | None = None) -> RunResult:
    """Train one run under ``scale``'s protocol and return its result (nothing is written here).

    ``path="reference"`` (the default) is the loop the study's grids run: full logits at every position, the loss
    over the scored ones (``ignore_index``), ``torch.optim.AdamW``'s per-parameter loop, ``evaluate(path=
    "reference")``. ``path="fast"`` computes the same things with less work
    (docs/performance.md): the logits, the last SwiGLU and the final norm only at scored positions (half of
    memorization's positions, 1/16 of selective copying's) and ``evaluate``'s fast path.
    Each differs from its twin by float rounding only (the same sums over the same terms, in another order),
    so both keep the same budget fingerprint; tests/test_train_paths.py trains both and compares their curves.
    ``path=None`` reads ``$DELTALAB_TRAIN_PATH`` (how ``python -m deltalab bench --grid`` runs the grid's
    worker processes on either path), else "reference". The fast path is not the default: on this 2-core machine
    its grid throughput measured 0.95-1.03× the reference (docs/performance.md), and a grid whose runs come from
    both paths would break the bit-for-bit comparison that finds where a change does not act (a state-only row
    on a one-chunk task equals DeltaNet only when both ran the same path).
    """
    path = path or os.environ.get("DELTALAB_TRAIN_PATH") or "reference"
    if path not in TRAIN_PATHS:
        raise ValueError(f"unknown path {path!r} (argument or $DELTALAB_TRAIN_PATH); valid: {', '.join(TRAIN_PATHS)}")
    fast = path == "fast"
    t_start = time.perf_counter()
    device = device or default_device()
    precision = resolve_precision(scale.precision, device)
    budget = scale.tasks[spec.task]
    data = run_data(spec, scale)
    vocab = T.vocab_size(spec.task, spec.setting_dict)
    x_tr, y_tr = torch.from_numpy(data["x_train"]), torch.from_numpy(data["y_train"])
    x_te, y_te = torch.from_numpy(data["x_test"]), torch.from_numpy(data["y_test"])

    rule, backend = fast_rule(variant, device)
    torch.manual_seed(spec.seed)
    model = build_model(T.TASKS[spec.task].backbone, vocab, mixer_of(variant, rule),
                        max_length=max(x_tr.shape[1], x_te.shape[1])).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.wd)  # MAD: decay on every parameter
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=budget.epochs, eta_min=1e-6)
    order = torch.Generator().manual_seed(spec.seed)

    evals = Evaluations()
    diverged = False
    train_time = eval_time = 0.0
    train_tokens = 0
    epoch = 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=budget.epochs, desc=f"{spec.variant} {spec.task}", file=sys.stderr, leave=False)
    for epoch in range(1, budget.epochs + 1):
        t0 = time.perf_counter()
        perm = torch.randperm(len(x_tr), generator=order)
        loss_sum, n_batches = 0.0, 0
        for start in range(0, len(perm), budget.batch_size):
            idx = perm[start:start + budget.batch_size]
            xb, yb = x_tr[idx].to(device), y_tr[idx].to(device)
            if fast:  # the mean over the scored positions, their logits alone computed
                keep = yb != IGNORE
                with autocast(precision, device):
                    logits = _scored_logits(model, xb, keep)
                loss = F.cross_entropy(logits.float(), yb[keep])
            else:
                with autocast(precision, device):
                    logits = model(xb)
                loss = F.cross_entropy(logits.float().reshape(-1, vocab), yb.reshape(-1), ignore_index=IGNORE)
            if not torch.isfinite(loss):
                diverged = True
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item()
            n_batches += 1
            train_tokens += xb.numel()
        sched.step()
        train_time += time.perf_counter() - t0
        last = epoch == budget.epochs
        if diverged or last or epoch % scale.eval_every == 0:
            t0 = time.perf_counter()
            m = evaluate(model, x_te, y_te, vocab, scale.eval_batch_size, precision, device, path=path)
            eval_time += time.perf_counter() - t0
            m["train_loss"] = loss_sum / max(n_batches, 1)
            evals.add(epoch, m, diverged, scale.early_stop)
        if bar is not None:
            bar.update(1)
            if evals.curve:
                bar.set_postfix(acc=f"{evals.curve[-1]['test_acc']:.3f}")
        if diverged or evals.early_stopped:
            break
    if bar is not None:
        bar.close()
    best, best_epoch = evals.chosen()
    return RunResult(
        spec=asdict(spec) | {"setting": spec.setting_dict},
        label=variant.label,
        metrics={k: v for k, v in best.items() if k != "epoch"},
        best_epoch=best_epoch,
        epochs_run=epoch,
        curve=evals.curve,
        diverged=diverged,
        early_stopped=evals.early_stopped,
        wall_time_s=time.perf_counter() - t_start,
        train_time_s=train_time,
        eval_time_s=eval_time,
        train_tokens_per_s=train_tokens / train_time if train_time > 0 else float("nan"),
        num_params=sum(p.numel() for p in model.parameters()),
        precision=precision,
        backend=backend,
        budget={"num_train_examples": len(x_tr), "num_test_examples": len(x_te), "epochs": budget.epochs,
                "batch_size": budget.batch_size, "eval_every": scale.eval_every},
        environment=environment(device) | {"train_path": path},
    )
