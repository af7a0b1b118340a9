"""The analysis layer: from stored runs to the round notebooks' tables, figures and verdicts, one role per module.

    study.py       the seed tables (params/seed_tables/); a round's rows read from the store (``grid.ensure`` trains
                   them; analysis never imports the grid); per-seed scores (``Study``); learning curves
    inert.py       where a change does not act (runs that are DeltaNet's bit for bit, or two rows' runs each other's),
                   null controls; where a row has not clearly learned a setting within the budget, or is still climbing
    stats.py       paired differences per seed with p-values and sign counts, Holm's adjustment, one row's interval in
                   [0, 1], the seed tables' noise, Spearman's ρ with its bootstrap interval, signal ratio
    claims.py      judging a claim: verdict words, evidence from the study or from a seed table, a round's family
    agreement.py   how well a scale predicts MAD's full protocol (rank agreement with the seed table, held-out rows;
                   the recall classification beside the constant rule and Cohen's κ)
    quoted.py      the figures README, docs/ and the scale files quote, each tied by a marker to the query that
                   measures it, checked against the store
    accuracies.py  the accuracy tables of the stored runs (accuracies_df.csv, accuracies_summary.csv) and the
                   per-seed scores every table is built from
    tables.py      the tables a notebook shows (one path for rows × tasks + Average), and the paired comparisons
                   the sentences word (best per task, against a reference, the controls, ...)
    sentences.py   every sentence of the notebooks, worded from results computed in tables/stats/claims (no
                   statistic is computed in a sentence builder)
    figures.py     the round's figures (drawn by ``deltalab.plots``)
    round_report.py  round.ipynb's report (``RoundReport``: named tables, sentences, figures, verdicts), built once
                   from a study; each notebook cell shows one field
    report.py      run_variant.ipynb's report (one variant against the baselines); the environment file beside an
                   executed notebook
    mechanisms.py  what the model's constants say (softmax inside the chunk is near-uniform)
    cost.py        throughput from a quiet-machine bench report, or no cost figure
    names.py       display names, shared constants, number formats

Functions take the frames they read (a scores frame, the inert cells, a list of rows), not a whole study, so each
can be tested on a hand-made frame. The round file format (claims, margins, translations) is in docs/claims.md.
"""
