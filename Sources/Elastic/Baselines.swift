/// CLUES with its defaults (grycap/clues, shared/REFERENCE.md): every 5 s, power-on requests are served first in,
/// first out with head-of-line blocking, booking booting nodes; a job pending for more than 60 s counts as a new
/// request; nodes idle for 1800 s are powered off; no limit on booting nodes. It does not see GPUs: a request fits
/// any node with the CPUs and memory, and powers on nodes in the order they are declared.
public struct CluesPolicy: ElasticPolicy {
    public let name = "clues"
    public let period = 5.0
    public let eventDriven = false
    public var reconsiderTime = 60.0
    public var idleTime = 1800.0

    /// Open power-on requests (job ids) in arrival order, when each job last made one, and nodes booked by a
    /// request until they come up.
    private var requests: [Int] = []
    private var lastRequest: [Int: Double] = [:]
    private var booked: [Int: Resources] = [:]

    public init() {}

    public mutating func decide(_ view: ClusterView) -> Decision {
        var decision = Decision()
        let pendingIDs = Set(view.pending.map(\.id))
        for job in view.pending {
            if let last = lastRequest[job.id] {
                if view.now - last > reconsiderTime, !requests.contains(job.id) {
                    requests.append(job.id)
                    lastRequest[job.id] = view.now
                }
            } else {
                requests.append(job.id)
                lastRequest[job.id] = view.now
            }
        }
        requests.removeAll { !pendingIDs.contains($0) }
        lastRequest = lastRequest.filter { pendingIDs.contains($0.key) }
        // Bookings last while the node boots.
        let bootingIDs = Set(view.nodes.filter { $0.state == .booting }.map(\.id))
        booked = booked.filter { bootingIDs.contains($0.key) }
        let byID = Dictionary(uniqueKeysWithValues: view.pending.map { ($0.id, $0.resources) })
        var poweredOn: [Int: Int] = [:]
        while let head = requests.first, let need = byID[head] {
            let blind = Resources(cpus: need.cpus, memoryMB: need.memoryMB)
            // A booting node with unbooked room takes the request.
            if let node = view.nodes.first(where: {
                $0.state == .booting && blind.fits(in: Self.blind($0.free - (booked[$0.id] ?? .zero)))
            }) {
                booked[node.id, default: .zero] = booked[node.id, default: .zero] + blind
                requests.removeFirst()
                continue
            }
            // Otherwise the first pool, in declaration order, with a node left to power on.
            guard
                let pool = view.pools.indices.first(where: {
                    view.count(pool: $0) + poweredOn[$0, default: 0] < view.pools[$0].maxNodes
                        && blind.fits(in: Self.blind(view.pools[$0].node))
                })
            else { break }  // head-of-line blocking: nothing behind it is served this round
            poweredOn[pool, default: 0] += 1
            requests.removeFirst()
        }
        decision.powerOn = poweredOn
        for node in view.nodes where node.state == .up && node.runningJobs == 0 {
            if let since = node.idleSince, view.now - since >= idleTime,
                view.count(pool: node.pool) - decision.powerOff.count > view.pools[node.pool].minNodes
            {
                decision.powerOff.append(node.id)
            }
        }
        return decision
    }

    static func blind(_ resources: Resources) -> Resources {
        Resources(cpus: resources.cpus, memoryMB: resources.memoryMB)
    }
}

/// Kubernetes Cluster Autoscaler with its defaults (shared/REFERENCE.md): a scan every 10 s; pending work that fits
/// no node that is up or coming up is packed into new nodes of the first pool that fits it (resource-aware, GPUs
/// included); a node unneeded for 10 min is removed, and nothing is removed within 10 min of a scale-up.
public struct AutoscalerPolicy: ElasticPolicy {
    public let name = "cluster-autoscaler"
    public let period = 10.0
    public let eventDriven = false
    public var unneededTime = 600.0
    public var delayAfterAdd = 600.0
    private var lastScaleUp = -Double.infinity

    public init() {}

    public mutating func decide(_ view: ClusterView) -> Decision {
        var decision = Decision()
        var room = view.nodes.map { ($0.pool, $0.free) }
        var opened: [Int: Int] = [:]
        for job in view.pending {
            if let slot = room.indices.first(where: { job.resources.fits(in: room[$0].1) }) {
                room[slot].1 = room[slot].1 - job.resources
                continue
            }
            guard
                let pool = view.pools.indices.first(where: {
                    job.resources.fits(in: view.pools[$0].node)
                        && view.count(pool: $0) + opened[$0, default: 0] < view.pools[$0].maxNodes
                })
            else { continue }
            opened[pool, default: 0] += 1
            room.append((pool, view.pools[pool].node - job.resources))
        }
        decision.powerOn = opened
        if !opened.isEmpty { lastScaleUp = view.now }
        guard view.now - lastScaleUp >= delayAfterAdd else { return decision }
        var remaining = Dictionary(grouping: view.nodes, by: \.pool).mapValues(\.count)
        for node in view.nodes where node.state == .up && node.runningJobs == 0 {
            guard let since = node.idleSince, view.now - since >= unneededTime,
                remaining[node.pool, default: 0] > view.pools[node.pool].minNodes
            else { continue }
            remaining[node.pool, default: 0] -= 1
            decision.powerOff.append(node.id)
        }
        return decision
    }
}
