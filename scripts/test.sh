#!/usr/bin/env bash
# The whole test suite from a fresh clone: set-up (scripts/setup.sh), the unit tests (Triton kernels run
# under the interpreter on CPU), the reproduction test a second time as an AVX2-only CPU computes, then the
# notebooks at smoke scale under nbval. Every stage runs; the script fails if any did, and ends with their summaries.
#
# nbval: each notebook is executed by papermill at smoke scale with results store A, then re-executed by
# `pytest --nbval-lax` with an empty store B, so every run is trained again and the cells tagged
# `nbval-check-output` (tables and generated sentences) must come out identical: same seed, same numbers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TRITON_INTERPRET=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export DELTALAB_DATA="$scratch/data"  # generated task data: never in the repository

# Each stage runs even when one before it failed; the script exits non-zero if any did, and ends with each
# stage's summary line. `set -e` holds inside each stage (a stage stops at its first failing command).
failed=0
summaries=()
stage() {  # stage NAME FUNCTION: run FUNCTION (under set -e) with its output teed to a log; keep its last line
  local name=$1 log="$scratch/$1.log" rc
  set +e
  (set -e; "$2") 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  summaries+=("$name: $(tail -n 1 "$log") (exit $rc)")
  [ "$rc" -eq 0 ] || failed=1
}

unit_tests() { .venv/bin/python -m pytest -q -p no:cacheprovider tests; }

# The reproduction test again as an AVX2-only CPU computes: ATen's kernels and the GEMM libraries (oneDNN, MKL)
# capped at AVX2, so a laptop's path is checked on every machine; the test's subprocess inherits the caps, and
# prints whether it checked bit for bit or to its stated tolerance.
reproduction_as_avx2() {
  ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 \
    .venv/bin/python -m pytest -q -s -p no:cacheprovider tests/test_store.py -k committed_run_is_reproduced
}

notebooks() {
  local A="$scratch/a" B="$scratch/b" two_tasks="memorization,noisy-in-context-recall"
  mkdir -p "$A" "$B"
  run() { DELTALAB_RESULTS="$A/results" .venv/bin/papermill --no-progress-bar --log-level WARNING "$@" -p scale smoke -p figures_dir "$A/figures"; }
  run notebooks/run_variant.ipynb "$A/run_variant.ipynb" -p variant l2_norm_error -p tasks "$two_tasks"
  run notebooks/round.ipynb "$A/round_1.ipynb" -p round_file params/rounds/round_1.yaml
  run notebooks/round.ipynb "$A/round_6.ipynb" -p round_file params/rounds/round_6.yaml -p tasks "$two_tasks"
  .venv/bin/python -m deltalab.publish.nbclean "$A"/*.ipynb
  DELTALAB_RESULTS="$B/results" .venv/bin/python -m pytest -q -p no:cacheprovider --nbval-lax "$A"/*.ipynb
}

stage "unit tests" unit_tests
stage "reproduction as an AVX2 CPU" reproduction_as_avx2
stage "notebooks (nbval)" notebooks
echo
printf '%s\n' "${summaries[@]}"
exit "$failed"
