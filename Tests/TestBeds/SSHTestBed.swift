import Foundation
import Synchronization

/// Real OpenSSH hosts in network namespaces (scripts/testbed/ssh-hosts.sh), brought up for one test and torn
/// down after it.
public final class SSHTestBed {
    public static let script = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/testbed/ssh-hosts.sh")

    /// Network namespaces and a second sshd need root; without it the tests are skipped (and say why).
    public static var available: Bool { geteuid() == 0 && FileManager.default.fileExists(atPath: "/usr/sbin/ip") }

    public struct Host: Decodable, Sendable {
        public var name: String
        public var address: String
        public var port: Int
        public var user: String
        public var key: String
        public var hostname: String
        public var knownHosts: String

        enum CodingKeys: String, CodingKey {
            case name, address, port, user, key, hostname
            case knownHosts = "known_hosts"
        }
    }

    public let directory: URL
    public let prefix: String
    public let subnet: String
    public let hosts: [Host]

    /// Beds of one test process run side by side (suites of different targets run in parallel): each takes its own
    /// prefix and /24 subnet.
    private static let nextIndex = Mutex(0)

    public init(hosts count: Int = 2) throws {
        let index = Self.nextIndex.withLock { value in
            defer { value = (value + 1) % 200 }
            return value
        }
        prefix = "dctlt\(index)"
        subnet = "10.231.\(20 + index)"
        directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "deployctl-ssh-\(UUID().uuidString.prefix(8))", isDirectory: true)
        // A test process killed mid-run never tore its beds down: sweep what is left of this prefix (the directory
        // does not exist yet, so only the prefix's network objects go).
        try Self.run(["down", "--dir", directory.path, "--prefix", prefix])
        try Self.run(["up", String(count), "--dir", directory.path, "--prefix", prefix, "--subnet", subnet])
        let data = try Data(contentsOf: directory.appendingPathComponent("hosts.json"))
        struct File: Decodable { var hosts: [Host] }
        hosts = try JSONDecoder().decode(File.self, from: data).hosts
    }

    deinit {
        try? Self.run(["down", "--dir", directory.path, "--prefix", prefix])
    }

    public func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

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
