#!/usr/bin/env bash
# Parallel provisioning, side by side: `up` of the bone-density study's infrastructure with 8 CPU workers on the
# local provider (scripts/bench/provision-study.yaml: 10 nodes, 2 volumes, 19 attachments, no recipes) with
# --concurrency 1 and with the default 8, then `down`, each RUNS times; prints the medians and the ratio. Needs root
# (local provider).
# Usage: scripts/bench/up-bench.sh [DEPLOYCTL] [RUNS]
set -euo pipefail
DEPLOYCTL=${1:-.build/release/deployctl}
RUNS=${2:-3}
HOME_DIR=$(mktemp -d /tmp/deployctl-upbench.XXXXXX)
trap '"$DEPLOYCTL" down bench --home "$HOME_DIR" >/dev/null 2>&1 || true; rm -rf "$HOME_DIR"' EXIT

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
measure() {
    local concurrency=$1 start end
    for _ in $(seq "$RUNS"); do
        start=$(date +%s%N)
        "$DEPLOYCTL" up scripts/bench/provision-study.yaml --name bench -i cpu_workers=8 --concurrency "$concurrency" \
            --home "$HOME_DIR" >/dev/null 2>&1
        end=$(date +%s%N)
        "$DEPLOYCTL" down bench --home "$HOME_DIR" >/dev/null 2>&1
        echo $(( (end - start) / 1000000 ))
    done | median
}
serial=$(measure 1)
parallel=$(measure 8)
printf 'up, 10 local nodes: --concurrency 1: %s ms   --concurrency 8: %s ms   speed-up: %s×\n' \
    "$serial" "$parallel" "$(awk -v a="$serial" -v b="$parallel" 'BEGIN {printf "%.1f", a / b}')"
