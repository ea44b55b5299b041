import Yams

/// Reads YAML text into a ``YNode`` tree with bounded work: alias bombs, very deep nesting and huge files end in a
/// diagnostic, never a crash or a hang.
struct YAMLLoader {
    /// Files larger than this are refused before parsing.
    var maxBytes = 16 * 1024 * 1024
    /// The number of nodes a document may expand to, counting every alias expansion.
    var maxNodes = 1_000_000

    func load(text: String, file: String) throws(DiagnosticError) -> YNode {
        guard text.utf8.count <= maxBytes else {
            throw DiagnosticError(
                Diagnostic(
                    .error, code: "file-too-large",
                    "the file is \(text.utf8.count) bytes, more than the \(maxBytes)-byte limit for a template",
                    at: SourceLocation(file: file, line: 1, column: 1)))
        }
        let root: Node?
        do {
            let parser = try Parser(yaml: text, resolver: .basic, encoding: .utf8)
            root = try parser.singleRoot()
        } catch let error as YamlError {
            throw DiagnosticError(Self.diagnostic(for: error, file: file))
        } catch {
            throw DiagnosticError(
                Diagnostic(
                    .error, code: "yaml-syntax", "could not read YAML: \(error)",
                    at: SourceLocation(file: file, line: 1, column: 1)))
        }
        guard let root else {
            return YNode(.mapping([]), at: SourceLocation(file: file, line: 1, column: 1))
        }
        var budget = maxNodes
        return try convert(root, file: file, budget: &budget)
    }

    private func convert(_ node: Node, file: String, budget: inout Int) throws(DiagnosticError) -> YNode {
        budget -= 1
        let location = Self.location(node.mark, file: file)
        guard budget >= 0 else {
            throw DiagnosticError(
                Diagnostic(
                    .error, code: "yaml-too-large",
                    "the document expands to more than \(maxNodes) YAML nodes (an alias bomb?); refusing to go on",
                    at: location))
        }
        switch node {
        case .scalar(let scalar):
            let rawTag = scalar.tag.rawValue
            let tag = rawTag.isEmpty || rawTag == "!" ? nil : rawTag
            let isPlain = scalar.style == .plain || scalar.style == .any
            return YNode(.scalar(YScalar(text: scalar.string, isPlain: isPlain, tag: tag)), at: location)
        case .sequence(let sequence):
            var items: [YNode] = []
            items.reserveCapacity(sequence.count)
            for item in sequence {
                items.append(try convert(item, file: file, budget: &budget))
            }
            return YNode(.sequence(items), at: location)
        case .mapping(let mapping):
            var pairs: [YPair] = []
            pairs.reserveCapacity(mapping.count)
            for (key, value) in mapping {
                pairs.append(
                    YPair(
                        key: try convert(key, file: file, budget: &budget),
                        value: try convert(value, file: file, budget: &budget)))
            }
            return YNode(.mapping(pairs), at: location)
        case .alias:
            throw DiagnosticError(
                Diagnostic(.error, code: "yaml-syntax", "unresolved YAML alias", at: location))
        }
    }

    private static func location(_ mark: Mark?, file: String) -> SourceLocation {
        SourceLocation(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1)
    }

    private static func location(line: Int, column: Int, file: String) -> SourceLocation {
        SourceLocation(file: file, line: line, column: column)
    }

    static func diagnostic(for error: YamlError, file: String) -> Diagnostic {
        func make(_ message: String, _ mark: Mark?, code: String = "yaml-syntax") -> Diagnostic {
            Diagnostic(.error, code: code, message, at: location(mark, file: file))
        }
        func make(_ message: String, _ spot: SourceLocation, code: String) -> Diagnostic {
            Diagnostic(.error, code: code, message, at: spot)
        }
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            var message = "YAML syntax error: \(problem)"
            if let context {
                message += " (\(context.text) at line \(context.mark.line), column \(context.mark.column))"
            }
            if problem.contains("Maximum nesting level") {
                return make("YAML nesting is deeper than 1000 levels; refusing to go on", mark, code: "yaml-too-deep")
            }
            return make(message, mark)
        case .duplicatedKeysInMapping(let duplicates, let context):
            let names = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            // Yams marks the first occurrence; point at the repeat, which is the line to fix.
            let first = context.mark
            let repeatMark = duplicates.first.flatMap { secondOccurrence(of: $0, after: first, in: context.text) }
            return make(
                "duplicate key \(names) in a mapping (first at line \(first.line)): YAML keys must be unique",
                repeatMark.map { location(line: $0.line, column: $0.column, file: file) }
                    ?? location(first, file: file),
                code: "duplicate-key")
        case .reader(let problem, let offset, _, let yaml):
            var line = 1
            var column = 1
            if let offset {
                for byte in yaml.utf8.prefix(offset) {
                    if byte == UInt8(ascii: "\n") {
                        line += 1
                        column = 1
                    } else {
                        column += 1
                    }
                }
            }
            return make(
                "the file is not readable YAML: \(problem)", location(line: line, column: column, file: file),
                code: "yaml-syntax")
        case .dataCouldNotBeDecoded:
            return make("the file is not valid UTF-8", nil, code: "encoding")
        case .memory:
            return make("the YAML parser ran out of memory", nil, code: "yaml-too-large")
        default:
            return make("could not read YAML: \(error)", nil)
        }
    }

    /// The next line after `first` that starts, at the same column, with the same key.
    private static func secondOccurrence(of key: String, after first: Mark, in text: String) -> (
        line: Int, column: Int
    )? {
        var lineNumber = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            guard lineNumber > first.line else { continue }
            let indent = line.prefix { $0 == " " }.count
            var rest = line.dropFirst(indent)
            if rest.hasPrefix("- ") && indent + 2 < first.column { rest = rest.dropFirst(2) }
            let column = line.count - rest.count + 1
            guard column == first.column else { continue }
            for candidate in [key, "\"\(key)\"", "'\(key)'"] where rest.hasPrefix(candidate + ":") {
                return (lineNumber, column)
            }
        }
        return flowOccurrence(of: key, after: first, in: text)
    }

    /// In a flow mapping (`{a: 1, a: 2}`) the repeat follows on the same or a later line after a separator.
    private static func flowOccurrence(of key: String, after first: Mark, in text: String) -> (line: Int, column: Int)?
    {
        var line = 1
        var column = 1
        var previous: Character = "\n"
        let characters = Array(text)
        var index = 0
        while index < characters.count {
            let character = characters[index]
            let pastFirst = line > first.line || (line == first.line && column > first.column)
            if pastFirst, [",", "{", " ", "\t", "\n"].contains(previous) {
                for candidate in [key, "\"\(key)\"", "'\(key)'"] {
                    let end = index + candidate.count
                    guard end <= characters.count, String(characters[index..<end]) == candidate else { continue }
                    var next = end
                    while next < characters.count, characters[next] == " " { next += 1 }
                    if next < characters.count, characters[next] == ":" { return (line, column) }
                }
            }
            if character == "\n" {
                line += 1
                column = 1
            } else {
                column += 1
            }
            previous = character
            index += 1
        }
        return nil
    }
}
