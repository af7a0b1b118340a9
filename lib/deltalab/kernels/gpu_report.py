"""The GPU figures quoted in the docs, made from the committed measurement files (none is typed by hand).

    python -m deltalab.kernels.gpu_report [--write] [--print BLOCK]

A GPU session's files are committed under ``outputs/gpu/<run>/`` (``bench.txt``: ``bench_triton``'s output;
``bench_large.txt``; ``steps.json``: train-step times; ``env.txt``; ``tests.log``; ``train.log`` and ``runlogs/``:
the MAD runs' progress) and its finished runs in the store, ``outputs/results/<scale>/``. This module turns
them into markdown blocks; docs/triton.md and docs/performance.md hold each block between
``<!-- gpu_report:NAME -->`` and ``<!-- end gpu_report:NAME -->``. Without ``--write`` it says which blocks
differ from the files (exit status 1); with it, it rewrites them. tests/test_kernel_tools.py checks them.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from ..runtime import REPO_ROOT

RUN = "h200-2026-12-04"
GPU_ROOT = REPO_ROOT / "outputs" / "gpu"
DOCS = [REPO_ROOT / "docs" / "triton.md", REPO_ROOT / "docs" / "performance.md"]
_BLOCK = re.compile(r"(<!-- gpu_report:(\w+) -->\n)(.*?)(<!-- end gpu_report:\2 -->)", re.S)


def _files(run: str) -> Path:
    folder = GPU_ROOT / run
    if not folder.is_dir():
        raise FileNotFoundError(f"no GPU session {run!r}: {folder} is not a folder")
    return folder


def environment(run: str = RUN) -> dict:
    """Device and versions from env.txt (nvidia-smi's line, python/torch/triton, fla)."""
    text = (_files(run) / "env.txt").read_text()
    dev = re.search(r"^(NVIDIA [^,]+), (\d+) MiB, ([\d.]+),", text, re.M)
    ver = re.search(r"^([\d.]+) torch (\S+) triton (\S+)", text, re.M)
    fla = re.search(r"^fla (\S+)", text, re.M)
    if not (dev and ver and fla):
        raise ValueError(f"{_files(run) / 'env.txt'}: expected the device line, 'PY torch T triton T' and 'fla V'")
    return dict(device=dev.group(1), memory_mib=int(dev.group(2)), driver=dev.group(3), python=ver.group(1),
                torch=ver.group(2), triton=ver.group(3), fla=fla.group(1))


def env_line(run: str = RUN) -> str:
    e = environment(run)
    return (f"{e['device']} ({e['memory_mib']:,} MiB, driver {e['driver']}), Python {e['python']}, "
            f"torch {e['torch']}, Triton {e['triton']}, fla-core {e['fla']}")


_BENCH_ROW = re.compile(r"^(delta|gated)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s+([\d.]+|nan|—)\s+([\d.]+|nan|—)")


def bench_rows(path: Path) -> list[dict]:
    rows = []
    for line in path.read_text().splitlines():
        m = _BENCH_ROW.match(line)
        if m:
            num = lambda s: None if s in ("nan", "—") else float(s)  # noqa: E731
            rows.append(dict(rule=m.group(1), B=int(m.group(2)), L=int(m.group(3)), H=int(m.group(4)),
                             D=int(m.group(5)), impl=m.group(6), fwd=num(m.group(7)), fwd_bwd=num(m.group(8))))
    return rows


def _ms(x) -> str:
    return "—" if x is None else f"{x:.3f}"


def _ratio(fla, ours) -> str:
    return "—" if fla is None or ours is None else f"{fla / ours:.2f}"


def kernel_table(run: str = RUN) -> str:
    """bench.txt as one line per shape: deltalab's Triton kernels, fla-core and the PyTorch path."""
    rows = bench_rows(_files(run) / "bench.txt")
    shapes: dict[tuple, dict] = {}
    for r in rows:
        shapes.setdefault((r["rule"], r["B"], r["L"], r["H"], r["D"]), {})[r["impl"]] = r
    out = ["| rule | B | L | H | D | fwd ms: deltalab / fla / PyTorch | fla ÷ deltalab | "
           "fwd+bwd ms: deltalab / fla / PyTorch | fla ÷ deltalab |", "|---|---|---|---|---|---|---|---|---|"]
    for (rule, B, L, H, D), impls in shapes.items():
        ours, fla, pt = (impls.get(n, {}) for n in ("deltalab-triton", "fla-core", "deltalab-torch"))
        out.append(f"| {rule} | {B} | {L} | {H} | {D} | {_ms(ours.get('fwd'))} / {_ms(fla.get('fwd'))} / "
                   f"{_ms(pt.get('fwd'))} | {_ratio(fla.get('fwd'), ours.get('fwd'))} | "
                   f"{_ms(ours.get('fwd_bwd'))} / {_ms(fla.get('fwd_bwd'))} / {_ms(pt.get('fwd_bwd'))} | "
                   f"{_ratio(fla.get('fwd_bwd'), ours.get('fwd_bwd'))} |")
    return "\n".join(out)


def large_failure(run: str = RUN) -> str:
    """What bench_large.txt ended with: the kernel and the shared-memory error."""
    text = (_files(run) / "bench_large.txt").read_text()
    err = re.search(r"OutOfResources: out of resource: shared memory, Required: (\d+), Hardware limit: (\d+)", text)
    where = re.findall(r"K\.(_\w+)\[", text)
    if not err or not where:
        return "bench_large.txt holds no shared-memory failure."
    return (f"`{where[-1]}` raised `OutOfResources: shared memory, Required: {int(err.group(1)):,}, "
            f"Hardware limit: {int(err.group(2)):,}`")


def tests_summary(run: str = RUN) -> str:
    last = [ln for ln in (_files(run) / "tests.log").read_text().splitlines() if re.search(r"\d+ (passed|failed)", ln)]
    if not last:
        raise ValueError(f"{_files(run) / 'tests.log'}: no pytest summary line")
    return last[-1].strip("= ").strip()


def steps_table(run: str = RUN) -> str:
    """steps.json: train-step time of the MAD model, Triton rule against PyTorch rule."""
    data = json.loads((_files(run) / "steps.json").read_text())
    out = ["| variant | Triton rule: ms per step (median) | PyTorch rule | PyTorch ÷ Triton | tokens/s (Triton) |",
           "|---|---|---|---|---|"]
    variants = sorted({k.split("/")[0] for k in data if "/" in k})
    for v in variants:
        t, p = data[f"{v}/triton"], data[f"{v}/pytorch"]
        out.append(f"| {v} | {t['ms_median']:.1f} | {p['ms_median']:.1f} | {p['ms_median'] / t['ms_median']:.2f} | "
                   f"{t['tok_per_s']:,.0f} |")
    return "\n".join(out) + f"\n\nBatch {data['batch']} × length {data['length']}, on the {data['device']}."


def _records(scale: str):
    from ..store import read_record

    base = REPO_ROOT / "outputs" / "results" / scale
    return [(p, read_record(p)) for p in sorted(base.glob("*/*/*/*.json"))]


def runs_table(run: str = RUN, scale: str = "mad") -> str:
    """The finished runs (records in the store) and the ones the time limit cut (their progress logs)."""
    recs = _records(scale)
    out = ["| variant | task | test accuracy | best epoch | epochs run | wall s | state |",
           "|---|---|---|---|---|---|---|"]
    done = set()
    for _, r in recs:
        s = r["spec"]
        done.add((s["variant"], s["task"]))
        out.append(f"| {s['variant']} | {s['task']} | {r['metrics']['test_acc']:.4f} | {r['best_epoch']} | "
                   f"{r['epochs_run']} | {r['wall_time_s']:.0f} | finished, stored |")
    for log in sorted((_files(run) / "runlogs").glob("*.log")):
        variant, task = log.name.split("__")[:2]
        if (variant, task) in done:
            continue
        prog = re.findall(r"(\d+)/(\d+) \[[^\]]*acc=([\d.]+)\]", log.read_text())
        if not prog:
            continue
        epochs, budget, last = int(prog[-1][0]), int(prog[-1][1]), float(prog[-1][2])
        best = max(float(a) for _, _, a in prog)
        out.append(f"| {variant} | {task} | {last:.3f} (best {best:.3f}) | — | {epochs} of {budget} | — | "
                   "cut by the time limit, not stored |")
    rates = []  # tqdm's s/it at the last progress line of each run that logged at least 10 epochs
    for log in sorted((_files(run) / "runlogs").glob("*.log")):
        last = re.findall(r"(\d+)/\d+ \[[^\]]*?([\d.]+)s/it", log.read_text())
        if last and int(last[-1][0]) >= 10:
            rates.append(float(last[-1][1]))
    if rates:
        out.append(f"\nSeconds per epoch at the last progress line of the {len(rates)} runs that logged 10 epochs or "
                   f"more (twelve runs at once, one process each): {min(rates):.2f} to {max(rates):.2f}.")
    return "\n".join(out)


BLOCKS = {
    "env": lambda: f"{env_line()}; the code was main at 30dfde6.",
    "kernels": kernel_table,
    "large": large_failure,
    "tests": tests_summary,
    "steps": steps_table,
    "runs": runs_table,
}


def stale(write: bool = False) -> list[str]:
    """Blocks of the docs that differ from what the files give; with ``write``, rewritten in place."""
    made = {name: fn().strip() + "\n" for name, fn in BLOCKS.items()}
    bad = []
    for doc in DOCS:
        text = doc.read_text()
        unknown = [m.group(2) for m in _BLOCK.finditer(text) if m.group(2) not in made]
        if unknown:
            raise ValueError(f"{doc}: unknown gpu_report blocks {unknown}; known: {sorted(made)}")

        def sub(m):
            if m.group(3) != made[m.group(2)]:
                bad.append(f"{doc.name}:{m.group(2)}")
            return m.group(1) + made[m.group(2)] + m.group(4)

        new = _BLOCK.sub(sub, text)
        if write and new != text:
            doc.write_text(new)
    return bad


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help="rewrite the blocks in docs/triton.md and docs/performance.md")
    ap.add_argument("--print", dest="show", metavar="BLOCK", choices=sorted(BLOCKS), help="print one block")
    args = ap.parse_args(argv)
    if args.show:
        print(BLOCKS[args.show]())
        return 0
    bad = stale(write=args.write)
    if bad and not args.write:
        print("stale: " + ", ".join(bad) + " (python -m deltalab.kernels.gpu_report --write)")
        return 1
    print(("rewrote: " + ", ".join(bad)) if bad else "the docs' GPU blocks match the files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
