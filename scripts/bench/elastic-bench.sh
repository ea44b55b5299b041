#!/usr/bin/env bash
# Elastic policies side by side (issue 6): every generated workload, every policy on the same trace
# (`deployctl elastic simulate --compare`), printed as tables with the deployctl/CLUES ratios and the offline bound,
# and drawn as SVG (p95 wait against node-hours, one panel per workload) into OUTDIR/elastic-<GPU workers>.svg.
# Runs twice: with the study template's pools (4 GPU workers: GPU waits are bound by capacity, not policy), and with
# 16 GPU workers, where the policy decides. Deterministic: the same seed gives the same numbers.
# Usage: scripts/bench/elastic-bench.sh [DEPLOYCTL] [SEED] [OUTDIR]
set -euo pipefail
DEPLOYCTL=${1:-.build/release/deployctl}
SEED=${2:-1}
OUTDIR=${3:-bench-results}
mkdir -p "$OUTDIR"
for gpus in 4 16; do
    printf '\n## %s GPU workers, deployctl policy with --max-boots 16 and a 2 min idle time for GPU workers\n\n' "$gpus"
    "$DEPLOYCTL" elastic simulate --workload gpu-burst,cpu-stream,mixed --seed "$SEED" --gpu-nodes "$gpus" \
        --max-boots 16 --idle-time gpu_worker=2m --compare --plot "$OUTDIR/elastic-$gpus.svg"
    echo "(plot: $OUTDIR/elastic-$gpus.svg)"
done
