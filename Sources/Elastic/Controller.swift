import Foundation

/// One worker pool as the live controller drives it: its spec, and how its instances are named in the queue
/// (SLURM node `cpu-slurm-worker-3` is instance 3 of pool `cpu_worker` when `queuePrefix` is `cpu-slurm-worker-`).
public struct LivePool: Sendable, Equatable {
    public var spec: PoolSpec
    public var queuePrefix: String

    public init(spec: PoolSpec, queuePrefix: String) {
        self.spec = spec
        self.queuePrefix = queuePrefix
    }

    public func queueName(_ instance: Int) -> String { "\(queuePrefix)\(instance)" }
}

/// What the live controller acts through: the queue it watches and the deployment whose pools it resizes.
public protocol ElasticBackend: Sendable {
    /// The queue and its nodes now.
    func observe() async throws -> QueueSnapshot
    /// Each pool's instance numbers as the deployment has them.
    func instances() async throws -> [String: [Int]]
    /// Brings the pools to these instance numbers (creating and configuring new instances, removing the ones left
    /// out). Long; the controller runs one at a time.
    func apply(_ wanted: [String: [Int]]) async throws
    /// Stops the queue from giving these nodes new jobs (SLURM: drain), or lets it again.
    func drain(_ nodes: [String]) async throws
    func resume(_ nodes: [String]) async throws
}

/// A decision the controller took, for the log and `elastic status`.
public struct ControllerEvent: Sendable, Equatable, Codable {
    public var time: Double
    /// power-on, power-off, drain-aborted, applied, apply-failed, registered, never-registered, observe-failed
    public var kind: String
    public var pool: String?
    public var nodes: [String]
    public var message: String
    /// For power-on: seconds from the submission of the waiting jobs it was the first decision for to the decision
    /// (the longest).
    public var latency: Double?
}

/// The state `elastic status` shows: pools with their nodes, the demand waiting, recent events and the
/// submission-to-decision latencies measured.
public struct ControllerStatus: Sendable, Equatable, Codable {
    public struct NodeStatus: Sendable, Equatable, Codable {
        public var name: String
        public var instance: Int
        /// booting, idle, busy, draining
        public var state: String
        public var idleSeconds: Double?
    }

    public struct PoolStatus: Sendable, Equatable, Codable {
        public var name: String
        public var minNodes: Int
        public var maxNodes: Int
        public var nodes: [NodeStatus]
        /// The boot time learned from this run's boots (mean), if any.
        public var bootEstimate: Double?
    }

    public var deployment: String
    public var updated: Double
    public var pid: Int32
    public var pools: [PoolStatus]
    public var pendingJobs: Int
    public var pendingCPUs: Int
    public var pendingGPUs: Int
    public var events: [ControllerEvent]
    public var latencies: [Double]
}

/// The live elastic controller: every `period` seconds it reads the queue, asks the policy, and carries out the
/// decision through the backend — power-ons queued into one deployment change at a time, power-offs only after the
/// node is drained and seen without a job. The policy is the same code the simulator runs.
public actor ElasticController {
    public let deployment: String
    public let pools: [LivePool]
    var policy: DeployctlPolicy
    let backend: any ElasticBackend
    let clock: @Sendable () -> Double
    /// A node asked for that has not registered after this long is removed (the policy then asks again).
    public var registerTimeout: Double = 600

    var current: [String: Set<Int>] = [:]
    /// Instances asked for and not yet registered with the queue, with when they were asked for.
    var booting: [String: [Int: Double]] = [:]
    /// Power-ons decided, not yet handed to the backend.
    var queuedAdds: [String: Int] = [:]
    /// Drained nodes waiting for removal.
    var queuedRemovals: [String: Set<Int>] = [:]
    var applying: Task<Void, Never>?
    /// After a failed change: when to run it again.
    var retryAt: Double?
    public var retryDelay: Double = 30
    var idleSince: [String: Double] = [:]
    /// Jobs a power-on was already decided for (their latency is measured once).
    var served: Set<Int> = []
    var bootTimes: [String: [Double]] = [:]
    var learned: [String: Resources] = [:]
    public private(set) var events: [ControllerEvent] = []
    public private(set) var latencies: [Double] = []
    var lastSnapshot: QueueSnapshot?
    let onEvent: @Sendable (ControllerEvent) -> Void

    public init(
        deployment: String, pools: [LivePool], settings: ElasticSettings, backend: any ElasticBackend,
        clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 },
        onEvent: @escaping @Sendable (ControllerEvent) -> Void = { _ in }
    ) {
        self.deployment = deployment
        self.pools = pools
        self.policy = DeployctlPolicy(settings: settings)
        self.backend = backend
        self.clock = clock
        self.onEvent = onEvent
    }

    public func setRegisterTimeout(_ seconds: Double) { registerTimeout = seconds }

    func record(_ event: ControllerEvent) {
        events.append(event)
        if events.count > 200 { events.removeFirst(events.count - 200) }
        onEvent(event)
    }

    /// Reads the deployment's instances; the ones not yet registered with the queue count as booting.
    public func start() async throws {
        let instances = try await backend.instances()
        let snapshot = try await backend.observe()
        let now = clock()
        for pool in pools {
            let numbers = Set(instances[pool.spec.name] ?? [])
            current[pool.spec.name] = numbers
            for number in numbers where !snapshot.nodes.contains(where: { $0.name == pool.queueName(number) }) {
                booting[pool.spec.name, default: [:]][number] = now
            }
        }
    }

    /// Waits for the deployment change in progress, if any.
    public func settle() async { await applying?.value }

    /// One round: observe, decide, act.
    public func tick() async {
        let snapshot: QueueSnapshot
        do {
            snapshot = try await backend.observe()
        } catch {
            record(ControllerEvent(time: clock(), kind: "observe-failed", nodes: [], message: "\(error)"))
            return
        }
        let now = clock()
        lastSnapshot = snapshot
        var owner: [String: (pool: Int, instance: Int)] = [:]
        for (index, pool) in pools.enumerated() {
            for number in current[pool.spec.name] ?? []
            where !(queuedRemovals[pool.spec.name]?.contains(number) ?? false) {
                owner[pool.queueName(number)] = (index, number)
            }
        }
        // Registrations: a booting instance whose node the queue lists as usable has booted.
        for node in snapshot.nodes {
            guard let (index, number) = owner[node.name], let asked = booting[pools[index].spec.name]?[number],
                Self.usable(node)
            else { continue }
            booting[pools[index].spec.name]?[number] = nil
            bootTimes[pools[index].spec.name, default: []].append(now - asked)
            record(
                ControllerEvent(
                    time: now, kind: "registered", pool: pools[index].spec.name, nodes: [node.name],
                    message: String(format: "up %.1f s after it was asked for", now - asked)))
        }
        // Nodes that never registered are given up on (and removed); the policy asks for others.
        for pool in pools {
            for (number, asked) in booting[pool.spec.name] ?? [:] where now - asked > registerTimeout {
                booting[pool.spec.name]?[number] = nil
                queuedRemovals[pool.spec.name, default: []].insert(number)
                record(
                    ControllerEvent(
                        time: now, kind: "never-registered", pool: pool.spec.name, nodes: [pool.queueName(number)],
                        message: "not registered \(Int(registerTimeout)) s after it was asked for; removing it"))
            }
        }
        for node in snapshot.nodes {
            if snapshot.runningJobs(on: node.name) > 0 || !Self.usable(node) {
                idleSince[node.name] = nil
            } else if idleSince[node.name] == nil {
                idleSince[node.name] = now
            }
        }

        let specs = effectiveSpecs(snapshot, owner: owner)
        var view = snapshot.view(
            now: now, pools: specs, pool: { owner[$0].map { self.pools[$0.pool].spec.name } },
            idleSince: { self.idleSince[$0] })
        var syntheticID = 1_000_000
        for (index, pool) in pools.enumerated() {
            let registered = Set(view.nodes.filter { $0.pool == index }.map(\.id))
            let waiting =
                (booting[pool.spec.name] ?? [:]).keys.filter { number in
                    guard let position = snapshot.nodes.firstIndex(where: { $0.name == pool.queueName(number) })
                    else { return true }
                    return !registered.contains(position)
                }.count
            for _ in 0..<waiting {
                view.nodes.append(
                    ClusterView.Node(
                        id: syntheticID, pool: index, state: .booting, requested: now, free: specs[index].node,
                        runningJobs: 0, idleSince: nil))
                syntheticID += 1
            }
        }
        let decision = policy.decide(view)

        // Power-ons not yet handed over follow the latest decision: demand that went away takes them back.
        var wanted: [String: Int] = [:]
        for (index, count) in decision.powerOn { wanted[pools[index].spec.name] = count }
        let before = queuedAdds
        queuedAdds = wanted.filter { $0.value > 0 }
        for (index, pool) in pools.enumerated() {
            let count = queuedAdds[pool.spec.name, default: 0] - before[pool.spec.name, default: 0]
            guard count > 0 else { continue }
            // The waiting jobs this pool can take: the decision's latency is measured for those seen first now.
            let mine = snapshot.jobs.filter {
                $0.waits && DeployctlPolicy.eligiblePools(for: $0.perNode, in: specs).contains(index)
            }
            let fresh = mine.filter { !served.contains($0.id) }
            served.formUnion(fresh.map(\.id))
            let waited = fresh.map { max(0, now - $0.submit) }
            latencies += waited
            record(
                ControllerEvent(
                    time: now, kind: "power-on", pool: pool.spec.name, nodes: [],
                    message: "\(count) node(s) for \(mine.count) waiting job(s)", latency: waited.max()))
        }
        let off = decision.powerOff.compactMap { id -> (Int, Int, String)? in
            guard id < snapshot.nodes.count, let (index, number) = owner[snapshot.nodes[id].name] else { return nil }
            return (index, number, snapshot.nodes[id].name)
        }
        if !off.isEmpty { await drainAndQueue(off) }
        startApplyIfNeeded(now: now)
    }

    /// Drains the nodes, then checks again that none runs a job: those go to removal, the others are resumed.
    func drainAndQueue(_ nodes: [(pool: Int, instance: Int, name: String)]) async {
        let names = nodes.map(\.name)
        do {
            try await backend.drain(names)
            let after = try await backend.observe()
            var busy: [String] = []
            for node in nodes {
                if after.jobs.contains(where: { !$0.waits && $0.state != "COMPLETED" && $0.nodes.contains(node.name) })
                {
                    busy.append(node.name)
                } else {
                    queuedRemovals[pools[node.pool].spec.name, default: []].insert(node.instance)
                    idleSince[node.name] = nil
                }
            }
            if !busy.isEmpty {
                try await backend.resume(busy)
                record(
                    ControllerEvent(
                        time: clock(), kind: "drain-aborted", nodes: busy, message: "a job started there; resumed"))
            }
            let removing = names.filter { !busy.contains($0) }
            if !removing.isEmpty {
                for (index, pool) in pools.enumerated() {
                    let mine = nodes.filter { $0.pool == index && removing.contains($0.name) }.map(\.name)
                    guard !mine.isEmpty else { continue }
                    record(
                        ControllerEvent(
                            time: clock(), kind: "power-off", pool: pool.spec.name, nodes: mine,
                            message: "idle for the pool's idle time; drained"))
                }
            }
        } catch {
            record(ControllerEvent(time: clock(), kind: "drain-failed", nodes: names, message: "\(error)"))
        }
    }

    /// Hands the queued power-ons and removals to the backend as one change, unless one is in progress.
    func startApplyIfNeeded(now: Double) {
        let retry = retryAt.map { now >= $0 } ?? false
        guard applying == nil,
            queuedAdds.values.contains(where: { $0 > 0 }) || queuedRemovals.values.contains(where: { !$0.isEmpty })
                || retry
        else { return }
        retryAt = nil
        var wanted: [String: [Int]] = [:]
        var added: [String: [Int]] = [:]
        for pool in pools {
            let name = pool.spec.name
            let leaving = queuedRemovals[name] ?? []
            var numbers = (current[name] ?? []).subtracting(leaving)
            var next = 0
            for _ in 0..<queuedAdds[name, default: 0] {
                while numbers.contains(next) || leaving.contains(next) { next += 1 }
                numbers.insert(next)
                added[name, default: []].append(next)
            }
            wanted[name] = numbers.sorted()
        }
        queuedAdds = [:]
        queuedRemovals = [:]
        for (name, numbers) in added {
            for number in numbers { booting[name, default: [:]][number] = now }
        }
        let backend = self.backend
        applying = Task {
            let started = clock()
            do {
                try await backend.apply(wanted)
                finishApply(wanted: wanted, error: nil, seconds: clock() - started)
            } catch {
                finishApply(wanted: wanted, error: error, seconds: clock() - started)
            }
        }
    }

    func finishApply(wanted: [String: [Int]], error: (any Error)?, seconds: Double) {
        applying = nil
        // The deployment record holds `wanted` either way: a failed change is resumed by the next one.
        for (name, numbers) in wanted {
            let kept = Set(numbers)
            for gone in (current[name] ?? []).subtracting(kept) { booting[name]?[gone] = nil }
            current[name] = kept
        }
        let summary = wanted.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.count)" }.joined(separator: " ")
        if let error {
            // Tried again after `retryDelay` even if nothing else changes (steps that failed run again; a node
            // that keeps failing is replaced once its register timeout passes).
            retryAt = clock() + retryDelay
            record(
                ControllerEvent(
                    time: clock(), kind: "apply-failed", nodes: [],
                    message: "\(summary): \(error); trying again in \(Int(retryDelay)) s"))
        } else {
            record(
                ControllerEvent(
                    time: clock(), kind: "applied", nodes: [],
                    message: String(format: "\(summary) in %.1f s", seconds)))
        }
        startApplyIfNeeded(now: clock())
    }

    /// A node that takes jobs: registered and neither down, drained nor still coming up.
    static func usable(_ node: QueueSnapshot.Node) -> Bool {
        let state = node.state.lowercased()
        let flags = Set(node.flags.map { $0.uppercased() })
        return ["idle", "mixed", "allocated", "completing"].contains(state)
            && flags.isDisjoint(with: ["DRAIN", "NOT_RESPONDING", "POWERING_UP", "POWERED_DOWN"])
    }

    /// The pools' specs with each node's resources as its registered nodes report them (a template's 8 CPUs may
    /// be 2 on the machine that runs it), kept after those nodes are gone: booting nodes are then counted at what
    /// they will really offer.
    func effectiveSpecs(_ snapshot: QueueSnapshot, owner: [String: (pool: Int, instance: Int)]) -> [PoolSpec] {
        pools.enumerated().map { index, pool in
            var spec = pool.spec
            let seen = snapshot.nodes.filter { owner[$0.name]?.pool == index && $0.capacity.cpus > 0 }.map(\.capacity)
            if let smallest = seen.min(by: { ($0.cpus, $0.memoryMB, $0.gpus) < ($1.cpus, $1.memoryMB, $1.gpus) }) {
                learned[pool.spec.name] = smallest
            }
            if let known = learned[pool.spec.name] { spec.node = known }
            return spec
        }
    }

    public func status(pid: Int32) -> ControllerStatus {
        let now = clock()
        let snapshot = lastSnapshot ?? QueueSnapshot(jobs: [], nodes: [])
        var poolStatuses: [ControllerStatus.PoolStatus] = []
        for pool in pools {
            let name = pool.spec.name
            var nodes: [ControllerStatus.NodeStatus] = []
            for number in (current[name] ?? []).union((booting[name] ?? [:]).keys).sorted() {
                let queueName = pool.queueName(number)
                let node = snapshot.nodes.first { $0.name == queueName }
                let state: String
                if queuedRemovals[name]?.contains(number) ?? false || node.map({ $0.flags.contains("DRAIN") }) ?? false
                {
                    state = "draining"
                } else if booting[name]?[number] != nil || node == nil {
                    state = "booting"
                } else if snapshot.runningJobs(on: queueName) > 0 {
                    state = "busy"
                } else {
                    state = "idle"
                }
                nodes.append(
                    ControllerStatus.NodeStatus(
                        name: queueName, instance: number, state: state,
                        idleSeconds: state == "idle" ? idleSince[queueName].map { now - $0 } : nil))
            }
            let boots = bootTimes[name] ?? []
            poolStatuses.append(
                ControllerStatus.PoolStatus(
                    name: name, minNodes: pool.spec.minNodes, maxNodes: pool.spec.maxNodes, nodes: nodes,
                    bootEstimate: boots.isEmpty ? nil : boots.reduce(0, +) / Double(boots.count)))
        }
        let waiting = snapshot.jobs.filter(\.waits)
        return ControllerStatus(
            deployment: deployment, updated: now, pid: pid, pools: poolStatuses, pendingJobs: waiting.count,
            pendingCPUs: waiting.reduce(0) { $0 + $1.perNode.cpus * $1.nodeCount },
            pendingGPUs: waiting.reduce(0) { $0 + $1.perNode.gpus * $1.nodeCount },
            events: Array(events.suffix(20)), latencies: latencies)
    }
}
