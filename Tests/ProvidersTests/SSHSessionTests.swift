import Foundation
import TestBeds
import Testing

@testable import Providers

@Suite(
    "SSH against real OpenSSH hosts", .serialized,
    .enabled(if: SSHTestBed.available, "needs root for network namespaces and sshd (scripts/testbed/ssh-hosts.sh)"))
struct SSHSessionTests {
    func endpoint(_ host: SSHTestBed.Host, knownHosts: String? = nil, key: String? = nil, port: Int? = nil)
        -> SSHEndpoint
    {
        SSHEndpoint(
            address: host.address, port: port ?? host.port, user: host.user, privateKey: key ?? host.key,
            knownHosts: knownHosts ?? host.knownHosts, timeout: .seconds(5))
    }

    @Test("a command runs on the right host, with its output, errors and exit status")
    func runCommand() throws {
        let bed = try SSHTestBed()
        for host in bed.hosts {
            let session = try SSHSession(endpoint(host))
            let result = try session.run("hostname; echo to-stderr >&2; exit 3")
            #expect(result.stdout == "\(host.hostname)\n")
            #expect(result.stderr == "to-stderr\n")
            #expect(result.exitStatus == 3)
            #expect(try session.run("true").exitStatus == 0)
        }
    }

    @Test("a file uploads byte for byte with its mode")
    func upload() throws {
        let bed = try SSHTestBed()
        let session = try SSHSession(endpoint(bed.hosts[0]))
        let content = Data((0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try session.upload(content, to: "/tmp/dctl-upload.bin", mode: 0o750)
        let check = try session.run("sha256sum /tmp/dctl-upload.bin | cut -c1-64; stat -c %a /tmp/dctl-upload.bin")
        let local = Process()
        local.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        let input = Pipe()
        let output = Pipe()
        local.standardInput = input
        local.standardOutput = output
        try local.run()
        input.fileHandleForWriting.write(content)
        try input.fileHandleForWriting.close()
        let expected = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).prefix(64)
        local.waitUntilExit()
        #expect(check.stdout == "\(expected)\n750\n")
    }

    @Test("a host whose key differs from known_hosts is refused")
    func hostKeyMismatch() throws {
        let bed = try SSHTestBed()
        // A known_hosts that records h2's key under h1's address.
        let lines = try String(contentsOfFile: bed.hosts[0].knownHosts, encoding: .utf8).split(separator: "\n")
        let h2Key = try #require(lines.first { $0.hasPrefix(bed.hosts[1].address + " ") })
        let forged = bed.path("forged_known_hosts")
        try (bed.hosts[0].address + h2Key.dropFirst(bed.hosts[1].address.count) + "\n")
            .write(toFile: forged, atomically: true, encoding: .utf8)
        let error = #expect(throws: SSHError.self) { _ = try SSHSession(endpoint(bed.hosts[0], knownHosts: forged)) }
        #expect(error?.code == .hostKeyMismatch)
        // Even trust-on-first-use never accepts a changed key.
        var trusting = endpoint(bed.hosts[0], knownHosts: forged)
        trusting.acceptNewHostKey = true
        #expect(throws: SSHError.self) { _ = try SSHSession(trusting) }
    }

    @Test("an unknown host is refused unless new host keys are accepted, which records the key")
    func unknownHost() throws {
        let bed = try SSHTestBed()
        let empty = bed.path("empty_known_hosts")
        let refused = #expect(throws: SSHError.self) { _ = try SSHSession(endpoint(bed.hosts[0], knownHosts: empty)) }
        #expect(refused?.code == .hostKeyUnknown)
        var trusting = endpoint(bed.hosts[0], knownHosts: empty)
        trusting.acceptNewHostKey = true
        _ = try SSHSession(trusting)
        let recorded = try String(contentsOfFile: empty, encoding: .utf8)
        #expect(recorded.contains(bed.hosts[0].address))
        // Now strict checking accepts it.
        #expect(try SSHSession(endpoint(bed.hosts[0], knownHosts: empty)).run("true").exitStatus == 0)
    }

    @Test("a closed port, a wrong key and an unreachable address fail with clear codes")
    func failures() throws {
        let bed = try SSHTestBed()
        let closed = #expect(throws: SSHError.self) { _ = try SSHSession(endpoint(bed.hosts[0], port: 2222)) }
        #expect(closed?.code == .connect)
        let otherKey = bed.path("other_key")
        let keygen = Process()
        keygen.executableURL = URL(fileURLWithPath: "/usr/bin/ssh-keygen")
        keygen.arguments = ["-q", "-t", "ed25519", "-N", "", "-f", otherKey]
        try keygen.run()
        keygen.waitUntilExit()
        let rejected = #expect(throws: SSHError.self) { _ = try SSHSession(endpoint(bed.hosts[0], key: otherKey)) }
        #expect(rejected?.code == .authentication)
        #expect(rejected?.description.contains("root@\(bed.hosts[0].address):22") == true)
    }
}

extension SSHSessionTests {
    @Test("a host without a key file authenticates with the SSH agent's keys, and says so when there is no agent")
    func agentAuthentication() throws {
        let bed = try SSHTestBed(hosts: 1)
        let host = bed.hosts[0]
        let socket = bed.path("agent.sock")
        let agent = Process()
        agent.executableURL = URL(fileURLWithPath: "/usr/bin/ssh-agent")
        agent.arguments = ["-D", "-a", socket]
        agent.standardOutput = FileHandle.nullDevice
        try agent.run()
        defer {
            kill(agent.processIdentifier, SIGKILL)  // ssh-agent -D ignores SIGTERM here
            agent.waitUntilExit()
            unsetenv("SSH_AUTH_SOCK")
        }
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: socket) { usleep(20_000) }

        setenv("SSH_AUTH_SOCK", socket, 1)
        // An empty agent has no key the host accepts.
        let refused = #expect(throws: SSHError.self) { try SSHSession(endpoint(host, key: "")) }
        #expect(refused?.code == .authentication)
        let add = Process()
        add.executableURL = URL(fileURLWithPath: "/usr/bin/ssh-add")
        add.arguments = ["-q", host.key]
        add.environment = ["SSH_AUTH_SOCK": socket]
        try add.run()
        add.waitUntilExit()
        try #require(add.terminationStatus == 0)
        let session = try SSHSession(endpoint(host, key: ""))
        #expect(try session.run("hostname").stdout == "\(host.hostname)\n")

        unsetenv("SSH_AUTH_SOCK")
        let noAgent = #expect(throws: SSHError.self) { try SSHSession(endpoint(host, key: "")) }
        #expect(noAgent?.message.contains("SSH_AUTH_SOCK is not set") == true)
    }
}
