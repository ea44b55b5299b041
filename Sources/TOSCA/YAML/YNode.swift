/// A YAML node with its source location: the tree every later stage reads, so that each diagnostic can say where.
///
/// Scalars keep their text and whether they were plain (unquoted); typing follows the YAML 1.2 core schema
/// (see ``YNode/resolved``), so `yes` is a string, not a boolean.
public struct YNode: Sendable {
    public enum Value: Sendable {
        case scalar(YScalar)
        case sequence([YNode])
        case mapping([YPair])
    }

    public var value: Value
    public var location: SourceLocation

    public init(_ value: Value, at location: SourceLocation) {
        self.value = value
        self.location = location
    }

    /// How many columns a caret should underline for this node.
    var span: Int {
        if case .scalar(let scalar) = value {
            let firstLine = scalar.text.prefix { $0 != "\n" }
            return max(1, firstLine.count + (scalar.isPlain ? 0 : 2))
        }
        return 1
    }
}

/// A scalar's text, whether it was written plain (unquoted, no block style), and its explicit tag if any.
public struct YScalar: Sendable {
    public var text: String
    public var isPlain: Bool
    public var tag: String?

    public init(text: String, isPlain: Bool, tag: String? = nil) {
        self.text = text
        self.isPlain = isPlain
        self.tag = tag
    }
}

public struct YPair: Sendable {
    public var key: YNode
    public var value: YNode
}

/// A scalar resolved with the YAML 1.2 core schema.
public enum YResolved: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
}

extension YNode {
    public var scalar: YScalar? {
        if case .scalar(let scalar) = value { return scalar }
        return nil
    }

    /// The text of a scalar node (whatever its resolved type), nil for collections.
    public var text: String? { scalar?.text }

    public var sequence: [YNode]? {
        if case .sequence(let items) = value { return items }
        return nil
    }

    public var mapping: [YPair]? {
        if case .mapping(let pairs) = value { return pairs }
        return nil
    }

    public var isNull: Bool { resolved == .null }

    /// The first value under a scalar key, for mappings.
    public subscript(key: String) -> YNode? {
        mapping?.first { $0.key.text == key }?.value
    }

    /// A human description of the node's kind, for "expected X, found Y" messages.
    var kindDescription: String {
        switch value {
        case .mapping: return "a map"
        case .sequence: return "a list"
        case .scalar:
            switch resolved {
            case .null: return "null"
            case .bool: return "a boolean"
            case .int: return "an integer"
            case .float: return "a float"
            case .string: return "a string"
            case nil: return "a scalar"
            }
        }
    }

    /// The YAML 1.2 core-schema value of a scalar; nil for collections. Quoted scalars are always strings, and an
    /// explicit tag (`!!str`, `!!int`…) wins over the plain-scalar rules.
    public var resolved: YResolved? {
        guard case .scalar(let scalar) = value else { return nil }
        if let tag = scalar.tag {
            switch tag {
            case "tag:yaml.org,2002:str": return .string(scalar.text)
            case "tag:yaml.org,2002:null": return .null
            default: break
            }
        }
        guard scalar.isPlain else { return .string(scalar.text) }
        return YAMLCoreSchema.resolve(plain: scalar.text)
    }
}

/// The YAML 1.2 core schema's rules for plain scalars (spec 1.2.2, 10.3.2).
enum YAMLCoreSchema {
    static func resolve(plain text: String) -> YResolved {
        switch text {
        case "", "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE": return .bool(true)
        case "false", "False", "FALSE": return .bool(false)
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return .float(.infinity)
        case "-.inf", "-.Inf", "-.INF": return .float(-.infinity)
        case ".nan", ".NaN", ".NAN": return .float(.nan)
        default: break
        }
        // Most scalars are words: anything not starting like a number is a string, without a closer look.
        guard let first = text.utf8.first,
            (first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9")) || first == UInt8(ascii: "-")
                || first == UInt8(ascii: "+") || first == UInt8(ascii: ".")
        else { return .string(text) }
        let utf8 = Array(text.utf8)
        if let int = integer(utf8) { return .int(int) }
        if isFloat(utf8), let double = Double(text) { return .float(double) }
        return .string(text)
    }

    private static func integer(_ bytes: [UInt8]) -> Int? {
        guard !bytes.isEmpty else { return nil }
        if bytes.count > 2, bytes[0] == UInt8(ascii: "0") {
            let body = String(decoding: bytes[2...], as: UTF8.self)
            if bytes[1] == UInt8(ascii: "x") { return Int(body, radix: 16) }
            if bytes[1] == UInt8(ascii: "o") { return Int(body, radix: 8) }
        }
        var index = 0
        if bytes[0] == UInt8(ascii: "-") || bytes[0] == UInt8(ascii: "+") { index = 1 }
        guard index < bytes.count, bytes[index...].allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        var text = String(decoding: bytes, as: UTF8.self)
        if text.hasPrefix("+") { text.removeFirst() }
        return Int(text)
    }

    /// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
    private static func isFloat(_ bytes: [UInt8]) -> Bool {
        var index = 0
        func digits() -> Int {
            let start = index
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 { index += 1 }
            return index - start
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") { index += 1 }
        let integerDigits = digits()
        var fractionDigits = 0
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            fractionDigits = digits()
        }
        guard integerDigits > 0 || fractionDigits > 0 else { return false }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") {
                index += 1
            }
            guard digits() > 0 else { return false }
        }
        return index == bytes.count
    }
}
