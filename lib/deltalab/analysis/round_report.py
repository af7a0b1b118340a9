"""What round.ipynb shows, built once from a study (``study.read_round``): a ``RoundReport`` of named tables,
sentences, figures and verdicts, as ``report.variant_report`` is run_variant.ipynb's. The notebook shows one field
per display; every statistic is computed here or in ``tables``/``claims``/``stats``, and the sentences are written
from the results.

Keys (a key that does not apply to the round is absent, e.g. the agreement and the ranking outside the concluding
round):

- tables: ``means`` (the round's table, marked, with seeds per row), ``intervals``, ``paired``, ``per setting``,
  ``signal``, ``seed spread``, ``reported``, ``difference``, ``gap``, ``rank correlation``; concluding round:
  ``agreement``, ``ranking``, ``proposals``
- sentences: ``training``, ``method``, ``inert``, ``null controls``, ``learning``, ``screen``, ``ceiling``,
  ``seed spread``, ``best per task``, ``against reference``, ``delta net lags``, ``softmax``, ``controls``,
  ``gated``, ``seed noise``, ``family``, ``claims``, ``criteria``, ``proposal``, ``next steps``, ``agreement``,
  ``agreement legend``, ``baselines``, ``versions``, ``pilots``, ``conclusion``, ``cost``
- figures: ``figures.for_round``'s (``heatmap``, ``settings``, ``reproduced``, ``curves``, and where they apply
  ``gated``, ``all``, ``all_heatmap``, ``cost``)
- verdicts: ``claims``, ``criteria`` (``claims.adjust``: one family, one adjustment)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..params import available_rounds, load_round
from ..store import Store
from . import agreement, claims, cost, figures, inert, sentences, tables
from .study import Study, blind_levels, concluding_round, curves, schedule

AGREEMENT_LEGEND = ("—: does not apply to the row (a target is set on the held-out rows only; ceiling and reliability "
                    "to ranked tasks; the constant rule and κ to classified tasks, κ where both sides use both "
                    "classes).")
SPREAD = 0.3  # a setting's seeds "disagree" when their best runs span this much accuracy or more


@dataclass
class RoundReport:
    number: int
    conclusion: bool  # the concluding round (it trains every registered row and concludes the study)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    sentences: dict[str, str] = field(default_factory=dict)
    figures: dict[str, Path] = field(default_factory=dict)
    verdicts: dict[str, pd.DataFrame] = field(default_factory=dict)
    learning: pd.DataFrame | None = None  # per row and setting: learned within the budget, still climbing


def round_report(study: Study, results_dir: str | Path | None = None, figures_dir: str | Path | None = None,
                 bench_file: str | Path | None = None, archived_scales: str | list[str] | None = None) -> RoundReport:
    """Every table, sentence, figure and verdict of the round notebook, from ``study``. ``figures_dir`` (default:
    beside the store's tables, ``<tables dir>/figures/round_<n>``); ``bench_file``: a ``deltalab bench --json``
    report for the cost figure; ``archived_scales``: the scales whose stored runs the next steps' summary reads."""
    rnd, sc, tag = study.round, study.scale, study.tag
    rows, every_row, columns, scores, cells = study.round_rows, study.rows, study.columns, study.scores, study.inert
    rep = RoundReport(rnd.number, bool(rnd.conclusion))
    T, S = rep.tables, rep.sentences

    S["training"] = sentences.training_note(study.runs, every_row, columns, study.incomplete, tag, rnd.conclusion)
    S["method"] = sentences.method(scores["seed"].nunique())
    S["inert"] = sentences.inert_note(cells, every_row, columns, tag)
    S["null controls"] = sentences.null_control_note(tables.no_op_differences(scores, cells, every_row, columns),
                                                     cells, every_row, columns, tag)
    learning = inert.learning(curves(study.records, every_row, schedule(sc)), study.settings, blind=blind_levels(sc))
    rep.learning = learning
    S["learning"] = sentences.learning_note(learning, every_row, columns, tag)

    means = tables.means(scores, rows, columns)
    T["means"] = tables.marked(means, cells, learning=learning).join(tables.seeds_per_row(scores, rows, columns))
    T["intervals"] = tables.intervals(scores, rows, columns)
    T["paired"] = tables.paired_to(scores, cells, rows, columns, learning=learning)
    S["screen"] = sentences.screen_note(T["paired"], tag)
    T["per setting"] = tables.per_setting(scores, cells, rows, study.settings, learning=learning)
    T["signal"] = tables.shown(tables.signal(scores, cells, every_row, study.settings))
    S["ceiling"] = sentences.ceiling_note(tables.ceiling_settings(scores, study.settings), tag, study.settings)
    spread = tables.seed_spread(scores, rows, min_range=SPREAD)
    S["seed spread"] = sentences.seed_spread_note(spread, tables.cells_with_seeds(scores, rows), tag, SPREAD)
    if len(spread):
        T["seed spread"] = tables.shown(spread)
    reported = tables.reported(study.seed, columns)
    T["reported"] = tables.shown(reported)
    T["difference"] = tables.shown(tables.difference(means, reported, len(columns) == 6))
    T["gap"] = tables.shown(tables.gap(means))
    T["rank correlation"] = tables.shown(tables.rank_correlation(
        tables.means(scores, every_row, columns, len(columns) == 6), reported))

    store = Store(results_dir)
    if rnd.conclusion:
        agreed = agreement.with_seed_table(scores, cells, study.seed, sc.calibration_rows,
                                          targets=sc.agreement_targets)
        S["agreement"] = sentences.agreement_note(agreed, sc, rnd.seed_document)
        T["agreement"] = tables.shown(agreed.set_index(["task", "rows"]), missing="—")
        S["agreement legend"] = AGREEMENT_LEGEND
        finished = agreement.baselines(learning, sc.early_stop)
        S["baselines"] = agreement.baselines_markdown(finished, agreement.memorize_order(scores), sc.name)
        runs = agreement.stored_runs(sc, store=store)
        S["versions"] = (agreement.versions_markdown(agreement.scale_versions(runs, store=store), sc.name)
                         or f"`{sc.name}` has no archived version to compare with.")
        S["pilots"] = (agreement.pilots_markdown(agreement.pilots(runs, store=store), sc.name)
                       or f"`{sc.name}` has no pilot (`{sc.name}-pilot*`) to show.")
    else:
        S["agreement"] = (f"Round {rnd.number} does not conclude the study; round {concluding_round()} measures the "
                          f"agreement of the scale.")

    bench = cost.read_bench(bench_file) if bench_file else None
    out_dir = Path(figures_dir) if figures_dir else store.tables_dir(sc.name) / "figures" / f"round_{rnd.number}"
    rep.figures = figures.for_round(study, out_dir, bench, learning)

    S["best per task"] = "\n\n".join(sentences.best_per_task(
        tables.best_per_task(scores, cells, rows, columns, learning), tag, learned_only=True))
    S["against reference"] = "\n\n".join(sentences.against_reference(
        tables.against_reference(scores, cells, rows, columns, learning=learning), tag))
    S["delta net lags"] = sentences.where_delta_net_lags(tables.delta_net_against_gated(scores, columns, learning), tag)
    S["softmax"] = sentences.softmax_note(rows)
    controls = sentences.controls_note(tables.controls(scores, rows, columns, learning), scores, tag, learning)
    if controls:
        S["controls"] = controls
    baseline_curves = curves(study.records, ["delta_net", "gated_delta_net"], schedule(sc))
    S["gated"] = (sentences.gated_note(tables.gated_lag(scores, study.settings), scores, baseline_curves, tag)
                  or f"{tag}: Gated DeltaNet lags DeltaNet on every seed on no setting.")

    here = claims.SeedEvidence(scores, cells, columns, study.twins, learning, study.settings,
                               claims.every_seed_table(cells, columns))
    there = claims.table_evidence(study.seed, cells, columns)
    seed_rows = set(study.seed.index)
    S["seed noise"] = sentences.seed_noise_note(there.noise)
    claim_table, criteria = claims.adjust([
        claims.claims_table(rnd.claims, here, there, study.table_rows, columns, seed_rows),
        claims.claims_table(rnd.success_criteria, here, there, rows, columns, seed_rows)])
    rep.verdicts = {"claims": claim_table, "criteria": criteria}
    S["family"] = sentences.family_note([claim_table, criteria], tag)
    S["claims"] = sentences.verdicts_markdown(claim_table, tag, "claims")
    S["criteria"] = sentences.verdicts_markdown(criteria, tag, "success criteria")
    S["proposal"] = sentences.proposal_summary(list(criteria["verdict here"]), rnd.proposal, tag,
                                               list(criteria["verdict adjusted"]))
    items = rnd.claims + rnd.success_criteria
    if any(c.step for c in items):  # a round that puts the seeds' next steps to the test answers one per line
        if isinstance(archived_scales, str):
            archived_scales = archived_scales.split(",")
        others = [s.strip() for s in archived_scales or [] if s.strip() and s.strip() != sc.name]
        archived = claims.archived_evidence(rnd, others, results_dir)
        steps = claims.next_steps(items, pd.concat([claim_table, criteria], ignore_index=True), here, archived, rows)
        S["next steps"] = sentences.next_steps_summary(steps, tag)

    if rnd.conclusion:
        ranking = tables.ranking(scores, cells, every_row, columns, learning)
        T["ranking"] = tables.shown(ranking)
        rounds = [load_round(name) for name in available_rounds()]
        family = claims.study_family(rounds, here, columns)
        T["proposals"] = claims.proposals_table(rounds, here, columns, family)
        said = sentences.conclusion(ranking, [r for r in inert.excluded(cells, columns) if r in every_row],
                                    T["proposals"], tag, sc.name, family)
        S["conclusion"] = "\n\n".join(said + sentences.best_per_task(
            tables.best_per_task(scores, cells, every_row, columns, learning), tag, learned_only=True))
    else:
        S["conclusion"] = f"Round {rnd.number} does not conclude the study; round {concluding_round()} does."
    S["cost"] = cost.cost_note(bench, Path(bench_file).name if bench_file else None)
    return rep
