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
}

struct Scaling: Sendable {
    var min = 1
    var max = 1
    var defaultCount: Int?
    var countNode: YNode?
    var isScalable = false
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
