/// Turns a valid template into a ``Plan``: expands scalable nodes into instances, draws relationship edges between
/// instances, orders provider and lifecycle steps, and resolves every function that can be resolved before
/// deployment (get_input, get_property, concat, join, token). The rest stay as typed references.
struct Planner {
    let topology: Topology
    let registry: TypeRegistry
    let inputValues: [String: YNode]
    var countOverrides: [String: Int] = [:]
    var indexOverrides: [String: [Int]] = [:]
    let sink: DiagnosticSink
    /// The template's path as given (the file its node templates were read from).
    var templatePath = ""

    static let relationshipKinds = ["HostedOn", "AttachesTo", "ConnectsTo", "RoutesTo", "DependsOn"]

    func plan(template: String, version: String) -> Plan {
        let counts = instanceCounts()
        let indices = instanceIndices(counts)
        var instances: [Plan.Instance] = []
        var idsByNode: [String: [String]] = [:]
        for node in topology.nodes where node.directives.isEmpty {
            for index in indices[node.name] ?? [0] {
                let id = "\(node.name)[\(index)]"
                instances.append(Plan.Instance(id: id, node: node.name, index: index, host: nil))
                idsByNode[node.name, default: []].append(id)
            }
        }
        // Edges: hosted instances pair with their host's instance of the same index; other relationships connect
        // each source instance to every target instance.
        var edges: [Plan.Edge] = []
        var edgeOperations: [[OperationDef]] = []
        for node in topology.nodes where node.directives.isEmpty {
            for requirement in node.requirements {
                guard let target = requirement.target, let targetIds = idsByNode[target],
                    let sourceIds = idsByNode[node.name]
                else { continue }
                let relationship = requirement.relationshipType ?? "tosca.relationships.DependsOn"
                let kind =
                    Self.relationshipKinds.first {
                        registry.derives(relationship, from: "tosca.relationships.\($0)", .relationship)
                    } ?? "DependsOn"
                let properties = JSONValue.object(
                    requirement.relationshipProperties.map { ($0.0, resolve($0.1, context: node.name)) })
                for (index, source) in sourceIds.enumerated() {
                    let targets = kind == "HostedOn" ? [targetIds[min(index, targetIds.count - 1)]] : targetIds
                    for targetId in targets {
                        edges.append(
                            Plan.Edge(
                                from: source, to: targetId, kind: kind, relationship: relationship,
                                requirement: requirement.name, capability: requirement.capability,
                                properties: properties))
                        // A relationship named by its type (or not named at all) has its type's operations.
                        let interfaces =
                            requirement.relationshipInterfaces.isEmpty
                            ? registry.interfaces(of: relationship, .relationship) : requirement.relationshipInterfaces
                        edgeOperations.append(
                            interfaces.first { $0.name == "Configure" }?.operations.filter {
                                $0.implementation != nil
                            } ?? [])
                    }
                }
            }
        }
        for index in instances.indices {
            instances[index].host = edges.first { $0.from == instances[index].id && $0.kind == "HostedOn" }?.to
        }
        var steps = buildSteps(instances: instances, edges: edges)
        addRelationshipSteps(&steps, edges: edges, operations: edgeOperations)
        steps = orderSteps(steps)
        return Plan(
            template: template, version: version,
            inputs: topology.inputs.map { ($0.name, inputValue($0).map { resolve($0, context: nil) } ?? .null) },
            nodes: topology.nodes.map { ($0.name, describe($0, count: counts[$0.name] ?? 1)) },
            instances: instances, edges: edges, steps: steps,
            outputs: topology.outputs.map { ($0.name, resolve($0.value, context: nil)) },
            policies: topology.policies.map { policy in
                .object([
                    ("name", .string(policy.name)), ("type", .string(policy.type)),
                    ("targets", .array(policy.targets.map(JSONValue.string))),
                    ("properties", .object(policy.properties.map { ($0.0, resolve($0.1, context: nil)) })),
                ])
            },
            groups: topology.groups.map { group in
                .object([
                    ("name", .string(group.name)), ("type", .string(group.type)),
                    ("members", .array(group.members.map(JSONValue.string))),
                ])
            })
    }

    // MARK: Instances

    /// Instance counts: a scalable node's default_instances (or min_instances), a Scaling policy's, and for hosted
    /// nodes the count of their host.
    private func instanceCounts() -> [String: Int] {
        var counts: [String: Int] = [:]
        for node in topology.nodes {
            var count = 1
            if node.scaling.isScalable {
                let bounds = node.scaling.bounds(resolvedInt)
                count = bounds.count ?? bounds.min ?? 1
                if let problem = node.scaling.problem(bounds) {
                    sink.error(
                        "bad-scaling", "with this run's inputs, \(problem.message)", at: problem.node,
                        path: "topology_template.node_templates.\(node.name).capabilities")
                }
            }
            for policy in topology.policies
            where policy.targets.contains(node.name)
                && registry.derives(policy.type, from: "tosca.policies.Scaling", .policy)
            {
                for key in ["default_instances", "count", "min_instances"] {
                    if let value = policy.properties.first(where: { $0.0 == key })?.1,
                        let n = resolvedInt(value)
                    {
                        count = n
                        break
                    }
                }
            }
            if let override = countOverrides[node.name] { count = override }
            if let override = indexOverrides[node.name] { count = override.count }
            counts[node.name] = max(0, count)
        }
        // Hosted nodes follow their host (resolved to a fixpoint along hosting chains).
        for _ in 0..<topology.nodes.count {
            for node in topology.nodes {
                if let host = node.host(registry), let hostCount = counts[host] { counts[node.name] = hostCount }
            }
        }
        return counts
    }

    /// The instance numbers of each node: 0..<count, or the set `indexOverrides` names; hosted nodes have their
    /// host's (so a hosted instance and its host always share a number).
    private func instanceIndices(_ counts: [String: Int]) -> [String: [Int]] {
        var indices: [String: [Int]] = [:]
        for node in topology.nodes {
            indices[node.name] =
                indexOverrides[node.name].map { Array(Set($0.filter { $0 >= 0 })).sorted() }
                ?? Array(0..<(counts[node.name] ?? 1))
        }
        for _ in 0..<topology.nodes.count {
            for node in topology.nodes {
                if let host = node.host(registry), let hostIndices = indices[host] { indices[node.name] = hostIndices }
            }
        }
        return indices
    }

    private func resolvedInt(_ node: YNode) -> Int? {
        if case .int(let value) = resolve(node, context: nil) { return value }
        return nil
    }

    private func describe(_ node: NodeTemplate, count: Int) -> JSONValue {
        let chain = registry.chain(node.type, .node).map { JSONValue.string($0.name) }
        var capabilities: [(String, JSONValue)] = []
        for (name, values) in node.capabilityProperties.sorted(by: { $0.key < $1.key }) {
            capabilities.append((name, .object(values.map { ($0.0, resolve($0.1, context: node.name)) })))
        }
        var interfaces: [(String, JSONValue)] = []
        for interface in node.interfaces {
            let operations = interface.operations.filter { $0.implementation != nil }
            guard !operations.isEmpty else { continue }
            interfaces.append(
                (
                    interface.name,
                    .object(
                        operations.map { operation in
                            (
                                operation.name,
                                .object([
                                    (
                                        "implementation",
                                        operation.implementation.map {
                                            implementationValue($0, artifacts: Set(node.artifacts.map(\.name)))
                                        } ?? .null
                                    ),
                                    ("inputs", operationInputs(operation, node: node.name)),
                                ])
                            )
                        })
                ))
        }
        return .object([
            ("type", .string(node.type)),
            ("types", .array(chain)),
            ("count", .int(count)),
            ("min_instances", .int(node.scaling.isScalable ? node.scaling.bounds(resolvedInt).min ?? count : count)),
            ("max_instances", .int(node.scaling.isScalable ? node.scaling.bounds(resolvedInt).max ?? count : count)),
            ("directives", .array(node.directives.map(JSONValue.string))),
            ("properties", .object(node.properties.map { ($0.0, resolve($0.1, context: node.name)) })),
            ("attributes", .object(node.attributes.map { ($0.0, resolve($0.1, context: node.name)) })),
            ("capabilities", .object(capabilities)),
            (
                "requirements",
                .array(
                    node.requirements.map { requirement in
                        .object([
                            ("name", .string(requirement.name)),
                            ("node", requirement.target.map(JSONValue.string) ?? .null),
                            ("capability", requirement.capability.map(JSONValue.string) ?? .null),
                            ("relationship", requirement.relationshipType.map(JSONValue.string) ?? .null),
                        ])
                    })
            ),
            ("interfaces", .object(interfaces)),
            (
                "artifacts",
                .object(
                    node.artifacts.map { artifact in
                        (
                            artifact.name,
                            .object([
                                ("type", artifact.type.map(JSONValue.string) ?? .null),
                                (
                                    "file",
                                    artifact.file.map(JSONValue.string)
                                        ?? artifact.fileNode.map { resolve($0, context: node.name) } ?? .null
                                ),
                                ("repository", artifact.repository.map(JSONValue.string) ?? .null),
                            ])
                        )
                    })
            ),
        ])
    }

    private func operationInputs(_ operation: OperationDef, node: String) -> JSONValue {
        var pairs = operation.inputValues.map { ($0.0, resolve($0.1, context: node)) }
        for definition in operation.inputs where !pairs.contains(where: { $0.0 == definition.name }) {
            if let value = definition.value ?? definition.defaultValue {
                pairs.append((definition.name, resolve(value, context: node)))
            }
        }
        return .object(pairs)
    }

    // MARK: Steps

    private func isCompute(_ type: String) -> Bool {
        registry.derives(type, from: "tosca.nodes.Abstract.Compute", .node)
            || registry.derives(type, from: "tosca.nodes.Compute", .node)
    }

    private func buildSteps(instances: [Plan.Instance], edges: [Plan.Edge]) -> [Plan.Step] {
        var steps: [Plan.Step] = []
        var lastStep: [String: String] = [:]
        var firstStep: [String: String] = [:]
        func add(_ step: Plan.Step) {
            if firstStep[step.instance] == nil { firstStep[step.instance] = step.id }
            steps.append(step)
        }
        for instance in instances {
            guard let node = topology.node(named: instance.node) else { continue }
            var previous: String?
            let providerAction: String? =
                isCompute(node.type)
                ? "create_compute"
                : registry.derives(node.type, from: "tosca.nodes.Abstract.Storage", .node)
                    ? "create_volume"
                    : registry.derives(node.type, from: "tosca.nodes.network.Network", .node)
                        ? "create_network"
                        : registry.derives(node.type, from: "tosca.nodes.network.Port", .node) ? "create_port" : nil
            if let providerAction {
                let id = "\(instance.id).\(providerAction)"
                add(
                    Plan.Step(
                        id: id, instance: instance.id, node: node.name, action: providerAction, inputs: .object([]),
                        after: [], level: 0))
                previous = id
            }
            let standard = node.interfaces.first { $0.name == "Standard" }
            for operationName in ["create", "configure", "start"] {
                guard let operation = standard?.operations.first(where: { $0.name == operationName }),
                    let implementation = operation.implementation
                else { continue }
                let id = "\(instance.id).Standard.\(operationName)"
                add(
                    Plan.Step(
                        id: id, instance: instance.id, node: node.name, action: "operation", interface: "Standard",
                        operation: operationName,
                        implementation: implementationValue(implementation, artifacts: Set(node.artifacts.map(\.name))),
                        inputs: operationInputs(operation, node: node.name), after: previous.map { [$0] } ?? [],
                        level: 0))
                previous = id
            }
            if previous == nil {
                // A node with nothing to do still gets a step, so that dependants have something to wait for.
                let id = "\(instance.id).ready"
                add(
                    Plan.Step(
                        id: id, instance: instance.id, node: node.name, action: "ready", inputs: .object([]), after: [],
                        level: 0))
                previous = id
            }
            lastStep[instance.id] = previous
        }
        // Relationship ordering: the source's first step waits for the target's last; a volume attachment is a step
        // of its own between the compute and volume creation and whatever runs on the compute afterwards.
        var extraAfter: [String: [String]] = [:]
        for edge in edges {
            guard let sourceFirst = firstStep[edge.from], let targetLast = lastStep[edge.to] else { continue }
            if edge.kind == "AttachesTo" {
                let id = "\(edge.from).attach.\(edge.to)"
                let computeCreate = "\(edge.from).create_compute"
                let volumeCreate = "\(edge.to).create_volume"
                let after = [computeCreate, volumeCreate].filter { candidate in steps.contains { $0.id == candidate } }
                steps.append(
                    Plan.Step(
                        id: id, instance: edge.from, node: instanceNode(edge.from), action: "attach_volume",
                        inputs: edge.properties, target: edge.to, after: after, level: 0))
                // Everything on the compute after its creation waits for the attachment.
                for index in steps.indices
                where steps[index].instance == edge.from && steps[index].action != "attach_volume"
                    && steps[index].after.contains(computeCreate)
                {
                    steps[index].after.append(id)
                }
                for dependant in edges where dependant.to == edge.from && dependant.kind == "HostedOn" {
                    if let first = firstStep[dependant.from] { extraAfter[first, default: []].append(id) }
                }
            } else {
                extraAfter[sourceFirst, default: []].append(targetLast)
            }
        }
        // A volume several hosts mount is attached first where it stays: the first of its hosts whose node does not
        // scale (else its first host). The others wait for that attachment, which a provider whose volumes attach
        // to one server at a time shares with them (an attachment step that waits for another of the same volume).
        for (volume, attachments) in Dictionary(grouping: edges.filter { $0.kind == "AttachesTo" }, by: \.to) {
            let sources = attachments.map(\.from)
            guard sources.count > 1 else { continue }
            let home =
                sources.first { topology.node(named: instanceNode($0))?.scaling.isScalable == false } ?? sources[0]
            let homeStep = "\(home).attach.\(volume)"
            for index in steps.indices
            where steps[index].action == "attach_volume" && steps[index].target == volume
                && steps[index].instance != home
            {
                extraAfter[steps[index].id, default: []].append(homeStep)
            }
        }
        for index in steps.indices {
            if let extra = extraAfter[steps[index].id] {
                for id in extra where !steps[index].after.contains(id) { steps[index].after.append(id) }
            }
        }
        return steps
    }

    /// Relationship Configure operations: pre_configure_* run before the source's configure, post_configure_*
    /// after it and before its start, add_*/target_changed once both ends are up. Where they run follows TOSCA:
    /// pre/post_configure_source on the source and *_target on the target; add_target, remove_target and
    /// target_changed notify the source (run on it); add_source and remove_source notify the target.
    private func addRelationshipSteps(_ steps: inout [Plan.Step], edges: [Plan.Edge], operations: [[OperationDef]]) {
        func step(_ instance: String, _ name: String) -> String? {
            let id = "\(instance).Standard.\(name)"
            return steps.contains { $0.id == id } ? id : nil
        }
        // An instance's own lifecycle, not the relationship steps added below (which would chain every source of
        // one target behind each other).
        let lifecycle = steps
        func lastStep(of instance: String) -> String? {
            lifecycle.last { $0.instance == instance && $0.action != "attach_volume" }?.id
        }
        func firstStep(of instance: String) -> String? { steps.first { $0.instance == instance }?.id }
        for (edge, edgeOperations) in zip(edges, operations) {
            for operation in edgeOperations {
                let name = operation.name
                let runsOn = Plan.runsOnTarget(name) ? edge.to : edge.from
                let id = "\(edge.from).\(edge.requirement).\(edge.to).Configure.\(name)"
                var after: [String] = []
                var before: [String] = []
                if name.hasPrefix("pre_configure") {
                    after = [step(edge.from, "create") ?? firstStep(of: edge.from), lastStep(of: edge.to)].compactMap {
                        $0
                    }
                    before = [step(edge.from, "configure") ?? step(edge.from, "start")].compactMap { $0 }
                } else if name.hasPrefix("post_configure") {
                    after =
                        [step(edge.from, "configure") ?? step(edge.from, "create") ?? firstStep(of: edge.from)]
                        .compactMap { $0 } + [lastStep(of: edge.to)].compactMap { $0 }
                    before = [step(edge.from, "start")].compactMap { $0 }
                } else {
                    after = [lastStep(of: edge.from), lastStep(of: edge.to)].compactMap { $0 }
                }
                steps.append(
                    Plan.Step(
                        id: id, instance: runsOn, node: instanceNode(runsOn), action: "operation",
                        interface: "Configure",
                        operation: name, implementation: operation.implementation.map { implementationValue($0) },
                        inputs: operationInputs(operation, node: instanceNode(runsOn)),
                        target: runsOn == edge.from ? edge.to : edge.from, after: after, level: 0))
                for index in steps.indices where before.contains(steps[index].id) {
                    steps[index].after.append(id)
                }
            }
        }
    }

    private func instanceNode(_ id: String) -> String {
        String(id.prefix { $0 != "[" })
    }

    /// Assigns each step the level after all it waits for (longest path), and reports a dependency cycle.
    private func orderSteps(_ steps: [Plan.Step]) -> [Plan.Step] {
        var result = steps
        let indexById = Dictionary(steps.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { first, _ in first })
        var state = [Int](repeating: 0, count: steps.count)  // 0 new, 1 visiting, 2 done
        var reportedCycle = false
        func visit(_ index: Int) -> Int {
            if state[index] == 2 { return result[index].level }
            if state[index] == 1 {
                if !reportedCycle {
                    reportedCycle = true
                    sink.add(
                        Diagnostic(
                            .error, code: "dependency-cycle",
                            "the nodes depend on each other in a cycle through '\(result[index].node)'; no order "
                                + "can satisfy it", at: topology.node(named: result[index].node)?.node.location))
                }
                return 0
            }
            state[index] = 1
            var level = 0
            for dependency in result[index].after {
                if let other = indexById[dependency] { level = max(level, visit(other) + 1) }
            }
            result[index].level = level
            state[index] = 2
            return level
        }
        for index in result.indices { _ = visit(index) }
        return result.sorted { ($0.level, indexById[$0.id] ?? 0) < ($1.level, indexById[$1.id] ?? 0) }
    }

    // MARK: Values

    private func inputValue(_ definition: PropertyDef) -> YNode? {
        inputValues[definition.name] ?? definition.value ?? definition.defaultValue
    }

    /// Resolves what can be resolved before deployment; `context` is the node template for SELF and HOST.
    func resolve(_ node: YNode, context: String?, depth: Int = 0) -> JSONValue {
        guard depth < 32 else { return .null }
        guard let name = Functions.name(of: node), let argument = Functions.argument(of: node) else {
            switch node.value {
            case .scalar: return JSONValue(yaml: node)
            case .sequence(let items): return .array(items.map { resolve($0, context: context, depth: depth + 1) })
            case .mapping(let pairs):
                return .object(pairs.map { ($0.key.text ?? "", resolve($0.value, context: context, depth: depth + 1)) })
            }
        }
        let args = argument.sequence ?? [argument]
        let reference = JSONValue.object([
            ("function", .string(name)),
            ("args", .array(args.map { resolve($0, context: context, depth: depth + 1) })),
            ("context", context.map(JSONValue.string) ?? .null),
        ])
        switch name {
        case "get_input":
            guard let inputName = args.first?.text,
                let definition = topology.inputs.first(where: { $0.name == inputName }),
                let value = inputValue(definition)
            else { return reference }
            var result = resolve(value, context: nil, depth: depth + 1)
            for key in args.dropFirst() { result = navigate(result, key) ?? .null }
            return result
        case "get_property":
            guard args.count >= 2, let entity = args[0].text, let member = args[1].text,
                let owner = entityNode(entity, context: context)
            else { return reference }
            if let value = owner.property(member) {
                var result = resolve(value, context: owner.name, depth: depth + 1)
                for key in args.dropFirst(2) { result = navigate(result, key) ?? .null }
                return result
            }
            if args.count >= 3, let property = args[2].text,
                let value = owner.capabilityProperties[member]?.first(where: { $0.0 == property })?.1
            {
                return resolve(value, context: owner.name, depth: depth + 1)
            }
            if entity == "HOST", let host = owner.host(registry) {
                let rewritten = YNode(
                    .mapping([
                        YPair(
                            key: YNode(.scalar(YScalar(text: "get_property", isPlain: true)), at: node.location),
                            value: YNode(
                                .sequence(
                                    [YNode(.scalar(YScalar(text: "HOST", isPlain: true)), at: node.location)]
                                        + Array(args.dropFirst())), at: node.location))
                    ]), at: node.location)
                return resolve(rewritten, context: host, depth: depth + 1)
            }
            // A declared property left unset (optional, no default) has no value: null, not an open reference.
            if args.count == 2, entity != "HOST",
                registry.properties(of: owner.type, .node).contains(where: { $0.name == member })
            {
                return .null
            }
            return reference
        case "concat", "join":
            let parts = name == "concat" ? args : (args.first?.sequence ?? [])
            let delimiter = name == "join" && args.count > 1 ? (args[1].text ?? "") : ""
            var strings: [String] = []
            for part in parts {
                switch resolve(part, context: context, depth: depth + 1) {
                case .string(let text): strings.append(text)
                case .int(let value): strings.append(String(value))
                case .double(let value): strings.append(String(value))
                case .bool(let value): strings.append(value ? "true" : "false")
                default: return reference
                }
            }
            return .string(strings.joined(separator: delimiter))
        case "token":
            guard args.count == 3, case .string(let text) = resolve(args[0], context: context, depth: depth + 1),
                let separators = args[1].text, case .int(let index)? = args[2].resolved
            else { return reference }
            let pieces = text.split(omittingEmptySubsequences: false, whereSeparator: { separators.contains($0) })
            return index < pieces.count ? .string(String(pieces[index])) : .null
        default:
            return reference
        }
    }

    private func entityNode(_ entity: String, context: String?) -> NodeTemplate? {
        switch entity {
        case "SELF": return context.flatMap { topology.node(named: $0) }
        case "HOST":
            return context.flatMap { topology.node(named: $0) }.flatMap { $0.host(registry) }.flatMap {
                topology.node(named: $0)
            }
        case "SOURCE", "TARGET": return nil
        default: return topology.node(named: entity)
        }
    }

    private func navigate(_ value: JSONValue, _ key: YNode) -> JSONValue? {
        switch (value, key.resolved) {
        case (.array(let items), .int(let index)?): return index < items.count ? items[index] : nil
        case (.object, .string(let name)?): return value[name]
        default: return nil
        }
    }
}

extension ToscaProcessor {
    /// Validates a template with its inputs and, when valid, plans it. The plan is nil when there are errors.
    public static func plan(path: String, options: ValidationOptions) -> (ValidationResult, Plan?) {
        var options = options
        options.requireInputs = true
        var result = validate(path: path, options: options)
        guard result.isValid, let topology = result.topology, let registry = result.registry else {
            return (result, nil)
        }
        let sink = DiagnosticSink()
        for node in Set(options.instanceCounts.keys).union(options.instanceIndices.keys).sorted()
        where topology.node(named: node) == nil {
            sink.error(
                "unknown-node", "there is no node template named '\(node)' to set the count of", at: nil, path: "")
        }
        let plan = Planner(
            topology: topology, registry: registry, inputValues: result.inputValues,
            countOverrides: options.instanceCounts, indexOverrides: options.instanceIndices, sink: sink,
            templatePath: path
        ).plan(template: path, version: result.version?.rawValue ?? "")
        result.diagnostics += sink.all
        return (result, result.isValid ? plan : nil)
    }
}
