import Foundation
import Testing

@testable import Elastic

/// `condor_q -json` and `condor_status -json` written by hand in the form HTCondor 23 prints them (ClassAds with their
/// attributes sorted, expressions as "\/Expr(…)\/", ads joined by "\n,\n"): a GPU machine with a partitionable slot
/// and two claimed dynamic slots, a machine with two static slots, a drained machine; three running jobs, three idle
/// (one with the default RequestMemory expression), one held (Tests/ElasticTests/Fixtures/htcondor).
@Suite("reading HTCondor's queue and slots")
struct HTCondorSnapshotTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/htcondor")

    static func snapshot() throws -> QueueSnapshot {
        try QueueSnapshot.htcondor(
            condorQ: Data(contentsOf: fixtures.appendingPathComponent("condor_q.json")),
            condorStatus: Data(contentsOf: fixtures.appendingPathComponent("condor_status.json")))
    }

    @Test("jobs: idle is PENDING, held left out, ids from ClusterId and ProcId, requests with their defaults")
    func jobs() throws {
        let jobs = try Self.snapshot().jobs
        #expect(jobs.map(\.id) == [1_200_000, 1_300_000, 1_400_000, 1_500_000, 1_500_001, 1_600_000])
        #expect(jobs.map(\.state) == ["RUNNING", "RUNNING", "RUNNING", "PENDING", "PENDING", "PENDING"])
        #expect(jobs.filter(\.waits).map(\.id) == [1_500_000, 1_500_001, 1_600_000])
        let byID = Dictionary(uniqueKeysWithValues: jobs.map { ($0.id, $0) })
        #expect(byID[1_200_000]?.perNode == Resources(cpus: 2, memoryMB: 4096, gpus: 1))
        #expect(byID[1_200_000]?.nodes == ["gpu-worker-1.example.org"])
        #expect(byID[1_200_000]?.name == "train.sh")
        #expect(byID[1_400_000]?.nodes == ["cpu-worker-1.example.org"])
        #expect(byID[1_500_000]?.perNode == Resources(cpus: 1, memoryMB: 2048))
        #expect(byID[1_500_000]?.nodes == [])
        #expect(byID[1_500_001]?.perNode == Resources(cpus: 1, memoryMB: 0), "RequestMemory is an expression")
        #expect(byID[1_600_000]?.perNode == Resources(cpus: 4, memoryMB: 8192, gpus: 1))
        #expect(byID[1_200_000]?.submit == 1_714_640_000)
        #expect(byID[1_600_000]?.submit == 1_714_640_600)
        #expect(jobs.allSatisfy { $0.nodeCount == 1 })
    }

    @Test("nodes: slots grouped by machine, partitionable capacity and free, static slots claimed, drained machines")
    func nodes() throws {
        let nodes = try Self.snapshot().nodes
        #expect(
            nodes.map(\.name) == ["cpu-worker-1.example.org", "cpu-worker-2.example.org", "gpu-worker-1.example.org"])
        #expect(nodes.map(\.address) == nodes.map(\.name))
        #expect(nodes[0].capacity == Resources(cpus: 2, memoryMB: 3906))
        #expect(nodes[0].allocated == Resources(cpus: 1, memoryMB: 1953))
        #expect(nodes[0].state == "mixed" && nodes[0].flags.isEmpty)
        #expect(nodes[1].capacity == Resources(cpus: 4, memoryMB: 7816))
        #expect(nodes[1].allocated == .zero)
        #expect(nodes[1].state == "idle" && nodes[1].flags == ["DRAIN"])
        #expect(nodes[2].capacity == Resources(cpus: 8, memoryMB: 31906, gpus: 1))
        #expect(nodes[2].allocated == Resources(cpus: 4, memoryMB: 6144, gpus: 1))
        #expect(nodes[2].free == Resources(cpus: 4, memoryMB: 25762, gpus: 0))
        #expect(nodes[2].state == "mixed" && nodes[2].flags.isEmpty)

        // Older ads: no SlotType (a static slot), no TotalSlot* (the slot's own numbers); Retiring is draining.
        let older = Data(
            #"""
            [
            {"Machine": "old-1", "Name": "slot1@old-1", "Cpus": 2, "Memory": 2000, "State": "Claimed", "Activity": "Retiring"},
            {"Machine": "old-2", "Name": "slot1@old-2", "SlotType": "Partitionable", "Cpus": 4, "Memory": 4000, "State": "Unclaimed", "Activity": "Idle"}
            ]
            """#.utf8)
        let old = try QueueSnapshot.htcondor(condorQ: Data(), condorStatus: older).nodes
        #expect(old.map(\.state) == ["allocated", "idle"])
        #expect(old[0].allocated == Resources(cpus: 2, memoryMB: 2000) && old[0].flags == ["DRAIN"])
        #expect(old[1].capacity == Resources(cpus: 4, memoryMB: 4000) && old[1].allocated == .zero)
    }

    @Test("the policy's view: drained machine left out, idle jobs pending; a GPU node and a CPU node to power on")
    func view() throws {
        let pools = [
            PoolSpec(name: "cpu_worker", node: Resources(cpus: 2, memoryMB: 3906), maxNodes: 4),
            PoolSpec(name: "gpu_worker", node: Resources(cpus: 8, memoryMB: 31906, gpus: 1), maxNodes: 2),
        ]
        let view = try Self.snapshot().view(
            now: 100, pools: pools, pool: { $0.hasPrefix("gpu") ? "gpu_worker" : "cpu_worker" }, idleSince: { _ in nil }
        )
        #expect(view.nodes.map(\.id) == [0, 2])
        #expect(view.nodes.map(\.state) == [.up, .up])
        #expect(view.nodes.map(\.runningJobs) == [1, 2])
        #expect(view.nodes.map(\.free) == [Resources(cpus: 1, memoryMB: 1953), Resources(cpus: 4, memoryMB: 25762)])
        #expect(view.pending.map(\.id) == [1_500_000, 1_500_001, 1_600_000])
        #expect(view.pending.map(\.resources.gpus) == [0, 0, 1])
        // The GPU job finds no free GPU; the 2048 MB job does not fit the static slot left; the 0 MB one does.
        var policy = DeployctlPolicy()
        #expect(policy.decide(view).powerOn == [0: 1, 1: 1])
    }

    @Test("empty output is an empty queue; what is not condor_q's or condor_status's output is an error")
    func errors() throws {
        let empty = try QueueSnapshot.htcondor(condorQ: Data(), condorStatus: Data(" \n".utf8))
        #expect(empty.jobs.isEmpty && empty.nodes.isEmpty)
        let slots = Data(#"[{"MyType": "Machine", "Machine": "w1", "Cpus": 1}]"#.utf8)
        func read(_ condorQ: String, _ condorStatus: Data = Data("[]".utf8)) throws(QueueSnapshot.ParseError) {
            _ = try QueueSnapshot.htcondor(condorQ: Data(condorQ.utf8), condorStatus: condorStatus)
        }
        #expect(throws: QueueSnapshot.ParseError(message: "condor_q -json: not JSON")) {
            try read("-- Failed to fetch ads from: <10.0.1.5:9618> : submit.example.org")
        }
        #expect(throws: QueueSnapshot.ParseError(message: "condor_q -json: not a JSON array of ClassAds")) {
            try read(#"{"ClusterId": 1}"#)
        }
        #expect(throws: QueueSnapshot.ParseError(message: "condor_q -json: an ad of MyType Machine, not Job")) {
            try read(#"[{"MyType": "Machine", "Machine": "w1"}]"#)
        }
        #expect(throws: QueueSnapshot.ParseError(message: "condor_q -json: a job without ClusterId or ProcId")) {
            try read(#"[{"MyType": "Job", "ClusterId": 3, "JobStatus": 1}]"#, slots)
        }
        #expect(throws: QueueSnapshot.ParseError(message: "condor_status -json: a slot without Machine")) {
            try read("", Data(#"[{"MyType": "Machine", "Name": "slot1@w1", "Cpus": 1}]"#.utf8))
        }
        #expect(throws: QueueSnapshot.ParseError(message: "condor_status -json: not a JSON array of ClassAds")) {
            try read("", Data(#"[1, 2]"#.utf8))
        }
    }
}
