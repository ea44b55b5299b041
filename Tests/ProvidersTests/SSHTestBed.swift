import Foundation

/// Real OpenSSH hosts in network namespaces (scripts/testbed/ssh-hosts.sh), brought up for one test and torn
/// down after it.
final class SSHTestBed {
    static let script = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/testbed/ssh-hosts.sh")

    /// Network namespaces and a second sshd need root; without it the tests are skipped (and say why).
    static var available: Bool { geteuid() == 0 && FileManager.default.fileExists(atPath: "/usr/sbin/ip") }

    struct Host: Decodable {
        var name: String
        var address: String
        var port: Int
        var user: String
        var key: String
        var hostname: String
        var knownHosts: String

        enum CodingKeys: String, CodingKey {
            case name, address, port, user, key, hostname
            case knownHosts = "known_hosts"
        }
    }

    let directory: URL
    let prefix = "dctlpt"
    let hosts: [Host]

    init(hosts count: Int = 2) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "deployctl-ssh-\(UUID().uuidString.prefix(8))", isDirectory: true)
        try Self.run(["up", String(count), "--dir", directory.path, "--prefix", prefix, "--subnet", "10.231.9"])
        let data = try Data(contentsOf: directory.appendingPathComponent("hosts.json"))
        struct File: Decodable { var hosts: [Host] }
        hosts = try JSONDecoder().decode(File.self, from: data).hosts
    }

    deinit {
        try? Self.run(["down", "--dir", directory.path, "--prefix", prefix])
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    struct ScriptFailed: Error, CustomStringConvertible {
        var description: String
    }

    static func run(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script.path] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ScriptFailed(description: "ssh-hosts.sh \(arguments.joined(separator: " ")) failed:\n\(text)")
        }
    }
}
