import Foundation

/// Loads a template and everything it imports — local files, repository and URL imports (through the import map
/// and cache, never the network), CSAR archives — detecting import cycles, and registers every type.
final class TemplateLoader {
    let sink: DiagnosticSink
    let options: ValidationOptions
    let registry = TypeRegistry()
    private(set) var sources: [String: String] = [:]
    private(set) var files: [ParsedFile] = []
    private var loaded: Set<String> = []
    private var stack: [String] = []
    /// The import node that led to each file on `stack` (nil for the root).
    private var importStack: [YNode?] = []
    private let parser: DefinitionsParser
    private let maxFiles = 512
    private let cwd = FileManager.default.currentDirectoryPath
    /// When the template came from a CSAR archive: where it was unpacked, and the archive's name to show instead.
    var archive: (directory: String, display: String)?
    /// The real file behind each displayed path (they differ inside an archive).
    private(set) var realPaths: [String: String] = [:]

    init(sink: DiagnosticSink, options: ValidationOptions) {
        self.sink = sink
        self.options = options
        self.parser = DefinitionsParser(sink: sink)
    }

    /// Where a file came from: a local path, or a URL (whose relative imports resolve against it).
    enum Origin: Hashable {
        case local(String)
        case remote(String)

        var identity: String {
            switch self {
            case .local(let path): return path
            case .remote(let url): return url
            }
        }
    }

    static let normativeFile = "<tosca-normative-types>"

    static let nonNormativeFile = "<tosca-non-normative-types>"

    /// Registers the embedded normative types (with their short names) and the spec's non-normative examples.
    func loadNormative() {
        for (text, name, shortNames) in [
            (NormativeTypes.yaml, Self.normativeFile, true), (NonNormativeTypes.yaml, Self.nonNormativeFile, false),
        ] {
            do {
                let root = try YAMLLoader().load(text: text, file: name)
                guard let file = parser.parse(root, path: name, normative: true) else { continue }
                for var type in file.types {
                    type.hasShortNames = shortNames
                    registry.add(type, namespacePrefix: nil, sink: sink)
                }
            } catch {
                sink.add(error.diagnostic)
            }
        }
    }

    /// Loads the root file and its imports; returns the root's parsed form, or nil when it could not be read.
    func loadRoot(path: String) -> ParsedFile? {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        return load(origin: .local(absolute), display: display(absolute, given: path), namespacePrefix: nil, from: nil)
    }

    /// How a file is named in diagnostics: relative to the working directory where possible, and as
    /// `archive.csar!/inner/path.yaml` inside an archive (whose unpacked copy is gone after the run).
    private func display(_ absolute: String, given: String? = nil) -> String {
        if let archive {
            let root = URL(fileURLWithPath: archive.directory).standardizedFileURL.path + "/"
            if absolute.hasPrefix(root) { return "\(archive.display)!/\(absolute.dropFirst(root.count))" }
        }
        if let given { return given }
        let prefix = cwd.hasSuffix("/") ? cwd : cwd + "/"
        return absolute.hasPrefix(prefix) ? String(absolute.dropFirst(prefix.count)) : absolute
    }

    private func load(origin: Origin, display: String, namespacePrefix: String?, from importNode: YNode?) -> ParsedFile?
    {
        let identity = origin.identity
        if let index = stack.firstIndex(of: identity) {
            let cycle = (stack[index...] + [identity]).map { URL(fileURLWithPath: $0).lastPathComponent }
            // Point at the import where the cycle is entered, in the outermost file of the cycle: the one the
            // user is most likely looking at.
            let entry = index + 1 < importStack.count ? importStack[index + 1] : importNode
            sink.error(
                "import-cycle", "import cycle: \(cycle.joined(separator: " → "))", at: entry ?? importNode,
                path: "imports")
            return nil
        }
        guard loaded.insert(identity).inserted else { return nil }
        guard loaded.count <= maxFiles else {
            sink.error("too-many-imports", "more than \(maxFiles) files imported; refusing to go on", at: importNode)
            return nil
        }
        let localPath: String
        switch origin {
        case .local(let path): localPath = path
        case .remote(let url):
            guard let cached = options.importMap.entries[url] ?? options.importCache?.path(for: url) else {
                registry.hasMissingImports = true
                sink.error(
                    "import-not-cached",
                    "import '\(url)' is not in the local import cache and deployctl never fetches at parse time; "
                        + "add it with `deployctl types add \(url) FILE` or map it with --import-map",
                    at: importNode, path: "imports")
                return nil
            }
            localPath = cached
        }
        let text: String
        do {
            text = try String(contentsOfFile: localPath, encoding: .utf8)
        } catch {
            let exists = FileManager.default.fileExists(atPath: localPath)
            let message =
                exists
                ? "cannot read '\(display)': it is not a readable UTF-8 file"
                : (importNode == nil ? "no such file '\(display)'" : "imported file '\(display)' does not exist")
            if let importNode {
                registry.hasMissingImports = true
                sink.error("import-not-found", message, at: importNode, path: "imports")
            } else {
                sink.add(Diagnostic(.error, code: "io", message, at: nil))
            }
            return nil
        }
        sources[display] = text
        realPaths[display] = localPath
        let root: YNode
        do {
            root = try YAMLLoader().load(text: text, file: display)
        } catch {
            sink.add(error.diagnostic)
            if importNode != nil { registry.hasMissingImports = true }
            return nil
        }
        guard let file = parser.parse(root, path: display) else {
            if importNode != nil { registry.hasMissingImports = true }
            return nil
        }
        stack.append(identity)
        importStack.append(importNode)
        defer {
            stack.removeLast()
            importStack.removeLast()
        }
        for spec in file.imports {
            guard let target = resolve(spec, in: file, origin: origin) else { continue }
            let targetDisplay: String
            switch target {
            case .local(let path): targetDisplay = self.display(path)
            case .remote(let url): targetDisplay = url
            }
            _ = load(origin: target, display: targetDisplay, namespacePrefix: spec.namespacePrefix, from: spec.node)
        }
        for type in file.types { registry.add(type, namespacePrefix: namespacePrefix, sink: sink) }
        if importNode != nil, let topology = file.topology {
            sink.warning(
                "imported-topology",
                "the topology_template of an imported file is ignored; only its types are used", at: topology,
                path: "topology_template")
        }
        files.append(file)
        return file
    }

    private func resolve(_ spec: ImportSpec, in file: ParsedFile, origin: Origin) -> Origin? {
        var reference = spec.file
        if let repositoryName = spec.repository {
            guard let repository = file.repositories[repositoryName] else {
                sink.error(
                    "unknown-repository",
                    "import names repository '\(repositoryName)', which this file does not define"
                        + Suggest.hint(repositoryName, file.repositories.keys), at: spec.node, path: "imports")
                return nil
            }
            reference = repository.url.hasSuffix("/") ? repository.url + spec.file : repository.url + "/" + spec.file
        }
        if reference.hasPrefix("file://") {
            return .local(URL(string: reference)?.path ?? String(reference.dropFirst(7)))
        }
        if reference.contains("://") { return .remote(reference) }
        switch origin {
        case .remote(let base):
            guard let url = URL(string: reference, relativeTo: URL(string: base)) else { return nil }
            return .remote(url.absoluteString)
        case .local(let path):
            if reference.hasPrefix("/") { return .local(URL(fileURLWithPath: reference).standardizedFileURL.path) }
            let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
            return .local(directory.appendingPathComponent(reference).standardizedFileURL.path)
        }
    }
}
