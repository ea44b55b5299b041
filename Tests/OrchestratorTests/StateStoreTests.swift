import Foundation
import Testing

@testable import Orchestrator

/// A state directory under the system temporary directory, removed afterwards.
final class StateHome {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent(
            "deployctl-state-\(UUID().uuidString)", isDirectory: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }
}

@Suite("State store and resource ledger")
struct StateStoreTests {
    func store(_ home: StateHome) throws -> StateStore {
        let store = try StateStore.open(home: home.url)
        try store.create(DeploymentRecord(name: "study", template: "templates/bone-density-study.yaml"))
        return store
    }

    @Test("a resource goes intended → created → deleting → deleted, and each step survives reopening")
    func lifecycle() throws {
        let home = try StateHome()
        let store = try store(home)
        let entry = try store.intend(deployment: "study", instance: "front[0]", kind: "compute", provider: "ssh")
        #expect(entry.status == .intended)
        #expect(entry.name == "dctl-study-front-0-compute")
        let id = try #require(entry.id)

        try store.markCreated(id, providerID: "host-h1", detail: #"{"private_address":"10.231.7.11"}"#)
        var reopened = try StateStore.open(home: home.url)
        var live = try reopened.liveResources(of: "study")
        #expect(live.map(\.status) == [.created])
        #expect(live.first?.providerID == "host-h1")
        #expect(live.first?.detail == #"{"private_address":"10.231.7.11"}"#)

        try reopened.markDeleting(id)
        reopened = try StateStore.open(home: home.url)
        #expect(try reopened.liveResources(of: "study").map(\.status) == [.deleting])

        try reopened.markDeleted(id)
        live = try StateStore.open(home: home.url).liveResources(of: "study")
        #expect(live.isEmpty)
        #expect(try reopened.resources(of: "study").map(\.status) == [.deleted])
    }

    @Test("an intent with no answer (a crash mid-create) is still live after reopening, under its deterministic name")
    func inFlightSurvivesCrash() throws {
        let home = try StateHome()
        _ = try store(home).intend(deployment: "study", instance: "worker[3]", kind: "volume", provider: "openstack")
        let live = try StateStore.open(home: home.url).liveResources(of: "study")
        #expect(live.count == 1)
        #expect(live.first?.status == .intended)
        #expect(live.first?.providerID == nil)
        #expect(live.first?.name == ResourceName.make(deployment: "study", instance: "worker[3]", kind: "volume"))
    }

    @Test("intending the same resource again returns the same entry: a resumed up creates no duplicate")
    func intentIsIdempotent() throws {
        let home = try StateHome()
        let store = try store(home)
        let first = try store.intend(deployment: "study", instance: "front[0]", kind: "compute", provider: "ssh")
        try store.markCreated(try #require(first.id), providerID: "h1")
        let again = try store.intend(deployment: "study", instance: "front[0]", kind: "compute", provider: "ssh")
        #expect(again.id == first.id)
        #expect(again.status == .created)
        #expect(try store.resources(of: "study").count == 1)
        // A deleted resource intended again (scale back up) is reused, not duplicated.
        try store.markDeleted(try #require(first.id))
        let revived = try store.intend(deployment: "study", instance: "front[0]", kind: "compute", provider: "ssh")
        #expect(revived.id == first.id)
        #expect(revived.status == .intended)
        #expect(revived.providerID == nil)
    }

    @Test("concurrent intents from many tasks are all recorded, each once")
    func concurrentIntents() async throws {
        let home = try StateHome()
        let store = try store(home)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<40 {
                group.addTask {
                    _ = try store.intend(
                        deployment: "study", instance: "worker[\(index % 20)]", kind: index < 20 ? "compute" : "volume",
                        provider: "ssh")
                }
            }
            try await group.waitForAll()
        }
        let names = try store.resources(of: "study").map(\.name)
        #expect(names.count == 40)
        #expect(Set(names).count == 40)
    }

    @Test("a deployment with resources that may exist cannot be forgotten")
    func removeRefusedWhileLive() throws {
        let home = try StateHome()
        let store = try store(home)
        let entry = try store.intend(deployment: "study", instance: "front[0]", kind: "compute", provider: "ssh")
        #expect(throws: OrchestratorError.self) { try store.remove(deployment: "study") }
        try store.markDeleted(try #require(entry.id))
        try store.remove(deployment: "study")
        #expect(try store.deployment(named: "study") == nil)
        #expect(try store.resources(of: "study").isEmpty)
    }

    @Test("deployment names are unique and statuses are recorded")
    func deployments() throws {
        let home = try StateHome()
        let store = try store(home)
        let duplicate = #expect(throws: OrchestratorError.self) {
            try store.create(DeploymentRecord(name: "study", template: "other.yaml"))
        }
        #expect(duplicate?.code == "deployment-exists")
        try store.setStatus(of: "study", .degraded, error: "configure of worker[1] failed")
        let record = try #require(try store.deployment(named: "study"))
        #expect(record.status == .degraded)
        #expect(record.error == "configure of worker[1] failed")
        #expect(throws: OrchestratorError.self) { try store.setStatus(of: "missing", .deployed) }
    }

    @Test("resource names are deterministic, safe for every back-end and never collide when shortened")
    func resourceNames() {
        #expect(
            ResourceName.make(deployment: "Study_A", instance: "gpu_worker[12]", kind: "compute")
                == "dctl-study-a-gpu-worker-12-compute")
        let long = String(repeating: "x", count: 80)
        let a = ResourceName.make(deployment: long, instance: "a[0]", kind: "volume")
        let b = ResourceName.make(deployment: long, instance: "b[0]", kind: "volume")
        #expect(a.count <= ResourceName.maxLength)
        #expect(b.count <= ResourceName.maxLength)
        #expect(a != b)
        #expect(a == ResourceName.make(deployment: long, instance: "a[0]", kind: "volume"))
        #expect(a.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "-" })
    }
}
