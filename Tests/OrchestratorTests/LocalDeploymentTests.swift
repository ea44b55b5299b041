import Foundation
import Providers
import TOSCA
import Testing

@testable import Orchestrator

/// The two-tier fixture on the `local` provider: nodes made on this machine, the same SSH path afterwards.
@Suite(
    "Deployments on the local provider", .serialized,
    .enabled(if: LocalProvider.unavailableReason() == nil, "\(LocalProvider.unavailableReason() ?? "")"))
struct LocalDeploymentTests {
    @Test("up, scale and down on local nodes; down leaves no namespace, process, mount point or directory")
    func twoTierOnLocal() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "deployctl-localdeploy-\(UUID().uuidString.prefix(8))")
        let root = directory.appendingPathComponent("mnt").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let provider = LocalProvider(
            config: LocalProviderConfig(
                directory: directory.appendingPathComponent("local").path, bridge: "dctlt80", subnet: "10.232.80"))
        let store = try StateStore.open(home: directory.appendingPathComponent("home"))
        try store.create(DeploymentRecord(name: "loc", template: TwoTierDeployment.template, provider: "local"))
        func plan(workers: Int, numbers: [Int]? = nil) throws -> Plan {
            var options = ValidationOptions(inputs: ["mount_root": root])
            options.instanceCounts = ["worker": workers]
            if let numbers { options.instanceIndices = ["worker": numbers] }
            return try #require(ToscaProcessor.plan(path: TwoTierDeployment.template, options: options).1)
        }
        let deployer = Deployer(store: store, provider: provider)
        let one = try plan(workers: 1)
        let result = try await deployer.up(deployment: "loc", plan: one)
        #expect(result.status == .deployed && result.ran == 8, "\(result.failed)")
        let instances = try deployer.instances(deployment: "loc", plan: one)
        // front[0] and worker[0] are made in parallel: each draws the lowest free address when its turn comes.
        let front = try #require(instances.first { $0.instance == "front[0]" }?.privateAddress)
        #expect(["10.232.80.10", "10.232.80.11"].contains(front))
        #expect(instances.first { $0.instance == "worker[0]" }?.privateAddress != front)
        // The playbook wrote onto the volume mounted inside the front node, not onto this machine's directory.
        let (_, access) = try deployer.access(deployment: "loc", target: "portal", plan: one)
        let conf = try SSHSession(access.endpoint).run("cat \(root)/results/portal.conf")
        #expect(conf.stdout == "listen \(front):8080\n")
        #expect(!FileManager.default.fileExists(atPath: "\(root)/results/portal.conf"))

        let three = try plan(workers: 3)
        #expect(try await deployer.up(deployment: "loc", plan: three, previous: one).status == .deployed)
        #expect(try await deployer.verify(deployment: "loc").isEmpty)
        // A particular worker (and what it hosts) goes; the ones around it stay as they are.
        let gap = try plan(workers: 2, numbers: [0, 2])
        let workerTwo = try deployer.instances(deployment: "loc", plan: three).first { $0.instance == "worker[2]" }
        let removedOne = try await deployer.up(deployment: "loc", plan: gap, previous: three)
        #expect(removedOne.removed == ["agent[1]", "worker[1]"] && removedOne.ran == 0, "\(removedOne)")
        #expect(try deployer.instances(deployment: "loc", plan: gap).first { $0.instance == "worker[2]" } == workerTwo)
        #expect(try await deployer.verify(deployment: "loc").isEmpty)
        let scaledIn = try await deployer.up(deployment: "loc", plan: one, previous: gap)
        #expect(scaledIn.removed == ["agent[2]", "worker[2]"])

        let teardown = try await deployer.teardown(deployment: "loc", plan: one)
        #expect(teardown.remaining.isEmpty)
        try store.remove(deployment: "loc")
        let local = directory.appendingPathComponent("local").path
        for kind in ["nodes", "volumes", "attachments", "work"] {
            #expect(
                ((try? FileManager.default.contentsOfDirectory(atPath: "\(local)/\(kind)")) ?? []).isEmpty, "\(kind)")
        }
        #expect(!FileManager.default.fileExists(atPath: "\(root)/results"))
        #expect(!FileManager.default.fileExists(atPath: "/sys/class/net/dctlt80"), "the bridge outlived its nodes")
        let leftovers = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).filter { pid in
            guard pid.allSatisfy(\.isNumber), let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline")
            else { return false }
            return String(decoding: data, as: UTF8.self).contains(local)
        }
        #expect(leftovers.isEmpty, "processes left: \(leftovers)")
        try? FileManager.default.removeItem(at: directory)
    }
}
