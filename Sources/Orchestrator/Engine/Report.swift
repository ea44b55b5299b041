import Foundation
import Providers
import TOSCA

/// One instance of a deployment as `status` shows it.
public struct InstanceReport: Sendable, Equatable {
    public var instance: String
    public var node: String
    /// `initial`, `created`, `configured`, `started` or `error` (TOSCA node states).
    public var state: String
    /// The compute instance it runs on (itself for a compute).
    public var host: String?
    public var providerID: String?
    public var privateAddress: String?
    public var publicAddress: String?
}

/// One output of a deployment: its value, or why it has none yet.
public struct OutputReport: Sendable, Equatable {
    public var name: String
    public var value: JSONValue?
    public var error: String?
}

extension Deployer {
    /// Every instance of the plan (or, without a plan, every instance the state knows) with its state and addresses.
    public func instances(deployment: String, plan: Plan) throws -> [InstanceReport] {
        let runtime = try runtime(deployment, plan)
        return plan.instances.map { instance in
            let host = runtime.computeHost(of: instance.id)
            let compute = host.flatMap { runtime.entry($0, kind: "compute") }
            let facts = compute.map(runtime.detail) ?? [:]
            return InstanceReport(
                instance: instance.id, node: instance.node, state: runtime.state(of: instance.id), host: host,
                providerID: compute?.providerID, privateAddress: facts["private_address"],
                publicAddress: facts["public_address"] ?? facts["private_address"])
        }
    }

    /// The template's outputs, resolved against what was deployed.
    public func outputs(deployment: String, plan: Plan) throws -> [OutputReport] {
        let runtime = try runtime(deployment, plan)
        return plan.outputs.map { name, value in
            do {
                return OutputReport(name: name, value: try runtime.resolve(value, instance: nil), error: nil)
            } catch {
                return OutputReport(name: name, value: nil, error: "\(error)")
            }
        }
    }

    /// How to reach the compute host of an instance (`front[1]`) or of a node's first instance (`front`).
    public func access(deployment: String, target: String, plan: Plan?) throws -> (instance: String, HostAccess) {
        let ledger = try store.liveResources(of: deployment).filter { $0.kind == "compute" && $0.status == .created }
        var candidates = [target, "\(target)[0]"]
        if let plan {
            let runtime = try runtime(deployment, plan)
            candidates += candidates.compactMap { runtime.computeHost(of: $0) }
        }
        for candidate in candidates {
            if let entry = ledger.first(where: { $0.instance == candidate }), let id = entry.providerID {
                do {
                    return (candidate, try provider.access(computeID: id, name: entry.name))
                } catch {
                    throw OrchestratorError(error.code, error.description)
                }
            }
        }
        let known = ledger.map(\.instance).sorted().joined(separator: ", ")
        throw OrchestratorError(
            "unknown-instance",
            "\(deployment) has no running compute for '\(target)'" + (known.isEmpty ? "" : "; computes: \(known)"))
    }
}
