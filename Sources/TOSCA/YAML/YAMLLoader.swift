import CYaml

/// Reads YAML text into a ``YNode`` tree straight from libyaml's event stream (the copy Yams vendors), with bounded
/// work: alias bombs, very deep nesting and huge files end in a diagnostic at the offending spot, never a crash or a
/// hang. Duplicate keys are reported at the repeat. Building the tree without an intermediate node layer keeps a
/// cold validation fast (the embedded normative types are parsed on every run).
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
        var copy = text
        let result: Result<YNode, DiagnosticError> = copy.withUTF8 { bytes in
            var builder = TreeBuilder(file: file, maxNodes: maxNodes)
            return Result { () throws(DiagnosticError) -> YNode in try builder.parse(bytes) }
        }
        return try result.get()
    }
}

/// One pass over libyaml's events, assembling nodes on an explicit stack (no recursion, so nesting depth cannot
/// exhaust the thread's stack; libyaml itself stops at 1000 levels).
private struct TreeBuilder {
    let file: String
    let maxNodes: Int
    private var budget: Int
    private var anchors: [String: (node: YNode, size: Int)] = [:]
    private var stack: [Frame] = []
    private var root: YNode?

    /// A collection being assembled. A class, so that appending mutates in place: an enum frame bound with
    /// `case .mapping(var pairs, …)` copies the array on every append, which is quadratic per collection.
    private final class Frame {
        let isMapping: Bool
        let location: SourceLocation
        let anchor: String?
        /// The node budget used when the collection started, to size its anchor.
        let start: Int
        var items: [YNode] = []
        var pairs: [YPair] = []
        var key: YNode?
        /// Scalar keys seen so far, with their line, for duplicate detection.
        var seen: [String: Int] = [:]

        init(isMapping: Bool, location: SourceLocation, anchor: String?, start: Int) {
            self.isMapping = isMapping
            self.location = location
            self.anchor = anchor
            self.start = start
        }
    }

    init(file: String, maxNodes: Int) {
        self.file = file
        self.maxNodes = maxNodes
        self.budget = maxNodes
    }

    private var used: Int { maxNodes - budget }

    mutating func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(DiagnosticError) -> YNode {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            throw fail("yaml-too-large", "the YAML parser could not start (out of memory)", nil)
        }
        defer { yaml_parser_delete(&parser) }
        yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
        yaml_parser_set_input_string(&parser, bytes.baseAddress, bytes.count)
        var documents = 0
        while true {
            var event = yaml_event_t()
            guard yaml_parser_parse(&parser, &event) == 1 else { throw syntaxError(parser) }
            defer { yaml_event_delete(&event) }
            let location = SourceLocation(
                file: file, line: Int(event.start_mark.line) + 1, column: Int(event.start_mark.column) + 1)
            switch event.type {
            case YAML_STREAM_END_EVENT:
                return root ?? YNode(.mapping([]), at: SourceLocation(file: file, line: 1, column: 1))
            case YAML_DOCUMENT_START_EVENT:
                documents += 1
                if documents > 1 {
                    throw fail(
                        "yaml-syntax", "a TOSCA file holds one YAML document; a second one starts here", location)
                }
            case YAML_SCALAR_EVENT:
                let scalar = event.data.scalar
                let text = String(
                    decoding: UnsafeBufferPointer(start: scalar.value, count: Int(scalar.length)), as: UTF8.self)
                let tag = scalar.tag.map { String(cString: $0) }.flatMap { $0 == "!" ? nil : $0 }
                let node = YNode(
                    .scalar(YScalar(text: text, isPlain: scalar.style == YAML_PLAIN_SCALAR_STYLE, tag: tag)),
                    at: location)
                try spend(1, at: location)
                try add(node, size: 1, anchor: scalar.anchor.map { String(cString: $0) })
            case YAML_ALIAS_EVENT:
                let name = String(cString: event.data.alias.anchor)
                guard let target = anchors[name] else {
                    throw fail("yaml-syntax", "alias '*\(name)' refers to no anchor '&\(name)' before it", location)
                }
                guard target.size <= budget else {
                    throw fail(
                        "yaml-too-large",
                        "alias '*\(name)' would expand the document past \(maxNodes) YAML nodes (an alias bomb?); "
                            + "refusing to go on", location)
                }
                try spend(target.size, at: location)
                try add(target.node, size: target.size, anchor: nil)
            case YAML_SEQUENCE_START_EVENT:
                try spend(1, at: location)
                stack.append(
                    Frame(
                        isMapping: false, location: location,
                        anchor: event.data.sequence_start.anchor.map { String(cString: $0) }, start: used))
            case YAML_MAPPING_START_EVENT:
                try spend(1, at: location)
                stack.append(
                    Frame(
                        isMapping: true, location: location,
                        anchor: event.data.mapping_start.anchor.map { String(cString: $0) }, start: used))
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                guard let frame = stack.popLast() else { break }
                let value: YNode.Value = frame.isMapping ? .mapping(frame.pairs) : .sequence(frame.items)
                try add(YNode(value, at: frame.location), size: used - frame.start + 1, anchor: frame.anchor)
            default:
                break
            }
        }
    }

    private mutating func spend(_ nodes: Int, at location: SourceLocation) throws(DiagnosticError) {
        budget -= nodes
        if budget < 0 {
            throw fail(
                "yaml-too-large",
                "the document expands to more than \(maxNodes) YAML nodes (an alias bomb?); refusing to go on",
                location)
        }
    }

    /// Attaches a finished node to its parent (or makes it the root) and records its anchor.
    private mutating func add(_ node: YNode, size: Int, anchor: String?) throws(DiagnosticError) {
        if let anchor { anchors[anchor] = (node, size) }
        guard let top = stack.last else {
            root = node
            return
        }
        guard top.isMapping else {
            top.items.append(node)
            return
        }
        if let key = top.key {
            top.pairs.append(YPair(key: key, value: node))
            top.key = nil
            return
        }
        if let text = node.scalar?.text {
            if let first = top.seen[text] {
                throw fail(
                    "duplicate-key",
                    "duplicate key '\(text)' in a mapping (first at line \(first)): YAML keys must be unique",
                    node.location)
            }
            top.seen[text] = node.location.line
        }
        top.key = node
    }

    private func fail(_ code: String, _ message: String, _ location: SourceLocation?) -> DiagnosticError {
        DiagnosticError(
            Diagnostic(.error, code: code, message, at: location ?? SourceLocation(file: file, line: 1, column: 1)))
    }

    private func syntaxError(_ parser: yaml_parser_t) -> DiagnosticError {
        let problem = parser.problem.map { String(cString: $0) } ?? "unknown problem"
        let mark = parser.problem_mark
        let location = SourceLocation(file: file, line: Int(mark.line) + 1, column: Int(mark.column) + 1)
        switch parser.error {
        case YAML_MEMORY_ERROR:
            return fail("yaml-too-large", "the YAML parser ran out of memory", location)
        case YAML_READER_ERROR:
            return fail("encoding", "the file is not readable as UTF-8 YAML: \(problem)", location)
        default:
            break
        }
        if problem.contains("Maximum nesting level")
            || (parser.context.map { String(cString: $0) } ?? "")
                .contains("Maximum nesting level")
        {
            return fail("yaml-too-deep", "YAML nesting is deeper than 1000 levels; refusing to go on", location)
        }
        var message = "YAML syntax error: \(problem)"
        if let context = parser.context.map({ String(cString: $0) }) {
            message += " (\(context) at line \(parser.context_mark.line + 1), column \(parser.context_mark.column + 1))"
        }
        return fail("yaml-syntax", message, location)
    }
}
