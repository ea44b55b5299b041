#!/usr/bin/env bash
# The main job: validate the shipped templates, plan the bone-density study, deploy it on this machine with the
# `local` provider (front-end, two CPU workers and a portal host as network-namespace nodes with their own sshd;
# the data volume mounted read-only at /data and the results volume read-write at /results on every node), show
# it working, and remove it again.
#
# Usage: scripts/demo.sh [DEPLOYCTL]   (default .build/release/deployctl). Needs root for the local provider;
# without it the demo stops after planning and says why. DEPLOYCTL_HOME defaults to a temporary directory.
set -euo pipefail
DEPLOYCTL=${1:-.build/release/deployctl}
HOME_DIR=${DEPLOYCTL_HOME:-$(mktemp -d /tmp/deployctl-demo.XXXXXX)}
NAME=bone-density-demo
step() { printf '\n== %s\n' "$*"; }

step "validate the shipped templates"
"$DEPLOYCTL" validate templates/*.yaml

step "plan the bone-density study (2 CPU workers)"
"$DEPLOYCTL" plan templates/bone-density-study.yaml -i cpu_workers=2 | head -n 20

if ! "$DEPLOYCTL" providers check local --home "$HOME_DIR"; then
    echo "demo: the local provider cannot run here (see above); stopping after the plan" >&2
    exit 0
fi

cleanup() { "$DEPLOYCTL" down "$NAME" --home "$HOME_DIR" >/dev/null 2>&1 || true; }
trap cleanup EXIT

step "deploy it on this machine (local provider, state in $HOME_DIR)"
"$DEPLOYCTL" up templates/bone-density-study.yaml --name "$NAME" -i cpu_workers=2 --home "$HOME_DIR"

step "status"
"$DEPLOYCTL" status "$NAME" --verify --home "$HOME_DIR"

step "on a worker: the data volume is read-only, the results volume is shared and writable"
"$DEPLOYCTL" ssh "$NAME" 'cpu_worker[1]' --home "$HOME_DIR" -- \
    'hostname; if touch /data/probe 2>/dev/null; then echo "UNEXPECTED: /data is writable"; exit 1; else echo "/data: read-only as it should be"; fi; echo "written by $(hostname)" > /results/hello.txt'
"$DEPLOYCTL" ssh "$NAME" front --home "$HOME_DIR" -- 'printf "front reads: "; cat /results/hello.txt'

step "scale the CPU workers to 3 and back to 1"
"$DEPLOYCTL" scale "$NAME" cpu_worker --count 3 --home "$HOME_DIR"
"$DEPLOYCTL" scale "$NAME" cpu_worker --count 1 --home "$HOME_DIR"

step "down: everything it made is removed"
trap - EXIT
"$DEPLOYCTL" down "$NAME" --home "$HOME_DIR"
left=$(ip netns list | grep -c '^dctl-' || true)
echo "local nodes left: $left"
