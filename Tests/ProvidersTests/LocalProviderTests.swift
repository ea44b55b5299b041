import Foundation
import Testing

@testable import Providers

/// The `local` provider on this machine: nodes are network namespaces with their own sshd, hostname and mounts.
@Suite(
    "The local provider", .serialized,
    .enabled(if: LocalProvider.unavailableReason() == nil, "\(LocalProvider.unavailableReason() ?? "")"))
struct LocalProviderTests {
    /// A provider with its own directory, bridge and subnet, so that tests never meet a user's local nodes.
    static func provider(_ index: Int) throws -> (LocalProvider, URL) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "deployctl-local-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let config = LocalProviderConfig(
            directory: directory.appendingPathComponent("local").path, bridge: "dctlt\(90 + index)",
            subnet: "10.232.\(90 + index)")
        return (LocalProvider(config: config), directory)
    }

    func run(_ provider: LocalProvider, on compute: String, _ command: String) throws -> CommandResult {
        let access = try provider.access(computeID: compute, name: compute)
        return try SSHSession(access.endpoint).run(command)
    }

    @Test("a node has its own address and hostname; read-only volumes refuse writes; delete leaves nothing")
    func nodesAndVolumes() async throws {
        let (provider, directory) = try Self.provider(1)
        let request = ComputeRequest(deployment: "lp", instance: "node[0]", name: "dctl-lp-node-0-compute")
        let compute = try await provider.createCompute(request)
        #expect(compute.privateAddress == "10.232.91.10")
        #expect(try await provider.createCompute(request) == compute)  // idempotent by name
        let hello = try run(provider, on: compute.providerID, "hostname; echo $SSH_CONNECTION")
        #expect(hello.stdout.hasPrefix("dctl-lp-node-0-compute\n"))
        #expect(hello.stdout.contains(" 10.232.91.10 22"))

        let data = try await provider.createVolume(
            VolumeRequest(deployment: "lp", instance: "data[0]", name: "dctl-lp-data-0-volume"))
        try "scan-001\n".write(toFile: data.providerID + "/study.txt", atomically: true, encoding: .utf8)
        let results = try await provider.createVolume(
            VolumeRequest(deployment: "lp", instance: "results[0]", name: "dctl-lp-results-0-volume"))
        let dataMount = directory.appendingPathComponent("mnt/data").path
        let resultsMount = directory.appendingPathComponent("mnt/results").path
        for (volume, location, name, readOnly) in [
            (data, dataMount, "dctl-lp-node-0-attach-data", true),
            (results, resultsMount, "dctl-lp-node-0-attach-results", false),
        ] {
            let attachment = AttachmentRequest(
                deployment: "lp", instance: "node[0]", name: name, volumeID: volume.providerID,
                volumeInstance: name, computeID: compute.providerID, location: location, readOnly: readOnly)
            _ = try await provider.attachVolume(attachment)
            _ = try await provider.attachVolume(attachment)  // idempotent
        }
        let read = try run(provider, on: compute.providerID, "cat \(dataMount)/study.txt")
        #expect(read.stdout == "scan-001\n")
        let write = try run(provider, on: compute.providerID, "touch \(dataMount)/x")
        #expect(write.exitStatus != 0)
        #expect(write.stderr.contains("Read-only file system"))
        let result = try run(provider, on: compute.providerID, "echo 42 > \(resultsMount)/density.txt")
        #expect(result.exitStatus == 0)
        #expect(try String(contentsOfFile: results.providerID + "/density.txt", encoding: .utf8) == "42\n")
        // The mounts are the node's own: this machine sees only the empty mount points.
        #expect(!FileManager.default.fileExists(atPath: "\(dataMount)/study.txt"))

        let kinds = try await provider.resources(deployment: "lp").map(\.kind).sorted()
        #expect(kinds == ["attachment", "attachment", "compute", "volume", "volume"])
        #expect(try await provider.resources(deployment: "other").isEmpty)

        try await provider.detachVolume(name: "dctl-lp-node-0-attach-data", providerID: compute.providerID)
        try await provider.deleteCompute(name: request.name, providerID: compute.providerID)
        try await provider.deleteCompute(name: request.name, providerID: nil)  // twice is fine
        try await provider.deleteVolume(name: "dctl-lp-data-0-volume", providerID: data.providerID)
        try await provider.deleteVolume(name: "dctl-lp-results-0-volume", providerID: results.providerID)
        #expect(try await provider.resources(deployment: "lp").isEmpty)
        #expect(!FileManager.default.fileExists(atPath: dataMount))
        #expect(!FileManager.default.fileExists(atPath: resultsMount))
        let namespaces = try LocalProvider.execute("/usr/sbin/ip", ["netns", "list"]).stdout
        #expect(!namespaces.contains(try await provider.namespace(of: request.name)))
        let bridge = try LocalProvider.execute("/usr/sbin/ip", ["link", "show", "dctlt91"])
        #expect(bridge.status != 0, "the bridge outlived its last node")
        #expect(Self.processes(mentioning: directory.path).isEmpty)
        try? FileManager.default.removeItem(at: directory)
    }

    @Test("each node has its own /etc, /var, /home and /run; this machine's packages show through; delete drops them")
    func privateSystemDirectories() async throws {
        let (provider, directory) = try Self.provider(2)
        defer { try? FileManager.default.removeItem(at: directory) }
        var nodes: [ProvisionedCompute] = []
        for index in 0..<2 {
            nodes.append(
                try await provider.createCompute(
                    ComputeRequest(deployment: "lp2", instance: "n[\(index)]", name: "dctl-lp2-n-\(index)-compute")))
        }
        let marker = "deployctl-test-\(UUID().uuidString.prefix(8))"
        let write = try run(
            provider, on: nodes[0].providerID,
            "echo a > /etc/\(marker) && echo a > /var/tmp/\(marker) && echo a > /run/\(marker) && echo a > /home/\(marker)"
                + " && cat /etc/os-release")
        #expect(write.exitStatus == 0, "\(write.stderr)")
        #expect(write.stdout.contains("ID="), "this machine's /etc shows through")
        let other = try run(
            provider, on: nodes[1].providerID, "ls /etc/\(marker) /var/tmp/\(marker) /run/\(marker) /home/\(marker)")
        #expect(other.exitStatus != 0)
        #expect(other.stderr.components(separatedBy: "No such file").count == 5, "\(other.stderr)")
        for path in ["/etc/\(marker)", "/var/tmp/\(marker)", "/run/\(marker)", "/home/\(marker)"] {
            #expect(!FileManager.default.fileExists(atPath: path), "\(path) leaked onto this machine")
        }
        let sshd = try run(provider, on: nodes[1].providerID, "test -x /usr/sbin/sshd && test -d /run/sshd")
        #expect(sshd.exitStatus == 0)
        for (index, node) in nodes.enumerated() {
            try await provider.deleteCompute(name: "dctl-lp2-n-\(index)-compute", providerID: node.providerID)
        }
        #expect(try await provider.resources(deployment: "lp2").isEmpty)
        let left = try FileManager.default.contentsOfDirectory(
            atPath: directory.appendingPathComponent("local/nodes").path)
        #expect(left.isEmpty)
    }

    @Test("two providers' nodes of one name get their own namespaces; a namespace left by a crash is taken over")
    func namespacesPerDirectory() async throws {
        let (first, firstDirectory) = try Self.provider(3)
        let (second, secondDirectory) = try Self.provider(4)
        defer {
            try? FileManager.default.removeItem(at: firstDirectory)
            try? FileManager.default.removeItem(at: secondDirectory)
        }
        let request = ComputeRequest(deployment: "ns", instance: "node[0]", name: "dctl-ns-node-0-compute")
        let firstNamespace = try await first.namespace(of: request.name)
        #expect(firstNamespace != (try await second.namespace(of: request.name)))
        // What a run killed between `ip netns add` and writing the node's directory leaves behind.
        #expect(try LocalProvider.execute("/usr/sbin/ip", ["netns", "add", firstNamespace]).status == 0)
        let a = try await first.createCompute(request)
        let b = try await second.createCompute(request)
        #expect(try run(first, on: a.providerID, "hostname").stdout == "dctl-ns-node-0-compute\n")
        #expect(try run(second, on: b.providerID, "hostname").stdout == "dctl-ns-node-0-compute\n")
        try await first.deleteCompute(name: request.name, providerID: a.providerID)
        try await second.deleteCompute(name: request.name, providerID: b.providerID)
        let namespaces = try LocalProvider.execute("/usr/sbin/ip", ["netns", "list"]).stdout
        #expect(!namespaces.contains(firstNamespace))
        #expect(!namespaces.contains(try await second.namespace(of: request.name)))
    }

    @Test("without root, deployctl says the local provider needs root and what to do instead")
    func explainsRoot() throws {
        let binary = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug/deployctl").path
        try #require(FileManager.default.isExecutableFile(atPath: binary), "needs .build/debug/deployctl")
        // Run the real binary as `nobody`.
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("deployctl-nobody-\(getpid())").path
        let check = try LocalProvider.execute(
            "/usr/bin/setpriv",
            ["--reuid=65534", "--regid=65534", "--clear-groups", binary, "providers", "check", "local", "--home", home])
        #expect(check.status == 1)
        #expect(check.stdout.contains("needs root: run deployctl as root"))
        #expect(check.stdout.contains("type: ssh"))
    }

    /// Processes whose command line mentions `text`.
    static func processes(mentioning text: String) -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.filter { $0.allSatisfy(\.isNumber) }.compactMap { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
            let line = String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
            return line.contains(text) ? "\(pid): \(line)" : nil
        }
    }
}
