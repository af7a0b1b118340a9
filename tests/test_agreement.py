"""The proxy's agreement with the full protocol (deltalab.analysis.agreement) on hand-made frames."""
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from deltalab.analysis import agreement as A
from deltalab.analysis.inert import learning

ROWS = ["delta_net", "gated_delta_net", "rmsprop_state", "topk_error", "softmax_attention", "cosine_softmax",
        "layernorm_qk", "error_gated"]


def _scores(values: dict[str, dict[str, list[float]]]) -> pd.DataFrame:
    """column → row → per-seed scores, as the study's long frame."""
    out = [dict(variant=r, column=c, setting="all", seed=s, acc=a)
           for c, rows in values.items() for r, accs in rows.items() for s, a in enumerate(accs)]
    return pd.DataFrame(out)


def _seed(column: str, values: list[float]) -> pd.DataFrame:
    return pd.DataFrame({column: values}, index=ROWS)


def test_a_proxy_that_ranks_as_the_table_agrees_perfectly_and_held_out_excludes_the_calibration_rows():
    truth = np.linspace(0.3, 0.8, len(ROWS))
    scores = _scores({"Memorize": {r: [t / 2, t / 2 + 0.001] for r, t in zip(ROWS, truth)}})
    out = A.agreement(scores, _seed("Memorize", list(truth)), calibration=ROWS[:3], noise_sd=0.01,
                      targets={"memorization": 0.85})
    all_rows = out[out["rows"] == "all"].iloc[0]
    held = out[out["rows"] == "held-out"].iloc[0]
    assert (all_rows["n"], held["n"]) == (len(ROWS), len(ROWS) - 3)
    assert all_rows["value"] == pytest.approx(1.0) and held["value"] == pytest.approx(1.0)
    assert held["target"] == 0.85 and math.isnan(all_rows["target"])
    untargeted = A.agreement(scores, _seed("Memorize", list(truth)), calibration=ROWS[:3], noise_sd=0.01)
    assert untargeted["target"].isna().all()  # a scale that sets no target: none is shown or read
    assert "| Memorize | Spearman ρ |" in A.markdown(untargeted, "x") and "≥" not in A.markdown(untargeted, "x")


def test_how_agreement_judges_a_task_and_its_target_come_from_the_registry_and_the_scale_file():
    from deltalab.params import load_scale
    from deltalab.tasks import TASKS

    assert set(A.RANKED) == {t.column for t in TASKS.values() if t.agreement == "ranked"}
    assert set(A.RANKED) | set(A.CLASSIFIED) == {t.column for t in TASKS.values()}
    # issue #31's floors, set in the scale files of cpu (and of cpu-v2, which was cpu then)
    floors = {"Memorize": 0.85, "Selective Copy": 0.7, "Fuzzy Recall": 0.6, "Compress": 0.5, "Context Recall": 0.9,
              "Noisy Recall": 0.9}
    for name in ("cpu", "cpu-v2"):
        assert A.column_targets(load_scale(name).agreement_targets) == floors


def test_a_reversed_proxy_has_negative_rho_and_an_interval_around_it():
    truth = np.linspace(0.3, 0.8, len(ROWS))
    scores = _scores({"Compress": {r: [1 - t] for r, t in zip(ROWS, truth)}})
    row = A.agreement(scores, _seed("Compress", list(truth)), calibration=[], noise_sd=0.01).iloc[0]
    assert row["value"] == pytest.approx(-1.0) and row["low"] <= row["value"] <= row["high"]


def test_the_ceiling_falls_with_the_tables_noise_and_ties_cap_it():
    truth = pd.Series(np.linspace(0.30, 0.45, 12))
    assert A.ceiling(truth, 0.001) > A.ceiling(truth, 0.02) > A.ceiling(truth, 0.1)
    assert A.ceiling(truth, 0.001) == pytest.approx(1.0, abs=0.01)
    tied = A.tied_truth(pd.Series([0.40, 0.41, 0.39, 0.70], index=["a", "b", "c", "d"]), {"a", "b", "c"})
    assert list(tied.round(3)) == [0.4, 0.4, 0.4, 0.7]


def test_own_reliability_is_one_for_a_scale_that_repeats_its_ranking_and_low_for_seed_noise():
    truth = np.linspace(0.3, 0.8, len(ROWS))
    steady = {r: {s: t + 0.001 * s for s in range(4)} for r, t in zip(ROWS, truth)}
    assert A.reliability(steady, ROWS) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    noise = {f"row{i}": {s: float(rng.normal()) for s in range(4)} for i in range(200)}
    assert abs(A.reliability(noise, list(noise))) < 0.3
    # halves of the seeds every row has; fewer than two seeds in common: nothing to split
    assert A.reliability({**steady, "delta_net": {0: 0.3, 1: 0.301, 7: 0.9}}, ROWS) == pytest.approx(1.0)
    assert math.isnan(A.reliability({r: {0: t} for r, t in zip(ROWS, truth)}, ROWS))
    assert math.isnan(A.reliability(steady, ROWS[:2]))
    # two seeds that order the rows oppositely: ρ = −1 between the halves, not stepped up past it
    flipped = {r: {0: t, 1: -t} for r, t in zip(ROWS, truth)}
    assert A.reliability(flipped, ROWS) == pytest.approx(-1.0)
    mostly = {**flipped, ROWS[0]: {0: truth[0], 1: -truth[2]}, ROWS[2]: {0: truth[2], 1: -truth[0]}}
    assert -1.0 < A.reliability(mostly, ROWS) < 0


def test_a_target_is_read_on_the_point_estimate_and_an_interval_that_holds_it_is_said():
    row = dict(measure="spearman", value=0.4, low=-0.1, high=0.8, target=0.6)
    assert A.target_reading(row) == "not met; the interval holds the target"
    assert A.target_reading({**row, "high": 0.5}) == "not met"
    assert A.target_reading({**row, "value": 0.7}) == "met; the interval holds the target"
    assert A.target_reading({**row, "value": 0.9, "low": 0.7, "high": 0.95}) == "met"
    assert A.target_reading(dict(measure="classified alike", value=0.8, low=math.nan, high=math.nan,
                                 target=0.9)) == "not met"


def test_the_note_calls_a_reliable_scale_that_misses_its_target_biased_not_noisy():
    from deltalab.analysis.sentences import agreement_note
    from deltalab.params import load_scale

    truth = np.linspace(0.3, 0.8, len(ROWS))
    reliable = _scores({"Memorize": {r: [1 - t, 1 - t + 0.001] for r, t in zip(ROWS, truth)}})
    target = {"memorization": 0.85}
    out = A.agreement(reliable, _seed("Memorize", list(truth)), calibration=ROWS[:3], noise_sd=0.01, targets=target)
    note = agreement_note(out, load_scale("smoke"), "000")
    assert "own reliability 1.00" in note and "On Memorize the scale reproduces its own ranking" in note
    ranked = _scores({"Memorize": {r: [t, t + 0.001] for r, t in zip(ROWS, truth)}})
    out = A.agreement(ranked, _seed("Memorize", list(truth)), calibration=ROWS[:3], noise_sd=0.01, targets=target)
    assert "reproduces its own ranking" not in agreement_note(out, load_scale("smoke"), "000")


def test_best_of_sweeps_only_the_tasks_two_scales_train_alike_but_for_the_learning_rate():
    from dataclasses import replace

    from deltalab.params import load_scale

    smoke = load_scale("smoke")
    tasks = {t: smoke.tasks[t] for t in ("memorization", "compression", "selective-copying", "fuzzy-in-context-recall")}
    one = replace(smoke, name="one", tasks=tasks)
    other = replace(smoke, name="other", lrs=(0.003,), tasks={
        "memorization": tasks["memorization"],  # alike but for the scale's lr: a sweep
        "compression": replace(tasks["compression"], epochs=2),  # another budget
        "selective-copying": replace(tasks["selective-copying"], lrs=(0.001,)),  # the same lr as `one`'s
    })
    columns = ["Memorize", "Compress", "Selective Copy"]
    here = _scores({c: {"delta_net": [0.5, 0.2], "topk_error": [0.4, 0.1]} for c in columns})
    there = _scores({c: {"delta_net": [0.3, 0.6], "topk_error": [0.9]} for c in columns})
    sweep, left_out = A.best_of(A.StoredRuns(one, [], here), A.StoredRuns(other, [], there))
    assert left_out == {"Compress": "other trains it on another budget",
                        "Selective Copy": "other trains it at the same learning rate and weight decay",
                        "Fuzzy Recall": "other does not train it"}
    best = sweep["best of both"].scores.set_index(["variant", "seed"])["acc"].to_dict()
    assert best == {("delta_net", 0): 0.5, ("delta_net", 1): 0.6, ("topk_error", 0): 0.9}  # topk_error's seed 1: one side
    assert set(sweep) == {"one", "other", "best of both"}
    assert sweep["other"].scores["acc"].tolist() == [0.3, 0.6, 0.9] and sweep["one"].scale is one


def test_recall_is_classified_by_the_drop_from_delta_net_not_by_rank():
    # seed table: rmsprop_state fails (< 0.95), the rest learn; here rmsprop_state is clearly below DeltaNet and
    # topk_error is too (a disagreement), softmax_attention is 0.02 below on every seed (within the 0.05 margin)
    seed = _seed("Context Recall", [0.999, 0.999, 0.08, 0.99, 0.98, 0.99, 0.99, 0.99])
    here = {r: [1.0, 1.0, 0.999, 1.0] for r in ROWS}
    here["rmsprop_state"] = [0.05, 0.06, 0.04, 0.05]
    here["topk_error"] = [0.80, 0.82, 0.79, 0.81]
    here["softmax_attention"] = [0.98, 0.98, 0.979, 0.98]
    out = A.agreement(_scores({"Context Recall": here}), seed, calibration=[], noise_sd=0.01)
    row = out[out["rows"] == "all"].iloc[0]
    assert row["measure"] == "classified alike"
    assert row["value"] == pytest.approx(7 / 8) and row["disagree"] == "topk_error"


def test_one_seed_classifies_on_the_point_difference():
    seed = _seed("Noisy Recall", [0.999, 0.999, 0.03, 0.99, 0.98, 0.99, 0.99, 0.99])
    here = {r: [1.0] for r in ROWS}
    here["rmsprop_state"] = [0.03]
    frac, differ = A.classify({r: dict(enumerate(v)) for r, v in here.items()}, seed["Noisy Recall"])
    assert frac == 1.0 and differ == ()


def test_a_classification_is_set_beside_the_constant_rule_and_chance_corrected():
    # seed table: rmsprop_state and topk_error fail, 6 learn (the constant rule "every row learns": 6/8); the scale
    # finds rmsprop_state only: 7/8 alike, p_e = 7/8 · 6/8 + 1/8 · 2/8 = 44/64, κ = (56/64 − 44/64) / (20/64) = 0.6
    seed = _seed("Context Recall", [0.999, 0.999, 0.08, 0.30, 0.98, 0.99, 0.99, 0.99])
    here = {r: [1.0, 1.0, 0.999, 1.0] for r in ROWS}
    here["rmsprop_state"] = [0.05, 0.06, 0.04, 0.05]
    row = A.agreement(_scores({"Context Recall": here}), seed, calibration=[], noise_sd=0.01).iloc[0]
    assert row["value"] == pytest.approx(7 / 8) and row["constant"] == pytest.approx(6 / 8)
    assert row["constant_rule"] == "every row learns" and row["kappa"] == pytest.approx(0.6)
    assert row["kappa_low"] <= row["kappa"] <= row["kappa_high"] and (row["failing"], row["failing_found"]) == (2, 1)
    text = A.kappa_text(row)
    assert text.startswith('the constant rule "every row learns" 75%; κ 0.60 [')
    assert text.endswith("resting on the seed table's 2 failing rows (1 found)")
    # the constant rule itself: alike on every learning row, κ = 0
    assert A.kappa([True] * 8, [True] * 6 + [False] * 2) == pytest.approx(0.0)
    assert A.kappa([True, False, True, False], [True, False, True, False]) == pytest.approx(1.0)
    assert A.kappa([True, False], [False, True]) == pytest.approx(-1.0)


def test_kappa_is_said_undefined_when_every_row_is_in_one_class():
    seed = _seed("Noisy Recall", [0.999] * len(ROWS))
    row = A.agreement(_scores({"Noisy Recall": {r: [1.0, 1.0, 1.0] for r in ROWS}}), seed, calibration=[],
                      noise_sd=0.01).iloc[0]
    assert row["value"] == 1.0 and row["constant"] == 1.0 and math.isnan(row["kappa"])
    text = A.kappa_text(row)
    assert text == 'the constant rule "every row learns" 100%; κ undefined: both sides put every row in one class'
    assert "nan" not in A.markdown(pd.DataFrame([row]), "x").lower()
    # one failing row: κ is defined, its resamples without that row are not (left out of the interval)
    k, low, high = A.kappa_interval([True] * 14 + [False], [True] * 14 + [False])
    assert (k, low, high) == (1.0, 1.0, 1.0)
    assert math.isnan(A.kappa_interval([True] * 5, [True] * 5)[1])


def test_readme_states_the_agreement_the_committed_runs_give():
    """README's agreement table is generated (python -m deltalab agreement --readme), never typed: it must be what
    the committed store of the default scale gives now."""
    from deltalab.runtime import REPO_ROOT
    from deltalab.store import Store

    readme = (REPO_ROOT / "README.md").read_text()
    start, end = readme.find(A.README_START), readme.find(A.README_END)
    assert 0 <= start < end, "README.md has no agreement block"
    shown = readme[start:end + len(A.README_END)]
    scale = shown.split("| task (`", 1)[1].split("`", 1)[0]
    runs_store = Store(REPO_ROOT / "outputs" / "results")
    runs = A.stored_runs(scale, store=runs_store)
    expected = A.readme_block(A.scale_agreement(runs), scale, A.baselines_markdown(*A.scale_baselines(runs), scale),
                              A.versions_markdown(A.scale_versions(runs, store=runs_store), scale))
    assert shown == expected, "README's agreement table is stale: run python -m deltalab agreement --readme"


def test_replacing_the_readme_block_needs_the_markers():
    with pytest.raises(ValueError, match="README.md: no agreement block"):
        A.replace_readme_block("no block here", "x")
    text = f"before\n{A.README_START}\nold\n{A.README_END}\nafter"
    assert A.replace_readme_block(text, "NEW") == "before\nNEW\nafter"


def _curves(row: str, column: str, per_seed: list[list[float]]) -> pd.DataFrame:
    """A baseline's per-epoch curves on one setting, one list of accuracies per seed."""
    return pd.DataFrame([dict(variant=row, column=column, setting="baseline", seed=s, epoch=e + 1, acc=a,
                              evaluated=True) for s, accs in enumerate(per_seed) for e, a in enumerate(accs)])


def test_a_baseline_has_finished_when_it_plateaus_peaks_early_or_stops_and_not_when_flat_or_climbing():
    frame = pd.concat([
        _curves("delta_net", "Fuzzy Recall", [[0.1, 0.3, 0.5, 0.505], [0.1, 0.3, 0.5, 0.509]]),  # plateau
        _curves("delta_net", "Compress", [[0.1, 0.4, 0.5, 0.45], [0.1, 0.4, 0.5, 0.46]]),  # peak before the last
        _curves("delta_net", "Noisy Recall", [[0.90, 1.0, 1.0], [0.93, 0.999, 0.999]]),  # early-stopped, carried
        _curves("gated_delta_net", "Noisy Recall", [[0.91, 0.998], [0.98, 0.9985]]),  # stopped just short: at 0.998
        _curves("delta_net", "Selective Copy", [[0.1, 0.3, 0.5, 0.6], [0.1, 0.3, 0.5, 0.62]]),  # still climbing
        _curves("gated_delta_net", "Fuzzy Recall", [[0.08, 0.08, 0.085, 0.085], [0.08, 0.081, 0.08, 0.085]]),  # flat
        _curves("softmax_attention", "Fuzzy Recall", [[0.1, 0.2, 0.3, 0.4]]),  # not a baseline: not judged
    ])
    out = A.baselines(learning(frame, {}), early_stop=0.999).set_index(["row", "column"])
    assert list(out["finished"]) == [True, True, True, False, False, True]
    assert out.loc[("gated_delta_net", "Noisy Recall"), "last_gain"] > 0.01  # finished though it gained more
    assert not out.loc[("gated_delta_net", "Fuzzy Recall"), "learned"]
    assert out.loc[("delta_net", "Selective Copy"), "last_gain"] == pytest.approx(0.11)
    text = A.baselines_markdown(out.reset_index(), A.memorize_order(_scores({"Memorize": {
        "delta_net": [0.3, 0.4, 0.35, 0.3], "gated_delta_net": [0.5, 0.45, 0.5, 0.29]}})), "x")
    assert "2 of 6 baseline × setting cells are not finished" in text
    assert "gated_delta_net has not begun Fuzzy Recall baseline" in text and "Selective Copy" in text
    assert "Gated DeltaNet is above DeltaNet on Memorize (+0.098 on average, ahead on 3 of 4 seeds" in text


def test_the_cli_reads_a_sweep_off_two_committed_scales_and_refuses_it_for_readme(capsys):
    """cpu and cpu-pilot train compression alike but for the learning rate (1e-3, 3e-3); fuzzy recall on another
    budget (5 and 8 epochs)."""
    from deltalab.__main__ import main

    assert main(["agreement", "--scale", "cpu", "--best-of", "cpu-pilot"]) == 0
    out = capsys.readouterr().out
    assert "Fuzzy Recall: left out (cpu-pilot trains it on another budget)" in out
    assert "| task (`best of both`)" in out and "| Compress |" in out and "| Fuzzy Recall |" not in out
    assert main(["agreement", "--scale", "cpu", "--best-of", "cpu-pilot", "--readme"]) == 2
    assert "--best-of" in capsys.readouterr().err


def _stored(name: str, scores: pd.DataFrame, calibration=()) -> A.StoredRuns:
    from types import SimpleNamespace

    return A.StoredRuns(SimpleNamespace(name=name, calibration_rows=tuple(calibration),
                                        agreement_targets={"memorization": 0.85}), [], scores)


def test_a_recalibration_is_judged_on_the_new_scales_held_out_rows_paired_and_holm_adjusted():
    """Against the seed table itself: a version that ranks as the table does, one that ranks it backwards, and
    one that repeats the scale. The comparison holds out the new scale's calibration rows from every version."""
    seed = A._seed_table()
    ranked = [c for c in A.RANKED if c in seed.columns]

    def scale(sign: float) -> pd.DataFrame:
        return _scores({c: {r: [sign * float(seed.loc[r, c])] * 2 for r in seed.index} for c in ranked})

    calibration = list(seed.index[:10])
    new = _stored("new", scale(1.0), calibration)
    out = A.versions(new, [_stored("new-v1", scale(-1.0)), _stored("new-v2", scale(1.0))])
    assert out.attrs["family"] == 2 * len(ranked)
    assert set(out["n"]) == {len(seed.index) - 10} and set(out["seeds"]) == {2}
    old = out[out["version"] == "new-v1"]
    assert np.allclose(old["diff"], 2.0) and set(old["verdict"]) == {"better"}
    same = out[out["version"] == "new-v2"]
    assert (same["diff"] == 0).all() and set(same["verdict"]) == {"not established"}
    assert out[out["version"] == "new"]["diff"].isna().all()
    text = A.versions_markdown(out, "new")
    assert "`new-v1` (2 seeds) | `new-v2` (2 seeds) | `new` (2 seeds)" in text
    assert "`new` − this: +2.00" in text and f"family of {2 * len(ranked)} comparisons" in text
    assert "Memorize 1.00 at `new-v2` (the target met)" in text  # the first of the tied best
    assert A.versions(new, []).empty and A.versions_markdown(A.versions(new, []), "new") == ""


def test_the_committed_cpu_is_compared_with_its_archived_versions():
    """cpu-v1 is the archived first version of cpu (tools/archive_scale.py names them so)."""
    assert A.archived_versions("cpu")[0] == "cpu-v1" and A.archived_versions("smoke") == []
    runs = A.stored_runs("cpu")
    out = A.scale_versions(runs)
    old = out[(out["version"] == "cpu-v1") & (out["measure"] == "spearman")].set_index("task")
    now = out[out["version"] == "cpu"].set_index("task")
    assert len(old) == 4 and (old["n"] == 15).all()
    assert (old["diff"] - (now.loc[old.index, "value"] - old["value"])).abs().max() < 1e-9


def test_the_pilots_of_cpu_are_read_against_cpu_on_their_rows_and_seeds_with_what_their_budgets_cost():
    """cpu's pilots (issue #31) trained its calibration rows on seed 0: each pilot's agreement is the one its own
    runs give, set beside cpu's on the same rows and seeds; a pilot of the two baselines alone has no ρ but their
    state; a pilot's longer budget costs the grid more than cpu's own."""
    assert A.pilot_scales("cpu") == ["cpu-pilot", "cpu-pilot-2", "cpu-pilot-3", "cpu-pilot-4"]
    assert A.pilot_scales("smoke") == []
    runs = A.stored_runs("cpu")
    out = A.pilots(runs, ["cpu-pilot", "cpu-pilot-2", "cpu-pilot-4"]).set_index(["pilot", "task"])
    assert out["calibration"].all() and (out["seeds"] == 1).all()
    own = A.scale_agreement(A.stored_runs("cpu-pilot"), calibration=()).set_index("task")
    assert out.loc[("cpu-pilot", "Compress"), "value"] == own.loc["Compress", "value"]
    pilot_rows = set(A.stored_runs("cpu-pilot").scores["variant"])
    same = runs.scores[runs.scores["variant"].isin(pilot_rows) & (runs.scores["seed"] == 0)]
    theirs = A.scale_agreement(replace(runs, scores=same), calibration=()).set_index("task")
    assert out.loc[("cpu-pilot", "Memorize"), "scale_value"] == theirs.loc["Memorize", "value"]
    two = out.loc[("cpu-pilot-4", "Fuzzy Recall")]
    assert two["rows"] == 2 and math.isnan(two["value"]) and "gated_delta_net" in two["baselines"]
    assert two["hours"] > 3 * two["scale_hours"]  # 4× the examples (MAD's 12,800) at two learning rates: 8× the steps
    longer = out.loc[("cpu-pilot-2", "Selective Copy")]
    assert longer["hours"] > 1.2 * longer["scale_hours"]  # 10 epochs of 3,200 examples: more than cpu's budget
    assert longer["grid_hours"] - longer["hours"] == pytest.approx(
        out.loc[("cpu-pilot", "Compress"), "grid_hours"] - out.loc[("cpu-pilot", "Compress"), "hours"]
        + out.loc[("cpu-pilot", "Compress"), "scale_hours"] - longer["scale_hours"])  # one whole grid, one task swapped
    text = A.pilots_markdown(out.reset_index(), "cpu")
    assert "| `cpu-pilot-4` | Fuzzy Recall | 12,800 × 5 epochs, lr 0.001, 0.003 (best of) (" in text
    assert "| 2 × 1 | n/a | n/a |" in text and f"cap: {A.COST_CAP} process-hours" in text
    assert A.pilots_markdown(A.pilots(runs, []), "cpu") == ""
    gone = ("delta_net", "selective-copying", 0)
    lacking = replace(runs, records=[r for r in runs.records
                                     if (r["spec"]["variant"], r["spec"]["task"], r["spec"]["seed"]) != gone])
    cut = A.pilots(lacking, ["cpu-pilot-2"]).iloc[0]  # no cost ratio without cpu's run of every pilot row and seed
    assert math.isnan(cut["hours"]) and math.isnan(cut["grid_hours"]) and not math.isnan(cut["scale_hours"])
