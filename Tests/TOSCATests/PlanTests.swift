import Foundation
import Testing

@testable import TOSCA

@Suite("Deployment plans")
struct PlanTests {
    /// A compute hosting a web server (with a volume attached), and a scalable worker pool whose size comes from an
    /// input, each worker hosting an agent that depends on the web server.
    static let template = """
        tosca_definitions_version: tosca_simple_yaml_1_3

        node_types:
          example.nodes.Agent:
            derived_from: tosca.nodes.SoftwareComponent
            properties:
              label:
                type: string

        topology_template:
          inputs:
            workers:
              type: integer
              default: 2
              constraints:
                - in_range: [ 0, 5 ]
            app_name:
              type: string
              default: imaging

          node_templates:
            front:
              type: Compute
              capabilities:
                host:
                  properties:
                    num_cpus: 4
              requirements:
                - local_storage:
                    node: data
                    relationship:
                      type: AttachesTo
                      properties:
                        location: /data

            web:
              type: tosca.nodes.WebServer
              requirements:
                - host: front
              interfaces:
                Standard:
                  operations:
                    create: scripts/create.sh
                    configure:
                      implementation: scripts/configure.sh
                      inputs:
                        greeting: { concat: [ "hello ", { get_input: app_name } ] }
                        cpus: { get_property: [ HOST, host, num_cpus ] }
                        address: { get_attribute: [ HOST, private_address ] }
                    start: scripts/start.sh

            worker:
              type: Compute
              capabilities:
                scalable:
                  properties:
                    min_instances: 0
                    max_instances: 5
                    default_instances: { get_input: workers }

            agent:
              type: example.nodes.Agent
              properties:
                label: { concat: [ { get_input: app_name }, "-agent" ] }
              requirements:
                - host: worker
                - dependency: web
              interfaces:
                Standard:
                  operations:
                    create: scripts/create.sh
                    start: scripts/start.sh

            data:
              type: BlockStorage
              properties:
                size: 10 GB

          outputs:
            front_address:
              value: { get_attribute: [ front, public_address ] }
            agent_label:
              value: { get_property: [ agent, label ] }
        """

    /// Plans `text` (with the scripts it names present) and returns the validation result and the plan.
    func plan(_ text: String = Self.template, inputs: [String: String] = [:]) throws -> (ValidationResult, Plan?) {
        let directory = try TemporaryDirectory()
        for script in ["create", "configure", "start"] { try directory.write("scripts/\(script).sh", "exit 0\n") }
        let file = try directory.write("service.yaml", text)
        return ToscaProcessor.plan(path: file.path, options: ValidationOptions(inputs: inputs))
    }

    func requirePlan(_ text: String = Self.template, inputs: [String: String] = [:]) throws -> Plan {
        let (result, plan) = try plan(text, inputs: inputs)
        #expect(result.errors.isEmpty, "\(result.errors.map(summary))")
        return try #require(plan)
    }

    func step(_ plan: Plan, _ id: String) throws -> Plan.Step {
        try #require(plan.steps.first { $0.id == id }, "no step \(id) in \(plan.steps.map(\.id))")
    }

    @Test("a scalable node expands to default_instances from its input, and hosted nodes follow their host")
    func instanceExpansion() throws {
        let plan = try requirePlan()
        #expect(plan.instances.filter { $0.node == "worker" }.map(\.id) == ["worker[0]", "worker[1]"])
        let overridden = try requirePlan(inputs: ["workers": "3"])
        #expect(
            overridden.instances.filter { $0.node == "worker" }.map(\.id) == ["worker[0]", "worker[1]", "worker[2]"])
        #expect(overridden.instances.filter { $0.node == "agent" }.count == 3)
        #expect(overridden.instances.filter { $0.node == "front" }.map(\.id) == ["front[0]"])
        let none = try requirePlan(inputs: ["workers": "0"])
        #expect(none.instances.allSatisfy { $0.node != "worker" && $0.node != "agent" })
        #expect(none.steps.allSatisfy { $0.node != "agent" })
    }

    @Test("hosted instances pair with the host instance of the same index")
    func hostedOnPairing() throws {
        let plan = try requirePlan(inputs: ["workers": "3"])
        for index in 0..<3 {
            let agent = try #require(plan.instances.first { $0.id == "agent[\(index)]" })
            #expect(agent.host == "worker[\(index)]")
            #expect(agent.index == index)
        }
        let hosted = plan.edges.filter { $0.kind == "HostedOn" && $0.from.hasPrefix("agent") }
        #expect(
            hosted.map { "\($0.from)->\($0.to)" } == [
                "agent[0]->worker[0]", "agent[1]->worker[1]", "agent[2]->worker[2]",
            ])
        #expect(try #require(plan.instances.first { $0.id == "web[0]" }).host == "front[0]")
        // A dependency is not paired: every agent waits for the one web server.
        let dependsOn = plan.edges.filter { $0.kind == "DependsOn" }
        #expect(dependsOn.count == 3)
        #expect(dependsOn.allSatisfy { $0.to == "web[0]" })
    }

    @Test("particular instance numbers replace the count; hosted nodes keep their host's numbers and pairing")
    func instanceNumbers() throws {
        let directory = try TemporaryDirectory()
        for script in ["create", "configure", "start"] { try directory.write("scripts/\(script).sh", "exit 0\n") }
        let file = try directory.write("service.yaml", Self.template)
        var options = ValidationOptions(inputs: ["workers": "3"])
        options.instanceIndices = ["worker": [4, 0, 2, 2]]
        let plan = try #require(ToscaProcessor.plan(path: file.path, options: options).1)
        #expect(plan.instances.filter { $0.node == "worker" }.map(\.id) == ["worker[0]", "worker[2]", "worker[4]"])
        #expect(plan.instances.filter { $0.node == "agent" }.map(\.host) == ["worker[0]", "worker[2]", "worker[4]"])
        #expect(plan.instances.filter { $0.node == "agent" }.map(\.index) == [0, 2, 4])
        #expect(plan.steps.contains { $0.id.hasPrefix("agent[4].") })
        #expect(!plan.steps.contains { $0.instance == "worker[1]" || $0.instance == "agent[1]" })
        options.instanceIndices = ["nothing": [1]]
        let (result, none) = ToscaProcessor.plan(path: file.path, options: options)
        #expect(none == nil)
        #expect(result.errors.contains { $0.message.contains("no node template named 'nothing'") })
    }

    @Test("a volume attachment waits for both creations, and what runs on the compute waits for it")
    func attachStep() throws {
        let plan = try requirePlan()
        let attach = try step(plan, "front[0].attach.data[0]")
        #expect(attach.action == "attach_volume")
        #expect(attach.target == "data[0]")
        #expect(Set(attach.after) == ["front[0].create_compute", "data[0].create_volume"])
        #expect(attach.inputs == .object([("location", .string("/data"))]))
        let create = try step(plan, "web[0].Standard.create")
        #expect(create.after.contains(attach.id))
        #expect(create.level > attach.level)
        #expect(try attach.level > step(plan, "data[0].create_volume").level)
        #expect(try attach.level > step(plan, "front[0].create_compute").level)
        let edge = try #require(plan.edges.first { $0.kind == "AttachesTo" })
        #expect(edge.relationship == "tosca.relationships.AttachesTo")
        #expect(edge.capability == "attachment")
    }

    @Test("lifecycle operations run create, then configure, then start")
    func lifecycleOrder() throws {
        let plan = try requirePlan()
        let create = try step(plan, "web[0].Standard.create")
        let configure = try step(plan, "web[0].Standard.configure")
        let start = try step(plan, "web[0].Standard.start")
        #expect(configure.after.contains(create.id))
        #expect(start.after.contains(configure.id))
        #expect(create.level < configure.level && configure.level < start.level)
        #expect(create.implementation == .string("scripts/create.sh"))
        // The agent has no configure: start follows create directly, after the web server it depends on started.
        let agentStart = try step(plan, "agent[0].Standard.start")
        #expect(agentStart.after.contains("agent[0].Standard.create"))
        #expect(try step(plan, "agent[0].Standard.create").after.contains(start.id))
    }

    @Test("every step's level is above the levels of the steps it waits for, and levels list every step once")
    func levelsRespectAfter() throws {
        let plan = try requirePlan(inputs: ["workers": "3"])
        let levels = Dictionary(uniqueKeysWithValues: plan.steps.map { ($0.id, $0.level) })
        for step in plan.steps {
            for dependency in step.after {
                let before = try #require(levels[dependency], "\(step.id) waits for unknown step \(dependency)")
                #expect(before < step.level, "\(step.id) at \(step.level) waits for \(dependency) at \(before)")
            }
            if !step.after.isEmpty {
                #expect(
                    step.level == step.after.compactMap { levels[$0] }.max()! + 1,
                    "\(step.id) is not as early as it could be")
            }
        }
        #expect(plan.levels.flatMap { $0 }.sorted() == plan.steps.map(\.id).sorted())
        for (index, level) in plan.levels.enumerated() {
            #expect(level.allSatisfy { levels[$0] == index })
        }
        #expect(plan.levels.first?.contains("front[0].create_compute") == true)
    }

    @Test("a DependsOn cycle is reported and gives no plan")
    func dependencyCycle() throws {
        let (result, plan) = try plan(
            """
            tosca_definitions_version: tosca_simple_yaml_1_3
            topology_template:
              node_templates:
                a:
                  type: tosca.nodes.Root
                  requirements:
                    - dependency: b
                b:
                  type: tosca.nodes.Root
                  requirements:
                    - dependency: a
            """)
        #expect(plan == nil)
        // Validation already reports it, once, at the requirement that closes the cycle (b's `dependency: a`).
        let cycles = result.errors.filter { $0.code == "dependency-cycle" }
        #expect(cycles.count == 1)
        let cycle = try #require(cycles.first)
        #expect(cycle.message.contains("a → b → a"))
        #expect(cycle.location?.line == 11)
        #expect(cycle.location?.column == 23)
    }

    @Test("the JSON plan has the v1 format and resolves what can be resolved before deployment")
    func jsonPlan() throws {
        let plan = try requirePlan(inputs: ["app_name": "ct"])
        let json = plan.json
        #expect(json["format"] == .string("deployctl-plan/v1"))
        #expect(json["tosca_definitions_version"] == .string("tosca_simple_yaml_1_3"))
        #expect(json["inputs"]?["workers"] == .int(2))
        #expect(json["inputs"]?["app_name"] == .string("ct"))
        // concat of get_input
        #expect(json["nodes"]?["agent"]?["properties"]?["label"] == .string("ct-agent"))
        #expect(json["outputs"]?["agent_label"] == .string("ct-agent"))
        let configure = try step(plan, "web[0].Standard.configure")
        #expect(configure.inputs["greeting"] == .string("hello ct"))
        // get_property through HOST and a capability
        #expect(configure.inputs["cpus"] == .int(4))
        // get_attribute is known only after deployment: kept as a typed reference
        #expect(
            configure.inputs["address"]
                == .object([
                    ("function", .string("get_attribute")),
                    ("args", .array([.string("HOST"), .string("private_address")])),
                    ("context", .string("web")),
                ]))
        #expect(json["outputs"]?["front_address"]?["function"] == .string("get_attribute"))

        // The serialised text is JSON that a consumer can parse.
        let parsed = try #require(try parseJSON(json.serialized()) as? [String: Any])
        #expect(parsed["format"] as? String == "deployctl-plan/v1")
        let steps = try #require(parsed["steps"] as? [[String: Any]])
        #expect(steps.count == plan.steps.count)
        #expect(steps.allSatisfy { $0["id"] is String && $0["level"] is Int && $0["after"] is [Any] })
        #expect((parsed["levels"] as? [[String]])?.count == plan.levels.count)
        #expect((parsed["instances"] as? [[String: Any]])?.count == plan.instances.count)
    }

    @Test("the dot output draws every instance and every edge")
    func dotOutput() throws {
        let plan = try requirePlan()
        let dot = plan.dot
        #expect(dot.hasPrefix("digraph plan {\n"))
        #expect(dot.hasSuffix("}\n"))
        for instance in plan.instances { #expect(dot.contains("  \"\(instance.id)\";\n")) }
        #expect(dot.contains("\"agent[1]\" -> \"worker[1]\" [label=\"HostedOn\", style=solid];"))
        #expect(dot.contains("\"front[0]\" -> \"data[0]\" [label=\"AttachesTo\", style=dashed];"))
        #expect(dot.contains("\"agent[0]\" -> \"web[0]\" [label=\"DependsOn\", style=dashed];"))
        #expect(dot.components(separatedBy: " -> ").count - 1 == plan.edges.count)
    }

    @Test("the text plan lists instances and levels")
    func textPlan() throws {
        let plan = try requirePlan()
        #expect(plan.text.contains("  agent[1]  (on worker[1])\n"))
        #expect(plan.text.contains("  level 0:\n    front[0].create_compute\n"))
        #expect(plan.text.contains("\(plan.steps.count) step(s) in \(plan.levels.count) level(s)"))
    }

    @Test("plan needs every required input; validate does not")
    func requiredInputs() throws {
        let text = Self.template.replacingOccurrences(of: "      default: imaging\n", with: "")
        let (result, plan) = try plan(text)
        #expect(plan == nil)
        #expect(
            result.errors.map(\.message) == ["input 'app_name' is required and has no default; pass -i app_name=VALUE"])
        #expect(try validate(text).isValid)
        #expect(try requirePlan(text, inputs: ["app_name": "x"]).instances.isEmpty == false)
    }

    @Test("an input value that breaks the input's constraint gives no plan")
    func inputConstraint() throws {
        let (result, plan) = try plan(inputs: ["workers": "9"])
        #expect(plan == nil)
        #expect(result.errors.map(\.code) == ["constraint-violated"])
    }

    @Test("abstract nodes (directives) are not instantiated")
    func abstractNodes() throws {
        let plan = try requirePlan(
            """
            tosca_definitions_version: tosca_simple_yaml_1_3
            topology_template:
              node_templates:
                server:
                  type: Compute
                existing_db:
                  type: tosca.nodes.DBMS
                  directives: [ select ]
            """)
        #expect(plan.instances.map(\.id) == ["server[0]"])
        #expect(plan.json["nodes"]?["existing_db"]?["directives"] == .array([.string("select")]))
    }

    // MARK: Shipped templates

    static let shipped = ["bone-density-study.yaml", "gpu-segmentation-cluster.yaml"]

    @Test("the shipped templates validate with no errors and plan with a front node", arguments: shipped)
    func shippedTemplates(name: String) throws {
        let path = Paths.templates.appendingPathComponent(name).path
        let result = ToscaProcessor.validate(path: path)
        #expect(result.errors.isEmpty, "\(result.errors.map(summary))")
        #expect(result.version == .v1_3)
        let inputs = name.hasPrefix("gpu") ? ["data_volume_id": "vol-123"] : ["cpu_workers": "2", "gpu_workers": "1"]
        let (planned, plan) = ToscaProcessor.plan(path: path, options: ValidationOptions(inputs: inputs))
        #expect(planned.errors.isEmpty, "\(planned.errors.map(summary))")
        let unwrapped = try #require(plan)
        #expect(unwrapped.instances.contains { $0.id == "front[0]" && $0.node == "front" })
        #expect(unwrapped.json["nodes"]?["front"]?["count"] == .int(1))
        #expect(unwrapped.steps.contains { $0.id == "front[0].create_compute" })
    }

    @Test("the bone-density study boots the requested worker pools")
    func boneDensityPools() throws {
        let path = Paths.templates.appendingPathComponent("bone-density-study.yaml").path
        let (_, defaults) = ToscaProcessor.plan(path: path, options: ValidationOptions())
        let plan = try #require(defaults)
        #expect(plan.instances.filter { $0.node == "cpu_worker" }.count == 2)
        #expect(plan.instances.filter { $0.node == "gpu_worker" }.isEmpty)
        let (_, scaled) = ToscaProcessor.plan(
            path: path, options: ValidationOptions(inputs: ["cpu_workers": "3", "gpu_workers": "2"]))
        let more = try #require(scaled)
        #expect(
            more.instances.filter { $0.node == "cpu_slurm_worker" }.map(\.host) == [
                "cpu_worker[0]", "cpu_worker[1]", "cpu_worker[2]",
            ])
        #expect(more.instances.filter { $0.node == "gpu_worker" }.count == 2)
    }

    @Test("a volume several hosts mount is attached first on the first host that does not scale; the others wait")
    func sharedVolumeOrder() throws {
        let path = Paths.templates.appendingPathComponent("bone-density-study.yaml").path
        let (_, planned) = ToscaProcessor.plan(
            path: path, options: ValidationOptions(inputs: ["cpu_workers": "2", "gpu_workers": "1"]))
        let plan = try #require(planned)
        for volume in ["data_volume[0]", "results_volume[0]"] {
            let attachments = plan.steps.filter { $0.action == "attach_volume" && $0.target == volume }
            let home = "front[0].attach.\(volume)"
            let first = try #require(attachments.first { $0.id == home })
            #expect(!first.after.contains { $0.contains(".attach.") }, "\(first.after)")
            let others = attachments.filter { $0.id != home }
            // Workers of both pools, and the portal's host for the results.
            #expect(others.count == (volume == "data_volume[0]" ? 3 : 4), "\(others.map(\.id))")
            for step in others {
                #expect(step.after.contains(home), "\(step.id) waits for \(step.after)")
                #expect(step.level > first.level)
            }
        }
        // A volume one host mounts waits for no other attachment.
        #expect(Set(try step(try requirePlan(), "front[0].attach.data[0]").after).count == 2)
    }
}
