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

/// Direct HTTP calls to the simulator (curl, through files) with a project token from the bed's Keystone: for what
/// the CLI does not reach.
struct SimulatorHTTP {
    let bed: OpenStackTestBed
    let token: String

    init(bed: OpenStackTestBed) throws {
        self.bed = bed
        let auth: [String: Any] = [
            "auth": [
                "identity": [
                    "methods": ["password"],
                    "password": ["user": ["name": bed.user, "domain": ["name": bed.domain], "password": bed.password]],
                ],
                "scope": ["project": ["name": bed.project, "domain": ["name": bed.domain]]],
            ]
        ]
        let body = String(decoding: try JSONSerialization.data(withJSONObject: auth), as: UTF8.self)
        let run = try bed.execute(
            "/usr/bin/curl",
            ["-sS", "-i", "-H", "Content-Type: application/json", "--data-binary", body, "\(bed.authURL)/auth/tokens"])
        let header = run.output.split(whereSeparator: \.isNewline).first {
            $0.lowercased().hasPrefix("x-subject-token:")
        }
        token = try #require(header?.split(separator: ":").last?.trimmingCharacters(in: .whitespaces))
    }

    /// One request; the status, the headers' text and the JSON body (nil when not JSON).
    func call(_ method: String, _ path: String, _ body: String? = nil, headers: [String] = [], token: Bool = true)
        throws -> (status: Int, headers: String, json: [String: Any]?)
    {
        var arguments = ["-sS", "-D", "-", "-X", method, "-w", "\n%{http_code}"]
        if token { arguments += ["-H", "X-Auth-Token: \(self.token)"] }
        for header in headers { arguments += ["-H", header] }
        if let body { arguments += ["-H", "Content-Type: application/json", "--data-binary", body] }
        let run = try bed.execute("/usr/bin/curl", arguments + ["\(bed.simulatorURL)\(path)"])
        var lines = run.output.components(separatedBy: "\n")
        let status = Int(lines.removeLast()) ?? 0
        let text = lines.joined(separator: "\n")
        let parts = text.components(separatedBy: "\r\n\r\n")
        let json = parts.last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } as? [String: Any]
        return (status, parts.dropLast().joined(separator: "\n"), json)
    }
}

extension OpenStackSimulatorTests {
    @Test("servers take the pool's hosts (anti-affinity, authorized_keys); injected faults, microversions, quotas")
    func hostsAndFaults() async throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("deployctl-os-\(UUID())")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let hosts = scratch.appendingPathComponent("hosts.json")
        let keys = scratch.appendingPathComponent("authorized_keys")
        try #"{"hosts": [{"name": "h1", "address": "10.231.9.11"}, {"name": "h2", "address": "10.231.9.12"}]}"#
            .write(to: hosts, atomically: true, encoding: .utf8)
        let bed = try await OpenStackTestBed(hostsFile: hosts.path, authorizedKeys: keys.path)
        defer { bed.stop() }
        let http = try SimulatorHTTP(bed: bed)
        try bed.inject(#"{"delays": {"server_build": 0.2, "server_delete": 0.1}}"#)
        let v264 = ["OpenStack-API-Version: compute 2.64"]
        let keypair = #"{"keypair": {"name": "k", "public_key": "\#(testPublicKey)"}}"#
        #expect(try http.call("POST", "/compute/v2.1/os-keypairs", keypair, headers: v264).status == 201)
        let group = try http.call(
            "POST", "/compute/v2.1/os-server-groups", #"{"server_group": {"name": "g", "policy": "anti-affinity"}}"#,
            headers: v264)
        let groupID = try #require((group.json?["server_group"] as? [String: Any])?["id"] as? String)
        for index in 1...3 {
            let server = """
                {"server": {"name": "s\(index)", "flavorRef": "2", "imageRef": "a3c1e0f2-0000-4000-8000-0000000000d1",
                "key_name": "k", "networks": "auto"}, "os:scheduler_hints": {"group": "\(groupID)"}}
                """
            #expect(try http.call("POST", "/compute/v2.1/servers", server, headers: v264).status == 202)
        }
        try waitUntil("built") { try bed.state()["servers"]?.allSatisfy { $0["status"] as? String != "BUILD" } == true }
        let servers = try #require(bed.state()["servers"])
        let active = servers.filter { $0["status"] as? String == "ACTIVE" }
        #expect(Set(active.compactMap { $0["host"] as? String }) == ["h1", "h2"])
        let failed = try #require(servers.first { $0["status"] as? String == "ERROR" })
        #expect(
            (failed["fault"] as? [String: Any])?["message"] as? String
                == "No valid host was found. There are not enough hosts available.")
        let detail = try http.call("GET", "/compute/v2.1/servers/\(active[0]["id"] as? String ?? "")", headers: v264)
        let addresses = (detail.json?["server"] as? [String: Any])?["addresses"] as? [String: [[String: Any]]]
        #expect(["10.231.9.11", "10.231.9.12"].contains(addresses?["private"]?.first?["addr"] as? String ?? ""))
        let authorized = try String(contentsOf: keys, encoding: .utf8)
        #expect(active.allSatisfy { authorized.contains("openstack-sim:\($0["id"] as? String ?? "?")") })

        try bed.inject(
            #"{"method": "GET", "path": "/servers/detail$", "status": 503, "headers": {"Retry-After": "0"}}"#)
        let refused = try http.call("GET", "/compute/v2.1/servers/detail")
        #expect(refused.status == 503)
        #expect(refused.headers.contains("Retry-After: 0"))
        #expect(refused.json?["serviceUnavailable"] != nil)
        #expect(try http.call("GET", "/compute/v2.1/servers/detail").status == 200)
        #expect(
            try http.call("GET", "/compute/v2.1/servers", headers: ["OpenStack-API-Version: compute 2.97"]).status
                == 406)
        #expect(try http.call("GET", "/compute/v2.1/servers", token: false).status == 401)

        for server in servers {
            #expect(try http.call("DELETE", "/compute/v2.1/servers/\(server["id"] as? String ?? "")").status == 204)
        }
        try waitUntil("deleted") { try bed.count("servers") == 0 && bed.count("ports") == 0 }
        #expect(try String(contentsOf: keys, encoding: .utf8).isEmpty)

        try bed.setQuotas(#"{"volumes": 1}"#)
        _ = try bed.makeVolume(name: "staged", sizeGB: 5)
        let overQuota = try http.call("POST", "/volume/v3/\(bed.projectID)/volumes", #"{"volume": {"size": 1}}"#)
        #expect(overQuota.status == 413)
        #expect(
            (overQuota.json?["overLimit"] as? [String: Any])?["message"] as? String
                == "VolumeLimitExceeded: Maximum number of volumes allowed (1) exceeded for quota 'volumes'.")
    }

    @Test("an image upload with chunked transfer encoding is stored whole")
    func chunkedUpload() async throws {
        let bed = try await OpenStackTestBed()
        defer { bed.stop() }
        let http = try SimulatorHTTP(bed: bed)
        let made = try http.call(
            "POST", "/image/v2/images", #"{"name": "chunked", "disk_format": "raw", "container_format": "bare"}"#)
        let id = try #require(made.json?["id"] as? String)
        let file = bed.directory.appendingPathComponent("chunked.raw")
        try Data((0..<2_500_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }).write(to: file)
        let upload = try bed.execute(
            "/usr/bin/curl",
            [
                "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", "-T", file.path, "-H",
                "Transfer-Encoding: chunked", "-H", "Content-Type: application/octet-stream", "-H",
                "X-Auth-Token: \(http.token)", "\(bed.simulatorURL)/image/v2/images/\(id)/file",
            ])
        #expect(upload.output == "204")
        let image = try #require(try http.call("GET", "/image/v2/images/\(id)").json)
        #expect(image["status"] as? String == "active")
        #expect(image["size"] as? Int == 2_500_000)
        #expect(
            image["checksum"] as? String == String(try bed.execute("/usr/bin/md5sum", [file.path]).output.prefix(32)))
    }
}
