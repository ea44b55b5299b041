import Foundation
import TestBeds
import Testing

@testable import Providers

/// The OpenStack provider against a real Keystone and the Nova/Neutron/Cinder/Glance simulator
/// (scripts/testbed/openstack-sim.py), without SSH hosts behind the servers: what the API calls do.
@Suite(
    "OpenStack provider against Keystone and the simulator", .serialized,
    .enabled(
        if: OpenStackTestBed.available,
        "needs Keystone and the openstack CLI (python3-keystone, python3-openstackclient)"))
struct OpenStackProviderTests {
    static func provider(
        _ bed: OpenStackTestBed, keys: String, credentials: OpenStackCredentials? = nil,
        configure: (inout OpenStackProviderConfig) -> Void = { _ in }
    ) -> OpenStackProvider {
        var config = OpenStackProviderConfig(name: "cloud", keyDirectory: keys)
        config.mountVolumes = false
        config.bootTimeout = .seconds(120)
        configure(&config)
        let password = OpenStackCredentials(
            authURL: bed.authURL.absoluteString,
            method: .password(
                user: bed.user, userDomain: bed.domain, password: bed.password, project: bed.project, projectID: nil,
                projectDomain: bed.domain), region: bed.region)
        return OpenStackProvider(config: config, credentials: credentials ?? password, poll: .milliseconds(200))
    }

    static func scratch() throws -> String {
        let directory = NSTemporaryDirectory() + "deployctl-openstack-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    /// Everything the simulator holds for the project (preloaded flavors, images and networks aside).
    static func leftovers(_ bed: OpenStackTestBed) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for (kind, items) in try bed.state() where !items.isEmpty { counts[kind] = items.count }
        return counts
    }

    @Test("Keystone: password and application-credential tokens, the catalog's region and interface, a wrong password")
    func keystone() async throws {
        let bed = try await OpenStackTestBed()
        let keys = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: keys) }
        let provider = Self.provider(bed, keys: keys)
        let token = try await provider.api.token()
        #expect(!token.value.isEmpty && token.expires > Date())
        #expect(try provider.api.endpoint(.compute, token: token).hasSuffix("/compute/v2.1"))
        #expect(try provider.api.endpoint(.network, token: token).hasSuffix("/network/v2.0"))
        #expect(try provider.api.endpoint(.image, token: token).hasSuffix("/image/v2"))
        #expect(try provider.api.endpoint(.volume, token: token).hasSuffix("/volume/v3/\(token.projectID)"))

        let application = Self.provider(
            bed, keys: keys,
            credentials: OpenStackCredentials(
                authURL: bed.authURL.absoluteString,
                method: .applicationCredential(
                    id: bed.applicationCredential.id, name: nil, user: nil, userDomain: bed.domain,
                    secret: bed.applicationCredential.secret), region: "RegionTwo", interface: "internal"))
        let scoped = try await application.api.token()
        #expect(scoped.projectID == token.projectID)
        #expect(try application.api.endpoint(.compute, token: scoped).contains("/regiontwo/"))
        _ = try await application.flavors()
        let requests = try bed.requests()
        #expect(
            requests.contains { ($0["path"] ?? "").contains("flavors") && ($0["prefix"] ?? "").contains("regiontwo") })

        let wrong = Self.provider(
            bed, keys: keys,
            credentials: OpenStackCredentials(
                authURL: bed.authURL.absoluteString,
                method: .password(
                    user: bed.user, userDomain: bed.domain, password: "not-the-password", project: bed.project,
                    projectID: nil, projectDomain: bed.domain)))
        let refused = await #expect(throws: ProviderError.self) { _ = try await wrong.flavors() }
        #expect(refused?.code == "openstack-auth")
        #expect(refused?.message.contains("not-the-password") == false)
        let nowhere = Self.provider(
            bed, keys: keys,
            credentials: OpenStackCredentials(
                authURL: bed.authURL.absoluteString,
                method: .password(
                    user: bed.user, userDomain: bed.domain, password: bed.password, project: bed.project,
                    projectID: nil, projectDomain: bed.domain), region: "RegionNine"))
        let noRegion = await #expect(throws: ProviderError.self) { _ = try await nowhere.flavors() }
        #expect(noRegion?.message.contains("RegionNine") == true && noRegion?.message.contains("RegionOne") == true)
    }

    @Test("a token is fetched anew before it expires")
    func tokenRefresh() async throws {
        let bed = try await OpenStackTestBed(tokenExpiration: 12)
        let keys = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: keys) }
        let provider = Self.provider(bed, keys: keys)
        // Eight callers at once (nodes made in parallel) share one authentication.
        let values = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<8 { group.addTask { try await provider.api.token().value } }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(values.count == 1)
        #expect(await provider.api.authentications() == 1)
        let first = try await provider.api.token()
        #expect(try await provider.api.token().value == first.value)
        // (Counted from here: on a loaded machine the first token may already have been in its last tenth.)
        let before = await provider.api.authentications()
        // Within the last tenth of its life the token is replaced, once, and calls go on working.
        try await Task.sleep(for: .seconds(11.5))
        let second = try await provider.api.token()
        #expect(second.value != first.value)
        #expect(await provider.api.authentications() == before + 1)
        #expect(!(try await provider.flavors()).isEmpty)
    }

    @Test(
        "a node: flavor by size and GPUs, image by os, keypair, security group and floating IP; all gone after delete")
    func compute() async throws {
        let bed = try await OpenStackTestBed()
        let keys = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: keys) }
        let provider = Self.provider(bed, keys: keys)
        let request = ComputeRequest(
            deployment: "os-a", instance: "front[0]", name: "dctl-os-a-front-0-compute", cpus: 2,
            memoryBytes: 3 << 30, osDistribution: "debian", osVersion: "12", ports: [443], isPublic: true)
        let made = try await provider.createCompute(request)
        #expect(made.publicAddress?.hasPrefix("172.24.4.") == true)
        #expect(made.privateAddress.hasPrefix("10.0.0."))
        #expect(try await provider.createCompute(request) == made)

        let state = try bed.state()
        let server = try #require(state["servers"]?.first)
        #expect(server["flavor_id"] as? String == "3")  // m1.medium: 2 vCPUs, 4 GB
        #expect(state["keypairs"]?.count == 1 && state["floatingips"]?.count == 1)
        #expect(state["security_groups"]?.count == 1)
        let rules = try #require(try await provider.securityGroups(named: request.name).first)["security_group_rules"]
        #expect(Set(rules.array.compactMap { $0["port_range_min"].int }) == [22, 443])
        // Everything from the node's subnet, where the deployment's other nodes are.
        #expect(
            rules.array.contains { $0["protocol"].string == nil && $0["remote_ip_prefix"].string == "10.0.0.0/24" },
            "\(rules)")

        let gpu = try await provider.createCompute(
            ComputeRequest(
                deployment: "os-a", instance: "gpu[0]", name: "dctl-os-a-gpu-0-compute", cpus: 4,
                memoryBytes: 16 << 30, gpus: 1, image: "ubuntu-22.04"))
        let servers = try bed.state()["servers"] ?? []
        let gpuServer = try #require(servers.first { $0["id"] as? String == gpu.providerID })
        // The smallest flavor with a GPU that fits 4 vCPUs and 16 GB: v1.vgpu (a vGPU), not the A100 flavors.
        #expect(gpuServer["flavor_id"] as? String == "12")

        let tagged = try await provider.resources(deployment: "os-a")
        #expect(Set(tagged.map(\.name)) == ["dctl-os-a-front-0-compute", "dctl-os-a-gpu-0-compute"])
        #expect(Set(tagged.map(\.instance)) == ["front[0]", "gpu[0]"])
        for resource in tagged {
            try await provider.deleteCompute(name: resource.name, providerID: resource.providerID)
            try await provider.deleteCompute(name: resource.name, providerID: resource.providerID)
            try await provider.deleteCompute(name: resource.name, providerID: nil)
        }
        #expect(try Self.leftovers(bed) == [:])
        #expect(try await provider.resources(deployment: "os-a").isEmpty)
    }

    @Test("lists longer than a page (2 here) are read whole: flavors, servers, volumes and images, link after link")
    func paging() async throws {
        let bed = try await OpenStackTestBed(simulatorArguments: ["--page-size", "2"])
        let keys = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: keys) }
        let provider = Self.provider(bed, keys: keys)
        // The vGPU flavor is on a later page of the flavor list.
        let gpu = try await provider.createCompute(
            ComputeRequest(
                deployment: "os-p", instance: "gpu[0]", name: "dctl-os-p-gpu-0-compute", cpus: 4,
                memoryBytes: 16 << 30, gpus: 1, image: "ubuntu-22.04"))
        let flavor = (try bed.state()["servers"] ?? []).first { $0["id"] as? String == gpu.providerID }?["flavor_id"]
        #expect(flavor as? String == "12")
        for index in 0..<3 {
            _ = try await provider.createCompute(
                ComputeRequest(deployment: "os-p", instance: "n[\(index)]", name: "dctl-os-p-n-\(index)-compute"))
            _ = try await provider.createVolume(
                VolumeRequest(
                    deployment: "os-p", instance: "v[\(index)]", name: "dctl-os-p-v-\(index)-volume", sizeBytes: 1 << 30
                ))
        }
        let found = try await provider.resources(deployment: "os-p")
        #expect(found.filter { $0.kind == "compute" }.count == 4)
        #expect(found.filter { $0.kind == "volume" }.count == 3)
        let checks = await provider.check()
        #expect(checks.contains { $0.part == "images" && $0.ok }, "\(checks)")
        let paged = Set(
            try bed.requests().filter { $0["query"]?.contains("marker=") == true }.compactMap { $0["path"] })
        #expect(paged.contains { $0.hasSuffix("/servers/detail") }, "\(paged)")
        #expect(paged.contains { $0.hasSuffix("/volumes/detail") }, "\(paged)")
        #expect(paged.contains { $0.hasSuffix("/flavors/detail") }, "\(paged)")
        #expect(paged.contains { $0.hasSuffix("/v2/images") }, "\(paged)")
        for resource in found {
            if resource.kind == "compute" {
                try await provider.deleteCompute(name: resource.name, providerID: resource.providerID)
            } else {
                try await provider.deleteVolume(name: resource.name, providerID: resource.providerID)
            }
        }
        #expect(try Self.leftovers(bed) == [:])
    }

    @Test("ports on networks by name: the first network gives the address; an unknown or ambiguous one makes nothing")
    func networksByName() async throws {
        let bed = try await OpenStackTestBed(simulatorArguments: ["--extra-network", "storage=10.0.1.0/24"])
        let keys = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: keys) }
        let provider = Self.provider(bed, keys: keys) { $0.network = "private" }
        var request = ComputeRequest(deployment: "os-n", instance: "n[0]", name: "dctl-os-n-n-0-compute")
        request.networks = ["storage", "private"]
        let made = try await provider.createCompute(request)
        #expect(made.privateAddress.hasPrefix("10.0.1."), "\(made)")
        let server = try #require(try bed.state()["servers"]?.first)
        let addresses = server["addresses"] as? [String: Any] ?? [:]
        #expect(Set(addresses.keys) == ["storage", "private"], "\(server)")
        #expect(try bed.count("ports") == 2)

        var lost = ComputeRequest(deployment: "os-n", instance: "lost[0]", name: "dctl-os-n-lost-0-compute")
        lost.networks = ["storage", "no-such-net"]
        let error = await #expect(throws: ProviderError.self) { try await provider.createCompute(lost) }
        #expect(error?.code == "unknown-network")
        #expect(
            error?.message.contains("lost[0] has a port on network 'no-such-net'") == true,
            "\(String(describing: error))")
        #expect(error?.message.contains("private, public, storage") == true)
        #expect(try bed.count("servers") == 1 && bed.count("keypairs") == 1 && bed.count("security_groups") == 1)
        try await provider.deleteCompute(name: request.name, providerID: made.providerID)
        try await provider.deleteCompute(name: lost.name, providerID: nil)
        #expect(try Self.leftovers(bed) == [:])
    }

    @Test("faults: 503s and 429s are retried, a server in ERROR says Nova's fault, a quota says which and by how much")
    func faults() async throws {
        let bed = try await OpenStackTestBed()
        let keys = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: keys) }
        let provider = Self.provider(bed, keys: keys)
        try bed.inject(#"{"method":"POST","path":"/servers$","status":503,"count":2}"#)
        try bed.inject(#"{"method":"GET","path":"/flavors","status":429,"count":1,"headers":{"Retry-After":"0"}}"#)
        let request = ComputeRequest(deployment: "os-f", instance: "n[0]", name: "dctl-os-f-n-0-compute")
        _ = try await provider.createCompute(request)
        try await provider.deleteCompute(name: request.name, providerID: nil)

        // Nova made the server and the volume but the answers were lost: the retries find them, nothing twice.
        try bed.inject(#"{"method":"POST","path":"/servers$","status":502,"count":1,"after":true}"#)
        try bed.inject(#"{"method":"POST","path":"/volumes$","status":500,"count":1,"after":true}"#)
        let lost = ComputeRequest(deployment: "os-f", instance: "lost[0]", name: "dctl-os-f-lost-0-compute")
        _ = try await provider.createCompute(lost)
        _ = try await provider.createVolume(
            VolumeRequest(deployment: "os-f", instance: "v[0]", name: "dctl-os-f-v-0-volume", sizeBytes: 1 << 30))
        #expect(try bed.count("servers") == 1 && bed.count("volumes") == 1)
        try await provider.deleteCompute(name: lost.name, providerID: nil)
        try await provider.deleteVolume(name: "dctl-os-f-v-0-volume", providerID: nil)

        try bed.inject(
            #"{"server_error":{"name":"doomed","message":"No valid host was found. There are not enough hosts available."}}"#
        )
        let doomed = ComputeRequest(deployment: "os-f", instance: "doomed[0]", name: "dctl-os-f-doomed-0-compute")
        let error = await #expect(throws: ProviderError.self) { try await provider.createCompute(doomed) }
        #expect(error?.code == "server-error")
        #expect(error?.message.contains("No valid host was found") == true)
        #expect(error?.message.contains("doomed[0]") == true)
        try await provider.deleteCompute(name: doomed.name, providerID: nil)

        try bed.setQuotas(#"{"cores":2}"#)
        let big = ComputeRequest(deployment: "os-f", instance: "big[0]", name: "dctl-os-f-big-0-compute", cpus: 4)
        let quota = await #expect(throws: ProviderError.self) { try await provider.createCompute(big) }
        #expect(quota?.code == "quota")
        #expect(quota?.message.contains("cores") == true)
        try await provider.deleteCompute(name: big.name, providerID: nil)

        // User data over Nova's 65535 bytes (base64) is refused before anything is made.
        var chatty = ComputeRequest(deployment: "os-f", instance: "chatty[0]", name: "dctl-os-f-chatty-0-compute")
        chatty.userData = "#cloud-config\n" + String(repeating: "# padding\n", count: 5000)
        let large = await #expect(throws: ProviderError.self) { try await provider.createCompute(chatty) }
        #expect(large?.code == "openstack-user-data")
        #expect(large?.message.contains("66688 bytes once base64-encoded; Nova takes at most 65535") == true)
        #expect(try Self.leftovers(bed) == [:])
    }

    @Test("volumes: created and found again by name, attached and detached through Nova, an existing one never deleted")
    func volumes() async throws {
        let bed = try await OpenStackTestBed()
        let keys = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: keys) }
        let provider = Self.provider(bed, keys: keys)
        let staged = try bed.makeVolume(name: "staged-ct", sizeGB: 2)
        let node = try await provider.createCompute(
            ComputeRequest(deployment: "os-v", instance: "n[0]", name: "dctl-os-v-n-0-compute"))
        let results = VolumeRequest(
            deployment: "os-v", instance: "results[0]", name: "dctl-os-v-results-0-volume", sizeBytes: 3 << 30)
        let volume = try await provider.createVolume(results)
        #expect(try await provider.createVolume(results) == volume)
        let data = try await provider.createVolume(
            VolumeRequest(deployment: "os-v", instance: "data[0]", name: "dctl-os-v-data-0-volume", existingID: staged))
        #expect(data.providerID == staged)
        let missing = await #expect(throws: ProviderError.self) {
            try await provider.createVolume(
                VolumeRequest(deployment: "os-v", instance: "x[0]", name: "x", existingID: "no-such-volume"))
        }
        #expect(missing?.code == "unknown-volume")

        func attachment(_ volumeID: String, _ instance: String, readOnly: Bool) -> AttachmentRequest {
            AttachmentRequest(
                deployment: "os-v", instance: "n[0]", name: "dctl-os-v-n-0-attach-\(instance)", volumeID: volumeID,
                volumeInstance: "\(instance)[0]", computeID: node.providerID, location: "/\(instance)",
                readOnly: readOnly)
        }
        let first = try await provider.attachVolume(attachment(volume.providerID, "results", readOnly: false))
        #expect(try await provider.attachVolume(attachment(volume.providerID, "results", readOnly: false)) == first)
        _ = try await provider.attachVolume(attachment(staged, "data", readOnly: true))
        let volumes = try bed.state()["volumes"] ?? []
        let stagedState = try #require(volumes.first { $0["id"] as? String == staged })
        #expect(stagedState["status"] as? String == "in-use")
        #expect("\(stagedState["metadata"] ?? "")".contains("readonly"))
        #expect(
            Set(try await provider.resources(deployment: "os-v").map(\.kind)) == ["attachment", "compute", "volume"])

        // down's order: attachments, volumes (the existing one is skipped by the orchestrator), computes.
        for resource in try await provider.resources(deployment: "os-v") where resource.kind == "attachment" {
            try await provider.detachVolume(name: resource.name, providerID: resource.providerID)
            try await provider.detachVolume(name: resource.name, providerID: nil)
        }
        try await provider.deleteVolume(name: results.name, providerID: volume.providerID)
        try await provider.deleteVolume(name: results.name, providerID: nil)
        // Deleting by a name that is not the volume's never touches it.
        try await provider.deleteVolume(name: "dctl-os-v-data-0-volume", providerID: staged)
        try await provider.deleteCompute(name: "dctl-os-v-n-0-compute", providerID: node.providerID)
        let left = try bed.state()
        #expect(left["volumes"]?.map { $0["id"] as? String } == [staged])
        #expect((left["servers"] ?? []).isEmpty && (left["attachments"] ?? []).isEmpty)
    }

    @Test(
        "a run that crashed after Nova made the server: the rerun finds it by name, resources find it, down removes it")
    func crashAndRerun() async throws {
        let bed = try await OpenStackTestBed()
        let keys = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: keys) }
        let request = ComputeRequest(
            deployment: "os-c", instance: "w[0]", name: "dctl-os-c-w-0-compute", isPublic: true)
        // The first process got as far as Nova's answer and died: a slow build makes it give up waiting.
        try bed.inject(#"{"delays":{"server_build":30}}"#)
        let impatient = Self.provider(bed, keys: keys) { $0.bootTimeout = .seconds(1) }
        let timeout = await #expect(throws: ProviderError.self) { try await impatient.createCompute(request) }
        #expect(timeout?.code == "boot-timeout")
        try bed.inject(#"{"delays":{"server_build":0.5}}"#)
        let rerun = Self.provider(bed, keys: keys)
        let made = try await rerun.createCompute(request)
        #expect((try bed.state()["servers"] ?? []).count == 1)
        #expect(try await rerun.resources(deployment: "os-c").map(\.providerID) == [made.providerID])
        // A third process that only knows the deployment's name cleans everything up.
        let down = Self.provider(bed, keys: keys)
        for resource in try await down.resources(deployment: "os-c") {
            try await down.deleteCompute(name: resource.name, providerID: nil)
        }
        #expect(try Self.leftovers(bed) == [:])
    }

    @Test("a VM image goes to Glance streamed and checked; the same again is reused; a failed upload leaves nothing")
    func images() async throws {
        let bed = try await OpenStackTestBed()
        let keys = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: keys) }
        let provider = Self.provider(bed, keys: keys)
        let file = keys + "/appliance.qcow2"
        var generator = SystemRandomNumberGenerator()
        try Data((0..<(6 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) }).write(
            to: URL(fileURLWithPath: file))
        let upload = OpenStackProvider.ImageUpload(
            file: file, name: "bone-density", properties: ["os_distro": "debian", "hw_firmware_type": "uefi"])
        let first = try await provider.uploadImage(upload)
        #expect(!first.reused && first.size == 6 << 20)
        let images = try bed.state()["images"] ?? []
        let stored = try #require(images.first { $0["id"] as? String == first.id })
        #expect(stored["status"] as? String == "active")
        #expect(stored["os_hash_value"] as? String == (try provider.sha512(file)))
        #expect("\(stored)".contains("uefi"))
        let again = try await provider.uploadImage(upload)
        #expect(again == OpenStackProvider.UploadedImage(id: first.id, size: first.size, reused: true))

        // Glance fails every try of the data upload: the error says so and the queued image is removed.
        try bed.inject(#"{"method":"PUT","path":"/file$","status":500,"count":20}"#)
        let broken = OpenStackProvider.ImageUpload(file: file, name: "broken")
        let error = await #expect(throws: ProviderError.self) { try await provider.uploadImage(broken) }
        #expect(error?.message.contains("uploading image broken") == true)
        #expect((try bed.state()["images"] ?? []).map { $0["id"] as? String } == [first.id])
    }

    @Test("deployctl with clouds.yaml: providers check, appliance upload; errors name the cloud, never the password")
    func commandLine() async throws {
        let bed = try await OpenStackTestBed()
        let home = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: home) }
        let binary = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug/deployctl").path
        try #require(FileManager.default.isExecutableFile(atPath: binary), "needs .build/debug/deployctl")
        try bed.writeConfiguration(
            home: home, cloud: "bimcv", provider: "bimcv",
            extra: "  wrong:\n    type: openstack\n    cloud: nowhere\n    clouds_file: \(home)/clouds.yaml\n")
        let environment: [String: String?] = ["DEPLOYCTL_HOME": home, "OS_CLOUD": nil, "OS_AUTH_URL": nil]
        let check = try runProgram(binary, ["providers", "check", "bimcv", "--home", home], environment: environment)
        #expect(check.status == 0, "\(check.output)")
        #expect(check.output.contains("g1.a100 (1 GPU)") && check.output.contains("debian-12"))
        #expect(!check.output.contains(bed.password))
        let wrong = try runProgram(binary, ["providers", "check", "wrong", "--home", home], environment: environment)
        #expect(wrong.status == 1 && wrong.output.contains("has no cloud 'nowhere'; it has: bimcv"))

        let file = home + "/tiny.qcow2"
        try Data(repeating: 7, count: 300_000).write(to: URL(fileURLWithPath: file))
        let upload = try runProgram(
            binary, ["appliance", "upload", file, "--provider", "bimcv", "--home", home, "--format", "json"],
            environment: environment)
        #expect(upload.status == 0, "\(upload.output)")
        let answer = try JSONSerialization.jsonObject(with: Data(upload.output.utf8)) as? [String: Any]
        #expect(answer?["name"] as? String == "tiny" && answer?["reused"] as? Bool == false, "\(upload.output)")
        #expect((try bed.state()["images"] ?? []).contains { $0["id"] as? String == answer?["id"] as? String })
        let local = try runProgram(binary, ["appliance", "upload", file, "--provider", "local", "--home", home])
        #expect(local.status == 2 && local.output.contains("uploading needs an openstack provider"))
    }

    @Test("an anti-affinity policy makes one server group per deployment and policy, gone with its last member")
    func antiAffinity() async throws {
        let bed = try await OpenStackTestBed()
        let keys = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: keys) }
        let provider = Self.provider(bed, keys: keys)
        var names: [String] = []
        for index in 0..<2 {
            var request = ComputeRequest(
                deployment: "os-g", instance: "w[\(index)]", name: "dctl-os-g-w-\(index)-compute")
            request.antiAffinityGroup = "spread"
            _ = try await provider.createCompute(request)
            names.append(request.name)
        }
        var soft = ComputeRequest(deployment: "os-g", instance: "p[0]", name: "dctl-os-g-p-0-compute")
        soft.antiAffinityGroup = "apart"
        soft.strictAntiAffinity = false
        _ = try await provider.createCompute(soft)
        let groups = try bed.state()["server_groups"] ?? []
        let spread = try #require(groups.first { $0["name"] as? String == "deployctl-os-g-spread" })
        #expect((spread["members"] as? [String])?.count == 2)
        #expect("\(spread)".contains("anti-affinity") && !"\(spread)".contains("soft"))
        let apart = try #require(groups.first { $0["name"] as? String == "deployctl-os-g-apart" })
        #expect("\(apart)".contains("soft-anti-affinity"))

        try await provider.deleteCompute(name: names[0], providerID: nil)
        #expect((try bed.state()["server_groups"] ?? []).count == 2)  // one member left in "spread"
        for name in [names[1], soft.name] { try await provider.deleteCompute(name: name, providerID: nil) }
        #expect(try Self.leftovers(bed) == [:])
    }

    @Test("a volume from a snapshot (at least the snapshot's size) and of a volume type; an unknown snapshot is named")
    func volumeSources() async throws {
        let bed = try await OpenStackTestBed()
        let keys = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: keys) }
        let provider = Self.provider(bed, keys: keys)
        let source = try bed.makeVolume(name: "source", sizeGB: 3)
        let snapshot = try await provider.api.call(
            .volume, "POST", "/snapshots", body: ["snapshot": ["volume_id": .string(source), "name": "base"]],
            what: "a snapshot for the test"
        ).body["snapshot"]["id"].string
        let id = try #require(snapshot)
        try await Task.sleep(for: .seconds(1))
        let made = try await provider.createVolume(
            VolumeRequest(
                deployment: "os-s", instance: "data[0]", name: "dctl-os-s-data-0-volume", sizeBytes: 1 << 30,
                snapshotID: id, volumeType: "lvmdriver-1"))
        let volume = try #require((try bed.state()["volumes"] ?? []).first { $0["id"] as? String == made.providerID })
        #expect(volume["size"] as? Int == 3)
        #expect(volume["snapshot_id"] as? String == id && volume["volume_type"] as? String == "lvmdriver-1")
        let missing = await #expect(throws: ProviderError.self) {
            try await provider.createVolume(
                VolumeRequest(deployment: "os-s", instance: "x[0]", name: "dctl-os-s-x-0-volume", snapshotID: "nope"))
        }
        #expect(missing?.code == "unknown-snapshot" && missing?.message.contains("x[0]") == true)
        try await provider.deleteVolume(name: "dctl-os-s-data-0-volume", providerID: made.providerID)
        #expect((try bed.state()["volumes"] ?? []).map { $0["id"] as? String } == [source])
    }
}
