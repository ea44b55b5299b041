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

extension StateStore {
    func runtime(_ deployment: String, _ plan: Plan) throws -> RuntimeValues {
        RuntimeValues(plan: plan, ledger: try resources(of: deployment), steps: try steps(of: deployment))
    }

    /// Every instance of the plan with its state and addresses, from the state alone (no provider call).
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

}

extension Deployer {
    public func instances(deployment: String, plan: Plan) throws -> [InstanceReport] {
        try store.instances(deployment: deployment, plan: plan)
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

/// Where the ledger and the provider disagree.
public struct Drift: Sendable, Equatable {
    /// Recorded as created, but the provider has nothing under its name (removed behind deployctl's back).
    public var missing: [LedgerEntry]
    /// Tagged with the deployment at the provider, but not live in the ledger.
    public var untracked: [TaggedResource]

    public var isEmpty: Bool { missing.isEmpty && untracked.isEmpty }
}

extension Deployer {
    /// Compares the ledger with what the provider actually holds under the deployment's tag.
    public func verify(deployment: String) async throws -> Drift {
        let live = try store.liveResources(of: deployment)
        let tagged: [TaggedResource]
        do {
            tagged = try await provider.resources(deployment: deployment)
        } catch {
            throw OrchestratorError(error.code, error.description)
        }
        let taggedNames = Set(tagged.map(\.name))
        let attachedVolumes = Set(
            live.filter { $0.kind == "attachment" && $0.status == .created }.compactMap { entry in
                entry.detail.flatMap { try? JSONDecoder().decode([String: String].self, from: Data($0.utf8)) }?[
                    "volume"]
            })
        let missing = live.filter { entry in
            guard entry.status == .created, !taggedNames.contains(entry.name) else { return false }
            if entry.kind == "volume" {
                // Volumes deployctl did not create, and volumes not attached yet, have no tag to find.
                let external = entry.detail?.contains("\"external\":\"true\"") == true
                return !external && attachedVolumes.contains(entry.instance)
            }
            return true
        }
        let liveNames = Set(live.map(\.name))
        return Drift(missing: missing, untracked: tagged.filter { !liveNames.contains($0.name) })
    }
}
