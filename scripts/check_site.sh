#!/usr/bin/env bash
# Build the executed study's site and check it as a reader would meet it (docs/site.md): every internal link and
# image of every page resolves, then the landing page and the last round's page are loaded in headless Chromium,
# served over HTTP from 127.0.0.1, and the check fails on a console error, an uncaught exception, a failed request or
# one that leaves the site, an image that does not load (naturalWidth 0), an answer below the first screen, a wide table
# that does not scroll or a figure's text under 8 px, at 1280 x 800 and 390 x 844. Screenshots go to $SHOTS.
#   bash scripts/check_site.sh                          # the committed cpu study, into site/
#   SCALE=cpu-v1 OUT=/tmp/site-v1 bash scripts/check_site.sh
# Needs the site and site-check extras (both come with the test extra, so scripts/setup.sh installs them) and
# Chromium (Debian: apt-get install -y chromium; scripts/setup.sh installs it when run as root on Debian).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
SCALE=${SCALE:-cpu}
OUT=${OUT:-site}
SHOTS=${SHOTS:-$OUT/screenshots}
"$PY" -m deltalab site --scale "$SCALE" --out "$OUT"
"$PY" -m deltalab site --check --out "$OUT" --shots "$SHOTS"
