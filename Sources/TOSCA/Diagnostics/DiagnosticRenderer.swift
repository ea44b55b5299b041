/// Turns diagnostics into the text a person reads: `file:line:column: severity: message [code]`, the YAML path and a
/// caret snippet of the offending line.
public struct DiagnosticRenderer: Sendable {
    /// The text of each source file by path, for the snippets. Files not present get no snippet.
    public var sources: [String: String]
    public var color: Bool
    /// Longer source lines are cut in snippets.
    static let maxLineWidth = 160

    public init(sources: [String: String], color: Bool = false) {
        self.sources = sources
        self.color = color
    }

    public func render(_ diagnostic: Diagnostic) -> String {
        var out = ""
        if let location = diagnostic.location {
            out += "\(location): "
        }
        let label = diagnostic.severity.rawValue
        out +=
            color
            ? (diagnostic.severity == .error ? "\u{1B}[1;31m\(label)\u{1B}[0m" : "\u{1B}[1;33m\(label)\u{1B}[0m")
            : label
        out += ": \(diagnostic.message) [\(diagnostic.code)]"
        if !diagnostic.path.isEmpty {
            out += "\n    at \(diagnostic.path)"
        }
        if let location = diagnostic.location, let line = sourceLine(location) {
            let number = String(location.line)
            let gutter = String(repeating: " ", count: number.count)
            let caretColumn = max(0, location.column - 1)
            let available = max(1, line.count - caretColumn)
            let underline = "^" + String(repeating: "~", count: max(0, min(diagnostic.length, available) - 1))
            out += "\n \(number) | \(line)"
            if caretColumn <= Self.maxLineWidth {
                out += "\n \(gutter) | \(String(repeating: " ", count: caretColumn))\(underline)"
            }
        }
        return out
    }

    private func sourceLine(_ location: SourceLocation) -> String? {
        guard let text = sources[location.file], location.line >= 1 else { return nil }
        var current = 1
        var start = text.startIndex
        while current < location.line {
            guard let newline = text[start...].firstIndex(of: "\n") else { return nil }
            start = text.index(after: newline)
            current += 1
        }
        let end = text[start...].firstIndex(of: "\n") ?? text.endIndex
        let line = text[start..<end]
        // Expand tabs so the caret lines up, and keep very long lines readable.
        let expanded = line.replacingTabs()
        return expanded.count > Self.maxLineWidth ? String(expanded.prefix(Self.maxLineWidth)) + "…" : expanded
    }
}

extension Substring {
    fileprivate func replacingTabs() -> String {
        var result = ""
        for character in self {
            if character == "\t" { result += " " } else if character != "\r" { result.append(character) }
        }
        return result
    }
}
