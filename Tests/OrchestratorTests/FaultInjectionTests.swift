import Foundation
import Providers
import TestBeds
import Testing

@testable import Orchestrator

/// The deployctl binary killed with SIGKILL at named points of `up` and `down` (DEPLOYCTL_FAILPOINT), then run
/// again: the rerun must converge with no leftover resource and no duplicate.
@Suite(
    "The deployctl process: SIGKILL, Ctrl-C and the deployment verbs", .serialized,
    .enabled(if: SSHTestBed.available, "needs root for network namespaces and sshd (scripts/testbed/ssh-hosts.sh)"),
    .enabled(if: DeployctlBinary.built, "needs .build/debug/deployctl; run `swift build` first"))
struct FaultInjectionTests {
    func deployctl(_ arguments: [String], failpoint: String? = nil) throws -> DeployctlBinary.Run {
        try DeployctlBinary.run(arguments, environment: ["DEPLOYCTL_FAILPOINT": failpoint])
    }

    /// Kill points in `up` (name:N is the N-th time the point is passed) and in `down`, paired per round.
    static let rounds: [(up: String, down: String)] = [
        ("compute.intended:1", "delete.marked:1"),
        ("compute.created:2", "delete.done:1"),
        ("volume.created:1", "delete.marked:3"),
        ("attachment.intended:1", "delete.done:4"),
        ("attachment.created:1", "delete.marked:2"),
        ("step.done:4", "delete.done:2"),
    ]

    /// Two SSH hosts, a state directory, a mount root for the fixture, and the options that point deployctl at them.
    static func bed() throws -> (SSHTestBed, home: String, root: String, common: [String]) {
        let bed = try SSHTestBed(hosts: 2)
        let root = bed.path("mnt")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        return (bed, bed.path("home"), root, ["--home", bed.path("home"), "--providers", bed.path("providers.yaml")])
    }

    @Test("up and down killed at many points: the rerun converges, nothing leaks, nothing is duplicated")
    func killAndRerun() throws {
        let (bed, home, root, common) = try Self.bed()
        let up = ["up", TwoTierDeployment.template, "--name", "crashy", "-i", "mount_root=\(root)"] + common
        func remote(_ kind: String) -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: bed.path("remote/\(kind)"))) ?? []).sorted()
        }
        for (index, round) in Self.rounds.enumerated() {
            let crashed = try deployctl(up, failpoint: round.up)
            #expect(crashed.killed, "round \(index): up was not killed at \(round.up):\n\(crashed.output)")
            let rerun = try deployctl(up)
            #expect(rerun.status == 0, "round \(index): up after a kill at \(round.up) failed:\n\(rerun.output)")
            #expect(remote("claims") == ["h1.claim", "h2.claim"], "round \(index)")
            #expect(remote("attachments").count == 1, "round \(index)")
            let store = try StateStore.open(home: URL(fileURLWithPath: home))
            let live = try store.liveResources(of: "crashy")
            #expect(live.count == 4 && live.allSatisfy { $0.status == .created }, "round \(index): \(live)")
            #expect(Set(live.map(\.name)).count == live.count)

            let killedDown = try deployctl(["down", "crashy"] + common, failpoint: round.down)
            #expect(killedDown.killed, "round \(index): down was not killed at \(round.down):\n\(killedDown.output)")
            let down = try deployctl(["down", "crashy"] + common)
            #expect(down.status == 0, "round \(index): down after a kill at \(round.down) failed:\n\(down.output)")
            #expect(remote("claims").isEmpty && remote("attachments").isEmpty && remote("volumes").isEmpty)
            #expect(try store.deployment(named: "crashy") == nil)
            try? FileManager.default.removeItem(atPath: "\(root)/agents.txt")
        }
        withExtendedLifetime(bed) {}
    }

    @Test("CLI: status, outputs, ssh and list report a deployment; a second up with another template is refused")
    func commandLine() throws {
        let (bed, _, root, common) = try Self.bed()
        let up = try deployctl(
            ["up", TwoTierDeployment.template, "--name", "cli", "-i", "mount_root=\(root)", "--format", "json"]
                + common)
        #expect(up.status == 0, "\(up.output)")
        #expect(up.output.contains(#""status": "deployed""#))

        let status = try deployctl(["status", "cli", "--format", "json"] + common)
        #expect(status.status == 0)
        let json = try #require(
            try JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [String: Any])
        #expect(json["status"] as? String == "deployed")
        let instances = try #require(json["instances"] as? [[String: Any]])
        #expect(instances.count == 5)
        let front = try #require(instances.first { $0["id"] as? String == "front[0]" })
        let address = try #require(front["private_address"] as? String)

        let verified = try deployctl(["status", "cli", "--verify"] + common)
        #expect(verified.status == 0 && verified.output.contains("verified: the provider holds exactly"))
        let outputs = try deployctl(["outputs", "cli"] + common)
        #expect(outputs.output.contains("portal_url: http://\(address):8080/"))
        let ssh = try deployctl(["ssh", "cli", "portal"] + common + ["--", "echo", "$SSH_CONNECTION"])
        #expect(ssh.status == 0, "\(ssh.output)")
        #expect(ssh.output.split(separator: " ").dropFirst(2).first.map(String.init) == address)

        let list = try deployctl(["list"] + common)
        #expect(list.output.hasPrefix("cli  deployed  testbed  4 resource(s)"))
        let other = bed.path("other.yaml")
        try FileManager.default.copyItem(atPath: TwoTierDeployment.template, toPath: other)
        let clash = try deployctl(["up", other, "--name", "cli", "-i", "mount_root=\(root)"] + common)
        #expect(clash.status == 2)
        #expect(clash.output.contains("was made from"))
        let unknown = try deployctl(["scale", "cli", "worker", "--count", "9"] + common)
        #expect(unknown.status == 2)
        #expect(unknown.output.contains("scales between 0 and 3"))

        let down = try deployctl(["down", "cli"] + common)
        #expect(down.status == 0, "\(down.output)")
        #expect(try deployctl(["status", "cli"] + common).status == 2)
        withExtendedLifetime(bed) {}
    }

    @Test("Ctrl-C stops up cleanly: running steps finish, the deployment is interrupted, up again completes it")
    func interrupt() throws {
        let (bed, home, root, common) = try Self.bed()
        let arguments = ["up", TwoTierDeployment.template, "--name", "stopped", "-i", "mount_root=\(root)"] + common
        let process = Process()
        process.executableURL = URL(fileURLWithPath: DeployctlBinary.path)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        // The playbook step takes seconds; interrupt while the portal is being set up.
        usleep(1_500_000)
        kill(process.processIdentifier, SIGINT)
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 130, "\(output)")
        #expect(output.contains("interrupted"))
        let store = try StateStore.open(home: URL(fileURLWithPath: home))
        #expect(try store.deployment(named: "stopped")?.status == .interrupted)
        #expect(try store.steps(of: "stopped").values.allSatisfy { $0.status != .running })
        let resumed = try deployctl(arguments)
        #expect(resumed.status == 0, "\(resumed.output)")
        #expect(!resumed.output.contains("front[0].create_compute"))  // done before the interrupt, not run again
        #expect(try deployctl(["down", "stopped"] + common).status == 0)
        withExtendedLifetime(bed) {}  // the hosts stay up until here
    }
}
