import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Settings of the `local` provider: where its nodes live and their network.
public struct LocalProviderConfig: Sendable, Equatable {
    public var name: String
    /// Node directories, volumes, the SSH key and known_hosts (default DEPLOYCTL_HOME/local).
    public var directory: String
    public var bridge: String
    /// The first three octets of the nodes' /24 (`10.232.0`): the bridge is `.1`, nodes from `.10`.
    public var subnet: String

    public init(name: String = "local", directory: String, bridge: String = "dctl0", subnet: String = "10.232.0") {
        self.name = name
        self.directory = directory
        self.bridge = bridge
        self.subnet = subnet
    }
}

/// This machine as a cloud: each Compute node is a network namespace on a bridge with its own address, hostname and
/// mount namespace, running an sshd — after creation everything is the same SSH path as real hosts. Volumes are
/// directories, bind-mounted into the nodes (read-only when the attachment says so). Needs root.
public struct LocalProvider: Provider {
    public let config: LocalProviderConfig
    public var name: String { config.name }

    public init(config: LocalProviderConfig) {
        self.config = config
    }

    public var privateKey: String { "\(config.directory)/id_ed25519" }
    public var knownHosts: String { "\(config.directory)/known_hosts" }

    /// Why the provider cannot work here, or nil when it can.
    /// The node script (`bash SCRIPT DIR BRIDGE SUBNET ACTION ARGS…`), for test beds whose simulated cloud servers
    /// are local nodes.
    public static var nodeScript: String { LocalNodeScript.text }

    public static func unavailableReason() -> String? {
        if geteuid() != 0 {
            return "the local provider makes network namespaces, a bridge and mounts, which needs root: run deployctl "
                + "as root (sudo -E deployctl …), or declare existing hosts in providers.yaml (type: ssh)"
        }
        for tool in ["/usr/sbin/ip", "/usr/sbin/sshd", "/usr/bin/ssh-keygen", "/usr/bin/nsenter", "/usr/bin/unshare"]
        where !FileManager.default.isExecutableFile(atPath: tool) {
            return "the local provider needs \(tool): apt-get install iproute2 openssh-server util-linux"
        }
        return nil
    }

    /// The network namespace that holds node `name` (its name hashes this provider's directory with the node's).
    public func namespace(of name: String) async throws(ProviderError) -> String {
        try await script("namespace", [name])
    }

    /// Runs one action of the node script; its stdout, or a ProviderError with its stderr.
    private func script(_ action: String, _ arguments: [String]) async throws(ProviderError) -> String {
        if let reason = Self.unavailableReason() { throw ProviderError("local-unavailable", provider: name, reason) }
        let config = self.config
        let provider = name
        let key = privateKey
        return try await offload { () throws(ProviderError) -> String in
            do {
                try FileManager.default.createDirectory(
                    atPath: config.directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                try Self.keyLock.withLock { _ in try Self.ensureKey(key, directory: config.directory) }
                let result = try Self.execute(
                    "/bin/bash",
                    ["-c", LocalNodeScript.text, "local", config.directory, config.bridge, config.subnet, action]
                        + arguments)
                guard result.status == 0 else {
                    throw ProviderError(
                        "local-\(action)-failed", provider: provider,
                        "\(action) \(arguments.first ?? ""): "
                            + result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))
                }
                return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            } catch let error as ProviderError {
                throw error
            } catch {
                throw ProviderError("local-\(action)-failed", provider: provider, "\(action): \(error)")
            }
        }
    }

    private static let keyLock = Mutex(())

    /// The provider's SSH key pair and the nodes' authorized_keys, made once (into a temporary name, then renamed,
    /// so that a crash never leaves half a key).
    static func ensureKey(_ key: String, directory: String) throws {
        let files = FileManager.default
        guard !files.fileExists(atPath: key) else { return }
        let temporary = "\(key).\(getpid()).tmp"
        try? files.removeItem(atPath: temporary)
        try? files.removeItem(atPath: temporary + ".pub")
        let result = try execute(
            "/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", temporary, "-C", "deployctl-local"])
        guard result.status == 0 else {
            throw ProviderError("local-key-failed", provider: "local", "ssh-keygen failed: \(result.stderr)")
        }
        try Data(contentsOf: URL(fileURLWithPath: temporary + ".pub")).write(
            to: URL(fileURLWithPath: "\(directory)/authorized_keys"), options: .atomic)
        _ = rename(temporary + ".pub", key + ".pub")
        guard rename(temporary, key) == 0 else {
            throw ProviderError("local-key-failed", provider: "local", "cannot store the key at \(key)")
        }
    }

    static func execute(_ program: String, _ arguments: [String]) throws -> (
        status: Int32, stdout: String, stderr: String
    ) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Read stderr on the side so that neither pipe fills up.
        let errors = ErrorCollector()
        let reader = Thread { errors.data = err.fileHandleForReading.readDataToEndOfFile() }
        reader.start()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !errors.done { usleep(1000) }
        return (
            process.terminationStatus, String(decoding: output, as: UTF8.self),
            String(decoding: errors.data, as: UTF8.self)
        )
    }

    private final class ErrorCollector: @unchecked Sendable {
        private let lock = NSLock()
        private var value = Data()
        private var finished = false
        var data: Data {
            get { lock.withLock { value } }
            set {
                lock.withLock {
                    value = newValue
                    finished = true
                }
            }
        }
        var done: Bool { lock.withLock { finished } }
    }

    private func tag(_ deployment: String, _ instance: String, _ resource: String) -> String {
        "\(deployment)\t\(instance)\t\(resource)"
    }

    // MARK: Compute

    public func createCompute(_ request: ComputeRequest) async throws(ProviderError) -> ProvisionedCompute {
        // CPUs and memory are shared (nodes oversubscribe this machine); GPUs cannot be.
        let gpus = Self.gpuCount()
        guard request.gpus <= gpus else {
            throw ProviderError(
                "no-fitting-host", provider: name,
                "\(request.instance) asks for \(request.gpus) GPU(s); this machine has \(gpus) (/dev/nvidia[0-9]*)")
        }
        let address = try await script(
            "create", [request.name, tag(request.deployment, request.instance, request.name)])
        return ProvisionedCompute(providerID: request.name, privateAddress: address, publicAddress: nil)
    }

    public func deleteCompute(name resource: String, providerID: String?) async throws(ProviderError) {
        _ = try await script("delete", [providerID ?? resource])
    }

    public func access(computeID: String, name resource: String) throws(ProviderError) -> HostAccess {
        let addressFile = "\(config.directory)/nodes/\(computeID)/address"
        guard let address = try? String(contentsOfFile: addressFile, encoding: .utf8) else {
            throw ProviderError("unknown-node", provider: name, "no local node '\(computeID)' is running")
        }
        return HostAccess(
            endpoint: SSHEndpoint(
                address: address.trimmingCharacters(in: .whitespacesAndNewlines), user: "root", privateKey: privateKey,
                knownHosts: knownHosts, timeout: .seconds(15)),
            workDirectory: "\(config.directory)/work/\(computeID)")
    }

    /// NVIDIA GPUs on this machine, by device file.
    static func gpuCount() -> Int {
        let devices = (try? FileManager.default.contentsOfDirectory(atPath: "/dev")) ?? []
        return devices.count { $0.hasPrefix("nvidia") && $0.dropFirst(6).allSatisfy(\.isNumber) && $0.count > 6 }
    }

    // MARK: Volumes

    public func createVolume(_ request: VolumeRequest) async throws(ProviderError) -> ProvisionedVolume {
        if let existing = request.existingID {
            var isDirectory: ObjCBool = false
            guard existing.hasPrefix("/"), FileManager.default.fileExists(atPath: existing, isDirectory: &isDirectory),
                isDirectory.boolValue
            else {
                throw ProviderError(
                    "bad-volume-id", provider: name,
                    "volume_id '\(existing)' of \(request.instance): on the local provider a volume is a directory; "
                        + "give the absolute path of an existing one")
            }
            return ProvisionedVolume(providerID: existing)
        }
        let path = try await script("volume", [request.name, tag(request.deployment, request.instance, request.name)])
        return ProvisionedVolume(providerID: path)
    }

    public func deleteVolume(name resource: String, providerID: String?) async throws(ProviderError) {
        // Only volumes under the provider's own directory are deployctl's to delete.
        if let providerID, !providerID.hasPrefix("\(config.directory)/volumes/") { return }
        _ = try await script("delete-volume", [resource])
    }

    public func attachVolume(_ request: AttachmentRequest) async throws(ProviderError) -> ProvisionedAttachment {
        let target = request.location ?? "/mnt/\(request.volumeInstance.map { $0.isLetter || $0.isNumber ? $0 : "_" })"
        guard target.hasPrefix("/") else {
            throw ProviderError("bad-location", provider: name, "attachment location '\(target)' must be absolute")
        }
        let location = try await script(
            "attach",
            [
                request.name, tag(request.deployment, request.instance, request.name), request.computeID,
                request.volumeID, target, request.readOnly ? "true" : "false",
            ])
        return ProvisionedAttachment(providerID: request.computeID, location: location)
    }

    public func detachVolume(name resource: String, providerID: String?) async throws(ProviderError) {
        _ = try await script("detach", [resource])
    }

    // MARK: Reconciling

    public func resources(deployment: String) async throws(ProviderError) -> [TaggedResource] {
        let listing = try await script("list", [])
        return listing.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 5, fields[1] == deployment else { return nil }
            return TaggedResource(kind: fields[0], name: fields[3], providerID: fields[4], instance: fields[2])
        }
    }
}
