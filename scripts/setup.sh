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
# The browser of the site's check (tests/test_site.py, scripts/check_site.sh): Debian's Chromium, installed where it is
# missing when this runs as root on Debian (about 25 s with apt-get update); elsewhere, or with DELTALAB_NO_BROWSER=1,
# nothing is installed and the browser test is skipped, saying how to install it.
if [ -z "${DELTALAB_NO_BROWSER:-}" ] && ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] \
    && grep -qs '^ID=debian' /etc/os-release && command -v apt-get >/dev/null 2>&1; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
    || echo "note: Chromium could not be installed; the site's browser check will be skipped" >&2
fi
.venv/bin/python -c "import torch, deltalab; print(f'deltalab {deltalab.__version__} with torch {torch.__version__} ready in .venv')"
