import Foundation

/// A bootable VM disk image (qcow2, UEFI, GPT) made from an appliance: a Debian root (debootstrap, cached), the
/// appliance's OCI layers applied on top, GRUB as a standalone EFI binary on the ESP, and the root file system made
/// with `mkfs.ext4 -d` — nothing is ever mounted, so no loop devices or privileges beyond file ownership are needed.
public enum VMImageBuilder {
    public struct Options: Sendable {
        /// Debian suite and mirror for debootstrap.
        public var suite = "bookworm"
        public var mirror = "http://deb.debian.org/debian"
        /// Packages beyond the minimal base: a kernel, systemd, cloud-init and sshd are what a cloud needs.
        /// (python3-cffi-backend: debootstrap does not resolve the virtual packages python3-cryptography needs.)
        public var packages = [
            "linux-image-amd64", "systemd-sysv", "udev", "cloud-init", "python3-cffi-backend", "openssh-server",
            "ifupdown", "isc-dhcp-client",
        ]
        /// A ready root directory instead of debootstrap (it must hold /boot/vmlinuz-* and /boot/initrd.img-*).
        public var root: String?
        /// Free space left in the root file system.
        public var headroomMiB = 512

        public init() {}
    }

    public struct Result: Sendable, Equatable {
        public var image: String
        public var rootUUID: String
        public var kernel: String
        public var virtualSizeMiB: Int
    }

    public struct VMError: Error, CustomStringConvertible {
        public var description: String
    }

    /// ESP size and GPT partition type GUIDs.
    static let espMiB = 64
    static let espType = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
    static let linuxType = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"

    /// Builds `output` (qcow2) from the image `tag` of the OCI layout `layout` (what `ApplianceBuilder.build` made
    /// from the spec). `progress` is told each phase.
    public static func build(
        layout: String, tag: String, spec: ApplianceSpec, output: String, options: Options = Options(),
        progress: (String) -> Void = { _ in }
    ) throws -> Result {
        let work = output + ".work"
        try? FileManager.default.removeItem(atPath: work)
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let root = work + "/root"
        if let given = options.root {
            progress("root: copying \(given)")
            try run("/bin/cp", ["-a", given, root], what: "copy the root")
        } else {
            try debianRoot(into: root, options: options, progress: progress)
        }
        progress("applying the appliance's layers")
        for (layer, mediaType) in try layers(layout: layout, tag: tag) {
            let flag = mediaType.hasSuffix("zstd") ? "--zstd" : mediaType.hasSuffix("gzip") ? "-z" : ""
            try run(
                "/bin/tar", (flag.isEmpty ? [] : [flag]) + ["-x", "--numeric-owner", "-f", layer, "-C", root],
                what: "apply layer \(URL(fileURLWithPath: layer).lastPathComponent)")
        }
        // The identity of the file systems follows from the image: the same spec gives the same UUIDs.
        let seed = SHA256Stream.digest(Data((spec.name + (try manifestDigest(layout: layout, tag: tag))).utf8))
        let hex = Array(seed.dropFirst(7))
        func uuid(_ offset: Int) -> String {
            let part = String(hex[offset..<offset + 32])
            let chars = Array(part)
            return [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(chars[$0]) }.joined(separator: "-")
        }
        let rootUUID = uuid(0)
        let diskUUID = uuid(32)
        let kernel = try bootFile(root, prefix: "vmlinuz-")
        let initrd = try bootFile(root, prefix: "initrd.img-")
        try configure(root: root, rootUUID: rootUUID, spec: spec)

        progress("ESP: GRUB for UEFI")
        let grubConfig = work + "/grub.cfg"
        try """
        set timeout=1
        search --no-floppy --fs-uuid --set=root \(rootUUID)
        linux /boot/\(kernel) root=UUID=\(rootUUID) ro console=tty0 console=ttyS0,115200
        initrd /boot/\(initrd)
        boot

        """.write(toFile: grubConfig, atomically: true, encoding: .utf8)
        try run(
            "/usr/bin/grub-mkstandalone",
            [
                "-O", "x86_64-efi", "-o", work + "/BOOTX64.EFI",
                "--modules=part_gpt ext2 search search_fs_uuid linux normal echo",
                "--locales=", "--themes=", "--fonts=", "boot/grub/grub.cfg=\(grubConfig)",
            ], what: "grub-mkstandalone")
        let esp = work + "/esp.img"
        try run(
            "/sbin/mkfs.vfat", ["-n", "ESP", "-i", String(hex.prefix(8)), "-C", esp, String(espMiB * 1024)],
            what: "mkfs.vfat")
        try run("/usr/bin/mmd", ["-i", esp, "::/EFI", "::/EFI/BOOT"], what: "mmd")
        try run("/usr/bin/mcopy", ["-i", esp, work + "/BOOTX64.EFI", "::/EFI/BOOT/BOOTX64.EFI"], what: "mcopy")

        progress("root file system (mkfs.ext4 -d)")
        let usedKiB = Int(try run("/usr/bin/du", ["-sk", root], what: "du").split(separator: "\t").first ?? "0") ?? 0
        let rootMiB = (usedKiB * 13 / 10) / 1024 + options.headroomMiB
        let rootImage = work + "/root.img"
        try run(
            "/sbin/mkfs.ext4",
            [
                "-q", "-F", "-L", "root", "-U", rootUUID, "-E", "hash_seed=\(diskUUID)", "-d", root, rootImage,
                "\(rootMiB)M",
            ], what: "mkfs.ext4 -d", environment: ["E2FSPROGS_FAKE_TIME": String(spec.created)])

        progress("disk: GPT, ESP and root")
        let raw = work + "/disk.raw"
        let totalMiB = 1 + espMiB + rootMiB + 1
        guard FileManager.default.createFile(atPath: raw, contents: nil) else {
            throw VMError(description: "\(raw): cannot be created")
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: raw))
        try handle.truncate(atOffset: UInt64(totalMiB) << 20)
        try handle.close()
        let table = """
            label: gpt
            label-id: \(diskUUID.uppercased())
            unit: sectors
            first-lba: 2048
            start=2048, size=\(espMiB * 2048), type=\(espType), uuid=\(uuid(16).uppercased()), name="ESP"
            start=\((1 + espMiB) * 2048), size=\(rootMiB * 2048), type=\(linuxType), uuid=\(rootUUID.uppercased()), name="root"

            """
        try run("/sbin/sfdisk", ["--quiet", "--no-reread", "--no-tell-kernel", raw], what: "sfdisk", input: table)
        try copy(esp, into: raw, atMiB: 1)
        try copy(rootImage, into: raw, atMiB: 1 + espMiB)
        progress("qcow2")
        try? FileManager.default.removeItem(atPath: output)
        try run(
            "/usr/bin/qemu-img", ["convert", "-q", "-f", "raw", "-O", "qcow2", raw, output], what: "qemu-img convert")
        return Result(image: output, rootUUID: rootUUID, kernel: kernel, virtualSizeMiB: totalMiB)
    }

    /// debootstrap once per suite, mirror and package set; later builds unpack the cached tarball.
    static func debianRoot(into root: String, options: Options, progress: (String) -> Void) throws {
        let key = SHA256Stream.digest(
            Data(([options.suite, options.mirror] + options.packages.sorted()).joined(separator: "\n").utf8))
        let cache = PackageLayers.debCache().replacingOccurrences(of: "/debs", with: "/rootfs")
        let tarball = "\(cache)/\(options.suite)-\(key.dropFirst(7).prefix(16)).tar"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        if FileManager.default.fileExists(atPath: tarball) {
            progress("root: \(options.suite) from the cache")
            try run("/bin/tar", ["-x", "--numeric-owner", "-f", tarball, "-C", root], what: "unpack the cached root")
            return
        }
        progress("root: debootstrap \(options.suite) (minutes; cached for the next build)")
        try run(
            "/usr/sbin/debootstrap",
            [
                "--variant=minbase", "--include=" + options.packages.joined(separator: ","), options.suite, root,
                options.mirror,
            ],
            what: "debootstrap")
        // Caches of apt and logs are not part of the image.
        for junk in ["var/cache/apt/archives", "var/lib/apt/lists", "var/log"] {
            let path = root + "/" + junk
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] where entry != "partial" {
                try? FileManager.default.removeItem(atPath: path + "/" + entry)
            }
        }
        try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
        try run(
            "/bin/tar", ["-c", "--numeric-owner", "-f", tarball + ".partial", "-C", root, "."], what: "cache the root")
        try FileManager.default.moveItem(atPath: tarball + ".partial", toPath: tarball)
    }

    /// fstab, hostname, a serial console and cloud-init's datasources; the appliance's environment for logins.
    static func configure(root: String, rootUUID: String, spec: ApplianceSpec) throws {
        func write(_ path: String, _ text: String) throws {
            let full = root + path
            try FileManager.default.createDirectory(
                atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: full, atomically: true, encoding: .utf8)
        }
        try write("/etc/fstab", "UUID=\(rootUUID) / ext4 defaults,errors=remount-ro 0 1\n")
        try write("/etc/hostname", spec.name + "\n")
        try write(
            "/etc/cloud/cloud.cfg.d/90-deployctl.cfg",
            "datasource_list: [NoCloud, ConfigDrive, OpenStack, OpenNebula, None]\n")
        try write(
            "/etc/network/interfaces.d/eth",
            "allow-hotplug ens3\niface ens3 inet dhcp\nallow-hotplug eth0\niface eth0 inet dhcp\n")
        let exports = spec.env.sorted { $0.key < $1.key }.map { "export \($0.key)='\($0.value)'" }
        try write(
            "/etc/profile.d/appliance.sh",
            (["# deployctl appliance \(spec.name)"] + exports).joined(separator: "\n") + "\n")
    }

    /// The layout's layer blobs for `tag`, in order, with their media types.
    static func layers(layout: String, tag: String) throws -> [(String, String)] {
        let manifest = try manifestObject(layout: layout, tag: tag)
        return (manifest["layers"] as? [[String: Any]] ?? []).compactMap { layer in
            guard let digest = layer["digest"] as? String else { return nil }
            return (OCILayout.blob(URL(fileURLWithPath: layout), digest).path, layer["mediaType"] as? String ?? "")
        }
    }

    static func manifestDigest(layout: String, tag: String) throws -> String {
        guard let entries = OCILayout.entries(URL(fileURLWithPath: layout)),
            let digest = OCILayout.entry(entries, tag: tag)?["digest"] as? String
        else { throw VMError(description: "\(layout): no image tagged \(tag)") }
        return digest
    }

    static func manifestObject(layout: String, tag: String) throws -> [String: Any] {
        let digest = try manifestDigest(layout: layout, tag: tag)
        guard
            let data = FileManager.default.contents(atPath: OCILayout.blob(URL(fileURLWithPath: layout), digest).path),
            let manifest = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { throw VMError(description: "\(layout): manifest \(digest) is unreadable") }
        return manifest
    }

    /// The one /boot file with this prefix (the newest when several).
    static func bootFile(_ root: String, prefix: String) throws -> String {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: root + "/boot")) ?? [])
            .filter { $0.hasPrefix(prefix) }.sorted()
        guard let name = names.last else {
            throw VMError(
                description: "the root has no /boot/\(prefix)*: a kernel package is needed (linux-image-amd64)")
        }
        return name
    }

    @discardableResult
    static func run(
        _ executable: String, _ arguments: [String], what: String, environment: [String: String] = [:],
        input: String? = nil
    ) throws -> String {
        try Tool.run(executable, arguments, what: what, environment: environment, input: input)
    }

    static func copy(_ source: String, into disk: String, atMiB offset: Int) throws {
        try run(
            "/bin/dd", ["if=\(source)", "of=\(disk)", "bs=1M", "seek=\(offset)", "conv=notrunc,sparse", "status=none"],
            what: "dd \(URL(fileURLWithPath: source).lastPathComponent)")
    }
}
