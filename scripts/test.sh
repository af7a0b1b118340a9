#!/usr/bin/env bash
# The whole test suite from a fresh clone: set-up (scripts/setup.sh), the unit tests (Triton kernels run
# under the interpreter on CPU), then the notebooks at smoke scale under nbval.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TRITON_INTERPRET=1
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export DELTALAB_DATA="$scratch/data"  # generated task data: never in the repository
.venv/bin/python -m pytest -q -p no:cacheprovider tests
