import Foundation
import Testing

@testable import TOSCA

@Suite("YAML 1.2 reading")
struct YAMLTests {
    func load(_ text: String, file: String = "test.yaml") throws -> YNode {
        try YAMLLoader().load(text: text, file: file)
    }

    /// The error a document fails with, or nil when it loads.
    func loadError(_ text: String, loader: YAMLLoader = YAMLLoader()) -> Diagnostic? {
        do {
            _ = try loader.load(text: text, file: "test.yaml")
            return nil
        } catch {
            return error.diagnostic
        }
    }

    // MARK: Core schema

    @Test(
        "YAML 1.1 booleans are plain strings in the 1.2 core schema",
        arguments: ["yes", "no", "on", "off", "y", "n", "Yes", "NO", "On", "OFF"])
    func yaml11BooleansAreStrings(text: String) {
        #expect(YAMLCoreSchema.resolve(plain: text) == .string(text))
    }

    @Test(
        "the core schema's booleans",
        arguments: [
            ("true", true), ("True", true), ("TRUE", true), ("false", false), ("False", false), ("FALSE", false),
        ])
    func booleans(text: String, value: Bool) {
        #expect(YAMLCoreSchema.resolve(plain: text) == .bool(value))
    }

    @Test("nulls: ~, null in three spellings and the empty scalar", arguments: ["~", "null", "Null", "NULL", ""])
    func nulls(text: String) {
        #expect(YAMLCoreSchema.resolve(plain: text) == .null)
    }

    @Test(
        "integers: decimal, signed, leading zeros, 0x hexadecimal and 0o octal",
        arguments: [
            ("0x1F", 31), ("0xff", 255), ("0o17", 15), ("017", 17), ("42", 42), ("-7", -7), ("+12", 12), ("0", 0),
        ])
    func integers(text: String, value: Int) {
        #expect(YAMLCoreSchema.resolve(plain: text) == .int(value))
    }

    @Test(
        "not integers in the core schema: YAML 1.1 binary, underscores, signed or empty hex, bad digits",
        arguments: ["0b101", "1_000", "-0x1F", "0x", "0xG1", "0o9", "12abc", "1:30", "v1"])
    func notIntegers(text: String) {
        #expect(YAMLCoreSchema.resolve(plain: text) == .string(text))
    }

    @Test(
        "floats: fractions, exponents and the infinities",
        arguments: [
            ("1.5", 1.5), ("-0.25", -0.25), (".5", 0.5), ("1.", 1.0), ("1e3", 1000.0), ("2.5E-1", 0.25),
            (".inf", Double.infinity), ("+.Inf", Double.infinity), ("-.INF", -Double.infinity),
        ])
    func floats(text: String, value: Double) {
        #expect(YAMLCoreSchema.resolve(plain: text) == .float(value))
    }

    @Test("not-a-number is .nan, and NaN is just a string")
    func notANumber() {
        guard case .float(let value) = YAMLCoreSchema.resolve(plain: ".nan") else {
            Issue.record(".nan is not a float")
            return
        }
        #expect(value.isNaN)
        #expect(YAMLCoreSchema.resolve(plain: "NaN") == .string("NaN"))
        #expect(YAMLCoreSchema.resolve(plain: "1e") == .string("1e"))
        #expect(YAMLCoreSchema.resolve(plain: ".") == .string("."))
    }

    @Test("quoted scalars and !!str are strings whatever they look like; block scalars too")
    func quotedScalarsAreStrings() throws {
        let root = try load(
            """
            double: "123"
            single: 'true'
            tagged: !!str 0x1F
            nulltext: "~"
            block: |
              42
            plain: 123
            """)
        #expect(root["double"]?.resolved == .string("123"))
        #expect(root["single"]?.resolved == .string("true"))
        #expect(root["tagged"]?.resolved == .string("0x1F"))
        #expect(root["nulltext"]?.resolved == .string("~"))
        #expect(root["block"]?.resolved == .string("42\n"))
        #expect(root["plain"]?.resolved == .int(123))
        #expect(root["double"]?.kindDescription == "a string")
        #expect(root["plain"]?.kindDescription == "an integer")
    }

    @Test("'required: yes' in a property definition is read as true with a portability warning")
    func legacyBooleanWarning() throws {
        let result = try validate(
            """
            tosca_definitions_version: tosca_simple_yaml_1_0
            node_types:
              example.nodes.Thing:
                derived_from: tosca.nodes.Root
                properties:
                  name:
                    type: string
                    required: yes
            topology_template:
              node_templates:
                thing:
                  type: example.nodes.Thing
            """)
        #expect(result.diagnostics.map(summary).contains { $0.hasPrefix("8:19: warning: yaml11-boolean:") })
        // Read as true: the template is invalid because 'name' is required and missing.
        #expect(result.errors.map(\.code) == ["missing-property"])
    }

    @Test("a YAML 1.1 boolean where a boolean property value is expected is read with a warning, a typo is an error")
    func booleanPropertyValues() throws {
        let template = """
            tosca_definitions_version: tosca_simple_yaml_1_3
            topology_template:
              node_templates:
                net:
                  type: tosca.nodes.network.Network
                  properties:
                    dhcp_enabled: VALUE
            """
        let legacy = try validate(template.replacingOccurrences(of: "VALUE", with: "on"))
        #expect(legacy.isValid)
        #expect(codes(legacy) == ["yaml11-boolean"])
        let typo = try validate(template.replacingOccurrences(of: "VALUE", with: "ture"))
        #expect(codes(typo) == ["expected-boolean"])
        #expect(typo.errors.first?.location?.line == 7)
    }

    // MARK: Locations

    @Test("keys and values carry 1-based line and column")
    func locations() throws {
        let root = try load(
            """
            # a comment
            top:
              child: value
              list:
                - first
                - { inner: 7 }
            flow: [a, b]
            """, file: "where.yaml")
        let top = try #require(root["top"])
        #expect(
            root.mapping?.first { $0.key.text == "top" }?.key.location
                == SourceLocation(file: "where.yaml", line: 2, column: 1))
        #expect(
            top.mapping?.first { $0.key.text == "child" }?.key.location
                == SourceLocation(file: "where.yaml", line: 3, column: 3))
        #expect(top["child"]?.location == SourceLocation(file: "where.yaml", line: 3, column: 10))
        let list = try #require(top["list"]?.sequence)
        #expect(list[0].location == SourceLocation(file: "where.yaml", line: 5, column: 7))
        #expect(list[1]["inner"]?.location == SourceLocation(file: "where.yaml", line: 6, column: 16))
        let flow = try #require(root["flow"]?.sequence)
        #expect(flow[1].location == SourceLocation(file: "where.yaml", line: 7, column: 11))
    }

    @Test("diagnostics point at the offending value, with a caret under it")
    func renderedLocation() throws {
        let result = try validate(
            """
            tosca_definitions_version: tosca_simple_yaml_1_3
            topology_template:
              node_templates:
                server:
                  type: Compute
                  capabilities:
                    host:
                      properties:
                        num_cpus: many
            """)
        let error = try #require(result.errors.first)
        #expect(error.location?.line == 9)
        #expect(error.location?.column == 23)
        #expect(error.path == "topology_template.node_templates.server.capabilities.host.properties.num_cpus")
        let rendered = DiagnosticRenderer(sources: result.sources).render(error)
        let lines = rendered.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines[0].hasSuffix(":9:23: error: expected an integer, found a string 'many' [type-mismatch]"))
        #expect(lines[1] == "    at topology_template.node_templates.server.capabilities.host.properties.num_cpus")
        #expect(lines[2] == " 9 |             num_cpus: many")
        #expect(lines[3] == "   |                       ^~~~")
    }

    @Test("the renderer colours the severity on request and cuts very long source lines")
    func rendererOptions() {
        let long = "key: " + String(repeating: "x", count: 300)
        let diagnostic = Diagnostic(
            .warning, code: "demo", "a warning", at: SourceLocation(file: "f.yaml", line: 1, column: 6), length: 300)
        let plain = DiagnosticRenderer(sources: ["f.yaml": long]).render(diagnostic)
        let lines = plain.split(separator: "\n").map(String.init)
        #expect(lines[0] == "f.yaml:1:6: warning: a warning [demo]")
        #expect(lines[1].hasSuffix("…"))
        #expect(lines[1].count < 200)
        let coloured = DiagnosticRenderer(sources: [:], color: true).render(diagnostic)
        #expect(coloured == "f.yaml:1:6: \u{1B}[1;33mwarning\u{1B}[0m: a warning [demo]")
        let unlocated = Diagnostic(.error, code: "io", "no such file 'x'", at: nil)
        #expect(DiagnosticRenderer(sources: [:]).render(unlocated) == "error: no such file 'x' [io]")
    }

    // MARK: Duplicate keys

    @Test(
        "a duplicate key is an error at the repeat, naming the first occurrence",
        arguments: [
            ("a: 1\nb: 2\na: 3\n", 3, 1, 1),
            ("outer:\n  a: 1\n  \"a\": 2\n", 3, 3, 2),
            ("list:\n  - a: 1\n    b: 2\n    a: 3\n", 4, 5, 2),
            ("a: 1\nother:\n  a: 5\na: 2\n", 4, 1, 1),
        ])
    func duplicateKeys(text: String, line: Int, column: Int, firstLine: Int) throws {
        let error = try #require(loadError(text))
        #expect(error.code == "duplicate-key")
        #expect(error.location?.line == line)
        #expect(error.location?.column == column)
        #expect(
            error.message == "duplicate key 'a' in a mapping (first at line \(firstLine)): YAML keys must be unique")
    }

    @Test("the same key in sibling mappings is not a duplicate")
    func siblingKeysAreFine() throws {
        let root = try load("one:\n  name: a\ntwo:\n  name: b\n")
        #expect(root["two"]?["name"]?.text == "b")
    }

    // MARK: Aliases and limits

    @Test("aliases expand to the anchored node")
    func aliasesExpand() throws {
        let root = try load("base: &base { cpus: 2, tags: [a, b] }\ncopy: *base\n")
        #expect(root["copy"]?["cpus"]?.resolved == .int(2))
        #expect(root["copy"]?["tags"]?.sequence?.count == 2)
    }

    @Test("alias expansion is bounded by the node budget")
    func aliasExpansionBounded() throws {
        // 4 levels of 10 aliases: 10,000 leaves, far beyond a 500-node budget but tiny as text.
        var lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
        for level in 1...4 {
            lines.append(
                "l\(level): &l\(level) [" + Array(repeating: "*l\(level - 1)", count: 10).joined(separator: ", ") + "]")
        }
        let text = lines.joined(separator: "\n") + "\n"
        let error = try #require(loadError(text, loader: YAMLLoader(maxBytes: 1 << 20, maxNodes: 500)))
        #expect(error.code == "yaml-too-large")
        // Reported at the alias that would overflow the budget, naming it.
        #expect(error.message.hasPrefix("alias '*l"))
        #expect(error.message.contains("past 500 YAML nodes"))
        #expect((2...5).contains(error.location?.line ?? 0))
        // The same document fits the default budget.
        #expect(loadError(text) == nil)
    }

    @Test("a file over the size limit is refused before parsing")
    func fileTooLarge() throws {
        let error = try #require(
            loadError("key: " + String(repeating: "x", count: 200), loader: YAMLLoader(maxBytes: 100)))
        #expect(error.code == "file-too-large")
        #expect(error.location?.line == 1)
    }

    @Test("syntax errors carry the position the parser stopped at")
    func syntaxError() throws {
        let error = try #require(loadError("a: 1\nb: [1, 2\nc: 3\n"))
        #expect(error.code == "yaml-syntax")
        #expect(error.message.hasPrefix("YAML syntax error:"))
        #expect(error.message.contains("flow sequence"))
        #expect((2...3).contains(error.location?.line ?? 0))
    }

    @Test("a tab used for indentation is a syntax error, not a crash")
    func tabIndentation() throws {
        let error = try #require(loadError("a:\n\tb: 1\n"))
        #expect(error.code == "yaml-syntax")
        #expect(error.location?.line == 2)
    }

    @Test("a stream of several documents is refused")
    func severalDocuments() throws {
        let error = try #require(loadError("---\na: 1\n---\nb: 2\n"))
        #expect(error.code == "yaml-syntax")
        #expect(error.location?.line == 3)
    }

    @Test("an empty file reads as an empty map, which lacks tosca_definitions_version")
    func emptyFile() throws {
        let root = try load("")
        #expect(root.mapping?.isEmpty == true)
        let result = try validate("# nothing but a comment\n")
        #expect(codes(result) == ["missing-version"])
    }
}
