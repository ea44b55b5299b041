/// Checks values (property assignments, defaults, inputs) against their TOSCA types and constraints, recursing into
/// lists, maps and complex data types. Function calls are handed to `onFunction` instead of being type-checked.
struct ValueChecker {
    let registry: TypeRegistry
    let sink: DiagnosticSink
    var onFunction: ((YNode, String) -> Void)?

    /// Nesting bound for self-referencing data types.
    private static let maxDepth = 64

    func check(_ value: YNode, schema: Schema, path: String, depth: Int = 0) {
        guard depth < Self.maxDepth else { return }
        if Functions.isFunctionCall(value) {
            onFunction?(value, path)
            return
        }
        let type = schema.type
        guard !type.isEmpty else { return }
        if TypeRegistry.primitiveTypes.contains(type) {
            checkPrimitive(value, type: type, schema: schema, path: path, depth: depth)
        } else if let dataType = registry.lookup(type, .data) {
            checkDataType(value, dataType: dataType, path: path, depth: depth)
        } else {
            return  // the unknown type itself is reported where it is declared
        }
        if !schema.constraints.isEmpty {
            checkConstraints(schema.constraints, value: value, type: type, path: path)
        }
    }

    private func mismatch(_ value: YNode, _ expected: String, path: String) {
        let shown = value.text.map { " '\($0)'" } ?? ""
        sink.error(
            "type-mismatch", "expected \(expected), found \(value.kindDescription)\(shown)", at: value, path: path)
    }

    private func checkPrimitive(_ value: YNode, type: String, schema: Schema, path: String, depth: Int) {
        switch type {
        case "string":
            switch value.resolved {
            case .string: break
            case .int, .float, .bool:
                sink.warning(
                    "number-as-string",
                    "'\(value.text ?? "")' is \(value.kindDescription) in YAML 1.2 where a string is expected; "
                        + "quote it to keep it exact", at: value, path: path)
            case .null: mismatch(value, "a string", path: path)
            case nil: mismatch(value, "a string", path: path)
            }
        case "integer":
            if case .int = value.resolved { break }
            mismatch(value, "an integer", path: path)
        case "float":
            switch value.resolved {
            case .int, .float: break
            default: mismatch(value, "a float", path: path)
            }
        case "boolean":
            _ = sink.bool(value, "the value", path: path)
        case "null":
            if !value.isNull { mismatch(value, "null", path: path) }
        case "timestamp":
            guard let text = value.text, Timestamp.isValid(text) else {
                mismatch(value, "a timestamp such as 2026-11-22T10:00:00Z", path: path)
                return
            }
        case "version":
            guard let text = value.text, value.scalar != nil, ToscaVersionValue.parse(text) != nil else {
                sink.error(
                    "bad-version",
                    "'\(value.text ?? value.kindDescription)' is not a version; expected "
                        + "major.minor[.fix[.qualifier[-build]]] such as 1.2.0", at: value, path: path)
                return
            }
        case "range":
            checkRange(value, path: path)
        case "list":
            guard let items = value.sequence else {
                mismatch(value, "a list", path: path)
                return
            }
            if let entry = schema.entrySchema?.value {
                for (index, item) in items.enumerated() {
                    check(item, schema: entry, path: "\(path)[\(index)]", depth: depth + 1)
                }
            }
        case "map":
            guard let pairs = value.mapping else {
                mismatch(value, "a map", path: path)
                return
            }
            for pair in pairs {
                let key = pair.key.text ?? "?"
                if let keySchema = schema.keySchema?.value {
                    check(pair.key, schema: keySchema, path: joinPath(path, key), depth: depth + 1)
                }
                if let entry = schema.entrySchema?.value {
                    check(pair.value, schema: entry, path: joinPath(path, key), depth: depth + 1)
                }
            }
        default:
            guard let kind = ScalarUnit.Kind(rawValue: type) else { return }
            guard let text = value.text, value.scalar != nil else {
                mismatch(value, "a \(type) such as '10 GB'", path: path)
                return
            }
            if case .failure(let error) = ScalarUnit.parse(text, kind: kind) {
                sink.error("bad-scalar-unit", error.message, at: value, path: path)
            }
        }
    }

    private func checkRange(_ value: YNode, path: String) {
        guard let items = value.sequence, items.count == 2 else {
            mismatch(value, "a range [lower, upper]", path: path)
            return
        }
        var bounds: [Int?] = []
        for item in items {
            if case .int(let number) = item.resolved {
                bounds.append(number)
            } else if item.text == "UNBOUNDED" {
                bounds.append(nil)
            } else {
                mismatch(item, "an integer or UNBOUNDED", path: path)
                return
            }
        }
        if let low = bounds[0], let high = bounds[1], low > high {
            sink.error(
                "bad-range", "range [\(low), \(high)] has its lower bound above its upper", at: value, path: path)
        }
    }

    private func checkDataType(_ value: YNode, dataType: TypeDef, path: String, depth: Int) {
        if let base = registry.primitiveBase(of: dataType.name) {
            // A data type derived from a primitive: the primitive's rules plus every constraint along the chain.
            var schema = Schema(type: base)
            for type in registry.chain(dataType.name, .data) {
                schema.constraints += type.constraints
                if schema.entrySchema == nil, let entry = type.entrySchema { schema.entrySchema = Box(entry) }
                if schema.keySchema == nil, let key = type.keySchema { schema.keySchema = Box(key) }
            }
            check(value, schema: schema, path: path, depth: depth + 1)
            return
        }
        if ["tosca.datatypes.json", "tosca.datatypes.xml"].contains(dataType.name) { return }
        guard let pairs = value.mapping else {
            mismatch(value, "a map of \(dataType.name) fields", path: path)
            return
        }
        let properties = registry.properties(of: dataType.name, .data)
        var byName: [String: PropertyDef] = [:]
        for property in properties { byName[property.name] = property }
        for pair in pairs {
            guard let key = pair.key.text else { continue }
            guard let property = byName[key] else {
                sink.error(
                    "unknown-property",
                    "unknown field '\(key)' for data type \(dataType.name)\(Suggest.hint(key, byName.keys))",
                    at: pair.key, path: joinPath(path, key))
                continue
            }
            check(pair.value, schema: property.schema, path: joinPath(path, key), depth: depth + 1)
        }
        for property in properties where property.required && property.defaultValue == nil {
            if !pairs.contains(where: { $0.key.text == property.name }) {
                sink.error(
                    "missing-property", "data type \(dataType.name) requires field '\(property.name)'", at: value,
                    path: path)
            }
        }
        let typeConstraints = registry.chain(dataType.name, .data).flatMap(\.constraints)
        if !typeConstraints.isEmpty {
            checkConstraints(typeConstraints, value: value, type: dataType.name, path: path)
        }
    }
}
