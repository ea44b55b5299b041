import Foundation
import TestBeds
import Testing

@testable import Appliances

@Suite(
    "VM images: GPT, ESP with GRUB, ext4 root, qcow2",
    .enabled(
        if: geteuid() == 0
            && [
                "/usr/bin/grub-mkstandalone", "/usr/sbin/mkfs.vfat", "/usr/bin/mcopy", "/usr/sbin/sfdisk",
                "/usr/bin/qemu-img", "/usr/sbin/debugfs",
            ].allSatisfy { FileManager.default.isExecutableFile(atPath: $0) },
        "needs root, grub-efi-amd64-bin, dosfstools, mtools, fdisk, qemu-utils, e2fsprogs (`make deps`)"))
struct VMImageTests {
    @Test("an appliance over a root becomes a qcow2 disk: GPT with ESP and root, GRUB's EFI binary, the layers in ext4")
    func diskLayout() throws {
        let scratch = try Scratch()
        let spec = try buildDemo(scratch, into: "layout", tag: "v1")
        // A stand-in root: what debootstrap gives is too slow for every CI run (scripts/vm-boot-smoke.sh boots one).
        try scratch.write("root/boot/vmlinuz-6.1.0-test", "kernel")
        try scratch.write("root/boot/initrd.img-6.1.0-test", "initrd")
        try scratch.write("root/etc/os-release", "ID=debian\n")
        var options = VMImageBuilder.Options()
        options.root = scratch.path + "/root"
        options.headroomMiB = 16
        let result = try VMImageBuilder.build(
            layout: scratch.path + "/layout", tag: "v1", spec: spec, output: scratch.path + "/disk.qcow2",
            options: options)
        #expect(result.kernel == "vmlinuz-6.1.0-test")
        let info = try runProgram("/usr/bin/qemu-img", ["info", "--output=json", scratch.path + "/disk.qcow2"])
        #expect(info.output.contains("\"format\": \"qcow2\""), "\(info.output)")
        #expect(!FileManager.default.fileExists(atPath: scratch.path + "/disk.qcow2.work"))
        // Back to raw to look inside, without mounting anything.
        let raw = scratch.path + "/disk.raw"
        #expect(
            try runProgram("/usr/bin/qemu-img", ["convert", "-O", "raw", scratch.path + "/disk.qcow2", raw]).status == 0
        )
        let table = try runProgram("/usr/sbin/sfdisk", ["--dump", raw])
        #expect(table.output.contains("label: gpt"), "\(table.output)")
        #expect(table.output.contains("type=\(VMImageBuilder.espType)"))
        #expect(table.output.contains("type=\(VMImageBuilder.linuxType)"))
        #expect(table.output.contains("uuid=\(result.rootUUID.uppercased())"))
        func extract(_ name: String, skipMiB: Int, countMiB: Int?) throws -> String {
            let path = scratch.path + "/" + name
            var arguments = ["if=\(raw)", "of=\(path)", "bs=1M", "skip=\(skipMiB)", "status=none"]
            if let countMiB { arguments.append("count=\(countMiB)") }
            #expect(try runProgram("/bin/dd", arguments).status == 0)
            return path
        }
        let esp = try extract("esp.img", skipMiB: 1, countMiB: VMImageBuilder.espMiB)
        let listing = try runProgram("/usr/bin/mdir", ["-b", "-i", esp, "::/EFI/BOOT"])
        #expect(listing.output.contains("BOOTX64.EFI"), "\(listing.output)")
        let root = try extract("root.img", skipMiB: 1 + VMImageBuilder.espMiB, countMiB: nil)
        func debugfs(_ command: String) throws -> String {
            try runProgram("/usr/sbin/debugfs", ["-R", command, root]).output
        }
        #expect(try debugfs("cat /etc/fstab").contains("UUID=\(result.rootUUID) / ext4"))
        #expect(try debugfs("cat /opt/demo/sub/b.txt").contains("x"), "the appliance's layer is in the root")
        #expect(try debugfs("ls /boot").contains("vmlinuz-6.1.0-test"))
        #expect(try debugfs("cat /etc/profile.d/appliance.sh").contains("export PYTHONUNBUFFERED='1'"))
        #expect(try debugfs("stats").lowercased().contains(result.rootUUID.lowercased()))
    }
}
