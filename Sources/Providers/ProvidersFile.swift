import Foundation
import Yams

/// The providers file (`DEPLOYCTL_HOME/providers.yaml`, or `--providers FILE`): named providers deployments run on.
///
/// ```yaml
/// providers:
///   lab:
///     type: ssh
///     known_hosts: ~/.deployctl/known_hosts
///     hosts:
///       - { name: h1, address: 10.0.0.11, user: root, key: ~/.ssh/id_ed25519, labels: { cpus: 8, mem: 32 GB, gpus: 1 } }
/// ```
public struct ProvidersFile: Sendable, Equatable {
    public var providers: [String: ProviderConfig]

    /// `DEPLOYCTL_HOME/providers.yaml`.
    public static func defaultPath(home: URL) -> URL { home.appendingPathComponent("providers.yaml") }

    public static func load(_ path: String, localDirectory: String? = nil) throws(ProvidersFileError) -> ProvidersFile {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ProvidersFileError(file: path, path: "", message: "cannot read the providers file")
        }
        return try parse(text, file: path, localDirectory: localDirectory)
    }

    /// The providers of `path` when it exists (else none), plus the built-in `local` provider unless the file
    /// defines one of that name. A file that exists but does not parse is an error.
    public static func loadWithDefaults(_ path: String, home: URL) throws(ProvidersFileError) -> (
        file: ProvidersFile, declared: [String]
    ) {
        let localDirectory = home.appendingPathComponent("local").path
        var file = ProvidersFile(providers: [:])
        if FileManager.default.fileExists(atPath: path) {
            file = try load(path, localDirectory: localDirectory)
        }
        let declared = file.providers.keys.sorted()
        if file.providers["local"] == nil {
            file.providers["local"] = .local(LocalProviderConfig(directory: localDirectory))
        }
        return (file, declared)
    }

    /// `localDirectory` is where `local` providers keep their nodes unless the file says (DEPLOYCTL_HOME/local).
    public static func parse(_ text: String, file: String, localDirectory: String? = nil) throws(ProvidersFileError)
        -> ProvidersFile
    {
        let raw: Raw
        do {
            raw = try YAMLDecoder().decode(Raw.self, from: text)
        } catch let error as DecodingError {
            throw ProvidersFileError(file: file, decoding: error)
        } catch {
            throw ProvidersFileError(file: file, path: "", message: "not readable YAML: \(error)")
        }
        var providers: [String: ProviderConfig] = [:]
        for (name, entry) in raw.providers {
            switch entry.type {
            case "ssh":
                guard let hosts = entry.hosts, !hosts.isEmpty else {
                    throw ProvidersFileError(
                        file: file, path: "providers.\(name).hosts", message: "an ssh provider needs at least one host")
                }
                let names = hosts.map(\.name)
                if let repeated = names.first(where: { name in names.count { $0 == name } > 1 }) {
                    throw ProvidersFileError(
                        file: file, path: "providers.\(name).hosts", message: "host name '\(repeated)' is used twice")
                }
                providers[name] = .ssh(
                    SSHProviderConfig(
                        name: name, knownHosts: entry.knownHosts.map(expandTilde),
                        stateDirectory: entry.stateDirectory ?? "/var/lib/deployctl",
                        hosts: hosts.map { host in
                            SSHHostConfig(
                                name: host.name, address: host.address, port: host.port ?? 22,
                                user: host.user ?? "root",
                                key: host.key.map(expandTilde) ?? "", labels: host.labels ?? [:])
                        }))
            case "local":
                var local = LocalProviderConfig(
                    name: name,
                    directory: entry.directory.map(expandTilde) ?? (localDirectory ?? "/var/lib/deployctl/local"))
                if let bridge = entry.bridge {
                    guard (1...15).contains(bridge.count),
                        bridge.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) })
                    else {
                        throw ProvidersFileError(
                            file: file, path: "providers.\(name).bridge",
                            message: "a bridge name is 1 to 15 letters and digits")
                    }
                    local.bridge = bridge
                }
                if let subnet = entry.subnet {
                    let octets = subnet.split(separator: ".").compactMap { UInt8($0) }
                    guard octets.count == 3, subnet.split(separator: ".").count == 3 else {
                        throw ProvidersFileError(
                            file: file, path: "providers.\(name).subnet",
                            message: "give the /24 as its first three octets, such as 10.232.0")
                    }
                    local.subnet = subnet
                }
                providers[name] = .local(local)
            case "openstack":
                providers[name] = .openstack(
                    try openStack(
                        name, entry, file: file,
                        keyDirectory: localDirectory.map {
                            ($0 as NSString).deletingLastPathComponent + "/openstack/" + name
                        }))
            default:
                throw ProvidersFileError(
                    file: file, path: "providers.\(name).type",
                    message: "unknown provider type '\(entry.type)'; this deployctl knows: ssh, local, openstack")
            }
        }
        return ProvidersFile(providers: providers)
    }

    static func openStack(_ name: String, _ entry: RawProvider, file: String, keyDirectory: String?)
        throws(ProvidersFileError) -> OpenStackProviderConfig
    {
        let home = ProcessInfo.processInfo.environment["DEPLOYCTL_HOME"] ?? (NSHomeDirectory() + "/.deployctl")
        var config = OpenStackProviderConfig(
            name: name,
            keyDirectory: entry.keyDirectory.map(expandTilde) ?? keyDirectory ?? "\(home)/openstack/\(name)")
        config.cloud = entry.cloud
        config.cloudsFile = entry.cloudsFile.map(expandTilde)
        config.region = entry.region
        config.interface = entry.interface
        config.network = entry.network
        config.floatingNetwork = entry.floatingNetwork
        config.image = entry.image
        if let user = entry.sshUser { config.sshUser = user }
        if let port = entry.sshPort { config.sshPort = port }
        if let via = entry.sshVia {
            guard ["public", "private"].contains(via) else {
                throw ProvidersFileError(
                    file: file, path: "providers.\(name).ssh_via", message: "ssh_via is `public` or `private`")
            }
            config.sshVia = via
        }
        if let interface = entry.interface, !["public", "internal", "admin"].contains(interface) {
            throw ProvidersFileError(
                file: file, path: "providers.\(name).interface", message: "interface is public, internal or admin")
        }
        if let seconds = entry.bootTimeout { config.bootTimeout = .seconds(seconds) }
        if let seconds = entry.volumeTimeout { config.volumeTimeout = .seconds(seconds) }
        if let mount = entry.mountVolumes { config.mountVolumes = mount }
        return config
    }

    static func expandTilde(_ path: String) -> String {
        guard path.hasPrefix("~/") else { return path }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(String(path.dropFirst(2))).path
    }

    struct Raw: Decodable {
        var providers: [String: RawProvider]
    }

    struct RawProvider: Decodable {
        var type: String
        var knownHosts: String?
        var stateDirectory: String?
        var hosts: [RawHost]?
        var directory: String?
        var bridge: String?
        var subnet: String?
        var cloud: String?
        var cloudsFile: String?
        var region: String?
        var interface: String?
        var network: String?
        var floatingNetwork: String?
        var image: String?
        var sshUser: String?
        var sshPort: Int?
        var sshVia: String?
        var keyDirectory: String?
        var bootTimeout: Int?
        var volumeTimeout: Int?
        var mountVolumes: Bool?

        enum CodingKeys: String, CodingKey {
            case type, hosts, directory, bridge, subnet, cloud, region, interface, network, image
            case cloudsFile = "clouds_file"
            case floatingNetwork = "floating_network"
            case sshUser = "ssh_user"
            case sshPort = "ssh_port"
            case sshVia = "ssh_via"
            case keyDirectory = "key_directory"
            case bootTimeout = "boot_timeout"
            case volumeTimeout = "volume_timeout"
            case mountVolumes = "mount_volumes"
            case knownHosts = "known_hosts"
            case stateDirectory = "state_dir"
        }
    }

    struct RawHost: Decodable {
        var name: String
        var address: String
        var port: Int?
        var user: String?
        var key: String?
        var labels: [String: LabelValue]?
    }
}

/// A host label: a number (`cpus: 8`) or text (`mem: 32 GB`, `zone: rack-2`).
public enum LabelValue: Sendable, Equatable, Decodable, CustomStringConvertible {
    case number(Int)
    case text(String)

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int.self) {
            self = .number(number)
        } else {
            self = .text(try container.decode(String.self))
        }
    }

    public var description: String {
        switch self {
        case .number(let value): return String(value)
        case .text(let value): return value
        }
    }
}

public enum ProviderConfig: Sendable, Equatable {
    case ssh(SSHProviderConfig)
    case local(LocalProviderConfig)
    case openstack(OpenStackProviderConfig)

    public var type: String {
        switch self {
        case .ssh: return "ssh"
        case .local: return "local"
        case .openstack: return "openstack"
        }
    }
}

public struct SSHProviderConfig: Sendable, Equatable {
    public var name: String
    /// known_hosts for every host of the provider; nil means `~/.ssh/known_hosts`.
    public var knownHosts: String?
    /// Where deployctl keeps its claims and files on the hosts (`state_dir`, default /var/lib/deployctl).
    public var stateDirectory: String = "/var/lib/deployctl"
    public var hosts: [SSHHostConfig]
}

public struct SSHHostConfig: Sendable, Equatable {
    public var name: String
    public var address: String
    public var port: Int
    public var user: String
    /// The private key file; empty means the SSH agent ($SSH_AUTH_SOCK).
    public var key: String
    public var labels: [String: LabelValue]
}

/// A problem in the providers file: which file, where in it (a dotted path), and what is wrong.
public struct ProvidersFileError: Error, Sendable, CustomStringConvertible {
    public var file: String
    public var path: String
    public var message: String

    init(file: String, path: String, message: String) {
        self.file = file
        self.path = path
        self.message = message
    }

    init(file: String, decoding error: DecodingError) {
        func describe(_ codingPath: [any CodingKey]) -> String {
            codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
                .trimmingCharacters(in: CharacterSet(charactersIn: "."))
        }
        switch error {
        case .keyNotFound(let key, let context):
            self.init(file: file, path: describe(context.codingPath), message: "missing '\(key.stringValue)'")
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            self.init(file: file, path: describe(context.codingPath), message: "expected \(type)")
        case .dataCorrupted(let context):
            self.init(file: file, path: describe(context.codingPath), message: context.debugDescription)
        @unknown default:
            self.init(file: file, path: "", message: "\(error)")
        }
    }

    public var description: String { path.isEmpty ? "\(file): \(message)" : "\(file): \(path): \(message)" }
}
