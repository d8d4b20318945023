#!/usr/bin/env bash
# Train-step MFU of Flan-T5 base / large / xl and greedy decode throughput of base, on one lent H100.
#
#   bash bench/gpu.sh            # the GPU run: under 8 minutes in all
#   bash bench/gpu.sh --smoke    # tiny dims, 2 steps: checks the script on a CPU
#
# Each part runs in its own process under `timeout` (a size that compiles slowly, hangs or runs out of memory
# costs only its own slot), prints its result line as soon as it is done, and the table at the end collects
# whatever finished. Slots: base 90 s, large 120 s, xl 170 s, decode 70 s = 450 s, leaving ~30 s for process
# start-up under the 8-minute limit. Results also go to $OUT/gpu_mfu.jsonl when $OUT is set (else /tmp), each
# part's full stderr to $OUT/gpu_logs/NAME.stderr; a failed part prints the last lines of its stderr.
# Measurement details: bench/gpu_mfu.py's docstring.
set -u
cd "$(dirname "$0")/.."

PY=${PYTHON:-}
if [[ -z "$PY" ]]; then
    if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.95}
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}

RESULTS=${OUT:-/tmp}/gpu_mfu.jsonl
mkdir -p "$(dirname "$RESULTS")"
: > "$RESULTS"
# Each part's whole stderr, kept beside the results (they come back with $OUT).
LOGS=${OUT:-/tmp}/gpu_logs
mkdir -p "$LOGS"
TAIL_LINES=${TAIL_LINES:-40}

if [[ "${1:-}" == "--smoke" ]]; then
    # name | timeout s | arguments
    PARTS=("train-tiny|120|train --size tiny --steps 2 --budget-s 30"
           "decode-tiny|120|decode --size tiny --batch 2 --repeats 1")
else
    PARTS=("train-base|90|train --size base --steps 20 --budget-s 25"
           "train-large|120|train --size large --steps 20 --budget-s 30"
           "train-xl|170|train --size xl --steps 15 --budget-s 35"
           "decode-base|70|decode --size base --batch 64 --repeats 3")
fi

START=$SECONDS
"$PY" -c 'import jax; print("# devices:", jax.devices())' 2>/dev/null
for part in "${PARTS[@]}"; do
    IFS='|' read -r name limit arguments <<< "$part"
    echo "# $name (limit ${limit} s, $((SECONDS - START)) s elapsed)"
    # shellcheck disable=SC2086
    # stderr goes whole to a file (a plain redirection: nothing is lost or still in flight when the part
    # ends); its '#' progress lines are shown after the part, and on a failure its last lines, traceback
    # included, so a failed part says why and not only its exit status.
    log="$LOGS/$name.stderr"
    timeout --kill-after=5 "$limit" "$PY" bench/gpu_mfu.py $arguments 2> "$log" | tee -a "$RESULTS"
    status=${PIPESTATUS[0]}
    grep '^#' "$log" >&2
    if [[ $status -ne 0 ]]; then
        reason=$([[ $status -eq 124 || $status -eq 137 ]] && echo "timed out after ${limit} s" || echo "exit $status")
        echo "FAILED $name: $reason" | tee -a "$RESULTS"
        echo "# last ${TAIL_LINES} lines of $name's stderr ($log):" >&2
        grep -v '^#' "$log" | tail -n "$TAIL_LINES" | sed 's/^/#   /' >&2
    fi
done

echo
echo "# total $((SECONDS - START)) s; results in $RESULTS"
"$PY" bench/gpu_mfu.py table "$RESULTS"
