/// A validated topology: what the planner turns into instances and steps. Values stay YAML nodes so that functions
/// can be resolved later with their source locations intact.
struct Topology: Sendable {
    var description: String?
    var inputs: [PropertyDef] = []
    var nodes: [NodeTemplate] = []
    var relationshipTemplates: [String: RelationshipTemplate] = [:]
    var groups: [GroupTemplate] = []
    var policies: [PolicyTemplate] = []
    var workflows: [String] = []
    var outputs: [(name: String, node: YNode, value: YNode)] = []
    var substitutionNodeType: String?

    func node(named name: String) -> NodeTemplate? { nodes.first { $0.name == name } }
}

struct NodeTemplate: Sendable {
    var name: String
    var type: String
    var node: YNode
    var directives: [String] = []
    /// Assigned values and defaults, in definition order.
    var properties: [(String, YNode)] = []
    var attributes: [(String, YNode)] = []
    var capabilityProperties: [String: [(String, YNode)]] = [:]
    var requirements: [RequirementAssignment] = []
    var interfaces: [InterfaceDef] = []
    var artifacts: [ArtifactDef] = []
    var scaling = Scaling()

    func property(_ name: String) -> YNode? { properties.first { $0.0 == name }?.1 }

    /// The node template this one is hosted on: the target of its first bound requirement whose relationship
    /// derives from HostedOn.
    func host(_ registry: TypeRegistry) -> String? {
        requirements.first { requirement in
            requirement.target != nil
                && registry.derives(
                    requirement.relationshipType ?? "", from: "tosca.relationships.HostedOn", .relationship)
        }?.target
    }
}

/// A scalable capability's bounds as written; values may be functions (`get_input`), resolved by the caller.
struct Scaling: Sendable {
    var isScalable = false
    var minNode: YNode?
    var maxNode: YNode?
    var countNode: YNode?

    struct Bounds {
        var min: Int?
        var max: Int?
        var count: Int?
    }

    /// The bounds with each value resolved by `value`; a bound that is absent takes the Scalable default (1), one
    /// that cannot be resolved yet is nil.
    func bounds(_ value: (YNode) -> Int?) -> Bounds {
        Bounds(
            min: minNode.map(value) ?? 1, max: maxNode.map(value) ?? 1, count: countNode.flatMap(value))
    }

    /// What is wrong with the bounds, with the node to point at; nothing when they are consistent or unknown.
    func problem(_ bounds: Bounds) -> (message: String, node: YNode?)? {
        if let min = bounds.min, let max = bounds.max, max < min {
            return ("max_instances (\(max)) is below min_instances (\(min))", maxNode ?? minNode)
        }
        if let count = bounds.count, let min = bounds.min, let max = bounds.max, count < min || count > max {
            return (
                "default_instances (\(count)) is outside [min_instances, max_instances] = [\(min), \(max)]", countNode
            )
        }
        return nil
    }
}

struct RequirementAssignment: Sendable {
    var name: String
    var node: YNode
    /// The node template it is bound to; nil for an abstract requirement left to the orchestrator.
    var target: String?
    var capability: String?
    var relationshipType: String?
    var relationshipTemplate: String?
    var relationshipProperties: [(String, YNode)] = []
    var relationshipInterfaces: [InterfaceDef] = []
    /// As written: the `node`, `capability` and `relationship` values and the node_filter.
    var targetNode: YNode?
    var capabilityNode: YNode?
    var relationshipNode: YNode?
    var nodeFilter: YNode?
}

struct RelationshipTemplate: Sendable {
    var name: String
    var type: String
    var node: YNode
    var properties: [(String, YNode)] = []
    var interfaces: [InterfaceDef] = []
}

struct GroupTemplate: Sendable {
    var name: String
    var type: String
    var members: [String]
}

struct PolicyTemplate: Sendable {
    var name: String
    var type: String
    var targets: [String]
    var properties: [(String, YNode)]
}
