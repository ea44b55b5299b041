/// Checks type definitions: derivation targets and cycles, member types, defaults, constraints and the TOSCA 1.3
/// refinement rules (a redefined property keeps a compatible type and cannot become optional).
struct TypeChecker {
    let registry: TypeRegistry
    let sink: DiagnosticSink

    func check(_ types: [TypeDef]) {
        for type in types where !type.isNormative {
            let path = joinPath(type.kind.section, type.name)
            checkDerivation(type, path: path)
            checkProperties(type.properties, of: type, path: joinPath(path, "properties"))
            checkProperties(type.attributes, of: type, path: joinPath(path, "attributes"), attributes: true)
            for capability in type.capabilities {
                let capabilityPath = joinPath(path, "capabilities.\(capability.name)")
                if registry.lookup(capability.type, .capability) == nil {
                    unknown(capability.type, .capability, at: capability.node, path: capabilityPath)
                }
                for source in capability.validSourceTypes where registry.lookup(source, .node) == nil {
                    unknown(source, .node, at: capability.node, path: capabilityPath)
                }
                checkProperties(capability.properties, of: nil, path: joinPath(capabilityPath, "properties"))
            }
            for requirement in type.requirements {
                let requirementPath = joinPath(path, "requirements.\(requirement.name)")
                if let capability = requirement.capability, registry.lookup(capability, .capability) == nil {
                    unknown(capability, .capability, at: requirement.node, path: requirementPath)
                }
                if let node = requirement.targetNodeType, registry.lookup(node, .node) == nil {
                    unknown(node, .node, at: requirement.node, path: requirementPath)
                }
                if let relationship = requirement.relationship, registry.lookup(relationship, .relationship) == nil {
                    unknown(
                        relationship, .relationship, at: requirement.relationshipNode ?? requirement.node,
                        path: requirementPath)
                }
            }
            for interface in type.interfaces {
                if let interfaceType = interface.type, registry.lookup(interfaceType, .interface) == nil {
                    unknown(
                        interfaceType, .interface, at: interface.node,
                        path: joinPath(path, "interfaces.\(interface.name)"))
                }
            }
            for (name, node) in zip(type.typeList, type.typeListNodes) {
                let kinds: [TypeKind] =
                    switch type.kind {
                    case .capability, .group: [.node]
                    case .relationship: [.capability, .node]
                    default: [.node, .group]
                    }
                if !kinds.contains(where: { registry.lookup(name, $0) != nil }) {
                    unknown(name, kinds[0], at: node, path: path)
                }
            }
            if type.kind == .data, !type.constraints.isEmpty {
                if let base = registry.primitiveBase(of: type.name) {
                    ValueChecker(registry: registry, sink: sink).checkConstraintClauses(
                        type.constraints, type: base, path: joinPath(path, "constraints"))
                }
            }
        }
    }

    private func unknown(_ name: String, _ kind: TypeKind, at node: YNode, path: String) {
        sink.unknownType(name, kind, registry: registry, at: node, path: path)
    }

    private func checkDerivation(_ type: TypeDef, path: String) {
        guard let parent = type.derivedFrom, let node = type.derivedFromNode else {
            if type.kind != .data {
                sink.warning(
                    "no-derived-from",
                    "\(type.kind.noun) '\(type.name)' has no 'derived_from'; it should derive from "
                        + "\(type.kind.normativePrefix)Root", at: type.nameNode, path: path)
            }
            return
        }
        if type.kind == .data, TypeRegistry.primitiveTypes.contains(parent) { return }
        guard registry.lookup(parent, type.kind) != nil else {
            unknown(parent, type.kind, at: node, path: joinPath(path, "derived_from"))
            return
        }
        // A cycle: walking up from the parent comes back to this type.
        var seen: Set<String> = [type.name]
        var current = registry.lookup(parent, type.kind)
        while let next = current {
            if !seen.insert(next.name).inserted {
                if next.name == type.name {
                    sink.error(
                        "derivation-cycle",
                        "\(type.kind.noun) '\(type.name)' derives from itself through \(parent)", at: node,
                        path: joinPath(path, "derived_from"))
                }
                return
            }
            current = next.derivedFrom.flatMap { registry.lookup($0, type.kind) }
        }
    }

    private func checkProperties(_ properties: [PropertyDef], of type: TypeDef?, path: String, attributes: Bool = false)
    {
        let checker = ValueChecker(registry: registry, sink: sink)
        let inherited: [PropertyDef] =
            type.flatMap { type in
                type.derivedFrom.map { parent in
                    attributes ? registry.attributes(of: parent, type.kind) : registry.properties(of: parent, type.kind)
                }
            } ?? []
        for property in properties {
            let propertyPath = joinPath(path, property.name)
            let parent = inherited.first { $0.name == property.name }
            var schema = property.schema
            if schema.type.isEmpty {
                guard let parent else {
                    sink.error(
                        "missing-key", "\(attributes ? "attribute" : "property") '\(property.name)' has no 'type'",
                        at: property.node, path: propertyPath)
                    continue
                }
                schema.type = parent.schema.type
            }
            guard registry.isKnownValueType(schema.type) else {
                unknown(schema.type, .data, at: schema.typeNode ?? property.node, path: joinPath(propertyPath, "type"))
                continue
            }
            for nested in [schema.entrySchema?.value, schema.keySchema?.value].compactMap({ $0 })
            where !registry.isKnownValueType(nested.type) {
                unknown(nested.type, .data, at: nested.typeNode ?? property.node, path: propertyPath)
            }
            if (schema.type == "list" || schema.type == "map"), schema.entrySchema == nil, parent == nil {
                sink.warning(
                    "missing-entry-schema",
                    "\(schema.type) '\(property.name)' has no entry_schema; its entries go unchecked",
                    at: property.node, path: propertyPath)
            }
            if !schema.constraints.isEmpty {
                checker.checkConstraintClauses(
                    schema.constraints, type: schema.type, path: joinPath(propertyPath, "constraints"))
            }
            if let value = property.defaultValue, !Functions.isFunctionCall(value), !value.isNull {
                var full = schema
                if let parent { full.constraints = parent.schema.constraints + schema.constraints }
                checker.check(value, schema: full, path: joinPath(propertyPath, "default"))
            }
            if let parent {
                let parentType = parent.schema.type
                if !parentType.isEmpty, !property.schema.type.isEmpty, parentType != schema.type,
                    !registry.derives(schema.type, from: parentType, .data)
                {
                    // Attributes are runtime values deployctl itself sets, and INDIGO-style types redeclare
                    // addresses as lists; widening integer to float (INDIGO's fractional Docker CPUs) keeps every
                    // value of the parent valid. Both are warnings; any other change is an error.
                    let widening = parentType == "integer" && schema.type == "float"
                    let message =
                        "'\(property.name)' is \(article(parentType)) \(parentType) in the parent type; a refinement may "
                        + "only narrow it to a derived type, not \(schema.type)"
                    sink.add(
                        Diagnostic(
                            attributes || widening ? .warning : .error, code: "bad-refinement", message,
                            at: (schema.typeNode ?? property.node).location, path: joinPath(propertyPath, "type")))
                }
                if parent.required, parent.requiredWasSet || !attributes, property.requiredWasSet, !property.required {
                    // With an inherited default a value always exists, so loosening `required` is harmless there.
                    let harmless = parent.defaultValue != nil
                    sink.add(
                        Diagnostic(
                            harmless ? .warning : .error, code: "bad-refinement",
                            "'\(property.name)' is required in the parent type and cannot be made optional"
                                + (harmless ? " (harmless here: the parent gives it a default)" : ""),
                            at: property.node.location, path: propertyPath))
                }
            }
        }
    }

    private func article(_ word: String) -> String {
        "aeiou".contains(word.first ?? "x") ? "an" : "a"
    }
}
