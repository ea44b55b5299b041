#!/usr/bin/env bash
# The VM image boot smoke test, too slow for CI (debootstrap ≈ 2–3 min the first time, a TCG boot ≈ 1 min):
# builds a VM image of a small appliance with `deployctl appliance vm` (Debian root by debootstrap, cached after
# the first build; the appliance's layer on top; GRUB EFI, GPT, ext4, qcow2) and boots it under QEMU with OVMF
# (TCG; VM_ACCEL=kvm for KVM). It passes when the serial console shows the login prompt and the
# appliance's file is in the image.
#
# VM_ACCEL=kvm boots with KVM where it works.
#
# Usage: scripts/vm-boot-smoke.sh [DEPLOYCTL]   (default .build/debug/deployctl). Needs root; installs
# qemu-system-x86 and ovmf when missing.
set -euo pipefail
DEPLOYCTL=${1:-.build/debug/deployctl}
WORK=$(mktemp -d /tmp/deployctl-vm-smoke.XXXXXX)
trap 'pkill -f "qemu-system-x86_64.*$WORK" 2>/dev/null || true; rm -rf "$WORK"' EXIT
for tool in qemu-system-x86_64:qemu-system-x86 /usr/share/OVMF/OVMF_CODE_4M.fd:ovmf; do
    [[ -e ${tool%%:*} ]] || command -v "${tool%%:*}" >/dev/null || apt-get install -y --no-install-recommends "${tool##*:}"
done

mkdir -p "$WORK/app"
echo "bone density appliance" >"$WORK/app/README"
cat >"$WORK/spec.yaml" <<'SPEC'
name: smoke
layers:
  - directory: app
    to: /opt/smoke
env: { SMOKE: "1" }
SPEC
start=$(date +%s)
"$DEPLOYCTL" appliance vm "$WORK/spec.yaml" --output "$WORK/smoke.qcow2"
echo "built in $(( $(date +%s) - start )) s: $(qemu-img info "$WORK/smoke.qcow2" | grep -E 'virtual size|disk size' | tr '\n' ' ')"

# The appliance's layer is in the root file system (read without mounting: partition 2 starts at 65 MiB).
qemu-img convert -O raw "$WORK/smoke.qcow2" "$WORK/disk.raw"
dd if="$WORK/disk.raw" of="$WORK/root.img" bs=1M skip=65 status=none && rm "$WORK/disk.raw"
debugfs -R "cat /opt/smoke/README" "$WORK/root.img" 2>/dev/null | grep -q "bone density appliance" \
    || { echo "the appliance's file is not in the image" >&2; exit 1; }
rm "$WORK/root.img"

cp /usr/share/OVMF/OVMF_VARS_4M.fd "$WORK/vars.fd"
# TCG unless asked for KVM (VM_ACCEL=kvm): a /dev/kvm that opens is no proof that nested KVM runs.
accel=${VM_ACCEL:-tcg}
start=$(date +%s)
qemu-system-x86_64 -machine q35,accel=$accel -m 1024 -smp 2 -nographic -no-reboot \
    -drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd \
    -drive if=pflash,format=raw,file="$WORK/vars.fd" \
    -drive file="$WORK/smoke.qcow2",if=virtio,format=qcow2 -nic user,model=virtio-net-pci \
    -serial file:"$WORK/console.log" -monitor none -display none >/dev/null 2>&1 &
for _ in $(seq 600); do
    if grep -q "login:" "$WORK/console.log" 2>/dev/null; then
        echo "booted ($accel) to a login prompt in $(( $(date +%s) - start )) s"
        grep -E "Linux version|Welcome to|Reached target" "$WORK/console.log" | head -n 5
        exit 0
    fi
    sleep 1
done
echo "no login prompt within 600 s; the console says:" >&2
tail -n 40 "$WORK/console.log" >&2
exit 1
