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
# A failed or interrupted notebook leaves the study as it was: each is executed into a temporary file beside its
# target and moved over it only when every cell ran (papermill writes its output even when a cell fails), and
# the figures folder it writes into is put back as it was when it does not finish.
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

running=() # the temporary notebook and the figures backup of the notebook being executed
restore() {
  [ ${#running[@]} -eq 0 ] && return 0
  local tmp=${running[0]} figs=${running[1]} backup=${running[2]}
  rm -f "$tmp"
  if [ -n "$backup" ]; then rm -rf "$figs" && mv "$backup" "$figs"; fi
  running=()
}
trap restore EXIT
# execute NOTEBOOK TARGET FIGURES_DIR [papermill -p ...]: papermill into a temporary file, moved over TARGET
# on success only (its papermill output_path set to TARGET, as if executed there). FIGURES_DIR is the folder the
# parameters send the figures to (backed up first); the parameters keep their order (the injected cell's).
execute() {
  local notebook=$1 target=$2 figs=$3
  shift 3
  local tmp backup=""
  tmp="$(dirname "$target")/.running.$(basename "$target")"
  if [ -d "$figs" ]; then
    backup="$figs.before-run"
    rm -rf "$backup" && cp -a "$figs" "$backup"
  fi
  running=("$tmp" "$figs" "$backup")
  # ipykernel 7 warns, once per kernel, that the kernel papermill starts on this machine talks to it over
  # (loopback) TCP without encryption; papermill has no option for IPC transport or Curve keys, so that one
  # line is dropped from the kernel's stderr, and nothing else.
  if ! "$PAPERMILL" --no-progress-bar --log-level WARNING "$notebook" "$tmp" "$@" \
      2> >(grep -v --line-buffered 'Kernel is running over TCP without encryption' >&2); then
    echo "$notebook did not run to the end: $target and $figs are left as they were" >&2
    return 1
  fi
  "$PY" -c "import sys, nbformat; nb = nbformat.read(sys.argv[1], as_version=4)
nb.metadata.setdefault('papermill', {})['output_path'] = sys.argv[2]; nbformat.write(nb, sys.argv[1])" "$tmp" "$target"
  mv -f "$tmp" "$target"
  [ -z "$backup" ] || rm -rf "$backup"
  running=()
}
"$PY" -m deltalab grid --scale "$SCALE" --workers "$WORKERS"
# The cost figures: every path's train-step throughput measured in one run, at one thread per process as the
# grid trains (kept if already there: delete it to measure again).
bench="$out/bench.json"
[ -f "$bench" ] || "$PY" -m deltalab bench --threads 1 --quick --no-flops --no-thread-layouts \
  --omp-passive --json --out "$bench" > /dev/null
for n in $ROUNDS; do
  execute notebooks/round.ipynb "$out/round_$n.ipynb" "$out/figures/round_$n" \
    -p round_file "params/rounds/round_$n.yaml" -p scale "$SCALE" -p figures_dir "$out/figures/round_$n" \
    -p bench_file "$bench"
done
execute notebooks/run_variant.ipynb "$out/run_variant.ipynb" "$out/figures" \
  -p variant "$VARIANT" -p scale "$SCALE" -p figures_dir "$out/figures"
"$PY" -m deltalab.publish.nbclean "$out"/round_*.ipynb "$out/run_variant.ipynb"
"$PY" -c "import sys; from deltalab.analysis.report import write_environment; from deltalab.params import load_scale
write_environment(sys.argv[1], scale=load_scale(sys.argv[2]))" \
  "$out/environment.json" "$SCALE"
"$PY" -m deltalab table --scale "$SCALE" > /dev/null
echo "study at scale $SCALE written to $out/"
