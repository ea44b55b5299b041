import Foundation
import TestBeds
import Testing

/// `deployctl elastic simulate` through the binary: pools from the template, JSON output, and clear errors.
@Suite(
    "deployctl elastic simulate",
    .enabled(if: DeployctlBinary.built, "needs .build/debug/deployctl; run `swift build` first"))
struct ElasticCLITests {
    static let template = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("templates/bone-density-study.yaml").path

    func results(_ arguments: [String]) throws -> [[String: Any]] {
        let run = try DeployctlBinary.run(["elastic", "simulate", "--format", "json"] + arguments)
        #expect(run.status == 0, "\(run.output)")
        let document = try #require(
            try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any], "\(run.output)")
        return document["results"] as? [[String: Any]] ?? []
    }

    @Test("the bone-density template's worker pools are the built-in ones; its inputs change them")
    func templatePools() throws {
        let common = ["--workload", "gpu-burst", "--compare"]
        let builtIn = try results(common)
        let fromTemplate = try results(common + ["--template", Self.template])
        #expect(builtIn.count == 5)
        #expect(
            fromTemplate.map { $0["node_hours"] as? Double } == builtIn.map { $0["node_hours"] as? Double },
            "pools read from the template differ from the built-in ones")
        // Two GPUs per GPU worker: fewer nodes for the same jobs.
        let twoGPUs = try results(common + ["--template", Self.template, "-i", "gpus_per_worker=2"])
        let hours = { (rows: [[String: Any]]) in
            rows.first { $0["policy"] as? String == "offline-bound" }?["node_hours"] as? Double ?? 0
        }
        #expect(hours(twoGPUs) < hours(builtIn))
    }

    @Test("bad options say what is wrong")
    func errors() throws {
        for (arguments, message) in [
            (["--policy", "magic"], "unknown policy 'magic'"),
            (["--idle-time", "nopool=2m"], "there is no pool 'nopool'"),
            (["--boot-time", "soon"], "--boot-time 'soon' is not a duration"),
            (["--template", "/nonexistent.yaml"], "--template /nonexistent.yaml is not valid"),
        ] {
            let run = try DeployctlBinary.run(["elastic", "simulate"] + arguments)
            #expect(run.status == 2)
            #expect(run.output.contains(message), "\(run.output)")
        }
    }
}
