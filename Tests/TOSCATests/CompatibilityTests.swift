import Foundation
import Testing

@testable import TOSCA

/// Templates written for other tools: INDIGO-style templates validate offline through the import cache with the
/// project's compatibility types (templates/types/indigo-compat.yaml).
@Suite("Compatibility with templates written for other tools")
struct CompatibilityTests {
    static let indigoURL = "https://raw.githubusercontent.com/indigo-dc/tosca-types/master/custom_types.yaml"
    static let compatTypes = Paths.templates.appendingPathComponent("types/indigo-compat.yaml")
    static let slurmCluster = Paths.fixture("indigo/slurm-elastic-cluster.yaml")

    @Test("an INDIGO-style cluster validates offline once the compat types are cached for the INDIGO URL")
    func indigoThroughCache() throws {
        let home = try TemporaryDirectory()
        let cache = ImportCache(home: home.url)
        let uncached = ToscaProcessor.validate(
            path: Self.slurmCluster.path, options: ValidationOptions(importCache: cache))
        let missing = try #require(uncached.errors.first { $0.code == "import-not-cached" })
        #expect(missing.message.contains("deployctl types add \(Self.indigoURL) FILE"))

        try cache.add(url: Self.indigoURL, file: Self.compatTypes)
        let result = ToscaProcessor.validate(
            path: Self.slurmCluster.path, options: ValidationOptions(importCache: cache))
        #expect(result.errors.map(summary) == [])
        #expect(
            Set(result.diagnostics.map(\.code)) == [
                "legacy-import", "yaml11-boolean", "ambiguous-requirement", "bad-refinement",
            ])
        // The cached file is named by its URL in diagnostics, not by the cache's internal file name.
        let refinement = try #require(result.diagnostics.first { $0.code == "bad-refinement" })
        #expect(refinement.location?.file == Self.indigoURL)
    }

    @Test("the INDIGO-style cluster plans: the worker pool starts empty and the front-end is hosted on its server")
    func indigoPlan() throws {
        let map = ImportMap(entries: [Self.indigoURL: Self.compatTypes.path])
        let (result, plan) = ToscaProcessor.plan(
            path: Self.slurmCluster.path, options: ValidationOptions(importMap: map))
        #expect(result.errors.map(summary) == [])
        let instances = try #require(plan?.instances)
        #expect(instances.first { $0.node == "lrms_front_end" }?.host == "lrms_server[0]")
        #expect(!instances.contains { $0.node == "wn_node" })
        #expect(plan?.json["nodes"]?["wn_node"]?["max_instances"] == .int(4))
    }

    @Test("the compat types file itself is valid, with the one widening INDIGO's own types make")
    func compatTypesValid() {
        let result = ToscaProcessor.validate(path: Self.compatTypes.path)
        #expect(result.errors.map(summary) == [])
        #expect(result.diagnostics.map(\.code) == ["bad-refinement"])
    }
}
