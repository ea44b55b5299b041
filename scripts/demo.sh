#!/usr/bin/env bash
# The main job: validate the shipped templates, plan the bone-density study, deploy it on this machine with the
# `local` provider (front-end, two CPU workers and a portal host as network-namespace nodes with their own sshd,
# /etc, /var and /home; SLURM and munge set up by the Ansible recipes in recipes/; a small synthetic CT study as
# the data volume, read-only at /data, and the results volume read-write at /results on every node), submit a
# bone-density job with sbatch, scale the worker pool, and remove it all again.
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

STUDY=$(mktemp -d /tmp/deployctl-demo-study.XXXXXX)
chmod 0755 "$STUDY"  # readable by the study account on the nodes
cleanup() { "$DEPLOYCTL" down "$NAME" --home "$HOME_DIR" >/dev/null 2>&1 || true; rm -rf "$STUDY"; }
trap cleanup EXIT

step "a small synthetic CT study (stands in for a staged volume until staging lands)"
/usr/bin/python3 - "$STUDY" <<'EOF'
import sys, numpy, nibabel
rng = numpy.random.default_rng(7)
hu = rng.normal(40, 20, (64, 64, 24))                     # soft tissue
hu[24:40, 24:40, :] = rng.normal(700, 60, (16, 16, 24))  # a block of bone
image = nibabel.Nifti1Image(hu.astype(numpy.int16), numpy.diag([0.8, 0.8, 2.5, 1]))
nibabel.save(image, f"{sys.argv[1]}/ct-0001.nii.gz")
EOF
ls -l "$STUDY"

step "deploy it on this machine (local provider, state in $HOME_DIR)"
"$DEPLOYCTL" up templates/bone-density-study.yaml --name "$NAME" -i cpu_workers=2 -i data_volume_id="$STUDY" \
    --home "$HOME_DIR"

step "the cluster: SLURM lists the workers"
"$DEPLOYCTL" ssh "$NAME" front --home "$HOME_DIR" -- 'sinfo -N'

step "a researcher submits a bone-density job on the front-end; it runs on a worker"
# The job is the script itself (sbatch ships it to the worker; home directories are per node).
"$DEPLOYCTL" ssh "$NAME" front --home "$HOME_DIR" -- "cat > /home/cloudadm/density.py" <<'EOF'
#!/usr/bin/python3
import os, socket, numpy, nibabel
image = nibabel.load("/data/ct-0001.nii.gz")
hu = image.get_fdata()
voxel_ml = numpy.prod(image.header.get_zooms()) / 1000
bone = hu > 250
line = f"ct-0001: bone {bone.sum() * voxel_ml:.1f} ml, mean {hu[bone].mean():.0f} HU (computed on {socket.gethostname()})"
open(f"/results/density-{os.environ['SLURM_JOB_ID']}.txt", "w").write(line + "\n")
EOF
"$DEPLOYCTL" ssh "$NAME" front --home "$HOME_DIR" -- \
    'cd /home/cloudadm && su cloudadm -c "sbatch --wait -o /results/job-%j.log density.py"; rc=$?
     cat /results/job-*.log /results/density-*.txt 2>/dev/null; exit $rc'

step "status"
"$DEPLOYCTL" status "$NAME" --verify --home "$HOME_DIR"

step "on a worker: the data volume is read-only, the results volume is shared and writable"
"$DEPLOYCTL" ssh "$NAME" 'cpu_worker[1]' --home "$HOME_DIR" -- \
    'hostname; if touch /data/probe 2>/dev/null; then echo "UNEXPECTED: /data is writable"; exit 1; else echo "/data: read-only as it should be"; fi; echo "written by $(hostname)" > /results/hello.txt'
"$DEPLOYCTL" ssh "$NAME" front --home "$HOME_DIR" -- 'printf "front reads: "; cat /results/hello.txt'

step "scale the CPU workers to 3 and back to 1"
"$DEPLOYCTL" scale "$NAME" cpu_worker --count 3 --home "$HOME_DIR"
"$DEPLOYCTL" ssh "$NAME" front --home "$HOME_DIR" -- 'sinfo -N -h'
"$DEPLOYCTL" scale "$NAME" cpu_worker --count 1 --home "$HOME_DIR"
"$DEPLOYCTL" ssh "$NAME" front --home "$HOME_DIR" -- 'sinfo -N -h'

step "down: everything it made is removed"
trap - EXIT
"$DEPLOYCTL" down "$NAME" --home "$HOME_DIR"
left=$(ip netns list | grep -c '^dctl-' || true)
echo "local nodes left: $left"
