#!/usr/bin/env bash
# One prepared GPU window (docs/triton.md, "A GPU window"): the CUDA tests, the kernel benchmark, the train-step
# timing (stacked against lone, Triton against PyTorch) with the projected grid times, then `grid --stack` over a
# scale until a deadline. Everything lands in one folder; the records the grid stored, in one archive
# (records-<scale>.tar.gz, paths relative to the store's root) that `python -m deltalab import-records` brings home.
#
#   scripts/gpu_check.sh [--dry-run] [--scale S] [--variants V,W] [--tasks T,U] [--seeds 0,1] [--workers N]
#                        [--lr X --wd Y] [--deadline SECONDS] [--out DIR] [--store DIR]
#
# --lr/--wd: one sweep point: the grid trains the scale's runs at that lr and wd only (through a copy of the scale
#   file with those lists, written into the out folder; its runs have the same ids and paths as the scale's).
# --deadline: seconds from the start by which the script is done (default 780: a 15-minute window less start-up);
#   the grid gets what is left less a minute, and is stopped then: the runs it finished are stored, the others are
#   not (the next window trains only those). --out: default $OUT (the device tool's folder), else
#   outputs/gpu-check/<UTC time>. --store: the store the grid trains into (default outputs/results, so the
#   committed records are skipped). --dry-run: on the CPU (CUDA hidden) at smoke, into a scratch store in the out
#   folder, in a minute or two: each CUDA-only step prints why it is skipped; tests/test_gpu_check.py runs it.
set -uo pipefail
cd "$(dirname "$0")/.."

dry=0; scale=""; variants="delta_net,gated_delta_net"; tasks=""; seeds=""; workers=1; deadline=780; lr=""; wd=""
out="${OUT:-}"; store=""
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) dry=1 ;;
        --scale) scale="$2"; shift ;;
        --variants) variants="$2"; shift ;;
        --tasks) tasks="$2"; shift ;;
        --seeds) seeds="$2"; shift ;;
        --workers) workers="$2"; shift ;;
        --lr) lr="$2"; shift ;;
        --wd) wd="$2"; shift ;;
        --deadline) deadline="$2"; shift ;;
        --out) out="$2"; shift ;;
        --store) store="$2"; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
case "$deadline" in ''|*[!0-9]*) echo "gpu_check.sh: --deadline takes whole seconds; got '$deadline'" >&2; exit 2 ;; esac
if [ "$dry" = 1 ]; then
    export CUDA_VISIBLE_DEVICES=""  # the dry run proves the CPU path, on any machine
    scale="${scale:-smoke}"; variants="delta_net"; tasks="${tasks:-in-context-recall,memorization}"
    seeds="${seeds:-0,1}"
fi
scale="${scale:-mad}"
out="${out:-outputs/gpu-check/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
store="${store:-$([ "$dry" = 1 ] && echo "$out/store" || echo outputs/results)}"
mkdir -p "$store"
store="$(cd "$store" && pwd)"
start=$(date +%s)
PY="${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}"
export PYTHONPATH="$PWD/lib${PYTHONPATH:+:$PYTHONPATH}"
export DELTALAB_DATA="${DELTALAB_DATA:-${TMPDIR:-/tmp}/deltalab-data}"  # generated task data: not in the out folder
summary="$out/summary.txt"
: > "$summary"

log() { echo "[gpu_check +$(( $(date +%s) - start ))s] $*" | tee -a "$summary"; }
left() { echo $(( deadline - ($(date +%s) - start) )); }
step() {  # step NAME LIMIT_S CMD...: run with a time limit, output in NAME.log, outcome in the summary
    local name="$1" limit="$2"; shift 2
    local t0=$(date +%s)
    timeout -k 10 "$limit" "$@" > "$out/$name.log" 2>&1
    local rc=$?
    local what="ok"; [ $rc = 124 ] && what="stopped at its ${limit} s limit"; [ $rc != 0 ] && [ $rc != 124 ] && what="failed (exit $rc)"
    log "$name: $what in $(( $(date +%s) - t0 )) s (log: $name.log)"
    return $rc
}

log "out $out, store $store, scale $scale, variants $variants, deadline ${deadline} s$([ "$dry" = 1 ] && echo ', DRY RUN on the CPU')"
"$PY" -c "import json, torch; from deltalab.runtime import default_device, environment; \
print(json.dumps(environment(default_device()) | {'torch': torch.__version__}, indent=1))" > "$out/environment.json" 2>&1
command -v nvidia-smi > /dev/null && nvidia-smi > "$out/nvidia-smi.txt" 2>&1
cuda=0
"$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null && cuda=1
[ $cuda = 1 ] || log "no CUDA device$([ "$dry" = 1 ] && echo ' (--dry-run hides it)'): the CUDA-only steps are skipped"

# 1. The CUDA tests: the Triton kernels against the PyTorch functions on the device.
if [ $cuda = 1 ]; then
    step tests_triton 240 "$PY" -m pytest -q -p no:cacheprovider tests/test_triton.py
else
    log "tests_triton: skipped (CUDA only; on the CPU they run under TRITON_INTERPRET=1 in the test suite)"
fi

# 2. The kernels against fla, as JSON.
if [ $cuda = 1 ]; then
    # 7 shapes at 15 s each at most (--cap), well inside the step's 180 s
    step bench_triton 180 "$PY" -m deltalab.kernels.bench_triton --cap 15 --json "$out/bench_triton.json" \
        ${BENCH_SHAPES:+--shapes "$BENCH_SHAPES"}
else
    log "bench_triton: skipped (CUDA only: it times the Triton kernels)"
fi

# 3. The train step, stacked against lone (and on CUDA Triton against PyTorch), and the projected grid times.
if [ "$dry" = 1 ]; then
    step trainstep 120 "$PY" -m deltalab.perf.stackbench --scale smoke --runs 2 --steps 2 --warmup 1 \
        --project "smoke:delta_net" --json "$out/trainstep.json"
else
    step trainstep 240 "$PY" -m deltalab.perf.stackbench --scale "$scale" --tasks in-context-recall,selective-copying \
        --json "$out/trainstep.json"
fi

# 4. The grid, stacked, until the deadline; then the new records in one archive.
grid_scale="$scale"
if [ -n "$lr$wd" ]; then  # one sweep point: the scale file with lrs and wds cut to it (same name, same run ids)
    mkdir -p "$out/sweep-point"
    grid_scale="$out/sweep-point/$scale.yaml"  # a scale file's name must be the scale's
    "$PY" - "$scale" "$lr" "$wd" "$grid_scale" <<'PYEOF' || { log "--lr/--wd: could not write the scale file"; exit 2; }
import sys, yaml
from deltalab.params import PARAMS_DIR
name, lr, wd, target = sys.argv[1:]
data = yaml.safe_load((PARAMS_DIR / "scales" / f"{name}.yaml").read_text())
if lr:
    data["lrs"] = [float(lr)]
    for budget in data["tasks"].values():
        if isinstance(budget, dict):
            budget.pop("lrs", None)
if wd:
    data["wds"] = [float(wd)]
open(target, "w").write(yaml.safe_dump(data, sort_keys=False))
PYEOF
    log "grid: at one sweep point (lr ${lr:-all}, wd ${wd:-all}) through sweep-point/$scale.yaml"
fi
marker="$out/.grid-start"
touch "$marker"
sleep 1  # a record written in this second is newer than the marker
budget=$(( $(left) - 60 ))
if [ "$budget" -lt 30 ]; then
    log "grid: skipped (${budget} s left before the deadline's last minute)"
else
    DELTALAB_RESULTS="$store" step grid "$budget" "$PY" -m deltalab grid --scale "$grid_scale" --variants "$variants" \
        --stack --workers "$workers" ${tasks:+--tasks "$tasks"} ${seeds:+--seeds "$seeds"}
    grep -E "trained \(|runs planned|MISSING" "$out/grid.log" | sed 's/^/    /' | tee -a "$summary"
fi
archive="$out/records-$scale.tar.gz"
(cd "$store" && find "$scale" -name '*.json' -newer "$marker" 2>/dev/null | sort) > "$out/records.txt"
n=$(wc -l < "$out/records.txt")
tar -czf "$archive" -C "$store" -T "$out/records.txt"
log "archive: $n new record(s) in $(basename "$archive") (bring them home: python -m deltalab import-records $archive)"
log "done in $(( $(date +%s) - start )) s; files: $(cd "$out" && ls | tr '\n' ' ')"
