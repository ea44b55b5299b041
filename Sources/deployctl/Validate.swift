import ArgumentParser
import Foundation
import TOSCA

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check TOSCA templates and report every problem with file:line:column.",
        discussion: """
            Accepts TOSCA Simple Profile in YAML 1.0–1.3 files, CSAR archives (.csar/.zip) and unpacked CSAR \
            directories. Every error and warning is reported, not just the first; --format json gives them as data.

            Exit codes: 0 all valid (warnings allowed), 1 at least one invalid, 2 usage or I/O error.
            """)

    @Argument(help: "Template files, CSAR archives or CSAR directories.")
    var templates: [String]

    @Option(help: "Output format: text or json.")
    var format: OutputFormat = .text

    @Flag(name: [.customShort("q"), .customLong("quiet")], help: "Print only errors (text format).")
    var quiet = false

    @OptionGroup var options: TemplateOptions

    func run() throws {
        let validationOptions = try options.validationOptionsOrExit()
        var anyInvalid = false
        var ioFailure = false
        var files: [JSONValue] = []
        let color = useColor()
        for template in templates {
            let result = ToscaProcessor.validate(path: template, options: validationOptions)
            if result.diagnostics.contains(where: { $0.code == "io" }) { ioFailure = true }
            if !result.isValid { anyInvalid = true }
            switch format {
            case .json:
                files.append(DiagnosticJSON.file(result))
            case .text:
                let renderer = DiagnosticRenderer(sources: result.sources, color: color)
                for diagnostic in result.diagnostics where !(quiet && diagnostic.severity == .warning) {
                    writeError(renderer.render(diagnostic))
                }
                let errors = result.errors.count
                let warnings = result.diagnostics.count - errors
                let version = result.version.map { " (\($0.rawValue))" } ?? ""
                if result.isValid {
                    print("\(template): valid\(version)" + (warnings > 0 ? ", \(warnings) warning(s)" : ""))
                } else {
                    print("\(template): invalid\(version): \(errors) error(s), \(warnings) warning(s)")
                }
            }
        }
        if format == .json {
            print(JSONValue.object([("valid", .bool(!anyInvalid)), ("files", .array(files))]).serialized())
        }
        if ioFailure { throw ExitCode(2) }
        if anyInvalid { throw ExitCode(1) }
    }
}

enum DiagnosticJSON {
    static func diagnostic(_ diagnostic: Diagnostic) -> JSONValue {
        var fields: [(String, JSONValue)] = [
            ("severity", .string(diagnostic.severity.rawValue)),
            ("code", .string(diagnostic.code)),
            ("message", .string(diagnostic.message)),
        ]
        if let location = diagnostic.location {
            fields += [
                ("file", .string(location.file)), ("line", .int(location.line)), ("column", .int(location.column)),
            ]
        }
        fields.append(("path", .string(diagnostic.path)))
        return .object(fields)
    }

    static func file(_ result: ValidationResult) -> JSONValue {
        let errors = result.errors.count
        return .object([
            ("file", .string(result.file)),
            ("valid", .bool(result.isValid)),
            ("tosca_definitions_version", result.version.map { .string($0.rawValue) } ?? .null),
            ("errors", .int(errors)),
            ("warnings", .int(result.diagnostics.count - errors)),
            ("diagnostics", .array(result.diagnostics.map(diagnostic))),
        ])
    }
}

/// `--inputs FILE`: a YAML map of input values. Each value is handed on as JSON text, which YAML 1.2 reads back
/// exactly (strings stay strings, numbers numbers).
enum InputsFile {
    static func load(_ path: String) throws -> [String: String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw CLIError("cannot read the inputs file '\(path)'")
        }
        let values: [(String, JSONValue)]
        do {
            values = try YAMLDocument.mapping(text: text, file: path)
        } catch {
            throw CLIError(
                "\(path): \(error.diagnostic.location.map { "\($0.line):\($0.column): " } ?? "")\(error.diagnostic.message)"
            )
        }
        var result: [String: String] = [:]
        for (name, value) in values { result[name] = value.serialized(pretty: false) }
        return result
    }
}
