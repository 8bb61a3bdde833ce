#!/usr/bin/env bash
# Kills `nonneg train --checkpoint` (SIGKILL) at 20 random moments, resumes each run with
# --resume, and compares the final model with an uninterrupted run's, byte for byte.
# Usage: scripts/kill_resume.sh [KILLS] [TRAIN OPTIONS...] (default 20 kills; the options
# are added to every run, e.g. `scripts/kill_resume.sh 10 --ensemble 3`). Needs a release build.
set -u
cd "$(dirname "$0")/.."
BIN=target/release/nonneg
KILLS=${1:-20}
shift $(($# > 0))
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
ARGS=(--data data/spambase.csv --label-column type --positive spam -q
      --epochs 30 --hidden 64,32 --valid-fraction 0.2 --patience 8 --lr-schedule cosine
      --checkpoint-every 3 "$@")

# Kill moments are uniform over the shortest of three uninterrupted runs (the machine's
# load varies), which must also agree with each other.
took=
for r in 1 2 3; do
    rm -rf "$WORK/whole-ckpt"
    start=$(date +%s.%N)
    "$BIN" train "${ARGS[@]}" --out "$WORK/whole$r.safetensors" --checkpoint "$WORK/whole-ckpt" || exit 1
    t=$(echo "$(date +%s.%N) - $start" | bc)
    if [ -z "$took" ] || [ "$(echo "$t < $took" | bc)" -eq 1 ]; then took=$t; fi
    cmp -s "$WORK/whole1.safetensors" "$WORK/whole$r.safetensors" || { echo "uninterrupted runs differ"; exit 1; }
done
mv "$WORK/whole1.safetensors" "$WORK/whole.safetensors"
echo "uninterrupted run: ${took}s (shortest of 3)"

# A run that ends before its kill lands does not count: another random moment is drawn.
different=0
killed=0
attempt=0
while [ "$killed" -lt "$KILLS" ] && [ "$attempt" -lt $((KILLS * 3)) ]; do
    attempt=$((attempt + 1))
    rm -rf "$WORK/ckpt" "$WORK/model.safetensors"
    at=$(echo "scale=3; 0.9 * $took * $RANDOM / 32768" | bc)
    "$BIN" train "${ARGS[@]}" --out "$WORK/model.safetensors" --checkpoint "$WORK/ckpt" &
    pid=$!
    sleep "$at"
    if kill -9 "$pid" 2>/dev/null; then
        state=killed
        killed=$((killed + 1))
    else
        state="ended before the kill, not counted"
    fi
    wait "$pid" 2>/dev/null
    "$BIN" train "${ARGS[@]}" --out "$WORK/model.safetensors" --resume "$WORK/ckpt" || exit 1
    if cmp -s "$WORK/whole.safetensors" "$WORK/model.safetensors"; then
        verdict=identical
    else
        verdict=DIFFERENT
        different=$((different + 1))
    fi
    printf 'kill at %6.3fs (%s): %s\n' "$at" "$state" "$verdict"
done
echo "$killed runs killed and resumed, $attempt in all; $different DIFFERENT"
[ "$different" -eq 0 ] && [ "$killed" -eq "$KILLS" ]
