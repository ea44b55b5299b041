import Foundation
import Testing

@testable import TOSCA

@Suite("Values: scalar-units, versions, timestamps and constraints")
struct ValueTests {
    func base(_ text: String, _ kind: ScalarUnit.Kind) throws -> Double {
        switch ScalarUnit.parse(text, kind: kind) {
        case .success(let unit): return unit.base
        case .failure(let error):
            Issue.record("'\(text)' did not parse: \(error.message)")
            throw error
        }
    }

    func parseError(_ text: String, _ kind: ScalarUnit.Kind) -> String? {
        if case .failure(let error) = ScalarUnit.parse(text, kind: kind) { return error.message }
        return nil
    }

    // MARK: Scalar-units

    @Test("sizes normalise to bytes: decimal and binary prefixes differ")
    func sizes() throws {
        #expect(try base("1 GiB", .size) > base("1000 MB", .size))
        #expect(try base("1 GB", .size) == base("1000 MB", .size))
        #expect(try base("1 kB", .size) == 1000)
        #expect(try base("1 KiB", .size) == 1024)
        #expect(try base("1.5 GB", .size) == 1.5e9)
        #expect(try base("2 TiB", .size) == 2 * 1_099_511_627_776)
        #expect(try base("1e3 MB", .size) == 1e9)
        #expect(try base("0 B", .size) == 0)
    }

    @Test("times normalise to seconds; m is minutes")
    func times() throws {
        #expect(try base("500 ms", .time) < base("1 s", .time))
        #expect(try base("1 d", .time) == 86_400)
        #expect(try base("2 h", .time) == 7_200)
        #expect(try base("10 m", .time) == 600)
        #expect(try abs(base("250 us", .time) - 250e-6) < 1e-15)
        #expect(try abs(base("3 ns", .time) - 3e-9) < 1e-18)
        #expect(try base("90 m", .time) > base("1 h", .time))
    }

    @Test("frequencies and bitrates normalise to hertz and bits per second")
    func frequenciesAndBitrates() throws {
        #expect(try base("2.4 GHz", .frequency) == 2.4e9)
        #expect(try base("2400 MHz", .frequency) == base("2.4 GHz", .frequency))
        #expect(try base("1 kHz", .frequency) == 1000)
        #expect(try base("1 Kbps", .bitrate) == 1000)
        #expect(try base("1 Kibps", .bitrate) == 1024)
        #expect(try base("1 Gibps", .bitrate) > base("1 Gbps", .bitrate))
        #expect(try base("1000 Mbps", .bitrate) == base("1 Gbps", .bitrate))
    }

    @Test(
        "size, time and frequency units are case-insensitive",
        arguments: [
            ("10 gb", ScalarUnit.Kind.size, 1e10), ("10 GB", .size, 1e10), ("1 kb", .size, 1000),
            ("1 KIB", .size, 1024),
            ("5 MS", .time, 0.005), ("2 S", .time, 2), ("2 ghz", .frequency, 2e9), ("3 MHZ", .frequency, 3e6),
        ])
    func caseInsensitiveUnits(text: String, kind: ScalarUnit.Kind, expected: Double) throws {
        #expect(try base(text, kind) == expected)
    }

    @Test("bitrate units are case-sensitive (bit versus byte)", arguments: ["1 gbps", "1 GBPS", "1 kbps", "1 KIBPS"])
    func bitrateCaseSensitive(text: String) {
        #expect(parseError(text, .bitrate)?.hasPrefix("unknown unit") == true)
    }

    @Test("the space between number and unit is optional, extra spaces are fine")
    func spacing() throws {
        #expect(try base("10GB", .size) == 1e10)
        #expect(try base("  10   GB ", .size) == 1e10)
    }

    @Test("malformed scalar-units are rejected with a message naming the accepted units")
    func malformedScalarUnits() {
        #expect(
            parseError("10", .size)
                == "'10' has no unit; a scalar-unit.size needs one of B, kB, KiB, MB, MiB, GB, GiB, TB, TiB")
        #expect(parseError("-1 GB", .size) == "'-1 GB' is negative; a scalar-unit.size cannot be")
        #expect(parseError("GB", .size)?.hasPrefix("'GB' is not a scalar-unit.size") == true)
        #expect(
            parseError("10 GBs", .size)
                == "unknown unit 'GBs' in '10 GBs'; a scalar-unit.size takes B, kB, KiB, MB, MiB, GB, GiB, TB, TiB")
        #expect(parseError("10 Hz", .time)?.hasPrefix("unknown unit 'Hz'") == true)
        #expect(parseError("1 GB", .bitrate)?.hasPrefix("unknown unit 'GB'") == true)
        #expect(parseError("", .size) != nil)
    }

    // MARK: Versions

    func version(_ text: String) throws -> ToscaVersionValue {
        try #require(ToscaVersionValue.parse(text), "'\(text)' should parse as a version")
    }

    @Test("versions order numerically, component by component")
    func versionOrdering() throws {
        #expect(try version("1.2") < version("1.10"))
        #expect(try version("1.9.9") < version("2.0"))
        #expect(try version("2") == version("2.0"))
        #expect(try version("2.0") == version("2.0.0"))
        #expect(try version("1.2.3") < version("1.2.4"))
        #expect(try version("1.2.3.alpha-1") < version("1.2.3.alpha-2"))
        #expect(try version("1.2.3.alpha-2") == version("1.2.3.alpha-2"))
        #expect(try !(version("3.0") < version("2.99.99")))
    }

    @Test("version parts: major, minor, fix, qualifier and build")
    func versionParts() throws {
        let full = try version("1.4.2.beta-3")
        #expect(full.parts == [1, 4, 2])
        #expect(full.qualifier == "beta")
        #expect(full.build == 3)
        #expect(try version("7").parts == [7, 0])
    }

    @Test(
        "malformed versions are rejected",
        arguments: ["", "v1.2", "1..2", "1.2a", "-1.0", "1.2.3.", "1.2.3.beta-x", "1.2.-3", "one.two", "22.04-lts"])
    func malformedVersions(text: String) {
        #expect(ToscaVersionValue.parse(text) == nil)
    }

    // MARK: Timestamps

    @Test(
        "YAML timestamps are accepted",
        arguments: [
            "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5", "2001-12-15T02:59:43.1Z",
            "2026-11-22T10:00:00Z", "2026-11-22T10:00:00", "2026-11-22T10:00:00+01:00",
            "2026-11-22T09:05:07.123456789Z",
        ])
    func validTimestamps(text: String) {
        #expect(Timestamp.isValid(text))
    }

    @Test(
        "malformed timestamps are rejected",
        arguments: [
            "", "2026-13-01", "2026-00-10", "2026-11-32", "2026-11-22T24:00:00Z", "2026-11-22T10:60:00Z",
            "2026-11-22T10:00Z", "22-11-2026", "2026/11/22", "2026-11-22T10:00:00+", "2026-11-22T10:00:00.Z",
            "2026-11-22T10:00:00Zulu", "yesterday",
        ])
    func invalidTimestamps(text: String) {
        #expect(!Timestamp.isValid(text))
    }

    // MARK: Constraints

    /// Validates a one-property template and returns its errors.
    func constraintErrors(type: String, constraint: String, value: String) throws -> [Diagnostic] {
        let schema = ["list", "map"].contains(type) ? "\n        entry_schema:\n          type: string" : ""
        let result = try validate(
            """
            tosca_definitions_version: tosca_simple_yaml_1_3
            node_types:
              example.nodes.Probe:
                derived_from: tosca.nodes.Root
                properties:
                  value:
                    type: \(type)\(schema)
                    constraints:
                      - \(constraint)
            topology_template:
              node_templates:
                probe:
                  type: example.nodes.Probe
                  properties:
                    value: \(value)
            """)
        return result.errors
    }

    struct ConstraintCase: Sendable, CustomTestStringConvertible {
        var type: String
        var constraint: String
        var value: String
        var holds: Bool
        var testDescription: String { "\(type) \(value) \(holds ? "satisfies" : "violates") \(constraint)" }
    }

    static let constraintCases: [ConstraintCase] = [
        // Bounds are inclusive where the operator says so, exclusive where not.
        .init(type: "integer", constraint: "in_range: [ 1, 10 ]", value: "1", holds: true),
        .init(type: "integer", constraint: "in_range: [ 1, 10 ]", value: "10", holds: true),
        .init(type: "integer", constraint: "in_range: [ 1, 10 ]", value: "11", holds: false),
        .init(type: "integer", constraint: "in_range: [ 1, 10 ]", value: "0", holds: false),
        .init(type: "integer", constraint: "in_range: [ 5, UNBOUNDED ]", value: "1000000", holds: true),
        .init(type: "integer", constraint: "greater_than: 5", value: "5", holds: false),
        .init(type: "integer", constraint: "greater_or_equal: 5", value: "5", holds: true),
        .init(type: "integer", constraint: "less_than: 5", value: "5", holds: false),
        .init(type: "integer", constraint: "less_or_equal: 5", value: "5", holds: true),
        .init(type: "float", constraint: "less_than: 1", value: "0.999", holds: true),
        .init(type: "float", constraint: "greater_than: 0.5", value: "1", holds: true),
        // Scalar-units compare in base units, whatever unit each side is written in.
        .init(type: "scalar-unit.size", constraint: "less_than: 1000 MB", value: "1 GiB", holds: false),
        .init(type: "scalar-unit.size", constraint: "equal: 1 GiB", value: "1024 MiB", holds: true),
        .init(type: "scalar-unit.size", constraint: "valid_values: [ 1 GiB, 2 GiB ]", value: "2048 MiB", holds: true),
        .init(type: "scalar-unit.time", constraint: "in_range: [ 1 s, 1 m ]", value: "500 ms", holds: false),
        .init(type: "scalar-unit.time", constraint: "in_range: [ 1 s, 1 m ]", value: "60 s", holds: true),
        .init(type: "scalar-unit.frequency", constraint: "greater_or_equal: 1 GHz", value: "999 MHz", holds: false),
        .init(type: "scalar-unit.bitrate", constraint: "less_or_equal: 1 Gbps", value: "1000 Mbps", holds: true),
        // Versions compare numerically: 1.10 is newer than 1.9.
        .init(type: "version", constraint: "greater_or_equal: 1.9", value: "1.10", holds: true),
        .init(type: "version", constraint: "less_than: 2.0", value: "2.0.1", holds: false),
        // Equality and enumerations.
        .init(type: "integer", constraint: "valid_values: [ 1, 2, 4 ]", value: "3", holds: false),
        .init(type: "string", constraint: "valid_values: [ \"1\", \"2\" ]", value: "\"2\"", holds: true),
        .init(type: "boolean", constraint: "equal: true", value: "false", holds: false),
        .init(type: "boolean", constraint: "equal: true", value: "true", holds: true),
        .init(type: "string", constraint: "equal: PUBLIC", value: "PUBLIC", holds: true),
        // Lengths count characters, list items and map entries.
        .init(type: "string", constraint: "length: 3", value: "ééé", holds: true),
        .init(type: "string", constraint: "min_length: 1", value: "\"\"", holds: false),
        .init(type: "list", constraint: "max_length: 2", value: "[ a, b, c ]", holds: false),
        .init(type: "list", constraint: "min_length: 0", value: "[]", holds: true),
        .init(type: "map", constraint: "length: 2", value: "{ a: x, b: y }", holds: true),
        .init(type: "map", constraint: "min_length: 3", value: "{ a: x }", holds: false),
        // Patterns.
        .init(type: "string", constraint: "pattern: \"[a-z]+\"", value: "abc", holds: true),
        .init(type: "string", constraint: "pattern: \"^[a-z]+$\"", value: "abc1", holds: false),
        .init(type: "string", constraint: "pattern: \"[0-9]{3}-[0-9]{4}\"", value: "\"555-0199\"", holds: true),
    ]

    @Test("constraint operators on edge cases", arguments: constraintCases)
    func constraintEdgeCases(case check: ConstraintCase) throws {
        let errors = try constraintErrors(type: check.type, constraint: check.constraint, value: check.value)
        if check.holds {
            #expect(errors.isEmpty, "\(errors.map(summary))")
        } else {
            #expect(errors.map(\.code) == ["constraint-violated"], "\(errors.map(summary))")
            // The value's line: after the template's 15 lines, plus the entry_schema of lists and maps.
            #expect(errors.first?.location?.line == (["list", "map"].contains(check.type) ? 17 : 15))
        }
    }

    @Test(
        "malformed constraint clauses are reported where they are written",
        arguments: [
            (
                "integer", "greater_then: 1",
                "unknown constraint operator 'greater_then'; did you mean 'greater_than'?"
            ),
            ("integer", "in_range: 5", "in_range takes a list of two bounds"),
            ("scalar-unit.size", "in_range: [ 1 GB, lots ]", "in_range bound 'lots' is not a valid scalar-unit.size"),
            ("string", "pattern: \"[a-\"", "pattern is not a valid regular expression"),
            ("string", "length: -1", "length takes a non-negative integer"),
            ("string", "valid_values: red", "valid_values takes a list"),
            ("integer", "greater_than: abc", "greater_than bound 'abc' is not a valid integer"),
        ])
    func malformedConstraints(type: String, constraint: String, message: String) throws {
        let errors = try constraintErrors(type: type, constraint: constraint, value: "null")
        let bad = errors.filter { $0.code == "bad-constraint" }
        #expect(bad.map(\.message) == [message], "\(errors.map(summary))")
        #expect(bad.first?.location?.line == 9)
    }

    @Test("constraints of a data type derived from a primitive apply along the derivation chain")
    func derivedPrimitiveConstraints() throws {
        let result = try validate(
            """
            tosca_definitions_version: tosca_simple_yaml_1_3
            data_types:
              example.datatypes.Port:
                derived_from: integer
                constraints:
                  - in_range: [ 1, 65535 ]
              example.datatypes.HighPort:
                derived_from: example.datatypes.Port
                constraints:
                  - greater_or_equal: 1024
            node_types:
              example.nodes.Listener:
                derived_from: tosca.nodes.Root
                properties:
                  low: { type: example.datatypes.HighPort }
                  high: { type: example.datatypes.HighPort }
                  ok: { type: example.datatypes.HighPort }
            topology_template:
              node_templates:
                listener:
                  type: example.nodes.Listener
                  properties:
                    low: 80
                    high: 70000
                    ok: 8080
            """)
        #expect(
            result.errors.map(summary) == [
                "23:14: error: constraint-violated: '80' must be greater than or equal to 1024",
                "24:15: error: constraint-violated: '70000' is outside the range [1, 65535]",
            ])
    }

    @Test("an input value supplied for the run is checked against the input's type and constraints")
    func inputValuesChecked() throws {
        let template = """
            tosca_definitions_version: tosca_simple_yaml_1_3
            topology_template:
              inputs:
                workers:
                  type: integer
                  constraints:
                    - in_range: [ 1, 8 ]
              node_templates:
                server:
                  type: Compute
            """
        let good = try validate(template, options: ValidationOptions(inputs: ["workers": "4"]))
        #expect(good.isValid)
        let outside = try validate(template, options: ValidationOptions(inputs: ["workers": "9"]))
        #expect(outside.errors.map(\.code) == ["constraint-violated"])
        #expect(outside.errors.first?.location?.file == "<input workers>")
        let wrongType = try validate(template, options: ValidationOptions(inputs: ["workers": "many"]))
        #expect(wrongType.errors.map(\.code) == ["type-mismatch"])
        let unknown = try validate(template, options: ValidationOptions(inputs: ["worker": "2"]))
        #expect(
            unknown.errors.map(\.message) == ["input 'worker' is not declared by the template; did you mean 'workers'?"]
        )
    }
}
