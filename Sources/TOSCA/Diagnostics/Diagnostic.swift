/// Where something is in a source file: 1-based line and column.
public struct SourceLocation: Sendable, Hashable, Codable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }
}

/// How bad a diagnostic is: an error makes a template invalid, a warning does not.
public enum Severity: String, Sendable, Codable, Comparable {
    case error
    case warning

    public static func < (lhs: Severity, rhs: Severity) -> Bool {
        lhs == .error && rhs == .warning
    }
}

/// One finding about a template: what is wrong, where (file, line, column and YAML path), and how bad.
public struct Diagnostic: Sendable, Hashable, Codable {
    public var severity: Severity
    /// A stable, machine-readable kind such as `unknown-property` or `yaml-syntax`.
    public var code: String
    /// A sentence a person can act on: what was found and what was expected.
    public var message: String
    public var location: SourceLocation?
    /// The path of the offending node inside its document, such as `topology_template.node_templates.db.properties`.
    public var path: String
    /// How many columns the caret underline spans (at least 1).
    public var length: Int

    public init(
        _ severity: Severity, code: String, _ message: String, at location: SourceLocation?, path: String = "",
        length: Int = 1
    ) {
        self.severity = severity
        self.code = code
        self.message = message
        self.location = location
        self.path = path
        self.length = max(1, length)
    }
}

/// Collects diagnostics during one validation run, so that a run reports every problem, not just the first.
final class DiagnosticSink {
    private(set) var all: [Diagnostic] = []
    private var seen: Set<Diagnostic> = []
    /// A cap so that pathological input cannot produce unbounded output.
    let limit: Int

    init(limit: Int = 1000) { self.limit = limit }

    var errorCount: Int { all.count { $0.severity == .error } }

    func add(_ diagnostic: Diagnostic) {
        guard all.count < limit, seen.insert(diagnostic).inserted else { return }
        all.append(diagnostic)
    }

    func error(_ code: String, _ message: String, at node: YNode?, path: String = "") {
        add(Diagnostic(.error, code: code, message, at: node?.location, path: path, length: node?.span ?? 1))
    }

    func warning(_ code: String, _ message: String, at node: YNode?, path: String = "") {
        add(Diagnostic(.warning, code: code, message, at: node?.location, path: path, length: node?.span ?? 1))
    }
}

/// A failure that stops work on one file (I/O, YAML syntax, resource limits), carrying its diagnostic.
public struct DiagnosticError: Error, Sendable {
    public var diagnostic: Diagnostic
    public init(_ diagnostic: Diagnostic) { self.diagnostic = diagnostic }
}
