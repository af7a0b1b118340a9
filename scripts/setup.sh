#!/usr/bin/env bash
# One-time set-up on a fresh machine: a virtual environment in .venv with PyTorch and deltalab (editable),
# plus the test tools and Ray (the `ray` extra: the tests start a real local cluster). Safe to re-run: what
# is installed already is kept.
#
# PyTorch: on a machine without CUDA this installs the pinned CPU-capable release (torch 2.13.0) before
# anything else, so that no dependency pulls a multi-GB CUDA build. On Linux, where PyPI's torch wheels
# carry CUDA, point TORCH_INDEX_URL at PyTorch's CPU wheel index to get the small CPU build. With
# `nvidia-smi` present, the CUDA build of the same release is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  if [ -n "${TORCH_INDEX_URL:-}" ] && ! command -v nvidia-smi >/dev/null 2>&1; then
    "${PIP[@]}" "torch==2.13.0" --index-url "$TORCH_INDEX_URL"
  else
    "${PIP[@]}" "torch==2.13.0"
  fi
fi
"${PIP[@]}" -e ".[test,ray]"
.venv/bin/python -c "import torch, deltalab; print(f'deltalab {deltalab.__version__} with torch {torch.__version__} ready in .venv')"
