import Foundation
import Testing

@testable import TOSCA

/// How the planner states operations that types files define: their files, relationship operations inherited from a
/// relationship type, unset optional properties, and the ordering of one target's many sources.
struct PlannerOperationsTests {
    /// A template in DIR importing DIR/types/types.yaml, whose operations name files beside the types file.
    static func write(_ files: [String: String]) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "deployctl-planops-\(UUID().uuidString.prefix(8))")
        for (name, text) in files {
            let url = directory.appendingPathComponent(name)
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        return directory.appendingPathComponent("template.yaml").path
    }

    static let types = """
        tosca_definitions_version: tosca_simple_yaml_1_3
        relationship_types:
          test.Joins:
            derived_from: tosca.relationships.ConnectsTo
            interfaces:
              Configure:
                post_configure_source: ../recipes/join.yml
                remove_source: ../recipes/leave.yml
        node_types:
          test.Server:
            derived_from: tosca.nodes.SoftwareComponent
            capabilities:
              endpoint: tosca.capabilities.Endpoint
            interfaces:
              Standard:
                configure: ../recipes/server.yml
          test.Member:
            derived_from: tosca.nodes.SoftwareComponent
            properties:
              label:
                type: string
                required: false
            requirements:
              - server:
                  capability: tosca.capabilities.Endpoint
                  relationship: test.Joins
            interfaces:
              Standard:
                create:
                  implementation: { primary: ../recipes/member.yml, dependencies: [ ../recipes/files/a.txt ] }
                  inputs:
                    label: { get_property: [ SELF, label ] }
        """

    static let template = """
        tosca_definitions_version: tosca_simple_yaml_1_3
        imports: [ types/types.yaml ]
        topology_template:
          node_templates:
            box:
              type: tosca.nodes.Compute
            server:
              type: test.Server
              requirements: [ { host: box } ]
            pool:
              type: tosca.nodes.Compute
              capabilities:
                scalable: { properties: { min_instances: 0, max_instances: 5, default_instances: 3 } }
            member:
              type: test.Member
              requirements:
                - host: pool
                - server: { node: server, capability: tosca.capabilities.Endpoint }
        """

    static let files = [
        "template.yaml": template, "types/types.yaml": types, "recipes/server.yml": "", "recipes/member.yml": "",
        "recipes/files/a.txt": "", "recipes/join.yml": "", "recipes/leave.yml": "",
    ]

    @Test("files named in an imported types file are stated relative to the template")
    func rebasedImplementations() throws {
        let path = try Self.write(Self.files)
        let (result, plan) = ToscaProcessor.plan(path: path, options: ValidationOptions())
        let planned = try #require(plan, "\(result.diagnostics.map(\.message))")
        // The validator resolves them against the types file too: they exist, so no file-not-found warning.
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics.map(\.message))")
        let configure = try #require(planned.steps.first { $0.id == "server[0].Standard.configure" })
        #expect(configure.implementation == .string("recipes/server.yml"))
        let create = try #require(planned.steps.first { $0.id == "member[0].Standard.create" })
        #expect(create.implementation?["primary"] == .string("recipes/member.yml"))
        #expect(create.implementation?["dependencies"] == .array([.string("recipes/files/a.txt")]))
    }

    @Test("a relationship named by its type brings the type's operations; one target's sources join in parallel")
    func inheritedRelationshipOperations() throws {
        let path = try Self.write(Self.files)
        let planned = try #require(ToscaProcessor.plan(path: path, options: ValidationOptions()).1)
        let joins = planned.steps.filter { $0.operation == "post_configure_source" }
        #expect(joins.map(\.instance) == ["member[0]", "member[1]", "member[2]"])
        #expect(joins.allSatisfy { $0.implementation == .string("recipes/join.yml") })
        #expect(Set(joins.map(\.level)).count == 1, "the joins wait on each other: \(joins.map(\.level))")
        let leaves = planned.steps.filter { $0.operation == "remove_source" }
        #expect(leaves.count == 3 && leaves.allSatisfy { $0.instance == "server[0]" })
    }

    @Test("get_property of a declared property left unset is null, not a reference left for deployment time")
    func unsetOptionalProperty() throws {
        let path = try Self.write(Self.files)
        let planned = try #require(ToscaProcessor.plan(path: path, options: ValidationOptions()).1)
        let create = try #require(planned.steps.first { $0.id == "member[0].Standard.create" })
        #expect(create.inputs["label"] == .null)
    }
}
