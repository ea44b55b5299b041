import Foundation

/// The result of checking one host of a provider: reachable and authenticated, or why not.
public struct HostCheck: Sendable, Equatable {
    public var host: String
    public var address: String
    public var ok: Bool
    /// The host's `uname -sr` and hostname when it answered, else the error.
    public var detail: String
}

extension SSHProviderConfig {
    /// The endpoint for one of this provider's hosts.
    public func endpoint(_ host: SSHHostConfig, acceptNewHostKey: Bool = false, timeout: Duration = .seconds(15))
        -> SSHEndpoint
    {
        SSHEndpoint(
            address: host.address, port: host.port, user: host.user, privateKey: host.key,
            knownHosts: knownHosts ?? ProvidersFile.expandTilde("~/.ssh/known_hosts"),
            acceptNewHostKey: acceptNewHostKey, timeout: timeout)
    }

    /// Connects to every host (concurrently), verifies its host key, authenticates and runs a harmless command.
    /// Creates nothing. Each check is bounded by `timeout`.
    public func check(acceptNewHostKeys: Bool = false, timeout: Duration = .seconds(15)) async -> [HostCheck] {
        await withTaskGroup(of: (Int, HostCheck).self) { group in
            for (index, host) in hosts.enumerated() {
                let endpoint = endpoint(host, acceptNewHostKey: acceptNewHostKeys, timeout: timeout)
                group.addTask {
                    // libssh2 blocks; each check holds one task for at most `timeout`.
                    do {
                        let session = try SSHSession(endpoint)
                        let result = try session.run("uname -sr; hostname")
                        let lines = result.stdout.split(separator: "\n").map(String.init)
                        guard result.exitStatus == 0, lines.count >= 2 else {
                            return (
                                index,
                                HostCheck(
                                    host: host.name, address: host.address, ok: false,
                                    detail: "logged in, but `uname -sr; hostname` failed (exit \(result.exitStatus))")
                            )
                        }
                        return (
                            index,
                            HostCheck(
                                host: host.name, address: host.address, ok: true, detail: "\(lines[1]), \(lines[0])")
                        )
                    } catch let error as SSHError {
                        return (
                            index,
                            HostCheck(host: host.name, address: host.address, ok: false, detail: error.message)
                        )
                    } catch {
                        return (
                            index,
                            HostCheck(host: host.name, address: host.address, ok: false, detail: "\(error)")
                        )
                    }
                }
            }
            var results: [(Int, HostCheck)] = []
            for await result in group { results.append(result) }
            return results.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }
}
