/// The eight kinds of TOSCA type, with the section that defines them and the prefix of their normative names.
public enum TypeKind: String, Sendable, CaseIterable, Codable {
    case data, artifact, capability, interface, relationship, node, group, policy

    var section: String {
        switch self {
        case .data: return "data_types"
        case .artifact: return "artifact_types"
        case .capability: return "capability_types"
        case .interface: return "interface_types"
        case .relationship: return "relationship_types"
        case .node: return "node_types"
        case .group: return "group_types"
        case .policy: return "policy_types"
        }
    }

    var normativePrefix: String {
        switch self {
        case .data: return "tosca.datatypes."
        case .artifact: return "tosca.artifacts."
        case .capability: return "tosca.capabilities."
        case .interface: return "tosca.interfaces."
        case .relationship: return "tosca.relationships."
        case .node: return "tosca.nodes."
        case .group: return "tosca.groups."
        case .policy: return "tosca.policies."
        }
    }

    var noun: String {
        switch self {
        case .data: return "data type"
        case .artifact: return "artifact type"
        case .capability: return "capability type"
        case .interface: return "interface type"
        case .relationship: return "relationship type"
        case .node: return "node type"
        case .group: return "group type"
        case .policy: return "policy type"
        }
    }
}

/// A type-and-constraints description of a value: a property's or attribute's, or a list/map entry's.
struct Schema: Sendable {
    var type: String
    var typeNode: YNode?
    var constraints: [YNode] = []
    var entrySchema: Box<Schema>?
    var keySchema: Box<Schema>?
}

/// Indirection so that a schema can contain schemas.
final class Box<Value: Sendable>: Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// A property, attribute, parameter or input definition.
struct PropertyDef: Sendable {
    var name: String
    var node: YNode
    var schema: Schema
    var required: Bool
    var requiredWasSet: Bool
    var defaultValue: YNode?
    /// A fixed value (TOSCA 1.3 parameter and property `value`).
    var value: YNode?
    var status: String?
}

struct Occurrences: Sendable, Equatable {
    var lower: Int
    /// nil for UNBOUNDED.
    var upper: Int?

    var description: String { "[\(lower), \(upper.map(String.init) ?? "UNBOUNDED")]" }
}

struct RequirementDef: Sendable {
    var name: String
    var node: YNode
    var capability: String?
    var targetNodeType: String?
    var relationship: String?
    var relationshipNode: YNode?
    var occurrences: Occurrences
    var nodeFilter: YNode?
}

struct CapabilityDef: Sendable {
    var name: String
    var node: YNode
    var type: String
    var properties: [PropertyDef]
    var attributes: [PropertyDef]
    var validSourceTypes: [String]
    var occurrences: Occurrences?
}

struct OperationDef: Sendable {
    var name: String
    var node: YNode
    var implementation: YNode?
    var inputs: [PropertyDef]
    /// Input values assigned by the definition (the 1.0-1.2 style where inputs carry values directly).
    var inputValues: [(String, YNode)]
    var outputs: [(String, YNode)]
}

struct InterfaceDef: Sendable {
    var name: String
    var node: YNode
    var type: String?
    var inputs: [PropertyDef]
    var operations: [OperationDef]
}

struct ArtifactDef: Sendable {
    var name: String
    var node: YNode
    var type: String?
    /// The path or URL; nil when it is computed by a function (see `fileNode`).
    var file: String?
    var fileNode: YNode?
    var repository: String?
}

/// One type as written in a file; derived members are merged by ``TypeRegistry``.
struct TypeDef: Sendable {
    var name: String
    var kind: TypeKind
    var node: YNode
    var nameNode: YNode
    var derivedFrom: String?
    var derivedFromNode: YNode?
    var version: String?
    var properties: [PropertyDef] = []
    var attributes: [PropertyDef] = []
    var requirements: [RequirementDef] = []
    var capabilities: [CapabilityDef] = []
    var interfaces: [InterfaceDef] = []
    var artifacts: [ArtifactDef] = []
    /// Interface types: their operations.
    var operations: [OperationDef] = []
    /// Capability types: valid_source_types; relationship types: valid_target_types; group types: members;
    /// policy types: targets.
    var typeList: [String] = []
    var typeListNodes: [YNode] = []
    /// Data types: constraints, key and entry schemas.
    var constraints: [YNode] = []
    var entrySchema: Schema?
    var keySchema: Schema?
    var mimeType: String?
    var fileExtensions: [String] = []
    var isNormative = false
    /// Whether the type may be written by its short name (`Compute`); only the normative types can.
    var hasShortNames = false
}
