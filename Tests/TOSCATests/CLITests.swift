import Foundation
import Testing

@testable import TOSCA

/// The deployctl binary, run as a user would: exit codes, text and JSON output, the import cache commands.
@Suite(
    "deployctl command line",
    .enabled(if: Paths.deployctlBuilt, "needs .build/debug/deployctl; run `swift build` first"))
struct CLITests {
    /// Runs deployctl with DEPLOYCTL_HOME pointing at `home` (an empty temporary directory by default).
    func deployctl(_ arguments: [String], home: URL? = nil) throws -> ProcessOutput {
        let scratch = try TemporaryDirectory()
        return try runProcess(
            Paths.deployctl, arguments,
            environment: ["DEPLOYCTL_HOME": (home ?? scratch.url).path, "NO_COLOR": "1"],
            currentDirectory: Paths.packageRoot)
    }

    func fixture(_ name: String) -> String { Paths.fixture(name).path }

    func json(_ output: ProcessOutput) throws -> [String: Any] {
        try #require(try parseJSON(output.stdout) as? [String: Any], "not a JSON object: \(output.stdout)")
    }

    // MARK: validate

    @Test("validate exits 0 for a valid template and says so")
    func validExitCode() throws {
        let output = try deployctl(["validate", fixture("valid/functions.yaml")])
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdout == "\(fixture("valid/functions.yaml")): valid (tosca_simple_yaml_1_3)\n")
        #expect(output.stderr.isEmpty)
    }

    @Test("warnings alone keep exit code 0; --quiet hides them")
    func warningsOnly() throws {
        let output = try deployctl(["validate", fixture("valid/v1_2-imports.yaml")])
        #expect(output.status == 0)
        #expect(output.stdout.hasSuffix(": valid (tosca_simple_yaml_1_2), 1 warning(s)\n"))
        #expect(output.stderr.contains("warning: the named import form '- legacy: …' is deprecated"))
        let quiet = try deployctl(["validate", "--quiet", fixture("valid/v1_2-imports.yaml")])
        #expect(quiet.status == 0)
        #expect(quiet.stderr.isEmpty)
    }

    @Test("validate exits 1 for an invalid template, with file:line:column, the YAML path and a caret")
    func invalidExitCode() throws {
        let path = fixture("invalid/misspelt-property.yaml")
        let output = try deployctl(["validate", path])
        #expect(output.status == 1)
        #expect(output.stdout == "\(path): invalid (tosca_simple_yaml_1_3): 1 error(s), 0 warning(s)\n")
        let lines = output.stderr.split(separator: "\n").map(String.init)
        #expect(
            lines.first
                == "\(path):13:13: error: unknown property 'disk_sise' for capability 'host' of node template 'server' "
                + "(type tosca.capabilities.Compute); did you mean 'disk_size'? [unknown-property]")
        #expect(lines.contains("    at topology_template.node_templates.server.capabilities.host.properties.disk_sise"))
        #expect(lines.contains(" 13 |             disk_sise: 10 GB"))
        #expect(lines.contains("    |             ^~~~~~~~~"))
    }

    @Test("one invalid file among valid ones makes the run exit 1, and every file is reported")
    func mixedFiles() throws {
        let output = try deployctl([
            "validate", fixture("valid/collections.yaml"), fixture("invalid/type-mismatch.yaml"),
            fixture("valid/workflows.yaml"),
        ])
        #expect(output.status == 1)
        #expect(output.stdout.split(separator: "\n").count == 3)
        #expect(output.stdout.contains("type-mismatch.yaml: invalid"))
    }

    @Test(
        "usage and I/O problems exit 2",
        arguments: [
            ["validate", "/nonexistent/template.yaml"],
            ["validate"],
            ["validate", "--format", "yaml", "x.yaml"],
            ["validate", "--no-such-option", "x.yaml"],
            ["validate", "-i", "no-equals-sign", "x.yaml"],
            ["validate", "--import-map", "/nonexistent/map.yaml", "x.yaml"],
            ["plan", "/nonexistent/template.yaml"],
            ["frobnicate"],
        ])
    func usageErrors(arguments: [String]) throws {
        let output = try deployctl(arguments)
        #expect(output.status == 2, "stdout: \(output.stdout)\nstderr: \(output.stderr)")
        #expect(!output.stderr.isEmpty)
    }

    @Test("--format json gives every file's diagnostics as data")
    func jsonFormat() throws {
        let invalid = fixture("invalid/misspelt-property.yaml")
        let output = try deployctl(["validate", "--format", "json", fixture("valid/collections.yaml"), invalid])
        #expect(output.status == 1)
        #expect(output.stderr.isEmpty)
        let document = try json(output)
        #expect(document["valid"] as? Bool == false)
        let files = try #require(document["files"] as? [[String: Any]])
        #expect(files.count == 2)
        #expect(files[0]["valid"] as? Bool == true)
        #expect((files[0]["diagnostics"] as? [Any])?.isEmpty == true)
        #expect(files[1]["file"] as? String == invalid)
        #expect(files[1]["valid"] as? Bool == false)
        #expect(files[1]["tosca_definitions_version"] as? String == "tosca_simple_yaml_1_3")
        #expect(files[1]["errors"] as? Int == 1)
        #expect(files[1]["warnings"] as? Int == 0)
        let diagnostics = try #require(files[1]["diagnostics"] as? [[String: Any]])
        let diagnostic = try #require(diagnostics.first)
        #expect(diagnostic["severity"] as? String == "error")
        #expect(diagnostic["code"] as? String == "unknown-property")
        #expect(diagnostic["line"] as? Int == 13)
        #expect(diagnostic["column"] as? Int == 13)
        #expect((diagnostic["file"] as? String)?.hasSuffix("invalid/misspelt-property.yaml") == true)
        #expect(
            diagnostic["path"] as? String
                == "topology_template.node_templates.server.capabilities.host.properties.disk_sise")
        #expect((diagnostic["message"] as? String)?.contains("did you mean 'disk_size'?") == true)

        let valid = try json(try deployctl(["validate", "--format", "json", fixture("valid/collections.yaml")]))
        #expect(valid["valid"] as? Bool == true)
    }

    @Test("--import-map resolves URL imports for one run")
    func importMapOption() throws {
        let template = fixture("valid/v1_3-repository-url-import.yaml")
        #expect(try deployctl(["validate", template]).status == 1)
        let mapped = try deployctl(["validate", "--import-map", fixture("import-map.yaml"), template])
        #expect(mapped.status == 0, "\(mapped.stderr)")
    }

    // MARK: plan

    @Test("plan --format json prints the v1 plan with the inputs applied")
    func planJSON() throws {
        let output = try deployctl([
            "plan", "templates/bone-density-study.yaml", "--format", "json", "-i", "cpu_workers=3", "-i",
            "gpu_workers=1",
        ])
        #expect(output.status == 0, "\(output.stderr)")
        let plan = try json(output)
        #expect(plan["format"] as? String == "deployctl-plan/v1")
        let nodes = try #require(plan["nodes"] as? [String: Any])
        #expect((nodes["cpu_worker"] as? [String: Any])?["count"] as? Int == 3)
        #expect((nodes["gpu_worker"] as? [String: Any])?["count"] as? Int == 1)
        let instances = try #require(plan["instances"] as? [[String: Any]])
        #expect(instances.contains { $0["id"] as? String == "front[0]" })
        #expect(plan["steps"] is [[String: Any]])
        #expect(plan["levels"] is [[String]])
    }

    @Test("plan --format dot draws the instance graph")
    func planDot() throws {
        let output = try deployctl(["plan", "templates/bone-density-study.yaml", "--format", "dot"])
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdout.hasPrefix("digraph plan {\n"))
        #expect(output.stdout.contains("\"slurm_controller[0]\" -> \"front[0]\" [label=\"HostedOn\", style=solid];"))
        #expect(output.stdout.hasSuffix("}\n"))
    }

    @Test("plan of an invalid template exits 1 without a plan")
    func planInvalid() throws {
        let output = try deployctl(["plan", fixture("invalid/unknown-type.yaml")])
        #expect(output.status == 1)
        #expect(output.stdout.isEmpty)
        #expect(output.stderr.contains("[unknown-type]"))
        #expect(output.stderr.hasSuffix("invalid: 1 error(s); no plan\n"))
        let missingInput = try deployctl(["plan", "templates/gpu-segmentation-cluster.yaml"])
        #expect(missingInput.status == 1)
        #expect(missingInput.stderr.contains("pass -i data_volume_id=VALUE"))
    }

    @Test("plan reads input values from --inputs FILE")
    func inputsFile() throws {
        let directory = try TemporaryDirectory()
        let inputs = try directory.write("inputs.yaml", "data_volume_id: vol-42\ngpu_workers: 3\n")
        let output = try deployctl([
            "plan", "templates/gpu-segmentation-cluster.yaml", "--inputs", inputs.path, "--format", "json",
        ])
        #expect(output.status == 0, "\(output.stderr)")
        let plan = try json(output)
        #expect((plan["inputs"] as? [String: Any])?["data_volume_id"] as? String == "vol-42")
        #expect(((plan["nodes"] as? [String: Any])?["gpu_worker"] as? [String: Any])?["count"] as? Int == 3)
    }

    // MARK: types

    @Test("types add, list and remove manage the cache under --home, and validation then works offline")
    func typesCommands() throws {
        let home = try TemporaryDirectory()
        let work = try TemporaryDirectory()
        let url = "https://types.example.org/cli/custom_types.yaml"
        let types = try work.write(
            "custom_types.yaml",
            """
            tosca_definitions_version: tosca_simple_yaml_1_3
            node_types:
              cli.nodes.Thing:
                derived_from: tosca.nodes.Root
            """)
        let template = try work.write(
            "service.yaml",
            """
            tosca_definitions_version: tosca_simple_yaml_1_3
            imports:
              - \(url)
            topology_template:
              node_templates:
                thing:
                  type: cli.nodes.Thing
            """)
        let empty = try deployctl(["types", "list", "--home", home.url.path])
        #expect(empty.status == 0)
        #expect(empty.stdout.hasPrefix("the import cache is empty"))

        let uncached = try deployctl(["validate", "--home", home.url.path, template.path])
        #expect(uncached.status == 1)
        #expect(uncached.stderr.contains("`deployctl types add \(url) FILE`"))

        let add = try deployctl(["types", "add", url, types.path, "--home", home.url.path])
        #expect(add.status == 0, "\(add.stderr)")
        #expect(add.stdout.hasPrefix("cached \(url) ("))

        let list = try deployctl(["types", "list", "--format", "json", "--home", home.url.path])
        #expect(list.status == 0)
        let entries = try #require(try parseJSON(list.stdout) as? [[String: Any]])
        #expect(entries.map { $0["url"] as? String } == [url])
        #expect(entries.first?["bytes"] as? Int == (try Data(contentsOf: types)).count)
        let text = try deployctl(["types", "list", "--home", home.url.path])
        #expect(text.stdout.hasPrefix("\(url)  ("))

        let cached = try deployctl(["validate", "--home", home.url.path, template.path])
        #expect(cached.status == 0, "\(cached.stderr)")
        // DEPLOYCTL_HOME works like --home.
        #expect(try deployctl(["validate", template.path], home: home.url).status == 0)

        let remove = try deployctl(["types", "remove", url, "--home", home.url.path])
        #expect(remove.status == 0)
        #expect(remove.stdout == "removed \(url)\n")
        #expect(try deployctl(["validate", "--home", home.url.path, template.path]).status == 1)
        let again = try deployctl(["types", "remove", url, "--home", home.url.path])
        #expect(again.status == 2)
        #expect(again.stderr == "error: '\(url)' is not in the import cache\n")
    }

    @Test("types add of a file that does not exist exits 2")
    func typesAddMissingFile() throws {
        let home = try TemporaryDirectory()
        let output = try deployctl([
            "types", "add", "https://x.example.org/t.yaml", "/nonexistent/t.yaml", "--home", home.url.path,
        ])
        #expect(output.status == 2)
        #expect(output.stderr == "error: no such file '/nonexistent/t.yaml'\n")
    }
}
