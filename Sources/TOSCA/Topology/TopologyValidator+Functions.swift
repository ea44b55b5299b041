/// Where a function call appears, which decides what SELF, SOURCE, TARGET and HOST mean.
enum FunctionContext: Sendable {
    case node(String)
    case relationship(String)
    case group(String)
    case policy(String)
    case output
}

extension TopologyValidator {
    /// Queues a function call for checking once every requirement is bound (HOST and forward references need that).
    func checkFunction(_ call: YNode, context: FunctionContext, path: String) {
        pendingFunctions.append((call, context, path))
    }

    /// Finds function calls anywhere inside a value and queues them.
    func checkFunctions(in value: YNode, context: FunctionContext, path: String) {
        if Functions.isFunctionCall(value) {
            checkFunction(value, context: context, path: path)
            return
        }
        switch value.value {
        case .scalar: break
        case .sequence(let items):
            for (index, item) in items.enumerated() {
                checkFunctions(in: item, context: context, path: "\(path)[\(index)]")
            }
        case .mapping(let pairs):
            for pair in pairs {
                checkFunctions(in: pair.value, context: context, path: joinPath(path, pair.key.text ?? "?"))
            }
        }
    }

    func flushFunctions() {
        while !pendingFunctions.isEmpty {
            let batch = pendingFunctions
            pendingFunctions = []
            for (call, context, path) in batch { validateFunction(call, context: context, path: path) }
        }
    }

    private func validateFunction(_ call: YNode, context: FunctionContext, path: String) {
        guard let name = Functions.name(of: call), let argument = Functions.argument(of: call) else { return }
        let args = argument.sequence ?? [argument]
        func fail(_ message: String, _ node: YNode? = nil) {
            sink.error("bad-function", "\(name): \(message)", at: node ?? argument, path: path)
        }
        switch name {
        case "get_input":
            guard let inputName = args.first?.text else { return fail("expects an input name") }
            if inputNames[inputName] == nil {
                sink.error(
                    "unknown-input",
                    "get_input refers to undefined input '\(inputName)'\(Suggest.hint(inputName, inputNames.keys))",
                    at: args.first, path: path)
            }
        case "get_property", "get_attribute":
            guard args.count >= 2, args.allSatisfy({ $0.scalar != nil || Functions.isFunctionCall($0) }) else {
                return fail("expects a list [entity, property, …] such as [SELF, port]")
            }
            checkEntityMember(args, function: name, context: context, path: path)
        case "get_operation_output":
            guard args.count == 4, args.allSatisfy({ $0.scalar != nil }) else {
                return fail("expects [entity, interface, operation, output_name]")
            }
            guard let entity = entity(args[0], context: context, path: path) else { return }
            guard
                let interface = registry.interfaces(of: entity.type, entity.kind).first(where: {
                    $0.name == args[1].text
                })
            else {
                return fail("'\(entity.name)' has no interface '\(args[1].text ?? "")'", args[1])
            }
            let operations =
                Set(interface.operations.map(\.name)).union(
                    interface.type.map { registry.operations(ofInterface: $0) } ?? [])
            if !operations.contains(args[2].text ?? "") {
                fail(
                    "interface '\(interface.name)' has no operation '\(args[2].text ?? "")'"
                        + Suggest.hint(args[2].text ?? "", operations), args[2])
            }
        case "get_nodes_of_type":
            guard let typeName = args.first?.text else { return fail("expects a node type name") }
            if registry.lookup(typeName, .node) == nil {
                reportUnknownType(typeName, .node, at: args[0], path: path)
            }
        case "get_artifact":
            guard args.count >= 2, args.count <= 4 else {
                return fail("expects [entity, artifact_name, location?, remove?]")
            }
            guard let entity = entity(args[0], context: context, path: path) else { return }
            if entity.kind == .node, let node = topology.node(named: entity.name),
                !node.artifacts.contains(where: { $0.name == args[1].text })
            {
                fail(
                    "node '\(entity.name)' has no artifact '\(args[1].text ?? "")'"
                        + Suggest.hint(args[1].text ?? "", node.artifacts.map(\.name)), args[1])
            }
        case "concat":
            guard argument.sequence != nil else { return fail("expects a list of strings and functions") }
            for (index, item) in args.enumerated() {
                checkNested(item, context: context, path: "\(path)[\(index)]", fail)
            }
        case "join":
            guard let list = args.first?.sequence, args.count <= 2 else {
                return fail("expects [[values…], delimiter]")
            }
            for (index, item) in list.enumerated() {
                checkNested(item, context: context, path: "\(path)[\(index)]", fail)
            }
            if args.count == 2, args[1].scalar == nil { fail("the delimiter must be a string", args[1]) }
        case "token":
            guard args.count == 3 else { return fail("expects [string, separator characters, index]") }
            checkNested(args[0], context: context, path: path, fail)
            if args[1].scalar == nil { fail("the separators must be a string", args[1]) }
            if case .int(let index) = args[2].resolved, index >= 0 {
            } else {
                fail("the index must be a non-negative integer", args[2])
            }
        default:
            break
        }
    }

    private func checkNested(
        _ item: YNode, context: FunctionContext, path: String, _ fail: (String, YNode?) -> Void
    ) {
        if Functions.isFunctionCall(item) {
            validateFunction(item, context: context, path: path)
        } else if item.scalar == nil {
            fail("arguments must be strings or function calls, found \(item.kindDescription)", item)
        }
    }

    struct Entity {
        var name: String
        var kind: TypeKind
        var type: String
    }

    /// What an entity argument (SELF, SOURCE, TARGET, HOST or a template name) denotes; nil (after reporting) when
    /// it denotes nothing, or when it cannot be known before deployment (SOURCE/TARGET).
    private func entity(_ node: YNode, context: FunctionContext, path: String) -> Entity? {
        guard let name = node.text else { return nil }
        switch name {
        case "SELF":
            switch context {
            case .node(let self_):
                return topology.node(named: self_).map { Entity(name: $0.name, kind: .node, type: $0.type) }
            case .relationship(let self_):
                return topology.relationshipTemplates[self_].map {
                    Entity(name: $0.name, kind: .relationship, type: $0.type)
                }
            case .output, .group, .policy:
                sink.error("bad-function", "SELF has no meaning here; name a node template", at: node, path: path)
                return nil
            }
        case "SOURCE", "TARGET":
            if case .relationship = context { return nil }
            sink.error(
                "bad-function", "\(name) is only meaningful inside a relationship", at: node, path: path)
            return nil
        case "HOST":
            guard case .node(let self_) = context else {
                sink.error("bad-function", "HOST is only meaningful inside a node template", at: node, path: path)
                return nil
            }
            guard let hostName = host(of: self_), let host = topology.node(named: hostName) else {
                sink.error(
                    "bad-function", "HOST used in node template '\(self_)', which is not hosted on another node",
                    at: node, path: path)
                return nil
            }
            return Entity(name: host.name, kind: .node, type: host.type)
        default:
            if let target = topology.node(named: name) {
                return Entity(name: target.name, kind: .node, type: target.type)
            }
            if let relationship = topology.relationshipTemplates[name] {
                return Entity(name: relationship.name, kind: .relationship, type: relationship.type)
            }
            if rawNodes[name] != nil || rawRelationships[name] != nil { return nil }  // invalid; reported there
            sink.error(
                "unknown-node",
                "'\(name)' is not a node or relationship template\(Suggest.hint(name, rawNodes.keys))", at: node,
                path: path)
            return nil
        }
    }

    /// Checks [entity, member, …] of get_property/get_attribute: the member is a property (or attribute), or a
    /// capability/requirement name followed by one of its properties. HOST searches up the hosting chain.
    private func checkEntityMember(_ args: [YNode], function: String, context: FunctionContext, path: String) {
        guard let first = entity(args[0], context: context, path: path), let member = args[1].text else { return }
        var candidates = [first]
        if args[0].text == "HOST" {
            var current = host(of: first.name)
            while let name = current, let node = topology.node(named: name), candidates.count < 64 {
                candidates.append(Entity(name: node.name, kind: .node, type: node.type))
                current = host(of: name)
            }
        }
        var known: [String] = []
        for entity in candidates {
            var members = registry.properties(of: entity.type, entity.kind).map(\.name)
            if function == "get_attribute" { members += registry.attributes(of: entity.type, entity.kind).map(\.name) }
            if members.contains(member) { return }
            known += members
            if entity.kind == .node {
                let capabilities = registry.capabilities(of: entity.type, .node)
                if let capability = capabilities.first(where: { $0.name == member }) {
                    guard args.count >= 3, let property = args[2].text else { return }
                    let type = registry.canonical(capability.type, .capability) ?? capability.type
                    var capabilityMembers =
                        registry.properties(of: type, .capability).map(\.name) + capability.properties.map(\.name)
                    if function == "get_attribute" {
                        capabilityMembers += registry.attributes(of: type, .capability).map(\.name)
                    }
                    if !capabilityMembers.contains(property) {
                        sink.error(
                            "unknown-property",
                            "\(function): capability '\(member)' of '\(entity.name)' has no "
                                + "\(function == "get_property" ? "property" : "attribute") '\(property)'"
                                + Suggest.hint(property, capabilityMembers), at: args[2], path: path)
                    }
                    return
                }
                if registry.requirements(of: entity.type, .node).contains(where: { $0.name == member }) {
                    return  // resolved against the requirement's target at deployment time
                }
            }
        }
        let what = function == "get_property" ? "property" : "attribute"
        sink.error(
            "unknown-property",
            "\(function): \(candidates.count > 1 ? "no host of " : "")'\(first.name)' (type \(first.type)) has no "
                + "\(what), capability or requirement named '\(member)'\(Suggest.hint(member, known))", at: args[1],
            path: path)
    }
}
