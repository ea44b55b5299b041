import ArgumentParser
import Foundation
import Providers
import TOSCA

struct ProvidersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "providers",
        abstract: "List the providers deployments can run on, and check that they are reachable.",
        discussion: """
            Providers are declared in DEPLOYCTL_HOME/providers.yaml (or --providers FILE). An ssh provider lists \
            existing hosts: name, address, port, user, key file and labels such as cpus, mem and gpus, with one \
            known_hosts file for all of them (strict host key checking). An openstack provider names a cloud of \
            clouds.yaml (or uses OS_CLOUD or the OS_* variables of an openrc) and, optionally, the network, \
            floating_network, image and ssh_user to use.
            """,
        subcommands: [List.self, Check.self])

    struct Options: ParsableArguments {
        @Option(
            name: .customLong("home"), help: "deployctl's state directory (default: $DEPLOYCTL_HOME or ~/.deployctl).")
        var home: String?

        @Option(name: .customLong("providers"), help: "The providers file (default: DEPLOYCTL_HOME/providers.yaml).")
        var providers: String?

        /// The declared providers plus the built-in `local` one.
        func load() throws -> ProvidersFile {
            let home = resolvedHome(home)
            let path = providers ?? ProvidersFile.defaultPath(home: home).path
            do {
                if providers != nil && !FileManager.default.fileExists(atPath: path) {
                    return try ProvidersFile.load(path)  // reports the missing file
                }
                return try ProvidersFile.loadWithDefaults(path, home: home).file
            } catch {
                writeError("error: \(error.description)")
                throw ExitCode(2)
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the declared providers.")
        @Option(help: "Output format: text or json.") var format: OutputFormat = .text
        @OptionGroup var options: Options

        func run() throws {
            let file = try options.load()
            let names = file.providers.keys.sorted()
            switch format {
            case .json:
                let entries: [JSONValue] = names.compactMap { name in
                    if case .local(let local)? = file.providers[name] {
                        return .object([
                            ("name", .string(name)), ("type", .string("local")),
                            ("directory", .string(local.directory)),
                            ("bridge", .string(local.bridge)), ("subnet", .string(local.subnet + ".0/24")),
                        ])
                    }
                    if case .openstack(let cloud)? = file.providers[name] {
                        return .object([
                            ("name", .string(name)), ("type", .string("openstack")),
                            ("cloud", cloud.cloud.map(JSONValue.string) ?? .null),
                            ("region", cloud.region.map(JSONValue.string) ?? .null),
                            ("network", cloud.network.map(JSONValue.string) ?? .null),
                        ])
                    }
                    guard case .ssh(let ssh) = file.providers[name] else { return nil }
                    return .object([
                        ("name", .string(name)), ("type", .string("ssh")),
                        (
                            "hosts",
                            .array(
                                ssh.hosts.map { host in
                                    .object([
                                        ("name", .string(host.name)), ("address", .string(host.address)),
                                        ("port", .int(host.port)), ("user", .string(host.user)),
                                        (
                                            "labels",
                                            .object(
                                                host.labels.sorted { $0.key < $1.key }.map {
                                                    ($0.key, .string("\($0.value)"))
                                                })
                                        ),
                                    ])
                                })
                        ),
                    ])
                }
                print(JSONValue.array(entries).serialized())
            case .text:
                for name in names {
                    if case .local(let local)? = file.providers[name] {
                        print(
                            "\(name)  local  nodes on this machine (\(local.subnet).0/24 on \(local.bridge), \(local.directory))"
                        )
                    }
                    if case .openstack(let cloud)? = file.providers[name] {
                        print(
                            "\(name)  openstack  cloud \(cloud.cloud ?? "from OS_CLOUD or OS_*")"
                                + (cloud.region.map { ", region \($0)" } ?? ""))
                    }
                    guard case .ssh(let ssh) = file.providers[name] else { continue }
                    print("\(name)  ssh  \(ssh.hosts.count) host(s)")
                    for host in ssh.hosts {
                        let labels = host.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                        print(
                            "  \(host.name)  \(host.user)@\(host.address):\(host.port)  \(labels.joined(separator: " "))"
                        )
                    }
                }
            }
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Verify credentials and reachability of a provider without creating anything.",
            discussion: "Exit codes: 0 every host answered, 1 some did not, 2 usage or providers-file error.")

        @Argument(help: "The provider's name.") var name: String
        @Flag(help: "Trust hosts whose key is not in known_hosts yet, and record their keys.")
        var acceptNewHostKeys = false
        @Option(help: "Seconds to wait for each host.") var timeout: Int = 15
        @Option(help: "Output format: text or json.") var format: OutputFormat = .text
        @OptionGroup var options: Options

        func run() async throws {
            let file = try options.load()
            guard let provider = file.providers[name] else {
                writeError(
                    "error: no provider named '\(name)'; declared: \(file.providers.keys.sorted().joined(separator: ", "))"
                )
                throw ExitCode(2)
            }
            if case .local = provider {
                if let reason = LocalProvider.unavailableReason() {
                    print("FAIL  \(name): \(reason)")
                    throw ExitCode(1)
                }
                print("ok    \(name): root, namespaces and sshd available")
                return
            }
            if case .openstack(let config) = provider {
                let cloud: OpenStackProvider
                do { cloud = try OpenStackProvider(config: config) } catch {
                    print("FAIL  \(name): \(error.message)")
                    throw ExitCode(1)
                }
                let results = await cloud.check()
                switch format {
                case .json:
                    print(
                        JSONValue.array(
                            results.map {
                                .object([
                                    ("part", .string($0.part)), ("ok", .bool($0.ok)), ("detail", .string($0.detail)),
                                ])
                            }
                        ).serialized())
                case .text:
                    for result in results { print("\(result.ok ? "ok  " : "FAIL")  \(result.part)  \(result.detail)") }
                }
                if results.contains(where: { !$0.ok }) { throw ExitCode(1) }
                return
            }
            guard case .ssh(let ssh) = provider else { return }
            let results = await ssh.check(acceptNewHostKeys: acceptNewHostKeys, timeout: .seconds(timeout))
            switch format {
            case .json:
                print(
                    JSONValue.array(
                        results.map {
                            .object([
                                ("host", .string($0.host)), ("address", .string($0.address)), ("ok", .bool($0.ok)),
                                ("detail", .string($0.detail)),
                            ])
                        }
                    ).serialized())
            case .text:
                for result in results {
                    print("\(result.ok ? "ok  " : "FAIL")  \(result.host) (\(result.address))  \(result.detail)")
                }
                let failed = results.count { !$0.ok }
                print("\(name): \(results.count - failed) of \(results.count) host(s) reachable")
            }
            if results.contains(where: { !$0.ok }) { throw ExitCode(1) }
        }
    }
}
