import Foundation

/// Existing hosts as a pool. Creating a compute node claims a free host whose labels satisfy the request; the claim
/// is a file on the host (`<state>/claims/<host>.claim`, created atomically) naming the deployment, instance and
/// resource, so a crashed run's claims are found by scanning the hosts. Deleting removes what deployctl put there
/// (`<state>/work/<resource>`) and the claim.
public struct SSHProvider: Provider {
    public let config: SSHProviderConfig
    public var name: String { config.name }
    /// Trust hosts whose key is not yet in known_hosts (`--accept-new-host-keys`).
    public var acceptNewHostKeys: Bool
    public var timeout: Duration

    public init(config: SSHProviderConfig, acceptNewHostKeys: Bool = false, timeout: Duration = .seconds(15)) {
        self.config = config
        self.acceptNewHostKeys = acceptNewHostKeys
        self.timeout = timeout
    }

    private func claimPath(_ host: SSHHostConfig) -> String { "\(config.stateDirectory)/claims/\(host.name).claim" }

    private func session(_ host: SSHHostConfig) throws(ProviderError) -> SSHSession {
        do {
            return try SSHSession(config.endpoint(host, acceptNewHostKey: acceptNewHostKeys, timeout: timeout))
        } catch {
            throw ProviderError(error.code.rawValue, provider: name, error.description)
        }
    }

    private func run(_ session: SSHSession, _ command: String, on host: SSHHostConfig) throws(ProviderError)
        -> CommandResult
    {
        do {
            return try session.run(command)
        } catch {
            throw ProviderError(error.code.rawValue, provider: name, error.description)
        }
    }

    /// Hosts that satisfy the request, CPU-only hosts first so that GPU hosts stay free for GPU work.
    func candidates(for request: ComputeRequest) -> [SSHHostConfig] {
        config.hosts.filter { host in
            host.cpus >= request.cpus && host.memoryBytes >= request.memoryBytes && host.gpus >= request.gpus
        }.sorted { $0.gpus < $1.gpus }
    }

    func createComputeBlocking(_ request: ComputeRequest) throws(ProviderError) -> ProvisionedCompute {
        let fitting = candidates(for: request)
        guard !fitting.isEmpty else {
            throw ProviderError(
                "no-fitting-host", provider: name,
                "no host has cpus ≥ \(request.cpus), mem ≥ \(request.memoryBytes) bytes and gpus ≥ \(request.gpus) "
                    + "for \(request.instance); the hosts' labels: "
                    + config.hosts.map { "\($0.name) (cpus \($0.cpus), gpus \($0.gpus))" }.joined(separator: ", "))
        }
        let claim = Claim(deployment: request.deployment, instance: request.instance, name: request.name)
        var taken: [String] = []
        var unreachable: [String] = []
        for host in fitting {
            // An unreachable host is skipped for the next one that fits; any other failure (a changed host key,
            // a refused key) stops the claim: it needs a person's attention.
            let session: SSHSession
            do {
                session = try self.session(host)
            } catch  where error.code == SSHError.Code.connect.rawValue {
                unreachable.append("\(host.name) (\(error.message))")
                continue
            }
            let path = claimPath(host)
            // `set -C` makes the redirection fail if the file exists: an atomic claim. The same name is a resume.
            let command = """
                mkdir -p \(shellQuote(config.stateDirectory))/claims && \
                if (set -C; printf '%s\\n' \(shellQuote(claim.line)) > \(shellQuote(path))) 2>/dev/null; then \
                echo claimed; else echo taken; cat \(shellQuote(path)); fi
                """
            let result = try run(session, command, on: host)
            let lines = result.stdout.split(separator: "\n").map(String.init)
            if lines.first == "claimed" || (lines.first == "taken" && lines.dropFirst().first == claim.line) {
                return ProvisionedCompute(providerID: host.name, privateAddress: host.address, publicAddress: nil)
            }
            taken.append("\(host.name) (\(lines.dropFirst().first.flatMap(Claim.init(line:))?.instance ?? "claimed"))")
        }
        if !unreachable.isEmpty {
            throw ProviderError(
                SSHError.Code.connect.rawValue, provider: name,
                "no free host for \(request.instance): unreachable: \(unreachable.joined(separator: "; "))"
                    + (taken.isEmpty ? "" : "; claimed: \(taken.joined(separator: ", "))"))
        }
        throw ProviderError(
            "no-free-host", provider: name,
            "every host that fits \(request.instance) is claimed: \(taken.joined(separator: ", ")); add hosts or "
                + "remove a deployment")
    }

    func deleteComputeBlocking(name resource: String, providerID: String?) throws(ProviderError) {
        let hosts = config.hosts.filter { providerID == nil || $0.name == providerID }
        for host in hosts {
            let session = try session(host)
            let path = claimPath(host)
            // Only a claim naming this resource is released; anything else on the host is left alone.
            let command = """
                if [ -f \(shellQuote(path)) ] && cut -f3 \(shellQuote(path)) | grep -qxF \(shellQuote(resource)); then \
                rm -rf \(shellQuote("\(config.stateDirectory)/work/\(resource)")) && rm -f \(shellQuote(path)) && \
                echo released; fi
                """
            let result = try run(session, command, on: host)
            if result.stdout.contains("released") { return }
        }
    }

    // MARK: The contract, off the cooperative threads (libssh2 blocks)

    public func createCompute(_ request: ComputeRequest) async throws(ProviderError) -> ProvisionedCompute {
        return try await offload { () throws(ProviderError) in try self.createComputeBlocking(request) }
    }

    public func deleteCompute(name resource: String, providerID: String?) async throws(ProviderError) {
        try await offload { () throws(ProviderError) in
            try self.deleteComputeBlocking(name: resource, providerID: providerID)
        }
    }

    public func deleteVolume(name resource: String, providerID: String?) async throws(ProviderError) {
        try await offload { () throws(ProviderError) in
            try self.deleteVolumeBlocking(name: resource, providerID: providerID)
        }
    }

    public func attachVolume(_ request: AttachmentRequest) async throws(ProviderError) -> ProvisionedAttachment {
        return try await offload { () throws(ProviderError) in try self.attachVolumeBlocking(request) }
    }

    public func detachVolume(name resource: String, providerID: String?) async throws(ProviderError) {
        try await offload { () throws(ProviderError) in
            try self.detachVolumeBlocking(name: resource, providerID: providerID)
        }
    }

    public func resources(deployment: String) async throws(ProviderError) -> [TaggedResource] {
        return try await offload { () throws(ProviderError) in try self.resourcesBlocking(deployment: deployment) }
    }

    // MARK: Volumes

    /// SSH hosts have no storage service: a volume is a directory, `<state>/volumes/<name>`, made on the host it is
    /// first attached to (hosts that share that path share the volume). An existing volume (`volume_id`) is an
    /// absolute path on the hosts; deployctl never deletes it.
    public func createVolume(_ request: VolumeRequest) async throws(ProviderError) -> ProvisionedVolume {
        if let existing = request.existingID {
            guard existing.hasPrefix("/") else {
                throw ProviderError(
                    "bad-volume-id", provider: name,
                    "volume_id '\(existing)' of \(request.instance): on an ssh provider a volume is a directory on "
                        + "the hosts; give its absolute path")
            }
            return ProvisionedVolume(providerID: existing)
        }
        return ProvisionedVolume(providerID: request.name)
    }

    private func volumeDirectory(_ volumeID: String) -> String {
        volumeID.hasPrefix("/") ? volumeID : "\(config.stateDirectory)/volumes/\(volumeID)"
    }

    func deleteVolumeBlocking(name resource: String, providerID: String?) throws(ProviderError) {
        if providerID?.hasPrefix("/") == true { return }  // someone else's volume
        let directory = volumeDirectory(resource)
        let tag = "\(directory)/.deployctl-volume"
        for host in config.hosts {
            let session = try session(host)
            // Only a directory whose tag names this resource is removed.
            _ = try run(
                session,
                "if [ -f \(shellQuote(tag)) ] && cut -f3 \(shellQuote(tag)) | grep -qxF \(shellQuote(resource)); then "
                    + "rm -rf \(shellQuote(directory)); fi",
                on: host)
        }
    }

    func attachVolumeBlocking(_ request: AttachmentRequest) throws(ProviderError) -> ProvisionedAttachment {
        guard let host = config.hosts.first(where: { $0.name == request.computeID }) else {
            throw ProviderError("unknown-host", provider: name, "no host named '\(request.computeID)'")
        }
        let source = volumeDirectory(request.volumeID)
        let location = request.location ?? "\(config.stateDirectory)/mnt/\(request.name)"
        guard location.hasPrefix("/") else {
            throw ProviderError(
                "bad-location", provider: name, "attachment location '\(location)' must be an absolute path")
        }
        let record = "\(config.stateDirectory)/attachments/\(request.name)"
        let line = [request.deployment, request.instance, request.name, location].joined(separator: "\t")
        let volumeTag = Claim(deployment: request.deployment, instance: request.volumeInstance, name: request.volumeID)
            .line
        // The record is written before the link, so a crash in between leaves something `resources` finds.
        var script = "set -e\n"
        if request.volumeID.hasPrefix("/") {
            script +=
                "[ -d \(shellQuote(source)) ] || { printf 'volume %s does not exist on this host\\n' \(shellQuote(source)) >&2; "
                + "exit 3; }\n"
        } else {
            script += """
                mkdir -p \(shellQuote(source))
                [ -f \(shellQuote(source + "/.deployctl-volume")) ] || \
                printf '%s\\n' \(shellQuote(volumeTag)) > \(shellQuote(source + "/.deployctl-volume"))

                """
        }
        script += """
            mkdir -p \(shellQuote(config.stateDirectory + "/attachments")) "$(dirname \(shellQuote(location)))"
            printf '%s\\n' \(shellQuote(line)) > \(shellQuote(record))
            if [ -L \(shellQuote(location)) ]; then
              [ "$(readlink \(shellQuote(location)))" = \(shellQuote(source)) ] || \
              { printf '%s already links elsewhere\\n' \(shellQuote(location)) >&2; exit 3; }
            elif [ -e \(shellQuote(location)) ]; then
              printf '%s exists and is not a deployctl attachment\\n' \(shellQuote(location)) >&2; exit 3
            else
              ln -s \(shellQuote(source)) \(shellQuote(location))
            fi
            """
        let session = try session(host)
        let result = try run(session, script, on: host)
        guard result.exitStatus == 0 else {
            throw ProviderError(
                "attach-failed", provider: name,
                "attaching \(request.volumeID) at \(location) on \(host.name) failed: "
                    + result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return ProvisionedAttachment(providerID: host.name, location: location)
    }

    func detachVolumeBlocking(name resource: String, providerID: String?) throws(ProviderError) {
        let record = "\(config.stateDirectory)/attachments/\(resource)"
        for host in config.hosts where providerID == nil || host.name == providerID {
            let session = try session(host)
            _ = try run(
                session,
                "if [ -f \(shellQuote(record)) ]; then loc=$(cut -f4 \(shellQuote(record))); "
                    + "[ -L \"$loc\" ] && rm -f \"$loc\"; rm -f \(shellQuote(record)); fi",
                on: host)
        }
    }

    public func access(computeID: String, name resource: String) throws(ProviderError) -> HostAccess {
        guard let host = config.hosts.first(where: { $0.name == computeID }) else {
            throw ProviderError("unknown-host", provider: name, "no host named '\(computeID)' in provider \(name)")
        }
        return HostAccess(
            endpoint: config.endpoint(host, acceptNewHostKey: acceptNewHostKeys, timeout: timeout),
            workDirectory: "\(config.stateDirectory)/work/\(resource)")
    }

    // MARK: Reconciling

    func resourcesBlocking(deployment: String) throws(ProviderError) -> [TaggedResource] {
        var found: [TaggedResource] = []
        let state = shellQuote(config.stateDirectory)
        for host in config.hosts {
            let session = try session(host)
            let command = """
                sed 's/^/compute\t/' \(shellQuote(claimPath(host))) 2>/dev/null; \
                for f in \(state)/volumes/*/.deployctl-volume; do [ -f "$f" ] && sed 's/^/volume\t/' "$f"; done; \
                for f in \(state)/attachments/*; do [ -f "$f" ] && cut -f1-3 "$f" | sed 's/^/attachment\t/'; done; true
                """
            let result = try run(session, command, on: host)
            for line in result.stdout.split(separator: "\n") {
                guard let tab = line.firstIndex(of: "\t"),
                    let claim = Claim(line: String(line[line.index(after: tab)...])),
                    claim.deployment == deployment
                else { continue }
                let kind = String(line[..<tab])
                let resource = TaggedResource(
                    kind: kind, name: claim.name, providerID: host.name, instance: claim.instance)
                // Hosts that share the state directory (NFS, or the test bed) see the same volumes and attachments:
                // each is one resource.
                if found.contains(where: { $0.kind == kind && $0.name == claim.name }) { continue }
                found.append(resource)
            }
        }
        return found
    }
}

/// A claim file's one line: deployment, instance and resource name, tab-separated (none contains a tab).
struct Claim: Equatable {
    var deployment: String
    var instance: String
    var name: String

    var line: String { "\(deployment)\t\(instance)\t\(name)" }

    init(deployment: String, instance: String, name: String) {
        self.deployment = deployment
        self.instance = instance
        self.name = name
    }

    init?(line: String) {
        let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        guard fields.count == 3 else { return nil }
        self.init(deployment: fields[0], instance: fields[1], name: fields[2])
    }
}

/// Single-quotes a word for the remote POSIX shell.
public func shellQuote(_ word: String) -> String {
    "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

extension SSHHostConfig {
    var cpus: Int {
        if case .number(let value)? = labels["cpus"] { return value }
        return 1
    }

    var gpus: Int {
        if case .number(let value)? = labels["gpus"] { return value }
        return 0
    }

    /// The `mem` label in bytes (`32 GB`, `64GiB`, `4096 MB`, or a plain number of bytes); unlimited when absent.
    var memoryBytes: Int64 {
        switch labels["mem"] {
        case .number(let bytes)?: return Int64(bytes)
        case .text(let text)?: return SizeLabel.bytes(text) ?? 0
        case nil: return Int64.max
        }
    }
}

/// Sizes in host labels and TOSCA scalar-unit.size values (`32 GB`, `64GiB`, `4096 MB`, plain bytes).
public enum SizeLabel {
    static let units: [String: Double] = [
        "b": 1, "kb": 1e3, "kib": 1024, "mb": 1e6, "mib": 1_048_576, "gb": 1e9, "gib": 1_073_741_824, "tb": 1e12,
        "tib": 1_099_511_627_776,
    ]

    public static func bytes(_ text: String) -> Int64? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let number = trimmed.prefix { $0.isNumber || $0 == "." }
        let unit = trimmed.dropFirst(number.count).trimmingCharacters(in: .whitespaces).lowercased()
        guard let value = Double(number), let factor = units[unit.isEmpty ? "b" : unit] else { return nil }
        return Int64(value * factor)
    }
}
