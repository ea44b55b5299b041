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

    /// The bed, with clouds.yaml and an openstack provider in the home's providers.yaml; deployctl logs in as
    /// `user` (not root: the nodes' default user, with passwordless sudo, as on a cloud image).
    func cloud(user: String = "root") async throws -> OpenStackTestBed {
        let bed = try await OpenStackTestBed.nodeBacked(
            nodeScript: LocalProvider.nodeScript, root: root + "/cloud", defaultUser: user == "root" ? nil : user)
        try bed.writeConfiguration(
            home: home, cloud: "sim", provider: "cloud",
            settings: ["network": "private", "ssh_user": user, "ssh_via": "private"])
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

    /// Share keys the nodes' sshd accepts (its authorized keys file, which every node of the bed reads).
    func shareKeys() throws -> Int {
        let text = (try? String(contentsOfFile: root + "/cloud/nodes/authorized_keys", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").filter { $0.contains(" deployctl-share:") }.count
    }

    @Test(
        "as the image's default user: up (a volume, a portal by script and playbook, a worker), scale 3 and 0, down"
    )
    func upScaleDown() async throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        // Logged in as `debian`, deployctl mounts through sudo, scripts run through sudo and playbooks become root.
        let bed = try await cloud(user: "debian")
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
        let who = try deployctl(["ssh", "os2", "front", "--", "id -un; stat -c %U \(mounts)/results/portal.conf"])
        #expect(who.output == "debian\nroot\n", "\(who.output)")
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

    @Test(
        "the bone-density study: staged data read-only and results shared from the front-end, a job, scale, down",
        .enabled(if: ClusterTools.missing.isEmpty, "needs \(ClusterTools.missing) (`make deps`)"))
    func boneDensityStudy() async throws {
        await MachineWide.studyPaths.acquire()
        defer { MachineWide.studyPaths.releaseLater() }  // the last defer to run: after `down`
        let mountPointsBefore = ["/data", "/results"].filter { FileManager.default.fileExists(atPath: $0) }
        defer {
            try? FileManager.default.removeItem(atPath: root)
            for point in ["/data", "/results"] where !mountPointsBefore.contains(point) { rmdir(point) }
        }
        let bed = try await cloud()
        try bed.setQuotas(#"{"cores": 64, "ram": 262144}"#)
        // The staged study, as a data manager leaves it: a volume of its own, outside the deployment.
        let staged = try bed.makeVolume(
            name: "ct-study-0042", sizeGB: 1, files: ["density-input.txt": "patient-0001 L1 218.4\n"])
        func ssh(_ node: String, _ command: String) throws -> DeployctlBinary.Run {
            try deployctl(["ssh", "bd", node, "--", command])
        }
        let arguments = [
            "up", BoneDensityClusterTests.template, "--name", "bd", "-i", "cpu_workers=2", "-i",
            "data_volume_id=\(staged)",
        ]
        defer { _ = try? deployctl(["down", "bd"]) }
        // Killed once a host mounted a volume from the front-end (the third attachment: the front-end's two come
        // first) and before the ledger knew it: the rerun finds the mount and the key as they are.
        let crashed = try deployctl(arguments, failpoint: "attachment.created:3")
        #expect(crashed.killed, "up was not killed:\n\(crashed.output)")
        let up = try deployctl(arguments)
        // (The rest waits on a cluster: a batch job would wait forever for workers that did not join.)
        try #require(up.status == 0, "\(up.output)\n\(bed.logTail())")
        #expect(up.output.contains("bd: deployed"))
        // Four servers (the front-end, two workers, the portal's host); Cinder attaches each volume once, to the
        // front-end, and the two public hosts have floating IPs.
        let holding = try held(bed)
        #expect(
            holding == [
                "servers": 4, "ports": 4, "security_groups": 4, "keypairs": 4, "volumes": 2, "attachments": 2,
                "floatingips": 2,
            ], "\(holding)")
        // The portal's host opens its portal's https port to the world; every node lets in the project's subnet
        // (SLURM's daemons and sshfs talk on ports no template declares).
        let groups = try bed.state()["security_groups"] ?? []
        func rules(_ node: String) -> [[String: Any]] {
            groups.first { $0["name"] as? String == "dctl-bd-\(node)-compute" }?["security_group_rules"]
                as? [[String: Any]] ?? []
        }
        #expect(Set(rules("portal-host-0").compactMap { $0["port_range_min"] as? Int }) == [22, 443])
        let address = try #require(
            (try bed.state()["servers"] ?? []).compactMap { ($0["addresses"] as? [String: Any])?["private"] }.first
                .flatMap { ($0 as? [[String: Any]])?.first?["addr"] as? String })
        let subnet = address.split(separator: ".").prefix(3).joined(separator: ".") + ".0/24"
        for node in ["front-0", "cpu-worker-0", "portal-host-0"] {
            #expect(
                rules(node).contains { $0["protocol"] is NSNull && $0["remote_ip_prefix"] as? String == subnet },
                "\(node): \(rules(node))")
        }
        let front = try ssh("front", "findmnt -nr -o FSTYPE,OPTIONS /data; findmnt -nr -o FSTYPE /results")
        #expect(front.output.hasPrefix("ext4 ro,"), "\(front.output)")
        #expect(front.output.hasSuffix("\next4\n"), "\(front.output)")
        // The others mount both from the front-end: the data read-only (the front-end's SFTP refuses writes too),
        // the results read-write.
        for node in ["cpu_worker[0]", "cpu_worker[1]", "portal_host"] {
            let mounts = try ssh(node, "findmnt -nr -o FSTYPE,OPTIONS /results; findmnt -nr -o FSTYPE,OPTIONS /data")
            #expect(mounts.output.hasPrefix("fuse.sshfs rw,"), "\(node): \(mounts.output)")
            if node != "portal_host" {
                #expect(mounts.output.contains("\nfuse.sshfs ro,"), "\(node): \(mounts.output)")
            }
        }

        // A researcher's job, submitted as the study account on the front-end, runs on a worker: it reads the data
        // and writes its results, which the front-end and the portal's host see.
        let jobID = try BoneDensityClusterTests.submitDensityJob(ssh)
        let results = try ssh("front", "cat /results/density-\(jobID).txt /results/job-\(jobID).log")
        #expect(
            results.output.contains("patient-0001 L1 218.4 measured on dctl-bd-cpu-worker-"), "\(results.output)")
        #expect(results.output.contains("second pass\n"), "\(results.output)")
        #expect(results.output.contains("data-read-only") && !results.output.contains("DATA-WRITABLE"))
        let portal = try ssh("portal_host", "cat /results/density-\(jobID).txt")
        #expect(portal.output.hasPrefix("patient-0001 L1 218.4"), "\(portal.output)")
        let shell = try ssh("cpu_worker[0]", "ls /etc/deployctl/shares")
        #expect(shell.output.split(separator: "\n").count == 6, "a key and known hosts per share: \(shell.output)")

        // Scaling: a new worker mounts both; a worker that leaves unmounts, and its keys go from the front-end.
        let out = try deployctl(["scale", "bd", "cpu_worker", "--count", "3"])
        #expect(out.status == 0, "\(out.output)")
        let third = try ssh("cpu_worker[2]", "cat /data/density-input.txt; ls /results")
        #expect(third.output.hasPrefix("patient-0001 L1 218.4\n"), "\(third.output)")
        #expect(third.output.contains("density-\(jobID).txt"), "\(third.output)")
        let keysBefore = try shareKeys()
        #expect(keysBefore == 7, "two shares for each of three workers, one for the portal's host: \(keysBefore)")
        let inward = try deployctl(["scale", "bd", "cpu_worker", "--count", "1"])
        #expect(inward.status == 0, "\(inward.output)")
        #expect(try bed.count("servers") == 3)
        #expect(try shareKeys() == 3)
        let afterScale = try ssh("front", "srun -N1 -w cpu-slurm-worker-0 cat /data/density-input.txt")
        #expect(afterScale.output == "patient-0001 L1 218.4\n", "\(afterScale.output)")

        // Killed while the shares go (each unmounted and its key revoked before the volumes are detached).
        let killed = try deployctl(["down", "bd"], failpoint: "delete.marked:2")
        #expect(killed.killed, "down was not killed:\n\(killed.output)")
        let down = try deployctl(["down", "bd"])
        #expect(down.status == 0, "\(down.output)")
        // The staged volume stays, detached; nothing else is left.
        #expect(try held(bed) == ["volumes": 1])
        let left = try #require(try bed.state()["volumes"]?.first)
        #expect(left["id"] as? String == staged && left["status"] as? String == "available")
        #expect(try shareKeys() == 0)
        let nodes = (try? FileManager.default.contentsOfDirectory(atPath: root + "/cloud/nodes/nodes")) ?? []
        #expect(nodes.isEmpty, "nodes left: \(nodes)")
    }
}
