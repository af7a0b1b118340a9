#!/usr/bin/env bash
# The whole test suite from a fresh clone: set-up (scripts/setup.sh), the unit tests (Triton kernels run
# under the interpreter on CPU), then the notebooks at smoke scale under nbval.
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

.venv/bin/python -m pytest -q -p no:cacheprovider tests

A="$scratch/a"; B="$scratch/b"; mkdir -p "$A" "$B"
two_tasks="memorization,noisy-in-context-recall"
run() { DELTALAB_RESULTS="$A/results" .venv/bin/papermill --no-progress-bar --log-level WARNING "$@" -p scale smoke -p figures_dir "$A/figures"; }
run notebooks/run_variant.ipynb "$A/run_variant.ipynb" -p variant l2_norm_error -p tasks "$two_tasks"
run notebooks/round.ipynb "$A/round_1.ipynb" -p round_file params/rounds/round_1.yaml
run notebooks/round.ipynb "$A/round_6.ipynb" -p round_file params/rounds/round_6.yaml -p tasks "$two_tasks"
.venv/bin/python -m deltalab.nbclean "$A"/*.ipynb
DELTALAB_RESULTS="$B/results" .venv/bin/python -m pytest -q -p no:cacheprovider --nbval-lax "$A"/*.ipynb
