/// Every type visible to a template — the embedded normative types and those of its imports — with name resolution
/// (`Compute` = `tosca:Compute` = `tosca.nodes.Compute`, `prefix:Name` for prefixed imports) and members merged
/// along the derivation chain.
final class TypeRegistry {
    static let primitiveTypes: Set<String> = [
        "string", "integer", "float", "boolean", "timestamp", "null", "version", "range", "list", "map",
        "scalar-unit.size", "scalar-unit.time", "scalar-unit.frequency", "scalar-unit.bitrate",
    ]

    private var types: [TypeKind: [String: TypeDef]] = [:]
    private var aliases: [TypeKind: [String: String]] = [:]
    private var propertyCache: [String: [PropertyDef]] = [:]
    private var chainCache: [String: [TypeDef]] = [:]
    /// Set when an import could not be loaded: unknown types may be defined there, which diagnostics say.
    var hasMissingImports = false
    /// Short names that are a normative type's full short name, which no last-component alias may take.
    private var exactAliases: Set<String> = []

    init() {
        for kind in TypeKind.allCases {
            types[kind] = [:]
            aliases[kind] = [:]
        }
    }

    /// Adds a file's types; a name defined twice by different files is an error unless the later import is prefixed.
    func add(_ type: TypeDef, namespacePrefix: String?, sink: DiagnosticSink) {
        var name = type.name
        if let existing = types[type.kind]?[name] {
            if let namespacePrefix {
                name = "\(namespacePrefix):\(type.name)"
            } else if existing.isNormative, !type.isNormative {
                // Types files written for parsers that lacked a type (tosca-parser) or wanted more properties define
                // normative types again. Their definition is what their templates are written against, so it
                // replaces the built-in one; for the spec's non-normative examples that is expected and silent.
                if existing.hasShortNames {
                    sink.warning(
                        "redefined-normative-type",
                        "\(type.kind.noun) '\(type.name)' redefines a normative TOSCA type; this definition replaces "
                            + "the normative one", at: type.nameNode, path: joinPath(type.kind.section, type.name))
                }
                invalidateCaches()
            } else if existing.node.location != type.node.location {
                sink.error(
                    "duplicate-type",
                    "\(type.kind.noun) '\(type.name)' is already defined at \(existing.nameNode.location)",
                    at: type.nameNode, path: joinPath(type.kind.section, type.name))
                return
            } else {
                return
            }
        }
        var stored = type
        stored.name = name
        types[type.kind]?[name] = stored
        if let namespacePrefix, name == type.name {
            aliases[type.kind]?["\(namespacePrefix):\(type.name)"] = name
        }
        if type.isNormative, type.hasShortNames, type.name.hasPrefix(type.kind.normativePrefix) {
            // `Storage.BlockStorage` and `tosca:Storage.BlockStorage` always win; the last component alone
            // (`BlockStorage`) only when no other normative type already claims it exactly.
            let short = String(type.name.dropFirst(type.kind.normativePrefix.count))
            aliases[type.kind]?[short] = type.name
            aliases[type.kind]?["tosca:\(short)"] = type.name
            exactAliases.insert("\(type.kind.rawValue)/\(short)")
            if let last = short.split(separator: ".").last.map(String.init), last != short,
                !exactAliases.contains("\(type.kind.rawValue)/\(last)")
            {
                if aliases[type.kind]?[last] == nil {
                    aliases[type.kind]?[last] = type.name
                    aliases[type.kind]?["tosca:\(last)"] = type.name
                }
            }
        }
    }

    /// Names from TOSCA 1.0 drafts that real templates still use, for the types 1.0 later renamed.
    static let legacyNames: [String: String] = [
        "tosca.nodes.BlockStorage": "tosca.nodes.Storage.BlockStorage",
        "tosca.nodes.ObjectStorage": "tosca.nodes.Storage.ObjectStorage",
    ]

    /// Compiled `pattern` constraints: compiling a Regex is costly and the same patterns recur across a run.
    private var regexCache: [String: Regex<AnyRegexOutput>?] = [:]

    /// The compiled regular expression, or nil when the pattern does not compile.
    func regex(_ pattern: String) -> Regex<AnyRegexOutput>? {
        if let cached = regexCache[pattern] { return cached }
        let compiled = try? Regex(pattern)
        regexCache[pattern] = compiled
        return compiled
    }

    private func invalidateCaches() {
        propertyCache = [:]
        chainCache = [:]
    }

    func lookup(_ name: String, _ kind: TypeKind) -> TypeDef? {
        if let type = types[kind]?[name] { return type }
        if let canonical = aliases[kind]?[name] ?? (kind == .node ? Self.legacyNames[name] : nil) {
            return types[kind]?[canonical]
        }
        return nil
    }

    /// The canonical name of a type reference, or nil when no such type exists.
    func canonical(_ name: String, _ kind: TypeKind) -> String? { lookup(name, kind)?.name }

    func allNames(_ kind: TypeKind) -> [String] { Array(types[kind]?.keys ?? [:].keys) }

    /// Every name a type of this kind can be written as (canonical and short), for spelling suggestions.
    func spellings(_ kind: TypeKind) -> [String] { allNames(kind) + Array(aliases[kind]?.keys ?? [:].keys) }

    /// The type and its ancestors, most derived first. Stops (without looping) at a derivation cycle.
    func chain(_ name: String, _ kind: TypeKind) -> [TypeDef] {
        guard let start = lookup(name, kind) else { return [] }
        let key = "\(kind.rawValue)/\(start.name)"
        if let cached = chainCache[key] { return cached }
        var result: [TypeDef] = []
        var seen: Set<String> = []
        var current: TypeDef? = start
        while let type = current, seen.insert(type.name).inserted {
            result.append(type)
            current = type.derivedFrom.flatMap { lookup($0, kind) }
        }
        chainCache[key] = result
        return result
    }

    /// Whether every ancestor of the type exists (no missing `derived_from` target, no cycle).
    func isComplete(_ name: String, _ kind: TypeKind) -> Bool {
        guard let last = chain(name, kind).last else { return false }
        guard let parent = last.derivedFrom else { return true }
        return kind == .data && TypeRegistry.primitiveTypes.contains(parent)
    }

    /// Whether `name` is `ancestor` or derives from it.
    func derives(_ name: String, from ancestor: String, _ kind: TypeKind) -> Bool {
        guard let target = canonical(ancestor, kind) else { return false }
        return chain(name, kind).contains { $0.name == target }
    }

    // MARK: Merged members

    /// Properties of a type merged along its chain; a redefinition refines the inherited definition.
    func properties(of name: String, _ kind: TypeKind) -> [PropertyDef] {
        let key = "\(kind.rawValue)/\(name)"
        if let cached = propertyCache[key] { return cached }
        let merged = merge(chain(name, kind).reversed().map(\.properties))
        propertyCache[key] = merged
        return merged
    }

    func attributes(of name: String, _ kind: TypeKind) -> [PropertyDef] {
        merge(chain(name, kind).reversed().map(\.attributes))
    }

    func merge(_ levels: [[PropertyDef]]) -> [PropertyDef] {
        var order: [String] = []
        var byName: [String: PropertyDef] = [:]
        for level in levels {
            for definition in level {
                if let inherited = byName[definition.name] {
                    byName[definition.name] = refine(inherited, with: definition)
                } else {
                    order.append(definition.name)
                    byName[definition.name] = definition
                }
            }
        }
        return order.compactMap { byName[$0] }
    }

    /// A refinement keeps what it does not restate (TOSCA 1.3 §3.6.10.4); constraints accumulate.
    private func refine(_ inherited: PropertyDef, with refined: PropertyDef) -> PropertyDef {
        var result = refined
        if result.schema.type.isEmpty {
            result.schema.type = inherited.schema.type
            result.schema.typeNode = inherited.schema.typeNode
        }
        if !refined.requiredWasSet {
            result.required = inherited.required
            result.requiredWasSet = inherited.requiredWasSet
        }
        if result.defaultValue == nil, result.schema.constraints.isEmpty {
            result.defaultValue = inherited.defaultValue
        }
        result.schema.constraints = inherited.schema.constraints + refined.schema.constraints
        if result.schema.entrySchema == nil { result.schema.entrySchema = inherited.schema.entrySchema }
        if result.schema.keySchema == nil { result.schema.keySchema = inherited.schema.keySchema }
        return result
    }

    func capabilities(of name: String, _ kind: TypeKind) -> [CapabilityDef] {
        var order: [String] = []
        var byName: [String: CapabilityDef] = [:]
        for type in chain(name, kind).reversed() {
            for capability in type.capabilities {
                if byName[capability.name] == nil { order.append(capability.name) }
                byName[capability.name] = capability
            }
        }
        return order.compactMap { byName[$0] }
    }

    func requirements(of name: String, _ kind: TypeKind) -> [RequirementDef] {
        var result: [RequirementDef] = []
        for type in chain(name, kind).reversed() {
            for requirement in type.requirements {
                if let index = result.firstIndex(where: { $0.name == requirement.name }) {
                    result[index] = requirement
                } else {
                    result.append(requirement)
                }
            }
        }
        return result
    }

    func interfaces(of name: String, _ kind: TypeKind) -> [InterfaceDef] {
        var result: [InterfaceDef] = []
        for type in chain(name, kind).reversed() {
            for interface in type.interfaces {
                if let index = result.firstIndex(where: { $0.name == interface.name }) {
                    var merged = result[index]
                    merged.type = interface.type ?? merged.type
                    for operation in interface.operations {
                        merged.operations.removeAll { $0.name == operation.name }
                        merged.operations.append(operation)
                    }
                    merged.inputs = merge([merged.inputs, interface.inputs])
                    result[index] = merged
                } else {
                    result.append(interface)
                }
            }
        }
        return result
    }

    func artifacts(of name: String, _ kind: TypeKind) -> [ArtifactDef] {
        var result: [ArtifactDef] = []
        for type in chain(name, kind).reversed() {
            for artifact in type.artifacts {
                result.removeAll { $0.name == artifact.name }
                result.append(artifact)
            }
        }
        return result
    }

    /// The operations an interface type declares, merged along its chain.
    func operations(ofInterface name: String) -> [String] {
        var names: [String] = []
        for type in chain(name, .interface).reversed() {
            for operation in type.operations where !names.contains(operation.name) { names.append(operation.name) }
        }
        return names
    }

    /// Valid source/target/member/target lists merged along the chain (the most derived non-empty one wins).
    func typeList(of name: String, _ kind: TypeKind) -> [String] {
        chain(name, kind).first { !$0.typeList.isEmpty }?.typeList ?? []
    }

    /// Whether a value type name exists: a primitive or a data type.
    func isKnownValueType(_ name: String) -> Bool {
        TypeRegistry.primitiveTypes.contains(name) || lookup(name, .data) != nil
    }

    /// For a data type derived (possibly indirectly) from a primitive, that primitive.
    func primitiveBase(of name: String) -> String? {
        if TypeRegistry.primitiveTypes.contains(name) { return name }
        for type in chain(name, .data) {
            if let parent = type.derivedFrom, TypeRegistry.primitiveTypes.contains(parent) { return parent }
        }
        return nil
    }
}

extension DiagnosticSink {
    /// Reports a type reference that resolves to nothing: a hint when it names a type of another kind, else the
    /// nearest spelling among the types of the expected kind.
    func unknownType(_ name: String, _ kind: TypeKind, registry: TypeRegistry, at node: YNode, path: String) {
        if let other = TypeKind.allCases.first(where: { $0 != kind && registry.lookup(name, $0) != nil }) {
            error(
                "wrong-type-kind", "'\(name)' is a \(other.noun), but a \(kind.noun) is expected here", at: node,
                path: path)
        } else {
            let cause = registry.hasMissingImports ? " (an import could not be loaded; it may define it)" : ""
            // Value types from programming languages that people write by habit.
            let habits = [
                "int": "integer", "bool": "boolean", "str": "string", "number": "float", "double": "float",
                "dict": "map", "array": "list", "object": "map",
            ]
            let hint =
                kind == .data && habits[name.lowercased()] != nil
                ? "; did you mean '\(habits[name.lowercased()]!)'?"
                : Suggest.hint(
                    name, registry.spellings(kind) + (kind == .data ? Array(TypeRegistry.primitiveTypes) : []),
                    listUpTo: 0)
            error("unknown-type", "unknown \(kind.noun) '\(name)'\(hint)\(cause)", at: node, path: path)
        }
    }
}
