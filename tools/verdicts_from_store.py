"""Each round's verdict table computed from a scale's stored runs the way the round notebook computes it, nothing
trained or executed: one JSON record per claim and criterion (round, list, claim, verdict unadjusted and after Holm,
p, the family's number of tests). Diff two outputs to see what a change to the analysis does to the verdicts:

    PYTHONPATH=lib python tools/verdicts_from_store.py cpu > new.json
"""
import json
import sys

import pandas as pd

from deltalab.analysis import claims
from deltalab.analysis.study import assemble, learning_of, seed_table
from deltalab.params import available_rounds, load_round, load_scale
from deltalab.store import Store

scale = sys.argv[1] if len(sys.argv) > 1 else "cpu"
sc = load_scale(scale)
task_list = list(sc.tasks)
store = Store()  # $DELTALAB_RESULTS, else outputs/results
every = sc.rows()
records = store.records(sc, variants=every)
out = []
for name in available_rounds():
    rnd = load_round(name)
    names = list(rnd.rows) + ([v for v in every if v not in rnd.rows] if rnd.conclusion else [])
    recs = [r for r in records if r["spec"]["variant"] in names]
    study = assemble(rnd, sc, task_list, recs, seed_table(rnd.seed_document), names)
    learning = learning_of(study)
    columns, rows = study.columns, study.round_rows
    here = claims.SeedEvidence(study.scores, study.inert, columns, study.twins, learning, study.settings,
                               claims.every_seed_table(study.inert, columns))
    there = claims.table_evidence(study.seed, study.inert, columns)
    seed_rows = set(study.seed.index)
    frames = [claims.claims_table(rnd.claims, here, there, study.table_rows, columns, seed_rows),
              claims.claims_table(rnd.success_criteria, here, there, rows, columns, seed_rows)]
    ct, cr = claims.adjust(frames)[:2]
    for which, f in (("claim", ct), ("criterion", cr)):
        for _, r in f.iterrows():
            out.append({"round": rnd.number, "list": which, "claim": r["claim"], "verdict": r["verdict here"],
                        "adjusted": r["verdict adjusted"], "p": None if pd.isna(r["p"]) else round(float(r["p"]), 4),
                        "family": f.attrs["family"]})
json.dump(out, sys.stdout, indent=0, ensure_ascii=False)
