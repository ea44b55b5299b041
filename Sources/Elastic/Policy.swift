/// What a policy sees of the cluster when it decides: the pools, their nodes that are booting or up, and the jobs
/// waiting in the queue (in submission order). The live controller builds it from SLURM; the simulator from its
/// state; the same policy code decides in both.
public struct ClusterView: Sendable {
    public enum NodeState: Sendable, Equatable {
        case booting
        case up
    }

    public struct Node: Sendable, Equatable {
        public var id: Int
        /// Index into `pools`.
        public var pool: Int
        public var state: NodeState
        /// When its power-on was requested.
        public var requested: Double
        /// What is free on it (all of it while booting).
        public var free: Resources
        public var runningJobs: Int
        /// Since when it has had no job; nil while it runs one or boots.
        public var idleSince: Double?

        public init(
            id: Int, pool: Int, state: NodeState, requested: Double, free: Resources, runningJobs: Int,
            idleSince: Double?
        ) {
            self.id = id
            self.pool = pool
            self.state = state
            self.requested = requested
            self.free = free
            self.runningJobs = runningJobs
            self.idleSince = idleSince
        }
    }

    public struct PendingJob: Sendable, Equatable {
        public var id: Int
        public var submit: Double
        public var resources: Resources

        public init(id: Int, submit: Double, resources: Resources) {
            self.id = id
            self.submit = submit
            self.resources = resources
        }
    }

    public var now: Double
    public var pools: [PoolSpec]
    public var nodes: [Node]
    public var pending: [PendingJob]

    public init(now: Double, pools: [PoolSpec], nodes: [Node], pending: [PendingJob]) {
        self.now = now
        self.pools = pools
        self.nodes = nodes
        self.pending = pending
    }

    func count(pool: Int) -> Int { nodes.count { $0.pool == pool } }
    func booting(pool: Int) -> Int { nodes.count { $0.pool == pool && $0.state == .booting } }
}

/// Nodes to power on (per pool index) and nodes to power off (by id).
public struct Decision: Sendable, Equatable {
    public var powerOn: [Int: Int] = [:]
    public var powerOff: [Int] = []

    public init(powerOn: [Int: Int] = [:], powerOff: [Int] = []) {
        self.powerOn = powerOn
        self.powerOff = powerOff
    }

    public var isEmpty: Bool { powerOn.values.allSatisfy { $0 == 0 } && powerOff.isEmpty }
}

/// A scaling policy. It is asked to decide every `period` seconds and, when `eventDriven`, also whenever a job
/// arrives, a node comes up or a job ends.
public protocol ElasticPolicy: Sendable {
    var name: String { get }
    var period: Double { get }
    var eventDriven: Bool { get }
    mutating func decide(_ view: ClusterView) -> Decision
}

/// deployctl's policy: event-driven; packs the waiting jobs first into what is free or booting, then into the
/// fewest new nodes (first-fit decreasing by GPUs, CPUs and memory), a GPU job only into a GPU pool and a CPU job
/// into a CPU pool while one exists; at most `maxConcurrentBoots` booting per pool; keeps `spareSlots` free CPUs
/// warm and each pool at its minimum; powers off nodes idle for their pool's idle time, never one that runs a job,
/// and holds an exposed node (others of its pool run jobs, and no node of another pool that is up has room for a
/// whole node of its pool) for the longer exposed idle time.
public struct DeployctlPolicy: ElasticPolicy {
    public var settings: ElasticSettings
    public let name = "deployctl"
    public let period = 1.0
    public let eventDriven = true

    public init(settings: ElasticSettings = ElasticSettings()) {
        self.settings = settings
    }

    /// The pools a job may start a node in, best first: matching kind (GPU or not), then the smallest node.
    static func eligiblePools(for job: Resources, in pools: [PoolSpec]) -> [Int] {
        let fitting = pools.indices.filter { job.fits(in: pools[$0].node) }
        let matching = fitting.filter { pools[$0].hasGPUs == (job.gpus > 0) }
        let candidates = job.gpus > 0 ? matching : (matching.isEmpty ? fitting : matching)
        return candidates.sorted {
            let a = pools[$0].node
            let b = pools[$1].node
            return (a.gpus, a.cpus, a.memoryMB, $0) < (b.gpus, b.cpus, b.memoryMB, $1)
        }
    }

    /// Whether a peak of `node`'s pool's jobs would not wait for a boot once it is gone: no other node of its pool
    /// runs a job (there is no stream to peak, the pool is in a lull), or nodes of other pools that are up (and not
    /// being powered off) have room, together, for a whole node of its pool in CPUs and memory (the scheduler puts
    /// a job on any node with room, so the peak runs there).
    static func sheltered(_ node: ClusterView.Node, in view: ClusterView, leaving powerOff: [Int]) -> Bool {
        if !view.nodes.contains(where: { $0.pool == node.pool && $0.id != node.id && $0.runningJobs > 0 }) {
            return true
        }
        let size = view.pools[node.pool].node
        var room = Resources.zero
        for other in view.nodes
        where other.pool != node.pool && other.state == .up && !powerOff.contains(other.id) {
            room = room + Resources(cpus: other.free.cpus, memoryMB: other.free.memoryMB)
        }
        return Resources(cpus: size.cpus, memoryMB: size.memoryMB).fits(in: room)
    }

    public mutating func decide(_ view: ClusterView) -> Decision {
        var decision = Decision()
        // Room that already exists: free space on up nodes and whole booting nodes, per pool.
        var room: [(pool: Int, free: Resources)] = view.nodes.map { ($0.pool, $0.free) }
        var opened: [Int: Int] = [:]
        let jobs = view.pending.sorted {
            ($0.resources.gpus, $0.resources.cpus, $0.resources.memoryMB) > (
                $1.resources.gpus, $1.resources.cpus, $1.resources.memoryMB
            )
        }
        for job in jobs {
            let pools = Self.eligiblePools(for: job.resources, in: view.pools)
            if let slot = room.indices.first(where: {
                pools.contains(room[$0].pool) && job.resources.fits(in: room[$0].free)
            }) {
                room[slot].free = room[slot].free - job.resources
                continue
            }
            for pool in pools {
                let spec = view.pools[pool]
                let started = opened[pool, default: 0]
                guard view.count(pool: pool) + started < spec.maxNodes,
                    view.booting(pool: pool) + started < settings.maxConcurrentBoots
                else { continue }
                opened[pool] = started + 1
                room.append((pool, spec.node - job.resources))
                break
            }
        }
        // Minimums and warm spare slots.
        for (index, spec) in view.pools.enumerated() {
            var count = view.count(pool: index) + opened[index, default: 0]
            while count < spec.minNodes {
                opened[index, default: 0] += 1
                count += 1
            }
            if settings.spareSlots > 0 {
                var spare = room.filter { $0.pool == index }.reduce(0) { $0 + $1.free.cpus }
                while spare < settings.spareSlots, count < spec.maxNodes, spec.node.cpus > 0 {
                    opened[index, default: 0] += 1
                    count += 1
                    spare += spec.node.cpus
                }
            }
        }
        decision.powerOn = opened.filter { $0.value > 0 }
        // Power off nodes idle long enough, unless a waiting job would run there or the pool needs them.
        let placedSomewhere = Set(view.nodes.indices.filter { room[$0].free != view.nodes[$0].free })
        var remaining = Dictionary(grouping: view.nodes, by: \.pool).mapValues(\.count)
        for (index, node) in view.nodes.enumerated() {
            guard node.state == .up, node.runningJobs == 0, let since = node.idleSince,
                view.now - since >= settings.idleTime(of: view.pools[node.pool]), !placedSomewhere.contains(index),
                opened[node.pool, default: 0] == 0
            else { continue }
            // An exposed node (its pool's overflow has nowhere else to run) is held for the longer exposed idle
            // time: a peak of a job stream that finds every node of the pool full would wait for a boot.
            if view.now - since < settings.exposedIdleTime(of: view.pools[node.pool]),
                !Self.sheltered(node, in: view, leaving: decision.powerOff)
            {
                continue
            }
            let spec = view.pools[node.pool]
            guard remaining[node.pool, default: 0] > spec.minNodes else { continue }
            if settings.spareSlots > 0 {
                let spare = view.nodes.filter { $0.pool == node.pool && !decision.powerOff.contains($0.id) }
                    .reduce(0) { $0 + $1.free.cpus }
                guard spare - node.free.cpus >= settings.spareSlots else { continue }
            }
            remaining[node.pool, default: 0] -= 1
            decision.powerOff.append(node.id)
        }
        return decision
    }
}

/// Every pool at its maximum from the start, never powered off: no waiting for boots, the most node-hours.
public struct StaticMaxPolicy: ElasticPolicy {
    public let name = "static-max"
    public let period = 60.0
    public let eventDriven = false

    public init() {}

    public mutating func decide(_ view: ClusterView) -> Decision {
        var decision = Decision()
        for (index, spec) in view.pools.enumerated() where view.count(pool: index) < spec.maxNodes {
            decision.powerOn[index] = spec.maxNodes - view.count(pool: index)
        }
        return decision
    }
}
