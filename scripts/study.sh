#!/usr/bin/env bash
# The executed study at one scale (default: cpu): train the whole grid (resumable: re-run to continue
# after an interruption), then execute the six round notebooks into outputs/<scale>/, clean them, record
# the environment beside them, and write outputs/<scale>/accuracies_df.csv.
#   bash scripts/study.sh                 # SCALE=cpu WORKERS=2
#   SCALE=smoke bash scripts/study.sh     # the same pipeline in a few minutes
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${SCALE:-cpu}
WORKERS=${WORKERS:-2}
out="outputs/$SCALE"
mkdir -p "$out"
.venv/bin/python -m deltalab grid --scale "$SCALE" --workers "$WORKERS"
# The cost figures: every path's train-step throughput measured in one run, at one thread per process as the
# grid trains (kept if already there: delete it to measure again).
bench="$out/bench.json"
[ -f "$bench" ] || .venv/bin/python -m deltalab bench --threads 1 --quick --no-flops --no-thread-layouts \
  --omp-passive --json --out "$bench" > /dev/null
for n in 1 2 3 4 5 6; do
  .venv/bin/papermill --no-progress-bar --log-level WARNING notebooks/round.ipynb "$out/round_$n.ipynb" \
    -p round_file "params/rounds/round_$n.yaml" -p scale "$SCALE" -p figures_dir "$out/figures/round_$n" \
    -p bench_file "$bench"
done
.venv/bin/python -m deltalab.nbclean "$out"/round_*.ipynb
.venv/bin/python -c "from deltalab.report import write_environment; write_environment('$out/environment.json')"
.venv/bin/python -m deltalab table --scale "$SCALE" > /dev/null
echo "study at scale $SCALE written to $out/"
