import Foundation
import TOSCA

/// What a deployment knows at run time: the ledger (addresses, volume ids) and the operations' outputs. Resolves the
/// function references the planner left in values (`get_attribute`, `get_operation_output`, and `concat`, `join`
/// and `token` over them).
struct RuntimeValues {
    let plan: Plan
    let ledger: [LedgerEntry]
    let steps: [String: StepRecord]

    struct Unresolved: Error, CustomStringConvertible {
        var description: String
    }

    /// Resolves every reference in `value`. `instance` is the instance that SELF means (nil for outputs).
    func resolve(_ value: JSONValue, instance: String?, source: String? = nil, target: String? = nil) throws
        -> JSONValue
    {
        switch value {
        case .array(let items):
            return .array(try items.map { try resolve($0, instance: instance, source: source, target: target) })
        case .object(let pairs):
            guard case .string(let function)? = value["function"], case .array(let rawArgs)? = value["args"] else {
                return .object(
                    try pairs.map { ($0.0, try resolve($0.1, instance: instance, source: source, target: target)) })
            }
            let args = try rawArgs.map { try resolve($0, instance: instance, source: source, target: target) }
            let context: String? =
                if case .string(let node)? = value["context"] { node } else { nil }
            return try call(function, args, instance: instance, context: context, source: source, target: target)
        default:
            return value
        }
    }

    private func call(
        _ function: String, _ args: [JSONValue], instance: String?, context: String?, source: String?,
        target: String?
    ) throws -> JSONValue {
        switch function {
        case "get_attribute":
            guard args.count >= 2, case .string(let entity) = args[0], case .string(let name) = args[1] else {
                throw Unresolved(description: "get_attribute needs an entity and an attribute name")
            }
            let owners = try instances(
                entity, instance: instance, context: context, source: source, target: target, hostOf: entity == "HOST")
            var values = try owners.map { try attribute(name, of: $0) }
            for key in args.dropFirst(2) {
                values = values.map { navigate($0, key) }
            }
            return values.count == 1 ? values[0] : .array(values)
        case "get_operation_output":
            guard args.count == 4, case .string(let entity) = args[0], case .string(let interface) = args[1],
                case .string(let operation) = args[2], case .string(let output) = args[3]
            else {
                throw Unresolved(description: "get_operation_output needs an entity, interface, operation and output")
            }
            let owners = try instances(
                entity, instance: instance, context: context, source: source, target: target, hostOf: false)
            let values = try owners.map { owner -> JSONValue in
                let interfaceName = interface.split(separator: ".").last.map(String.init) ?? interface
                guard let record = steps["\(owner).\(interfaceName).\(operation)"],
                    let value = record.outputValues[output]
                else {
                    throw Unresolved(
                        description: "\(owner) has no output \(output) of \(interfaceName).\(operation) (yet)")
                }
                return .string(value)
            }
            return values.count == 1 ? values[0] : .array(values)
        case "concat", "join":
            let parts: [JSONValue]
            var delimiter = ""
            if function == "concat" {
                parts = args
            } else {
                guard case .array(let items)? = args.first else {
                    throw Unresolved(description: "join needs a list")
                }
                parts = items
                if args.count > 1, case .string(let text) = args[1] { delimiter = text }
            }
            return .string(try parts.map(Self.text).joined(separator: delimiter))
        case "token":
            guard args.count == 3, case .int(let index) = args[2] else {
                throw Unresolved(description: "token needs a string, separators and an index")
            }
            let text = try Self.text(args[0])
            let separators = try Self.text(args[1])
            let pieces = text.split(omittingEmptySubsequences: false, whereSeparator: { separators.contains($0) })
            return index < pieces.count ? .string(String(pieces[index])) : .null
        default:
            throw Unresolved(description: "\(function) cannot be resolved at deployment time")
        }
    }

    /// A value as an environment variable or a string piece: strings bare, scalars printed, the rest as JSON.
    static func text(_ value: JSONValue) throws -> String {
        switch value {
        case .string(let text): return text
        case .int(let number): return String(number)
        case .double(let number): return String(number)
        case .bool(let flag): return flag ? "true" : "false"
        case .null: return ""
        case .array, .object: return value.serialized(pretty: false)
        }
    }

    /// The instances an entity name means from `instance`: SELF, HOST (the compute it runs on), SOURCE, TARGET, or
    /// a node template (its instance of the same index when it has one, else all of them).
    private func instances(
        _ entity: String, instance: String?, context: String?, source: String?, target: String?, hostOf: Bool
    ) throws -> [String] {
        switch entity {
        case "SELF":
            guard let instance else { throw Unresolved(description: "SELF has no meaning here") }
            return [instance]
        case "HOST":
            guard let instance, let host = self.host(of: instance) else {
                throw Unresolved(description: "HOST: \(instance ?? "this") is not hosted on anything")
            }
            return [host]
        case "SOURCE":
            guard let source else { throw Unresolved(description: "SOURCE is only known in relationship operations") }
            return [source]
        case "TARGET":
            guard let target else { throw Unresolved(description: "TARGET is only known in relationship operations") }
            return [target]
        default:
            let all = plan.instances.filter { $0.node == entity }.map(\.id)
            if instance == nil { return all }  // outputs: every instance (a list unless there is one)
            guard !all.isEmpty else { throw Unresolved(description: "node \(entity) has no instances") }
            if let instance, let index = plan.instances.first(where: { $0.id == instance })?.index,
                let same = plan.instances.first(where: { $0.node == entity && $0.index == index })
            {
                return [same.id]
            }
            return [all[0]]
        }
    }

    /// The compute instance `instance` runs on (itself when it is one).
    func host(of instance: String) -> String? { plan.rootHost(of: instance) }

    func computeHost(of instance: String) -> String? {
        if plan.steps.contains(where: { $0.instance == instance && $0.action == "create_compute" }) {
            return instance
        }
        return host(of: instance)
    }

    func entry(_ instance: String, kind: String) -> LedgerEntry? {
        ledger.first { $0.instance == instance && $0.kind == kind && $0.status == .created }
    }

    func detail(_ entry: LedgerEntry) -> [String: String] {
        guard let detail = entry.detail,
            let values = try? JSONDecoder().decode([String: String].self, from: Data(detail.utf8))
        else { return [:] }
        return values
    }

    /// A runtime attribute: an operation output of the same name, then what the ledger knows (addresses, volume
    /// ids), then the node's declared attribute value.
    func attribute(_ name: String, of instance: String) throws -> JSONValue {
        let own = steps.values.filter { $0.instance == instance && $0.status == .done }.sorted {
            $0.updatedAt < $1.updatedAt
        }
        if let value = own.compactMap({ $0.outputValues[name] }).last { return .string(value) }
        let node = plan.instances.first { $0.id == instance }?.node ?? instance
        switch name {
        case "tosca_name": return .string(node)
        case "tosca_id": return .string(instance)
        case "state": return .string(state(of: instance))
        default: break
        }
        if let compute = entry(instance, kind: "compute") {
            let facts = detail(compute)
            switch name {
            case "private_address", "ip_address": return facts["private_address"].map(JSONValue.string) ?? .null
            case "public_address":
                return (facts["public_address"] ?? facts["private_address"]).map(JSONValue.string) ?? .null
            default: break
            }
        }
        if let volume = entry(instance, kind: "volume"), name == "volume_id" {
            return .string(volume.providerID ?? "")
        }
        if ["private_address", "public_address", "ip_address"].contains(name), let host = host(of: instance) {
            return try attribute(name, of: host)
        }
        if let declared = plan.nodes.first(where: { $0.0 == node })?.1["attributes"]?[name], declared != .null {
            return declared
        }
        throw Unresolved(description: "attribute \(name) of \(instance) is not known (yet)")
    }

    /// TOSCA node states from the steps: `initial`, `created`, `configured`, `started`, or `error`.
    func state(of instance: String) -> String {
        let planned = plan.steps.filter { $0.instance == instance && !Deployer.isDeferred($0) }
        let records = planned.compactMap { steps[$0.id] }
        if records.contains(where: { $0.status == .failed }) { return "error" }
        if !planned.isEmpty, records.count == planned.count, records.allSatisfy({ $0.status == .done }) {
            return "started"
        }
        let done = Set(records.filter { $0.status == .done }.map(\.step))
        if done.contains("\(instance).Standard.configure") { return "configured" }
        if !done.isEmpty { return "created" }
        return "initial"
    }

    private func navigate(_ value: JSONValue, _ key: JSONValue) -> JSONValue {
        switch (value, key) {
        case (.array(let items), .int(let index)): return index < items.count ? items[index] : .null
        case (.object, .string(let name)): return value[name] ?? .null
        default: return .null
        }
    }
}

extension Plan {
    /// The instance at the bottom of `instance`'s hosting chain (its compute); nil when nothing hosts it.
    func rootHost(of instance: String) -> String? {
        var current = instance
        var seen: Set<String> = []
        while let next = instances.first(where: { $0.id == current })?.host, seen.insert(current).inserted {
            current = next
        }
        return current == instance ? nil : current
    }
}
