import Foundation

/// The local cache of URL imports, so that a parse never needs the network and always gives the same result.
///
/// Lives in `DEPLOYCTL_HOME/types/`: `index.json` maps each URL to a file beside it. `deployctl types add URL FILE`
/// fills it; an import map (`--import-map`) overrides it for one run.
public struct ImportCache: Sendable {
    public let directory: URL

    public init(home: URL) {
        self.directory = home.appendingPathComponent("types", isDirectory: true)
    }

    /// DEPLOYCTL_HOME, or ~/.deployctl.
    public static func defaultHome(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let home = environment["DEPLOYCTL_HOME"], !home.isEmpty { return URL(fileURLWithPath: home) }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".deployctl", isDirectory: true)
    }

    public struct Entry: Codable, Sendable, Equatable {
        public var url: String
        public var file: String
        public var bytes: Int
    }

    private var indexURL: URL { directory.appendingPathComponent("index.json") }

    public func entries() throws -> [Entry] {
        guard let data = try? Data(contentsOf: indexURL) else { return [] }
        return try JSONDecoder().decode([Entry].self, from: data)
    }

    /// The cached file for a URL, if any.
    public func path(for url: String) -> String? {
        guard let entry = (try? entries())?.first(where: { $0.url == url }) else { return nil }
        return directory.appendingPathComponent(entry.file).path
    }

    /// Copies `file` into the cache as the content of `url`, replacing an earlier entry. The index is written
    /// atomically, so a crash leaves either the old or the new index.
    @discardableResult
    public func add(url: String, file: URL) throws -> Entry {
        let data = try Data(contentsOf: file)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let name = Self.fileName(for: url)
        try data.write(to: directory.appendingPathComponent(name), options: .atomic)
        var all = try entries().filter { $0.url != url }
        let entry = Entry(url: url, file: name, bytes: data.count)
        all.append(entry)
        all.sort { $0.url < $1.url }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(all).write(to: indexURL, options: .atomic)
        return entry
    }

    public func remove(url: String) throws -> Bool {
        var all = try entries()
        guard let entry = all.first(where: { $0.url == url }) else { return false }
        all.removeAll { $0.url == url }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(all).write(to: indexURL, options: .atomic)
        try? FileManager.default.removeItem(at: directory.appendingPathComponent(entry.file))
        return true
    }

    /// A readable, collision-resistant file name: the URL's last component plus a hash of the whole URL.
    static func fileName(for url: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in url.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        let last = url.split(separator: "/").last.map(String.init) ?? "import"
        let safe = String(last.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_" ? $0 : "_" })
        return "\(String(hash, radix: 16))-\(safe.prefix(64))"
    }
}

/// A per-run mapping from import URLs to local files (`--import-map FILE`, YAML or JSON `{url: path}`); relative
/// paths are relative to the map file.
public struct ImportMap: Sendable {
    public var entries: [String: String]

    public init(entries: [String: String] = [:]) { self.entries = entries }

    public static func load(_ path: String) throws(DiagnosticError) -> ImportMap {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw DiagnosticError(
                Diagnostic(.error, code: "io", "cannot read the import map '\(path)'", at: nil))
        }
        let root = try YAMLLoader().load(text: text, file: path)
        guard let pairs = root.mapping else {
            throw DiagnosticError(
                Diagnostic(
                    .error, code: "bad-import-map", "an import map must be a map of URL: local path",
                    at: root.location))
        }
        let base = URL(fileURLWithPath: path).deletingLastPathComponent()
        var entries: [String: String] = [:]
        for pair in pairs {
            guard let url = pair.key.text, let file = pair.value.text else { continue }
            entries[url] = file.hasPrefix("/") ? file : base.appendingPathComponent(file).standardizedFileURL.path
        }
        return ImportMap(entries: entries)
    }
}
