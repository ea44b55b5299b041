import Foundation
import TestBeds
import Testing

@testable import Providers

/// A provider under test, with whatever keeps its back-end alive (a test bed) and a directory for mount points.
final class ProviderUnderTest: @unchecked Sendable {
    let provider: any Provider
    let scratch: String
    let keepAlive: AnyObject?
    /// Makes a volume outside deployctl holding `files` (path: text) and gives its id, and tells later whether it
    /// is still there with them: by default a directory on the hosts, as ssh and local providers take them.
    let existingVolume: (_ files: [String: String]) throws -> (id: String, intact: () throws -> Bool)

    init(
        provider: any Provider, scratch: String, keepAlive: AnyObject?,
        existingVolume: ((_ files: [String: String]) throws -> (id: String, intact: () throws -> Bool))? = nil
    ) {
        self.provider = provider
        self.scratch = scratch
        self.keepAlive = keepAlive
        self.existingVolume =
            existingVolume ?? { files in
                let directory = scratch + "/existing"
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                for (name, text) in files {
                    try text.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8)
                }
                return (
                    directory,
                    {
                        try files.allSatisfy { name, text in
                            try String(contentsOfFile: directory + "/" + name, encoding: .utf8) == text
                        }
                    }
                )
            }
    }

    func run(on computeID: String, _ command: String) throws -> CommandResult {
        let access = try provider.access(computeID: computeID, name: computeID)
        return try SSHSession(access.endpoint).run(command)
    }
}

/// How to make each provider for the contract suite. A new back-end adds one entry.
struct ProviderFactory: Sendable, CustomStringConvertible {
    var description: String
    var available: Bool
    var make: @Sendable () async throws -> ProviderUnderTest

    static let all: [ProviderFactory] = [
        ProviderFactory(description: "ssh", available: SSHTestBed.available) {
            let bed = try SSHTestBed(hosts: 2)
            guard case .ssh(let config)? = try ProvidersFile.load(bed.path("providers.yaml")).providers["testbed"]
            else { throw ProviderError("test", provider: "ssh", "the test bed wrote no ssh provider") }
            return ProviderUnderTest(
                provider: SSHProvider(config: config, timeout: .seconds(5)), scratch: bed.path("scratch"),
                keepAlive: bed)
        },
        ProviderFactory(description: "local", available: LocalProvider.unavailableReason() == nil) {
            let (provider, directory) = try LocalProviderTests.provider(5)
            return ProviderUnderTest(
                provider: provider, scratch: directory.appendingPathComponent("scratch").path, keepAlive: nil)
        },
        ProviderFactory(
            description: "openstack",
            available: OpenStackTestBed.available && LocalProvider.unavailableReason() == nil
        ) {
            let cloud = try await OpenStackCloud.make()
            return ProviderUnderTest(
                provider: cloud.provider, scratch: cloud.scratch, keepAlive: cloud,
                existingVolume: { files in
                    let id = try cloud.bed.makeVolume(name: "existing", sizeGB: 1, files: files)
                    return (id, { try cloud.bed.state()["volumes"]?.contains { $0["id"] as? String == id } == true })
                })
        },
    ]
}

/// The contract every provider keeps: idempotent creation by name, tags that find everything again, idempotent
/// deletion, volumes that attach where asked, and never touching what is not deployctl's.
@Suite(
    "Provider contract", .serialized,
    .enabled(if: ProviderFactory.all.contains(where: \.available), "no provider can run here (needs root)"))
struct ProviderContractTests {
    static var factories: [ProviderFactory] { ProviderFactory.all.filter(\.available) }

    @Test("compute: creation is idempotent by name, found by tag, deleted twice without harm", arguments: factories)
    func compute(_ factory: ProviderFactory) async throws {
        let subject = try await factory.make()
        let provider = subject.provider
        let web = ComputeRequest(deployment: "contract-a", instance: "web[0]", name: "dctl-contract-a-web-0-compute")
        let first = try await provider.createCompute(web)
        #expect(try await provider.createCompute(web).providerID == first.providerID)
        let other = ComputeRequest(deployment: "contract-b", instance: "db[0]", name: "dctl-contract-b-db-0-compute")
        let second = try await provider.createCompute(other)
        #expect(second.providerID != first.providerID)
        #expect(try subject.run(on: first.providerID, "echo ok").stdout == "ok\n")

        let tagged = try await provider.resources(deployment: "contract-a")
        #expect(tagged.map(\.name) == [web.name])
        #expect(tagged.first?.kind == "compute" && tagged.first?.instance == "web[0]")
        #expect(try await provider.resources(deployment: "contract-b").map(\.name) == [other.name])

        try await provider.deleteCompute(name: web.name, providerID: first.providerID)
        try await provider.deleteCompute(name: web.name, providerID: first.providerID)
        try await provider.deleteCompute(name: web.name, providerID: nil)
        #expect(try await provider.resources(deployment: "contract-a").isEmpty)
        #expect(try await provider.resources(deployment: "contract-b").map(\.name) == [other.name])
        try await provider.deleteCompute(name: other.name, providerID: nil)
        #expect(try await provider.resources(deployment: "contract-b").isEmpty)
    }

    @Test("a request nothing can satisfy fails with a clear error and leaves nothing", arguments: factories)
    func impossible(_ factory: ProviderFactory) async throws {
        let subject = try await factory.make()
        let request = ComputeRequest(
            deployment: "contract-c", instance: "gpu[0]", name: "dctl-contract-c-gpu-0-compute", gpus: 64)
        let error = await #expect(throws: ProviderError.self) { try await subject.provider.createCompute(request) }
        #expect(error?.code == "no-fitting-host")
        #expect(error?.message.contains("gpu[0]") == true)
        #expect(try await subject.provider.resources(deployment: "contract-c").isEmpty)
        #expect(throws: ProviderError.self) { try subject.provider.access(computeID: "no-such-node", name: "x") }
    }

    @Test(
        "volumes attach where asked, idempotently; detach and delete twice; others' volumes survive",
        arguments: factories)
    func volumes(_ factory: ProviderFactory) async throws {
        let subject = try await factory.make()
        let provider = subject.provider
        let deployment = "contract-v"
        let compute = try await provider.createCompute(
            ComputeRequest(deployment: deployment, instance: "node[0]", name: "dctl-contract-v-node-0-compute"))
        let volume = try await provider.createVolume(
            VolumeRequest(deployment: deployment, instance: "data[0]", name: "dctl-contract-v-data-0-volume"))
        let (existing, intact) = try subject.existingVolume(["keep.txt": "keep\n"])
        let external = try await provider.createVolume(
            VolumeRequest(
                deployment: deployment, instance: "old[0]", name: "dctl-contract-v-old-0-volume", existingID: existing))
        #expect(external.providerID == existing)

        func attachment(_ volumeID: String, _ instance: String, _ location: String) -> AttachmentRequest {
            AttachmentRequest(
                deployment: deployment, instance: "node[0]", name: "dctl-contract-v-node-0-attach-\(instance)",
                volumeID: volumeID, volumeInstance: instance, computeID: compute.providerID, location: location,
                readOnly: false)
        }
        let data = attachment(volume.providerID, "data", subject.scratch + "/mnt/data")
        let old = attachment(existing, "old", subject.scratch + "/mnt/old")
        for request in [data, old] {
            let first = try await provider.attachVolume(request)
            #expect(first.location == request.location)
            #expect(try await provider.attachVolume(request) == first)
        }
        let written = try subject.run(
            on: compute.providerID,
            "echo 7 > \(subject.scratch)/mnt/data/seven.txt && cat \(subject.scratch)/mnt/data/seven.txt "
                + "\(subject.scratch)/mnt/old/keep.txt")
        #expect(written.stdout == "7\nkeep\n")

        let kinds = try await provider.resources(deployment: deployment).map(\.kind).sorted()
        #expect(kinds.filter { $0 != "volume" } == ["attachment", "attachment", "compute"])
        #expect(kinds.contains("volume"))

        for request in [data, old] {
            try await provider.detachVolume(name: request.name, providerID: compute.providerID)
            try await provider.detachVolume(name: request.name, providerID: nil)
        }
        #expect(try subject.run(on: compute.providerID, "ls \(subject.scratch)/mnt/data/seven.txt").exitStatus != 0)
        try await provider.deleteVolume(name: "dctl-contract-v-data-0-volume", providerID: volume.providerID)
        try await provider.deleteVolume(name: "dctl-contract-v-data-0-volume", providerID: volume.providerID)
        try await provider.deleteVolume(name: "dctl-contract-v-old-0-volume", providerID: existing)
        #expect(try intact())
        try await provider.deleteCompute(name: "dctl-contract-v-node-0-compute", providerID: compute.providerID)
        #expect(try await provider.resources(deployment: deployment).isEmpty)
    }

    @Test("a location with quotes and shell syntax is taken literally, never run", arguments: factories)
    func hostileLocation(_ factory: ProviderFactory) async throws {
        let subject = try await factory.make()
        let provider = subject.provider
        let compute = try await provider.createCompute(
            ComputeRequest(deployment: "contract-q", instance: "n[0]", name: "dctl-contract-q-n-0-compute"))
        let volume = try await provider.createVolume(
            VolumeRequest(deployment: "contract-q", instance: "v[0]", name: "dctl-contract-q-v-0-volume"))
        let marker = subject.scratch + "/pwned"
        let location = subject.scratch + "/it's \"odd\" $(touch \(marker)) `touch \(marker)`"
        let attachment = AttachmentRequest(
            deployment: "contract-q", instance: "n[0]", name: "dctl-contract-q-n-0-attach-v",
            volumeID: volume.providerID,
            volumeInstance: "v[0]", computeID: compute.providerID, location: location, readOnly: false)
        #expect(try await provider.attachVolume(attachment).location == location)
        #expect(!FileManager.default.fileExists(atPath: marker))
        try await provider.detachVolume(name: attachment.name, providerID: nil)
        try await provider.deleteVolume(name: "dctl-contract-q-v-0-volume", providerID: volume.providerID)
        try await provider.deleteCompute(name: "dctl-contract-q-n-0-compute", providerID: nil)
        #expect(!FileManager.default.fileExists(atPath: marker))
        #expect(try await provider.resources(deployment: "contract-q").isEmpty)
    }
}

/// An OpenStack cloud whose servers are real nodes: Keystone and the simulator with the local provider's node
/// script behind Nova (each server a namespace with its own sshd, /etc, /var, /home and /run) and loop devices
/// behind Cinder volumes (a virtio serial under /dev/disk/by-id), so that everything after the API — SSH, mounts,
/// the recipes — runs for real.
final class OpenStackCloud: @unchecked Sendable {
    let bed: OpenStackTestBed
    let provider: OpenStackProvider
    let scratch: String
    let root: String

    init(bed: OpenStackTestBed, provider: OpenStackProvider, scratch: String, root: String) {
        self.bed = bed
        self.provider = provider
        self.scratch = scratch
        self.root = root
    }

    static func make(configure: (inout OpenStackProviderConfig) -> Void = { _ in }) async throws -> OpenStackCloud {
        let root = NSTemporaryDirectory() + "deployctl-oscloud-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root + "/scratch", withIntermediateDirectories: true)
        let bed = try await OpenStackTestBed.nodeBacked(nodeScript: LocalProvider.nodeScript, root: root)
        var config = OpenStackProviderConfig(name: "cloud", keyDirectory: root + "/keys")
        config.sshUser = "root"
        config.sshVia = "private"
        config.network = "private"
        config.bootTimeout = .seconds(300)
        configure(&config)
        let provider = OpenStackProvider(
            config: config,
            credentials: OpenStackCredentials(
                authURL: bed.authURL.absoluteString,
                method: .password(
                    user: bed.user, userDomain: bed.domain, password: bed.password, project: bed.project,
                    projectID: nil, projectDomain: bed.domain), region: bed.region),
            poll: .milliseconds(200))
        return OpenStackCloud(bed: bed, provider: provider, scratch: root + "/scratch", root: root)
    }

    deinit {
        bed.stop()
        // The bridge the nodes hung from goes with the last of them; the node script removes it on delete.
        try? FileManager.default.removeItem(atPath: root)
    }
}
