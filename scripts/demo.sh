#!/usr/bin/env bash
# The main job: validate the shipped templates, plan the bone-density study, deploy it on this machine with the
# `local` provider (front-end, two CPU workers and a portal host as network-namespace nodes with their own sshd,
# /etc, /var and /home; SLURM and munge set up by the Ansible recipes in recipes/; a synthetic CT export staged by
# `deployctl volume stage` (anonymised, converted to NIfTI, sealed) as the data volume, read-only at /data, and
# the results volume read-write at /results on every node), submit a bone-density job with sbatch, scale the
# worker pool, and remove it all again.
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

WORK=$(mktemp -d /tmp/deployctl-demo-data.XXXXXX)
STUDY="$WORK/volume"
cleanup() {
    "$DEPLOYCTL" down "$NAME" --home "$HOME_DIR" >/dev/null 2>&1 || true
    "$DEPLOYCTL" volume delete demo-ct --force --home "$HOME_DIR" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

step "the data manager stages a synthetic CT export (planted identifiers) into a sealed, anonymised volume"
python3 scripts/testbed/synth-ct.py "$WORK/export" --patients 2 --slices 24 >/dev/null
head -c 32 /dev/urandom >"$WORK/project.secret" && chmod 600 "$WORK/project.secret"
PATIENTS=$(python3 -c 'import json,sys; print(" ".join(p["PatientID"] for p in json.load(open(sys.argv[1]))["patients"]))' \
    "$WORK/export/truth.json")
# shellcheck disable=SC2046
"$DEPLOYCTL" volume stage --name demo-ct --output "$STUDY" --from-dir "$WORK/export" \
    $(printf -- '--patient-id %s ' $PATIENTS) --secret-file "$WORK/project.secret" --home "$HOME_DIR"
"$DEPLOYCTL" volume seal demo-ct --home "$HOME_DIR"
"$DEPLOYCTL" volume show demo-ct --home "$HOME_DIR"
if grep -rqs PLANTED "$STUDY"; then echo "demo: a planted identifier reached the volume" >&2; exit 1; fi
echo "no planted identifier in the volume; NIfTI files:"
(cd "$STUDY" && find . -name '*.nii.gz' | sort | head -n 4)
chmod 0755 "$WORK"  # the nodes' study account reads the volume through it

step "deploy it on this machine (local provider, state in $HOME_DIR)"
"$DEPLOYCTL" up templates/bone-density-study.yaml --name "$NAME" -i cpu_workers=2 -i data_volume_id="$STUDY" \
    --home "$HOME_DIR"

step "the cluster: SLURM lists the workers"
"$DEPLOYCTL" ssh "$NAME" front --home "$HOME_DIR" -- 'sinfo -N'

step "a researcher submits a bone-density job on the front-end; it runs on a worker"
# The job is the script itself (sbatch ships it to the worker; home directories are per node).
"$DEPLOYCTL" ssh "$NAME" front --home "$HOME_DIR" -- "cat > /home/cloudadm/density.py" <<'EOF'
#!/usr/bin/python3
import glob, os, socket, numpy, nibabel
lines = []
for path in sorted(glob.glob("/data/*/*/*/nifti/*.nii.gz")):
    if "_Tilt_" in path:
        continue  # dcm2niix's tilt-corrected copy of a tilted series
    image = nibabel.load(path)
    hu = image.get_fdata()
    lines.append(f"{os.path.basename(path)}: {'x'.join(map(str, hu.shape))} voxels, mean {hu.mean():.0f} HU")
lines.append(f"(computed on {socket.gethostname()})")
open(f"/results/density-{os.environ['SLURM_JOB_ID']}.txt", "w").write("\n".join(lines) + "\n")
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
