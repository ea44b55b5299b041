extension TopologyValidator {
    /// Reads requirement assignments (short form `host: server` or the long form with node/capability/relationship).
    func readRequirementAssignments(_ node: YNode, template: NodeTemplate, path: String) -> [RequirementAssignment] {
        guard let items = sink.list(node, "'requirements'", path: path) else { return [] }
        let definitions = registry.requirements(of: template.type, .node)
        var result: [RequirementAssignment] = []
        for (index, item) in items.enumerated() {
            let itemPath = "\(path)[\(index)]"
            guard let pairs = sink.mapping(item, "a requirement assignment", path: itemPath) else { continue }
            guard pairs.count == 1, let name = pairs[0].key.text else {
                sink.error(
                    "bad-requirement",
                    "each requirement assignment must be a map with a single requirement name", at: item,
                    path: itemPath)
                continue
            }
            let namedPath = joinPath(itemPath, name)
            guard definitions.contains(where: { $0.name == name }) else {
                sink.error(
                    "unknown-requirement",
                    "node type \(template.type) has no requirement '\(name)'\(Suggest.hint(name, definitions.map(\.name)))",
                    at: pairs[0].key, path: namedPath)
                continue
            }
            let value = pairs[0].value
            var assignment = RequirementAssignment(name: name, node: pairs[0].key)
            if value.scalar != nil, !value.isNull {
                assignment.targetNode = value
            } else if let fields = sink.mapping(value, "requirement '\(name)'", path: namedPath) {
                sink.checkKeys(
                    fields,
                    allowed: ["node", "capability", "relationship", "node_filter", "occurrences", "description"],
                    in: "requirement assignment '\(name)'", path: namedPath)
                assignment.targetNode = value["node"]
                assignment.capabilityNode = value["capability"]
                assignment.relationshipNode = value["relationship"]
                assignment.nodeFilter = value["node_filter"]
                if let filter = assignment.nodeFilter {
                    validateNodeFilterShape(filter, path: joinPath(namedPath, "node_filter"))
                }
            }
            result.append(assignment)
        }
        return result
    }

    /// Binds each requirement to a target node and capability, checks types, relationships and occurrences, and
    /// fills in requirements the type declares with a lower bound the template did not assign.
    func resolveRequirements(_ template: inout NodeTemplate) {
        let path = "topology_template.node_templates.\(template.name).requirements"
        let definitions = registry.requirements(of: template.type, .node)
        for index in template.requirements.indices {
            let assignment = template.requirements[index]
            guard let definition = definitions.first(where: { $0.name == assignment.name }) else { continue }
            resolve(&template.requirements[index], definition: definition, source: template, path: path)
        }
        for definition in definitions {
            let count = template.requirements.count { $0.name == definition.name }
            if let upper = definition.occurrences.upper, count > upper {
                let extra = template.requirements.filter { $0.name == definition.name }[upper]
                sink.error(
                    "too-many-requirements",
                    "requirement '\(definition.name)' of node template '\(template.name)' is assigned \(count) times; "
                        + "its occurrences allow at most \(upper)", at: extra.node, path: path)
            }
            guard count < definition.occurrences.lower, template.directives.isEmpty else { continue }
            if count > 0 {
                let first = template.requirements.first { $0.name == definition.name }
                sink.error(
                    "too-few-requirements",
                    "requirement '\(definition.name)' of node template '\(template.name)' is assigned \(count) "
                        + "time(s); its occurrences \(definition.occurrences.description) need at least "
                        + "\(definition.occurrences.lower)", at: first?.node ?? template.node, path: path)
                continue
            }
            // An unassigned requirement: bind it when exactly one node template can satisfy it.
            let candidates = topology.nodes.filter { candidate in
                candidate.name != template.name
                    && matchingCapability(on: candidate, definition: definition, named: nil) != nil
                    && (definition.targetNodeType.map { registry.derives(candidate.type, from: $0, .node) } ?? true)
            }
            if candidates.count == 1 {
                var assignment = RequirementAssignment(name: definition.name, node: template.node)
                assignment.target = candidates[0].name
                assignment.capability = matchingCapability(on: candidates[0], definition: definition, named: nil)
                assignment.relationshipType = definition.relationship.flatMap { registry.canonical($0, .relationship) }
                template.requirements.append(assignment)
                sink.warning(
                    "implicit-requirement",
                    "requirement '\(definition.name)' of node template '\(template.name)' is not assigned; "
                        + "bound to '\(candidates[0].name)', the only node that satisfies it", at: template.node,
                    path: path)
            } else if candidates.isEmpty {
                let nodeType = definition.targetNodeType.map { " of type \($0)" } ?? ""
                let what = definition.capability.map { "capability \($0)" } ?? "it"
                sink.error(
                    "unsatisfied-requirement",
                    "node template '\(template.name)' needs requirement '\(definition.name)' "
                        + "(occurrences \(definition.occurrences.description)), but it is not assigned and no node "
                        + "template\(nodeType) offers \(what)", at: template.node, path: path)
            } else {
                // TOSCA leaves a dangling requirement to the orchestrator; with several candidates deployctl will
                // not guess, so the plan has no edge for it.
                sink.warning(
                    "ambiguous-requirement",
                    "requirement '\(definition.name)' of node template '\(template.name)' is not assigned and "
                        + "several node templates could satisfy it (\(candidates.map(\.name).joined(separator: ", "))); "
                        + "name one, or the plan has no edge for it", at: template.node, path: path)
            }
        }
    }

    private func resolve(
        _ assignment: inout RequirementAssignment, definition: RequirementDef, source: NodeTemplate, path: String
    ) {
        let itemPath = joinPath(path, assignment.name)
        // The target: a node template, or a node type for an abstract requirement.
        var targetType: String? = definition.targetNodeType.flatMap { registry.canonical($0, .node) }
        if let targetNode = assignment.targetNode, let name = targetNode.text {
            if let target = topology.node(named: name) {
                assignment.target = target.name
            } else if rawNodes[name] != nil {
                return  // the target exists but failed validation; it has its own diagnostics
            } else if let type = registry.lookup(name, .node) {
                targetType = type.name
            } else {
                sink.error(
                    "unknown-node",
                    "requirement '\(assignment.name)' of node template '\(source.name)' names '\(name)', which is "
                        + "neither a node template nor a node type\(Suggest.hint(name, rawNodes.keys))",
                    at: targetNode, path: joinPath(itemPath, "node"))
                return
            }
        }
        // The relationship: a type, a relationship template, or an inline {type, properties, interfaces}.
        assignment.relationshipType = definition.relationship.flatMap { registry.canonical($0, .relationship) }
        if let relationshipNode = assignment.relationshipNode {
            resolveRelationship(relationshipNode, into: &assignment, path: joinPath(itemPath, "relationship"))
        }
        guard let targetName = assignment.target, let target = topology.node(named: targetName) else {
            if assignment.target == nil, targetType == nil, assignment.nodeFilter == nil, definition.capability == nil {
                sink.error(
                    "unsatisfied-requirement",
                    "requirement '\(assignment.name)' of node template '\(source.name)' names no target node",
                    at: assignment.node, path: itemPath)
            }
            return
        }
        if let targetType, !registry.derives(target.type, from: targetType, .node) {
            sink.error(
                "incompatible-target",
                "requirement '\(assignment.name)' of node template '\(source.name)' needs a node of type \(targetType); "
                    + "'\(target.name)' is a \(target.type)", at: assignment.targetNode ?? assignment.node,
                path: joinPath(itemPath, "node"))
            return
        }
        let requestedName = assignment.capabilityNode?.text
        guard let capabilityName = matchingCapability(on: target, definition: definition, named: requestedName) else {
            let wanted = requestedName ?? definition.capability ?? "?"
            let offered = registry.capabilities(of: target.type, .node).map { "\($0.name) (\($0.type))" }
            sink.error(
                "no-matching-capability",
                "node template '\(target.name)' has no capability matching '\(wanted)' for requirement "
                    + "'\(assignment.name)' of '\(source.name)'; it offers \(offered.joined(separator: ", "))",
                at: assignment.capabilityNode ?? assignment.targetNode ?? assignment.node, path: itemPath)
            return
        }
        assignment.capability = capabilityName
        let capability = registry.capabilities(of: target.type, .node).first { $0.name == capabilityName }
        let capabilityType = capability.flatMap { registry.canonical($0.type, .capability) } ?? ""
        // valid_source_types on the capability definition, then on the capability type.
        let validSources =
            capability.map {
                $0.validSourceTypes.isEmpty ? registry.typeList(of: capabilityType, .capability) : $0.validSourceTypes
            }
            ?? []
        if !validSources.isEmpty, !validSources.contains(where: { registry.derives(source.type, from: $0, .node) }) {
            sink.error(
                "invalid-source",
                "capability '\(capabilityName)' of '\(target.name)' accepts sources of type "
                    + "\(validSources.joined(separator: ", ")); '\(source.name)' is a \(source.type)",
                at: assignment.targetNode ?? assignment.node, path: itemPath)
        }
        if let relationship = assignment.relationshipType {
            let validTargets = registry.typeList(of: relationship, .relationship)
            if !validTargets.isEmpty,
                !validTargets.contains(where: {
                    registry.derives(capabilityType, from: $0, .capability)
                        || registry.derives(target.type, from: $0, .node)
                })
            {
                sink.error(
                    "invalid-relationship-target",
                    "relationship \(relationship) targets \(validTargets.joined(separator: ", ")); capability "
                        + "'\(capabilityName)' of '\(target.name)' is a \(capabilityType)",
                    at: assignment.relationshipNode ?? assignment.node, path: itemPath)
            }
        }
        if let filter = assignment.nodeFilter {
            checkNodeFilter(filter, against: target, path: joinPath(itemPath, "node_filter"))
        }
    }

    private func resolveRelationship(_ node: YNode, into assignment: inout RequirementAssignment, path: String) {
        if let name = node.text, !node.isNull {
            if let template = topology.relationshipTemplates[name] {
                assignment.relationshipTemplate = name
                assignment.relationshipType = template.type
                assignment.relationshipProperties = template.properties
                assignment.relationshipInterfaces = template.interfaces
            } else if rawRelationships[name] != nil {
                return
            } else if let type = registry.lookup(name, .relationship) {
                assignment.relationshipType = type.name
            } else {
                sink.error(
                    "unknown-relationship",
                    "'\(name)' is neither a relationship template nor a relationship type"
                        + Suggest.hint(
                            name, Array(rawRelationships.keys) + registry.spellings(.relationship), listUpTo: 0),
                    at: node, path: path)
            }
            return
        }
        guard let fields = sink.mapping(node, "a relationship", path: path) else { return }
        sink.checkKeys(fields, allowed: ["type", "properties", "interfaces"], in: "a relationship", path: path)
        guard let typeNode = node["type"], let type = resolveType(typeNode, .relationship, path: joinPath(path, "type"))
        else {
            if node["type"] == nil {
                sink.error("missing-key", "an inline relationship needs 'type'", at: node, path: path)
            }
            return
        }
        assignment.relationshipType = type.name
        assignment.relationshipProperties = assignProperties(
            node["properties"], definitions: registry.properties(of: type.name, .relationship),
            owner: "relationship \(type.name)", path: joinPath(path, "properties"),
            context: .relationship(assignment.name),
            requireAll: true, anchor: node)
        assignment.relationshipInterfaces = assignInterfaces(
            node["interfaces"], definitions: registry.interfaces(of: type.name, .relationship),
            owner: "relationship \(type.name)", path: joinPath(path, "interfaces"),
            context: .relationship(assignment.name))
    }

    /// The name of the capability on `target` that satisfies the requirement: the one named (by capability name or
    /// type), else the first whose type derives from the definition's capability type.
    func matchingCapability(on target: NodeTemplate, definition: RequirementDef, named requested: String?) -> String? {
        let capabilities = registry.capabilities(of: target.type, .node)
        if let requested {
            if let byName = capabilities.first(where: { $0.name == requested }) { return byName.name }
            if let byType = capabilities.first(where: { registry.derives($0.type, from: requested, .capability) }) {
                return byType.name
            }
            return nil
        }
        guard let required = definition.capability else { return capabilities.first?.name }
        if registry.lookup(required, .capability) == nil {
            // Some 1.0 templates name a capability by its name on the target rather than by type.
            return capabilities.first { $0.name == required }?.name
        }
        return capabilities.first { registry.derives($0.type, from: required, .capability) }?.name
    }

    // MARK: node_filter

    func validateNodeFilterShape(_ filter: YNode, path: String) {
        guard let fields = sink.mapping(filter, "a node_filter", path: path) else { return }
        sink.checkKeys(fields, allowed: ["properties", "capabilities"], in: "a node_filter", path: path)
        if let properties = filter["properties"] {
            _ = sink.list(properties, "node_filter 'properties'", path: joinPath(path, "properties"))
        }
        if let capabilities = filter["capabilities"] {
            _ = sink.list(capabilities, "node_filter 'capabilities'", path: joinPath(path, "capabilities"))
        }
    }

    /// Checks a bound target against a node_filter's property constraints (capability filters included).
    private func checkNodeFilter(_ filter: YNode, against target: NodeTemplate, path: String) {
        let checker = checker(context: .node(target.name))
        func apply(_ clauses: YNode?, values: [(String, YNode)], definitions: [PropertyDef], where what: String) {
            for clause in clauses?.sequence ?? [] {
                guard let pair = clause.mapping?.first, let name = pair.key.text else { continue }
                guard let definition = definitions.first(where: { $0.name == name }) else {
                    sink.error(
                        "unknown-property",
                        "node_filter names property '\(name)', which \(what) does not have"
                            + Suggest.hint(name, definitions.map(\.name)), at: pair.key, path: path)
                    continue
                }
                guard let value = values.first(where: { $0.0 == name })?.1, !Functions.isFunctionCall(value) else {
                    continue
                }
                let constraints = pair.value.sequence ?? [pair.value]
                let failures = checker.constraintFailures(constraints, value: value, type: definition.schema.type)
                if !failures.isEmpty {
                    sink.error(
                        "node-filter-mismatch",
                        "'\(target.name)' does not satisfy the node_filter on '\(name)': \(failures.joined(separator: "; "))",
                        at: pair.key, path: path)
                }
            }
        }
        apply(
            filter["properties"], values: target.properties,
            definitions: registry.properties(of: target.type, .node), where: "node '\(target.name)'")
        for entry in filter["capabilities"]?.sequence ?? [] {
            guard let pair = entry.mapping?.first, let name = pair.key.text else { continue }
            let capabilities = registry.capabilities(of: target.type, .node)
            guard
                let capability = capabilities.first(where: {
                    $0.name == name || registry.derives($0.type, from: name, .capability)
                })
            else {
                sink.error(
                    "unknown-capability",
                    "node_filter names capability '\(name)', which '\(target.name)' does not have"
                        + Suggest.hint(name, capabilities.map(\.name)), at: pair.key, path: path)
                continue
            }
            let capabilityType = registry.canonical(capability.type, .capability) ?? capability.type
            apply(
                pair.value["properties"], values: target.capabilityProperties[capability.name] ?? [],
                definitions: registry.merge([
                    registry.properties(of: capabilityType, .capability), capability.properties,
                ]),
                where: "capability '\(capability.name)' of '\(target.name)'")
        }
    }
}
