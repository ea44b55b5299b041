import Foundation
import Yams

/// An appliance spec (YAML): what the image is built from and how it runs. Paths in `layers` are relative to the
/// spec's directory.
///
/// ```yaml
/// name: bone-density
/// base: scratch                     # or oci:DIR[:TAG], an OCI image layout, or docker://REGISTRY/REPO[:TAG]
/// platform: linux/amd64            # OS/ARCH[/VARIANT]; `appliance build --platform` overrides it
/// layers:
///   - directory: ../workloads/bone-density   # its tree, copied to `to`
///     to: /opt/bone-density
///   - file: run.sh
///     to: /usr/local/bin/bone-density
///     mode: "0755"
///   - debian: [python3-minimal]      # with their dependencies, from this machine's apt sources; to: / by default
///   - pip: requirements.txt          # pip install --target `to`
///     to: /usr/lib/python3/dist-packages
///   - remove: [/opt/old]             # whiteouts: paths of the base image this image drops
/// env: { PYTHONUNBUFFERED: "1" }
/// entrypoint: [ /usr/local/bin/bone-density ]
/// cmd: [ /data, /results ]
/// workdir: /
/// labels: { org.opencontainers.image.source: https://example.org/study }
/// exposed_ports: [ 8080/tcp ]
/// resources: { cpus: 2, memory_mb: 4096, gpus: 0 }
/// io:                              # the I/O contract: directories the program reads and writes (image volumes)
///   inputs: { /data: NIfTI volumes }
///   outputs: { /results: summary.json and report.html }
/// compression: gzip              # or zstd (multi-threaded; containerd, podman and skopeo read it)
/// created: 2026-01-01T00:00:00Z   # the one timestamp in the image (default: SOURCE_DATE_EPOCH, else 1970)
/// ```
public struct ApplianceSpec: Equatable, Sendable {
    public struct Layer: Equatable, Sendable {
        public enum Source: Equatable, Sendable {
            case directory(String)
            case file(String, mode: UInt32?)
            /// A pip requirements file, installed with `pip install --target` into `to`.
            case pip(requirements: String)
            /// Debian packages and their dependency closure, unpacked under `to` (default `/`).
            case debian([String])
            /// Paths the base image has that this image must not: OCI whiteouts (`.wh.NAME`).
            case remove([String])
        }

        public var source: Source
        public var to: String

        /// Whether the layer installs packages (pip or Debian), whose binaries are of this machine's platform.
        var isPackages: Bool {
            switch source {
            case .pip, .debian: true
            case .directory, .file, .remove: false
            }
        }

        /// What the layer is made from, as the image's history says it.
        var history: String {
            switch source {
            case .directory(let path): "directory \(path) → \(to)"
            case .file(let path, _): "file \(path) → \(to)"
            case .pip(let requirements): "pip -r \(requirements) → \(to)"
            case .debian(let packages): "debian \(packages.joined(separator: " ")) → \(to)"
            case .remove(let paths): "remove \(paths.joined(separator: " "))"
            }
        }

        public init(source: Source, to: String) {
            self.source = source
            self.to = to
        }
    }

    public struct Resources: Equatable, Sendable {
        public var cpus: Int = 1
        public var memoryMB: Int = 0
        public var gpus: Int = 0

        public init(cpus: Int = 1, memoryMB: Int = 0, gpus: Int = 0) {
            self.cpus = cpus
            self.memoryMB = memoryMB
            self.gpus = gpus
        }
    }

    public var name: String
    public var base: String = "scratch"
    public var os = "linux"
    public var architecture = "amd64"
    /// The platform's variant (such as v7 for arm), empty when none.
    public var variant = ""
    public var layers: [Layer] = []
    public var env: [String: String] = [:]
    public var entrypoint: [String] = []
    public var cmd: [String] = []
    public var workdir = ""
    public var labels: [String: String] = [:]
    public var exposedPorts: [String] = []
    public var resources = Resources()
    /// The I/O contract: the directories the program reads (`inputs`) and writes (`outputs`), each with what it
    /// holds. Kept as the org.deployctl.io.inputs and .outputs labels (JSON) and as the image's volumes.
    public var io = IO()

    public struct IO: Equatable, Sendable {
        public var inputs: [String: String] = [:]
        public var outputs: [String: String] = [:]

        public init(inputs: [String: String] = [:], outputs: [String: String] = [:]) {
            self.inputs = inputs
            self.outputs = outputs
        }
    }

    /// The SHA-256 of the spec file's bytes, when it was loaded from one: the org.deployctl.spec.digest label.
    public var digest: String?
    /// How layers are compressed: gzip (every tool reads it) or zstd (faster, on every core; newer tools).
    public var compression = Compression.gzip

    public enum Compression: String, Equatable, Sendable { case gzip, zstd }
    /// Seconds since 1970: the mtime of every layer entry and the config's `created`.
    public var created: UInt64 = 0
    /// The directory relative paths are taken from.
    public var directory: String = "."

    /// The image's platform: `os`, `architecture` and `variant` together.
    public var platform: Platform {
        get { Platform(os: os, architecture: architecture, variant: variant) }
        set { (os, architecture, variant) = (newValue.os, newValue.architecture, newValue.variant) }
    }

    public init(name: String, directory: String = ".") {
        self.name = name
        self.directory = directory
    }

    public struct SpecError: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(SpecError) -> ApplianceSpec
    {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw SpecError(description: "\(path): cannot read the appliance spec")
        }
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var spec = try parse(text, file: path, directory: directory, environment: environment)
        spec.digest = SHA256Stream.digest(Data(text.utf8))
        return spec
    }

    public static func parse(
        _ text: String, file: String, directory: String, environment: [String: String] = [:]
    ) throws(SpecError) -> ApplianceSpec {
        let root: Any?
        do {
            root = try Yams.load(yaml: text)
        } catch {
            throw SpecError(description: "\(file): not YAML: \(error)")
        }
        guard let document = root as? [String: Any] else {
            throw SpecError(description: "\(file): the spec is a mapping (name, base, layers, …)")
        }
        func fail(_ key: String, _ message: String) -> SpecError {
            SpecError(description: "\(file): \(key): \(message)")
        }
        let known: Set = [
            "name", "base", "platform", "compression", "layers", "env", "entrypoint", "cmd", "workdir", "labels",
            "exposed_ports",
            "resources", "created", "io",
        ]
        if let unknown = document.keys.filter({ !known.contains($0) }).sorted().first {
            throw fail(unknown, "unknown key; the keys are \(known.sorted().joined(separator: ", "))")
        }
        guard let name = document["name"] as? String, !name.isEmpty else { throw fail("name", "required, a string") }
        var spec = ApplianceSpec(name: name, directory: directory)
        if let base = document["base"] {
            guard let text = base as? String else { throw fail("base", "a string") }
            let registry =
                text.hasPrefix("docker://") ? (try? RegistryClient.Reference(String(text.dropFirst(9)))) : nil
            guard text == "scratch" || (text.hasPrefix("oci:") && text.count > 4) || registry != nil else {
                throw fail(
                    "base",
                    "`scratch`, `oci:DIR[:TAG]` (an OCI image layout) or `docker://REGISTRY/REPOSITORY[:TAG]` (an "
                        + "image in a registry)")
            }
            spec.base = text
        }
        if let compression = document["compression"] {
            guard let value = (compression as? String).flatMap(Compression.init(rawValue:)) else {
                throw fail("compression", "gzip or zstd")
            }
            spec.compression = value
        }
        if let platform = document["platform"] {
            guard let value = (platform as? String).flatMap({ Platform($0) }) else {
                throw fail("platform", "OS/ARCHITECTURE[/VARIANT], such as linux/amd64 or linux/arm/v7")
            }
            spec.platform = value
        }
        for (index, item) in ((document["layers"] as? [Any]) ?? []).enumerated() {
            let key = "layers[\(index)]"
            guard let layer = item as? [String: Any],
                let to = layer["to"] as? String ?? (layer["debian"] != nil || layer["remove"] != nil ? "/" : nil),
                to.hasPrefix("/")
            else {
                throw fail(key, "a mapping with `directory`, `file`, `pip` or `debian` and an absolute `to`")
            }
            if let source = layer["directory"] as? String {
                spec.layers.append(Layer(source: .directory(source), to: to))
            } else if let source = layer["file"] as? String {
                var mode: UInt32?
                if let text = layer["mode"] {
                    guard let value = UInt32(String(describing: text), radix: 8), value <= 0o7777 else {
                        throw fail("\(key).mode", "an octal mode such as \"0755\"")
                    }
                    mode = value
                }
                spec.layers.append(Layer(source: .file(source, mode: mode), to: to))
            } else if let requirements = layer["pip"] as? String {
                spec.layers.append(Layer(source: .pip(requirements: requirements), to: to))
            } else if let removed = layer["remove"] {
                let paths = (removed as? [Any])?.map { String(describing: $0) } ?? []
                guard !paths.isEmpty,
                    paths.allSatisfy({ $0.hasPrefix("/") && $0.count > 1 && !$0.split(separator: "/").contains("..") })
                else { throw fail("\(key).remove", "a list of absolute paths the base image has") }
                spec.layers.append(Layer(source: .remove(paths), to: "/"))
            } else if let packages = layer["debian"] {
                let names = (packages as? [Any])?.map { String(describing: $0) } ?? []
                guard !names.isEmpty,
                    names.allSatisfy({ name in
                        name.first?.isLetter == true || name.first?.isNumber == true
                    }) && names.allSatisfy({ $0.allSatisfy { $0.isLetter || $0.isNumber || "+-.:".contains($0) } })
                else { throw fail("\(key).debian", "a list of Debian package names") }
                spec.layers.append(Layer(source: .debian(names), to: to))
            } else {
                throw fail(key, "give `directory`, `file`, `pip`, `debian` or `remove`")
            }
        }
        if document["layers"] != nil && !(document["layers"] is [Any]) { throw fail("layers", "a list") }
        spec.env = try strings(document["env"], "env", fail)
        spec.labels = try strings(document["labels"], "labels", fail)
        spec.entrypoint = try list(document["entrypoint"], "entrypoint", fail)
        spec.cmd = try list(document["cmd"], "cmd", fail)
        spec.exposedPorts = try list(document["exposed_ports"], "exposed_ports", fail)
        for port in spec.exposedPorts {
            let parts = port.split(separator: "/")
            guard (1...2).contains(parts.count), let number = Int(parts[0]), (1...65535).contains(number),
                parts.count == 1 || ["tcp", "udp", "sctp"].contains(String(parts[1]))
            else { throw fail("exposed_ports", "\(port) is not PORT or PORT/tcp|udp|sctp") }
        }
        if let workdir = document["workdir"] {
            guard let text = workdir as? String else { throw fail("workdir", "a string") }
            spec.workdir = text
        }
        if let resources = document["resources"] {
            guard let map = resources as? [String: Any] else { throw fail("resources", "a mapping") }
            spec.resources.cpus = map["cpus"] as? Int ?? 1
            spec.resources.memoryMB = map["memory_mb"] as? Int ?? 0
            spec.resources.gpus = map["gpus"] as? Int ?? 0
        }
        if let io = document["io"] {
            guard let map = io as? [String: Any], Set(map.keys).isSubset(of: ["inputs", "outputs"]) else {
                throw fail("io", "a mapping with `inputs` and `outputs`")
            }
            for key in ["inputs", "outputs"] {
                let paths = try strings(map[key], "io.\(key)", fail)
                for path in paths.keys {
                    guard path.hasPrefix("/"), path.count > 1, !path.hasSuffix("/"),
                        !path.split(separator: "/").contains(where: { $0 == ".." || $0 == "." })
                    else { throw fail("io.\(key)", "\(path) is not an absolute path of a directory") }
                }
                if key == "inputs" { spec.io.inputs = paths } else { spec.io.outputs = paths }
            }
            if let both = Set(spec.io.inputs.keys).intersection(spec.io.outputs.keys).sorted().first {
                throw fail("io", "\(both) is both an input and an output")
            }
        }
        if let created = document["created"] {
            let text = created as? String ?? (created as? Date).map { ISO8601DateFormatter().string(from: $0) } ?? ""
            guard let date = ISO8601DateFormatter().date(from: text), date.timeIntervalSince1970 >= 0 else {
                throw fail("created", "an RFC 3339 time such as 2026-01-01T00:00:00Z")
            }
            spec.created = UInt64(date.timeIntervalSince1970)
        } else if let epoch = environment["SOURCE_DATE_EPOCH"], let value = UInt64(epoch) {
            spec.created = value
        }
        return spec
    }

    private static func strings(_ value: Any?, _ key: String, _ fail: (String, String) -> SpecError)
        throws(SpecError) -> [String: String]
    {
        guard let value else { return [:] }
        guard let map = value as? [String: Any] else { throw fail(key, "a mapping of names to strings") }
        return map.mapValues { String(describing: $0) }
    }

    private static func list(_ value: Any?, _ key: String, _ fail: (String, String) -> SpecError)
        throws(SpecError) -> [String]
    {
        guard let value else { return [] }
        guard let items = value as? [Any] else { throw fail(key, "a list of strings") }
        return items.map { String(describing: $0) }
    }
}
