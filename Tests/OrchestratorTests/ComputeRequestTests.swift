import Foundation
import TOSCA
import Testing

@testable import Orchestrator

/// What the Deployer reads from a template for a Compute node beyond its capabilities: the networks of the ports
/// bound to it and its cloud-init user data.
@Suite("A Compute node's ports and user data, as the Deployer reads them")
struct ComputeRequestTests {
    func plan(_ text: String, files: [String: String] = [:]) throws -> Plan {
        let directory = NSTemporaryDirectory() + "deployctl-request-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try text.write(toFile: directory + "/template.yaml", atomically: true, encoding: .utf8)
        for (name, content) in files {
            try content.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8)
        }
        let (result, plan) = ToscaProcessor.plan(path: directory + "/template.yaml", options: ValidationOptions())
        return try #require(plan, "\(result.errors.map(\.message))")
    }

    @Test("ports bound to a node name its networks in their order: network_name, else network_id, else the node's name")
    func networks() throws {
        let plan = try plan(
            """
            tosca_definitions_version: tosca_simple_yaml_1_3
            topology_template:
              node_templates:
                server: { type: tosca.nodes.Compute }
                other: { type: tosca.nodes.Compute }
                storage: { type: tosca.nodes.network.Network, properties: { network_name: storage-net } }
                by_id: { type: tosca.nodes.network.Network, properties: { network_id: 6f0e } }
                plain: { type: tosca.nodes.network.Network }
                second:
                  type: tosca.nodes.network.Port
                  properties: { order: 1 }
                  requirements: [ { binding: server }, { link: storage } ]
                first:
                  type: tosca.nodes.network.Port
                  properties: { order: 0 }
                  requirements: [ { binding: server }, { link: by_id } ]
                third:
                  type: tosca.nodes.network.Port
                  properties: { order: 2 }
                  requirements: [ { binding: server }, { link: plain } ]
                elsewhere:
                  type: tosca.nodes.network.Port
                  requirements: [ { binding: other }, { link: storage } ]
            """)
        #expect(Deployer.networks(of: "server", in: plan) == ["6f0e", "storage-net", "plain"])
        #expect(Deployer.networks(of: "other", in: plan) == ["storage-net"])
        #expect(Deployer.networks(of: "storage", in: plan).isEmpty)
    }

    @Test("user data: the artifact named user_data or of type deployctl.artifacts.CloudInit; a missing file is named")
    func userData() throws {
        let plan = try plan(
            """
            tosca_definitions_version: tosca_simple_yaml_1_3
            topology_template:
              node_templates:
                named:
                  type: tosca.nodes.Compute
                  artifacts:
                    user_data: { type: tosca.artifacts.File, file: boot.yaml }
                none: { type: tosca.nodes.Compute }
                missing:
                  type: tosca.nodes.Compute
                  artifacts:
                    user_data: { type: tosca.artifacts.File, file: not-there.yaml }
            """, files: ["boot.yaml": "#cloud-config\npackage_update: true\n"])
        #expect(try Deployer.userData(of: "named", in: plan) == "#cloud-config\npackage_update: true\n")
        #expect(try Deployer.userData(of: "none", in: plan) == nil)
        #expect(throws: StepError.self) { try Deployer.userData(of: "missing", in: plan) }
        do {
            _ = try Deployer.userData(of: "missing", in: plan)
        } catch let error as StepError {
            #expect(error.description.contains("not-there.yaml (artifact user_data)"), "\(error)")
        }
    }

    @Test("endpoints: the node's own, and the public ones of what it hosts, give its ports and its public address")
    func endpoints() throws {
        let path = BoneDensityClusterTests.template
        let (result, planned) = ToscaProcessor.plan(path: path, options: ValidationOptions())
        let plan = try #require(planned, "\(result.errors.map(\.message))")
        // The portal (hosted) has a public https endpoint: its host gets a public address and port 443.
        #expect(Deployer.endpoints(of: "portal_host", in: plan) == ([443], true))
        // The front-end's own endpoint is public SSH; the SLURM controller it hosts listens privately.
        #expect(Deployer.endpoints(of: "front", in: plan) == ([22], true))
        #expect(Deployer.endpoints(of: "cpu_worker", in: plan) == ([], false))
        #expect(Set(Deployer.hostedNodes(on: "cpu_worker", in: plan)) == ["cpu_slurm_worker", "cpu_runtime"])
    }
}
