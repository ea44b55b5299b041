/// The TOSCA Simple Profile versions deployctl reads.
public enum ToscaVersion: String, Sendable, Codable, CaseIterable, Comparable {
    case v1_0 = "tosca_simple_yaml_1_0"
    case v1_1 = "tosca_simple_yaml_1_1"
    case v1_2 = "tosca_simple_yaml_1_2"
    case v1_3 = "tosca_simple_yaml_1_3"

    public static func < (lhs: ToscaVersion, rhs: ToscaVersion) -> Bool { lhs.rawValue < rhs.rawValue }

    /// Accepted spellings seen in real templates besides the canonical ones.
    static func parse(_ text: String) -> ToscaVersion? {
        if let version = ToscaVersion(rawValue: text) { return version }
        switch text {
        case "http://docs.oasis-open.org/tosca/ns/simple/yaml/1.0": return .v1_0
        case "tosca_simple_profile_for_nfv_1_0_0": return .v1_0
        default: return nil
        }
    }
}

struct ImportSpec: Sendable {
    var file: String
    var repository: String?
    var namespacePrefix: String?
    var node: YNode
}

struct RepositoryDef: Sendable {
    var name: String
    var url: String
    var node: YNode
}

/// One definitions file as read, before imports are merged.
struct ParsedFile: Sendable {
    var path: String
    var version: ToscaVersion
    var imports: [ImportSpec] = []
    var repositories: [String: RepositoryDef] = [:]
    var types: [TypeDef] = []
    var topology: YNode?
    var metadata: [(String, String)] = []
    var description: String?
}

/// Reads the grammar of a definitions file into ``ParsedFile``, reporting every shape error it finds.
struct DefinitionsParser {
    let sink: DiagnosticSink

    static let topLevelKeys: Set<String> = [
        "tosca_definitions_version", "namespace", "metadata", "description", "dsl_definitions", "repositories",
        "imports", "artifact_types", "data_types", "capability_types", "interface_types", "relationship_types",
        "node_types", "group_types", "policy_types", "topology_template", "template_name", "template_author",
        "template_version",
    ]

    /// The keys each kind of type definition may have. Built once: `Set.formUnion` with an array literal makes a
    /// dynamic cast per call, which showed up as a tenth of a cold validation.
    static let typeKeys: [TypeKind: Set<String>] = {
        let common = ["derived_from", "version", "metadata", "description"]
        let extra: [TypeKind: [String]] = [
            .data: ["properties", "constraints", "key_schema", "entry_schema"],
            .artifact: ["mime_type", "file_ext", "properties"],
            .capability: ["properties", "attributes", "valid_source_types"],
            .interface: ["inputs", "operations", "notifications"],
            .relationship: ["properties", "attributes", "interfaces", "valid_target_types", "valid_source_types"],
            .node: ["properties", "attributes", "requirements", "capabilities", "interfaces", "artifacts"],
            .group: ["properties", "attributes", "members", "requirements", "capabilities", "interfaces"],
            .policy: ["properties", "targets", "triggers"],
        ]
        return extra.mapValues { Set(common + $0) }
    }()

    func parse(_ root: YNode, path: String, normative: Bool = false) -> ParsedFile? {
        guard let pairs = sink.mapping(root, "a TOSCA service template", path: "") else { return nil }
        guard let versionNode = root["tosca_definitions_version"] else {
            sink.error(
                "missing-version",
                "missing 'tosca_definitions_version'; a TOSCA file must start with e.g. "
                    + "'tosca_definitions_version: tosca_simple_yaml_1_3'",
                at: root, path: "")
            return nil
        }
        guard let versionText = versionNode.text, let version = ToscaVersion.parse(versionText) else {
            let text = versionNode.text ?? versionNode.kindDescription
            let extra = text.contains("2_0") ? " (TOSCA 2.0 is not supported yet)" : ""
            sink.error(
                "unsupported-version",
                "unsupported tosca_definitions_version '\(text)'\(extra); expected one of "
                    + ToscaVersion.allCases.map(\.rawValue).joined(separator: ", "),
                at: versionNode, path: "tosca_definitions_version")
            return nil
        }
        for pair in pairs {
            guard let key = pair.key.text, !Self.topLevelKeys.contains(key) else { continue }
            let hint =
                TopologyValidator.topologyKeys.contains(key)
                ? "; '\(key)' belongs under 'topology_template:'"
                : Suggest.hint(key, Self.topLevelKeys)
            sink.error("unknown-key", "unknown key '\(key)' in a service template\(hint)", at: pair.key, path: key)
        }
        var file = ParsedFile(path: path, version: version)
        if let description = root["description"] { file.description = description.text }
        if let metadata = root["metadata"], let entries = sink.mapping(metadata, "metadata", path: "metadata") {
            file.metadata = entries.compactMap { pair in
                guard let key = pair.key.text else { return nil }
                return (key, pair.value.text ?? "")
            }
        }
        for key in ["template_name", "template_author", "template_version"] {
            if let value = root[key]?.text { file.metadata.append((key, value)) }
        }
        if let repositories = root["repositories"] {
            file.repositories = parseRepositories(repositories)
        }
        if let imports = root["imports"] {
            file.imports = parseImports(imports, version: version)
        }
        for kind in TypeKind.allCases {
            guard let section = root[kind.section],
                let entries = sink.mapping(section, "'\(kind.section)'", path: kind.section)
            else { continue }
            for entry in entries {
                guard let name = sink.string(entry.key, "a type name", path: kind.section) else { continue }
                var type = parseType(name: name, kind: kind, entry: entry, path: joinPath(kind.section, name))
                type.isNormative = normative
                file.types.append(type)
            }
        }
        file.topology = root["topology_template"]
        return file
    }

    // MARK: Repositories and imports

    private func parseRepositories(_ node: YNode) -> [String: RepositoryDef] {
        guard let pairs = sink.mapping(node, "'repositories'", path: "repositories") else { return [:] }
        var result: [String: RepositoryDef] = [:]
        for pair in pairs {
            guard let name = pair.key.text else { continue }
            let path = joinPath("repositories", name)
            if let url = pair.value.text, !pair.value.isNull {
                result[name] = RepositoryDef(name: name, url: url, node: pair.value)
                continue
            }
            guard let fields = sink.mapping(pair.value, "repository '\(name)'", path: path) else { continue }
            sink.checkKeys(
                fields, allowed: ["description", "url", "credential"], in: "repository '\(name)'", path: path)
            guard let urlNode = pair.value["url"] else {
                sink.error("missing-key", "repository '\(name)' has no 'url'", at: pair.key, path: path)
                continue
            }
            if let url = sink.string(urlNode, "a repository url", path: joinPath(path, "url")) {
                result[name] = RepositoryDef(name: name, url: url, node: urlNode)
            }
        }
        return result
    }

    private func parseImports(_ node: YNode, version: ToscaVersion) -> [ImportSpec] {
        guard let items = sink.list(node, "'imports'", path: "imports") else { return [] }
        var result: [ImportSpec] = []
        for (index, item) in items.enumerated() {
            let path = "imports[\(index)]"
            if let text = item.text, !item.isNull {
                result.append(ImportSpec(file: text, node: item))
                continue
            }
            guard let pairs = sink.mapping(item, "an import", path: path) else { continue }
            let longFormKeys: Set<String> = ["file", "repository", "namespace_uri", "namespace_prefix"]
            if pairs.contains(where: { longFormKeys.contains($0.key.text ?? "") }) {
                sink.checkKeys(pairs, allowed: longFormKeys, in: "an import", path: path)
                guard let fileNode = item["file"], let file = sink.string(fileNode, "an import's file", path: path)
                else {
                    sink.error("missing-key", "an import in the long form needs 'file'", at: item, path: path)
                    continue
                }
                result.append(
                    ImportSpec(
                        file: file, repository: item["repository"]?.text,
                        namespacePrefix: item["namespace_prefix"]?.text, node: fileNode))
            } else if pairs.count == 1, let name = pairs[0].key.text {
                // The legacy named form `- name: file` or `- name: {file: …}` of TOSCA 1.0.
                let value = pairs[0].value
                sink.warning(
                    "legacy-import",
                    "the named import form '- \(name): …' is deprecated since TOSCA 1.2; write '- file: …'",
                    at: pairs[0].key, path: path)
                if let file = value.text, !value.isNull {
                    result.append(ImportSpec(file: file, node: value))
                } else if let fileNode = value["file"], let file = fileNode.text {
                    result.append(
                        ImportSpec(
                            file: file, repository: value["repository"]?.text,
                            namespacePrefix: value["namespace_prefix"]?.text, node: fileNode))
                } else {
                    sink.error("bad-import", "import '\(name)' names no file", at: value, path: path)
                }
            } else {
                sink.error("bad-import", "an import must be a file name or a map with 'file'", at: item, path: path)
            }
        }
        return result
    }

    // MARK: Types

    private func parseType(name: String, kind: TypeKind, entry: YPair, path: String) -> TypeDef {
        var type = TypeDef(name: name, kind: kind, node: entry.value, nameNode: entry.key)
        guard let pairs = sink.mapping(entry.value, "\(kind.noun) '\(name)'", path: path) else { return type }
        let allowed = Self.typeKeys[kind] ?? []
        if kind != .interface {
            sink.checkKeys(pairs, allowed: allowed, in: "\(kind.noun) '\(name)'", path: path)
        }
        if let derived = entry.value["derived_from"] {
            type.derivedFrom = sink.string(derived, "'derived_from'", path: joinPath(path, "derived_from"))
            type.derivedFromNode = derived
        }
        type.version = entry.value["version"]?.text
        if let node = entry.value["properties"] {
            type.properties = parsePropertyDefs(node, path: joinPath(path, "properties"))
        }
        if let node = entry.value["attributes"] {
            type.attributes = parsePropertyDefs(node, path: joinPath(path, "attributes"), attributes: true)
        }
        if let node = entry.value["requirements"] {
            type.requirements = parseRequirementDefs(node, path: joinPath(path, "requirements"))
        }
        if let node = entry.value["capabilities"] {
            type.capabilities = parseCapabilityDefs(node, path: joinPath(path, "capabilities"))
        }
        if let node = entry.value["interfaces"] {
            type.interfaces = parseInterfaceDefs(node, path: joinPath(path, "interfaces"))
        }
        if let node = entry.value["artifacts"] {
            type.artifacts = parseArtifactDefs(node, path: joinPath(path, "artifacts"))
        }
        let listKey: String? =
            switch kind {
            case .capability: "valid_source_types"
            case .relationship: "valid_target_types"
            case .group: "members"
            case .policy: "targets"
            default: nil
            }
        if let listKey, let node = entry.value[listKey] {
            let entries = sink.stringList(node, "'\(listKey)'", path: joinPath(path, listKey))
            type.typeList = entries.map(\.0)
            type.typeListNodes = entries.map(\.1)
        }
        if kind == .data {
            if let node = entry.value["constraints"] {
                type.constraints = sink.list(node, "'constraints'", path: joinPath(path, "constraints")) ?? []
            }
            type.entrySchema = entry.value["entry_schema"].flatMap {
                parseSchema($0, path: joinPath(path, "entry_schema"))
            }
            type.keySchema = entry.value["key_schema"].flatMap { parseSchema($0, path: joinPath(path, "key_schema")) }
        }
        if kind == .artifact {
            type.mimeType = entry.value["mime_type"]?.text
            if let node = entry.value["file_ext"] {
                type.fileExtensions = sink.stringList(node, "'file_ext'", path: joinPath(path, "file_ext")).map(\.0)
            }
        }
        if kind == .interface {
            type.operations = parseInterfaceTypeOperations(pairs, entry: entry.value, path: path)
        }
        return type
    }

    /// Interface types list operations under `operations:` (1.3) or as direct keys (1.0–1.2).
    private func parseInterfaceTypeOperations(_ pairs: [YPair], entry: YNode, path: String) -> [OperationDef] {
        var operations: [OperationDef] = []
        let reserved: Set<String> = ["derived_from", "version", "metadata", "description", "inputs", "notifications"]
        if let node = entry["operations"],
            let entries = sink.mapping(node, "'operations'", path: joinPath(path, "operations"))
        {
            for pair in entries {
                guard let name = pair.key.text else { continue }
                operations.append(parseOperation(name: name, pair: pair, path: joinPath(path, "operations.\(name)")))
            }
        }
        for pair in pairs {
            guard let name = pair.key.text, !reserved.contains(name), name != "operations" else { continue }
            operations.append(parseOperation(name: name, pair: pair, path: joinPath(path, name)))
        }
        return operations
    }

    // MARK: Members

    func parseSchema(_ node: YNode, path: String) -> Schema? {
        if let text = node.text, !node.isNull { return Schema(type: text, typeNode: node) }
        guard let pairs = sink.mapping(node, "a schema", path: path) else { return nil }
        sink.checkKeys(
            pairs, allowed: ["type", "description", "constraints", "entry_schema", "key_schema"], in: "a schema",
            path: path)
        guard let typeNode = node["type"], let type = sink.string(typeNode, "a schema's type", path: path) else {
            sink.error("missing-key", "a schema needs 'type'", at: node, path: path)
            return nil
        }
        var schema = Schema(type: type, typeNode: typeNode)
        if let constraints = node["constraints"] {
            schema.constraints = sink.list(constraints, "'constraints'", path: joinPath(path, "constraints")) ?? []
        }
        schema.entrySchema = node["entry_schema"].flatMap { parseSchema($0, path: joinPath(path, "entry_schema")) }.map(
            Box.init)
        schema.keySchema = node["key_schema"].flatMap { parseSchema($0, path: joinPath(path, "key_schema")) }.map(
            Box.init)
        return schema
    }

    func parsePropertyDefs(_ node: YNode, path: String, attributes: Bool = false, parameters: Bool = false)
        -> [PropertyDef]
    {
        guard let pairs = sink.mapping(node, "'\(path.split(separator: ".").last ?? "")'", path: path) else {
            return []
        }
        var result: [PropertyDef] = []
        var allowed: Set<String> = [
            "type", "description", "required", "default", "status", "constraints", "key_schema", "entry_schema",
            "metadata", "external-schema", "value",
        ]
        if attributes { allowed.remove("required") }
        if parameters { allowed.insert("mapping") }
        for pair in pairs {
            guard let name = sink.string(pair.key, "a name", path: path) else { continue }
            let itemPath = joinPath(path, name)
            let what = attributes ? "attribute '\(name)'" : (parameters ? "parameter '\(name)'" : "property '\(name)'")
            // Parameters (inputs/outputs) may be a bare value in operation definitions; callers handle that.
            guard let fields = sink.mapping(pair.value, what, path: itemPath) else { continue }
            sink.checkKeys(fields, allowed: allowed, in: what, path: itemPath)
            var schema = Schema(type: "", typeNode: nil)
            if let typeNode = pair.value["type"] {
                schema.type = sink.string(typeNode, "a type name", path: joinPath(itemPath, "type")) ?? ""
                schema.typeNode = typeNode
            }
            if let constraints = pair.value["constraints"] {
                schema.constraints =
                    sink.list(constraints, "'constraints'", path: joinPath(itemPath, "constraints")) ?? []
            }
            schema.entrySchema = pair.value["entry_schema"].flatMap {
                parseSchema($0, path: joinPath(itemPath, "entry_schema"))
            }.map(
                Box.init)
            schema.keySchema = pair.value["key_schema"].flatMap {
                parseSchema($0, path: joinPath(itemPath, "key_schema"))
            }.map(
                Box.init)
            var required = true
            var requiredWasSet = false
            if let requiredNode = pair.value["required"] {
                required = sink.bool(requiredNode, "'required'", path: joinPath(itemPath, "required")) ?? true
                requiredWasSet = true
            }
            result.append(
                PropertyDef(
                    name: name, node: pair.key, schema: schema, required: attributes ? false : required,
                    requiredWasSet: requiredWasSet, defaultValue: pair.value["default"], value: pair.value["value"],
                    status: pair.value["status"]?.text))
        }
        return result
    }

    func parseOccurrences(_ node: YNode, path: String) -> Occurrences? {
        guard let items = node.sequence, items.count == 2 else {
            sink.error(
                "bad-occurrences", "occurrences must be a list of two bounds such as [1, UNBOUNDED]", at: node,
                path: path)
            return nil
        }
        func bound(_ item: YNode) -> Int?? {
            if case .int(let value) = item.resolved, value >= 0 { return .some(value) }
            if item.text == "UNBOUNDED" { return .some(nil) }
            return nil
        }
        guard let lowerBound = bound(items[0]), let lower = lowerBound, let upper = bound(items[1]) else {
            sink.error(
                "bad-occurrences",
                "occurrences bounds must be non-negative integers (the upper may be UNBOUNDED)", at: node, path: path)
            return nil
        }
        if let upper, upper < lower || upper == 0 {
            sink.error(
                "bad-occurrences", "occurrences [\(lower), \(upper)] has an upper bound below the lower or zero",
                at: node, path: path)
            return nil
        }
        return Occurrences(lower: lower, upper: upper)
    }

    private func parseRequirementDefs(_ node: YNode, path: String) -> [RequirementDef] {
        guard let items = sink.list(node, "'requirements'", path: path) else { return [] }
        var result: [RequirementDef] = []
        for (index, item) in items.enumerated() {
            let itemPath = "\(path)[\(index)]"
            guard let pairs = sink.mapping(item, "a requirement definition", path: itemPath) else { continue }
            guard pairs.count == 1, let name = pairs[0].key.text else {
                sink.error(
                    "bad-requirement", "each requirement definition must be a map with a single name", at: item,
                    path: itemPath)
                continue
            }
            let value = pairs[0].value
            let namedPath = joinPath(itemPath, name)
            var requirement = RequirementDef(
                name: name, node: pairs[0].key, occurrences: Occurrences(lower: 1, upper: 1))
            if let capability = value.text, !value.isNull {
                requirement.capability = capability
                result.append(requirement)
                continue
            }
            guard let fields = sink.mapping(value, "requirement '\(name)'", path: namedPath) else { continue }
            sink.checkKeys(
                fields, allowed: ["capability", "node", "relationship", "occurrences", "node_filter", "description"],
                in: "requirement definition '\(name)'", path: namedPath)
            requirement.capability = value["capability"]?.text
            requirement.targetNodeType = value["node"]?.text
            if let relationship = value["relationship"] {
                requirement.relationshipNode = relationship
                requirement.relationship = relationship.text ?? relationship["type"]?.text
            }
            if let occurrences = value["occurrences"] {
                requirement.occurrences =
                    parseOccurrences(occurrences, path: joinPath(namedPath, "occurrences")) ?? requirement.occurrences
            }
            requirement.nodeFilter = value["node_filter"]
            if requirement.capability == nil {
                sink.error(
                    "missing-key", "requirement definition '\(name)' needs 'capability'", at: pairs[0].key,
                    path: namedPath)
            }
            result.append(requirement)
        }
        return result
    }

    private func parseCapabilityDefs(_ node: YNode, path: String) -> [CapabilityDef] {
        guard let pairs = sink.mapping(node, "'capabilities'", path: path) else { return [] }
        var result: [CapabilityDef] = []
        for pair in pairs {
            guard let name = pair.key.text else { continue }
            let itemPath = joinPath(path, name)
            if let type = pair.value.text, !pair.value.isNull {
                result.append(
                    CapabilityDef(
                        name: name, node: pair.key, type: type, properties: [], attributes: [], validSourceTypes: []))
                continue
            }
            guard let fields = sink.mapping(pair.value, "capability '\(name)'", path: itemPath) else { continue }
            sink.checkKeys(
                fields,
                allowed: ["type", "description", "properties", "attributes", "valid_source_types", "occurrences"],
                in: "capability definition '\(name)'", path: itemPath)
            guard let type = pair.value["type"]?.text else {
                sink.error("missing-key", "capability definition '\(name)' needs 'type'", at: pair.key, path: itemPath)
                continue
            }
            var capability = CapabilityDef(
                name: name, node: pair.key, type: type, properties: [], attributes: [], validSourceTypes: [])
            if let properties = pair.value["properties"] {
                capability.properties = parsePropertyDefs(properties, path: joinPath(itemPath, "properties"))
            }
            if let attributes = pair.value["attributes"] {
                capability.attributes = parsePropertyDefs(
                    attributes, path: joinPath(itemPath, "attributes"), attributes: true)
            }
            if let sources = pair.value["valid_source_types"] {
                capability.validSourceTypes = sink.stringList(sources, "'valid_source_types'", path: itemPath).map(\.0)
            }
            if let occurrences = pair.value["occurrences"] {
                capability.occurrences = parseOccurrences(occurrences, path: joinPath(itemPath, "occurrences"))
            }
            result.append(capability)
        }
        return result
    }

    func parseInterfaceDefs(_ node: YNode, path: String) -> [InterfaceDef] {
        guard let pairs = sink.mapping(node, "'interfaces'", path: path) else { return [] }
        return pairs.compactMap { pair in
            guard let name = pair.key.text else { return nil }
            return parseInterface(name: name, pair: pair, path: joinPath(path, name))
        }
    }

    /// An interface definition or assignment: `type`, `inputs`, and operations under `operations:` or directly.
    func parseInterface(name: String, pair: YPair, path: String) -> InterfaceDef? {
        guard let fields = sink.mapping(pair.value, "interface '\(name)'", path: path) else { return nil }
        var interface = InterfaceDef(
            name: name, node: pair.key, type: pair.value["type"]?.text, inputs: [], operations: [])
        if let inputs = pair.value["inputs"] {
            interface.inputs = parseParameterDefs(inputs, path: joinPath(path, "inputs")).definitions
        }
        let reserved: Set<String> = ["type", "inputs", "description", "notifications", "operations"]
        if let operations = pair.value["operations"],
            let entries = sink.mapping(operations, "'operations'", path: joinPath(path, "operations"))
        {
            for entry in entries {
                guard let operationName = entry.key.text else { continue }
                interface.operations.append(
                    parseOperation(
                        name: operationName, pair: entry, path: joinPath(path, "operations.\(operationName)")))
            }
        }
        for entry in fields {
            guard let operationName = entry.key.text, !reserved.contains(operationName) else { continue }
            interface.operations.append(
                parseOperation(name: operationName, pair: entry, path: joinPath(path, operationName)))
        }
        return interface
    }

    func parseOperation(name: String, pair: YPair, path: String) -> OperationDef {
        var operation = OperationDef(
            name: name, node: pair.key, implementation: nil, inputs: [], inputValues: [], outputs: [])
        if pair.value.scalar != nil {
            operation.implementation = pair.value.isNull ? nil : pair.value
            return operation
        }
        guard let fields = sink.mapping(pair.value, "operation '\(name)'", path: path) else { return operation }
        sink.checkKeys(
            fields, allowed: ["description", "implementation", "inputs", "outputs"], in: "operation '\(name)'",
            path: path)
        operation.implementation = pair.value["implementation"]
        if let inputs = pair.value["inputs"] {
            let parameters = parseParameterDefs(inputs, path: joinPath(path, "inputs"))
            operation.inputs = parameters.definitions
            operation.inputValues = parameters.values
        }
        if let outputs = pair.value["outputs"],
            let entries = sink.mapping(outputs, "'outputs'", path: joinPath(path, "outputs"))
        {
            operation.outputs = entries.compactMap { entry in entry.key.text.map { ($0, entry.value) } }
        }
        return operation
    }

    /// Operation and interface inputs are definitions (maps with `type`) or plain value assignments.
    func parseParameterDefs(_ node: YNode, path: String) -> (definitions: [PropertyDef], values: [(String, YNode)]) {
        guard let pairs = sink.mapping(node, "'inputs'", path: path) else { return ([], []) }
        var definitions: [PropertyDef] = []
        var values: [(String, YNode)] = []
        for pair in pairs {
            guard let name = pair.key.text else { continue }
            if let fields = pair.value.mapping, fields.contains(where: { $0.key.text == "type" }),
                !Functions.isFunctionCall(pair.value)
            {
                let single = YNode(.mapping([pair]), at: pair.key.location)
                definitions.append(contentsOf: parsePropertyDefs(single, path: path, parameters: true))
            } else {
                values.append((name, pair.value))
            }
        }
        return (definitions, values)
    }

    private func parseArtifactDefs(_ node: YNode, path: String) -> [ArtifactDef] {
        guard let pairs = sink.mapping(node, "'artifacts'", path: path) else { return [] }
        return pairs.compactMap { pair in
            guard let name = pair.key.text else { return nil }
            return parseArtifact(name: name, pair: pair, path: joinPath(path, name))
        }
    }

    func parseArtifact(name: String, pair: YPair, path: String) -> ArtifactDef? {
        if let file = pair.value.text, !pair.value.isNull {
            return ArtifactDef(name: name, node: pair.key, type: nil, file: file)
        }
        guard let fields = sink.mapping(pair.value, "artifact '\(name)'", path: path) else { return nil }
        sink.checkKeys(
            fields,
            allowed: [
                "type", "file", "repository", "description", "deploy_path", "artifact_version", "checksum",
                "checksum_algorithm", "properties",
            ], in: "artifact '\(name)'", path: path)
        guard let fileNode = pair.value["file"] else {
            sink.error("missing-key", "artifact '\(name)' needs 'file'", at: pair.key, path: path)
            return nil
        }
        // The file may come from an input (`file: {get_input: image}`); the caller checks that function.
        let file = Functions.isFunctionCall(fileNode) ? nil : fileNode.text
        if file == nil, !Functions.isFunctionCall(fileNode) {
            sink.error(
                "expected-string", "artifact '\(name)' file must be a path or URL, found \(fileNode.kindDescription)",
                at: fileNode, path: joinPath(path, "file"))
            return nil
        }
        return ArtifactDef(
            name: name, node: pair.key, type: pair.value["type"]?.text, file: file, fileNode: fileNode,
            repository: pair.value["repository"]?.text)
    }
}
