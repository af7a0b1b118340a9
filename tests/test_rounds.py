"""The analysis rounds: their params files, the claim checker, the seed tables, nbclean."""
import math

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from deltalab import nbclean, rounds
from deltalab import tasks as T
from deltalab.params import CLAIM_KINDS, Claim, available_rounds, load_round
from deltalab.rounds import FAILS, HOLDS, UNSURE, check_claim, label
from deltalab.runtime import REPO_ROOT
from deltalab.variants import VARIANTS, name_of_label

# Chronological order of shared/seeds/README.md: document, rows in its table, proposal. Round 6 has no table of
# its own: it re-uses the latest (000) and its rows are the seeds' next steps, their parents and the baselines.
EXPECTED = {
    1: ("003_9826a221f536bfd8.txt", 8, "rmsprop_state"),
    2: ("004_477b876134327047.txt", 15, "topk_error"),
    3: ("001_9e165c1cc01685c8.txt", 22, "l2_norm_error"),
    4: ("002_017d9b558cdb9257.txt", 24, "two_stage_error"),
    5: ("000_6ad374f8df70496e.txt", 25, "current_key_error"),
    6: ("000_6ad374f8df70496e.txt", 17, "current_key_error_local_softmax"),
}
ROUNDS = [load_round(f"round_{n}") for n in EXPECTED]
needs_seeds = pytest.mark.skipif(not rounds.SEEDS_DIR.exists(), reason=f"seed documents not at {rounds.SEEDS_DIR}")


def test_the_rounds_are_there():
    assert available_rounds() == [f"round_{n}" for n in EXPECTED]
    assert [r.number for r in ROUNDS] == list(EXPECTED)
    assert sum(r.conclusion for r in ROUNDS) == 1 and ROUNDS[-1].conclusion


@pytest.mark.parametrize("rnd", ROUNDS, ids=lambda r: f"round_{r.number}")
def test_round_file(rnd):
    doc, rows, proposal = EXPECTED[rnd.number]
    assert rnd.seed_document == doc
    assert len(rnd.variants) == rows == len(set(rnd.variants))
    assert rnd.proposal == proposal and rnd.proposal not in rnd.variants
    for name in rnd.variants + rnd.discuss + (rnd.proposal,):
        assert name in VARIANTS, name
    assert {"delta_net", "gated_delta_net"} <= set(rnd.variants)
    assert set(rnd.discuss) <= set(rnd.rows)
    assert 4 <= len(rnd.claims) <= 8
    assert len(rnd.success_criteria) >= 3
    valid_tasks = set(T.COLUMNS) | {"Average", "all"}
    for c in rnd.claims + rnd.success_criteria:
        assert c.task in valid_tasks, c
        assert c.kind in CLAIM_KINDS
        for name in (c.variant, c.other):
            assert name is None or name in rnd.rows, (c.text, name)
    for c in rnd.success_criteria:  # criteria are about the proposal
        assert c.variant == rnd.proposal, c.text


def test_round_6_claims_compare_rows_at_the_same_scale_and_name_their_source():
    rnd = ROUNDS[-1]
    assert rnd.number == 6 and rnd.conclusion and rounds.concluding_round() == 6
    for c in rnd.claims + rnd.success_criteria:
        assert c.kind in ("beats", "lags", "no_worse") and c.threshold is None, c.text  # no MAD-scale numbers
        assert c.source and ("seed 00" in c.source or "FINDINGS" in c.source or "study" in c.source), c.text
        assert (c.margin is not None) == (c.kind == "no_worse"), c.text
    new = set(rnd.rows) - {v for r in ROUNDS[:-1] for v in r.rows}  # round 6's new rows, all of them registered
    assert new == {"topk_error_r0125", "topk_error_r05", "topk_error_decay", "topk_error_rope",
                   "two_stage_error_full", "current_key_error_local_softmax", "uniform_average", "sharp_softmax"}
    assert {"topk_error", "decay_state", "rope_qk", "two_stage_error", "current_key_error", "local_softmax",
            "softmax_attention", "cosine_softmax"} <= set(rnd.variants)  # their parents


@needs_seeds
@pytest.mark.parametrize("rnd", [r for r in ROUNDS if r.number <= 5], ids=lambda r: f"round_{r.number}")
def test_seed_table_parses_and_matches_the_round(rnd):
    table = rounds.seed_table(rnd.seed_document)
    assert len(table) == EXPECTED[rnd.number][1]
    assert list(table.columns) == T.COLUMNS
    assert table.notna().all().all() and ((table >= 0) & (table <= 1)).all().all()
    assert [name_of_label(lab) for lab in table.index] == list(rnd.variants)


def test_missing_seed_document_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="shared/seeds"):
        rounds.seed_path("no_such_document.txt")


def test_unknown_keys_and_kinds_raise(tmp_path):
    with pytest.raises(ValueError, match="unknown kind"):
        Claim(text="x", kind="dominates", task="Compress", variant="delta_net")
    with pytest.raises(ValueError, match="needs other"):
        Claim(text="x", kind="beats", task="Compress", variant="delta_net")
    bad = tmp_path / "r.yaml"
    bad.write_text((REPO_ROOT / "params/rounds/round_1.yaml").read_text() + "colour: blue\n")
    with pytest.raises(ValueError, match="colour"):
        load_round(bad)
    with pytest.raises(ValueError, match="round_1"):
        load_round("round_9")


# --- the claim checker on a hand-made summary ------------------------------------------------------------

def _cell(name, column, mean, half, n):
    lo, hi = (mean - half, mean + half) if n >= 2 else (math.nan, math.nan)
    return {"label": label(name), "column": column, "mean": mean, "ci_low": lo, "ci_high": hi, "n": n}


@pytest.fixture
def summary():
    cells = [
        # Memorize: softmax clearly above delta_net; gated overlaps delta_net
        _cell("delta_net", "Memorize", 0.40, 0.02, 3), _cell("softmax_attention", "Memorize", 0.78, 0.03, 3),
        _cell("gated_delta_net", "Memorize", 0.42, 0.05, 3), _cell("adam_state", "Memorize", 0.38, 0.01, 1),
        # Compress: adam clearly below delta_net; gated clearly below
        _cell("delta_net", "Compress", 0.44, 0.01, 3), _cell("adam_state", "Compress", 0.30, 0.01, 3),
        _cell("gated_delta_net", "Compress", 0.37, 0.01, 3), _cell("softmax_attention", "Compress", 0.43, 0.02, 3),
        # Context Recall: saturated except adam
        _cell("delta_net", "Context Recall", 0.995, 0.002, 3), _cell("softmax_attention", "Context Recall", 0.992, 0.001, 3),
        _cell("gated_delta_net", "Context Recall", 0.999, 0.0005, 3), _cell("adam_state", "Context Recall", 0.09, 0.01, 3),
        # Fuzzy Recall: single seeds
        _cell("delta_net", "Fuzzy Recall", 0.21, 0, 1), _cell("gated_delta_net", "Fuzzy Recall", 0.31, 0, 1),
    ]
    return pd.DataFrame(cells)


ROWS = [label(v) for v in ("delta_net", "softmax_attention", "gated_delta_net", "adam_state")]


def _check(summary, **kw):
    return check_claim(Claim(text="t", **kw), summary, ROWS, ["Compress", "Context Recall", "Memorize"])


def test_pairwise_verdicts(summary):
    kw = dict(task="Memorize", variant="softmax_attention", other="delta_net")
    assert _check(summary, kind="beats", **kw).status == HOLDS
    assert _check(summary, kind="lags", **kw).status == FAILS
    assert _check(summary, kind="no_worse", **kw).status == HOLDS


def test_no_worse_with_a_margin(summary):
    """Compress: adam_state is clearly below delta_net by 0.14; a margin of 0.2 allows it, 0.1 does not."""
    kw = dict(kind="no_worse", task="Compress", variant="adam_state", other="delta_net")
    assert _check(summary, **kw).status == FAILS
    held = _check(summary, margin=0.2, **kw)
    assert held.status == HOLDS and "within the claim's margin 0.2" in held.evidence
    assert _check(summary, margin=0.1, **kw).status == FAILS
    with pytest.raises(ValueError, match="margin is for kind 'no_worse'"):
        Claim(text="x", kind="beats", task="Compress", variant="adam_state", other="delta_net", margin=0.02)
    overlap = _check(summary, kind="beats", task="Memorize", variant="gated_delta_net", other="delta_net")
    assert overlap.status == FAILS and "overlap" in overlap.evidence
    assert _check(summary, kind="no_worse", task="Memorize", variant="gated_delta_net", other="delta_net").status == HOLDS
    one_seed = _check(summary, kind="lags", task="Fuzzy Recall", variant="delta_net", other="gated_delta_net")
    assert one_seed.status == UNSURE and "n=1/1" in one_seed.evidence and "'holds'" in one_seed.evidence
    assert _check(summary, kind="beats", task="Memorize", variant="adam_state", other="delta_net").status == UNSURE


def test_every_task_claims(summary):
    # adam lags delta_net on Compress and Context Recall (clear) but is a single seed on Memorize → cannot tell
    assert _check(summary, kind="lags", task="all", variant="adam_state", other="delta_net").status == UNSURE
    # gated lags delta_net on Compress but not on Context Recall → one task contradicts the claim
    assert _check(summary, kind="lags", task="all", variant="gated_delta_net", other="delta_net").status == FAILS
    assert _check(summary, kind="beats", task="Selective Copy", variant="delta_net", other="adam_state").status == UNSURE


def test_threshold_verdicts(summary):
    kw = dict(kind="at_least", variant="softmax_attention")
    assert _check(summary, task="Memorize", threshold=0.70, **kw).status == HOLDS
    assert _check(summary, task="Memorize", threshold=0.90, **kw).status == FAILS
    straddle = _check(summary, task="Memorize", threshold=0.78, **kw)
    assert straddle.status == UNSURE and "straddles" in straddle.evidence
    point = _check(summary, kind="above", task="Fuzzy Recall", variant="delta_net", threshold=0.20)
    assert point.status == HOLDS and "n=1" in point.evidence
    assert _check(summary, kind="below", task="Fuzzy Recall", variant="delta_net", threshold=0.20).status == FAILS


def test_saturated_and_best(summary):
    kw = dict(kind="saturated", task="Context Recall", threshold=0.99)
    assert _check(summary, fraction=0.75, **kw).status == HOLDS  # 3 of 4 rows ≥ 0.99
    assert _check(summary, fraction=1.0, **kw).status == FAILS  # adam is clearly below
    assert _check(summary, kind="best", task="Context Recall", variant="gated_delta_net").status == HOLDS
    # softmax_attention is clearly ahead on Memorize except against adam_state, which has a single seed
    single = _check(summary, kind="best", task="Memorize", variant="softmax_attention")
    assert single.status == UNSURE and "adam_state" in single.evidence
    assert _check(summary, kind="best", task="Compress", variant="gated_delta_net").status == FAILS
    # delta_net tops Compress but its interval overlaps softmax_attention's
    assert _check(summary, kind="best", task="Compress", variant="delta_net").status == UNSURE


@needs_seeds
def test_claims_on_the_seed_tables_own_numbers():
    """Round 2 says DeltaNet lags Gated DeltaNet on Compress; its own table says 0.442 vs 0.367."""
    rnd = load_round("round_2")
    seed = rounds.point_summary(rounds.seed_table(rnd.seed_document))
    rows = [label(v) for v in rnd.variants]
    verdicts = {c.text: check_claim(c, seed, rows, T.COLUMNS, point=True).status for c in rnd.claims}
    assert verdicts["DeltaNet lags Gated DeltaNet on Compress (−0.08)"] == FAILS
    assert verdicts["DeltaNet lags Gated DeltaNet on Memorize (−0.18)"] == HOLDS
    assert verdicts["RMSProp on the state harms every task"] == HOLDS


def test_overall_verdict():
    assert "**held up**" in rounds.overall([HOLDS, HOLDS], "p", "at scale `x`")
    assert "**did not hold up**" in rounds.overall([HOLDS, FAILS, UNSURE], "p", "at scale `x`")
    assert "**cannot be judged yet**" in rounds.overall([HOLDS, UNSURE], "p", "at scale `x`")


def test_average_is_per_seed_then_over_seeds():
    runs = pd.DataFrame([
        {"label": "a", "column": col, "setting": "baseline", "seed": seed, "test_acc": acc}
        for seed, accs in ((0, (0.2, 0.4)), (1, (0.4, 0.6)), (2, (0.3, None)))
        for col, acc in zip(("Compress", "Memorize"), accs) if acc is not None
    ])
    s = rounds.summary_with_average(runs, ["Compress", "Memorize"])
    avg = s[s["column"] == "Average"].iloc[0]
    assert avg["n"] == 2 and avg["mean"] == pytest.approx(0.4)  # seed 2 lacks Memorize: no average for it
    assert avg["ci_low"] < 0.4 < avg["ci_high"]


def test_signed_never_prints_negative_zero():
    assert rounds.signed(-1e-9) == "+0.000" and rounds.signed(-0.0123) == "-0.012"


def test_cost_reads_the_bench_report_or_the_grid_runs(tmp_path):
    import json
    from types import SimpleNamespace

    rnd = ROUNDS[0]
    labs = [label(n) for n in rnd.rows]
    runs = pd.DataFrame([{"label": lab, "train_tokens_per_s": 1000.0 * (i + 1) + j}
                         for i, lab in enumerate(labs) for j in (0, 2)])
    study = SimpleNamespace(round_labels=labs, runs=runs)
    grid, source = rounds.cost(study)
    assert grid[rnd.rows[-1]] == pytest.approx(1000.0 * len(labs) + 1) and "grid runs" in source
    assert list(grid) == sorted(grid, reverse=True)

    report = {"train_tokens_per_s": {n: 10.0 + i for i, n in enumerate(rnd.rows)} | {"reference": 1.0},
              "date": "2026-11-23T16:00:00+00:00", "machine": "m", "threads": 2, "batch": 128, "length": 128,
              "steps": 7, "load_average_at_start": [0.5, 0.5, 0.5]}
    f = tmp_path / "bench.json"
    f.write_text(json.dumps(report))
    bench, source = rounds.cost(study, bench_file=f)
    assert dict(bench) == {n: 10.0 + i for i, n in enumerate(rnd.rows)}  # the round's rows only
    assert "deltalab bench" in source and "bench.json" in source and "load average 0.5" in source
    assert bench.name != grid.name and "noise" not in source
    report["load_average_at_start"] = [2.5, 2.0, 2.0]
    f.write_text(json.dumps(report))
    assert "noise" in rounds.cost(study, bench_file=f)[1]

    with pytest.raises(FileNotFoundError, match="bench --json"):
        rounds.cost(study, bench_file=tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text(json.dumps({"date": "x"}))
    with pytest.raises(ValueError, match="lacks train_tokens_per_s"):
        rounds.cost(study, bench_file=tmp_path / "bad.json")


def test_identical_to_baseline_compares_every_run_epoch_by_epoch():
    from types import SimpleNamespace

    from deltalab.params import load_scale

    def rec(name, task, seed, losses):
        return {"label": label(name), "spec": {"task": task, "setting": {}, "lr": 1e-3, "wd": 0.1, "seed": seed},
                "curve": [{"epoch": i + 1, "test_loss": x} for i, x in enumerate(losses)]}

    records = [rec("delta_net", "compression", s, [2.0, 1.5 + s]) for s in (0, 1)]
    records += [rec("delta_net", "selective-copying", 0, [3.0, 2.0])]
    records += [rec("decay_state", "compression", s, [2.0, 1.5 + s]) for s in (0, 1)]  # DeltaNet's runs
    records += [rec("decay_state", "selective-copying", 0, [3.0, 2.0 + 1e-12])]  # differs in the last epoch
    records += [rec("error_gated", "compression", 0, [2.0, 1.5]), rec("error_gated", "compression", 1, [2.0, 9.9])]
    records += [rec("adam_state", "compression", 2, [2.0, 1.5])]  # no DeltaNet twin for seed 2
    study = SimpleNamespace(records=records, round_labels=[label(n) for n in
                            ("delta_net", "decay_state", "error_gated", "adam_state")],
                            columns=["Compress", "Selective Copy"], scale=load_scale("cpu"), tag="at scale `cpu`")
    assert rounds.identical_to_baseline(study) == {"decay_state": ["Compress"]}
    note = rounds.identical_note(study)
    assert "decay_state on Compress." in note and "The sequences of Compress fit in one chunk of 32" in note
    assert "extra seeds" not in note  # the same seeds as DeltaNet
    study.records = records + [rec("delta_net", "compression", 2, [2.0, 4.0])]  # a seed decay_state lacks
    assert rounds.identical_to_baseline(study) == {"decay_state": ["Compress"]}
    assert "DeltaNet's means count seeds 0, 1 and 2; those of decay_state count fewer" in rounds.identical_note(study)
    study.records = [r for r in records if r["label"] != label("decay_state")]
    assert "every row's runs differ" in rounds.identical_note(study)


def test_seed_spread_flags_cells_whose_seeds_disagree():
    from types import SimpleNamespace

    def run(name, column, setting, seed, acc, lr=1e-3):
        return {"label": label(name), "column": column, "setting": setting, "seed": seed, "lr": lr, "wd": 0.1,
                "test_acc": acc}

    runs = pd.DataFrame([
        run("delta_net", "Context Recall", "vs64", 0, 0.20), run("delta_net", "Context Recall", "vs64", 1, 0.81),
        run("delta_net", "Context Recall", "vs64", 2, 0.99),
        run("delta_net", "Context Recall", "baseline", 0, 1.0), run("delta_net", "Context Recall", "baseline", 1, 0.99),
        # the best lr decides a seed's score: seed 1's 0.10 at the other lr is not its score
        run("decay_state", "Memorize", "baseline", 0, 0.50), run("decay_state", "Memorize", "baseline", 1, 0.55),
        run("decay_state", "Memorize", "baseline", 1, 0.10, lr=1e-4),
        run("error_gated", "Memorize", "baseline", 0, 0.90),  # one seed: no spread to measure
        run("error_gated", "Compress", "baseline", 0, 0.10), run("error_gated", "Compress", "baseline", 1, 0.40),
    ])
    labels = [label(n) for n in ("delta_net", "decay_state", "error_gated")]
    study = SimpleNamespace(runs=runs, round_labels=labels, tag="at scale `cpu`")
    table = rounds.seed_spread(study)
    assert list(zip(table["row"], table["task"], table["setting"])) == [
        ("error_gated", "Compress", "baseline"), ("delta_net", "Context Recall", "vs64")]
    assert table["accuracy per seed"].tolist() == ["0.100, 0.400", "0.200, 0.810, 0.990"]
    assert table["range"].tolist() == pytest.approx([0.3, 0.79])
    note = rounds.seed_spread_note(study)
    assert "2 of the 4 (row, task, setting) cells" in note and "Compress (1) and Context Recall (1)" in note
    assert rounds.seed_spread(study, min_range=0.8).empty
    assert "agree within 0.8" in rounds.seed_spread_note(study, min_range=0.8)
    study.runs = runs[runs["seed"] == 0]
    assert "not measured" in rounds.seed_spread_note(study) and rounds.seed_spread(study).empty


def test_join_words():
    from deltalab.narrative import join_words

    assert [join_words(x) for x in ([], ["a"], ["a", "b"], ["a", "b", "c"])] == ["", "a", "a and b", "a, b and c"]


def test_seeds_per_variant_follow_the_scale():
    from dataclasses import replace

    from deltalab.params import load_scale

    sc = replace(load_scale("smoke"), seeds=(0,), baseline_seeds=(0, 1, 2), seeded_variants=("topk_error",))
    assert sc.seeds_for("delta_net") == sc.seeds_for("gated_delta_net") == sc.seeds_for("topk_error") == (0, 1, 2)
    assert sc.seeds_for("rmsprop_state") == (0,)
    assert sc.seeds_for("rmsprop_state", ("rmsprop_state",)) == (0, 1, 2)
    assert replace(sc, baseline_seeds=()).seeds_for("delta_net") == (0,)
    cpu = load_scale("cpu")  # the proposals get the baselines' seeds; every named variant is a registered one
    assert set(rounds.proposals().values()) <= set(cpu.seeded_variants) <= set(rounds.VARIANTS)

# --- nbclean ----------------------------------------------------------------------------------------------

def test_nbclean(tmp_path):
    root = str(REPO_ROOT)
    nb = new_notebook(cells=[
        new_code_cell("x", outputs=[
            new_output("stream", name="stderr", text="grid:  10%|#  | 1/9\rgrid: 100%|###| 9/9\ndone\n"),
            new_output("execute_result", data={"image/png": "iVBORw0KGgo=",
                                                "text/plain": "<IPython.core.display.Image object>"}, execution_count=1),
            new_output("display_data", data={"text/markdown": f"figure at {root}/outputs/x.png",
                                              "text/plain": f"<IPython.core.display.Markdown object>"}),
            new_output("stream", name="stderr", text="\r  0%|   |\r"),
        ]),
        new_code_cell(f"round_file = '{root}/params/rounds/round_1.yaml'", id="3199b59e",
                      metadata={"tags": ["injected-parameters"]}),
    ])
    nb.metadata["papermill"] = {"start_time": "2025-01-01T00:00:00", "end_time": "2025-01-01T00:01:00",
                                "duration": 60.0, "input_path": f"{root}/notebooks/round.ipynb", "parameters": {}}
    nb.cells[0].metadata["execution"] = {"iopub.execute_input": "2025-01-01T00:00:01"}
    nb.cells[0].metadata["papermill"] = {"start_time": "a", "end_time": "b", "duration": 1.0, "status": "completed"}
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    nbclean.clean(path)
    text = path.read_text()
    out = nbformat.read(path, as_version=4)
    for gone in ("start_time", "end_time", "duration", "iopub", "<IPython.core.display.Image object>", root, "\\r"):
        assert gone not in text, gone
    outputs = out.cells[0].outputs
    assert outputs[0]["text"] == "grid: 100%|###| 9/9\ndone\n"
    assert list(outputs[1]["data"]) == ["image/png"]
    assert outputs[2]["data"]["text/markdown"] == "figure at ./outputs/x.png"
    assert len(outputs) == 3  # the stream that was only progress residue is gone
    assert out.metadata["papermill"]["input_path"] == "./notebooks/round.ipynb"
    assert out.cells[0].metadata["papermill"] == {"status": "completed"}
    assert out.cells[1].id == "injected-parameters"  # papermill's random id, made stable
    assert out.cells[1].source == "round_file = './params/rounds/round_1.yaml'"
