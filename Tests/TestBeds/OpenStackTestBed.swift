import Foundation
import Synchronization

/// A real Keystone (Debian `python3-keystone`, scripts/testbed/keystone.sh) in front of a Nova/Neutron/Cinder/Glance
/// simulator (scripts/testbed/openstack-sim.py), started for one test in a scratch directory and stopped after it.
///
/// The catalog lists compute, network, volumev3, block-storage and image at the simulator's prefixes: public and
/// internal endpoints in RegionOne, and RegionTwo's under `/regiontwo`. The user `tech` has the member role on the
/// project `research` (domain Default) and an application credential.
///
/// Programs run to their end (keystone.sh, curl, the CLI) write to files, not pipes: reading a pipe to its end waits
/// for every process that inherited its write end, and a server another suite starts meanwhile with posix_spawn
/// (which keeps open descriptors) holds it until that suite stops it: with two pool threads, two such waits
/// deadlocked here. The simulator starts through Foundation's Process, which closes the others in the child.
///
/// `@unchecked Sendable`: every stored property is a constant; `simulator` is a Process, whose `stop()` a test calls
/// once, after its other calls.
public final class OpenStackTestBed: @unchecked Sendable {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    public static let keystoneScript = root.appendingPathComponent("scripts/testbed/keystone.sh").path
    public static let simulatorScript = root.appendingPathComponent("scripts/testbed/openstack-sim.py").path
    /// The real OpenStack command-line client (python3-openstackclient).
    public static let cli = "/usr/bin/openstack"

    /// Keystone and the openstack CLI are installed (root is not needed); else the tests that need them are skipped.
    public static var available: Bool {
        FileManager.default.isExecutableFile(atPath: "/usr/bin/keystone-wsgi-public")
            && FileManager.default.isExecutableFile(atPath: cli)
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/curl")
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String

        public init(description: String) { self.description = description }
    }

    public let directory: URL
    /// Keystone's v3 root, `http://127.0.0.1:K/v3`.
    public let authURL: URL
    /// The simulator's root; the services sit under /compute, /network, /volume and /image.
    public let simulatorURL: URL
    public let region = "RegionOne"
    public let project = "research"
    public let user = "tech"
    public let password: String
    public let domain = "Default"
    /// The project's and the user's Keystone ids.
    public let projectID: String
    public let userID: String
    public let applicationCredential: (id: String, secret: String)
    let simulator = Process()
    var simulatorLog: URL { directory.appendingPathComponent("simulator.log") }
    var keystoneDirectory: URL { directory.appendingPathComponent("keystone") }

    /// Starts the simulator, then Keystone with a catalog pointing at it (about 3 s once Keystone's template
    /// database is cached; its first build takes about 20 s). With `hostsFile` (ssh-hosts.sh's hosts.json) every
    /// server takes one of those hosts and its keypair goes into `authorizedKeys`.
    /// `simulatorArguments` go to openstack-sim.py as they are (`--node-script`, `--block-devices`…).
    public init(
        hostsFile: String? = nil, authorizedKeys: String? = nil, tokenExpiration: Int = 3600,
        simulatorArguments: [String] = []
    ) async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "deployctl-openstack-\(UUID().uuidString.prefix(8))", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let keystonePort = try OrthancTestBed.freePorts().0
        let authURL = URL(string: "http://127.0.0.1:\(keystonePort)/v3")!
        self.authURL = authURL
        var arguments = [
            "/usr/bin/python3", Self.simulatorScript, "--port", "0", "--keystone", authURL.absoluteString,
        ]
        if let hostsFile { arguments += ["--hosts", hostsFile] }
        if let authorizedKeys { arguments += ["--authorized-keys", authorizedKeys] }
        arguments += simulatorArguments
        // Computed properties are out of reach until every stored one is set: the paths are spelled out here.
        let log = directory.appendingPathComponent("simulator.log")
        let keystone = directory.appendingPathComponent("keystone")
        simulator.executableURL = URL(fileURLWithPath: arguments[0])
        simulator.arguments = Array(arguments.dropFirst())
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        simulator.standardInput = FileHandle.nullDevice
        simulator.standardOutput = try FileHandle(forWritingTo: log)
        simulator.standardError = simulator.standardOutput
        try simulator.run()
        do {
            let port = try Self.waitForPort(log: log, process: simulator)
            simulatorURL = URL(string: "http://127.0.0.1:\(port)")!
            let up = try Self.execute(
                "/bin/bash",
                [
                    Self.keystoneScript, "up", "--dir", keystone.path, "--port", String(keystonePort),
                    "--catalog-url", simulatorURL.absoluteString, "--token-expiration", String(tokenExpiration),
                ], in: directory)
            guard up.status == 0 else { throw Failure(description: "keystone.sh up failed:\n\(up.output)") }
            let credentials = try Self.readJSON(keystone.appendingPathComponent("credentials.json"))
            let appcred = try Self.readJSON(keystone.appendingPathComponent("appcred.json"))
            guard let password = credentials["password"] as? String, let id = appcred["id"] as? String,
                let secret = appcred["secret"] as? String, let projectID = appcred["project_id"] as? String,
                let userID = appcred["user_id"] as? String
            else { throw Failure(description: "keystone.sh wrote incomplete credentials") }
            self.password = password
            self.projectID = projectID
            self.userID = userID
            applicationCredential = (id, secret)
        } catch {
            Self.terminate(simulator)
            _ = try? Self.execute("/bin/bash", [Self.keystoneScript, "down", "--dir", keystone.path], in: directory)
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    deinit { stop() }

    /// Writes `home`/clouds.yaml (cloud `cloud`) and `home`/providers.yaml declaring an openstack provider `provider`
    /// on it with the `settings` given (plus `extra`, more YAML under `providers:`).
    public func writeConfiguration(
        home: String, cloud: String, provider: String, settings: KeyValuePairs<String, String> = [:], extra: String = ""
    ) throws {
        try cloudsYAML(cloud: cloud).write(toFile: home + "/clouds.yaml", atomically: true, encoding: .utf8)
        var text = "providers:\n  \(provider):\n    type: openstack\n    cloud: \(cloud)\n"
        text += "    clouds_file: \(home)/clouds.yaml\n"
        for (key, value) in settings { text += "    \(key): \(value)\n" }
        try (text + extra).write(toFile: home + "/providers.yaml", atomically: true, encoding: .utf8)
    }

    /// Beds with node-backed servers in one process take their own bridge and subnet.
    private static let nextNodeNetwork = Mutex(0)

    /// A bed whose servers are real nodes made by the local provider's node script (`nodeScript`, its text) and
    /// whose volumes are loop devices: everything about them lives under `root` (nodes/, blocks/, keys/).
    /// With `defaultUser`, every node has that account with passwordless sudo, as cloud images' default user.
    public static func nodeBacked(nodeScript: String, root: String, defaultUser: String? = nil) async throws
        -> OpenStackTestBed
    {
        let index = nextNodeNetwork.withLock { value in
            defer { value = (value + 1) % 50 }
            return value
        }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let script = root + "/node-script.sh"
        try nodeScript.write(toFile: script, atomically: true, encoding: .utf8)
        return try await OpenStackTestBed(
            simulatorArguments: [
                "--node-script", script, "--node-dir", root + "/nodes", "--node-bridge", "dctlos\(index)",
                "--node-subnet", "10.233.\(index)", "--block-devices", root + "/blocks",
            ] + (defaultUser.map { ["--default-user", $0] } ?? []))
    }

    /// Stops the simulator and Keystone (SIGKILL: started from a concurrency thread, they may inherit a mask that
    /// blocks SIGTERM) and removes the bed's directory.
    public func stop() {
        guard FileManager.default.fileExists(atPath: directory.path) else { return }
        // Real nodes and loop devices behind servers and volumes outlive a killed simulator: it removes them first.
        if simulator.isRunning { _ = try? control("POST", "cleanup", "{}") }
        Self.terminate(simulator)
        _ = try? Self.execute(
            "/bin/bash", [Self.keystoneScript, "down", "--dir", keystoneDirectory.path], in: directory)
        try? FileManager.default.removeItem(at: directory)
    }

    static func terminate(_ process: Process) {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// Runs a program to its end with extra environment variables (nil removes one), its output (stdout and stderr
    /// together) through a scratch file in `directory`.
    public static func execute(
        _ path: String, _ arguments: [String], environment extra: [String: String?] = [:], in directory: URL
    ) throws -> ProgramRun {
        let output = directory.appendingPathComponent("output-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: output) }
        let handle = try FileHandle(forWritingTo: output)
        defer { try? handle.close() }
        let process = program(path, arguments, environment: extra)
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        process.waitUntilExit()
        return ProgramRun(
            status: process.terminationStatus, killed: process.terminationReason == .uncaughtSignal,
            output: (try? String(contentsOf: output, encoding: .utf8)) ?? "")
    }

    /// `execute` with the output file in the bed's directory.
    public func execute(_ path: String, _ arguments: [String], environment: [String: String?] = [:]) throws
        -> ProgramRun
    {
        try Self.execute(path, arguments, environment: environment, in: directory)
    }

    /// The port from the simulator's `listening on PORT` line, polled from its log: a blocking poll, not awaited
    /// work, so a starved test thread cannot turn a slow start into a failure. The simulator exiting is the error.
    static func waitForPort(log: URL, process: Process) throws -> Int {
        while true {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("listening on ") }),
                let port = Int(line.dropFirst("listening on ".count))
            {
                return port
            }
            if !process.isRunning {
                throw Failure(description: "openstack-sim.py exited (\(process.terminationStatus)):\n\(text)")
            }
            usleep(20_000)
        }
    }

    static func readJSON(_ file: URL) throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: Any] else {
            throw Failure(description: "\(file.path) is not a JSON object")
        }
        return object
    }

    /// A clouds.yaml with password authentication for `cloud`.
    public func cloudsYAML(cloud: String) -> String {
        """
        clouds:
          \(cloud):
            auth:
              auth_url: \(authURL.absoluteString)
              username: \(user)
              password: \(password)
              project_name: \(project)
              user_domain_name: \(domain)
              project_domain_name: \(domain)
            region_name: \(region)
            interface: public
            identity_api_version: 3

        """
    }

    /// OS_* variables for the openstack CLI (password authentication, RegionOne, public interface).
    public var environment: [String: String] {
        [
            "OS_AUTH_URL": authURL.absoluteString, "OS_USERNAME": user, "OS_PASSWORD": password,
            "OS_PROJECT_NAME": project, "OS_USER_DOMAIN_NAME": domain, "OS_PROJECT_DOMAIN_NAME": domain,
            "OS_REGION_NAME": region, "OS_INTERFACE": "public", "OS_IDENTITY_API_VERSION": "3",
            "OS_AUTH_TYPE": "password",
        ]
    }

    /// Every resource the simulator holds, by kind: servers, ports, floatingips, security_groups (not the default
    /// ones), keypairs, server_groups, volumes, attachments, snapshots, images (not the preloaded ones).
    public func state() throws -> [String: [[String: Any]]] {
        guard let state = try JSONSerialization.jsonObject(with: control("GET", "state")) as? [String: [[String: Any]]]
        else { throw Failure(description: "/_sim/state is not a map of lists") }
        return state
    }

    /// How many resources of `kind` (a key of `state()`) the simulator holds.
    public func count(_ kind: String) throws -> Int { try state()[kind]?.count ?? 0 }

    /// Every request the services received: method, path, region, interface, prefix, service and the microversion
    /// headers (openstack_api_version, x_openstack_nova_api_version); never the token.
    public func requests() throws -> [[String: String]] {
        let object = try JSONSerialization.jsonObject(with: control("GET", "requests")) as? [String: Any]
        return (object?["requests"] as? [[String: Any]] ?? []).map { $0.compactMapValues { $0 as? String } }
    }

    /// POST /_sim/faults: `{"method":"POST","path":"regex","status":503,"count":2,"headers":{…}}`,
    /// `{"server_error":{"name":"regex","message":"…"}}` or `{"delays":{"server_build":s,…}}`.
    public func inject(_ json: String) throws { _ = try control("POST", "faults", json) }

    /// POST /_sim/quotas, e.g. `{"cores":4,"instances":2,"floatingip":1,"volumes":1,"gigabytes":10}`.
    public func setQuotas(_ json: String) throws { _ = try control("POST", "quotas", json) }

    /// An available volume made out of band (a pre-staged data volume) in the bed's project; its id.
    /// With `files` (and --block-devices), the volume holds an ext4 file system with those files (path: text).
    public func makeVolume(name: String, sizeGB: Int, files: [String: String] = [:]) throws -> String {
        let body = try JSONSerialization.data(withJSONObject: [
            "name": name, "size": sizeGB, "project_id": projectID, "user_id": userID, "files": files,
        ])
        let answer = try JSONSerialization.jsonObject(
            with: control("POST", "volumes", String(decoding: body, as: UTF8.self)))
        guard let id = (answer as? [String: Any])?["id"] as? String else {
            throw Failure(description: "/_sim/volumes answered no id")
        }
        return id
    }

    /// POST /_sim/reset: every resource, fault, delay and quota back to the start.
    public func reset() throws { _ = try control("POST", "reset", "{}") }

    /// One control call through curl (blocking, no deadline: under load the simulator may answer slowly, never
    /// wrongly); the body of a 2xx answer.
    func control(_ method: String, _ endpoint: String, _ body: String? = nil) throws -> Data {
        var arguments = [
            "-sS", "-X", method, "-w", "\n%{http_code}", simulatorURL.absoluteString + "/_sim/" + endpoint,
        ]
        if let body { arguments += ["-H", "Content-Type: application/json", "--data-binary", body] }
        let run = try execute("/usr/bin/curl", arguments)
        let lines = run.output.split(separator: "\n", omittingEmptySubsequences: false)
        guard run.status == 0, let code = lines.last, code.hasPrefix("2") else {
            throw Failure(description: "\(method) /_sim/\(endpoint) failed: \(run.output.prefix(500))")
        }
        return Data(lines.dropLast().joined(separator: "\n").utf8)
    }

    /// The last lines of the simulator's and Keystone's logs, for a failing test's message.
    public func logTail(lines: Int = 30) -> String {
        [simulatorLog, keystoneDirectory.appendingPathComponent("keystone.log")].map { file in
            let text = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
            let tail = text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines)
            return "--- \(file.lastPathComponent)\n" + tail.joined(separator: "\n")
        }.joined(separator: "\n")
    }
}
