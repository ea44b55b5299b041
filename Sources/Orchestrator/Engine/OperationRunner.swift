import Foundation
import Providers
import TOSCA

/// One TOSCA operation to run: a plan step, or a stop/delete operation of a node being removed.
struct OperationCall: Sendable {
    var id: String
    /// The instance it belongs to; it runs on that instance's compute host.
    var instance: String
    var node: String
    var interface: String
    var operation: String
    var implementation: JSONValue?
    var inputs: JSONValue
    /// For relationship operations: the source and target instances.
    var source: String?
    var target: String?

    init(step: Plan.Step) {
        id = step.id
        instance = step.instance
        node = step.node
        interface = step.interface ?? "Standard"
        operation = step.operation ?? ""
        implementation = step.implementation
        inputs = step.inputs
        if step.interface == "Configure", let other = step.target {
            let onTarget = Plan.runsOnTarget(operation)
            source = onTarget ? other : step.instance
            target = onTarget ? step.instance : other
        }
    }

    /// A Standard operation of a node from the plan's node description; nil when the node has none.
    init?(standard operation: String, instance: String, node: String, plan: Plan) {
        guard let definition = plan.nodes.first(where: { $0.0 == node })?.1["interfaces"]?["Standard"]?[operation],
            let implementation = definition["implementation"], implementation != .null
        else { return nil }
        id = "\(instance).Standard.\(operation)"
        self.instance = instance
        self.node = node
        interface = "Standard"
        self.operation = operation
        self.implementation = implementation
        inputs = definition["inputs"] ?? .object([])
    }
}

/// Runs operations on their compute host: shell scripts over SSH (inputs as environment variables), Ansible
/// playbooks with ansible-playbook against a generated inventory.
struct OperationRunner: Sendable {
    let deployer: Deployer
    let deployment: String
    let plan: Plan

    func run(_ call: OperationCall) async throws -> [String: String] {
        let runtime = try deployer.runtime(deployment, plan)
        guard let computeInstance = runtime.computeHost(of: call.instance) else {
            throw StepError(description: "\(call.instance) is not hosted on a compute node to run on")
        }
        guard let compute = runtime.entry(computeInstance, kind: "compute"), let computeID = compute.providerID else {
            throw StepError(description: "its host \(computeInstance) has not been created")
        }
        let access: HostAccess
        do {
            access = try deployer.provider.access(computeID: computeID, name: compute.name)
        } catch {
            throw StepError(description: "\(error.description)", transient: error.isTransient)
        }
        var environment: [String: String] = [:]
        var structured: [String: String] = [:]
        if case .object(let pairs) = call.inputs {
            for (name, value) in pairs {
                do {
                    let resolved = try runtime.resolve(
                        value, instance: call.instance, source: call.source, target: call.target)
                    environment[name] = try RuntimeValues.text(resolved)
                    switch resolved {
                    case .array, .object: structured[name] = environment[name]
                    default: break
                    }
                } catch {
                    throw StepError(description: "input \(name): \(error)")
                }
            }
        }
        environment["DEPLOYCTL_DEPLOYMENT"] = deployment
        environment["DEPLOYCTL_INSTANCE"] = call.instance
        environment["DEPLOYCTL_NODE"] = call.node
        for (name, other) in [("SOURCE", call.source), ("TARGET", call.target)] {
            guard let other else { continue }
            environment["DEPLOYCTL_\(name)"] = other
            if let address = try? runtime.attribute("private_address", of: other), case .string(let text) = address {
                environment["DEPLOYCTL_\(name)_ADDRESS"] = text
            }
        }
        let (path, timeout) = try implementation(of: call)
        let name = "\(call.interface).\(call.operation)"
        if path.hasSuffix(".yml") || path.hasSuffix(".yaml") {
            let host = PlaybookOperation.Host(
                name: Self.inventoryName(call.instance), address: access.endpoint.address,
                port: access.endpoint.port, user: access.endpoint.user, privateKey: access.endpoint.privateKey)
            var hosts = [host]
            // A relationship operation runs on one end; the other end is in the inventory too (not in the play's
            // limit), so that the playbook can delegate to it, e.g. to fetch a shared key from the target.
            for (group, other) in [("source", call.source), ("target", call.target)] {
                guard let other else { continue }
                if other == call.instance {
                    hosts[0].groups.append(group)
                } else if let otherHost = try? endpoint(of: other, runtime: runtime) {
                    hosts.append(
                        PlaybookOperation.Host(
                            name: Self.inventoryName(other), address: otherHost.address, port: otherHost.port,
                            user: otherHost.user, privateKey: otherHost.privateKey, groups: [group],
                            knownHosts: otherHost.knownHosts))
                }
                environment["DEPLOYCTL_\(group.uppercased())_HOST"] = Self.inventoryName(other)
            }
            var playbookOperation = PlaybookOperation(
                name: name, playbook: path, hosts: hosts, knownHosts: access.endpoint.knownHosts,
                variables: environment, timeout: timeout)
            playbookOperation.structuredVariables = structured
            playbookOperation.limit = host.name
            let operation = playbookOperation
            let result = try await blocking { try operation.run() }
            guard result.succeeded else {
                throw StepError(
                    description: "ansible-playbook exited with status \(result.exitStatus): "
                        + Self.tail(result.output))
            }
            return [:]
        }
        let script: Data
        do {
            script = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw StepError(description: "cannot read its script \(path): \(error.localizedDescription)")
        }
        let safeInstance = Self.inventoryName(call.instance)
        var prepared = ScriptOperation(
            name: name, script: script, inputs: environment,
            workDirectory: "\(access.workDirectory)/\(safeInstance)")
        // Relationship operations of one instance run side by side (one per source or target): their own files.
        prepared.fileBase = [name, call.source, call.target].compactMap { $0 }.joined(separator: ".")
        prepared.elevate = access.endpoint.user != "root"
        let operation = prepared
        let endpoint = access.endpoint
        let result: ScriptOperation.Result
        do {
            result = try await blocking { try operation.run(on: try SSHSession(endpoint), timeout: timeout) }
        } catch let error as SSHError {
            throw StepError(description: "\(error.description) [\(error.code.rawValue)]", transient: true)
        } catch let error as OrchestratorError {
            throw StepError(description: "\(error.description)", transient: error.code == "operation-unreachable")
        }
        guard result.succeeded else {
            let detail = Self.tail(result.stderr.isEmpty ? result.stdout : result.stderr)
            throw StepError(
                description: "the script exited with status \(result.exitStatus)"
                    + (detail.isEmpty ? "" : ": \(detail)"))
        }
        return result.outputs
    }

    /// An inventory host name for an instance: letters, digits and underscores.
    static func inventoryName(_ instance: String) -> String {
        String(instance.map { $0.isLetter || $0.isNumber ? $0 : "_" })
    }

    /// How to reach the compute host an instance runs on.
    private func endpoint(of instance: String, runtime: RuntimeValues) throws -> SSHEndpoint? {
        guard let computeInstance = runtime.computeHost(of: instance),
            let compute = runtime.entry(computeInstance, kind: "compute"), let computeID = compute.providerID
        else { return nil }
        return try deployer.provider.access(computeID: computeID, name: compute.name).endpoint
    }

    /// The implementation's local file (relative paths and artifact names resolved against the template's
    /// directory) and its time limit.
    func implementation(of call: OperationCall) throws -> (String, Duration) {
        var primary: JSONValue? = call.implementation
        var timeout = deployer.options.operationTimeout
        if case .object = call.implementation {
            primary = call.implementation?["primary"]
            if case .int(let seconds)? = call.implementation?["timeout"], seconds > 0 { timeout = .seconds(seconds) }
        }
        if case .object = primary { primary = primary?["file"] }
        guard case .string(var path)? = primary, !path.isEmpty else {
            throw StepError(description: "its implementation names no file")
        }
        if case .string(let file)? = plan.nodes.first(where: { $0.0 == call.node })?.1["artifacts"]?[path]?["file"] {
            path = file
        }
        guard !plan.template.contains("!/") else {
            throw StepError(
                description: "operations of a template inside a CSAR archive need the archive unpacked; "
                    + "unzip it and deploy the directory")
        }
        return (Deployer.besideTemplate(path, plan: plan), timeout)
    }

    /// The last lines of a program's output, for an error message.
    static func tail(_ text: String, lines: Int = 8) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: true).suffix(lines).joined(separator: "\n")
    }
}
