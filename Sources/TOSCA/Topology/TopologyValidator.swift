/// Checks a `topology_template` against the type system and builds the ``Topology`` the planner consumes.
final class TopologyValidator {
    let registry: TypeRegistry
    let sink: DiagnosticSink
    let parser: DefinitionsParser
    var topology = Topology()
    /// Raw node template entries by name, for `copy` and forward references.
    var rawNodes: [String: YPair] = [:]
    var rawRelationships: [String: YPair] = [:]
    var inputNames: [String: PropertyDef] = [:]
    var groupNames: Set<String> = []
    /// The file behind a displayed path (they differ inside a CSAR archive).
    var realPath: (String) -> String = { $0 }
    /// Function calls seen while reading values, checked once every requirement is bound.
    var pendingFunctions: [(YNode, FunctionContext, String)] = []

    init(registry: TypeRegistry, sink: DiagnosticSink) {
        self.registry = registry
        self.sink = sink
        self.parser = DefinitionsParser(sink: sink)
    }

    static let topologyKeys: Set<String> = [
        "description", "inputs", "node_templates", "relationship_templates", "groups", "policies", "outputs",
        "substitution_mappings", "workflows",
    ]

    func validate(_ root: YNode) -> Topology {
        guard let pairs = sink.mapping(root, "'topology_template'", path: "topology_template") else { return topology }
        sink.checkKeys(pairs, allowed: Self.topologyKeys, in: "topology_template", path: "topology_template")
        topology.description = root["description"]?.text
        if let inputs = root["inputs"] {
            validateInputs(inputs)
        }
        if let nodes = root["node_templates"],
            let entries = sink.mapping(nodes, "'node_templates'", path: "topology_template.node_templates")
        {
            for entry in entries { if let name = entry.key.text { rawNodes[name] = entry } }
        }
        if let relationships = root["relationship_templates"],
            let entries = sink.mapping(
                relationships, "'relationship_templates'", path: "topology_template.relationship_templates")
        {
            for entry in entries { if let name = entry.key.text { rawRelationships[name] = entry } }
        }
        if let groups = root["groups"]?.mapping {
            for entry in groups { if let name = entry.key.text { groupNames.insert(name) } }
        }
        // Relationship templates first: requirements refer to them.
        for name in rawRelationships.keys.sorted() {
            if let template = validateRelationshipTemplate(rawRelationships[name]!) {
                topology.relationshipTemplates[name] = template
            }
        }
        if let nodes = root["node_templates"]?.mapping {
            for entry in nodes {
                if let template = validateNodeTemplate(entry) { topology.nodes.append(template) }
            }
        }
        if topology.nodes.isEmpty, root["node_templates"] == nil, root["substitution_mappings"] == nil {
            sink.warning(
                "no-nodes", "the topology_template has no node_templates", at: root, path: "topology_template")
        }
        for index in topology.nodes.indices {
            // Resolve on a copy: resolution reads the other nodes of the topology.
            var node = topology.nodes[index]
            resolveRequirements(&node)
            topology.nodes[index] = node
        }
        if let groups = root["groups"] { validateGroups(groups) }
        if let policies = root["policies"] { validatePolicies(policies) }
        if let workflows = root["workflows"] { validateWorkflows(workflows) }
        if let outputs = root["outputs"] { validateOutputs(outputs) }
        if let substitution = root["substitution_mappings"] { validateSubstitution(substitution) }
        checkDependencyCycles()
        flushFunctions()
        return topology
    }

    // MARK: Inputs and outputs

    private func validateInputs(_ node: YNode) {
        let path = "topology_template.inputs"
        let definitions = parser.parsePropertyDefs(node, path: path, parameters: true)
        for definition in definitions {
            let itemPath = joinPath(path, definition.name)
            var definition = definition
            if definition.schema.type.isEmpty {
                definition.schema.type = "string"
            }
            checkValueType(definition.schema, at: definition.schema.typeNode ?? definition.node, path: itemPath)
            if let value = definition.defaultValue, !value.isNull {
                checker(context: nil).check(value, schema: definition.schema, path: joinPath(itemPath, "default"))
            }
            if !definition.schema.constraints.isEmpty {
                checker(context: nil).checkConstraintClauses(
                    definition.schema.constraints, type: definition.schema.type, path: joinPath(itemPath, "constraints")
                )
            }
            inputNames[definition.name] = definition
            topology.inputs.append(definition)
        }
    }

    private func validateOutputs(_ node: YNode) {
        let allowed: Set<String> = [
            "description", "value", "type", "required", "status", "entry_schema", "key_schema", "metadata",
        ]
        for (name, pair, itemPath) in sink.namedMaps(
            node, section: "'outputs'", each: "output", allowed: allowed, path: "topology_template.outputs")
        {
            guard let value = pair.value["value"] else {
                sink.error("missing-key", "output '\(name)' has no 'value'", at: pair.key, path: itemPath)
                continue
            }
            checkFunctions(in: value, context: .output, path: joinPath(itemPath, "value"))
            topology.outputs.append((name, pair.key, value))
        }
    }

    // MARK: Node templates

    static let nodeTemplateKeys: Set<String> = [
        "type", "description", "metadata", "directives", "properties", "attributes", "requirements", "capabilities",
        "interfaces", "artifacts", "node_filter", "copy",
    ]

    /// A node template entry with `copy` applied: the copied template's keys, overridden by this one's.
    private func effectiveEntry(_ entry: YPair, path: String) -> YNode {
        guard let copyNode = entry.value["copy"], let source = copyNode.text else { return entry.value }
        guard let original = rawNodes[source] else {
            sink.error(
                "unknown-node",
                "'copy' names '\(source)', which is not a node template\(Suggest.hint(source, rawNodes.keys))",
                at: copyNode, path: joinPath(path, "copy"))
            return entry.value
        }
        if original.value["copy"] != nil {
            sink.error(
                "bad-copy", "'copy' must name a template that does not itself use 'copy'", at: copyNode,
                path: joinPath(path, "copy"))
        }
        var pairs = original.value.mapping ?? []
        for pair in entry.value.mapping ?? [] where pair.key.text != "copy" {
            pairs.removeAll { $0.key.text == pair.key.text }
            pairs.append(pair)
        }
        return YNode(.mapping(pairs), at: entry.value.location)
    }

    private func validateNodeTemplate(_ entry: YPair) -> NodeTemplate? {
        guard let name = entry.key.text else { return nil }
        let path = "topology_template.node_templates.\(name)"
        guard let fields = sink.mapping(entry.value, "node template '\(name)'", path: path) else { return nil }
        sink.checkKeys(fields, allowed: Self.nodeTemplateKeys, in: "node template '\(name)'", path: path)
        let body = effectiveEntry(entry, path: path)
        guard let typeNode = body["type"] else {
            sink.error("missing-key", "node template '\(name)' has no 'type'", at: entry.key, path: path)
            return nil
        }
        guard let type = resolveType(typeNode, .node, path: joinPath(path, "type")) else { return nil }
        var template = NodeTemplate(name: name, type: type.name, node: entry.key)
        guard registry.isComplete(type.name, .node) else {
            // Its members would all look unknown; the broken derivation is reported where it is written.
            sink.warning(
                "incomplete-type",
                "node type \(type.name) derives from a type that does not resolve, so node template '\(name)' "
                    + "is not checked further", at: typeNode, path: joinPath(path, "type"))
            return template
        }
        if let directives = body["directives"] {
            template.directives = sink.stringList(directives, "'directives'", path: joinPath(path, "directives")).map(
                \.0)
            for (directive, node) in sink.stringList(directives, "'directives'", path: path)
            where !["select", "substitute", "substitutable"].contains(directive) {
                sink.warning(
                    "unknown-directive", "unknown directive '\(directive)'; TOSCA defines 'select' and 'substitute'",
                    at: node, path: joinPath(path, "directives"))
            }
        }
        let isAbstract = !template.directives.isEmpty
        let context = FunctionContext.node(name)
        template.properties = assignProperties(
            body["properties"], definitions: registry.properties(of: type.name, .node),
            owner: "node template '\(name)' (type \(type.name))", path: joinPath(path, "properties"), context: context,
            requireAll: !isAbstract, anchor: entry.key)
        if let attributes = body["attributes"] {
            template.attributes = assignAttributes(
                attributes,
                definitions: registry.attributes(of: type.name, .node) + registry.properties(of: type.name, .node),
                owner: "node template '\(name)' (type \(type.name))", path: joinPath(path, "attributes"),
                context: context)
        }
        if let capabilities = body["capabilities"] {
            assignCapabilities(capabilities, template: &template, path: joinPath(path, "capabilities"))
        }
        if let requirements = body["requirements"] {
            template.requirements = readRequirementAssignments(
                requirements, template: template, path: joinPath(path, "requirements"))
        }
        template.interfaces = assignInterfaces(
            body["interfaces"], definitions: registry.interfaces(of: type.name, .node),
            owner: "node template '\(name)'", path: joinPath(path, "interfaces"), context: context)
        if let artifacts = body["artifacts"] {
            template.artifacts = assignArtifacts(artifacts, path: joinPath(path, "artifacts"), context: context)
        }
        template.artifacts = mergedArtifacts(registry.artifacts(of: type.name, .node), template.artifacts)
        if let filter = body["node_filter"] {
            if !template.directives.contains("select") {
                sink.warning(
                    "node-filter-without-select",
                    "node_filter on node template '\(name)' only applies with the 'select' directive", at: filter,
                    path: joinPath(path, "node_filter"))
            }
            validateNodeFilterShape(filter, path: joinPath(path, "node_filter"))
        }
        checkFiles(template)
        return template
    }

    private func mergedArtifacts(_ inherited: [ArtifactDef], _ assigned: [ArtifactDef]) -> [ArtifactDef] {
        var result = inherited
        for artifact in assigned {
            result.removeAll { $0.name == artifact.name }
            result.append(artifact)
        }
        return result
    }

    private func validateRelationshipTemplate(_ entry: YPair) -> RelationshipTemplate? {
        guard let name = entry.key.text else { return nil }
        let path = "topology_template.relationship_templates.\(name)"
        guard let fields = sink.mapping(entry.value, "relationship template '\(name)'", path: path) else { return nil }
        sink.checkKeys(
            fields,
            allowed: ["type", "description", "metadata", "properties", "attributes", "interfaces", "copy"],
            in: "relationship template '\(name)'", path: path)
        guard let typeNode = entry.value["type"] else {
            sink.error("missing-key", "relationship template '\(name)' has no 'type'", at: entry.key, path: path)
            return nil
        }
        guard let type = resolveType(typeNode, .relationship, path: joinPath(path, "type")) else { return nil }
        var template = RelationshipTemplate(name: name, type: type.name, node: entry.key)
        let context = FunctionContext.relationship(name)
        template.properties = assignProperties(
            entry.value["properties"], definitions: registry.properties(of: type.name, .relationship),
            owner: "relationship template '\(name)' (type \(type.name))", path: joinPath(path, "properties"),
            context: context, requireAll: true, anchor: entry.key)
        template.interfaces = assignInterfaces(
            entry.value["interfaces"], definitions: registry.interfaces(of: type.name, .relationship),
            owner: "relationship template '\(name)'", path: joinPath(path, "interfaces"), context: context)
        return template
    }

    // MARK: Shared helpers

    /// Resolves a type reference, reporting an unknown one with a suggestion (and a hint when it is another kind).
    func resolveType(_ node: YNode, _ kind: TypeKind, path: String) -> TypeDef? {
        guard let name = sink.string(node, "a \(kind.noun) name", path: path) else { return nil }
        if let type = registry.lookup(name, kind) { return type }
        reportUnknownType(name, kind, at: node, path: path)
        return nil
    }

    func reportUnknownType(_ name: String, _ kind: TypeKind, at node: YNode, path: String) {
        sink.unknownType(name, kind, registry: registry, at: node, path: path)
    }

    func checker(context: FunctionContext?) -> ValueChecker {
        var checker = ValueChecker(registry: registry, sink: sink)
        if let context {
            checker.onFunction = { [unowned self] node, path in self.checkFunction(node, context: context, path: path) }
        } else {
            checker.onFunction = { [unowned self] node, path in
                self.sink.error(
                    "function-not-allowed", "functions are not allowed here (\(Functions.name(of: node) ?? "?"))",
                    at: node, path: path)
            }
        }
        return checker
    }

    /// Checks that a property/attribute type exists.
    func checkValueType(_ schema: Schema, at node: YNode, path: String) {
        guard !schema.type.isEmpty else { return }
        if !registry.isKnownValueType(schema.type) {
            reportUnknownType(schema.type, .data, at: schema.typeNode ?? node, path: path)
        }
        if let entry = schema.entrySchema?.value { checkValueType(entry, at: node, path: path) }
        if let key = schema.keySchema?.value { checkValueType(key, at: node, path: path) }
    }

    /// Checks property assignments against definitions and returns assigned values plus defaults.
    func assignProperties(
        _ node: YNode?, definitions: [PropertyDef], owner: String, path: String, context: FunctionContext,
        requireAll: Bool, anchor: YNode
    ) -> [(String, YNode)] {
        var assigned: [(String, YNode)] = []
        let byName = Dictionary(definitions.map { ($0.name, $0) }, uniquingKeysWith: { _, last in last })
        if let node, let pairs = sink.mapping(node, "'properties'", path: path) {
            for pair in pairs {
                guard let key = pair.key.text else { continue }
                guard let definition = byName[key] else {
                    sink.error(
                        "unknown-property",
                        "unknown property '\(key)' for \(owner)\(Suggest.hint(key, byName.keys))", at: pair.key,
                        path: joinPath(path, key))
                    continue
                }
                if pair.value.isNull, definition.required {
                    sink.error(
                        "missing-property", "required property '\(key)' of \(owner) is null", at: pair.value,
                        path: joinPath(path, key))
                    continue
                }
                checker(context: context).check(pair.value, schema: definition.schema, path: joinPath(path, key))
                assigned.append((key, pair.value))
            }
        }
        for definition in definitions where !assigned.contains(where: { $0.0 == definition.name }) {
            if let value = definition.value ?? definition.defaultValue {
                assigned.append((definition.name, value))
            } else if definition.required && requireAll {
                sink.error(
                    "missing-property", "\(owner) is missing required property '\(definition.name)'",
                    at: anchor, path: path)
            }
        }
        return assigned
    }

    func assignAttributes(
        _ node: YNode, definitions: [PropertyDef], owner: String, path: String, context: FunctionContext
    ) -> [(String, YNode)] {
        guard let pairs = sink.mapping(node, "'attributes'", path: path) else { return [] }
        let byName = Dictionary(definitions.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var assigned: [(String, YNode)] = []
        for pair in pairs {
            guard let key = pair.key.text else { continue }
            guard let definition = byName[key] else {
                sink.error(
                    "unknown-attribute", "unknown attribute '\(key)' for \(owner)\(Suggest.hint(key, byName.keys))",
                    at: pair.key, path: joinPath(path, key))
                continue
            }
            checker(context: context).check(pair.value, schema: definition.schema, path: joinPath(path, key))
            assigned.append((key, pair.value))
        }
        return assigned
    }

    private func assignCapabilities(_ node: YNode, template: inout NodeTemplate, path: String) {
        guard let pairs = sink.mapping(node, "'capabilities'", path: path) else { return }
        let definitions = registry.capabilities(of: template.type, .node)
        for pair in pairs {
            guard let key = pair.key.text else { continue }
            let capabilityPath = joinPath(path, key)
            guard let definition = definitions.first(where: { $0.name == key }) else {
                sink.error(
                    "unknown-capability",
                    "node type \(template.type) has no capability '\(key)'\(Suggest.hint(key, definitions.map(\.name)))",
                    at: pair.key, path: capabilityPath)
                continue
            }
            guard let fields = sink.mapping(pair.value, "capability '\(key)'", path: capabilityPath) else { continue }
            sink.checkKeys(
                fields, allowed: ["properties", "attributes", "occurrences"], in: "capability '\(key)'",
                path: capabilityPath)
            let capabilityType = registry.canonical(definition.type, .capability) ?? definition.type
            let propertyDefs = registry.merge([
                registry.properties(of: capabilityType, .capability), definition.properties,
            ])
            let owner = "capability '\(key)' of node template '\(template.name)' (type \(capabilityType))"
            let context = FunctionContext.node(template.name)
            let values = assignProperties(
                pair.value["properties"], definitions: propertyDefs, owner: owner,
                path: joinPath(capabilityPath, "properties"), context: context, requireAll: true, anchor: pair.key)
            template.capabilityProperties[key] = values
            if let attributes = pair.value["attributes"] {
                _ = assignAttributes(
                    attributes,
                    definitions: registry.attributes(of: capabilityType, .capability) + definition.attributes
                        + propertyDefs, owner: owner, path: joinPath(capabilityPath, "attributes"), context: context)
            }
            if registry.derives(capabilityType, from: "tosca.capabilities.Scalable", .capability) {
                template.scaling = scaling(from: values, path: joinPath(capabilityPath, "properties"))
            }
        }
    }

    /// Reads min/max/default instances and checks min ≤ default ≤ max where they are known before deployment:
    /// literals, and get_input of an input with a default (the planner checks again with the run's inputs).
    func scaling(from values: [(String, YNode)], path: String) -> Scaling {
        func node(_ name: String) -> YNode? { values.first { $0.0 == name }?.1 }
        // `count` is the INDIGO/IM spelling of the initial size, read when default_instances is absent.
        let result = Scaling(
            isScalable: true, minNode: node("min_instances"), maxNode: node("max_instances"),
            countNode: node("default_instances") ?? node("count"))
        if let problem = result.problem(result.bounds(staticInt)) {
            sink.error("bad-scaling", problem.message, at: problem.node, path: path)
        }
        return result
    }

    /// An integer known before deployment: a literal, or get_input of an input whose default is one.
    private func staticInt(_ node: YNode) -> Int? {
        if case .int(let value) = node.resolved { return value }
        if Functions.name(of: node) == "get_input", let name = Functions.argument(of: node)?.text,
            let value = inputNames[name]?.defaultValue, case .int(let number) = value.resolved
        {
            return number
        }
        return nil
    }

    func assignInterfaces(
        _ node: YNode?, definitions: [InterfaceDef], owner: String, path: String, context: FunctionContext
    ) -> [InterfaceDef] {
        var result = definitions
        guard let node, let pairs = sink.mapping(node, "'interfaces'", path: path) else { return result }
        for pair in pairs {
            guard let name = pair.key.text else { continue }
            let interfacePath = joinPath(path, name)
            guard let definition = definitions.first(where: { $0.name == name }) else {
                sink.error(
                    "unknown-interface",
                    "\(owner) has no interface '\(name)'\(Suggest.hint(name, definitions.map(\.name)))", at: pair.key,
                    path: interfacePath)
                continue
            }
            guard let assigned = parser.parseInterface(name: name, pair: pair, path: interfacePath) else { continue }
            let known =
                Set(definition.operations.map(\.name)).union(
                    definition.type.map { registry.operations(ofInterface: $0) } ?? [])
            var merged = definition
            for operation in assigned.operations {
                if !known.contains(operation.name) {
                    sink.error(
                        "unknown-operation",
                        "interface '\(name)' of \(owner) has no operation '\(operation.name)'\(Suggest.hint(operation.name, known))",
                        at: operation.node, path: joinPath(interfacePath, operation.name))
                    continue
                }
                validateImplementation(operation, path: joinPath(interfacePath, operation.name))
                for (_, value) in operation.inputValues {
                    checkFunctions(
                        in: value, context: context, path: joinPath(interfacePath, "\(operation.name).inputs"))
                }
                merged.operations.removeAll { $0.name == operation.name }
                merged.operations.append(operation)
            }
            result.removeAll { $0.name == name }
            result.append(merged)
        }
        return result
    }

    private func validateImplementation(_ operation: OperationDef, path: String) {
        guard let implementation = operation.implementation else { return }
        if implementation.text != nil { return }
        guard let fields = sink.mapping(implementation, "an implementation", path: path) else { return }
        sink.checkKeys(
            fields, allowed: ["primary", "dependencies", "timeout", "operation_host"], in: "an implementation",
            path: joinPath(path, "implementation"))
        if let host = implementation["operation_host"]?.text,
            !["SELF", "HOST", "SOURCE", "TARGET", "ORCHESTRATOR"].contains(host)
        {
            sink.error(
                "bad-operation-host",
                "operation_host '\(host)' must be SELF, HOST, SOURCE, TARGET or ORCHESTRATOR",
                at: implementation["operation_host"], path: joinPath(path, "implementation.operation_host"))
        }
        if let timeout = implementation["timeout"], case .int = timeout.resolved {
        } else if let timeout = implementation["timeout"] {
            sink.error(
                "type-mismatch", "timeout must be an integer number of seconds", at: timeout,
                path: joinPath(path, "implementation.timeout"))
        }
    }

    private func assignArtifacts(_ node: YNode, path: String, context: FunctionContext) -> [ArtifactDef] {
        guard let pairs = sink.mapping(node, "'artifacts'", path: path) else { return [] }
        var result: [ArtifactDef] = []
        for pair in pairs {
            guard let name = pair.key.text,
                let artifact = parser.parseArtifact(name: name, pair: pair, path: joinPath(path, name))
            else { continue }
            if let typeName = artifact.type, let typeNode = pair.value["type"] {
                if registry.lookup(typeName, .artifact) == nil {
                    reportUnknownType(typeName, .artifact, at: typeNode, path: joinPath(path, "\(name).type"))
                }
            }
            if let fileNode = artifact.fileNode, artifact.file == nil {
                checkFunctions(in: fileNode, context: context, path: joinPath(path, "\(name).file"))
            }
            result.append(artifact)
        }
        return result
    }

    // MARK: Groups

    private func validateGroups(_ node: YNode) {
        let allowed: Set<String> = [
            "type", "description", "metadata", "properties", "attributes", "members", "interfaces", "targets",
        ]
        for (name, pair, groupPath) in sink.namedMaps(
            node, section: "'groups'", each: "group", allowed: allowed, path: "topology_template.groups")
        {
            guard let typeNode = pair.value["type"] else {
                sink.error("missing-key", "group '\(name)' has no 'type'", at: pair.key, path: groupPath)
                continue
            }
            guard let type = resolveType(typeNode, .group, path: joinPath(groupPath, "type")) else { continue }
            _ = assignProperties(
                pair.value["properties"], definitions: registry.properties(of: type.name, .group),
                owner: "group '\(name)' (type \(type.name))", path: joinPath(groupPath, "properties"),
                context: .group(name), requireAll: true, anchor: pair.key)
            var members: [String] = []
            let allowedTypes = registry.typeList(of: type.name, .group)
            let memberKey = pair.value["members"] != nil ? "members" : "targets"
            for (member, memberNode) in pair.value[memberKey].map({
                sink.stringList($0, "'members'", path: joinPath(groupPath, memberKey))
            }) ?? [] {
                guard let target = topology.node(named: member) else {
                    sink.error(
                        "unknown-node",
                        "group '\(name)' member '\(member)' is not a node template\(Suggest.hint(member, rawNodes.keys))",
                        at: memberNode, path: joinPath(groupPath, memberKey))
                    continue
                }
                if !allowedTypes.isEmpty,
                    !allowedTypes.contains(where: { registry.derives(target.type, from: $0, .node) })
                {
                    sink.error(
                        "invalid-member",
                        "group '\(name)' of type \(type.name) accepts members of type \(allowedTypes.joined(separator: ", ")); "
                            + "'\(member)' is a \(target.type)", at: memberNode, path: joinPath(groupPath, memberKey))
                }
                members.append(member)
            }
            topology.groups.append(GroupTemplate(name: name, type: type.name, members: members))
        }
    }

    // MARK: Hosting

    /// The node a node is hosted on (through a HostedOn relationship), if any.
    func host(of name: String) -> String? {
        topology.node(named: name)?.host(registry)
    }

    /// Requirements must not form a cycle (a → b → a): no deployment order could satisfy it. Each cycle is
    /// reported once, at the node template where the walk found it.
    private func checkDependencyCycles() {
        var state: [String: Int] = [:]  // 1 on the current path, 2 finished
        var path: [String] = []
        func visit(_ name: String) {
            state[name] = 1
            path.append(name)
            for requirement in topology.node(named: name)?.requirements ?? [] {
                guard let target = requirement.target else { continue }
                if state[target] == 1, let start = path.firstIndex(of: target) {
                    let cycle = path[start...] + [target]
                    let origin = topology.node(named: name)
                    sink.error(
                        "dependency-cycle",
                        "node templates depend on each other in a cycle: \(cycle.joined(separator: " → ")); no "
                            + "deployment order can satisfy it", at: requirement.targetNode ?? requirement.node,
                        path: "topology_template.node_templates.\(origin?.name ?? name).requirements")
                } else if state[target] == nil {
                    visit(target)
                }
            }
            path.removeLast()
            state[name] = 2
        }
        for node in topology.nodes where state[node.name] == nil { visit(node.name) }
    }
}
