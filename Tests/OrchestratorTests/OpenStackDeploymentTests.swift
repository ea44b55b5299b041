import Foundation
import Providers
import TestBeds
import Testing

@testable import Orchestrator

/// Whole deployments through the deployctl binary on an OpenStack cloud: a real Keystone, the simulator's Nova,
/// Neutron, Cinder and Glance, and behind its servers real nodes (the local provider's namespaces with sshd) and
/// behind its volumes loop devices — so the recipes run over SSH and volumes are formatted and mounted for real.
@Suite(
    "Deployments on OpenStack (Keystone and the simulator, servers as real nodes)", .serialized,
    .enabled(if: OpenStackTestBed.available, "needs python3-keystone and python3-openstackclient (`make deps`)"),
    .enabled(if: LocalProvider.unavailableReason() == nil, "\(LocalProvider.unavailableReason() ?? "")"),
    .enabled(if: DeployctlBinary.built, "needs .build/debug/deployctl; run `swift build` first"))
struct OpenStackDeploymentTests {
    let root: String
    let home: String
    let mounts: String

    init() throws {
        root = NSTemporaryDirectory() + "deployctl-osdeploy-\(UUID().uuidString.prefix(8))"
        home = root + "/home"
        mounts = root + "/mnt"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: mounts, withIntermediateDirectories: true)
    }

    /// The bed, with clouds.yaml and an openstack provider in the home's providers.yaml.
    func cloud() async throws -> OpenStackTestBed {
        let bed = try await OpenStackTestBed.nodeBacked(nodeScript: LocalProvider.nodeScript, root: root + "/cloud")
        try bed.writeConfiguration(
            home: home, cloud: "sim", provider: "cloud",
            settings: ["network": "private", "ssh_user": "root", "ssh_via": "private"])
        return bed
    }

    func deployctl(_ arguments: [String], failpoint: String? = nil) throws -> DeployctlBinary.Run {
        try DeployctlBinary.run(
            Array(arguments.prefix(1)) + ["--home", home] + arguments.dropFirst(),
            environment: ["DEPLOYCTL_FAILPOINT": failpoint, "OS_CLOUD": nil, "OS_AUTH_URL": nil])
    }

    /// What the simulator holds, by kind, leaving out the kinds that are empty.
    func held(_ bed: OpenStackTestBed) throws -> [String: Int] {
        try bed.state().filter { !$0.value.isEmpty }.mapValues(\.count)
    }

    @Test(
        "up (a volume formatted and mounted, a portal by script and playbook, a worker), scale 3 and 0, down: nothing left"
    )
    func upScaleDown() async throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let bed = try await cloud()
        let up = try deployctl(["up", TwoTierDeployment.template, "--name", "os2", "-i", "mount_root=\(mounts)"])
        #expect(up.status == 0, "\(up.output)\n\(bed.logTail())")
        #expect(up.output.contains("os2: deployed"))
        #expect(
            try held(bed) == [
                "servers": 2, "ports": 2, "security_groups": 2, "keypairs": 2, "volumes": 1, "attachments": 1,
            ])
        let volume = try #require(try bed.state()["volumes"]?.first)
        #expect(volume["status"] as? String == "in-use")
        // The front-end's user_data artifact reached Nova as its user data; the worker has none.
        let cloudInit = try Data(
            contentsOf: URL(fileURLWithPath: TwoTierDeployment.template).deletingLastPathComponent()
                .appendingPathComponent("cloud-init/front.yaml"))
        let userData = Dictionary(
            uniqueKeysWithValues: (try bed.state()["servers"] ?? []).map {
                ($0["name"] as? String ?? "", $0["user_data"] as? String ?? "none")
            })
        #expect(userData["dctl-os2-front-0-compute"] == cloudInit.base64EncodedString(), "\(userData.keys)")
        #expect(userData["dctl-os2-worker-0-compute"] == "none", "\(userData.keys)")

        // The portal's playbook wrote its configuration onto the results volume, mounted on the front node.
        let front = try deployctl([
            "ssh", "os2", "front", "--", "findmnt -n -o FSTYPE \(mounts)/results; cat \(mounts)/results/portal.conf",
        ])
        #expect(front.status == 0, "\(front.output)")
        #expect(front.output.hasPrefix("ext4\n"), "\(front.output)")
        #expect(front.output.contains("8080"), "\(front.output)")
        let verified = try deployctl(["status", "os2", "--verify"])
        #expect(verified.status == 0 && verified.output.contains("verified"), "\(verified.output)")

        let out = try deployctl(["scale", "os2", "worker", "--count", "3"])
        #expect(out.status == 0, "\(out.output)")
        #expect(try bed.count("servers") == 4)
        let inward = try deployctl(["scale", "os2", "worker", "--count", "0"])
        #expect(inward.status == 0, "\(inward.output)")
        #expect(try bed.count("servers") == 1 && bed.count("keypairs") == 1)

        let down = try deployctl(["down", "os2"])
        #expect(down.status == 0, "\(down.output)")
        #expect(try held(bed) == [:])
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: home + "/openstack/cloud")) ?? []).isEmpty)
        let nodes = (try? FileManager.default.contentsOfDirectory(atPath: root + "/cloud/nodes/nodes")) ?? []
        #expect(nodes.isEmpty, "nodes left: \(nodes)")
    }

    @Test(
        "up and down killed at points of the ledger: the reruns converge with no server, port, volume or key twice or left"
    )
    func killAndRerun() async throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let bed = try await cloud()
        let up = ["up", TwoTierDeployment.template, "--name", "crashy", "-i", "mount_root=\(mounts)"]
        for (upPoint, downPoint) in [
            ("compute.created:1", "delete.marked:2"), ("attachment.intended:1", "delete.done:1"),
        ] {
            let crashed = try deployctl(up, failpoint: upPoint)
            #expect(crashed.killed, "up was not killed at \(upPoint):\n\(crashed.output)")
            let rerun = try deployctl(up)
            #expect(rerun.status == 0, "up after a kill at \(upPoint):\n\(rerun.output)\n\(bed.logTail())")
            #expect(
                try held(bed) == [
                    "servers": 2, "ports": 2, "security_groups": 2, "keypairs": 2, "volumes": 1, "attachments": 1,
                ])
            let killed = try deployctl(["down", "crashy"], failpoint: downPoint)
            #expect(killed.killed, "down was not killed at \(downPoint):\n\(killed.output)")
            let down = try deployctl(["down", "crashy"])
            #expect(down.status == 0, "down after a kill at \(downPoint):\n\(down.output)")
            #expect(try held(bed) == [:], "after \(upPoint) / \(downPoint)")
        }
    }
}
