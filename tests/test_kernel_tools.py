"""The kernel tools that run without a GPU: bench_triton's arguments and per-shape cap, the docs' GPU figures
(made from the committed files of the H200 session) and that session's records in the store."""
from __future__ import annotations

import pytest

from deltalab.kernels import bench_triton, gpu_report
from deltalab.runtime import REPO_ROOT


# ---------------------------------------------------------------------------------------------------------
# bench_triton
# ---------------------------------------------------------------------------------------------------------
def test_parse_shapes():
    assert bench_triton.parse_shapes("128,512,2,64; 8,4096,16,128;") == [(128, 512, 2, 64), (8, 4096, 16, 128)]
    for bad in ("128,512,2", "128,512,2,x", "0,512,2,64", " ; "):
        with pytest.raises(ValueError, match="--shapes"):
            bench_triton.parse_shapes(bad)


def test_default_shapes_include_head_dim_128():
    assert {d for *_, d in bench_triton.SHAPES} == {64, 128}


@pytest.mark.parametrize("argv,msg", [(["--shapes", "1,2,3"], "four positive integers"),
                                      (["--rules", "delta,softmax"], "unknown"), (["--cap", "0"], "positive")])
def test_bad_arguments_are_named(argv, msg, capsys):
    with pytest.raises(SystemExit):
        bench_triton.main(argv)
    assert msg in capsys.readouterr().err


def test_cap_skips_the_rest_of_a_shape_and_errors_are_kept(monkeypatch):
    """A shape that has used its cap skips its remaining measurements (and says so); a failing measurement is
    reported with its error; the next shape starts with a fresh budget."""
    clock = {"t": 0.0}
    monkeypatch.setattr(bench_triton.time, "perf_counter", lambda: clock["t"])
    monkeypatch.setattr(bench_triton, "_inputs", lambda *a, **k: None)
    monkeypatch.setattr(bench_triton.torch.cuda, "empty_cache", lambda: None)
    monkeypatch.setattr(bench_triton, "_runners", lambda gated, C, with_torch: {"a": (True, "a"), "b": (True, "b")})

    def measure(fn, ins, backward):
        clock["t"] += 15.0  # every measurement takes 15 s
        if fn == "b" and backward:
            return float("nan"), "RuntimeError: refused"
        return 1.0, ""

    monkeypatch.setattr(bench_triton, "_measure", measure)
    lines = []
    rows = bench_triton.bench(["delta"], [(1, 64, 1, 64), (2, 64, 1, 64)], None, 64, True, cap_s=20, out=lines.append)
    first = [r for r in rows if r["B"] == 1]
    # a: fwd at 0 s, fwd+bwd at 15 s; b: fwd at 30 s > cap -> both skipped
    assert first[0]["fwd_ms"] == 1.0 and first[0]["fwd_bwd_ms"] == 1.0 and not first[0]["note"]
    assert first[1]["fwd_ms"] is None and first[1]["fwd_bwd_ms"] is None
    assert "fwd skipped" in first[1]["note"] and "fwd+bwd skipped" in first[1]["note"]
    assert "skipped" in lines[1] and "cap" in lines[1]
    second = [r for r in rows if r["B"] == 2]
    assert second[0]["fwd_ms"] == 1.0, "the next shape has its own budget"
    no_cap = bench_triton.bench(["delta"], [(1, 64, 1, 64)], None, 64, True, cap_s=1e9, out=lambda s: None)
    assert no_cap[1]["fwd_bwd_ms"] is None and "fwd+bwd: RuntimeError: refused" in no_cap[1]["note"]


# ---------------------------------------------------------------------------------------------------------
# The docs' GPU figures and the H200 records
# ---------------------------------------------------------------------------------------------------------
def test_docs_quote_the_committed_gpu_files():
    assert gpu_report.stale() == [], "run python -m deltalab.kernels.gpu_report --write"
    names = set()
    for doc in gpu_report.DOCS:
        text = doc.read_text()
        assert "GPU figures are pending" not in text, doc
        names |= {m.group(2) for m in gpu_report._BLOCK.finditer(text)}
    assert names == set(gpu_report.BLOCKS), f"blocks quoted nowhere: {set(gpu_report.BLOCKS) - names}"


def test_gpu_tables_read_the_files():
    """Spot checks against the raw files, so a parser that read nothing cannot pass."""
    env = gpu_report.environment()
    assert env["device"] == "NVIDIA H200" and env["triton"] == "3.6.0" and env["fla"] == "0.6.0"
    rows = gpu_report.bench_rows(gpu_report.GPU_ROOT / gpu_report.RUN / "bench.txt")
    assert len(rows) == 14 and rows[0] == dict(rule="delta", B=128, L=128, H=2, D=64, impl="deltalab-triton",
                                               fwd=0.287, fwd_bwd=1.377)
    assert "| delta | 128 | 1024 | 2 | 64 | 0.907 / 0.449 / 2.424 | 0.50 |" in gpu_report.kernel_table()
    assert "Required: 262,144, Hardware limit: 232,448" in gpu_report.large_failure()
    assert gpu_report.tests_summary().startswith("1 failed, 51 passed")
    runs = gpu_report.runs_table()
    assert runs.count("finished, stored") == 7 and runs.count("cut by the time limit") == 5


def test_h200_records_are_where_the_store_puts_them():
    from deltalab.params import load_scale
    from deltalab.store import Store
    from deltalab.runs import budget_id, make_spec

    store = Store(REPO_ROOT / "outputs" / "results")
    records = store.records(load_scale("mad"))
    assert len(records) == 7
    scale = load_scale("mad")
    for r in records:
        s = r["spec"]
        assert s["budget_id"] == budget_id(scale, s["task"], r["precision"])
        spec = make_spec(s["variant"], s["task"], s["setting"], s["lr"], s["wd"], s["seed"], s["scale"],
                         s["budget_id"])
        assert store.get(spec) == r
        assert r["environment"]["device"] == "NVIDIA H200" and r["backend"] == "triton"
    assert {(r["spec"]["variant"], r["spec"]["task"]) for r in records} == {
        ("delta_net", "in-context-recall"), ("delta_net", "noisy-in-context-recall"),
        ("delta_net", "memorization"), ("delta_net", "selective-copying"),
        ("gated_delta_net", "in-context-recall"), ("gated_delta_net", "noisy-in-context-recall"),
        ("gated_delta_net", "memorization")}
