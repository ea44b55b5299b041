import ArgumentParser
import Foundation
import Orchestrator
import Providers
import TOSCA

struct Up: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Deploy a template, or resume and converge an existing deployment.",
        discussion: """
            Creates what the plan needs on the provider, level by level and in parallel within a level, then runs \
            the nodes' operations over SSH (shell scripts) or with ansible-playbook (playbooks). Every provider \
            resource is recorded before it is created, so after a crash or Ctrl-C, `up` again resumes and `down` \
            removes everything. A failed step does not undo healthy nodes: the deployment is `degraded`, and `up` \
            again retries only what failed.

            Inputs whose names contain password, secret, token, credential, private_key or api_key are never \
            stored; give them again with -i when you run up, scale or outputs later.

            Exit codes: 0 deployed, 1 degraded (some steps failed), 2 usage or state error, 130 interrupted.
            """)

    @Argument(help: "The template (file or CSAR directory).") var template: String
    @Option(help: "The deployment's name (default: from the template file name).") var name: String?
    @Option(help: "The provider from the providers file (default: the only one declared).") var provider: String?
    @Option(help: "Output format for the summary: text or json.") var format: OutputFormat = .text
    @OptionGroup var templateOptions: TemplateOptions
    @OptionGroup var access: ProviderAccessOptions
    @OptionGroup var run: RunOptions

    func run() async throws {
        let state = DeploymentContext(home: templateOptions.home, access: access)
        var validation = try templateOptions.validationOptionsOrExit()
        let templatePath = URL(fileURLWithPath: template).standardizedFileURL.path
        let name = name ?? defaultDeploymentName(template)
        try checkDeploymentName(name)
        let store = try state.store()
        var previous: Plan?
        let existing = try store.deployment(named: name)
        if let existing {
            guard existing.template == templatePath else {
                writeError(
                    "error: deployment '\(name)' was made from \(existing.template); pick another --name, or "
                        + "`deployctl down \(name)` first")
                throw ExitCode(2)
            }
            if let provider, !existing.provider.isEmpty, provider != existing.provider {
                writeError("error: deployment '\(name)' runs on provider '\(existing.provider)', not '\(provider)'")
                throw ExitCode(2)
            }
            validation.inputs = SecretInputs.decode(existing.inputs).merging(validation.inputs) { _, new in new }
            InstanceSelection(json: existing.counts).apply(to: &validation)
            previous = replan(existing, extra: validation.inputs, home: state.homeURL, quiet: true)
        }
        let (result, planned) = ToscaProcessor.plan(path: templatePath, options: validation)
        let renderer = DiagnosticRenderer(sources: result.sources, color: useColor())
        for diagnostic in result.diagnostics where diagnostic.severity != .error || planned == nil {
            writeError(renderer.render(diagnostic))
        }
        guard let plan = planned else {
            writeError("\(template): invalid: \(result.errors.count) error(s); nothing deployed")
            throw ExitCode(result.diagnostics.contains { $0.code == "io" } ? 2 : 1)
        }
        let backend = try state.provider(provider ?? existing.map(\.provider).flatMap { $0.isEmpty ? nil : $0 })
        if var record = existing {
            record.inputs = SecretInputs.storable(validation.inputs)
            record.provider = backend.name
            try store.update(record)
        } else {
            try store.create(
                DeploymentRecord(
                    name: name, template: templatePath, inputs: SecretInputs.storable(validation.inputs),
                    provider: backend.name))
        }
        try await Up.execute(
            name: name, plan: plan, previous: previous, store: store, provider: backend, options: run.deployOptions,
            format: format, home: state.homeURL)
    }

    /// Runs the plan with progress and Ctrl-C handling, then prints the summary and outputs.
    static func execute(
        name: String, plan: Plan, previous: Plan?, store: StateStore, provider: any Provider, options: DeployOptions,
        format: OutputFormat, home: URL
    ) async throws {
        let progress = TerminalProgress()
        let deployer = Deployer(store: store, provider: provider, options: options, progress: progress)
        let started = ContinuousClock.now
        let result: UpResult
        do {
            result = try await cancellableOnInterrupt {
                try await deployer.up(deployment: name, plan: plan, previous: previous)
            }
        } catch {
            progress.finish()
            writeError("error: \(error)")
            throw ExitCode(2)
        }
        progress.finish()
        let elapsed = ContinuousClock.now - started
        let outputs = (try? deployer.outputs(deployment: name, plan: plan)) ?? []
        switch format {
        case .json:
            print(
                JSONValue.object([
                    ("deployment", .string(name)), ("status", .string(result.status.rawValue)),
                    ("steps", .int(result.total)), ("ran", .int(result.ran)),
                    (
                        "failed",
                        .array(
                            result.failed.map { .object([("step", .string($0.step)), ("error", .string($0.error))]) })
                    ),
                    ("blocked", .array(result.blocked.map(JSONValue.string))),
                    ("removed", .array(result.removed.map(JSONValue.string))),
                    ("outputs", .object(outputs.map { ($0.name, $0.value ?? .null) })),
                ]
                ).serialized())
        case .text:
            let seconds = String(
                format: "%.1f", Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
            print("\(name): \(result.status.rawValue) (\(result.ran) step(s) run of \(result.total), \(seconds)s)")
            if !result.removed.isEmpty { print("removed: \(result.removed.joined(separator: ", "))") }
            for failure in result.failed { print("failed: \(failure.step): \(failure.error)") }
            if !result.blocked.isEmpty {
                print("not run (waiting on failures): \(result.blocked.joined(separator: ", "))")
            }
            if result.status == .deployed {
                for output in outputs {
                    print("\(output.name): \(output.value.map(Outputs.display) ?? "(\(output.error ?? "unknown"))")")
                }
            } else if result.status == .degraded {
                print("fix the cause and run `deployctl up` again: only what failed runs again")
            }
        }
        switch result.status {
        case .deployed: return
        case .interrupted: throw ExitCode(130)
        default: throw ExitCode(1)
        }
    }
}

struct Scale: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Change how many instances of a scalable node a deployment has, or take particular ones away.",
        discussion: """
            Scaling out creates and configures the new instances (taking the lowest free instance numbers); scaling \
            in runs the leaving instances' stop and delete operations (and relationship remove_* operations), then \
            removes their resources. --count N takes away the highest-numbered instances; --remove takes away the \
            ones named (say an idle worker while busy ones stay). The result must lie within the node's \
            min_instances and max_instances.
            """)

    @Argument(help: "The deployment.") var deployment: String
    @Argument(help: "The node template to scale.") var node: String
    @Option(help: "The number of instances wanted.") var count: Int?
    @Option(help: "An instance to take away, such as cpu_worker[1] (repeatable).") var remove: [String] = []
    @Option(name: [.customShort("i"), .customLong("input")], help: "A secret input again, NAME=VALUE.")
    var input: [String] = []
    @Option(help: "Output format for the summary: text or json.") var format: OutputFormat = .text
    @OptionGroup var options: StateOptions
    var state: DeploymentContext { options.context }
    @OptionGroup var run: RunOptions

    func validate() throws {
        if count == nil && remove.isEmpty { throw ValidationError("give --count N, --remove INSTANCE, or both") }
    }

    func run() async throws {
        let extra = try parseAssignments(input)
        try await Self.scale(
            deployment, node: node, state: state, extra: extra, options: run.deployOptions, format: format
        ) { current in
            try Self.select(node: node, current: current, count: count, remove: remove)
        }
    }

    /// The instance numbers wanted: `current` less the instances named in `remove`, then grown with the lowest free
    /// numbers or shrunk from the highest to `count`.
    static func select(node: String, current: [Int], count: Int?, remove: [String]) throws -> [Int] {
        var numbers = Set(current)
        for instance in remove {
            guard instance.hasPrefix("\(node)["), instance.hasSuffix("]"),
                let number = Int(instance.dropFirst(node.count + 1).dropLast())
            else {
                throw ScaleError("\(instance) is not an instance of \(node) (write it as \(node)[N])")
            }
            guard numbers.remove(number) != nil else {
                throw ScaleError(
                    "\(instance) does not exist; \(node) has "
                        + (current.isEmpty ? "no instances" : current.map { "\(node)[\($0)]" }.joined(separator: ", ")))
            }
        }
        if let count {
            var next = 0
            while numbers.count < count {
                while numbers.contains(next) { next += 1 }
                numbers.insert(next)
            }
            while numbers.count > count, let highest = numbers.max() { numbers.remove(highest) }
        }
        return numbers.sorted()
    }

    struct ScaleError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// Replans `deployment` with `node`'s instance numbers as `choose` picks them from the current ones, records
    /// them, and brings the deployment to the new plan.
    static func scale(
        _ deployment: String, node: String, state: DeploymentContext, extra: [String: String], options: DeployOptions,
        format: OutputFormat, choose: ([Int]) throws -> [Int]
    ) async throws {
        let store = try state.store()
        var record = try state.record(store, deployment)
        guard let previous = replan(record, extra: extra, home: state.homeURL) else {
            writeError("error: \(record.template) no longer plans with the deployment's inputs (see above)")
            throw ExitCode(2)
        }
        guard let description = previous.nodes.first(where: { $0.0 == node })?.1 else {
            writeError(
                "error: \(deployment) has no node template '\(node)'; nodes: "
                    + previous.nodes.map(\.0).joined(separator: ", "))
            throw ExitCode(2)
        }
        let current = previous.instances.filter { $0.node == node }.map(\.index)
        let wanted: [Int]
        do {
            wanted = try choose(current)
        } catch let error as ScaleError {
            writeError("error: \(error)")
            throw ExitCode(2)
        }
        let low = description["min_instances"].flatMap { if case .int(let n) = $0 { n } else { nil } } ?? 1
        let high = description["max_instances"].flatMap { if case .int(let n) = $0 { n } else { nil } } ?? 1
        guard (low...high).contains(wanted.count) else {
            writeError("error: \(node) scales between \(low) and \(high) instances; \(wanted.count) is outside")
            throw ExitCode(2)
        }
        let backend = try state.provider(record.provider.isEmpty ? nil : record.provider)
        guard let plan = try reselect(&record, [node: wanted], extra: extra, store: store, home: state.homeURL) else {
            throw ExitCode(2)
        }
        try await Up.execute(
            name: deployment, plan: plan, previous: previous, store: store, provider: backend, options: options,
            format: format, home: state.homeURL)
    }
}

struct Down: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove everything a deployment created.",
        discussion: """
            Runs the nodes' stop and delete operations (best effort), then detaches and deletes every resource in \
            the ledger — including those whose creation was in flight when an earlier run died — and finally asks \
            the provider for anything still tagged with the deployment. The deployment is forgotten only when \
            nothing remains; otherwise run `down` again.

            Exit codes: 0 removed, 1 something remains, 2 usage or state error.
            """)

    @Argument(help: "The deployment.") var deployment: String
    @Option(name: [.customShort("i"), .customLong("input")], help: "A secret input again, NAME=VALUE.")
    var input: [String] = []
    @OptionGroup var options: StateOptions
    var state: DeploymentContext { options.context }

    func run() async throws {
        let store = try state.store()
        let record = try state.record(store, deployment)
        let plan = replan(record, extra: try parseAssignments(input), home: state.homeURL, quiet: true)
        if plan == nil {
            writeError(
                "warning: \(record.template) does not plan any more; skipping stop/delete operations and removing "
                    + "the resources")
        }
        let backend = try state.provider(record.provider.isEmpty ? nil : record.provider)
        let progress = TerminalProgress()
        try store.setStatus(of: deployment, .deleting)
        let deployer = Deployer(store: store, provider: backend, progress: progress)
        let result = try await deployer.teardown(deployment: deployment, plan: plan)
        progress.finish()
        guard result.remaining.isEmpty else {
            for warning in result.warnings { writeError("warning: \(warning)") }
            try store.setStatus(of: deployment, .failed, error: "down left \(result.remaining.count) resource(s)")
            writeError(
                "error: \(result.remaining.count) resource(s) of \(deployment) remain; fix the cause and run "
                    + "`deployctl down \(deployment)` again")
            throw ExitCode(1)
        }
        try store.remove(deployment: deployment)
        print("\(deployment): removed (\(result.removed.count) resource(s))")
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a deployment: its state, instances and addresses, failed steps and resources.",
        discussion: "Without a name, lists the deployments (like `list`).")

    @Argument(help: "The deployment.") var deployment: String?
    @Flag(help: "Also ask the provider what it holds, and report where it and the ledger disagree (exit 1).")
    var verify = false
    @Option(help: "Output format: text or json.") var format: OutputFormat = .text
    @OptionGroup var options: StateOptions
    var state: DeploymentContext { options.context }

    func run() async throws {
        let store = try state.store()
        guard let deployment else {
            try List.show(store, format: format)
            return
        }
        let record = try state.record(store, deployment)
        let steps = try store.steps(of: deployment)
        let ledger = try store.resources(of: deployment).filter(\.isLive)
        let plan = replan(record, home: state.homeURL, quiet: true)
        let instances = try plan.map { try store.instances(deployment: deployment, plan: $0) } ?? []
        let failures = steps.values.filter { $0.status == .failed || $0.status == .blocked }.sorted {
            $0.step < $1.step
        }
        var drift: Drift?
        if verify {
            let backend = try state.provider(record.provider.isEmpty ? nil : record.provider)
            do {
                drift = try await Deployer(store: store, provider: backend).verify(deployment: deployment)
            } catch {
                writeError("error: could not ask \(backend.name) what it holds: \(error)")
                throw ExitCode(2)
            }
        }
        let driftJSON: JSONValue =
            drift.map { drift in
                .object([
                    ("missing", .array(drift.missing.map { .string($0.name) })),
                    ("untracked", .array(drift.untracked.map { .string($0.name) })),
                ])
            } ?? .null
        switch format {
        case .json:
            print(
                JSONValue.object([
                    ("name", .string(record.name)), ("status", .string(record.status.rawValue)),
                    ("template", .string(record.template)), ("provider", .string(record.provider)),
                    ("error", record.error.map(JSONValue.string) ?? .null),
                    (
                        "instances",
                        .array(
                            instances.map { instance in
                                .object([
                                    ("id", .string(instance.instance)), ("node", .string(instance.node)),
                                    ("state", .string(instance.state)),
                                    ("host", instance.host.map(JSONValue.string) ?? .null),
                                    ("provider_id", instance.providerID.map(JSONValue.string) ?? .null),
                                    ("private_address", instance.privateAddress.map(JSONValue.string) ?? .null),
                                    ("public_address", instance.publicAddress.map(JSONValue.string) ?? .null),
                                ])
                            })
                    ),
                    (
                        "failed_steps",
                        .array(
                            failures.map {
                                .object([
                                    ("step", .string($0.step)), ("status", .string($0.status.rawValue)),
                                    ("attempts", .int($0.attempts)), ("error", .string($0.error ?? "")),
                                ])
                            })
                    ),
                    (
                        "resources",
                        .array(
                            ledger.map {
                                .object([
                                    ("kind", .string($0.kind)), ("instance", .string($0.instance)),
                                    ("name", .string($0.name)), ("status", .string($0.status.rawValue)),
                                    ("provider_id", $0.providerID.map(JSONValue.string) ?? .null),
                                ])
                            })
                    ),
                    ("drift", driftJSON),
                ]
                ).serialized())
        case .text:
            print("\(record.name): \(record.status.rawValue)")
            print("  template: \(record.template)")
            print("  provider: \(record.provider)")
            if let error = record.error { print("  last error: \(error)") }
            if plan == nil {
                print("  (the template does not plan any more, or needs secret inputs: no instance view)")
            }
            if !instances.isEmpty {
                print("instances:")
                for instance in instances {
                    var line = "  \(instance.instance)  \(instance.state)"
                    if let host = instance.host, host != instance.instance { line += "  on \(host)" }
                    if let address = instance.privateAddress { line += "  \(address)" }
                    if let id = instance.providerID, instance.host == instance.instance { line += "  (\(id))" }
                    print(line)
                }
            }
            if !failures.isEmpty {
                print("failed steps:")
                for step in failures {
                    print("  \(step.step) [\(step.status.rawValue), \(step.attempts) attempt(s)]: \(step.error ?? "")")
                }
            }
            print("resources: \(ledger.count)")
            for entry in ledger {
                print("  \(entry.kind)  \(entry.name)  \(entry.status.rawValue)  \(entry.providerID ?? "-")")
            }
            if let drift {
                if drift.isEmpty { print("verified: the provider holds exactly what the ledger records") }
                for entry in drift.missing {
                    print("missing at the provider: \(entry.kind) \(entry.name) (\(entry.instance))")
                }
                for resource in drift.untracked {
                    print("at the provider but not in the ledger: \(resource.kind) \(resource.name); `down` removes it")
                }
            }
        }
        if let drift, !drift.isEmpty { throw ExitCode(1) }
    }
}

struct Outputs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a deployment's outputs, evaluated against what was deployed.")

    @Argument(help: "The deployment.") var deployment: String
    @Option(name: [.customShort("i"), .customLong("input")], help: "A secret input again, NAME=VALUE.")
    var input: [String] = []
    @Option(help: "Output format: text or json.") var format: OutputFormat = .text
    @OptionGroup var options: StateOptions
    var state: DeploymentContext { options.context }

    func run() throws {
        let store = try state.store()
        let record = try state.record(store, deployment)
        guard let plan = replan(record, extra: try parseAssignments(input), home: state.homeURL) else {
            writeError("error: \(record.template) does not plan with the deployment's inputs (see above)")
            throw ExitCode(2)
        }
        let backend = try state.provider(record.provider.isEmpty ? nil : record.provider)
        let outputs = try Deployer(store: store, provider: backend).outputs(deployment: deployment, plan: plan)
        switch format {
        case .json:
            print(JSONValue.object(outputs.map { ($0.name, $0.value ?? .null) }).serialized())
        case .text:
            for output in outputs {
                print("\(output.name): \(output.value.map(Self.display) ?? "(\(output.error ?? "unknown"))")")
            }
        }
        if outputs.contains(where: { $0.value == nil }) { throw ExitCode(1) }
    }

    static func display(_ value: JSONValue) -> String {
        if case .string(let text) = value { return text }
        return value.serialized(pretty: false)
    }
}

struct SSH: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ssh",
        abstract: "Open a shell on a deployment's node, or run a command there.",
        discussion: """
            NODE is an instance (`worker[1]`) or a node template (its first instance); software nodes lead to the \
            compute they run on. Uses the system ssh client with the provider's key and known_hosts, and strict \
            host key checking. The exit status is the remote command's.
            """)

    @Argument(help: "The deployment.") var deployment: String
    @Argument(help: "The node or instance.") var node: String
    @Argument(parsing: .postTerminator, help: "A command to run instead of a shell.") var command: [String] = []
    @OptionGroup var options: StateOptions
    var state: DeploymentContext { options.context }

    func run() async throws {
        let store = try state.store()
        let record = try state.record(store, deployment)
        let backend = try state.provider(record.provider.isEmpty ? nil : record.provider)
        let plan = replan(record, home: state.homeURL, quiet: true)
        let access: HostAccess
        do {
            access = try Deployer(store: store, provider: backend).access(
                deployment: deployment, target: node, plan: plan
            )
            .1
        } catch {
            writeError("error: \(error)")
            throw ExitCode(2)
        }
        let endpoint = access.endpoint
        guard
            let ssh = ["/usr/bin/ssh", "/bin/ssh", "/usr/local/bin/ssh"].first(
                where: FileManager.default.isExecutableFile)
        else {
            writeError("error: no ssh client found (install openssh-client)")
            throw ExitCode(2)
        }
        var arguments = [
            ssh, "-p", String(endpoint.port), "-o",
            "UserKnownHostsFile=\(endpoint.knownHosts)",
            "-o", "StrictHostKeyChecking=\(state.acceptNewHostKeys ? "accept-new" : "yes")",
        ]
        // A key file pins the identity; without one, ssh asks the agent.
        if !endpoint.privateKey.isEmpty { arguments += ["-i", endpoint.privateKey, "-o", "IdentitiesOnly=yes"] }
        arguments.append("\(endpoint.user)@\(endpoint.address)")
        if !command.isEmpty { arguments += ["--"] + command }
        let cArguments = arguments.map { strdup($0) } + [nil]
        execv(ssh, cArguments)
        writeError("error: could not run \(ssh): \(String(cString: strerror(errno)))")
        throw ExitCode(2)
    }
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List deployments.")

    @Option(help: "Output format: text or json.") var format: OutputFormat = .text
    @OptionGroup var options: StateOptions
    var state: DeploymentContext { options.context }

    func run() throws {
        try Self.show(try state.store(), format: format)
    }

    static func show(_ store: StateStore, format: OutputFormat) throws {
        let deployments = try store.deployments()
        let live = try deployments.map { try store.liveResources(of: $0.name).count }
        switch format {
        case .json:
            print(
                JSONValue.array(
                    zip(deployments, live).map { record, count in
                        .object([
                            ("name", .string(record.name)), ("status", .string(record.status.rawValue)),
                            ("template", .string(record.template)), ("provider", .string(record.provider)),
                            ("resources", .int(count)),
                            ("updated_at", .string(ISO8601DateFormatter().string(from: record.updatedAt))),
                        ])
                    }
                ).serialized())
        case .text:
            if deployments.isEmpty { print("no deployments") }
            for (record, count) in zip(deployments, live) {
                print(
                    "\(record.name)  \(record.status.rawValue)  \(record.provider)  \(count) resource(s)  "
                        + record.template)
            }
        }
    }
}

/// `NAME=VALUE` assignments from -i.
func parseAssignments(_ assignments: [String]) throws -> [String: String] {
    var values: [String: String] = [:]
    for assignment in assignments {
        guard let equals = assignment.firstIndex(of: "="), equals != assignment.startIndex else {
            throw ValidationError("-i expects NAME=VALUE, got '\(assignment)'")
        }
        values[String(assignment[..<equals])] = String(assignment[assignment.index(after: equals)...])
    }
    return values
}
