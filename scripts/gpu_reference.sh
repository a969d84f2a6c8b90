#!/usr/bin/env bash
# The paper config's reference run on a machine with an NVIDIA GPU, inside a time budget.
#
#   scripts/gpu_reference.sh OUT [BUDGET_S]       (BUDGET_S: wall seconds in all, default 480)
#
# From a copy of the working tree, with no network: installs any wheels carried in .whl/
# (scripts/prepare_gpu_carry.sh makes them and the data), trains configs/paper.yaml's four
# families on cuda:0 with the full Fashion-MNIST carried in .carry/, evaluates, profiles the
# mappings `cpu` and `cuda:0` at batch 1 and 64 on eager and onnxruntime with the NVML meter
# (measured energy), analyses, and publishes `h200-paper` (OUT/h200-paper.tar.gz: unpack it
# into results/ and commit). Stages run from the
# command line (no papermill or Jupyter there). Before a stage it checks the time left; a
# stage still running at the deadline is stopped with SIGINT (its manifest says
# `interrupted`, the folder resumes). Whatever it has is packed into OUT (at most 8 files).
# The GPU's clocks and power limit are read, never changed. docs/gpu-reference.md says more.
#
# Environment (for the CPU test and other machines): GPU_REFERENCE_OVERRIDES (extra -p
# key=value words, after the defaults), GPU_REFERENCE_NAME (the publication, h200-paper),
# GPU_REFERENCE_RESERVE_S (seconds kept for analyse, publish and packing: 45),
# GPU_REFERENCE_WORK (where the run folder and the publication are made:
# /tmp/dyndnn-gpu-reference), PYTHON.
set -uo pipefail

OUT=${1:?usage: scripts/gpu_reference.sh OUT [BUDGET_S]}
BUDGET_S=${2:-480}
NAME=${GPU_REFERENCE_NAME:-h200-paper}
RESERVE_S=${GPU_REFERENCE_RESERVE_S:-45}
PYTHON=${PYTHON:-python3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
START=$SECONDS
WORK=${GPU_REFERENCE_WORK:-/tmp/dyndnn-gpu-reference}
RUN="$WORK/run"
PUB="$WORK/$NAME"
mkdir -p "$OUT" "$WORK" || exit 2
OUT=$(cd "$OUT" && pwd)
LOG="$OUT/gpu_reference.log"
: >"$LOG"

say() { printf '[%4ds] %s\n' "$((SECONDS - START))" "$*" | tee -a "$LOG"; }
left() { echo $((BUDGET_S - (SECONDS - START))); }

pack() {  # what there is, into OUT: the publication, the run's record, the logs
    say "packing into $OUT"
    if [ -d "$PUB" ]; then
        tar -czf "$OUT/$NAME.tar.gz" -C "$WORK" "$NAME"
    fi
    if [ -d "$RUN" ]; then  # the record without the checkpoints (they do not fit the way back)
        tar -czf "$OUT/run-record.tar.gz" -C "$WORK" --exclude=checkpoints --exclude='*.pt' \
            --exclude=.lock run
    fi
    say "done in $((SECONDS - START)) s of $BUDGET_S"
}

cd "$ROOT" || exit 2
if compgen -G ".whl/*.whl" >/dev/null; then  # packages the machine lacks, carried as wheels
    say "installing $(ls .whl/*.whl | wc -l) carried wheels"
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/dyndnn-site .whl/*.whl >>"$LOG" 2>&1 || { say "wheel install failed"; exit 2; }
    export PYTHONPATH="/tmp/dyndnn-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$ROOT/lib${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

say "host: $(nproc) cores; $("$PYTHON" -c 'import torch; print("torch", torch.__version__,
    "cuda", torch.cuda.is_available())' 2>&1 | tail -1)"
"$PYTHON" - <<'EOF' 2>&1 | tee -a "$LOG"
# read-only: the GPU's name, clocks and power limit as they are (never set here)
try:
    import pynvml
    pynvml.nvmlInit()
    for i in range(pynvml.nvmlDeviceGetCount()):
        h = pynvml.nvmlDeviceGetHandleByIndex(i)
        name = pynvml.nvmlDeviceGetName(h)
        name = name.decode() if isinstance(name, bytes) else name
        sm = pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM)
        limit_w = pynvml.nvmlDeviceGetPowerManagementLimit(h) / 1e3
        print(f"gpu{i}: {name}, SM clock {sm} MHz, power limit {limit_w:.0f} W (read only)")
except Exception as exc:  # the run goes on: the profiler names the meter it could use
    print(f"NVML: {type(exc).__name__}: {exc}")
EOF

if [ -d .carry/fashion-mnist ]; then DATA_ROOT="$ROOT/.carry"; else DATA_ROOT="$ROOT/data"; fi
# the defaults: the paper config on the full Fashion-MNIST (CIFAR-10 cannot travel), trained
# on the GPU, profiled on all CPU cores and on cuda:0 with NVML; the environment's words last
read -r -a EXTRA <<<"${GPU_REFERENCE_OVERRIDES:-}"
PARAMS=(-p dataset=fashion-mnist -p "data_root=$DATA_ROOT" -p device=cuda
        -p "mappings=[cpu, cuda:0@0]" -p meter=auto -p repeats=3
        -p "backends=[eager, onnxruntime]")  # the engines the carried wheels hold
for word in "${EXTRA[@]}"; do PARAMS+=(-p "$word"); done

stage() {  # stage NAME [ARGS...]: run it if there is time, stop it at the deadline
    local name=$1 limit status
    shift
    limit=$(($(left) - RESERVE_S))
    if [ "$name" = analyse ] || [ "$name" = publish ]; then limit=$(($(left) - 10)); fi
    if [ "$limit" -le 5 ]; then
        say "no time left for $name ($(left) s left): stopping, keeping what there is"
        pack
        exit 1
    fi
    say "$name: starting, at most $limit s"
    timeout --signal=INT --kill-after=20 "$limit" "$PYTHON" -m dyndnn "$name" "$@" \
        >>"$LOG" 2>&1
    status=$?
    tail -n 3 "$LOG" | sed 's/^/    /'
    if [ "$status" -ne 0 ]; then
        say "$name: exit status $status$([ "$status" -ge 124 ] && echo ' (stopped at its deadline)')"
        pack
        exit 1
    fi
    say "$name: done"
}

rm -rf "$PUB"
stage train --config paper --out "$RUN" --no-progress "${PARAMS[@]}"
"$PYTHON" - "$RUN" <<'EOF' 2>&1 | tee -a "$LOG"
import sys, pandas as pd
t = pd.read_csv(f"{sys.argv[1]}/train.csv")
last = t.groupby("model").tail(1)[["model", "stage", "epoch", "val_accuracy", "images_per_s"]]
print(last.to_string(index=False))
EOF
stage evaluate --out "$RUN" --no-progress
stage profile --out "$RUN" --no-progress
stage analyse --out "$RUN"
stage publish --out "$RUN" --to "$PUB"
pack
