import Foundation
import TestBeds
import Testing

/// The real `openstack` CLI (python3-openstackclient) against one test bed, with the bed's OS_* variables and
/// nothing of the caller's OS_CLOUD or clouds.yaml.
struct OpenStackCLI {
    let bed: OpenStackTestBed
    var extra: [String: String?] = [:]

    func run(_ arguments: [String]) throws -> ProgramRun {
        var environment: [String: String?] = ["OS_CLOUD": nil, "OS_CLIENT_CONFIG_FILE": nil, "OS_TOKEN": nil]
        for (name, value) in bed.environment { environment[name] = value }
        for (name, value) in extra { environment[name] = value }
        return try bed.execute(OpenStackTestBed.cli, arguments, environment: environment)
    }

    /// Runs `arguments -f json`, which must succeed; the parsed output.
    func json(_ arguments: [String]) throws -> Any {
        let run = try run(arguments + ["-f", "json"])
        guard run.status == 0, let data = run.output.data(using: .utf8),
            let start = data.firstIndex(where: { $0 == UInt8(ascii: "{") || $0 == UInt8(ascii: "[") })
        else {
            throw OpenStackTestBed.Failure(
                description: "openstack \(arguments.joined(separator: " ")) failed (\(run.status)):\n\(run.output)\n"
                    + bed.logTail())
        }
        // The CLI may print progress ("Progress: 50") before the JSON.
        return try JSONSerialization.jsonObject(with: data[start...])
    }

    func object(_ arguments: [String]) throws -> [String: Any] {
        try #require(try json(arguments) as? [String: Any])
    }

    func list(_ arguments: [String]) throws -> [[String: Any]] {
        try #require(try json(arguments) as? [[String: Any]])
    }

    /// A file holding `testPublicKey`, in the bed's directory.
    func publicKeyFile() throws -> String {
        let file = bed.directory.appendingPathComponent("key.pub")
        try testPublicKey.write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }

    /// Runs `arguments`, which must succeed.
    func succeed(_ arguments: [String]) throws {
        let run = try run(arguments)
        guard run.status == 0 else {
            throw OpenStackTestBed.Failure(
                description: "openstack \(arguments.joined(separator: " ")) failed (\(run.status)):\n\(run.output)")
        }
    }
}

/// Polls the simulator's state (a fast local call) until `check` holds; each try is a real request, so a slow
/// machine makes it slower, not wrong. 600 tries of 50 ms at least.
func waitUntil(_ what: String, _ check: () throws -> Bool) throws {
    for _ in 0..<600 {
        if try check() { return }
        usleep(50_000)
    }
    throw OpenStackTestBed.Failure(description: "still not \(what)")
}

let testPublicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID1wpwg75fzmggv0YMRm85Z3oaLfsz4qMlD4OxAHH3uH deployctl-test"

@Suite(
    "OpenStack simulator driven by the real openstack CLI",
    .enabled(if: OpenStackTestBed.available, "needs python3-keystone and python3-openstackclient (`make deps`)"))
struct OpenStackSimulatorTests {
    func volume(_ bed: OpenStackTestBed, _ id: String) throws -> [String: Any]? {
        try bed.state()["volumes"]?.first { $0["id"] as? String == id }
    }

    @Test("flavors carry the GPU flavors' properties; images, keypairs and security groups")
    func catalogue() async throws {
        let bed = try await OpenStackTestBed()
        defer { bed.stop() }
        let cli = OpenStackCLI(bed: bed)
        let flavors = try cli.list(["--os-compute-api-version", "2.61", "flavor", "list", "--long"])
        func properties(_ name: String) -> [String: String]? {
            flavors.first { $0["Name"] as? String == name }?["Properties"] as? [String: String]
        }
        #expect(properties("g1.a100") == ["pci_passthrough:alias": "a100:1"])
        #expect(properties("g2.a100x2") == ["pci_passthrough:alias": "a100:2"])
        #expect(properties("v1.vgpu") == ["resources:VGPU": "1"])
        #expect(flavors.first { $0["Name"] as? String == "m1.large" }?["VCPUs"] as? Int == 4)

        let images = try cli.list(["image", "list"]).compactMap { $0["Name"] as? String }
        #expect(Set(images) == ["debian-12", "ubuntu-22.04", "rocky-9"])
        let debian = try cli.object(["image", "show", "debian-12"])
        #expect(debian["status"] as? String == "active")
        #expect((debian["properties"] as? [String: Any])?["os_distro"] as? String == "debian")

        let keypair = try cli.object(["keypair", "create", "--public-key", try cli.publicKeyFile(), "k1"])
        #expect(keypair["fingerprint"] as? String == "24:8f:9c:c1:e5:18:a5:3c:65:88:f4:6b:15:a5:bd:fd")
        let group = try cli.object(["security", "group", "create", "web"])
        let rule = try cli.object([
            "security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22", "web",
        ])
        #expect(rule["security_group_id"] as? String == group["id"] as? String)
        #expect(rule["port_range_min"] as? Int == 22)
        let state = try bed.state()
        #expect(state["keypairs"]?.count == 1)
        #expect(state["security_groups"]?.map { $0["name"] as? String } == ["web"])
    }

    @Test("a server's life: create, attach and detach a volume, a floating IP, delete; nothing is left")
    func serverLife() async throws {
        let bed = try await OpenStackTestBed()
        defer { bed.stop() }
        let cli = OpenStackCLI(bed: bed)
        try cli.succeed(["keypair", "create", "--public-key", try cli.publicKeyFile(), "k1"])
        let server = try cli.object([
            "server", "create", "--flavor", "m1.small", "--image", "debian-12", "--network", "private",
            "--key-name", "k1", "--wait", "vm1",
        ])
        #expect(server["status"] as? String == "ACTIVE")
        let serverID = try #require(server["id"] as? String)
        let listed = try cli.list(["server", "list"]).first { $0["ID"] as? String == serverID }
        let fixed = try #require(((listed?["Networks"] as? [String: Any])?["private"] as? [String])?.first)
        #expect(fixed.hasPrefix("10.0.0."))

        let volumeID = try #require(try cli.object(["volume", "create", "--size", "1", "data"])["id"] as? String)
        try waitUntil("available") { try volume(bed, volumeID)?["status"] as? String == "available" }
        try cli.succeed(["server", "add", "volume", "vm1", "data"])
        try waitUntil("in-use") { try volume(bed, volumeID)?["status"] as? String == "in-use" }
        let shown = try cli.object(["volume", "show", "data"])
        let attachment = try #require((shown["attachments"] as? [[String: Any]])?.first)
        #expect(attachment["server_id"] as? String == serverID)
        #expect(attachment["device"] as? String == "/dev/vdb")
        try cli.succeed(["server", "remove", "volume", "vm1", "data"])
        try waitUntil("detached") { try volume(bed, volumeID)?["status"] as? String == "available" }

        let address = try #require(
            try cli.object(["floating", "ip", "create", "public"])["floating_ip_address"] as? String)
        try cli.succeed(["server", "add", "floating", "ip", "vm1", address])
        let addresses = try cli.object(["server", "show", "vm1"])["addresses"] as? [String: [String]]
        #expect(addresses?["private"] == [fixed, address])
        try cli.succeed(["server", "remove", "floating", "ip", "vm1", address])
        #expect(try bed.state()["floatingips"]?.first?["port_id"] is NSNull)

        try cli.succeed(["server", "delete", "--wait", "vm1"])
        try cli.succeed(["volume", "delete", "data"])
        try cli.succeed(["floating", "ip", "delete", address])
        try cli.succeed(["keypair", "delete", "k1"])
        try waitUntil("empty") { try bed.state().values.allSatisfy(\.isEmpty) }
    }

    @Test("image create --file uploads the data: active, with its MD5 checksum and size")
    func imageUpload() async throws {
        let bed = try await OpenStackTestBed()
        defer { bed.stop() }
        let cli = OpenStackCLI(bed: bed)
        let file = bed.directory.appendingPathComponent("disk.qcow2")
        var generator = SystemRandomNumberGenerator()
        try Data((0..<3_000_000).map { _ in UInt8.random(in: 0...255, using: &generator) }).write(to: file)
        let md5 = try bed.execute("/usr/bin/md5sum", [file.path]).output.prefix(32)
        try cli.succeed(["image", "create", "--file", file.path, "--disk-format", "qcow2", "uploaded"])
        let image = try cli.object(["image", "show", "uploaded"])
        #expect(image["status"] as? String == "active")
        #expect(image["checksum"] as? String == String(md5))
        #expect(image["size"] as? Int == 3_000_000)
        try cli.succeed(["image", "delete", "uploaded"])
        #expect(try bed.count("images") == 0)
    }

    @Test("a quota set through the simulator makes server create fail with Nova's message")
    func quota() async throws {
        let bed = try await OpenStackTestBed()
        defer { bed.stop() }
        try bed.setQuotas(#"{"cores": 4}"#)
        let run = try OpenStackCLI(bed: bed).run([
            "server", "create", "--flavor", "m1.xlarge", "--image", "debian-12", "--network", "private", "big",
        ])
        #expect(run.status != 0)
        #expect(run.output.contains("Quota exceeded for cores: Requested 8, but already used 0 of 4 cores"))
        #expect(try bed.count("servers") == 0)
    }

    @Test("a wrong password fails at Keystone; an application credential works; RegionTwo lands under /regiontwo")
    func authenticationAndRegions() async throws {
        let bed = try await OpenStackTestBed()
        defer { bed.stop() }
        let wrong = try OpenStackCLI(bed: bed, extra: ["OS_PASSWORD": "not-the-password"]).run(["token", "issue"])
        #expect(wrong.status != 0)
        #expect(wrong.output.contains("HTTP 401"))
        #expect(try bed.requests().isEmpty)

        let appcred = OpenStackCLI(
            bed: bed,
            extra: [
                "OS_AUTH_TYPE": "v3applicationcredential", "OS_APPLICATION_CREDENTIAL_ID": bed.applicationCredential.id,
                "OS_APPLICATION_CREDENTIAL_SECRET": bed.applicationCredential.secret, "OS_USERNAME": nil,
                "OS_PASSWORD": nil, "OS_PROJECT_NAME": nil, "OS_USER_DOMAIN_NAME": nil, "OS_PROJECT_DOMAIN_NAME": nil,
                "OS_REGION_NAME": "RegionTwo",
            ])
        #expect(try appcred.list(["server", "list"]).isEmpty)
        let compute = try bed.requests().filter { $0["service"] == "compute" }
        #expect(!compute.isEmpty)
        #expect(compute.allSatisfy { $0["region"] == "RegionTwo" && $0["path"]?.hasPrefix("/regiontwo/") == true })
    }
}
