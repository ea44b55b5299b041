#!/usr/bin/env bash
# The VM image boot smoke test, too slow for CI (debootstrap ≈ 2–3 min the first time, a TCG boot ≈ 1 min):
# builds a VM image of a small appliance with `deployctl appliance vm` (Debian root by debootstrap, cached after
# the first build; the appliance's layer on top; GRUB EFI, GPT, ext4, qcow2) and boots it under QEMU with OVMF
# (KVM when /dev/kvm exists, TCG otherwise). It passes when the serial console shows the login prompt and the
# appliance's file is in the image.
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

cp /usr/share/OVMF/OVMF_VARS_4M.fd "$WORK/vars.fd"
accel=tcg; [[ -w /dev/kvm ]] && accel=kvm
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
