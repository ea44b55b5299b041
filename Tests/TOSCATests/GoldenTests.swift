import Foundation
import Testing

@testable import TOSCA

/// Golden tests over `Fixtures/valid/*.yaml` and `Fixtures/invalid/*.yaml`.
///
/// Each invalid fixture has one defect and a sibling `NAME.expected` listing, one per line,
/// `LINE:COLUMN: SEVERITY: CODE: MESSAGE` for the diagnostics the fixture is about; every line must appear among the
/// fixture's diagnostics and the fixture must be invalid. `$FIXTURES/` in a message stands for the fixtures directory
/// as the validator displays it; `*:*` means the location is not part of the contract (the alias bomb stops wherever
/// the node budget runs out). A valid fixture must have no errors, and its warnings must be exactly those listed in
/// its optional `NAME.expected` (none when there is no such file).
@Suite("Golden fixtures")
struct GoldenTests {
    /// The URL import of `valid/v1_3-repository-url-import.yaml`, resolved offline.
    static let options = ValidationOptions(
        importMap: ImportMap(entries: [
            "https://types.example.org/tosca/remote-types.yaml": Paths.fixture("lib/remote-types.yaml").path
        ]))

    static func fixtures(_ directory: String) -> [String] {
        let folder = Paths.fixtures.appendingPathComponent(directory)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { $0.hasSuffix(".yaml") }.map { String($0.dropLast(5)) }.sorted()
    }

    static func expectedLines(_ directory: String, _ name: String) -> [ExpectedDiagnostic]? {
        let file = Paths.fixtures.appendingPathComponent("\(directory)/\(name).expected")
        guard let text = try? String(contentsOf: file, encoding: .utf8) else { return nil }
        return text.split(separator: "\n").filter { !$0.isEmpty }.map { ExpectedDiagnostic(String($0)) }
    }

    /// Replaces the fixtures directory, absolute or relative to the working directory, by `$FIXTURES/`.
    static func normalise(_ message: String) -> String {
        let absolute = Paths.fixtures.standardizedFileURL.path + "/"
        var result = message.replacingOccurrences(of: absolute, with: "$FIXTURES/")
        let cwd = FileManager.default.currentDirectoryPath
        let prefix = cwd.hasSuffix("/") ? cwd : cwd + "/"
        if absolute.hasPrefix(prefix) {
            result = result.replacingOccurrences(of: String(absolute.dropFirst(prefix.count)), with: "$FIXTURES/")
        }
        return result
    }

    static func validateFixture(_ directory: String, _ name: String) -> ValidationResult {
        ToscaProcessor.validate(
            path: Paths.fixtures.appendingPathComponent("\(directory)/\(name).yaml").path, options: options)
    }

    @Test("there are at least 12 valid and 20 invalid fixtures, each invalid one with expectations")
    func fixtureInventory() throws {
        #expect(Self.fixtures("valid").count >= 12)
        #expect(Self.fixtures("invalid").count >= 20)
        for name in Self.fixtures("invalid") {
            let expected = try #require(Self.expectedLines("invalid", name), "\(name).expected is missing")
            #expect(!expected.isEmpty, "\(name).expected lists nothing")
            for line in expected {
                #expect(line.isWellFormed, "\(name).expected: malformed line '\(line.text)'")
            }
        }
    }

    @Test("a valid fixture has no errors and only the warnings it expects", arguments: fixtures("valid"))
    func validFixture(name: String) {
        let result = Self.validateFixture("valid", name)
        #expect(result.errors.isEmpty, "\(name): \(result.errors.map(summary))")
        #expect(result.isValid)
        #expect(result.version != nil)
        let warnings = result.diagnostics.filter { $0.severity == .warning }
        let expected = Self.expectedLines("valid", name) ?? []
        for line in expected {
            #expect(warnings.contains { line.matches($0) }, "\(name): expected warning not reported: \(line.text)")
        }
        for warning in warnings {
            #expect(
                expected.contains { $0.matches(warning) }, "\(name): unexpected warning: \(summary(warning))")
        }
    }

    @Test("an invalid fixture reports every expected diagnostic", arguments: fixtures("invalid"))
    func invalidFixture(name: String) throws {
        let clock = ContinuousClock()
        var result: ValidationResult?
        let elapsed = clock.measure { result = Self.validateFixture("invalid", name) }
        let actual = try #require(result)
        #expect(!actual.isValid, "\(name) should be invalid")
        #expect(elapsed < .seconds(10), "\(name) took \(elapsed)")
        let expected = try #require(Self.expectedLines("invalid", name))
        for line in expected {
            #expect(
                actual.diagnostics.contains { line.matches($0) },
                "\(name): expected \(line.text)\n  actual:\n    \(actual.diagnostics.map(summary).joined(separator: "\n    "))"
            )
        }
    }

    @Test("the valid fixtures span TOSCA 1.0, 1.1, 1.2 and 1.3")
    func versionsCovered() {
        let versions = Set(Self.fixtures("valid").compactMap { Self.validateFixture("valid", $0).version })
        #expect(versions == Set(ToscaVersion.allCases))
    }

    @Test("Compute, tosca:Compute and tosca.nodes.Compute name the same normative type")
    func shortTypeNames() throws {
        let path = Paths.fixture("valid/v1_1-short-type-names.yaml").path
        let (result, plan) = ToscaProcessor.plan(path: path, options: ValidationOptions())
        #expect(result.errors.isEmpty)
        let nodes = try #require(plan?.json["nodes"])
        for name in ["short", "prefixed", "full"] {
            #expect(nodes[name]?["type"] == .string("tosca.nodes.Compute"), "\(name)")
        }
        #expect(nodes["volume"]?["type"] == .string("tosca.nodes.Storage.BlockStorage"))
        #expect(nodes["db_server"]?["type"] == .string("tosca.nodes.DBMS"))
        #expect(nodes["db"]?["type"] == .string("tosca.nodes.Database"))
    }

    @Test("the alias-bomb fixture fails quickly with a clear error")
    func aliasBomb() throws {
        let clock = ContinuousClock()
        var result: ValidationResult?
        let elapsed = clock.measure { result = Self.validateFixture("invalid", "alias-bomb") }
        let actual = try #require(result)
        #expect(actual.errors.count == 1)
        let error = try #require(actual.errors.first)
        #expect(error.code == "yaml-too-large")
        #expect(error.message.contains("alias bomb"))
        #expect(elapsed < .seconds(5), "took \(elapsed)")
    }

    @Test(
        "5000 levels of nesting fail with yaml-too-deep, not a crash",
        arguments: [
            "  deep: " + String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000),
            "  deep: " + String(repeating: "{a: ", count: 5000) + "x" + String(repeating: "}", count: 5000),
            "  deep:\n    " + String(repeating: "- ", count: 5000) + "x",
        ])
    func deepNesting(body: String) throws {
        let text = "tosca_definitions_version: tosca_simple_yaml_1_3\nmetadata:\n\(body)\n"
        let clock = ContinuousClock()
        var result: ValidationResult?
        let elapsed = try clock.measure { result = try validate(text) }
        let actual = try #require(result)
        #expect(actual.errors.count == 1)
        let error = try #require(actual.errors.first)
        #expect(error.code == "yaml-too-deep")
        #expect(error.message == "YAML nesting is deeper than 1000 levels; refusing to go on")
        #expect((3...4).contains(error.location?.line ?? 0))
        #expect(elapsed < .seconds(5), "took \(elapsed)")
    }

    @Test("nesting just under the limit is accepted")
    func nestingUnderLimit() throws {
        let body = "  deep: " + String(repeating: "[", count: 900) + String(repeating: "]", count: 900)
        let result = try validate("tosca_definitions_version: tosca_simple_yaml_1_3\nmetadata:\n\(body)\n")
        #expect(result.errors.isEmpty, "\(result.errors.map(summary))")
    }

    @Test("every defect of a file with several is reported in one run")
    func allDiagnosticsInOneRun() throws {
        let text = """
            tosca_definitions_version: tosca_simple_yaml_1_3
            node_templates: {}
            topology_template:
              inputs:
                cpus:
                  type: integer
                  default: 12
                  constraints:
                    - less_or_equal: 8
              node_templates:
                server:
                  type: tosca.nodes.Comptue
                db_host:
                  type: Compute
                  capabilities:
                    host:
                      properties:
                        mem_sise: 4 GB
                        num_cpus: { get_input: cpu }
                app:
                  type: tosca.nodes.SoftwareComponent
                  requirements:
                    - host: db_hots
              policies:
                - near:
                    type: tosca.policies.Placement
                    targets: [ nowhere ]
              outputs:
                address:
                  description: no value
            """
        let result = try validate(text)
        let lines = result.errors.map(summary)
        let expected = [
            "2:1: error: unknown-key: unknown key 'node_templates' in a service template; "
                + "'node_templates' belongs under 'topology_template:'",
            "7:16: error: constraint-violated: '12' must be less than or equal to 8",
            "12:13: error: unknown-type: unknown node type 'tosca.nodes.Comptue'; did you mean 'tosca.nodes.Compute'?",
            "18:13: error: unknown-property: unknown property 'mem_sise' for capability 'host' of node template "
                + "'db_host' (type tosca.capabilities.Compute); did you mean 'mem_size'?",
            "19:36: error: unknown-input: get_input refers to undefined input 'cpu'; did you mean 'cpus'?",
            "23:17: error: unknown-node: requirement 'host' of node template 'app' names 'db_hots', which is neither "
                + "a node template nor a node type; did you mean 'db_host'?",
            "27:20: error: unknown-target: policy 'near' targets 'nowhere', which is neither a node template nor a "
                + "group; expected one of: app, db_host, server",
            "29:5: error: missing-key: output 'address' has no 'value'",
        ]
        for line in expected {
            #expect(lines.contains(line), "missing: \(line)\nactual:\n\(lines.joined(separator: "\n"))")
        }
        // Reported in reading order: by line, then column.
        let positions = result.diagnostics.compactMap { $0.location.map { $0.line * 10_000 + $0.column } }
        #expect(positions == positions.sorted())
    }
}

/// One line of a `.expected` file.
struct ExpectedDiagnostic: Sendable {
    var text: String
    var line: Int?
    var column: Int?
    var severity: String
    var code: String
    var message: String
    var isWellFormed: Bool

    init(_ text: String) {
        self.text = text
        let parts = text.components(separatedBy: ": ")
        let location = parts[0].split(separator: ":", omittingEmptySubsequences: false)
        line = location.count == 2 ? Int(location[0]) : nil
        column = location.count == 2 ? Int(location[1]) : nil
        severity = parts.count > 1 ? parts[1] : ""
        code = parts.count > 2 ? parts[2] : ""
        message = parts.count > 3 ? parts[3...].joined(separator: ": ") : ""
        let wildcard = location.count == 2 && location[0] == "*" && location[1] == "*"
        isWellFormed =
            parts.count >= 4 && (wildcard || (line != nil && column != nil))
            && ["error", "warning"].contains(severity) && !code.isEmpty && !message.isEmpty
    }

    func matches(_ diagnostic: Diagnostic) -> Bool {
        guard diagnostic.severity.rawValue == severity, diagnostic.code == code,
            GoldenTests.normalise(diagnostic.message) == message
        else { return false }
        if let line, diagnostic.location?.line != line { return false }
        if let column, diagnostic.location?.column != column { return false }
        return true
    }
}
