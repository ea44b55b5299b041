/// What a job asks of one node, and what a node offers: CPUs, memory and GPUs.
public struct Resources: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var cpus: Int
    public var memoryMB: Int
    public var gpus: Int

    public init(cpus: Int, memoryMB: Int = 0, gpus: Int = 0) {
        self.cpus = cpus
        self.memoryMB = memoryMB
        self.gpus = gpus
    }

    public static let zero = Resources(cpus: 0)

    public func fits(in other: Resources) -> Bool {
        cpus <= other.cpus && memoryMB <= other.memoryMB && gpus <= other.gpus
    }

    public static func + (a: Resources, b: Resources) -> Resources {
        Resources(cpus: a.cpus + b.cpus, memoryMB: a.memoryMB + b.memoryMB, gpus: a.gpus + b.gpus)
    }

    public static func - (a: Resources, b: Resources) -> Resources {
        Resources(cpus: a.cpus - b.cpus, memoryMB: a.memoryMB - b.memoryMB, gpus: a.gpus - b.gpus)
    }

    /// The largest share of `capacity` this takes in any dimension (dominant share).
    public func share(of capacity: Resources) -> Double {
        var share = 0.0
        if capacity.cpus > 0 { share = max(share, Double(cpus) / Double(capacity.cpus)) }
        if capacity.memoryMB > 0 { share = max(share, Double(memoryMB) / Double(capacity.memoryMB)) }
        if capacity.gpus > 0 { share = max(share, Double(gpus) / Double(capacity.gpus)) }
        return share
    }

    public var description: String {
        "\(cpus) CPU, \(memoryMB) MB" + (gpus > 0 ? ", \(gpus) GPU" : "")
    }
}

/// A batch job of a trace: when it is submitted, how long it runs once started, what it needs on one node.
public struct Job: Sendable, Equatable {
    public var id: Int
    /// Seconds from the start of the trace.
    public var submit: Double
    public var runtime: Double
    public var resources: Resources

    public init(id: Int, submit: Double, runtime: Double, resources: Resources) {
        self.id = id
        self.submit = submit
        self.runtime = runtime
        self.resources = resources
    }

    public var isGPU: Bool { resources.gpus > 0 }
}

/// A pool of identical worker nodes: a scalable node template of the deployment.
public struct PoolSpec: Sendable, Equatable {
    public var name: String
    public var node: Resources
    public var minNodes: Int
    public var maxNodes: Int

    public init(name: String, node: Resources, minNodes: Int = 0, maxNodes: Int) {
        self.name = name
        self.node = node
        self.minNodes = minNodes
        self.maxNodes = maxNodes
    }

    public var hasGPUs: Bool { node.gpus > 0 }
}

/// deployctl's policy settings (the template's `deployctl.policies.ElasticPool`, with CLI overrides).
public struct ElasticSettings: Sendable, Equatable {
    /// Seconds a node may stay idle before it is powered off.
    public var idleTime: Double = 600
    /// Nodes booting at the same time, per pool.
    public var maxConcurrentBoots: Int = 2
    /// Free CPU slots kept warm per pool (on nodes already up or booting).
    public var spareSlots: Int = 0
    /// Idle times of particular pools (by name), overriding `idleTime`.
    public var poolIdleTimes: [String: Double] = [:]
    /// Seconds a node of a pool without GPUs stays idle when it is exposed: other nodes of its pool run jobs and
    /// no node of another pool that is up has room for a whole node of its pool, so a peak of its job stream would
    /// wait for a boot once it is gone. Nil: the idle time (no longer hold). Never shorter than the pool's idle
    /// time.
    public var exposedIdleTime: Double?
    /// Exposed idle times of particular pools (by name), overriding `exposedIdleTime` (GPU pools included).
    public var poolExposedIdleTimes: [String: Double] = [:]

    public func idleTime(of pool: PoolSpec) -> Double { poolIdleTimes[pool.name] ?? idleTime }

    /// A pool's exposed idle time: its own, else (for a pool without GPUs) `exposedIdleTime`, at least its idle
    /// time. A GPU pool's jobs never fit another pool, so it would always be exposed: it keeps its idle time
    /// unless given its own.
    public func exposedIdleTime(of pool: PoolSpec) -> Double {
        let idle = idleTime(of: pool)
        let exposed = poolExposedIdleTimes[pool.name] ?? (pool.hasGPUs ? idle : exposedIdleTime ?? idle)
        return max(idle, exposed)
    }

    public init(
        idleTime: Double = 600, maxConcurrentBoots: Int = 2, spareSlots: Int = 0, exposedIdleTime: Double? = nil
    ) {
        self.idleTime = idleTime
        self.maxConcurrentBoots = maxConcurrentBoots
        self.spareSlots = spareSlots
        self.exposedIdleTime = exposedIdleTime
    }

    /// The exposed idle time `elastic run` and `elastic simulate` use unless told otherwise (the ElasticPool
    /// policy's `exposed_idle_timeout` default): 25 min.
    public static let defaultExposedIdleTime = 1500.0
}
