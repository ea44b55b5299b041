/// A deployment plan: the instance graph of a valid template and the ordered steps an orchestrator runs, grouped
/// into levels whose steps can run in parallel. Its JSON form (``json``) is the contract the Orchestrator consumes;
/// docs/plan-format.md describes it.
public struct Plan: Sendable {
    public struct Instance: Sendable {
        public var id: String
        public var node: String
        public var index: Int
        /// The instance this one is hosted on, if any.
        public var host: String?
    }

    public struct Edge: Sendable {
        public var from: String
        public var to: String
        /// HostedOn, DependsOn, ConnectsTo, AttachesTo or RoutesTo (the normative relationship it derives from).
        public var kind: String
        public var relationship: String
        public var requirement: String
        public var capability: String?
        public var properties: JSONValue
    }

    public struct Step: Sendable {
        public var id: String
        public var instance: String
        public var node: String
        /// create_compute, create_volume, create_network, create_port, attach_volume, or operation.
        public var action: String
        public var interface: String?
        public var operation: String?
        public var implementation: JSONValue?
        public var inputs: JSONValue
        public var target: String?
        public var after: [String]
        public var level: Int
    }

    public var template: String
    public var version: String
    public var inputs: [(String, JSONValue)]
    public var nodes: [(String, JSONValue)]
    public var instances: [Instance]
    public var edges: [Edge]
    public var steps: [Step]
    public var outputs: [(String, JSONValue)]
    public var policies: [JSONValue]
    public var groups: [JSONValue]

    /// Whether a relationship Configure operation runs on the target's side (else the source's), as TOSCA says:
    /// pre/post_configure_target run on the target, and add_source/remove_source notify the target.
    public static func runsOnTarget(_ operation: String) -> Bool {
        ["pre_configure_target", "post_configure_target", "add_source", "remove_source"].contains(operation)
    }

    /// Step ids per level, in execution order.
    public var levels: [[String]] {
        let count = (steps.map(\.level).max() ?? -1) + 1
        var result = [[String]](repeating: [], count: count)
        for step in steps { result[step.level].append(step.id) }
        return result
    }

    public var json: JSONValue {
        .object([
            ("format", .string("deployctl-plan/v1")),
            ("template", .string(template)),
            ("tosca_definitions_version", .string(version)),
            ("inputs", .object(inputs)),
            ("nodes", .object(nodes)),
            (
                "instances",
                .array(
                    instances.map { instance in
                        .object([
                            ("id", .string(instance.id)), ("node", .string(instance.node)),
                            ("index", .int(instance.index)),
                            ("host", instance.host.map(JSONValue.string) ?? .null),
                        ])
                    })
            ),
            (
                "edges",
                .array(
                    edges.map { edge in
                        .object([
                            ("from", .string(edge.from)), ("to", .string(edge.to)), ("kind", .string(edge.kind)),
                            ("relationship", .string(edge.relationship)), ("requirement", .string(edge.requirement)),
                            ("capability", edge.capability.map(JSONValue.string) ?? .null),
                            ("properties", edge.properties),
                        ])
                    })
            ),
            (
                "steps",
                .array(
                    steps.map { step in
                        var fields: [(String, JSONValue)] = [
                            ("id", .string(step.id)), ("level", .int(step.level)), ("instance", .string(step.instance)),
                            ("node", .string(step.node)), ("action", .string(step.action)),
                        ]
                        if let interface = step.interface { fields.append(("interface", .string(interface))) }
                        if let operation = step.operation { fields.append(("operation", .string(operation))) }
                        if let implementation = step.implementation {
                            fields.append(("implementation", implementation))
                        }
                        if let target = step.target { fields.append(("target", .string(target))) }
                        fields.append(("inputs", step.inputs))
                        fields.append(("after", .array(step.after.map(JSONValue.string))))
                        return .object(fields)
                    })
            ),
            ("levels", .array(levels.map { .array($0.map(JSONValue.string)) })),
            ("outputs", .object(outputs)),
            ("policies", .array(policies)),
            ("groups", .array(groups)),
        ])
    }

    /// A human summary: instances, then each level's steps.
    public var text: String {
        var out = "Plan for \(template) (\(version))\n"
        out += "\n\(instances.count) instance(s) of \(nodes.count) node template(s):\n"
        for instance in instances {
            out += "  \(instance.id)" + (instance.host.map { "  (on \($0))" } ?? "") + "\n"
        }
        out += "\n\(steps.count) step(s) in \(levels.count) level(s); steps in one level run in parallel:\n"
        let byId = Dictionary(steps.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        for (index, level) in levels.enumerated() {
            out += "  level \(index):\n"
            for id in level {
                guard let step = byId[id] else { continue }
                var line = "    \(step.id)"
                if case .string(let path)? = step.implementation { line += "  ← \(path)" }
                out += line + "\n"
            }
        }
        if !outputs.isEmpty {
            out += "\nOutputs (resolved after deployment where they read attributes):\n"
            for (name, value) in outputs { out += "  \(name): \(Self.display(value))\n" }
        }
        return out
    }

    /// A value for people: strings bare, function references as calls such as `get_attribute(front, public_address)`.
    static func display(_ value: JSONValue, quoted: Bool = false) -> String {
        switch value {
        case .string(let text): return quoted ? JSONValue.quote(text) : text
        case .array(let items): return "[" + items.map { display($0, quoted: true) }.joined(separator: ", ") + "]"
        case .object:
            if case .string(let function)? = value["function"], case .array(let args)? = value["args"] {
                let entity: Set<String> = ["get_attribute", "get_property", "get_operation_output", "get_artifact"]
                let shown = args.enumerated().map { index, arg in
                    display(arg, quoted: !(entity.contains(function) || (function == "get_input" && index == 0)))
                }
                return "\(function)(" + shown.joined(separator: ", ") + ")"
            }
            return value.serialized(pretty: false)
        default: return value.serialized(pretty: false)
        }
    }

    /// Graphviz: instances as boxes, relationships as labelled edges, hosting drawn solid and the rest dashed.
    public var dot: String {
        var out = "digraph plan {\n  rankdir=BT;\n  node [shape=box, fontname=\"Helvetica\"];\n"
        for instance in instances {
            out += "  \(JSONValue.quote(instance.id));\n"
        }
        for edge in edges {
            let style = edge.kind == "HostedOn" ? "solid" : "dashed"
            out += "  \(JSONValue.quote(edge.from)) -> \(JSONValue.quote(edge.to)) "
            out += "[label=\(JSONValue.quote(edge.kind)), style=\(style)];\n"
        }
        return out + "}\n"
    }
}
