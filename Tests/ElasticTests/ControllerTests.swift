import Synchronization
import Testing

@testable import Elastic

/// A SLURM cluster in memory behind the controller's backend: `apply` adds nodes that register on the next
/// `register()` (or never, for the instances in `silent`) and removes nodes; drain sets SLURM's DRAIN flag.
final class FakeCluster: ElasticBackend {
    struct State {
        var now = 1000.0
        var jobs: [QueueSnapshot.Job] = []
        var nodes: [QueueSnapshot.Node] = []
        var instances: [String: [Int]] = ["cpu_worker": [], "gpu_worker": []]
        var unregistered: [String: Resources] = [:]
        var silent: Set<String> = []
        var applied: [[String: [Int]]] = []
        var drained: [String] = []
        var resumed: [String] = []
        /// A job that starts on a node the moment it is drained (the race drain must catch).
        var startOnDrain: Int?
        /// While set, `apply` waits (a deployment change in progress).
        var hold = false
        /// `apply` calls that fail (after recording what they were asked).
        var failures = 0
    }

    let state = Mutex(State())
    static let prefixes = ["cpu_worker": "cpu-slurm-worker-", "gpu_worker": "gpu-slurm-worker-"]
    static let capacity = [
        "cpu_worker": Resources(cpus: 2, memoryMB: 4000), "gpu_worker": Resources(cpus: 4, memoryMB: 8000, gpus: 1),
    ]

    var now: Double { state.withLock { $0.now } }
    func advance(_ seconds: Double) { state.withLock { $0.now += seconds } }

    func submit(_ id: Int, _ resources: Resources) {
        state.withLock {
            $0.jobs.append(
                QueueSnapshot.Job(
                    id: id, name: "job\(id)", state: "PENDING", reason: "Resources", submit: $0.now - 0.4, nodeCount: 1,
                    perNode: resources, nodes: []))
        }
    }

    /// Nodes asked for join SLURM (idle), except the silent ones.
    func register() {
        state.withLock { state in
            // In name order (CPU nodes first, as SLURM's node weights put them in the recipes).
            for (name, capacity) in state.unregistered.sorted(by: { $0.key < $1.key })
            where !state.silent.contains(name) {
                state.nodes.append(
                    QueueSnapshot.Node(
                        name: name, address: "", state: "idle", flags: [], capacity: capacity, allocated: .zero))
                state.unregistered[name] = nil
            }
        }
    }

    /// SLURM's scheduler: each pending job onto the first node with room.
    func schedule() {
        state.withLock { state in
            for index in state.jobs.indices where state.jobs[index].state == "PENDING" {
                let job = state.jobs[index]
                guard
                    let slot = state.nodes.firstIndex(where: {
                        !$0.flags.contains("DRAIN") && job.perNode.fits(in: $0.free)
                    })
                else { continue }
                state.nodes[slot].allocated = state.nodes[slot].allocated + job.perNode
                state.nodes[slot].state = "mixed"
                state.jobs[index].state = "RUNNING"
                state.jobs[index].nodes = [state.nodes[slot].name]
            }
        }
    }

    func cancel(_ id: Int) { state.withLock { $0.jobs.removeAll { $0.id == id } } }

    func finish(_ id: Int) {
        state.withLock { state in
            guard let index = state.jobs.firstIndex(where: { $0.id == id }) else { return }
            for name in state.jobs[index].nodes {
                if let slot = state.nodes.firstIndex(where: { $0.name == name }) {
                    state.nodes[slot].allocated = state.nodes[slot].allocated - state.jobs[index].perNode
                    if state.nodes[slot].allocated == .zero { state.nodes[slot].state = "idle" }
                }
            }
            state.jobs.remove(at: index)
        }
    }

    func observe() async throws -> QueueSnapshot {
        state.withLock { QueueSnapshot(jobs: $0.jobs, nodes: $0.nodes) }
    }

    func instances() async throws -> [String: [Int]] { state.withLock { $0.instances } }

    func apply(_ wanted: [String: [Int]]) async throws {
        while state.withLock({ $0.hold }) { try await Task.sleep(nanoseconds: 1_000_000) }
        let fail = state.withLock { state in
            guard state.failures > 0 else { return false }
            state.failures -= 1
            state.applied.append(wanted)
            return true
        }
        if fail { throw FakeError() }
        state.withLock { state in
            state.applied.append(wanted)
            for (pool, numbers) in wanted {
                let prefix = Self.prefixes[pool]!
                for number in numbers where !(state.instances[pool] ?? []).contains(number) {
                    state.unregistered[prefix + "\(number)"] = Self.capacity[pool]!
                }
                for number in state.instances[pool] ?? [] where !numbers.contains(number) {
                    state.nodes.removeAll { $0.name == prefix + "\(number)" }
                    state.unregistered[prefix + "\(number)"] = nil
                }
                state.instances[pool] = numbers
            }
        }
    }

    func drain(_ nodes: [String]) async throws {
        state.withLock { state in
            state.drained += nodes
            for index in state.nodes.indices where nodes.contains(state.nodes[index].name) {
                state.nodes[index].flags.append("DRAIN")
                if let id = state.startOnDrain, let job = state.jobs.firstIndex(where: { $0.id == id }) {
                    state.jobs[job].state = "RUNNING"
                    state.jobs[job].nodes = [state.nodes[index].name]
                    state.startOnDrain = nil
                }
            }
        }
    }

    func resume(_ nodes: [String]) async throws {
        state.withLock { state in
            state.resumed += nodes
            for index in state.nodes.indices where nodes.contains(state.nodes[index].name) {
                state.nodes[index].flags.removeAll { $0 == "DRAIN" }
            }
        }
    }
}

struct FakeError: Error, CustomStringConvertible {
    var description: String { "worker[0].create_compute: quota exceeded" }
}

@Suite("The live elastic controller (against a SLURM cluster in memory)")
struct ControllerTests {
    static let pools = [
        LivePool(
            spec: PoolSpec(name: "cpu_worker", node: Resources(cpus: 8, memoryMB: 32_768), maxNodes: 4),
            queuePrefix: "cpu-slurm-worker-"),
        LivePool(
            spec: PoolSpec(name: "gpu_worker", node: Resources(cpus: 16, memoryMB: 65_536, gpus: 1), maxNodes: 2),
            queuePrefix: "gpu-slurm-worker-"),
    ]

    func controller(_ cluster: FakeCluster, idle: Double = 60) -> ElasticController {
        ElasticController(
            deployment: "bd", pools: Self.pools, settings: ElasticSettings(idleTime: idle, maxConcurrentBoots: 4),
            backend: cluster, clock: { cluster.now })
    }

    /// A cluster whose one CPU node, powered on for job 1 (2 CPUs), runs it.
    func oneBusyNode(idle: Double = 60) async throws -> (FakeCluster, ElasticController) {
        let cluster = FakeCluster()
        let controller = controller(cluster, idle: idle)
        try await controller.start()
        cluster.submit(1, Resources(cpus: 2, memoryMB: 1000))
        await controller.tick()
        await controller.settle()
        cluster.register()
        cluster.schedule()
        return (cluster, controller)
    }

    /// A cluster whose one CPU node ran a job and has just gone idle (for `idle` seconds before removal).
    func oneIdleNode(idle: Double) async throws -> (FakeCluster, ElasticController) {
        let (cluster, controller) = try await oneBusyNode(idle: idle)
        cluster.finish(1)
        await controller.tick()
        return (cluster, controller)
    }

    @Test("waiting jobs power on the right pools at once; GPU jobs only GPU nodes; the latency is measured")
    func powerOn() async throws {
        let cluster = FakeCluster()
        let controller = controller(cluster)
        try await controller.start()
        await controller.tick()
        #expect(cluster.state.withLock { $0.applied }.isEmpty, "nothing waits: nothing to do")
        cluster.submit(1, Resources(cpus: 2, memoryMB: 1000))
        cluster.submit(2, Resources(cpus: 2, memoryMB: 1000, gpus: 1))
        cluster.submit(3, Resources(cpus: 2, memoryMB: 1000, gpus: 1))
        await controller.tick()
        await controller.settle()
        // The node as the template declares it (8 CPUs) takes the CPU job; each GPU job needs a node of its own.
        #expect(cluster.state.withLock { $0.applied } == [["cpu_worker": [0], "gpu_worker": [0, 1]]])
        let latencies = await controller.latencies
        #expect(latencies.count == 3 && latencies.allSatisfy { abs($0 - 0.4) < 1e-6 }, "\(latencies)")
        // Booting nodes count: the next rounds ask for nothing more.
        await controller.tick()
        await controller.settle()
        #expect(cluster.state.withLock { $0.applied }.count == 1)
        cluster.register()
        cluster.schedule()
        await controller.tick()
        let status = await controller.status(pid: 1)
        #expect(status.pools.map { $0.nodes.map(\.state) } == [["busy"], ["busy", "busy"]])
        #expect(await controller.events.filter { $0.kind == "registered" }.count == 3)
    }

    @Test("nodes a pool registers with are smaller than the template says: booting nodes count at the real size")
    func learnedCapacity() async throws {
        let (cluster, controller) = try await oneBusyNode()
        // The registered node has 2 CPUs, not 8: three more 2-CPU jobs need three more nodes.
        for id in 2...4 { cluster.submit(id, Resources(cpus: 2, memoryMB: 1000)) }
        await controller.tick()
        await controller.settle()
        #expect(cluster.state.withLock { $0.applied }.last == ["cpu_worker": [0, 1, 2, 3], "gpu_worker": []])
    }

    @Test("power-ons wait while a change is in progress, and are taken back when their jobs go away")
    func queuedPowerOns() async throws {
        let cluster = FakeCluster()
        let controller = controller(cluster)
        try await controller.start()
        cluster.state.withLock { $0.hold = true }
        cluster.submit(1, Resources(cpus: 2, memoryMB: 1000))
        await controller.tick()  // the change for job 1 starts and is held
        cluster.submit(2, Resources(cpus: 2, memoryMB: 1000, gpus: 1))
        await controller.tick()  // job 2's GPU node waits for the change in progress
        #expect(await controller.events.filter { $0.kind == "power-on" }.map(\.pool) == ["cpu_worker", "gpu_worker"])
        cluster.cancel(2)
        await controller.tick()
        cluster.state.withLock { $0.hold = false }
        await controller.settle()
        await controller.tick()
        await controller.settle()
        #expect(cluster.state.withLock { $0.applied } == [["cpu_worker": [0], "gpu_worker": []]], "no GPU node")
    }

    @Test("the size registered nodes showed is kept for the pool's next boots")
    func learnedSizeKept() async throws {
        let (cluster, controller) = try await oneIdleNode(idle: 10)
        cluster.advance(11)
        await controller.tick()
        await controller.settle()
        #expect(cluster.state.withLock { $0.instances["cpu_worker"] } == [])
        // 2 CPUs a node, as seen: two 2-CPU jobs need two nodes (the template's 8 CPUs would say one).
        cluster.submit(2, Resources(cpus: 2, memoryMB: 1000))
        cluster.submit(3, Resources(cpus: 2, memoryMB: 1000))
        await controller.tick()
        await controller.settle()
        #expect(cluster.state.withLock { $0.applied }.last == ["cpu_worker": [0, 1], "gpu_worker": []])
    }

    @Test("a failed change is tried again after the retry delay, with nothing else changing")
    func retryFailedChange() async throws {
        let cluster = FakeCluster()
        cluster.state.withLock { $0.failures = 1 }
        let controller = controller(cluster)
        cluster.submit(1, Resources(cpus: 2, memoryMB: 1000))
        try await controller.start()
        await controller.tick()
        await controller.settle()
        #expect(await controller.events.last?.kind == "apply-failed")
        #expect(await controller.events.last?.message.contains("quota exceeded; trying again in 30 s") == true)
        cluster.advance(10)
        await controller.tick()
        await controller.settle()
        #expect(cluster.state.withLock { $0.applied.count } == 1, "not before the delay")
        cluster.advance(21)
        await controller.tick()
        await controller.settle()
        let applied = cluster.state.withLock { $0.applied }
        #expect(applied == [["cpu_worker": [0], "gpu_worker": []], ["cpu_worker": [0], "gpu_worker": []]])
        #expect(await controller.events.last?.kind == "applied")
    }

    @Test("an idle node is drained, checked again and removed after the idle time; a busy one never")
    func powerOff() async throws {
        let cluster = FakeCluster()
        let controller = controller(cluster, idle: 60)
        try await controller.start()
        cluster.submit(1, Resources(cpus: 2, memoryMB: 1000))
        cluster.submit(2, Resources(cpus: 2, memoryMB: 1000))
        cluster.submit(3, Resources(cpus: 2, memoryMB: 1000))
        await controller.tick()
        await controller.settle()
        cluster.register()
        cluster.schedule()
        await controller.tick()
        await controller.settle()
        cluster.register()
        cluster.schedule()
        #expect(cluster.state.withLock { $0.instances["cpu_worker"] } == [0, 1, 2])
        cluster.finish(1)  // cpu-slurm-worker-0 idles; 1 and 2 stay busy
        await controller.tick()
        cluster.advance(30)
        await controller.tick()
        await controller.settle()
        #expect(cluster.state.withLock { $0.drained }.isEmpty, "idle for 30 s of 60")
        cluster.advance(31)
        await controller.tick()
        await controller.settle()
        #expect(cluster.state.withLock { $0.drained } == ["cpu-slurm-worker-0"])
        #expect(cluster.state.withLock { $0.instances["cpu_worker"] } == [1, 2], "the idle one went, not the last")
        #expect(await controller.events.contains { $0.kind == "power-off" && $0.nodes == ["cpu-slurm-worker-0"] })
    }

    @Test("a job that lands on a node while it is drained stops its removal: the node is resumed")
    func drainRace() async throws {
        let (cluster, controller) = try await oneIdleNode(idle: 10)
        cluster.advance(11)
        // Job 2 is held (not waiting, so the policy keeps no node for it) and released onto the node just as the
        // node is drained: the check after draining sees it running there.
        cluster.submit(2, Resources(cpus: 1, memoryMB: 100))
        cluster.state.withLock {
            $0.jobs[0].state = "SUSPENDED"
            $0.startOnDrain = 2
        }
        await controller.tick()
        await controller.settle()
        #expect(cluster.state.withLock { $0.drained } == ["cpu-slurm-worker-0"])
        #expect(cluster.state.withLock { $0.resumed } == ["cpu-slurm-worker-0"])
        #expect(cluster.state.withLock { $0.instances["cpu_worker"] } == [0])
        #expect(await controller.events.contains { $0.kind == "drain-aborted" })
    }

    @Test("a node that never registers is removed after the timeout and asked for again")
    func neverRegisters() async throws {
        let cluster = FakeCluster()
        let controller = controller(cluster)
        await controller.setRegisterTimeout(120)
        try await controller.start()
        cluster.state.withLock { $0.silent = ["gpu-slurm-worker-0"] }
        cluster.submit(1, Resources(cpus: 2, memoryMB: 1000, gpus: 1))
        await controller.tick()
        await controller.settle()
        #expect(cluster.state.withLock { $0.instances["gpu_worker"] } == [0])
        cluster.advance(121)
        await controller.tick()
        await controller.settle()
        // Removed, and (the job still waiting) a fresh instance asked for in its place.
        let applied = cluster.state.withLock { $0.applied }
        #expect(applied.last == ["cpu_worker": [], "gpu_worker": [1]], "\(applied)")
        #expect(await controller.events.contains { $0.kind == "never-registered" })
    }
}
