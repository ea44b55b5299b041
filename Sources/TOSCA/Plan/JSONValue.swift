import Foundation

/// A JSON value with ordered object keys, so that plans print deterministically and in a readable order.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        lhs.serialized() == rhs.serialized()
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let pairs) = self { return pairs.first { $0.0 == key }?.1 }
        return nil
    }

    /// Serialises with two-space indentation (pretty) or compactly.
    public func serialized(pretty: Bool = true, indent: Int = 0) -> String {
        var out = ""
        write(into: &out, pretty: pretty, indent: indent)
        return out
    }

    private func write(into out: inout String, pretty: Bool, indent: Int) {
        let newline = pretty ? "\n" : ""
        let pad = pretty ? String(repeating: "  ", count: indent + 1) : ""
        let closePad = pretty ? String(repeating: "  ", count: indent) : ""
        switch self {
        case .null: out += "null"
        case .bool(let value): out += value ? "true" : "false"
        case .int(let value): out += String(value)
        case .double(let value):
            if value.isNaN || value.isInfinite {
                out += "null"
            } else if value == value.rounded(), abs(value) < 1e15 {
                out += String(format: "%.1f", value)
            } else {
                out += String(value)
            }
        case .string(let text): out += JSONValue.quote(text)
        case .array(let items):
            if items.isEmpty {
                out += "[]"
                return
            }
            out += "[" + newline
            for (index, item) in items.enumerated() {
                out += pad
                item.write(into: &out, pretty: pretty, indent: indent + 1)
                out += (index < items.count - 1 ? "," : "") + newline
            }
            out += closePad + "]"
        case .object(let pairs):
            if pairs.isEmpty {
                out += "{}"
                return
            }
            out += "{" + newline
            for (index, pair) in pairs.enumerated() {
                out += pad + JSONValue.quote(pair.0) + (pretty ? ": " : ":")
                pair.1.write(into: &out, pretty: pretty, indent: indent + 1)
                out += (index < pairs.count - 1 ? "," : "") + newline
            }
            out += closePad + "}"
        }
    }

    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    out +=
                        "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                        + String(scalar.value, radix: 16)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

extension JSONValue {
    /// A YAML node as JSON, typed by the YAML 1.2 core schema.
    init(yaml node: YNode) {
        switch node.value {
        case .scalar:
            switch node.resolved {
            case .null, nil: self = .null
            case .bool(let value): self = .bool(value)
            case .int(let value): self = .int(value)
            case .float(let value): self = .double(value)
            case .string(let text): self = .string(text)
            }
        case .sequence(let items): self = .array(items.map(JSONValue.init(yaml:)))
        case .mapping(let pairs): self = .object(pairs.map { ($0.key.text ?? "", JSONValue(yaml: $0.value)) })
        }
    }
}
