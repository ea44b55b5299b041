import Testing

@testable import Elastic

let cpuPool = PoolSpec(name: "cpu_worker", node: Resources(cpus: 8, memoryMB: 32_768), maxNodes: 8)
let gpuPool = PoolSpec(name: "gpu_worker", node: Resources(cpus: 16, memoryMB: 65_536, gpus: 1), maxNodes: 4)

func pending(_ id: Int, _ resources: Resources, at submit: Double = 0) -> ClusterView.PendingJob {
    ClusterView.PendingJob(id: id, submit: submit, resources: resources)
}

func node(
    _ id: Int, pool: Int, state: ClusterView.NodeState = .up, free: Resources, jobs: Int = 0, idleSince: Double? = nil
) -> ClusterView.Node {
    ClusterView.Node(
        id: id, pool: pool, state: state, requested: 0, free: free, runningJobs: jobs, idleSince: idleSince)
}

@Suite("deployctl's scaling policy")
struct DeployctlPolicyTests {
    @Test("a GPU job starts a GPU node, never a CPU-only one; a CPU job starts a CPU node")
    func gpuAware() {
        var policy = DeployctlPolicy()
        let view = ClusterView(
            now: 0, pools: [cpuPool, gpuPool], nodes: [],
            pending: [pending(1, Workload.segmentation), pending(2, Workload.boneDensity)])
        #expect(policy.decide(view).powerOn == [0: 1, 1: 1])
        let gpuOnly = ClusterView(
            now: 0, pools: [cpuPool, gpuPool], nodes: [], pending: [pending(1, Workload.segmentation)])
        #expect(policy.decide(gpuOnly).powerOn == [1: 1])
    }

    @Test("waiting jobs are packed into the fewest nodes, counting room on nodes already booting")
    func packing() {
        var policy = DeployctlPolicy(settings: ElasticSettings(maxConcurrentBoots: 8))
        let four = (1...4).map { pending($0, Workload.boneDensity) }  // 4 × 2 CPUs: one 8-CPU node
        #expect(policy.decide(ClusterView(now: 0, pools: [cpuPool], nodes: [], pending: four)).powerOn == [0: 1])
        let five = (1...5).map { pending($0, Workload.boneDensity) }
        #expect(policy.decide(ClusterView(now: 0, pools: [cpuPool], nodes: [], pending: five)).powerOn == [0: 2])
        let booting = [node(7, pool: 0, state: .booting, free: cpuPool.node)]
        #expect(policy.decide(ClusterView(now: 5, pools: [cpuPool], nodes: booting, pending: four)).isEmpty)
        #expect(policy.decide(ClusterView(now: 5, pools: [cpuPool], nodes: booting, pending: five)).powerOn == [0: 1])
    }

    @Test("boots are limited per pool, and a pool never exceeds its maximum")
    func limits() {
        var policy = DeployctlPolicy(settings: ElasticSettings(maxConcurrentBoots: 2))
        let jobs = (1...10).map { pending($0, Workload.segmentation) }
        #expect(policy.decide(ClusterView(now: 0, pools: [gpuPool], nodes: [], pending: jobs)).powerOn == [0: 2])
        var wide = DeployctlPolicy(settings: ElasticSettings(maxConcurrentBoots: 100))
        #expect(wide.decide(ClusterView(now: 0, pools: [gpuPool], nodes: [], pending: jobs)).powerOn == [0: 4])
        let three = (0..<3).map { node($0, pool: 0, free: .zero, jobs: 1) }
        #expect(wide.decide(ClusterView(now: 0, pools: [gpuPool], nodes: three, pending: jobs)).powerOn == [0: 1])
    }

    @Test("idle nodes go after the idle time, busy ones never, and the pool keeps its minimum")
    func powerOff() {
        var policy = DeployctlPolicy(settings: ElasticSettings(idleTime: 300))
        var pool = cpuPool
        pool.minNodes = 1
        let nodes = [
            node(0, pool: 0, free: cpuPool.node, idleSince: 0),
            node(1, pool: 0, free: cpuPool.node, idleSince: 0),
            node(2, pool: 0, free: Resources(cpus: 6, memoryMB: 28_672), jobs: 1),
            node(3, pool: 0, free: cpuPool.node, idleSince: 200),
        ]
        #expect(policy.decide(ClusterView(now: 299, pools: [pool], nodes: nodes, pending: [])).powerOff.isEmpty)
        #expect(policy.decide(ClusterView(now: 300, pools: [pool], nodes: nodes, pending: [])).powerOff == [0, 1])
        let minimum = Array(nodes.prefix(2))
        var two = pool
        two.minNodes = 2
        #expect(policy.decide(ClusterView(now: 900, pools: [two], nodes: minimum, pending: [])).powerOff.isEmpty)
        #expect(policy.decide(ClusterView(now: 0, pools: [two], nodes: [], pending: [])).powerOn == [0: 2])
    }

    @Test("a pool's own idle time overrides the default")
    func poolIdleTime() {
        var settings = ElasticSettings(idleTime: 600)
        settings.poolIdleTimes["gpu_worker"] = 120
        var policy = DeployctlPolicy(settings: settings)
        let nodes = [
            node(0, pool: 0, free: cpuPool.node, idleSince: 0), node(1, pool: 1, free: gpuPool.node, idleSince: 0),
        ]
        let view = { (now: Double) in ClusterView(now: now, pools: [cpuPool, gpuPool], nodes: nodes, pending: []) }
        #expect(policy.decide(view(119)).powerOff.isEmpty)
        #expect(policy.decide(view(120)).powerOff == [1])
        #expect(policy.decide(view(600)).powerOff == [0, 1])
    }

    @Test(
        "an exposed CPU node is held for the exposed idle time; one in a lull of its pool, one whose jobs fit on another pool's nodes, and a GPU node go after the idle time"
    )
    func exposedIdleTime() {
        var policy = DeployctlPolicy(settings: ElasticSettings(idleTime: 600, exposedIdleTime: 1500))
        let idleCPU = node(0, pool: 0, free: cpuPool.node, idleSince: 0)
        let busyCPU = node(2, pool: 0, free: Resources(cpus: 2, memoryMB: 20_480), jobs: 3)
        // Its pool runs jobs and no other pool's node could take a peak of them: it stays until 25 min.
        let exposed = { (now: Double) in
            ClusterView(now: now, pools: [cpuPool, gpuPool], nodes: [idleCPU, busyCPU], pending: [])
        }
        #expect(policy.decide(exposed(600)).powerOff.isEmpty)
        #expect(policy.decide(exposed(1499)).powerOff.isEmpty)
        #expect(policy.decide(exposed(1500)).powerOff == [0])
        // A lull: no node of its pool runs a job, there is no stream to peak; it goes at 10 min.
        let lull = ClusterView(now: 600, pools: [cpuPool, gpuPool], nodes: [idleCPU], pending: [])
        #expect(policy.decide(lull).powerOff == [0])
        // A busy GPU node with 12 free CPUs and 48 GB: room for a whole CPU node, so the CPU node goes at 10 min.
        let busyGPU = node(1, pool: 1, free: Resources(cpus: 12, memoryMB: 49_152), jobs: 1)
        let sheltered = ClusterView(
            now: 600, pools: [cpuPool, gpuPool], nodes: [idleCPU, busyCPU, busyGPU], pending: [])
        #expect(policy.decide(sheltered).powerOff == [0])
        // Room for less than a whole CPU node (4 CPUs free) does not shelter it.
        let small = node(1, pool: 1, free: Resources(cpus: 4, memoryMB: 49_152), jobs: 1)
        let partly = ClusterView(now: 600, pools: [cpuPool, gpuPool], nodes: [idleCPU, busyCPU, small], pending: [])
        #expect(policy.decide(partly).powerOff.isEmpty)
        // A GPU node powered off in the same decision shelters nothing.
        let idleGPU = node(1, pool: 1, free: gpuPool.node, idleSince: 0)
        let both = ClusterView(now: 600, pools: [cpuPool, gpuPool], nodes: [idleGPU, idleCPU, busyCPU], pending: [])
        #expect(policy.decide(both).powerOff == [1])
        // GPU pools keep their idle time (their jobs fit no other pool) unless given an exposed idle time.
        let busyGPU2 = node(3, pool: 1, free: Resources(cpus: 12, memoryMB: 49_152, gpus: 0), jobs: 1)
        let gpus = ClusterView(now: 600, pools: [cpuPool, gpuPool], nodes: [idleGPU, busyGPU2], pending: [])
        #expect(policy.decide(gpus).powerOff == [1])
        var settings = ElasticSettings(idleTime: 600, exposedIdleTime: 1500)
        settings.poolExposedIdleTimes["gpu_worker"] = 900
        var held = DeployctlPolicy(settings: settings)
        #expect(held.decide(gpus).powerOff.isEmpty)
        // Without an exposed idle time, as before: every idle node goes after the idle time.
        var plain = DeployctlPolicy(settings: ElasticSettings(idleTime: 600))
        #expect(plain.decide(exposed(600)).powerOff == [0])
        // Never shorter than the idle time.
        #expect(ElasticSettings(idleTime: 600, exposedIdleTime: 60).exposedIdleTime(of: cpuPool) == 600)
    }

    @Test("spare slots keep free CPUs warm")
    func spareSlots() {
        var policy = DeployctlPolicy(settings: ElasticSettings(idleTime: 60, spareSlots: 4))
        #expect(policy.decide(ClusterView(now: 0, pools: [cpuPool], nodes: [], pending: [])).powerOn == [0: 1])
        let one = [node(0, pool: 0, free: cpuPool.node, idleSince: 0)]
        #expect(policy.decide(ClusterView(now: 600, pools: [cpuPool], nodes: one, pending: [])).isEmpty)
    }
}

@Suite("the baselines")
struct BaselineTests {
    @Test("CLUES does not see GPUs: a GPU job powers on the first pool declared, a CPU node")
    func cluesIsGPUBlind() {
        var clues = CluesPolicy()
        let view = ClusterView(
            now: 0, pools: [cpuPool, gpuPool], nodes: [], pending: [pending(1, Workload.segmentation)])
        #expect(clues.decide(view).powerOn == [0: 1])
    }

    @Test("CLUES serves requests first in, first out and reconsiders a job only after 60 s")
    func cluesReconsiders() {
        var clues = CluesPolicy()
        let job = [pending(1, Workload.boneDensity)]
        #expect(clues.decide(ClusterView(now: 0, pools: [cpuPool], nodes: [], pending: job)).powerOn == [0: 1])
        // The node it booted came up and went (say it failed): the job is not asked for again before 60 s.
        #expect(clues.decide(ClusterView(now: 30, pools: [cpuPool], nodes: [], pending: job)).isEmpty)
        #expect(clues.decide(ClusterView(now: 61, pools: [cpuPool], nodes: [], pending: job)).powerOn == [0: 1])
    }

    @Test("the autoscaler removes nothing within 10 minutes of adding")
    func autoscalerDelayAfterAdd() {
        var autoscaler = AutoscalerPolicy()
        #expect(
            autoscaler.decide(
                ClusterView(now: 0, pools: [cpuPool], nodes: [], pending: [pending(1, Workload.boneDensity)])
            )
            .powerOn == [0: 1])
        let idle = [node(0, pool: 0, free: cpuPool.node, idleSince: 0)]
        #expect(autoscaler.decide(ClusterView(now: 599, pools: [cpuPool], nodes: idle, pending: [])).powerOff.isEmpty)
        #expect(autoscaler.decide(ClusterView(now: 600, pools: [cpuPool], nodes: idle, pending: [])).powerOff == [0])
    }
}
