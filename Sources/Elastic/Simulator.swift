/// A deterministic discrete-event simulation of a batch cluster whose worker pools a policy powers on and off.
///
/// Jobs arrive from a trace and wait in a queue; whenever something happens, waiting jobs start, in submission
/// order, on the first node that is up and has room, CPU nodes before GPU nodes (SLURM's first fit with the node
/// weights the recipes give). A node asked for boots for `bootTime`
/// seconds and then comes up, or fails with `bootFailure` probability (it is charged and gone; the policy sees the
/// demand again and asks anew). A node asked off goes at once, unless it runs a job: that is refused and counted.
/// The run ends when every job has finished and the pools are back at their minimum, or an hour after the last job
/// finished, whichever comes first; nodes still up then are charged until that moment.
public struct Simulator: Sendable {
    public struct Parameters: Sendable, Equatable {
        public var bootTime: Double = 120
        public var bootFailure: Double = 0
        /// Each node's time is charged in whole multiples of this many seconds.
        public var billing: Double = 1
        /// A job waiting longer than this is an SLA violation.
        public var slaWait: Double = 900
        public var seed: UInt64 = 1

        public init(
            bootTime: Double = 120, bootFailure: Double = 0, billing: Double = 1, slaWait: Double = 900,
            seed: UInt64 = 1
        ) {
            self.bootTime = bootTime
            self.bootFailure = bootFailure
            self.billing = billing
            self.slaWait = slaWait
            self.seed = seed
        }
    }

    public var pools: [PoolSpec]
    public var jobs: [Job]
    public var parameters: Parameters

    public init(pools: [PoolSpec], jobs: [Job], parameters: Parameters = Parameters()) {
        self.pools = pools
        self.jobs = jobs.sorted { ($0.submit, $0.id) < ($1.submit, $1.id) }
        self.parameters = parameters
    }

    struct Node {
        var id: Int
        var pool: Int
        var requested: Double
        var readyAt: Double
        var failsToBoot: Bool
        var up = false
        var free: Resources
        var running: Set<Int> = []
        var idleSince: Double?
        var ended: Double?
    }

    /// Jobs that need more than any pool's node: they can never run, so the simulation refuses them up front.
    public func unrunnable() -> [Job] {
        jobs.filter { job in !pools.contains { job.resources.fits(in: $0.node) } }
    }

    public func run<P: ElasticPolicy>(_ policy: P) -> Metrics {
        var policy = policy
        var random = SplitMix64(seed: parameters.seed ^ 0x9E37_79B9_7F4A_7C15)
        var nodes: [Node] = []
        var pending: [Job] = []
        var running: [(end: Double, job: Int, node: Int)] = []
        var waits: [Int: Double] = [:]
        var nextJob = 0
        var now = 0.0
        var nextTick = 0.0
        var refusedPowerOffs = 0
        var lastPowerOff: [Int: Double] = [:]
        var thrash = 0
        var lastJobEnd = 0.0
        var idleTotal = 0.0
        let runnable = Set(jobs.filter { job in pools.contains { job.resources.fits(in: $0.node) } }.map(\.id))
        let byID = Dictionary(uniqueKeysWithValues: jobs.map { ($0.id, $0) })

        func schedule() {
            var still: [Job] = []
            for job in pending {
                // SLURM's node weights as the recipes set them: GPU nodes weigh more, so a job takes a CPU node
                // while one has room.
                if let index = nodes.indices.filter({
                    nodes[$0].up && nodes[$0].ended == nil && job.resources.fits(in: nodes[$0].free)
                }).min(by: { (pools[nodes[$0].pool].hasGPUs ? 1 : 0, $0) < (pools[nodes[$1].pool].hasGPUs ? 1 : 0, $1) }
                ) {
                    nodes[index].free = nodes[index].free - job.resources
                    nodes[index].running.insert(job.id)
                    if let since = nodes[index].idleSince { idleTotal += now - since }
                    nodes[index].idleSince = nil
                    running.append((now + job.runtime, job.id, index))
                    waits[job.id] = now - job.submit
                } else {
                    still.append(job)
                }
            }
            pending = still
        }

        func view() -> ClusterView {
            ClusterView(
                now: now, pools: pools,
                nodes: nodes.filter { $0.ended == nil }.map {
                    ClusterView.Node(
                        id: $0.id, pool: $0.pool, state: $0.up ? .up : .booting, requested: $0.requested,
                        free: $0.free, runningJobs: $0.running.count, idleSince: $0.idleSince)
                },
                pending: pending.map { ClusterView.PendingJob(id: $0.id, submit: $0.submit, resources: $0.resources) })
        }

        func apply(_ decision: Decision) {
            for (pool, count) in decision.powerOn.sorted(by: { $0.key < $1.key }) where count > 0 {
                let alive = nodes.count { $0.pool == pool && $0.ended == nil }
                for _ in 0..<min(count, max(0, pools[pool].maxNodes - alive)) {
                    if let off = lastPowerOff[pool], now - off < 300 { thrash += 1 }
                    nodes.append(
                        Node(
                            id: nodes.count, pool: pool, requested: now, readyAt: now + parameters.bootTime,
                            failsToBoot: random.nextDouble() < parameters.bootFailure, free: pools[pool].node))
                }
            }
            for id in decision.powerOff {
                guard id < nodes.count, nodes[id].ended == nil else { continue }
                guard nodes[id].running.isEmpty else {
                    refusedPowerOffs += 1
                    continue
                }
                nodes[id].ended = now
                if let since = nodes[id].idleSince { idleTotal += now - since }
                lastPowerOff[nodes[id].pool] = now
            }
        }

        func done() -> Bool {
            guard nextJob >= jobs.count, pending.allSatisfy({ !runnable.contains($0.id) }), running.isEmpty else {
                return false
            }
            for (index, spec) in pools.enumerated()
            where nodes.count(where: { $0.pool == index && $0.ended == nil })
                > spec.minNodes
            {
                return now >= lastJobEnd + 3600
            }
            return true
        }

        while !done() {
            var next = nextTick
            if nextJob < jobs.count { next = min(next, jobs[nextJob].submit) }
            for node in nodes where !node.up && node.ended == nil { next = min(next, node.readyAt) }
            for entry in running { next = min(next, entry.end) }
            // Nothing left to run: the run ends an hour after the last job, if the pools are not back by then.
            if nextJob >= jobs.count, running.isEmpty, pending.isEmpty, lastJobEnd + 3600 > now {
                next = min(next, lastJobEnd + 3600)
            }
            now = max(now, next)
            var happened = false
            while nextJob < jobs.count, jobs[nextJob].submit <= now {
                if runnable.contains(jobs[nextJob].id) { pending.append(jobs[nextJob]) }
                nextJob += 1
                happened = true
            }
            for index in nodes.indices
            where !nodes[index].up && nodes[index].ended == nil
                && nodes[index].readyAt <= now
            {
                if nodes[index].failsToBoot {
                    nodes[index].ended = now
                } else {
                    nodes[index].up = true
                    nodes[index].idleSince = now
                }
                happened = true
            }
            running.removeAll { entry in
                guard entry.end <= now else { return false }
                let job = byID[entry.job]!
                nodes[entry.node].free = nodes[entry.node].free + job.resources
                nodes[entry.node].running.remove(job.id)
                if nodes[entry.node].running.isEmpty { nodes[entry.node].idleSince = now }
                lastJobEnd = max(lastJobEnd, entry.end)
                happened = true
                return true
            }
            schedule()
            let tick = now >= nextTick
            if tick || (happened && policy.eventDriven) {
                apply(policy.decide(view()))
                schedule()
            }
            if tick { nextTick = now + policy.period }
        }
        for index in nodes.indices where nodes[index].ended == nil {
            nodes[index].ended = now
            if let since = nodes[index].idleSince { idleTotal += now - since }
        }

        return Metrics.collect(
            policy: policy.name, jobs: jobs.filter { runnable.contains($0.id) }, waits: waits,
            nodes: nodes.map { ($0.requested, $0.ended ?? now) }, parameters: parameters, bootEvents: nodes.count,
            refusedPowerOffs: refusedPowerOffs, thrash: thrash, idle: idleTotal)
    }
}

/// The outcome of one policy on one trace.
public struct Metrics: Sendable, Equatable {
    public struct Waits: Sendable, Equatable {
        public var jobs: Int
        public var mean: Double
        public var p95: Double
        /// Jobs that waited at all (a p95 of 0 needs at most 5 % of them).
        public var waited: Int = 0
    }

    public var policy: String
    public var waits: [String: Waits]
    public var nodeHours: Double
    public var idleNodeHours: Double
    public var bootEvents: Int
    public var thrash: Int
    public var slaViolations: Int
    public var refusedPowerOffs: Int
    public var unfinished: Int

    static func collect(
        policy: String, jobs: [Job], waits: [Int: Double], nodes: [(start: Double, end: Double)],
        parameters: Simulator.Parameters, bootEvents: Int,
        refusedPowerOffs: Int, thrash: Int, idle: Double
    ) -> Metrics {
        var groups: [String: Waits] = [:]
        for (kind, members) in [("gpu", jobs.filter(\.isGPU)), ("cpu", jobs.filter { !$0.isGPU })]
        where !members.isEmpty {
            let values = members.compactMap { waits[$0.id] }.sorted()
            let mean = values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count)
            let p95 =
                values.isEmpty ? 0 : values[min(values.count - 1, Int((Double(values.count) * 0.95).rounded(.up)) - 1)]
            groups[kind] = Waits(jobs: members.count, mean: mean, p95: p95, waited: values.count { $0 > 0 })
        }
        let granularity = max(parameters.billing, 1e-9)
        let charged = nodes.reduce(0.0) { total, node in
            total + ((node.end - node.start) / granularity).rounded(.up) * granularity
        }
        return Metrics(
            policy: policy, waits: groups, nodeHours: charged / 3600, idleNodeHours: idle / 3600,
            bootEvents: bootEvents, thrash: thrash,
            slaViolations: waits.values.count { $0 > parameters.slaWait }
                + jobs.count { waits[$0.id] == nil },
            refusedPowerOffs: refusedPowerOffs, unfinished: jobs.count { waits[$0.id] == nil })
    }
}
