/// Helpers for reading YAML mappings with diagnostics: expected shapes, known keys and "did you mean" hints.
extension DiagnosticSink {
    /// The pairs of a mapping, or an error (and nil) when the node is something else. A null node reads as empty.
    func mapping(_ node: YNode, _ what: String, path: String) -> [YPair]? {
        if let pairs = node.mapping { return pairs }
        if node.isNull { return [] }
        error("expected-map", "\(what) must be a map, found \(node.kindDescription)", at: node, path: path)
        return nil
    }

    func list(_ node: YNode, _ what: String, path: String) -> [YNode]? {
        if let items = node.sequence { return items }
        if node.isNull { return [] }
        error("expected-list", "\(what) must be a list, found \(node.kindDescription)", at: node, path: path)
        return nil
    }

    func string(_ node: YNode, _ what: String, path: String) -> String? {
        if let scalar = node.scalar, !node.isNull { return scalar.text }
        error("expected-string", "\(what) must be a string, found \(node.kindDescription)", at: node, path: path)
        return nil
    }

    /// A list of strings, also accepting a single string where TOSCA allows the short form.
    func stringList(_ node: YNode, _ what: String, path: String) -> [(String, YNode)] {
        if let scalar = node.scalar, !node.isNull { return [(scalar.text, node)] }
        guard let items = list(node, what, path: path) else { return [] }
        return items.compactMap { item in string(item, "each entry of \(what)", path: path).map { ($0, item) } }
    }

    /// A boolean, accepting YAML 1.1 spellings (`yes`, `no`, `on`, `off`) with a warning, as real templates use them.
    func bool(_ node: YNode, _ what: String, path: String) -> Bool? {
        switch node.resolved {
        case .bool(let value): return value
        case .string(let text):
            let lowered = text.lowercased()
            if ["yes", "y", "on"].contains(lowered) || ["no", "n", "off"].contains(lowered) {
                let value = ["yes", "y", "on"].contains(lowered)
                warning(
                    "yaml11-boolean",
                    "\(what) '\(text)' is a string in YAML 1.2; read as \(value) (write \(value) to be portable)",
                    at: node, path: path)
                return value
            }
        default: break
        }
        error("expected-boolean", "\(what) must be true or false, found \(node.kindDescription)", at: node, path: path)
        return nil
    }

    /// The entries of a section of named maps (`outputs`, `groups`, `triggers`…): each entry whose value is a map,
    /// with its keys checked against `allowed`. Entries that are not maps are reported and left out.
    func namedMaps(_ node: YNode, section: String, each what: String, allowed: Set<String>, path: String)
        -> [(name: String, pair: YPair, path: String)]
    {
        guard let pairs = mapping(node, section, path: path) else { return [] }
        var result: [(name: String, pair: YPair, path: String)] = []
        for pair in pairs {
            guard let name = pair.key.text else { continue }
            let itemPath = joinPath(path, name)
            guard let fields = mapping(pair.value, "\(what) '\(name)'", path: itemPath) else { continue }
            checkKeys(fields, allowed: allowed, in: "\(what) '\(name)'", path: itemPath)
            result.append((name, pair, itemPath))
        }
        return result
    }

    /// Reports every key of `pairs` that is not in `allowed`, suggesting the nearest allowed key.
    func checkKeys(_ pairs: [YPair], allowed: Set<String>, in what: String, path: String) {
        for pair in pairs {
            guard let key = pair.key.text else {
                error("expected-string", "keys of \(what) must be strings", at: pair.key, path: path)
                continue
            }
            if !allowed.contains(key) {
                error(
                    "unknown-key",
                    "unknown key '\(key)' in \(what)\(Suggest.hint(key, allowed))",
                    at: pair.key, path: path.isEmpty ? key : "\(path).\(key)")
            }
        }
    }
}

/// Spelling suggestions for unknown names.
enum Suggest {
    /// "; did you mean 'x'?" when a candidate is close enough, else "; expected one of …" for short lists.
    static func hint(_ word: String, _ candidates: some Collection<String>, listUpTo: Int = 8) -> String {
        if let best = nearest(word, candidates) { return "; did you mean '\(best)'?" }
        if !candidates.isEmpty, candidates.count <= listUpTo {
            return "; expected one of: \(candidates.sorted().joined(separator: ", "))"
        }
        return ""
    }

    /// The closest candidate within a few edits (a transposition counts as one); ties go to the alphabetically
    /// first, so the hint is the same on every run. The word itself is never suggested.
    static func nearest(_ word: String, _ candidates: some Collection<String>) -> String? {
        let lowered = word.lowercased()
        var best: (String, Int)?
        for candidate in candidates where candidate != word {
            let distance = editDistance(lowered, candidate.lowercased())
            let limit = max(1, min(3, candidate.count / 3))
            guard distance <= limit else { continue }
            if let current = best, distance > current.1 || (distance == current.1 && candidate >= current.0) {
                continue
            }
            best = (candidate, distance)
        }
        return best?.0
    }

    /// Optimal string alignment distance: insertions, deletions, substitutions and adjacent transpositions.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.utf8)
        let b = Array(b.utf8)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var rows = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { rows[i][0] = i }
        for j in 0...b.count { rows[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                rows[i][j] = min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    rows[i][j] = min(rows[i][j], rows[i - 2][j - 2] + 1)
                }
            }
        }
        return rows[a.count][b.count]
    }
}

/// Joins YAML path components.
func joinPath(_ base: String, _ component: String) -> String {
    base.isEmpty ? component : "\(base).\(component)"
}
