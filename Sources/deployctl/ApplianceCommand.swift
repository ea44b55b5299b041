import Appliances
import ArgumentParser
import Foundation
import Providers
import TOSCA
import WorkloadImages

struct ApplianceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "appliance",
        abstract: "Appliances: build reproducible OCI images from a spec, and look into them.",
        subcommands: [
            ApplianceBuild.self, ApplianceWorkloads.self, ApplianceVM.self, ApplianceUpload.self, AppliancePush.self,
            AppliancePull.self,
            ApplianceInspect.self,
            ApplianceList.self,
        ])
}

/// `deployctl appliance build SPEC --output DIR`.
struct ApplianceBuild: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build an appliance spec into an OCI image layout.",
        discussion: """
            The spec (YAML) names a base (`scratch`; `oci:DIR[:TAG]`, an OCI image layout; or \
            `docker://REGISTRY/REPOSITORY[:TAG]`, pulled into --base-cache first: blobs it holds are not fetched \
            again, the manifest is, so a moved tag is followed), layers (`directory:`, `file:` with an optional \
            octal `mode:`, `pip:` requirements, `debian:` packages with their dependencies, `remove:` paths of the \
            base, each with an absolute `to:`), \
            env, entrypoint, cmd, workdir, labels, exposed_ports, resources (cpus, memory_mb, gpus: kept as \
            org.deployctl.resources.* labels), io (the I/O contract: `inputs:` and `outputs:`, directories and \
            what they hold; kept as org.deployctl.io.* labels and the image's volumes), compression (gzip or \
            zstd) and created (the one timestamp in the image; default SOURCE_DATE_EPOCH, else 1970-01-01). The \
            image is labelled with the spec file's SHA-256 (org.deployctl.spec.digest) and, when the spec is in \
            a git work tree, its commit (org.opencontainers.image.revision, with -dirty for changed files).

            Each layer is a deterministic tar (entries sorted, owner 0:0, the fixed mtime, files 0644 or 0755 by \
            their executable bit, PAX records for long names) compressed in frames of 2 MiB on every core, \
            streamed to disk while its digests are computed. The same spec and the same file contents give the \
            same digests on any machine and day. Tools that read OCI layouts take the result: `skopeo copy \
            oci:DIR:TAG …`, `umoci unpack` (gzip layers).

            The layout keeps what it holds: building the tag for another platform (--platform, or the spec's \
            `platform:`) adds that image beside the others, a multi-platform image that `appliance push` sends \
            as an OCI image index; the same tag and platform again replaces only that image. Directory and file \
            layers are the same on every platform; pip and debian layers install this machine's binaries, so a \
            spec with them is refused for another platform.
            """)

    @Argument(help: "The appliance spec (YAML).") var spec: String
    @Option(help: "The OCI image layout directory to write (created if missing).") var output: String
    @Option(help: "The tag the index names the image by.") var tag: String = "latest"
    @Option(help: "OS/ARCH[/VARIANT], such as linux/arm64: the image's platform instead of the spec's.")
    var platform: String?
    @Option(help: "text or json.") var format: OutputFormat = .text
    @Option(help: ProgressMode.help) var progress: ProgressMode = .auto
    @Option(
        help: ArgumentHelp(
            "The OCI image layout bases from registries are pulled into.",
            discussion: "Default: $DEPLOYCTL_CACHE/bases, else ~/.cache/deployctl/bases."))
    var baseCache: String?
    @OptionGroup var login: RegistryLogin

    func run() async throws {
        var loaded: ApplianceSpec
        do {
            loaded = try ApplianceSpec.load(path: spec)
        } catch {
            writeError("error: \(error.description)")
            throw ExitCode(2)
        }
        if let platform {
            guard let value = Platform(platform) else {
                writeError("error: --platform \(platform): give OS/ARCH[/VARIANT], such as linux/arm64")
                throw ExitCode(2)
            }
            loaded.platform = value
        }
        let printer = ProgressPrinter(progress)
        if loaded.base.hasPrefix("docker://") {
            let cache = baseCache ?? ApplianceBuilder.cache("bases")
            let base = loaded.base
            do {
                _ = try await ApplianceBuilder.resolveBase(
                    &loaded, client: try login.client(), cache: cache, progress: printer.transfer)
            } catch let exit as ExitCode {
                throw exit
            } catch {
                writeError("error: \(spec): base \(base): \(error)")
                throw ExitCode(1)
            }
        }
        let result: BuildResult
        do {
            result = try ApplianceBuilder.build(loaded, output: output, tag: tag, progress: printer.build)
        } catch {
            writeError("error: \(spec): \(error)")
            throw ExitCode(2)
        }
        switch format {
        case .json:
            let object: [String: Any] = [
                "name": loaded.name, "output": output, "tag": tag, "platform": result.platform.description,
                "manifest": result.manifest.digest,
                "config": result.config.digest,
                "layers": result.layers.map { ["digest": $0.digest, "size": $0.size] }, "diff_ids": result.diffIDs,
            ]
            let data = try JSONSerialization.data(
                withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        case .text:
            print("\(loaded.name): \(output):\(tag) (\(result.platform))")
            print("manifest \(result.manifest.digest)")
            for (layer, diffID) in zip(result.layers, result.diffIDs) {
                print("layer \(layer.digest) (\(layer.size) bytes; uncompressed \(diffID))")
            }
        }
    }
}

/// How to reach a registry: plain HTTP or not, and the credentials.
struct RegistryLogin: ParsableArguments {
    @Flag(help: "Plain HTTP (a registry on loopback without TLS).") var insecure = false
    @Option(help: "User name for the registry.") var user: String?
    @Option(name: .customLong("password-file"), help: "A file holding the password or token (never an argument).")
    var passwordFile: String?

    func client() throws -> RegistryClient {
        var credentials: (user: String, password: String)?
        if let user {
            guard let passwordFile,
                let password = try? String(contentsOfFile: passwordFile, encoding: .utf8)
                    .trimmingCharacters(in: .newlines)
            else {
                writeError("error: --user needs --password-file with the password (readable)")
                throw ExitCode(2)
            }
            credentials = (user, password)
        }
        return RegistryClient(insecure: insecure, credentials: credentials)
    }
}

/// `deployctl appliance workloads --output DIR`.
struct ApplianceWorkloads: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workloads",
        abstract: "Build the two workload images (ct-segmentation: 1 GPU; bone-density: CPU) into OCI layouts.",
        discussion: """
            Each image: Debian's python3 from scratch, the workloads' pinned Python stack (numpy, nibabel, pydicom, \
            scipy, MONAI, torch 2.13: the CUDA build for the GPU image, +cpu for the CPU one) and the workloads tree \
            at /opt/workloads; entrypoint workloads/NAME/run, cmd /data /results; resources as labels. Written to \
            DIR/ct-segmentation and DIR/bone-density; push them with `appliance push`.
            """)

    @Option(help: "Where the layouts go (DIR/NAME).") var output: String
    @Option(help: "The workloads tree.") var workloads = "workloads"
    @Option(help: "Only this image: ct-segmentation or bone-density.") var only: String?
    @Option(help: "gzip or zstd.") var compression = "gzip"
    @Option(
        name: .customLong("gpu-requirements"),
        help: "A pip requirements file naming the CUDA torch for the GPU image (default: torch==2.13.0).")
    var gpuRequirements: String?

    func run() throws {
        var kinds = WorkloadImages.Kind.allCases
        if let only {
            guard let kind = WorkloadImages.Kind(rawValue: only) else {
                writeError("error: --only takes ct-segmentation or bone-density, not '\(only)'")
                throw ExitCode(2)
            }
            kinds = [kind]
        }
        guard let packing = ApplianceSpec.Compression(rawValue: compression) else {
            writeError("error: --compression takes gzip or zstd")
            throw ExitCode(2)
        }
        do {
            let built = try WorkloadImages.build(
                kinds, workloads: URL(fileURLWithPath: workloads).standardizedFileURL.path, output: output,
                compression: packing, gpuRequirements: gpuRequirements
            ) { writeError("workloads: \($0)") }
            for (kind, result) in built {
                let size = result.layers.reduce(Int64(0)) { $0 + $1.size }
                print(
                    "\(kind.rawValue): \(output)/\(kind.rawValue):latest \(result.manifest.digest) (\(formatBytes(size)))"
                )
            }
        } catch let error as ApplianceBuilder.BuildError {
            writeError("error: \(error.description)")
            throw ExitCode(1)
        }
    }
}

/// `deployctl appliance vm SPEC --output IMAGE.qcow2`.
struct ApplianceVM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vm",
        abstract: "Build a bootable VM image (qcow2, UEFI) from an appliance spec.",
        discussion: """
            The spec is built into an OCI layout (beside the image, IMAGE.layout), then: a Debian root by \
            debootstrap (minbase, with a kernel, systemd, cloud-init and sshd; cached in ~/.cache/deployctl/rootfs \
            after the first build), the appliance's layers applied on top, fstab, hostname, a serial console and \
            cloud-init's datasources (NoCloud, ConfigDrive, OpenStack, OpenNebula) written, GRUB as a standalone \
            EFI binary on a FAT ESP, the root made with `mkfs.ext4 -d`, both placed in a GPT disk and converted \
            to qcow2. Nothing is mounted. Needs root (file ownership in the root) and debootstrap, \
            grub-efi-amd64-bin, dosfstools, mtools, fdisk and qemu-utils (`make deps`). \
            scripts/vm-boot-smoke.sh boots the result under QEMU with OVMF.
            """)

    @Argument(help: "The appliance spec (YAML).") var spec: String
    @Option(help: "The qcow2 image to write.") var output: String
    @Option(help: "Debian suite for the root.") var suite = "bookworm"
    @Option(help: "Debian mirror for debootstrap.") var mirror = "http://deb.debian.org/debian"
    @Option(name: .customLong("package"), help: "An extra Debian package in the root (repeatable).")
    var packages: [String] = []
    @Option(help: "Use this root directory instead of debootstrap (it must hold a kernel and initrd in /boot).")
    var root: String?

    func run() throws {
        do {
            let loaded = try ApplianceSpec.load(path: spec)
            let layout = output + ".layout"
            _ = try ApplianceBuilder.build(loaded, output: layout, tag: "vm")
            var options = VMImageBuilder.Options()
            options.suite = suite
            options.mirror = mirror
            options.packages += packages
            options.root = root
            let result = try VMImageBuilder.build(
                layout: layout, tag: "vm", spec: loaded, output: output, options: options
            ) { writeError("vm: \($0)") }
            print("\(output): \(result.virtualSizeMiB) MiB disk, kernel \(result.kernel), root UUID \(result.rootUUID)")
        } catch let error as any CustomStringConvertible {
            writeError("error: \(error.description)")
            throw ExitCode(1)
        }
    }
}

/// `deployctl appliance list REGISTRY/REPO | DIR`.
struct ApplianceList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List the tags of a registry repository, or of an OCI image layout.")

    @Argument(help: "REGISTRY/REPOSITORY, or an OCI image layout directory.") var target: String
    @OptionGroup var login: RegistryLogin
    @Option(help: "text or json.") var format: OutputFormat = .text

    func run() async throws {
        var rows: [[String: String]] = []
        if FileManager.default.fileExists(atPath: target + "/index.json") {
            let data = FileManager.default.contents(atPath: target + "/index.json") ?? Data()
            let entries =
                ((try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["manifests"] as? [[String: Any]])
                ?? []
            for entry in entries {
                let tag = (entry["annotations"] as? [String: Any])?["org.opencontainers.image.ref.name"] as? String
                let platform = entry["platform"] as? [String: Any]
                let named = [platform?["os"], platform?["architecture"], platform?["variant"]].compactMap {
                    $0 as? String
                }
                rows.append([
                    "tag": tag ?? "", "digest": entry["digest"] as? String ?? "",
                    "platform": named.joined(separator: "/"),
                ])
            }
        } else {
            let reference: RegistryClient.Reference
            do { reference = try RegistryClient.Reference(target + ":latest") } catch {
                writeError("error: \(target): neither an OCI image layout nor REGISTRY/REPOSITORY")
                throw ExitCode(2)
            }
            do {
                rows = try await login.client().tags(reference).map { ["tag": $0] }
            } catch let error as RegistryClient.RegistryError {
                writeError("error: \(error.description)")
                throw ExitCode(1)
            }
        }
        switch format {
        case .json: try printJSON(rows)
        case .text:
            for row in rows {
                print([row["tag"], row["digest"], row["platform"]].compactMap { $0 }.joined(separator: "\t"))
            }
        }
    }
}

/// `deployctl appliance pull REGISTRY/REPO:TAG --output DIR`.
struct AppliancePull: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Pull an image from a registry into an OCI image layout (to build on it: base: oci:DIR:TAG).",
        discussion: """
            The manifest (for a multi-platform index, the entry of --platform, linux/amd64 by default), the \
            config and every layer are downloaded to disk and checked against their digests; blobs the layout \
            holds are not fetched again. The layout's image of the same tag and platform is replaced, others \
            stay. A spec then names the layout as its base (`base: oci:DIR:TAG`), so builds stay offline.
            """)

    @Argument(help: "REGISTRY/REPOSITORY[:TAG].") var source: String
    @Option(help: "The OCI image layout directory to write (created if missing).") var output: String
    @Option(help: "The tag to give the image in the layout (default: the source's).") var tag: String?
    @Option(help: "OS/ARCH[/VARIANT]: the image to take from a multi-platform index.") var platform = "linux/amd64"
    @Option(help: ProgressMode.help) var progress: ProgressMode = .auto
    @OptionGroup var login: RegistryLogin

    func run() async throws {
        let reference: RegistryClient.Reference
        do { reference = try RegistryClient.Reference(source) } catch {
            writeError("error: \(error.description)")
            throw ExitCode(2)
        }
        guard let wanted = Platform(platform) else {
            writeError("error: --platform \(platform): give OS/ARCH[/VARIANT], such as linux/arm64")
            throw ExitCode(2)
        }
        let client = try login.client()
        do {
            let digest = try await client.pull(
                reference, into: output, tag: tag ?? reference.tag, platform: wanted,
                progress: ProgressPrinter(progress).transfer)
            print("\(reference) → \(output):\(tag ?? reference.tag) (\(digest))")
        } catch {
            writeError("error: pull \(reference): \(error)")
            throw ExitCode(1)
        }
    }
}

/// `deployctl appliance inspect DIR`.
struct ApplianceInspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "List the images of an OCI image layout with their layers and config.")

    @Argument(help: "An OCI image layout directory.") var layout: String

    func run() throws {
        let root = URL(fileURLWithPath: layout)
        func object(_ url: URL) throws -> [String: Any] {
            guard let data = FileManager.default.contents(atPath: url.path),
                let value = try JSONSerialization.jsonObject(with: data) as? [String: Any]
            else {
                writeError("error: \(url.path): not a JSON object (is \(layout) an OCI image layout?)")
                throw ExitCode(2)
            }
            return value
        }
        func blob(_ digest: String) -> URL {
            root.appendingPathComponent("blobs/sha256/\(digest.replacingOccurrences(of: "sha256:", with: ""))")
        }
        let index = try object(root.appendingPathComponent("index.json"))
        for entry in index["manifests"] as? [[String: Any]] ?? [] {
            let digest = entry["digest"] as? String ?? "?"
            let tag = (entry["annotations"] as? [String: Any])?["org.opencontainers.image.ref.name"] as? String ?? "-"
            let manifest = try object(blob(digest))
            let configDigest = (manifest["config"] as? [String: Any])?["digest"] as? String ?? "?"
            let config = try object(blob(configDigest))
            let platform = [config["os"] ?? "?", config["architecture"] ?? "?", config["variant"]]
                .compactMap { $0.map { "\($0)" } }.joined(separator: "/")
            print("\(tag) \(digest) \(platform) created \(config["created"] ?? "?")")
            for layer in manifest["layers"] as? [[String: Any]] ?? [] {
                print("  layer \(layer["digest"] ?? "?") \(layer["size"] ?? "?") bytes")
            }
            let runtime = config["config"] as? [String: Any] ?? [:]
            for key in ["Entrypoint", "Cmd", "Env", "WorkingDir"] where runtime[key] != nil {
                print("  \(key): \(runtime[key]!)")
            }
            for key in ["ExposedPorts", "Volumes"] {
                if let set = runtime[key] as? [String: Any] {
                    print("  \(key): \(set.keys.sorted().joined(separator: " "))")
                }
            }
            for (name, value) in (runtime["Labels"] as? [String: String] ?? [:]).sorted(by: { $0.key < $1.key }) {
                print("  label \(name)=\(value)")
            }
        }
    }
}

/// `deployctl appliance push DIR REGISTRY/REPO:TAG`.
struct AppliancePush: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Push an image of an OCI image layout to a registry.",
        discussion: """
            Blobs the registry already has are skipped (HEAD); the others are uploaded from disk in one streamed \
            PUT each (never held in memory), or in chunks when the registry does not take a whole blob; then the \
            manifest. Basic credentials (--user and --password-file) are sent when the registry asks; a bearer \
            challenge is answered by fetching a token from its realm with them. 429 and 5xx answers and dropped \
            connections are retried with backoff. --mount-from REPO (repeatable) asks the registry to link blobs \
            it holds in another repository instead of uploading them again (cross-repository mount).

            When the layout holds the tag for several platforms (`appliance build --platform`), each image is \
            pushed by its digest (blobs they share sent once), then an OCI image index naming them with their \
            platforms (sorted, canonical JSON) under the tag.
            """)

    @Argument(help: "An OCI image layout directory (from `appliance build`).") var layout: String
    @Argument(help: "Where to: REGISTRY/REPOSITORY[:TAG], such as localhost:5000/study/bone-density:1.0.")
    var destination: String
    @Option(help: "The image of the layout to push, by its tag there.") var tag: String = "latest"
    @OptionGroup var login: RegistryLogin
    @Option(name: .customLong("mount-from"), help: "A repository of the same registry to mount blobs from.")
    var mountFrom: [String] = []
    @Option(help: "text or json.") var format: OutputFormat = .text
    @Option(help: ProgressMode.help) var progress: ProgressMode = .auto

    func run() async throws {
        let reference: RegistryClient.Reference
        do {
            reference = try RegistryClient.Reference(destination)
        } catch {
            writeError("error: \(error.description)")
            throw ExitCode(2)
        }
        let client = try login.client()
        let report: RegistryClient.PushReport
        do {
            report = try await client.push(
                layout: layout, tag: tag, to: reference, mountFrom: mountFrom,
                progress: ProgressPrinter(progress).transfer)
        } catch {
            writeError("error: push to \(reference): \(error)")
            throw ExitCode(1)
        }
        switch format {
        case .json:
            let object: [String: Any] = [
                "destination": reference.description, "manifest": report.manifest, "uploaded": report.uploaded,
                "skipped": report.skipped, "mounted": report.mounted,
                "images": report.images.map { ["platform": $0.platform?.description ?? "", "digest": $0.digest] },
            ]
            let data = try JSONSerialization.data(
                withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        case .text:
            let platforms = report.images.compactMap { $0.platform?.description }.joined(separator: ", ")
            print(
                "\(reference): pushed \(report.images.count > 1 ? "index " : "")\(report.manifest) "
                    + (report.images.count > 1 ? "(\(platforms); " : "(")
                    + "\(report.uploaded.count) blob(s) uploaded, \(report.skipped.count) already there, "
                    + "\(report.mounted.count) mounted)")
        }
    }
}

/// `deployctl appliance upload IMAGE.qcow2 --provider NAME`: a VM image into a cloud's image service.
struct ApplianceUpload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upload",
        abstract: "Upload a VM image (from `appliance vm`) to a cloud provider's image service (OpenStack Glance).",
        discussion: """
            The image is created (queued), its file streamed with one PUT (never held in memory), and Glance's \
            SHA-512 of what it stored checked against the file's. An image of the same name and content already \
            active is reused without sending anything; an upload that fails leaves no image behind. The image is \
            private, qcow2 and UEFI (hw_firmware_type=uefi, hw_machine_type=q35) unless --property says otherwise.
            """)

    @Argument(help: "The VM image file (qcow2).") var image: String
    @Option(help: "The provider (an openstack provider of the providers file).") var provider: String
    @Option(help: "The image's name in the cloud (default: the file's name without .qcow2).") var name: String?
    @Option(name: .customLong("property"), help: "A Glance property KEY=VALUE, such as os_distro=debian (repeatable).")
    var properties: [String] = []
    @Option(help: "text or json.") var format: OutputFormat = .text
    @OptionGroup var options: ProvidersCommand.Options

    func run() async throws {
        let file = try options.load()
        guard case .openstack(let config)? = file.providers[provider] else {
            let kind =
                file.providers[provider].map { "a \($0.type) provider, which has no image service" } ?? "not declared"
            writeError("error: provider '\(provider)' is \(kind); uploading needs an openstack provider")
            throw ExitCode(2)
        }
        guard FileManager.default.isReadableFile(atPath: image) else {
            writeError("error: cannot read the image \(image)")
            throw ExitCode(2)
        }
        var glance = ["hw_firmware_type": "uefi", "hw_machine_type": "q35"]
        for property in properties {
            guard let equals = property.firstIndex(of: "="), equals != property.startIndex else {
                writeError("error: --property \(property): give KEY=VALUE")
                throw ExitCode(2)
            }
            glance[String(property[..<equals])] = String(property[property.index(after: equals)...])
        }
        let imageName =
            name ?? URL(fileURLWithPath: image).lastPathComponent.replacingOccurrences(of: ".qcow2", with: "")
        do {
            let cloud = try OpenStackProvider(config: config)
            let text = format == .text
            let uploaded = try await cloud.uploadImage(
                .init(
                    file: image, name: imageName, diskFormat: image.hasSuffix(".raw") ? "raw" : "qcow2",
                    properties: glance)
            ) { line in if text { writeError(line) } }
            switch format {
            case .json:
                print(
                    JSONValue.object([
                        ("id", .string(uploaded.id)), ("name", .string(imageName)), ("size", .int(Int(uploaded.size))),
                        ("reused", .bool(uploaded.reused)),
                    ]).serialized())
            case .text:
                print("\(uploaded.reused ? "already there" : "uploaded"): image \(imageName) \(uploaded.id)")
            }
        } catch {
            writeError("error: \(error.description)")
            throw ExitCode(1)
        }
    }
}
