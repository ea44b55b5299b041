extension TopologyValidator {
    // MARK: Policies

    func validatePolicies(_ node: YNode) {
        let path = "topology_template.policies"
        // The spec writes policies as a list of single-key maps; many templates use a plain map.
        var entries: [(YPair, String)] = []
        if let items = node.sequence {
            for (index, item) in items.enumerated() {
                guard let pairs = item.mapping, pairs.count == 1 else {
                    sink.error(
                        "bad-policy", "each policy must be a map with a single name", at: item,
                        path: "\(path)[\(index)]")
                    continue
                }
                entries.append((pairs[0], "\(path)[\(index)]"))
            }
        } else if let pairs = sink.mapping(node, "'policies'", path: path) {
            entries = pairs.map { ($0, path) }
        }
        for (pair, base) in entries {
            guard let name = pair.key.text else { continue }
            let policyPath = joinPath(base, name)
            guard let fields = sink.mapping(pair.value, "policy '\(name)'", path: policyPath) else { continue }
            sink.checkKeys(
                fields, allowed: ["type", "description", "metadata", "properties", "targets", "triggers"],
                in: "policy '\(name)'", path: policyPath)
            guard let typeNode = pair.value["type"] else {
                sink.error("missing-key", "policy '\(name)' has no 'type'", at: pair.key, path: policyPath)
                continue
            }
            guard let type = resolveType(typeNode, .policy, path: joinPath(policyPath, "type")) else { continue }
            let properties = assignProperties(
                pair.value["properties"], definitions: registry.properties(of: type.name, .policy),
                owner: "policy '\(name)' (type \(type.name))", path: joinPath(policyPath, "properties"),
                context: .policy(name), requireAll: true, anchor: pair.key)
            let allowed = registry.typeList(of: type.name, .policy)
            var targets: [String] = []
            for (target, targetNode) in pair.value["targets"].map({
                sink.stringList($0, "'targets'", path: joinPath(policyPath, "targets"))
            }) ?? [] {
                let targetType: String
                if let node = topology.node(named: target) {
                    targetType = node.type
                } else if let group = topology.groups.first(where: { $0.name == target }) {
                    targetType = group.type
                } else {
                    if rawNodes[target] == nil, !groupNames.contains(target) {
                        sink.error(
                            "unknown-target",
                            "policy '\(name)' targets '\(target)', which is neither a node template nor a group"
                                + Suggest.hint(target, Array(rawNodes.keys) + Array(groupNames)), at: targetNode,
                            path: joinPath(policyPath, "targets"))
                    }
                    continue
                }
                if !allowed.isEmpty,
                    !allowed.contains(where: {
                        registry.derives(targetType, from: $0, .node) || registry.derives(targetType, from: $0, .group)
                    })
                {
                    sink.error(
                        "invalid-target",
                        "policy '\(name)' of type \(type.name) applies to \(allowed.joined(separator: ", ")); "
                            + "'\(target)' is a \(targetType)", at: targetNode, path: joinPath(policyPath, "targets"))
                }
                targets.append(target)
            }
            if let triggers = pair.value["triggers"] {
                validateTriggers(triggers, policy: name, path: joinPath(policyPath, "triggers"))
            }
            topology.policies.append(
                PolicyTemplate(name: name, type: type.name, targets: targets, properties: properties))
        }
    }

    private func validateTriggers(_ node: YNode, policy: String, path: String) {
        let allowed: Set<String> = [
            "description", "event", "event_type", "schedule", "target_filter", "condition", "constraint", "period",
            "evaluations", "method", "action", "metadata",
        ]
        for (name, pair, triggerPath) in sink.namedMaps(
            node, section: "'triggers'", each: "trigger", allowed: allowed, path: path)
        {
            if pair.value["event"] == nil, pair.value["event_type"] == nil {
                sink.error("missing-key", "trigger '\(name)' has no 'event'", at: pair.key, path: triggerPath)
            }
            if pair.value["action"] == nil {
                sink.error("missing-key", "trigger '\(name)' has no 'action'", at: pair.key, path: triggerPath)
            }
            if let target = pair.value["target_filter"]?["node"], let targetName = target.text,
                rawNodes[targetName] == nil
            {
                sink.error(
                    "unknown-node",
                    "trigger '\(name)' filters on node '\(targetName)', which is not a node template"
                        + Suggest.hint(targetName, rawNodes.keys), at: target,
                    path: joinPath(triggerPath, "target_filter"))
            }
        }
    }

    // MARK: Workflows

    static let workflowStates: Set<String> = [
        "initial", "creating", "created", "configuring", "configured", "starting", "started", "stopping", "stopped",
        "deleting", "deleted", "error", "available",
    ]

    func validateWorkflows(_ node: YNode) {
        let path = "topology_template.workflows"
        guard let pairs = sink.mapping(node, "'workflows'", path: path) else { return }
        let workflowNames = Set(pairs.compactMap { $0.key.text })
        for pair in pairs {
            guard let name = pair.key.text else { continue }
            let workflowPath = joinPath(path, name)
            guard let fields = sink.mapping(pair.value, "workflow '\(name)'", path: workflowPath) else { continue }
            sink.checkKeys(
                fields,
                allowed: ["description", "metadata", "inputs", "preconditions", "steps", "implementation", "outputs"],
                in: "workflow '\(name)'", path: workflowPath)
            topology.workflows.append(name)
            guard let steps = pair.value["steps"],
                let stepPairs = sink.mapping(steps, "'steps'", path: joinPath(workflowPath, "steps"))
            else { continue }
            let stepNames = Set(stepPairs.compactMap { $0.key.text })
            for step in stepPairs {
                guard let stepName = step.key.text else { continue }
                validateStep(
                    step, name: stepName, stepNames: stepNames, workflows: workflowNames,
                    path: joinPath(workflowPath, "steps.\(stepName)"))
            }
        }
    }

    private func validateStep(_ step: YPair, name: String, stepNames: Set<String>, workflows: Set<String>, path: String)
    {
        guard let fields = sink.mapping(step.value, "workflow step '\(name)'", path: path) else { return }
        sink.checkKeys(
            fields,
            allowed: [
                "target", "target_relationship", "operation_host", "filter", "activities", "on_success", "on_failure",
            ],
            in: "workflow step '\(name)'", path: path)
        guard let targetNode = step.value["target"], let target = targetNode.text else {
            sink.error("missing-key", "workflow step '\(name)' has no 'target'", at: step.key, path: path)
            return
        }
        let targetTemplate = topology.node(named: target)
        if targetTemplate == nil, rawNodes[target] == nil, !groupNames.contains(target) {
            sink.error(
                "unknown-node",
                "workflow step '\(name)' targets '\(target)', which is neither a node template nor a group"
                    + Suggest.hint(target, Array(rawNodes.keys) + Array(groupNames)), at: targetNode,
                path: joinPath(path, "target"))
        }
        for key in ["on_success", "on_failure"] {
            guard let next = step.value[key] else { continue }
            for (stepName, node) in sink.stringList(next, "'\(key)'", path: joinPath(path, key))
            where !stepNames.contains(stepName) {
                sink.error(
                    "unknown-step",
                    "'\(key)' names step '\(stepName)', which this workflow does not have"
                        + Suggest.hint(stepName, stepNames), at: node, path: joinPath(path, key))
            }
        }
        guard let activities = step.value["activities"],
            let items = sink.list(activities, "'activities'", path: joinPath(path, "activities"))
        else { return }
        for (index, activity) in items.enumerated() {
            let activityPath = "\(path).activities[\(index)]"
            guard let pair = activity.mapping?.first, activity.mapping?.count == 1, let kind = pair.key.text else {
                sink.error(
                    "bad-activity", "an activity must be a map with a single key", at: activity, path: activityPath)
                continue
            }
            switch kind {
            case "delegate":
                break
            case "set_state":
                if let state = pair.value.text, !Self.workflowStates.contains(state) {
                    sink.error(
                        "bad-activity",
                        "set_state '\(state)' is not a TOSCA node state"
                            + Suggest.hint(state, Self.workflowStates), at: pair.value, path: activityPath)
                }
            case "inline":
                let inlined = pair.value.text ?? pair.value["workflow"]?.text ?? ""
                if !workflows.contains(inlined) {
                    sink.error(
                        "unknown-workflow",
                        "inline names workflow '\(inlined)', which does not exist"
                            + Suggest.hint(inlined, workflows), at: pair.value, path: activityPath)
                }
            case "call_operation":
                let operationNode = pair.value["operation"] ?? pair.value
                guard let text = operationNode.text else { continue }
                let parts = text.split(separator: ".").map(String.init)
                guard parts.count >= 2 else {
                    sink.error(
                        "bad-activity", "call_operation must name 'interface.operation'", at: operationNode,
                        path: activityPath)
                    continue
                }
                guard let template = targetTemplate else { continue }
                let interfaceName = parts.dropLast().joined(separator: ".")
                let operation = parts.last!
                let interfaces = template.interfaces
                guard let interface = interfaces.first(where: { $0.name == interfaceName }) else {
                    sink.error(
                        "unknown-interface",
                        "node '\(template.name)' has no interface '\(interfaceName)'"
                            + Suggest.hint(interfaceName, interfaces.map(\.name)), at: operationNode, path: activityPath
                    )
                    continue
                }
                let operations =
                    Set(interface.operations.map(\.name)).union(
                        interface.type.map { registry.operations(ofInterface: $0) } ?? [])
                if !operations.contains(operation) {
                    sink.error(
                        "unknown-operation",
                        "interface '\(interfaceName)' of '\(template.name)' has no operation '\(operation)'"
                            + Suggest.hint(operation, operations), at: operationNode, path: activityPath)
                }
            default:
                sink.error(
                    "bad-activity",
                    "unknown activity '\(kind)'; expected delegate, set_state, call_operation or inline", at: pair.key,
                    path: activityPath)
            }
        }
    }

    // MARK: Substitution mappings

    func validateSubstitution(_ node: YNode) {
        let path = "topology_template.substitution_mappings"
        guard let fields = sink.mapping(node, "'substitution_mappings'", path: path) else { return }
        sink.checkKeys(
            fields,
            allowed: [
                "node_type", "substitution_filter", "node", "properties", "attributes", "capabilities", "requirements",
                "interfaces",
            ],
            in: "substitution_mappings", path: path)
        guard let typeNode = node["node_type"] else {
            sink.error("missing-key", "substitution_mappings needs 'node_type'", at: node, path: path)
            return
        }
        guard let type = resolveType(typeNode, .node, path: joinPath(path, "node_type")) else { return }
        topology.substitutionNodeType = type.name
        let properties = registry.properties(of: type.name, .node).map(\.name)
        for pair in node["properties"]?.mapping ?? [] {
            guard let name = pair.key.text else { continue }
            if !properties.contains(name) {
                sink.error(
                    "unknown-property",
                    "node type \(type.name) has no property '\(name)'"
                        + Suggest.hint(name, properties), at: pair.key, path: joinPath(path, "properties"))
            }
            let input = pair.value.sequence?.first?.text ?? pair.value.text
            if let input, pair.value.sequence?.count ?? 1 == 1, inputNames[input] == nil {
                sink.error(
                    "unknown-input",
                    "property '\(name)' is mapped to undefined input '\(input)'"
                        + Suggest.hint(input, inputNames.keys), at: pair.value, path: joinPath(path, "properties"))
            }
        }
        let sections: [(key: String, member: String, offered: [String], has: (NodeTemplate, String) -> Bool)] = [
            (
                "capabilities", "capability", registry.capabilities(of: type.name, .node).map(\.name),
                { [registry] template, member in
                    registry.capabilities(of: template.type, .node).contains { $0.name == member }
                }
            ),
            (
                "requirements", "requirement", registry.requirements(of: type.name, .node).map(\.name),
                { [registry] template, member in
                    registry.requirements(of: template.type, .node).contains { $0.name == member }
                }
            ),
        ]
        for section in sections {
            for pair in node[section.key]?.mapping ?? [] {
                guard let name = pair.key.text else { continue }
                if !section.offered.contains(name) {
                    sink.error(
                        "unknown-\(section.member)",
                        "node type \(type.name) has no \(section.member) '\(name)'"
                            + Suggest.hint(name, section.offered), at: pair.key, path: joinPath(path, section.key))
                }
                checkMapping(
                    pair.value, member: section.member, path: joinPath(path, "\(section.key).\(name)"), has: section.has
                )
            }
        }
    }

    /// `[node_template, member]` mappings used by substitution capabilities and requirements.
    private func checkMapping(
        _ value: YNode, member kind: String, path: String, has: (NodeTemplate, String) -> Bool
    ) {
        guard let items = value.sequence, items.count == 2, let nodeName = items[0].text, let member = items[1].text
        else {
            sink.error("bad-mapping", "a \(kind) mapping must be [node_template, \(kind)_name]", at: value, path: path)
            return
        }
        guard let template = topology.node(named: nodeName) else {
            if rawNodes[nodeName] == nil {
                sink.error(
                    "unknown-node", "'\(nodeName)' is not a node template\(Suggest.hint(nodeName, rawNodes.keys))",
                    at: items[0], path: path)
            }
            return
        }
        if !has(template, member) {
            sink.error(
                "unknown-\(kind)", "node template '\(nodeName)' has no \(kind) '\(member)'", at: items[1], path: path)
        }
    }
}
