"""Where and how a run executes: device, autocast precision, threads, and the environment record.

Precision policy (``precision: auto`` in the scale files): MAD trains in bf16. On CUDA, and on CPUs with
native bf16 matmuls (avx512_bf16 / AMX), ``auto`` means bf16 autocast. On CPUs without them, PyTorch
emulates bf16 matmuls at a small fraction of fp32 speed (measured on an AVX2-only EPYC: 2-24 GFLOP/s in
bf16 against 73-106 in fp32), so ``auto`` means fp32 there. The precision a run used is stored with it.
"""
from __future__ import annotations

import functools
import os
import platform
import subprocess
from contextlib import nullcontext
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
PRECISIONS = ("auto", "bf16", "fp32")


def default_device() -> torch.device:
    """CUDA when present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@functools.lru_cache(maxsize=None)
def cpu_has_native_bf16() -> bool:
    """True when the CPU advertises bf16 matmul instructions (Linux /proc/cpuinfo flags)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags for f in ("avx512_bf16", "amx_bf16"))


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` → ``bf16`` on CUDA or a bf16-capable CPU, else ``fp32``."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    return "bf16" if device.type == "cuda" or cpu_has_native_bf16() else "fp32"


def autocast(precision: str, device: torch.device):
    """The autocast context for a resolved precision (``bf16`` or ``fp32``)."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu: {platform.processor() or platform.machine()} ({_cpu_model()}), {torch.get_num_threads()} threads"


@functools.lru_cache(maxsize=None)
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def git_commit() -> str:
    """The repository's HEAD commit (with ``-dirty`` if ``lib/`` has uncommitted changes, ``lib_changes``), or
    ``unknown``. Read anew on every call (once per run), as ``lib_changes``."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, check=True).stdout.strip()
        return sha + ("-dirty" if lib_changes() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def lib_changes(root: Path = REPO_ROOT) -> list[str] | None:
    """The files under ``lib/`` that differ from the commit (changed, staged or not, and new files git does not
    ignore), as paths from the repository root; None where ``root`` is no git checkout (nothing to compare with).
    Read anew on every call: a notebook's kernel outlives edits."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--", "lib"], cwd=root,
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return [line[3:].split(" -> ")[-1].strip('"') for line in out.splitlines() if line.strip()]


def lib_diff(root: Path = REPO_ROOT) -> str:
    """The uncommitted changes under ``lib/`` as one patch against HEAD (``git diff HEAD``, then each new file as
    a diff from /dev/null), so that HEAD plus this patch is the code that ran."""
    run = functools.partial(subprocess.run, cwd=root, capture_output=True, text=True)
    patch = run(["git", "diff", "--binary", "HEAD", "--", "lib"], check=True).stdout
    new = run(["git", "ls-files", "--others", "--exclude-standard", "--", "lib"], check=True).stdout.split()
    for path in sorted(new):
        patch += run(["git", "diff", "--binary", "--no-index", "--", "/dev/null", path]).stdout  # exit 1: differs
    return patch


def package_versions() -> dict[str, str]:
    import numpy
    import torchmetrics

    from . import __version__

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
            "torchmetrics": torchmetrics.__version__, "deltalab": __version__}


# The variables that cap the instruction set of ATen's CPU kernels and of the GEMM libraries (oneDNN, MKL): set,
# they make an AVX-512 machine compute as an AVX2 one would (scripts/test.sh's second reproduction pass).
CPU_ISA_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")


def cpu_capability() -> str:
    """The instruction set ATen's CPU kernels dispatch to in this process (``AVX512``, ``AVX2``, ...)."""
    return torch.backends.cpu.get_cpu_capability()


def cpu_isa_limits() -> dict[str, str]:
    """The ``CPU_ISA_VARIABLES`` set in this process's environment (empty: each library picks the CPU's best)."""
    return {k: os.environ[k] for k in CPU_ISA_VARIABLES if k in os.environ}


def recorded_cpu_capability(env: dict) -> tuple[str | None, str]:
    """``(capability, how it is known)`` of the CPU a record's ``environment`` was trained on. Recorded since
    issue #41; before, inferred where it can be: a CPU with native bf16 matmuls (avx512_bf16, AMX) has AVX-512,
    which ATen picks unless told otherwise. ``None`` where it cannot be known."""
    if "cpu_capability" in env:
        return env["cpu_capability"], "recorded"
    if env.get("cpu_native_bf16") is True and str(env.get("device", "")).startswith("cpu"):
        return "AVX512", "inferred from cpu_native_bf16: a bf16-capable CPU has AVX-512"
    return None, "not recorded, and not inferable from the record"


def environment(device: torch.device | None = None) -> dict:
    """Versions, commit and device: stored with every result and beside every executed notebook. The CPU's
    capability and any caps on it are recorded too, since fp32 kernels of another instruction set round
    differently (a run is reproduced bit for bit only under the same torch and the same capability)."""
    device = device or default_device()
    return {"commit": git_commit(), "versions": package_versions(), "device": device_name(device),
            "cpu_native_bf16": cpu_has_native_bf16(), "cpu_capability": cpu_capability(),
            "cpu_isa_limits": cpu_isa_limits(), "platform": platform.platform(terse=True)}


def set_threads(n: int | None) -> None:
    """Set torch's intra-op threads (``None``: leave as is). Also caps OpenMP in child libraries."""
    if n:
        torch.set_num_threads(n)
        os.environ["OMP_NUM_THREADS"] = str(n)
