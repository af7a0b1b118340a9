"""Shared memory per block of every Triton kernel, compiled for a named GPU target on any machine (no GPU).

    python -m deltalab.kernels.smem [--dims 16,32,64,128,256] [--targets 80,90] [--dtype bf16] [--jobs N]
                                    [--json PATH] [--markdown]

Each kernel is compiled by Triton (down to PTX and ptxas, the ``ptxas`` bundled with Triton) for
``GPUTarget("cuda", cc, 32)`` with the block sizes and launch options that ``_chunk.tiles`` gives the real launch,
and ``metadata.shared`` is read back: the bytes of shared memory one block needs, the figure a launch checks
against the device (``OutOfResources: shared memory``). The head dims checked are d_k = d_v = each of ``--dims``
plus the two corners (min, max) and (max, min). Each kernel is compiled with the constexpr switches that cost the
most shared memory (``CASES``). The limits: code for sm_80 also runs on the consumer Ampere and Ada cards
(sm_86, sm_89), whose opt-in limit is 101,376 bytes per block (A100: 166,912); sm_90 (H100, H200) has 232,448.
A kernel passes when its bytes are at most ``HEADROOM`` of its target's limit (the compiler's choices move with
its version).

Run it without ``TRITON_INTERPRET`` (under the interpreter ``triton.jit`` makes interpreted functions, which do
not compile); the test runs it in a subprocess.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor

LIMITS = {80: 101_376, 90: 232_448}  # bytes per block: sm_80 code on consumer Ampere/Ada cards; Hopper
LIMIT_NAMES = {80: "Ampere/Ada consumer cards (sm_80 code on sm_86/sm_89)", 90: "Hopper (H100, H200)"}
HEADROOM = 0.9
DIMS = (16, 32, 64, 128, 256)
CHUNK = 64

# kernel -> the switch settings compiled for it (the ones that cost the most shared memory)
CASES: dict[str, list[dict]] = {
    "_kkt_fwd": [dict(USE_G=True)],
    "_wu_fwd": [dict(USE_G=True)],
    "_h_fwd": [
        dict(USE_G=True, TRANSFORM=0, DECAY=False, HAS_H0=True, STORE_X=False, STORE_HT=True, ROUND_HE=True),
        dict(USE_G=False, TRANSFORM=1, DECAY=False, HAS_H0=True, STORE_X=True, STORE_HT=False, ROUND_HE=False),
    ],
    "_o_fwd": [dict(USE_G=True)],
    "_dh_bwd": [
        dict(USE_G=True, TRANSFORM=0, DECAY=False, HAS_DHT=True, STORE_DH0=True),
        dict(USE_G=False, TRANSFORM=1, DECAY=False, HAS_DHT=True, STORE_DH0=True),
    ],
    "_dqk_bwd": [dict(USE_G=True)],
    "_wy_bwd": [dict(USE_G=True, PRECISE_G=True)],
}


def case_name(kernel: str, case: dict) -> str:
    tags = ["gated" if case.get("USE_G") else "plain"]
    if case.get("TRANSFORM") == 1:
        tags.append("l2")
    if case.get("PRECISE_G"):
        tags.append("precise_g")
    return f"{kernel}[{','.join(tags)}]"


def head_dims(dims) -> list[tuple[int, int]]:
    dims = sorted(dims)
    pairs = [(d, d) for d in dims]
    if len(dims) > 1:
        pairs += [(dims[0], dims[-1]), (dims[-1], dims[0])]
    return pairs


def _pointer_types(kernel: str, case: dict, dt: str) -> dict[str, str]:
    """Element type of each pointer argument as the host passes it (the rest are fp32)."""
    low = {"q_ptr", "k_ptr", "v_ptr", "w_ptr"}
    if kernel == "_o_fwd" or (kernel == "_h_fwd" and case.get("ROUND_HE")):
        low |= {"hs_ptr", "e_ptr"}
    return {name: dt for name in low}


def compile_one(kernel: str, case: dict, dk: int, dv: int, dtype: str, cc: int) -> dict:
    """Compile one kernel for ``cuda:cc`` and return its row (bytes, limit, options)."""
    import triton
    import triton.language as tl
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from . import _chunk, _common

    fn = getattr(_common, kernel)
    if not isinstance(fn, triton.runtime.JITFunction):
        raise RuntimeError("the kernels are interpreted functions here: run without TRITON_INTERPRET")
    launch = _chunk.tiles(dk, dv, case.get("TRANSFORM", 0))[kernel]
    opts = {k: v for k, v in launch.items() if k in ("num_warps", "num_stages")}
    DT = {"bf16": tl.bfloat16, "fp16": tl.float16, "fp32": tl.float32}[dtype]
    consts = dict(case, C=CHUNK, BK=launch["BK"], BV=launch["BV"], DT=DT, EMU=False, F32=dtype == "fp32")
    consts = {k: v for k, v in consts.items() if k in fn.arg_names}
    ptr_types = _pointer_types(kernel, case, {"bf16": "bf16", "fp16": "fp16", "fp32": "fp32"}[dtype])
    ints = dict(Lp=1024, DK=dk, DV=dv, N=1024 // CHUNK, BH=64)
    signature, attrs = {}, {}
    for idx, name in enumerate(fn.arg_names):
        if name in consts:
            signature[name] = "constexpr"
        elif name.endswith("_ptr"):
            signature[name] = "*" + ptr_types.get(name, "fp32")
            attrs[(idx,)] = [["tt.divisibility", 16]]  # torch allocations are 16-byte aligned
        elif name in ("scale", "lam"):
            signature[name] = "fp32"
        else:
            signature[name] = "i32"
            if ints[name] % 16 == 0:
                attrs[(idx,)] = [["tt.divisibility", 16]]
    src = ASTSource(fn=fn, signature=signature, constexprs=consts, attrs=attrs)
    compiled = triton.compile(src, target=GPUTarget("cuda", cc, 32), options=opts)
    shared = int(compiled.metadata.shared)
    return dict(kernel=kernel, case=case_name(kernel, case), dk=dk, dv=dv, dtype=dtype, target=f"sm_{cc}",
                shared=shared, limit=LIMITS[cc], fits=shared <= HEADROOM * LIMITS[cc],
                BK=launch["BK"], BV=launch["BV"], **opts)


def _job(args):
    return compile_one(*args)


def measure(dims=DIMS, targets=(80, 90), dtype="bf16", jobs=1) -> list[dict]:
    work = [(kernel, case, dk, dv, dtype, cc) for dk, dv in head_dims(dims) for cc in targets
            for kernel, cases in CASES.items() for case in cases
            if not (case.get("TRANSFORM") == 1 and not _l2_supported(dk, dv))]
    if jobs <= 1:
        return [compile_one(*w) for w in work]
    with ProcessPoolExecutor(jobs) as ex:
        return list(ex.map(_job, work))


def _l2_supported(dk: int, dv: int) -> bool:
    from . import _chunk

    try:
        _chunk.tiles(dk, dv, 1)
    except ValueError:
        return False
    return True


def markdown(rows: list[dict]) -> str:
    """One line per kernel case and head dims, one column per target: bytes (percent of the limit)."""
    import triton

    targets = sorted({r["target"] for r in rows})
    table: dict[tuple, dict] = {}
    for r in rows:
        table.setdefault((r["case"], r["dk"], r["dv"]), {})[r["target"]] = r
    order = {k: i for i, k in enumerate(CASES)}
    keys = sorted(table, key=lambda k: (order[k[0].split("[")[0]], k[0], k[1], k[2]))
    dtype = rows[0]["dtype"] if rows else "?"
    head = [f"Shared memory per block, bytes (share of the limit), {dtype}, chunk {CHUNK}, "
            f"Triton {triton.__version__}; "
            "limits: " + ", ".join(f"sm_{cc} {LIMITS[cc]:,} ({LIMIT_NAMES[cc]})" for cc in sorted(LIMITS)) + ".",
            "", "| kernel | d_k | d_v | BK | BV | warps | stages | " + " | ".join(targets) + " |",
            "|---|---|---|---|---|---|---|" + "---|" * len(targets)]
    for key in keys:
        cols = table[key]
        any_r = next(iter(cols.values()))
        cells = [f"{cols[t]['shared']:,} ({100 * cols[t]['shared'] / cols[t]['limit']:.0f}%)" if t in cols else "—"
                 for t in targets]
        head.append(f"| `{key[0]}` | {key[1]} | {key[2]} | {any_r['BK']} | {any_r['BV']} | {any_r['num_warps']} | "
                    f"{any_r['num_stages']} | " + " | ".join(cells) + " |")
    return "\n".join(head)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dims", default=",".join(map(str, DIMS)), help="head dims, comma-separated")
    ap.add_argument("--targets", default="80,90", help="compute capabilities, comma-separated (80, 90)")
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    ap.add_argument("--jobs", type=int, default=1, help="compile in this many processes")
    ap.add_argument("--json", metavar="PATH", help="write the rows as JSON")
    ap.add_argument("--markdown", action="store_true", help="print a markdown table instead of one line per kernel")
    args = ap.parse_args(argv)
    try:
        dims = [int(d) for d in args.dims.split(",")]
        targets = [int(t) for t in args.targets.split(",")]
    except ValueError:
        ap.error(f"--dims and --targets take comma-separated integers; got {args.dims!r}, {args.targets!r}")
    bad = [t for t in targets if t not in LIMITS]
    if bad:
        ap.error(f"--targets: no limit known for {bad}; known: {sorted(LIMITS)}")
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0", "false", "False"):
        sys.exit("deltalab.kernels.smem compiles the kernels: unset TRITON_INTERPRET")
    rows = measure(dims, targets, args.dtype, args.jobs)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    if args.markdown:
        print(markdown(rows))
    else:
        for r in rows:
            print(f"{r['case']:28s} d_k={r['dk']:3d} d_v={r['dv']:3d} {r['target']} {r['shared']:7d} B "
                  f"of {r['limit']:7d} ({100 * r['shared'] / r['limit']:3.0f}%) {'ok' if r['fits'] else 'TOO BIG'}")
    return 0 if all(r["fits"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
