#!/usr/bin/env bash
# The executed study at one scale (default: cpu): train the whole grid (resumable: re-run to continue
# after an interruption), then execute the six round notebooks, clean them, record the environment of the
# stored runs beside them, and write the study's tables (accuracies_df.csv, accuracies_summary.csv).
# Everything goes beside the results store: outputs/<scale>/ for the repository's store outputs/results,
# <store>/tables/<scale>/ for a store elsewhere (DELTALAB_RESULTS).
#   bash scripts/study.sh                 # SCALE=cpu WORKERS=2
#   SCALE=smoke bash scripts/study.sh     # the same pipeline in a few minutes
#   SCALE=cpu-v1 ROUNDS="1 2 3 4 5" bash scripts/study.sh   # the archived first cpu study (round 6's rows were
#                                                          # never trained at cpu-v1)
# run_variant.ipynb is executed too, for the variant in VARIANT (default l2_norm_error).
# Re-running it with every run stored changes no file: nothing is trained, the notebooks come out the same,
# environment.json describes the stored runs (rewritten only when they change) and bench.json is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${SCALE:-cpu}
WORKERS=${WORKERS:-2}
ROUNDS=${ROUNDS:-1 2 3 4 5 6}
VARIANT=${VARIANT:-l2_norm_error}
PY=${PYTHON:-.venv/bin/python}
PAPERMILL=${PAPERMILL:-.venv/bin/papermill}
out=$("$PY" -c "import os, sys; from deltalab.store import Store; print(os.path.relpath(Store().tables_dir(sys.argv[1])))" "$SCALE")
mkdir -p "$out"
"$PY" -m deltalab grid --scale "$SCALE" --workers "$WORKERS"
# The cost figures: every path's train-step throughput measured in one run, at one thread per process as the
# grid trains (kept if already there: delete it to measure again).
bench="$out/bench.json"
[ -f "$bench" ] || "$PY" -m deltalab bench --threads 1 --quick --no-flops --no-thread-layouts \
  --omp-passive --json --out "$bench" > /dev/null
for n in $ROUNDS; do
  "$PAPERMILL" --no-progress-bar --log-level WARNING notebooks/round.ipynb "$out/round_$n.ipynb" \
    -p round_file "params/rounds/round_$n.yaml" -p scale "$SCALE" -p figures_dir "$out/figures/round_$n" \
    -p bench_file "$bench"
done
"$PAPERMILL" --no-progress-bar --log-level WARNING notebooks/run_variant.ipynb "$out/run_variant.ipynb" \
  -p variant "$VARIANT" -p scale "$SCALE" -p figures_dir "$out/figures"
"$PY" -m deltalab.nbclean "$out"/round_*.ipynb "$out/run_variant.ipynb"
"$PY" -c "import sys; from deltalab.report import write_environment; write_environment(sys.argv[1], scale=sys.argv[2])" \
  "$out/environment.json" "$SCALE"
"$PY" -m deltalab table --scale "$SCALE" > /dev/null
echo "study at scale $SCALE written to $out/"
