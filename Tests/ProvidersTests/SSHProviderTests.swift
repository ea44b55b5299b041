import Foundation
import TestBeds
import Testing

@testable import Providers

/// The SSH provider against real hosts (in the serialized SSH suite: test beds must not run side by side).
extension SSHSessionTests {
    /// The test bed's provider, keeping its claims under the bed's own directory.
    func provider(_ bed: SSHTestBed) throws -> SSHProvider {
        let file = try ProvidersFile.load(bed.path("providers.yaml"))
        guard case .ssh(var config) = try #require(file.providers["testbed"]) else {
            throw ProviderError("test", provider: "testbed", "not an ssh provider")
        }
        config.stateDirectory = bed.path("remote-state")
        return SSHProvider(config: config, timeout: .seconds(5))
    }

    func request(_ instance: String, cpus: Int = 1, gpus: Int = 0, deployment: String = "study") -> ComputeRequest {
        ComputeRequest(
            deployment: deployment, instance: instance, name: "dctl-\(deployment)-\(instance)-compute", cpus: cpus,
            memoryBytes: 2_000_000_000, gpus: gpus)
    }

    @Test("compute claims a fitting host: GPU work only on GPU hosts, which are kept for last; the same name resumes")
    func claimHosts() async throws {
        let bed = try SSHTestBed(hosts: 3)  // h3 has gpus: 1
        let provider = try provider(bed)
        let gpu = try await provider.createCompute(request("gpu-0", gpus: 1))
        #expect(gpu.providerID == "h3")
        let first = try await provider.createCompute(request("cpu-0"))
        let second = try await provider.createCompute(request("cpu-1"))
        #expect([first.providerID, second.providerID].sorted() == ["h1", "h2"])
        #expect(first.privateAddress == bed.hosts.first { $0.name == first.providerID }?.address)
        // Asking again for the same resource (a resumed up) gives the same host, not another one.
        #expect(try await provider.createCompute(request("cpu-0")).providerID == first.providerID)
        // Every host is taken now: a clear error, nothing claimed twice.
        let full = await #expect(throws: ProviderError.self) { _ = try await provider.createCompute(request("cpu-2")) }
        #expect(full?.code == "no-free-host")
        let tooBig = await #expect(throws: ProviderError.self) {
            _ = try await provider.createCompute(request("big", cpus: 64))
        }
        #expect(tooBig?.code == "no-fitting-host")
        // A GPU request never lands on a CPU-only host, even when one is free.
        try await provider.deleteCompute(name: "dctl-study-cpu-1-compute", providerID: nil)
        let gpuFull = await #expect(throws: ProviderError.self) {
            _ = try await provider.createCompute(request("gpu-1", gpus: 1))
        }
        #expect(gpuFull?.code == "no-free-host")
    }

    @Test("claims are found by deployment after a crash, and deleting releases them, twice without harm")
    func reconcileAndDelete() async throws {
        let bed = try SSHTestBed(hosts: 2)
        let provider = try provider(bed)
        _ = try await provider.createCompute(request("front[0]"))
        _ = try await provider.createCompute(request("front[0]", deployment: "other"))
        let found = try await provider.resources(deployment: "study")
        #expect(found.map(\.name) == ["dctl-study-front[0]-compute"])
        #expect(found.first?.instance == "front[0]")
        let host = try #require(found.first?.providerID)
        try await provider.deleteCompute(name: "dctl-study-front[0]-compute", providerID: nil)
        #expect(try await provider.resources(deployment: "study").isEmpty)
        try await provider.deleteCompute(name: "dctl-study-front[0]-compute", providerID: host)
        // The other deployment's claim is untouched.
        #expect(try await provider.resources(deployment: "other").map(\.instance) == ["front[0]"])
    }
}
