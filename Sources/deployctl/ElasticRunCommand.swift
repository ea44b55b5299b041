import ArgumentParser
import Elastic
import Foundation
import Orchestrator
import Providers
import Synchronization
import TOSCA

/// `deployctl elastic run NAME`: the live controller for a deployment's worker pools.
struct ElasticRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Grow and shrink a deployment's worker pools with its SLURM queue (runs until stopped).",
        discussion: """
            The pools are the nodes an ElasticPool policy of the template targets (else every scalable Compute \
            node hosting a SLURM worker), with their host capability and min/max instances; the policy's \
            idle_timeout, exposed_idle_timeout, max_concurrent_boots and spare_slots are the settings, which the \
            options override.

            Every --period the controller reads `squeue --json` and `sinfo --json` on the SLURM controller's host \
            (over SSH, as `deployctl ssh` does), and runs the same policy as `elastic simulate`: waiting jobs \
            are packed into free room, then into the fewest new nodes of a fitting pool (a GPU job only into a \
            GPU pool); a node idle for its pool's idle time is drained, checked again for jobs, and removed \
            (one whose pool's jobs would find no room on other pools' nodes that are up after its exposed idle \
            time). \
            Power-ons and removals go through the same path as `deployctl scale`, one deployment change at a \
            time, so every node is in the ledger. A node that has not registered --register-timeout after it was \
            asked for is removed and asked for again.

            One line per decision goes to stdout (--format json for JSON lines); `deployctl elastic status NAME` \
            shows the pools, the waiting demand, recent decisions and the submission-to-decision latencies. \
            Ctrl-C or SIGTERM stops it after the change in progress has stopped at a safe point.
            """)

    @Argument(help: "The deployment.") var deployment: String
    @Option(help: "How often the queue is read (e.g. 1s, 500ms).") var period: String = "1s"
    @Option(
        name: .customLong("idle-time"),
        help: "Idle time before a node is removed, for every pool (10m) or one (POOL=2m).")
    var idleTimes: [String] = []
    @Option(
        name: .customLong("exposed-idle-time"),
        help: """
            Idle time of a node no node of another pool could stand in for, for every pool without GPUs (25m; an \
            --idle-time for every pool sets it too) or one (POOL=15m).
            """)
    var exposedIdleTimes: [String] = []
    @Option(name: .customLong("max-boots"), help: "Nodes booting at once per pool.") var maxBoots: Int?
    @Option(name: .customLong("spare-slots"), help: "Free CPU slots kept warm per pool.") var spareSlots: Int?
    @Option(name: .customLong("register-timeout"), help: "How long a new node may take to join the queue.")
    var registerTimeout: String = "10m"
    @Option(help: "Log lines: text or json.") var format: OutputFormat = .text
    @OptionGroup var options: StateOptions
    var state: DeploymentContext { options.context }
    @OptionGroup var run: RunOptions

    func run() async throws {
        let store = try state.store()
        let record = try state.record(store, deployment)
        guard let plan = replan(record, home: state.homeURL) else {
            writeError("error: \(record.template) no longer plans with the deployment's inputs (see above)")
            throw ExitCode(2)
        }
        let layout: ElasticLayout
        do {
            layout = try ElasticLayout(plan: plan)
        } catch {
            writeError("error: \(deployment): \(error)")
            throw ExitCode(2)
        }
        var settings = layout.settings
        do {
            try Simulate.apply(
                idleTimes: idleTimes, exposedIdleTimes: exposedIdleTimes, to: &settings,
                pools: layout.pools.map(\.spec))
        } catch {
            writeError("error: \(error)")
            throw ExitCode(2)
        }
        if let maxBoots { settings.maxConcurrentBoots = max(1, maxBoots) }
        if let spareSlots { settings.spareSlots = max(0, spareSlots) }
        let seconds = try Simulate.seconds(period, "--period")
        let timeout = try Simulate.seconds(registerTimeout, "--register-timeout")
        let provider = try state.provider(record.provider.isEmpty ? nil : record.provider)
        let backend = DeploymentBackend(
            deployment: deployment, context: state, options: run.deployOptions, provider: provider,
            controllerNode: layout.controllerNode, pools: layout.pools.map(\.spec.name))
        let format = self.format
        let controller = ElasticController(
            deployment: deployment, pools: layout.pools, settings: settings, backend: backend,
            onEvent: { event in Self.log(event, format: format) })
        await controller.setRegisterTimeout(timeout)
        do {
            try await controller.start()
        } catch {
            writeError("error: \(deployment): cannot read the queue or the deployment: \(error)")
            throw ExitCode(1)
        }
        let statusFile = ElasticStatus.file(home: state.homeURL, deployment: deployment)
        let pools = layout.pools.map {
            "\($0.spec.name) (\($0.spec.minNodes)-\($0.spec.maxNodes) × \($0.spec.node), SLURM \($0.queuePrefix)N)"
        }
        writeError("\(deployment): elastic controller on \(pools.joined(separator: ", ")); every \(period)")
        _ = try? await cancellableOnInterrupt(signals: [SIGINT, SIGTERM]) {
            while !Task.isCancelled {
                await controller.tick()
                ElasticStatus.write(await controller.status(pid: getpid()), to: statusFile)
                try? await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
            }
            await controller.settle()
            ElasticStatus.write(await controller.status(pid: getpid()), to: statusFile)
        }
        writeError("\(deployment): elastic controller stopped")
    }

    static func log(_ event: ControllerEvent, format: OutputFormat) {
        switch format {
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            if let data = try? encoder.encode(event) { FileHandle.standardOutput.write(data + Data("\n".utf8)) }
        case .text:
            let time = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: event.time))
            var line = "\(time) \(event.kind)"
            if let pool = event.pool { line += " \(pool)" }
            if !event.nodes.isEmpty { line += " [\(event.nodes.joined(separator: ", "))]" }
            line += ": \(event.message)"
            if let latency = event.latency { line += String(format: " (%.1f s after submission)", latency) }
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
    }
}

/// What the controller needs from a deployment's plan: the pools, their SLURM names, the node that runs
/// slurmctld, and the ElasticPool policy's settings.
struct ElasticLayout {
    var pools: [LivePool]
    var controllerNode: String
    var settings: ElasticSettings

    struct LayoutError: Error, CustomStringConvertible {
        var description: String
    }

    init(plan: Plan) throws {
        func types(_ node: String) -> [String] {
            guard case .array(let list)? = plan.nodes.first(where: { $0.0 == node })?.1["types"] else { return [] }
            return list.compactMap { if case .string(let name) = $0 { name } else { nil } }
        }
        func host(of node: String) -> String? {
            guard case .array(let requirements)? = plan.nodes.first(where: { $0.0 == node })?.1["requirements"]
            else { return nil }
            for requirement in requirements {
                if case .string("tosca.relationships.HostedOn")? = requirement["relationship"],
                    case .string(let target)? = requirement["node"]
                {
                    return target
                }
            }
            return nil
        }
        let workers = plan.nodes.map(\.0).filter { types($0).contains("deployctl.nodes.SlurmWorker") }
        guard
            let controller = plan.nodes.map(\.0).first(where: { types($0).contains("deployctl.nodes.SlurmController") })
        else {
            throw LayoutError(description: "its template has no deployctl.nodes.SlurmController to read the queue of")
        }
        controllerNode = controller
        var targets: [String] = []
        settings = ElasticSettings(exposedIdleTime: ElasticSettings.defaultExposedIdleTime)
        for policy in plan.policies {
            guard case .string("deployctl.policies.ElasticPool")? = policy["type"] else { continue }
            if case .array(let list)? = policy["targets"] {
                targets += list.compactMap { if case .string(let name) = $0 { name } else { nil } }
            }
            if case .string(let text)? = policy["properties"]?["idle_timeout"], let value = scalarUnitSeconds(text) {
                settings.idleTime = value
            }
            if case .string(let text)? = policy["properties"]?["exposed_idle_timeout"],
                let value = scalarUnitSeconds(text)
            {
                settings.exposedIdleTime = value
            }
            if case .int(let value)? = policy["properties"]?["max_concurrent_boots"] {
                settings.maxConcurrentBoots = value
            }
            if case .int(let value)? = policy["properties"]?["spare_slots"] { settings.spareSlots = value }
        }
        let all = try Simulate.pools(from: plan)
        var pools: [LivePool] = []
        for spec in all where targets.isEmpty || targets.contains(spec.name) {
            guard let worker = workers.first(where: { host(of: $0) == spec.name }) else {
                if targets.contains(spec.name) {
                    throw LayoutError(description: "the elastic pool \(spec.name) hosts no SLURM worker")
                }
                continue
            }
            pools.append(LivePool(spec: spec, queuePrefix: dashed(worker) + "-"))
        }
        guard !pools.isEmpty else {
            throw LayoutError(description: "no scalable Compute node hosts a SLURM worker: nothing to scale")
        }
        self.pools = pools
    }

}

/// The controller's hands: SLURM's JSON over SSH on the controller host, and deployment changes through the
/// Orchestrator, the same path as `deployctl scale`.
final class DeploymentBackend: ElasticBackend {
    let deployment: String
    let home: String?
    let accessOptions: ProviderAccessOptions
    let options: DeployOptions
    let provider: any Provider
    let controllerNode: String
    let pools: [String]
    private let session = Mutex<SSHSession?>(nil)

    init(
        deployment: String, context: DeploymentContext, options: DeployOptions, provider: any Provider,
        controllerNode: String, pools: [String]
    ) {
        self.deployment = deployment
        self.home = context.home
        self.accessOptions = context.access
        self.options = options
        self.provider = provider
        self.controllerNode = controllerNode
        self.pools = pools
    }

    var context: DeploymentContext { DeploymentContext(home: home, access: accessOptions) }

    struct BackendError: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs a command on the controller's host, over one SSH connection kept open (opened again after an error).
    func remote(_ command: String) throws -> CommandResult {
        try session.withLock { session in
            do {
                if session == nil {
                    let store = try StateStore.open(home: context.homeURL)
                    guard let record = try store.deployment(named: deployment) else {
                        throw BackendError(description: "no deployment named \(deployment)")
                    }
                    let plan = replan(record, home: context.homeURL, quiet: true)
                    let (_, access) = try Deployer(store: store, provider: provider).access(
                        deployment: deployment, target: controllerNode, plan: plan)
                    session = try SSHSession(access.endpoint)
                }
                return try session!.run(command, timeout: .seconds(30))
            } catch {
                session = nil
                throw error
            }
        }
    }

    func observe() async throws -> QueueSnapshot {
        let separator = "--- deployctl elastic: sinfo ---"
        // squeue's JSON does not end with a newline: the separator line brings its own.
        let result = try remote("squeue --all --json && printf '\\n%s\\n' '\(separator)' && sinfo --json")
        guard result.exitStatus == 0 else {
            throw BackendError(
                description: "squeue/sinfo on \(controllerNode) failed: "
                    + result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        guard let range = result.stdout.range(of: "\n\(separator)\n") else {
            throw BackendError(description: "squeue/sinfo on \(controllerNode): unexpected output")
        }
        return try QueueSnapshot.slurm(
            squeue: Data(result.stdout[..<range.lowerBound].utf8), sinfo: Data(result.stdout[range.upperBound...].utf8))
    }

    func instances() async throws -> [String: [Int]] {
        let store = try StateStore.open(home: context.homeURL)
        guard let record = try store.deployment(named: deployment),
            let plan = replan(record, home: context.homeURL, quiet: true)
        else { throw BackendError(description: "\(deployment) no longer plans") }
        var result: [String: [Int]] = [:]
        for pool in pools { result[pool] = plan.instances.filter { $0.node == pool }.map(\.index) }
        return result
    }

    func apply(_ wanted: [String: [Int]]) async throws {
        let store = try StateStore.open(home: context.homeURL)
        guard var record = try store.deployment(named: deployment),
            let previous = replan(record, home: context.homeURL, quiet: true)
        else { throw BackendError(description: "\(deployment) no longer plans") }
        guard let plan = try reselect(&record, wanted, store: store, home: context.homeURL, quiet: true) else {
            throw BackendError(description: "\(deployment) does not plan with these instances: \(wanted)")
        }
        let deployer = Deployer(store: store, provider: provider, options: options)
        let result = try await deployer.up(deployment: deployment, plan: plan, previous: previous)
        guard result.status == .deployed else {
            // A step's error may carry a whole playbook's output: its first line says what failed.
            let failures = result.failed.map { failure in
                let first = failure.error.split(separator: "\n").first.map(String.init) ?? ""
                return "\(failure.step): \(first.prefix(300))"
            }.joined(separator: "; ")
            throw BackendError(description: "\(result.status.rawValue): \(failures)")
        }
    }

    func drain(_ nodes: [String]) async throws {
        try scontrol(nodes, "state=drain reason=deployctl-elastic-idle")
    }

    func resume(_ nodes: [String]) async throws {
        try scontrol(nodes, "state=resume")
    }

    private func scontrol(_ nodes: [String], _ change: String) throws {
        guard !nodes.isEmpty else { return }
        let result = try remote("scontrol update nodename=\(nodes.joined(separator: ",")) \(change)")
        guard result.exitStatus == 0 else {
            throw BackendError(
                description: "scontrol update \(change) on \(nodes.joined(separator: ",")): "
                    + result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }
}

/// `deployctl elastic status NAME`: what the running controller last wrote.
struct ElasticStatus: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show an elastic controller's pools, waiting demand, recent decisions and decision latencies.")

    @Argument(help: "The deployment.") var deployment: String
    @Option(help: "text or json.") var format: OutputFormat = .text
    @OptionGroup var options: StateOptions

    static func file(home: URL, deployment: String) -> URL {
        home.appendingPathComponent("elastic").appendingPathComponent("\(deployment).json")
    }

    static func write(_ status: ControllerStatus, to file: URL) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        guard let data = try? encoder.encode(status) else { return }
        try? FileManager.default.createDirectory(
            at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? data.write(to: file, options: .atomic)
    }

    func run() throws {
        let file = Self.file(home: options.context.homeURL, deployment: deployment)
        guard let data = FileManager.default.contents(atPath: file.path) else {
            writeError(
                "error: no elastic controller has run for \(deployment) (start one: deployctl elastic run \(deployment))"
            )
            throw ExitCode(1)
        }
        let status: ControllerStatus
        do {
            status = try JSONDecoder().decode(ControllerStatus.self, from: data)
        } catch {
            writeError("error: \(file.path): unreadable controller status: \(error)")
            throw ExitCode(2)
        }
        let running = kill(status.pid, 0) == 0
        switch format {
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            var object = (try JSONSerialization.jsonObject(with: encoder.encode(status))) as? [String: Any] ?? [:]
            object["running"] = running
            let text = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
            print(String(decoding: text, as: UTF8.self))
        case .text:
            let age = Date().timeIntervalSince1970 - status.updated
            print(
                "\(deployment): controller "
                    + (running ? "running (pid \(status.pid))" : "not running")
                    + String(format: ", updated %.0f s ago", age))
            for pool in status.pools {
                let estimate = pool.bootEstimate.map { String(format: ", boots in ~%.0f s", $0) } ?? ""
                print("  \(pool.name): \(pool.nodes.count) node(s) (\(pool.minNodes)-\(pool.maxNodes))\(estimate)")
                for node in pool.nodes {
                    let idle = node.idleSeconds.map { String(format: " for %.0f s", $0) } ?? ""
                    print("    \(node.name) \(node.state)\(idle)")
                }
            }
            print("  waiting: \(status.pendingJobs) job(s), \(status.pendingCPUs) CPU(s), \(status.pendingGPUs) GPU(s)")
            if !status.latencies.isEmpty {
                let sorted = status.latencies.sorted()
                let p95 = sorted[min(sorted.count - 1, Int((Double(sorted.count) * 0.95).rounded(.up)) - 1)]
                print(
                    String(
                        format: "  submission to power-on decision: median %.1f s, p95 %.1f s, max %.1f s (%d)",
                        sorted[sorted.count / 2], p95, sorted.last!, sorted.count))
            }
            if !status.events.isEmpty { print("  recent decisions:") }
            for event in status.events {
                let time = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: event.time))
                let nodes = event.nodes.isEmpty ? "" : " [\(event.nodes.joined(separator: ", "))]"
                print("    \(time) \(event.kind)\(event.pool.map { " \($0)" } ?? "")\(nodes): \(event.message)")
            }
        }
    }
}
