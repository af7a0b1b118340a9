"""Every Triton kernel fits the shared memory of Ampere/Ada and Hopper at every head dim, checked without a GPU.

``deltalab.kernels.smem`` compiles each kernel (Triton's own ptxas) for sm_80 and sm_90 with the block sizes the
launches use, at d_k = d_v ∈ {16, 32, 64, 128, 256} and the corners (16, 256), (256, 16), and reads the shared
bytes per block from the compiled kernel. It runs in a subprocess because the interpreter (``TRITON_INTERPRET``,
which tests/test_triton.py sets) makes kernels that do not compile. The table in docs/triton.md is this
output; it is compared when the installed Triton is the one that made it.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from deltalab.runtime import REPO_ROOT

triton = pytest.importorskip("triton")

DOC = REPO_ROOT / "docs" / "triton.md"
BEGIN, END = "<!-- smem table: python -m deltalab.kernels.smem --markdown -->", "<!-- end smem table -->"


def _can_compile_cuda() -> bool:
    try:
        from triton.backends import backends

        return "nvidia" in backends
    except Exception:
        return False


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    if not _can_compile_cuda():
        pytest.skip("this Triton has no NVIDIA backend to compile for sm_80 / sm_90")
    out = tmp_path_factory.mktemp("smem") / "smem.json"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    jobs = str(min(4, os.cpu_count() or 1))
    proc = subprocess.run([sys.executable, "-m", "deltalab.kernels.smem", "--jobs", jobs, "--json", str(out)],
                          env=env, capture_output=True, text=True, timeout=3600)
    assert out.exists(), f"smem did not run:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads(out.read_text())


def test_every_kernel_and_head_dim_is_compiled(rows):
    from deltalab.kernels import _chunk, smem

    seen = {(r["kernel"], r["dk"], r["dv"], r["target"]) for r in rows}
    for dk, dv in smem.head_dims(smem.DIMS):
        for kernel in _chunk.KERNELS:
            for target in ("sm_80", "sm_90"):
                assert (kernel, dk, dv, target) in seen, f"{kernel} at d_k={dk}, d_v={dv} on {target} not compiled"


def test_shared_memory_fits_with_headroom(rows):
    from deltalab.kernels import smem

    too_big = [f"{r['case']} d_k={r['dk']} d_v={r['dv']} {r['target']}: {r['shared']:,} B > "
               f"{smem.HEADROOM:.0%} of {r['limit']:,}" for r in rows
               if r["shared"] > smem.HEADROOM * r["limit"]]
    assert not too_big, "\n".join(too_big)
    assert all(r["fits"] for r in rows)


def test_docs_table_is_this_output(rows):
    from deltalab.kernels import smem

    text = DOC.read_text()
    assert BEGIN in text and END in text, f"{DOC} has lost its generated shared-memory table markers"
    table = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    made_by = re.search(r"Triton (\S+?);", table)
    if made_by is None or made_by.group(1) != triton.__version__:
        pytest.skip(f"the docs' table was made with Triton {made_by.group(1) if made_by else '?'}, "
                    f"this is {triton.__version__}: regenerate it (python -m deltalab.kernels.smem --markdown)")
    assert table == smem.markdown(rows).strip(), (
        "docs/triton.md's shared-memory table is stale: regenerate it with python -m deltalab.kernels.smem --markdown")


def test_smem_refuses_the_interpreter():
    env = dict(os.environ, TRITON_INTERPRET="1")
    proc = subprocess.run([sys.executable, "-m", "deltalab.kernels.smem", "--dims", "16", "--targets", "80"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0 and "unset TRITON_INTERPRET" in proc.stderr


def test_smem_bad_arguments():
    from deltalab.kernels import smem

    with pytest.raises(SystemExit):
        smem.main(["--targets", "75"])
    with pytest.raises(SystemExit):
        smem.main(["--dims", "sixty-four"])


def test_l2_tiles_refuse_too_wide_state():
    from deltalab.kernels import _chunk

    assert _chunk.tiles(128, 128, 1)["_h_fwd"]["BV"] == 128
    with pytest.raises(ValueError, match="l2_norm_error"):
        _chunk.tiles(256, 128, 1)
