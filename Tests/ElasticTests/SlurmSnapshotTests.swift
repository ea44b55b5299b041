import Foundation
import Testing

@testable import Elastic

/// `squeue --json` and `sinfo --json` as SLURM 22.05 printed them on this machine (a controller with a CPU node and
/// a 2-GPU node, two jobs running, four waiting: Tests/ElasticTests/Fixtures/slurm-22.05).
@Suite("reading SLURM's queue and nodes")
struct SlurmSnapshotTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/slurm-22.05")

    static func snapshot() throws -> QueueSnapshot {
        try QueueSnapshot.slurm(
            squeue: Data(contentsOf: fixtures.appendingPathComponent("squeue.json")),
            sinfo: Data(contentsOf: fixtures.appendingPathComponent("sinfo.json")))
    }

    @Test("jobs: state, per-node CPUs, memory and GPUs (from tres_per_node, or the request when memory is unset)")
    func jobs() throws {
        let jobs = try Self.snapshot().jobs
        #expect(jobs.map(\.id) == [1, 2, 3, 4, 5, 6])
        #expect(jobs.filter(\.waits).map(\.id) == [3, 4, 5, 6])
        let byID = Dictionary(uniqueKeysWithValues: jobs.map { ($0.id, $0) })
        #expect(byID[1]?.perNode == Resources(cpus: 2, memoryMB: 1000))
        #expect(byID[1]?.nodes == ["cpu1"])
        #expect(byID[3]?.perNode == Resources(cpus: 1, memoryMB: 2000, gpus: 1))
        #expect(byID[4]?.perNode == Resources(cpus: 1, memoryMB: 4000, gpus: 2))
        #expect(byID[6]?.perNode == Resources(cpus: 2, memoryMB: 500))
        #expect(byID[3]?.reason == "Resources")
    }

    @Test("nodes: capacity with GPUs from gres, allocation, state")
    func nodes() throws {
        let nodes = try Self.snapshot().nodes
        #expect(nodes.map(\.name) == ["cpu1", "gpu1"])
        #expect(nodes[1].capacity == Resources(cpus: 2, memoryMB: 4000, gpus: 2))
        #expect(nodes[1].allocated == Resources(cpus: 2, memoryMB: 1000))
        #expect(nodes[1].state == "allocated")
        #expect(nodes[0].state == "unknown")
    }

    @Test("the policy's view: pools by node name, a node not yet responding counts as booting, waiting jobs")
    func view() throws {
        let pools = [
            PoolSpec(name: "cpu_worker", node: Resources(cpus: 2, memoryMB: 4000), maxNodes: 4),
            PoolSpec(name: "gpu_worker", node: Resources(cpus: 2, memoryMB: 4000, gpus: 2), maxNodes: 2),
        ]
        let view = try Self.snapshot().view(
            now: 100, pools: pools, pool: { $0.hasPrefix("gpu") ? "gpu_worker" : "cpu_worker" }, idleSince: { _ in nil }
        )
        #expect(view.nodes.map(\.state) == [.booting, .up])
        #expect(view.nodes[1].runningJobs == 1 && view.nodes[1].free == Resources(cpus: 0, memoryMB: 3000, gpus: 2))
        #expect(view.pending.map(\.id) == [3, 4, 5, 6])
        // deployctl's policy on it: the CPU job fits the CPU node coming up; the GPU jobs need the other GPU node.
        var policy = DeployctlPolicy(settings: ElasticSettings(maxConcurrentBoots: 4))
        #expect(policy.decide(view).powerOn == [1: 1])
    }

    @Test("a CONFIGURING job is demand while its node boots, not once the node is up and holds it")
    func configuringJobs() {
        func snapshot(nodeState: String, flags: [String]) -> QueueSnapshot {
            QueueSnapshot(
                jobs: [
                    QueueSnapshot.Job(
                        id: 7, name: "seg", state: "CONFIGURING", reason: "None", submit: 0, nodeCount: 1,
                        perNode: Resources(cpus: 1, gpus: 1), nodes: ["gpu-slurm-worker-0"])
                ],
                nodes: [
                    QueueSnapshot.Node(
                        name: "gpu-slurm-worker-0", address: "", state: nodeState, flags: flags,
                        capacity: Resources(cpus: 4, gpus: 1),
                        allocated: nodeState == "mixed" ? Resources(cpus: 1, gpus: 1) : .zero)
                ])
        }
        let pools = [PoolSpec(name: "gpu_worker", node: Resources(cpus: 4, gpus: 1), maxNodes: 2)]
        let up = snapshot(nodeState: "mixed", flags: []).view(
            now: 0, pools: pools, pool: { _ in "gpu_worker" }, idleSince: { _ in nil })
        #expect(up.pending.isEmpty)
        var policy = DeployctlPolicy()
        #expect(policy.decide(up).isEmpty, "the job's GPU is taken on its own node: nothing to power on")
        let booting = snapshot(nodeState: "idle", flags: ["POWERING_UP"]).view(
            now: 0, pools: pools, pool: { _ in "gpu_worker" }, idleSince: { _ in nil })
        #expect(booting.pending.map(\.id) == [7])
        #expect(policy.decide(booting).isEmpty, "it goes into the booting node's room")
    }

    @Test("GRES strings, TRES strings and hostlists")
    func formats() {
        #expect(QueueSnapshot.gpuCount("gres:gpu:2") == 2)
        #expect(QueueSnapshot.gpuCount("gpu:a100:4(S:0-1)") == 4)
        #expect(QueueSnapshot.gpuCount("gpu:1(IDX:0),gpu:l40s:2") == 3)
        #expect(QueueSnapshot.gpuCount("") == 0)
        #expect(QueueSnapshot.tres("cpu=2,mem=1.5G,node=1")["mem"] == 1536)
        #expect(
            QueueSnapshot.expand("w[1-3,7],front,g[08-10]") == ["w1", "w2", "w3", "w7", "front", "g08", "g09", "g10"])
    }

    @Test("an error in SLURM's output is reported, not read as an empty queue")
    func errors() {
        let failing = Data(#"{"errors": [{"error": "Unable to contact slurm controller"}], "jobs": []}"#.utf8)
        #expect(throws: QueueSnapshot.ParseError.self) {
            _ = try QueueSnapshot.slurm(squeue: failing, sinfo: Data(#"{"nodes": []}"#.utf8))
        }
        #expect(throws: QueueSnapshot.ParseError.self) {
            _ = try QueueSnapshot.slurm(squeue: Data("not json".utf8), sinfo: Data(#"{"nodes": []}"#.utf8))
        }
    }
}
