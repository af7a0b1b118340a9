"""The analysis rounds: their params files (claims, margins, translations), the seed tables, nbclean.
The claim checker and the rest of the analysis layer are tested in test_analysis.py."""
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from deltalab.publish import nbclean
from deltalab import tasks as T
from deltalab.analysis import study
from deltalab.params import CLAIM_KINDS, THRESHOLD_KINDS, Claim, available_rounds, load_round
from deltalab.runtime import REPO_ROOT
from deltalab.variants import VARIANTS

# The seed documents in chronological order: document, rows in its table (params/seed_tables/<stem>.csv), proposal.
# Round 6 has no table of its own: it re-uses the latest (000) and its rows are the seeds' next steps, their parents
# and the baselines.
EXPECTED = {
    1: ("003_9826a221f536bfd8.txt", 8, "rmsprop_state"),
    2: ("004_477b876134327047.txt", 15, "topk_error"),
    3: ("001_9e165c1cc01685c8.txt", 22, "l2_norm_error"),
    4: ("002_017d9b558cdb9257.txt", 24, "two_stage_error"),
    5: ("000_6ad374f8df70496e.txt", 25, "current_key_error"),
    6: ("000_6ad374f8df70496e.txt", 17, "current_key_error_local_softmax"),
}
ROUNDS = [load_round(f"round_{n}") for n in EXPECTED]


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
    for c in rnd.claims + rnd.success_criteria:  # every MAD-scale number says what it means at another scale
        if c.kind in THRESHOLD_KINDS:
            assert c.translation is not None and c.translation.text, c.text
        if c.kind == "no_worse" or (c.translation and c.translation.kind == "no_worse"):
            assert (c.translation or c).margin == 0.02, c.text


def test_round_6_claims_compare_rows_at_the_same_scale_and_name_their_source():
    rnd = ROUNDS[-1]
    assert rnd.number == 6 and rnd.conclusion and study.concluding_round() == 6
    for c in rnd.claims + rnd.success_criteria:
        assert c.kind in ("beats", "lags", "no_worse") and c.threshold is None, c.text  # no MAD-scale numbers
        assert c.source and ("seed 00" in c.source or "FINDINGS" in c.source or "study" in c.source), c.text
        assert (c.margin is not None) == (c.kind == "no_worse"), c.text
    new = set(rnd.rows) - {v for r in ROUNDS[:-1] for v in r.rows}  # round 6's new rows, all of them registered
    assert new == {"topk_error_r0125", "topk_error_r05", "topk_error_decay", "topk_error_rope",
                   "two_stage_error_full", "current_key_error_local_softmax", "uniform_average", "sharp_softmax"}
    assert {"topk_error", "decay_state", "rope_qk", "two_stage_error", "current_key_error", "local_softmax",
            "softmax_attention", "cosine_softmax"} <= set(rnd.variants)  # their parents


def test_exactly_one_round_concludes(monkeypatch):
    from dataclasses import replace

    from deltalab import params

    real = params.load_round
    both = lambda name: replace(real(name), conclusion=True) if name in ("round_5", "round_6") else real(name)
    monkeypatch.setattr(study, "load_round", both)
    with pytest.raises(ValueError, match="exactly one round"):
        study.concluding_round()


@pytest.mark.parametrize("rnd", [r for r in ROUNDS if r.number <= 5], ids=lambda r: f"round_{r.number}")
def test_seed_table_parses_and_matches_the_round(rnd):
    table = study.seed_table(rnd.seed_document)
    assert len(table) == EXPECTED[rnd.number][1]
    assert list(table.columns) == T.COLUMNS
    assert table.notna().all().all() and ((table >= 0) & (table <= 1)).all().all()
    assert list(table.index) == list(rnd.variants)  # the short names, as the round files write them


def test_missing_seed_table_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match=r"no_such_document\.csv does not exist.*003_9826a221f536bfd8\.txt"):
        study.seed_table("no_such_document.txt")


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

def test_claim_format_margin_and_translation():
    with pytest.raises(ValueError, match="needs margin"):
        Claim(text="x", kind="no_worse", task="Compress", variant="delta_net", other="gated_delta_net")
    with pytest.raises(ValueError, match="margin is for kind 'no_worse'"):
        Claim(text="x", kind="no_worse", task="Compress", variant="delta_net", other="gated_delta_net", margin=-0.1)
    with pytest.raises(ValueError, match="margin is for kind 'no_worse'"):
        Claim(text="x", kind="beats", task="Compress", variant="delta_net", other="gated_delta_net", margin=0.02)
    sourced = Claim(text="x above 0.32", kind="above", task="Fuzzy Recall", variant="topk_error", threshold=0.32,
                    source="seed 004", translation={"kind": "beats", "other": "gated_delta_net", "why": "w"})
    assert sourced.translation.source == "seed 004"  # a translation keeps the claim's source
    c = Claim(text="x above 0.32", kind="above", task="Fuzzy Recall", variant="topk_error", threshold=0.32,
              translation={"kind": "beats", "other": "gated_delta_net", "why": "next to Gated DeltaNet's 0.31"})
    t = c.translation
    assert isinstance(t, Claim) and t.kind == "beats" and t.variant == "topk_error" and t.task == "Fuzzy Recall"
    assert t.text == "next to Gated DeltaNet's 0.31" and t.translation is None
    ceiling = Claim(text="solved", kind="saturated", task="Noisy Recall", threshold=0.99, fraction=0.8,
                    translation={"setting": "baseline", "why": "a ceiling"})
    assert ceiling.translation.kind == "saturated" and ceiling.translation.setting == "baseline"
    assert ceiling.translation.fraction == 0.8 and ceiling.translation.threshold == 0.99
    with pytest.raises(ValueError, match="needs `why`"):
        Claim(text="x", kind="above", task="Compress", variant="delta_net", threshold=0.4, translation={"kind": "best"})
    with pytest.raises(ValueError, match="unknown key"):
        Claim(text="x", kind="above", task="Compress", variant="delta_net", threshold=0.4,
              translation={"why": "w", "colour": "blue"})
    with pytest.raises(ValueError, match="needs margin"):  # a translation is checked like any claim
        Claim(text="x", kind="at_least", task="Compress", variant="delta_net", threshold=0.4,
              translation={"why": "w", "kind": "no_worse", "other": "gated_delta_net"})
    with pytest.raises(ValueError, match="only a threshold kind"):
        Claim(text="x", kind="beats", task="Compress", variant="delta_net", other="gated_delta_net",
              translation={"why": "w"})


def test_docs_describe_every_claim_kind_and_field():
    import dataclasses

    text = (REPO_ROOT / "docs" / "claims.md").read_text()
    for kind in CLAIM_KINDS:
        assert f"`{kind}`" in text, kind
    for f in dataclasses.fields(Claim):
        assert f"`{f.name}`" in text, f.name
    assert "`why`" in text


def test_seeds_per_variant_follow_the_scale():
    from dataclasses import replace

    from deltalab.params import load_scale

    sc = replace(load_scale("smoke"), seeds=(0,), baseline_seeds=(0, 1, 2), seeded_variants=("topk_error",))
    assert sc.seeds_for("delta_net") == sc.seeds_for("gated_delta_net") == sc.seeds_for("topk_error") == (0, 1, 2)
    assert sc.seeds_for("rmsprop_state") == (0,)
    assert sc.seeds_for("rmsprop_state", ("rmsprop_state",)) == (0, 1, 2)
    assert replace(sc, baseline_seeds=()).seeds_for("delta_net") == (0,)
    for name in ("cpu", "cpu-v1"):  # the proposals get the baselines' seeds; every named variant is registered
        sc = load_scale(name)
        assert set(sc.seeded_variants) <= set(sc.rows()) <= set(VARIANTS)
        assert all(sc.seeds_for(p) == sc.seeds_for("delta_net") for p in study.proposals().values() if p in sc.rows())
    assert load_scale("cpu").seeds == (0, 1, 2, 3) and load_scale("cpu").rows() == list(VARIANTS)

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


def test_a_round_refuses_rows_its_scale_does_not_cover():
    from deltalab.analysis.study import round_rows
    from deltalab.params import load_scale

    with pytest.raises(ValueError, match="uniform_average.*not part of scale 'cpu-v1'"):
        round_rows(load_round("round_6"), load_scale("cpu-v1"))
