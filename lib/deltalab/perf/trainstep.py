"""One train step of the bench model, measured in this process: build, run, time, FLOP count; the matmul peak.

The helpers every performance tool shares (``bench``, ``gemmbound``): ``build`` makes the 4-layer MAD
LanguageModel (width ``DIM``, vocab ``VOCAB``) of a path with its AdamW, ``train_step`` is what
``deltalab.train`` does per batch, ``_times`` times a callable by ``CLOCK``, ``count_flops`` counts a train
step's matmul and conv FLOPs, ``measure_path`` does all of it for one path, and ``matmul_peak`` is the
machine's GEMM rate the utilisation is measured against. See ``deltalab.perf.bench`` for what the figures mean.
"""
from __future__ import annotations

import os
import resource
import statistics
import time

import torch
import torch.nn.functional as F

VOCAB, DIM = 16, 128


def _rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return float("nan")


def mixer_for(path: str, precision: str = "auto"):
    """``(make_mixer, precision)`` of a path (``precision``: auto, fp32 or bf16; the reference is always fp32)."""
    from ..layers import DeltaNet
    from ..runtime import resolve_precision
    from ..train import mixer_factory
    from ..variants import get_variant

    if path == "reference":
        from fla.ops.delta_rule.naive import delta_rule_chunkwise as naive_rule

        return (lambda: DeltaNet(rule=naive_rule)), "fp32"
    return mixer_factory(get_variant(path)), resolve_precision(precision, torch.device("cpu"))


def build(path: str, seed: int = 0, precision: str = "auto"):
    from ..model import LanguageModel

    make_mixer, precision = mixer_for(path, precision)
    torch.manual_seed(seed)
    model = LanguageModel(VOCAB, make_mixer, DIM)
    if path == "reference":
        from ..layers import use_reference_ops

        use_reference_ops(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    return model, opt, precision


def train_step(model, opt, x, y, precision: str) -> float:
    from ..runtime import autocast

    with autocast(precision, x.device):
        logits = model(x)
    loss = F.cross_entropy(logits.float().reshape(-1, VOCAB), y.reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


CLOCK = time.perf_counter  # bench --cpu-time: time.process_time (this process's CPU time; at 1 thread it is what the
# step costs, whatever else runs on the machine; at 2 threads it also counts OpenMP's waiting)


def _times(fn, warmup: int, steps: int) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(steps):
        t0 = CLOCK()
        fn()
        out.append(CLOCK() - t0)
    return out


def _conv_backward_flop(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
                        _output_padding, groups, output_mask, out_shape=None, **kwargs) -> int:
    """FLOPs of ``aten.convolution_backward`` counting ``groups`` (torch's own formula ignores it and counts a
    depthwise conv's backward as a dense one: 380× too many for the 384-channel short conv). Each of the two
    gradients costs what the forward costs: 2 · out elements · (C_in / groups) · kernel."""
    fwd = 2 * grad_out_shape[0] * grad_out_shape[1] * (x_shape[1] // groups)
    for n in list(grad_out_shape[2:]) + list(w_shape[2:]):
        fwd *= n
    return fwd * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


def count_flops(model, opt, x, y, precision: str) -> tuple[int, int]:
    """(train-step FLOPs, forward FLOPs) counted by FlopCounterMode: matmuls and convs (depthwise conv
    backward corrected, see ``_conv_backward_flop``); elementwise work is not counted."""
    from torch.utils.flop_counter import FlopCounterMode

    from ..runtime import autocast

    aten = torch.ops.aten
    with FlopCounterMode(display=False, custom_mapping={aten.convolution_backward: _conv_backward_flop}) as fc:
        train_step(model, opt, x, y, precision)
    train = fc.get_total_flops()
    with FlopCounterMode(display=False) as fc, torch.inference_mode(), autocast(precision, x.device):
        model(x)
    return train, fc.get_total_flops()


def measure_path(path: str, *, threads: int, batch: int, length: int, warmup: int, steps: int,
                 eval_steps: int, flops: bool = True, precision: str = "auto") -> dict:
    torch.set_num_threads(threads)
    rss0 = _current_rss_mb()
    model, opt, precision = build(path, precision=precision)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, VOCAB, (batch, length), generator=g)
    y = torch.randint(0, VOCAB, (batch, length), generator=g)
    tokens = batch * length
    train = _times(lambda: train_step(model, opt, x, y, precision), warmup, steps)
    rss_train = _rss_mb()

    from ..runtime import autocast

    def fwd():
        with torch.inference_mode(), autocast(precision, x.device):
            model(x)

    model.eval()
    ev = _times(fwd, max(1, warmup), eval_steps)
    model.train()
    out = {
        "path": path, "precision": precision, "threads": threads, "batch": batch, "length": length,
        "train_step_s": statistics.median(train), "train_step_min_s": min(train),
        "train_tokens_per_s": tokens / statistics.median(train),
        "eval_tokens_per_s": tokens / statistics.median(ev),
        "peak_rss_mb": rss_train, "rss_after_imports_mb": rss0,
    }
    if flops:
        tr, fw = count_flops(model, opt, x, y, precision)
        out["train_flops_per_token"] = tr / tokens
        out["forward_flops_per_token"] = fw / tokens
    return out


def matmul_peak(threads: int, dtype: torch.dtype, n: int, repeats: int) -> float:
    """Best-of-``repeats`` GFLOP/s of an n×n×n matmul at ``threads`` threads."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9
