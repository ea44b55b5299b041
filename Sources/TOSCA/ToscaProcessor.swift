import Foundation

/// What a validation run may use besides the template: the import cache, a per-run import map, and input values.
public struct ValidationOptions: Sendable {
    public var importCache: ImportCache?
    public var importMap: ImportMap
    /// Input values as YAML scalars or flow collections (`-i count=3`, `--inputs FILE`), by input name.
    public var inputs: [String: String]
    /// Whether to report required inputs that have neither a value nor a default (plan needs them; validate not).
    public var requireInputs: Bool
    /// Instance counts that replace a scalable node's default (`deployctl scale`), by node template name.
    public var instanceCounts: [String: Int] = [:]
    /// Which instances a scalable node has, where they are not simply 0..<count (`deployctl scale --remove` and the
    /// elastic controller take particular instances away): by node template name, replacing its count.
    public var instanceIndices: [String: [Int]] = [:]

    public init(
        importCache: ImportCache? = nil, importMap: ImportMap = ImportMap(), inputs: [String: String] = [:],
        requireInputs: Bool = false
    ) {
        self.importCache = importCache
        self.importMap = importMap
        self.inputs = inputs
        self.requireInputs = requireInputs
    }
}

/// The outcome of validating one template: every diagnostic, the sources for rendering them, and (when the
/// template could be read) the checked topology for planning.
public struct ValidationResult {
    public var file: String
    public var version: ToscaVersion?
    public var diagnostics: [Diagnostic]
    public var sources: [String: String]
    public var metadata: [(String, String)] = []
    var topology: Topology?
    var registry: TypeRegistry?
    /// Input values supplied for this run, parsed as YAML.
    var inputValues: [String: YNode] = [:]

    public var isValid: Bool { !diagnostics.contains { $0.severity == .error } }
    public var errors: [Diagnostic] { diagnostics.filter { $0.severity == .error } }
}

/// The entry point of the TOSCA module: validate a template (file, CSAR archive or unpacked CSAR directory).
public enum ToscaProcessor {
    public static func validate(path: String, options: ValidationOptions = ValidationOptions()) -> ValidationResult {
        let sink = DiagnosticSink()
        var result = ValidationResult(file: path, diagnostics: [], sources: [:])
        var templatePath = path
        var cleanup: URL?
        defer { if let cleanup { try? FileManager.default.removeItem(at: cleanup) } }
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        guard exists else {
            result.diagnostics = [Diagnostic(.error, code: "io", "no such file '\(path)'", at: nil)]
            return result
        }
        do {
            if isDirectory.boolValue {
                templatePath = try CSAR.entryDefinitions(in: URL(fileURLWithPath: path), display: path).path
            } else if CSAR.isArchive(path) {
                let directory = try CSAR.extract(path)
                cleanup = directory
                templatePath = try CSAR.entryDefinitions(in: directory, display: path).path
            }
        } catch {
            result.diagnostics = [error.diagnostic]
            return result
        }
        let loader = TemplateLoader(sink: sink, options: options)
        if let cleanup { loader.archive = (cleanup.path, path) }
        loader.loadNormative()
        let root = loader.loadRoot(path: templatePath)
        result.sources = loader.sources
        result.version = root?.version
        result.metadata = root?.metadata ?? []
        if let root {
            TypeChecker(registry: loader.registry, sink: sink).check(loader.files.flatMap(\.types))
            let validator = TopologyValidator(registry: loader.registry, sink: sink)
            let realPaths = loader.realPaths
            validator.realPath = { realPaths[$0] ?? $0 }
            if let topologyNode = root.topology {
                result.topology = validator.validate(topologyNode)
            } else {
                result.topology = Topology()
            }
            result.inputValues = checkInputs(
                options: options, topology: result.topology ?? Topology(), validator: validator, sink: sink,
                anchor: root.topology)
            result.registry = loader.registry
        }
        result.diagnostics = sink.all.sorted(by: Self.order)
        return result
    }

    /// Errors first is not what people want: they read top to bottom, so order by file, line, column.
    static func order(_ a: Diagnostic, _ b: Diagnostic) -> Bool {
        let left = a.location ?? SourceLocation(file: "", line: 0, column: 0)
        let right = b.location ?? SourceLocation(file: "", line: 0, column: 0)
        if left.file != right.file { return left.file < right.file }
        if left.line != right.line { return left.line < right.line }
        if left.column != right.column { return left.column < right.column }
        return a.severity < b.severity
    }

    /// Parses and checks supplied input values against their definitions.
    private static func checkInputs(
        options: ValidationOptions, topology: Topology, validator: TopologyValidator, sink: DiagnosticSink,
        anchor: YNode?
    ) -> [String: YNode] {
        var values: [String: YNode] = [:]
        let definitions = Dictionary(topology.inputs.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for (name, text) in options.inputs.sorted(by: { $0.key < $1.key }) {
            let file = "<input \(name)>"
            guard let definition = definitions[name] else {
                sink.add(
                    Diagnostic(
                        .error, code: "unknown-input",
                        "input '\(name)' is not declared by the template\(Suggest.hint(name, definitions.keys))",
                        at: nil, path: "inputs.\(name)"))
                continue
            }
            let node: YNode
            do {
                node = try YAMLLoader().load(text: text, file: file)
            } catch {
                sink.add(error.diagnostic)
                continue
            }
            // Problems carry the location '<input NAME>:1:1', which names the offending input.
            validator.checker(context: nil).check(node, schema: definition.schema, path: "inputs.\(name)")
            values[name] = node
        }
        if options.requireInputs {
            for definition in topology.inputs
            where definition.required && definition.defaultValue == nil && values[definition.name] == nil {
                sink.error(
                    "missing-input",
                    "input '\(definition.name)' is required and has no default; pass -i \(definition.name)=VALUE",
                    at: definition.node, path: "topology_template.inputs.\(definition.name)")
            }
        }
        return values
    }
}
