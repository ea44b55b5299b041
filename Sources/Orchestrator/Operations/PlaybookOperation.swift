import Foundation
import Synchronization

/// A TOSCA operation implemented by an Ansible playbook, run with `ansible-playbook` against a generated inventory.
///
/// Inputs become extra variables through a JSON file readable only by the current user; the inventory pins each
/// host's key and checks host keys strictly against the provider's known_hosts. Both files live in a private
/// temporary directory removed afterwards.
public struct PlaybookOperation: Sendable {
    public struct Host: Sendable, Equatable {
        public var name: String
        public var address: String
        public var port: Int
        public var user: String
        public var privateKey: String
        /// Inventory groups besides `all` (for relationship operations: `source` or `target`).
        public var groups: [String]
        /// Its own known_hosts file, where the provider keeps one per host; nil: the operation's.
        public var knownHosts: String?

        public init(
            name: String, address: String, port: Int = 22, user: String, privateKey: String, groups: [String] = [],
            knownHosts: String? = nil
        ) {
            self.knownHosts = knownHosts
            self.name = name
            self.address = address
            self.port = port
            self.user = user
            self.privateKey = privateKey
            self.groups = groups
        }
    }

    public var name: String
    public var playbook: String
    public var hosts: [Host]
    public var knownHosts: String
    public var variables: [String: String]
    /// Variables whose values are lists or maps, as JSON text: they reach the play as lists and maps.
    public var structuredVariables: [String: String] = [:]
    public var timeout: Duration
    /// The hosts the play runs on (`--limit`); nil runs it on every host of the inventory.
    public var limit: String?
    /// The hosts' Python for Ansible modules; pinned because discovery can pick a shell shim that does not work
    /// over a non-interactive SSH session.
    public var pythonInterpreter = "/usr/bin/python3"

    public init(
        name: String, playbook: String, hosts: [Host], knownHosts: String, variables: [String: String],
        timeout: Duration = .seconds(1800)
    ) {
        self.name = name
        self.playbook = playbook
        self.hosts = hosts
        self.knownHosts = knownHosts
        self.variables = variables
        self.timeout = timeout
    }

    public struct Result: Sendable, Equatable {
        public var exitStatus: Int32
        public var output: String
        public var succeeded: Bool { exitStatus == 0 }
    }

    /// The inventory as YAML (JSON is YAML): the hosts in group `all` with their connection settings.
    func inventory() throws -> Data {
        var hostEntries: [String: [String: String]] = [:]
        for host in hosts {
            var entry = [
                "ansible_host": host.address, "ansible_port": String(host.port), "ansible_user": host.user,
            ]
            // No key file: ssh uses the agent at $SSH_AUTH_SOCK, which ansible-playbook inherits.
            if !host.privateKey.isEmpty { entry["ansible_ssh_private_key_file"] = host.privateKey }
            if let own = host.knownHosts, own != knownHosts {
                entry["ansible_ssh_common_args"] = Self.sshArguments(own)
            }
            // A login user other than root (a cloud image's default user) runs the tasks through sudo.
            if host.user != "root" { entry["ansible_become"] = "true" }
            hostEntries[host.name] = entry
        }
        var children: [String: Any] = [:]
        for group in Set(hosts.flatMap(\.groups)).sorted() {
            children[group] = [
                "hosts": Dictionary(
                    uniqueKeysWithValues: hosts.filter { $0.groups.contains(group) }.map {
                        ($0.name, [String: String]())
                    })
            ]
        }
        let document: [String: Any] = [
            "all": [
                "hosts": hostEntries,
                "children": children,
                "vars": [
                    "ansible_ssh_common_args": Self.sshArguments(knownHosts),
                    "ansible_python_interpreter": pythonInterpreter,
                ],
            ]
        ]
        return try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .prettyPrinted])
    }

    static func sshArguments(_ knownHosts: String) -> String {
        "-o UserKnownHostsFile=\(knownHosts) -o StrictHostKeyChecking=yes -o BatchMode=yes"
    }

    public func run() throws -> Result {
        guard let executable = Self.find("ansible-playbook") else {
            throw OrchestratorError(
                "ansible-missing",
                "operation \(name) is an Ansible playbook, but ansible-playbook is not on PATH; install it with "
                    + "`pip install ansible-core`")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "deployctl-ansible-\(UUID().uuidString.prefix(8))", isDirectory: true)
        do {
            try FileManager.default.createDirectory(
                at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw OrchestratorError(
                "operation-setup", "operation \(name): cannot create a work directory", cause: error)
        }
        defer { try? FileManager.default.removeItem(at: directory) }
        let inventoryFile = directory.appendingPathComponent("inventory.yml")
        let variablesFile = directory.appendingPathComponent("vars.json")
        do {
            try inventory().write(to: inventoryFile, options: .atomic)
            var document: [String: Any] = variables
            for (name, text) in structuredVariables {
                document[name] = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
            }
            try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys]).write(
                to: variablesFile, options: .atomic)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: variablesFile.path)
        } catch {
            throw OrchestratorError("operation-setup", "operation \(name): cannot write its inventory", cause: error)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments =
            ["-i", inventoryFile.path, "-e", "@\(variablesFile.path)"] + (limit.map { ["--limit", $0] } ?? [])
            + [playbook]
        var environment = ProcessInfo.processInfo.environment
        environment["ANSIBLE_NOCOLOR"] = "1"
        environment["ANSIBLE_RETRY_FILES_ENABLED"] = "0"
        environment["ANSIBLE_HOST_KEY_CHECKING"] = "True"
        // One SSH round trip per task instead of three (copying the module, running it, removing it): about half
        // the time of a short playbook.
        environment["ANSIBLE_PIPELINING"] = environment["ANSIBLE_PIPELINING"] ?? "True"
        environment["ANSIBLE_LOCAL_TEMP"] = directory.appendingPathComponent("tmp").path
        // SSH connection sharing within this run only: a master kept from an earlier run may lead to a host that
        // is gone, whose address a new node now has (the local provider and clouds reuse addresses).
        environment["ANSIBLE_SSH_CONTROL_PATH_DIR"] = directory.appendingPathComponent("cp").path
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        // Its own stdin: an inherited one may have been made non-blocking by another process sharing it (an ssh
        // client does that), and ansible-playbook refuses to start on a non-blocking stdin.
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw OrchestratorError("operation-setup", "operation \(name): cannot start ansible-playbook", cause: error)
        }
        // A watchdog stops ansible-playbook if it overruns; reading to the end of its output waits for it.
        let timedOut = Mutex(false)
        let watchdog = DispatchWorkItem {
            timedOut.withLock { $0 = true }
            process.terminate()
        }
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds, execute: watchdog)
        let collected = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        watchdog.cancel()
        if timedOut.withLock({ $0 }) {
            throw OrchestratorError("operation-timeout", "operation \(name) ran longer than \(timeout) and was stopped")
        }
        return Result(exitStatus: process.terminationStatus, output: String(decoding: collected, as: UTF8.self))
    }

    static func find(_ program: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(program)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
