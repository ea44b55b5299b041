import Foundation
import Testing

@testable import TOSCA

/// One test per validator bug found while writing the suite, so none comes back.
@Suite("Regressions")
struct RegressionTests {
    @Test("a Credential value {token: abc} is data, not the token function")
    func credentialTokenIsData() throws {
        let result = try validate(
            """
            tosca_definitions_version: tosca_simple_yaml_1_3
            node_types:
              example.Service:
                derived_from: tosca.nodes.Root
                properties:
                  cred: { type: tosca.datatypes.Credential }
            topology_template:
              node_templates:
                s:
                  type: example.Service
                  properties:
                    cred: { token: abc }
            """)
        #expect(result.errors.map(summary) == [])
    }

    @Test("TOSCA 1.0 names tosca.nodes.BlockStorage and ObjectStorage resolve to the Storage types")
    func legacyStorageNames() throws {
        let result = try validate(
            """
            tosca_definitions_version: tosca_simple_yaml_1_0
            topology_template:
              node_templates:
                vol:
                  type: tosca.nodes.BlockStorage
                  properties: { size: 10 GB }
                bucket:
                  type: tosca.nodes.ObjectStorage
                  properties: { name: data }
            """)
        #expect(result.errors.map(summary) == [])
    }

    @Test("spelling hints are deterministic on ties, cover short names and count a swap as one edit")
    func suggestions() throws {
        #expect(Suggest.nearest("worker_c", ["worker_b", "worker_a"]) == "worker_a")
        #expect(Suggest.nearest("worker_a", ["worker_a"]) == nil)
        #expect(Suggest.editDistance("stroe", "store") == 1)
        let result = try validate(
            """
            tosca_definitions_version: tosca_simple_yaml_1_3
            topology_template:
              node_templates:
                vm:
                  type: Comptue
            """)
        #expect(
            result.errors.map(summary) == [
                "5:13: error: unknown-type: unknown node type 'Comptue'; did you mean 'Compute'?"
            ])
    }

    @Test("a duplicate key in a flow mapping is reported at the repeat")
    func flowDuplicateKey() throws {
        let result = try validate(
            """
            tosca_definitions_version: tosca_simple_yaml_1_3
            metadata: { a: 1, b: 2, a: 3 }
            """)
        let duplicate = try #require(result.errors.first)
        #expect(duplicate.code == "duplicate-key")
        #expect(duplicate.location?.line == 2)
        #expect(duplicate.location?.column == 25)
    }

    static let occurrencesTypes = """
        tosca_definitions_version: tosca_simple_yaml_1_3
        node_types:
          example.Balancer:
            derived_from: tosca.nodes.Root
            requirements:
              - backend:
                  capability: tosca.capabilities.Node
                  occurrences: [2, UNBOUNDED]
        topology_template:
          node_templates:
            s1: { type: tosca.nodes.Root }
            lb:
              type: example.Balancer
              requirements:
                - backend: s1

        """

    @Test("a requirement assigned fewer times than its lower bound is an error, with no invented binding")
    func occurrencesLowerBound() throws {
        let directory = try TemporaryDirectory()
        let file = try directory.write("t.yaml", Self.occurrencesTypes)
        let (result, plan) = ToscaProcessor.plan(path: file.path, options: ValidationOptions())
        #expect(plan == nil)
        #expect(
            result.errors.map(summary) == [
                "15:11: error: too-few-requirements: requirement 'backend' of node template 'lb' is assigned 1 "
                    + "time(s); its occurrences [2, UNBOUNDED] need at least 2"
            ])
    }

    @Test("a node_filter mismatch is one error at the filter, not at the target's valid property")
    func nodeFilterSingleError() throws {
        let result = try validate(
            """
            tosca_definitions_version: tosca_simple_yaml_1_3
            topology_template:
              node_templates:
                server:
                  type: Compute
                  capabilities:
                    host:
                      properties: { num_cpus: 4 }
                app:
                  type: tosca.nodes.SoftwareComponent
                  requirements:
                    - host:
                        node: server
                        node_filter:
                          capabilities:
                            - host:
                                properties:
                                  - num_cpus: { greater_or_equal: 8 }
            """)
        #expect(
            result.errors.map(summary) == [
                "18:25: error: node-filter-mismatch: 'server' does not satisfy the node_filter on 'num_cpus': "
                    + "'4' must be greater than or equal to 8"
            ])
    }

    @Test("errors inside a CSAR name the archive, not the deleted unpacked copy")
    func csarDisplayPath() throws {
        guard Python.available else { return }
        let directory = try TemporaryDirectory()
        let archive = directory.url.appendingPathComponent("app.csar")
        try Python.zip(
            [
                "TOSCA-Metadata/TOSCA.meta": "TOSCA-Meta-File-Version: 1.0\nEntry-Definitions: defs/main.yaml\n",
                "defs/main.yaml": "tosca_definitions_version: tosca_simple_yaml_1_3\nnode_typos: {}\n",
            ], into: archive)
        let result = ToscaProcessor.validate(path: archive.path)
        let error = try #require(result.errors.first)
        #expect(error.location?.file == "\(archive.path)!/defs/main.yaml")
        #expect(result.sources[error.location?.file ?? ""] != nil)
    }

    @Test(
        "timestamps reject impossible dates and one-digit date-only fields",
        arguments: [
            ("2026-02-30", false), ("2024-02-29", true), ("2023-02-29", false), ("2026-1-5", false),
            ("2026-01-05", true), ("2026-1-5T10:00:00Z", true), ("2026-04-31 10:00:00", false),
        ])
    func timestamps(_ text: String, _ valid: Bool) {
        #expect(Timestamp.isValid(text) == valid)
    }

    @Test("a constraint written as a plain string says what a constraint looks like")
    func plainStringConstraint() throws {
        let result = try validate(
            """
            tosca_definitions_version: tosca_simple_yaml_1_3
            topology_template:
              inputs:
                n:
                  type: integer
                  constraints: [ "x" ]
            """)
        #expect(
            result.errors.map(summary) == [
                "6:22: error: bad-constraint: a constraint must be a map with one operator such as "
                    + "'greater_or_equal: 1', found a string 'x'"
            ])
    }

    @Test("an unsatisfied requirement names the node type it needs")
    func unsatisfiedNamesNodeType() throws {
        let result = try validate(
            """
            tosca_definitions_version: tosca_simple_yaml_1_3
            topology_template:
              node_templates:
                vm: { type: Compute }
                app: { type: tosca.nodes.WebApplication }
            """)
        let error = try #require(result.errors.first { $0.code == "unsatisfied-requirement" })
        #expect(error.message.contains("no node template of type tosca.nodes.WebServer offers capability"))
    }

    @Test("TOSCA 1.0 host sizing on a Container capability and the spec's non-normative types are accepted")
    func legacyContainerAndExamples() throws {
        let result = try validate(
            """
            tosca_definitions_version: tosca_simple_yaml_1_0
            capability_types:
              example.capabilities.Slot:
                derived_from: tosca.capabilities.Container
            node_types:
              example.nodes.Host:
                derived_from: tosca.nodes.Root
                capabilities:
                  host: { type: example.capabilities.Slot }
            topology_template:
              node_templates:
                host:
                  type: example.nodes.Host
                  capabilities:
                    host:
                      properties: { num_cpus: 2, mem_size: 4 GB }
                web:
                  type: tosca.nodes.WebServer.Apache
                  requirements:
                    - host: vm
                vm: { type: Compute }
                db_server:
                  type: tosca.nodes.DBMS.MySQL
                  properties: { root_password: secret }
                  requirements:
                    - host: vm
                db:
                  type: tosca.nodes.Database.MySQL
                  properties: { name: studies }
                  requirements:
                    - host: db_server
                site:
                  type: tosca.nodes.WebApplication.WordPress
                  requirements:
                    - host: web
                    - database_endpoint: db
                app:
                  type: tosca.nodes.Container.Application
                  requirements:
                    - host: runtime
                runtime:
                  type: tosca.nodes.Container.Runtime
                  capabilities:
                    host:
                      properties: { num_cpus: 1 }
            """)
        #expect(result.errors.map(summary) == [])
    }

    @Test("widening an integer property to float is a warning, any other type change an error")
    func refinementSeverity() throws {
        let result = try validate(
            """
            tosca_definitions_version: tosca_simple_yaml_1_3
            capability_types:
              example.Slots:
                derived_from: tosca.capabilities.Compute
                properties:
                  num_cpus: { type: float, required: false }
                  mem_size: { type: string, required: false }
            """)
        #expect(
            result.diagnostics.map(summary) == [
                "6:25: warning: bad-refinement: 'num_cpus' is an integer in the parent type; a refinement may only "
                    + "narrow it to a derived type, not float",
                "7:25: error: bad-refinement: 'mem_size' is a scalar-unit.size in the parent type; a refinement may "
                    + "only narrow it to a derived type, not string",
            ])
    }

    @Test("an artifact file may come from an input, and the plan resolves it")
    func artifactFileFromInput() throws {
        let valid = """
            tosca_definitions_version: tosca_simple_yaml_1_0
            topology_template:
              inputs:
                image: { type: string, default: "registry.example.org/seg:1.0" }
              node_templates:
                vm: { type: Compute }
                app:
                  type: tosca.nodes.SoftwareComponent
                  artifacts:
                    image:
                      file: { get_input: image }
                      type: tosca.artifacts.Deployment.Image.Container.Docker
                  requirements:
                    - host: vm
            """
        let broken = valid.replacingOccurrences(
            of: "      requirements:",
            with: "        broken:\n          file: { get_input: missing }\n      requirements:")
        let directory = try TemporaryDirectory()
        let invalid = ToscaProcessor.validate(path: try directory.write("broken.yaml", broken).path)
        #expect(
            invalid.errors.map(summary) == [
                "14:30: error: unknown-input: get_input refers to undefined input 'missing'; expected one of: image"
            ])
        let (result, plan) = ToscaProcessor.plan(
            path: try directory.write("valid.yaml", valid).path, options: ValidationOptions())
        #expect(result.errors.isEmpty)
        let app = try #require(plan?.json["nodes"]?["app"])
        #expect(app["artifacts"]?["image"]?["file"] == .string("registry.example.org/seg:1.0"))
    }

    @Test(
        "value types written by habit get the TOSCA name as a hint",
        arguments: [
            ("int", "integer"), ("bool", "boolean"), ("dict", "map"), ("strng", "string"),
        ])
    func habitualTypeNames(_ written: String, _ expected: String) throws {
        let result = try validate(
            """
            tosca_definitions_version: tosca_simple_yaml_1_3
            topology_template:
              inputs:
                n: { type: \(written) }
            """)
        #expect(result.errors.map(\.message) == ["unknown data type '\(written)'; did you mean '\(expected)'?"])
    }

    @Test("a types file that redefines a spec example type replaces it silently")
    func redefinedExampleType() throws {
        let result = try validate(
            """
            tosca_definitions_version: tosca_simple_yaml_1_0
            node_types:
              tosca.nodes.Container.Application.Docker:
                derived_from: tosca.nodes.Container.Application
                properties:
                  environment: { type: map, required: false, entry_schema: { type: string } }
            topology_template:
              node_templates:
                vm: { type: Compute }
                runtime:
                  type: tosca.nodes.Container.Runtime
                  requirements:
                    - host: vm
                app:
                  type: tosca.nodes.Container.Application.Docker
                  properties:
                    environment: { MODE: batch }
                  requirements:
                    - host: runtime
            """)
        #expect(result.diagnostics.map(summary) == [])
    }
}
