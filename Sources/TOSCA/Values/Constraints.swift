/// A value reduced to something constraints can compare: numbers (scalar-units in base units), versions, strings.
enum Comparand: Sendable {
    case number(Double)
    case version(ToscaVersionValue)
    case string(String)
    case bool(Bool)
    case other

    func compare(_ other: Comparand) -> Int? {
        switch (self, other) {
        case (.number(let a), .number(let b)): return a < b ? -1 : (a > b ? 1 : 0)
        case (.version(let a), .version(let b)): return a < b ? -1 : (a > b ? 1 : 0)
        case (.string(let a), .string(let b)): return a < b ? -1 : (a > b ? 1 : 0)
        case (.bool(let a), .bool(let b)): return a == b ? 0 : (a ? 1 : -1)
        default: return nil
        }
    }
}

/// The TOSCA 1.3 constraint operators (and the 1.0 spellings that real templates still use).
enum ConstraintOperator: String, CaseIterable {
    case equal, greaterThan = "greater_than", greaterOrEqual = "greater_or_equal", lessThan = "less_than"
    case lessOrEqual = "less_or_equal", inRange = "in_range", validValues = "valid_values", length
    case minLength = "min_length", maxLength = "max_length", pattern, schema
}

extension ValueChecker {
    /// Checks `value` against each constraint clause; malformed clauses are reported where they are written.
    func checkConstraints(_ clauses: [YNode], value: YNode, type: String, path: String) {
        for clause in clauses where parse(clause) == nil {
            reportMalformed(clause, path: path)
        }
        for failure in constraintFailures(clauses, value: value, type: type) {
            sink.error("constraint-violated", failure, at: value, path: path)
        }
    }

    /// What each well-formed clause finds wrong with `value`, in words; malformed clauses are skipped.
    func constraintFailures(_ clauses: [YNode], value: YNode, type: String) -> [String] {
        clauses.compactMap { clause in
            parse(clause).flatMap { evaluate($0.op, argument: $0.argument, value: value, type: type) }
        }
    }

    private func reportMalformed(_ clause: YNode, path: String) {
        let operators = ConstraintOperator.allCases.map(\.rawValue)
        if let pairs = clause.mapping, pairs.count == 1, let name = pairs[0].key.text {
            sink.error(
                "bad-constraint", "unknown constraint operator '\(name)'\(Suggest.hint(name, operators))",
                at: pairs[0].key, path: path)
        } else {
            let shown = clause.text.map { " '\($0)'" } ?? ""
            sink.error(
                "bad-constraint",
                "a constraint must be a map with one operator such as 'greater_or_equal: 1', found "
                    + "\(clause.kindDescription)\(shown)", at: clause, path: path)
        }
    }

    private func parse(_ clause: YNode) -> (op: ConstraintOperator, argument: YNode)? {
        guard let pairs = clause.mapping, pairs.count == 1, let name = pairs[0].key.text,
            let op = ConstraintOperator(rawValue: name)
        else { return nil }
        return (op, pairs[0].value)
    }

    /// Checks that constraint clauses are well formed for `type` (used on definitions, where no value is at hand).
    func checkConstraintClauses(_ clauses: [YNode], type: String, path: String) {
        for clause in clauses {
            guard let (op, _) = parse(clause), let pairs = clause.mapping else {
                reportMalformed(clause, path: path)
                continue
            }
            let name = op.rawValue
            let argument = pairs[0].value
            switch op {
            case .inRange:
                guard let items = argument.sequence, items.count == 2 else {
                    sink.error("bad-constraint", "in_range takes a list of two bounds", at: argument, path: path)
                    continue
                }
                for item in items where item.text != "UNBOUNDED" && comparand(item, type: type) == nil {
                    sink.error(
                        "bad-constraint", "in_range bound '\(item.text ?? "")' is not a valid \(type)", at: item,
                        path: path)
                }
            case .validValues:
                guard argument.sequence != nil else {
                    sink.error("bad-constraint", "valid_values takes a list", at: argument, path: path)
                    continue
                }
            case .length, .minLength, .maxLength:
                guard case .int(let n) = argument.resolved, n >= 0 else {
                    sink.error("bad-constraint", "\(name) takes a non-negative integer", at: argument, path: path)
                    continue
                }
            case .pattern:
                guard let text = argument.text, registry.regex(text) != nil else {
                    sink.error("bad-constraint", "pattern is not a valid regular expression", at: argument, path: path)
                    continue
                }
            case .equal, .greaterThan, .greaterOrEqual, .lessThan, .lessOrEqual:
                if op != .equal, comparand(argument, type: type) == nil {
                    sink.error(
                        "bad-constraint", "\(name) bound '\(argument.text ?? "")' is not a valid \(type)",
                        at: argument, path: path)
                }
            case .schema:
                break
            }
        }
    }

    private func evaluate(_ op: ConstraintOperator, argument: YNode, value: YNode, type: String) -> String? {
        let shown = value.text.map { "'\($0)'" } ?? value.kindDescription
        switch op {
        case .equal:
            if !equalValues(value, argument, type: type) {
                return "\(shown) must equal '\(argument.text ?? "")'"
            }
        case .greaterThan, .greaterOrEqual, .lessThan, .lessOrEqual:
            guard let left = comparand(value, type: type), let right = comparand(argument, type: type),
                let order = left.compare(right)
            else { return nil }
            let ok: Bool
            let words: String
            switch op {
            case .greaterThan: (ok, words) = (order > 0, "greater than")
            case .greaterOrEqual: (ok, words) = (order >= 0, "greater than or equal to")
            case .lessThan: (ok, words) = (order < 0, "less than")
            default: (ok, words) = (order <= 0, "less than or equal to")
            }
            if !ok { return "\(shown) must be \(words) \(argument.text ?? "")" }
        case .inRange:
            guard let bounds = argument.sequence, bounds.count == 2, let item = comparand(value, type: type) else {
                return nil
            }
            let lowText = bounds[0].text ?? ""
            let highText = bounds[1].text ?? ""
            if lowText != "UNBOUNDED", let low = comparand(bounds[0], type: type), let order = item.compare(low),
                order < 0
            {
                return "\(shown) is outside the range [\(lowText), \(highText)]"
            }
            if highText != "UNBOUNDED", let high = comparand(bounds[1], type: type), let order = item.compare(high),
                order > 0
            {
                return "\(shown) is outside the range [\(lowText), \(highText)]"
            }
        case .validValues:
            guard let options = argument.sequence else { return nil }
            if !options.contains(where: { equalValues(value, $0, type: type) }) {
                let list = options.map { $0.text ?? $0.kindDescription }.joined(separator: ", ")
                return "\(shown) is not one of the valid values [\(list)]"
            }
        case .length, .minLength, .maxLength:
            guard case .int(let bound) = argument.resolved, let length = lengthOf(value) else { return nil }
            switch op {
            case .length where length != bound: return "\(shown) must have length \(bound) (it has \(length))"
            case .minLength where length < bound:
                return "\(shown) must have length at least \(bound) (it has \(length))"
            case .maxLength where length > bound:
                return "\(shown) must have length at most \(bound) (it has \(length))"
            default: break
            }
        case .pattern:
            guard let pattern = argument.text, let text = value.text, let regex = registry.regex(pattern) else {
                return nil
            }
            if (try? regex.wholeMatch(in: text)) == nil {
                return "\(shown) does not match the pattern '\(pattern)'"
            }
        case .schema:
            break
        }
        return nil
    }

    private func lengthOf(_ node: YNode) -> Int? {
        switch node.value {
        case .scalar(let scalar): return scalar.text.count
        case .sequence(let items): return items.count
        case .mapping(let pairs): return pairs.count
        }
    }

    private func equalValues(_ a: YNode, _ b: YNode, type: String) -> Bool {
        if let left = comparand(a, type: type), let right = comparand(b, type: type), let order = left.compare(right) {
            return order == 0
        }
        return a.text != nil && a.text == b.text
    }

    /// The comparable form of a node for a (primitive or primitive-derived) type, or nil when it does not parse.
    func comparand(_ node: YNode, type: String) -> Comparand? {
        let base = registry.primitiveBase(of: type) ?? type
        switch base {
        case "integer", "float":
            switch node.resolved {
            case .int(let value): return .number(Double(value))
            case .float(let value): return .number(value)
            default: return nil
            }
        case "scalar-unit.size", "scalar-unit.time", "scalar-unit.frequency", "scalar-unit.bitrate":
            guard let text = node.text, let kind = ScalarUnit.Kind(rawValue: base),
                case .success(let unit) = ScalarUnit.parse(text, kind: kind)
            else { return nil }
            return .number(unit.base)
        case "version":
            return node.text.flatMap(ToscaVersionValue.parse).map(Comparand.version)
        case "boolean":
            if case .bool(let value) = node.resolved { return .bool(value) }
            return nil
        default:
            return node.text.map(Comparand.string)
        }
    }
}
