import Foundation

/// A batch queue at one moment: its jobs (in SLURM's terms: PENDING, CONFIGURING, RUNNING, …) with what each needs
/// per node, and its nodes with their capacity, allocation and state. Read from SLURM (`squeue --json` and
/// `sinfo --json`, OpenAPI v0.0.38, SLURM 22.05) here; other queues map onto the same terms.
public struct QueueSnapshot: Sendable, Equatable {
    public struct Job: Sendable, Equatable {
        public var id: Int
        public var name: String
        /// PENDING, CONFIGURING (allocated to nodes still powering up), RUNNING, …
        public var state: String
        public var reason: String
        public var submit: Double
        public var nodeCount: Int
        /// What it needs on each of its nodes.
        public var perNode: Resources
        public var nodes: [String]

        /// A job that needs nodes: pending, or allocated to nodes that are still coming up.
        public var waits: Bool { state == "PENDING" || state == "CONFIGURING" }
    }

    public struct Node: Sendable, Equatable {
        public var name: String
        public var address: String
        /// idle, mixed, allocated, down, unknown, … (lower case, as sinfo gives it), with its flags.
        public var state: String
        public var flags: [String]
        public var capacity: Resources
        public var allocated: Resources

        public var free: Resources { capacity - allocated }
    }

    public var jobs: [Job]
    public var nodes: [Node]

    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public var message: String
        public var description: String { message }
    }

    public static func slurm(squeue: Data, sinfo: Data) throws(ParseError) -> QueueSnapshot {
        let queue = try document(squeue, "squeue --json")
        let info = try document(sinfo, "sinfo --json")
        guard let jobEntries = queue["jobs"] as? [[String: Any]] else {
            throw ParseError(message: "squeue --json: no 'jobs' list")
        }
        guard let nodeEntries = info["nodes"] as? [[String: Any]] else {
            throw ParseError(message: "sinfo --json: no 'nodes' list")
        }
        var jobs: [Job] = []
        for entry in jobEntries {
            guard let id = int(entry["job_id"]) else {
                throw ParseError(message: "squeue --json: a job without job_id")
            }
            let count = max(1, int(entry["node_count"]) ?? 1)
            let cpus = int(entry["minimum_cpus_per_node"]) ?? ((int(entry["cpus"]) ?? 1) + count - 1) / count
            var memory = int(entry["memory_per_node"]) ?? 0
            if memory == 0, let perCPU = int(entry["memory_per_cpu"]) { memory = perCPU * cpus }
            if memory == 0, let total = tres(entry["tres_req_str"] as? String)["mem"] { memory = total / count }
            var gpus = gpuCount(entry["tres_per_node"] as? String)
            if gpus == 0 { gpus = (gpuCount(entry["tres_per_job"] as? String) + count - 1) / count }
            jobs.append(
                Job(
                    id: id, name: entry["name"] as? String ?? "", state: entry["job_state"] as? String ?? "",
                    reason: entry["state_reason"] as? String ?? "", submit: Double(int(entry["submit_time"]) ?? 0),
                    nodeCount: count, perNode: Resources(cpus: cpus, memoryMB: memory, gpus: gpus),
                    nodes: expand(entry["nodes"] as? String ?? "")))
        }
        var nodes: [Node] = []
        for entry in nodeEntries {
            guard let name = entry["name"] as? String else {
                throw ParseError(message: "sinfo --json: a node without a name")
            }
            let capacity = Resources(
                cpus: int(entry["cpus"]) ?? 0, memoryMB: int(entry["real_memory"]) ?? 0,
                gpus: gpuCount(entry["gres"] as? String))
            let allocated = Resources(
                cpus: int(entry["alloc_cpus"]) ?? 0, memoryMB: int(entry["alloc_memory"]) ?? 0,
                gpus: gpuCount(entry["gres_used"] as? String))
            nodes.append(
                Node(
                    name: name, address: entry["address"] as? String ?? "", state: entry["state"] as? String ?? "",
                    flags: entry["state_flags"] as? [String] ?? [], capacity: capacity, allocated: allocated))
        }
        return QueueSnapshot(jobs: jobs, nodes: nodes)
    }

    private static func document(_ data: Data, _ what: String) throws(ParseError) -> [String: Any] {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ParseError(message: "\(what): not a JSON object")
        }
        if let errors = object["errors"] as? [[String: Any]], let first = errors.first {
            throw ParseError(message: "\(what) reported an error: \(first["error"] ?? first)")
        }
        return object
    }

    static func int(_ value: Any?) -> Int? {
        switch value {
        case let number as Int: return number
        case let number as Double: return Int(number)
        case let text as String: return Int(text)
        case let object as [String: Any]:  // newer OpenAPI versions: {"set": true, "number": N}
            return (object["set"] as? Bool ?? true) ? int(object["number"]) : nil
        default: return nil
        }
    }

    /// `cpu=2,mem=1000M,node=1` → ["cpu": 2, "mem": 1000] (memory in MB).
    static func tres(_ text: String?) -> [String: Int] {
        var result: [String: Int] = [:]
        for pair in (text ?? "").split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            var value = String(parts[1])
            var scale = 1.0
            if let unit = value.last, unit.isLetter {
                value.removeLast()
                scale = ["K": 1.0 / 1024, "M": 1, "G": 1024, "T": 1_048_576][String(unit)] ?? 1
            }
            if let number = Double(value) { result[String(parts[0])] = Int(number * scale) }
        }
        return result
    }

    /// GPUs in a GRES string: `gres:gpu:2`, `gpu:a100:4`, `gpu:2(S:0-1)`, `gpu:1(IDX:0)`, several comma-separated.
    static func gpuCount(_ text: String?) -> Int {
        // Drop the parenthesised details first: they hold colons and commas of their own (S:0-1, IDX:0,2).
        var plain = ""
        var depth = 0
        for character in text ?? "" {
            if character == "(" { depth += 1 }
            if depth == 0 { plain.append(character) }
            if character == ")" { depth = max(0, depth - 1) }
        }
        var total = 0
        for item in plain.split(separator: ",") {
            var fields = item.split(separator: ":").map(String.init)
            if fields.first == "gres" { fields.removeFirst() }
            guard fields.first == "gpu", fields.count >= 2 else { continue }
            let last = fields[fields.count - 1]
            let digits = last.prefix { $0.isNumber }
            total += Int(digits) ?? (fields.count == 2 ? 1 : 0)
        }
        return total
    }

    /// Expands a SLURM hostlist: `cpu1`, `w[1-3,7]`, `a1,b[01-02]` → names.
    static func expand(_ hostlist: String) -> [String] {
        var names: [String] = []
        var item = ""
        var depth = 0
        func flush() {
            guard !item.isEmpty else { return }
            if let open = item.firstIndex(of: "["), let close = item.lastIndex(of: "]") {
                let prefix = String(item[..<open])
                let suffix = String(item[item.index(after: close)...])
                for range in item[item.index(after: open)..<close].split(separator: ",") {
                    let bounds = range.split(separator: "-", maxSplits: 1).map(String.init)
                    if bounds.count == 2, let low = Int(bounds[0]), let high = Int(bounds[1]), low <= high {
                        let width = bounds[0].count
                        for number in low...high {
                            let text = String(number)
                            names.append(
                                prefix + String(repeating: "0", count: max(0, width - text.count)) + text + suffix)
                        }
                    } else {
                        names.append(prefix + bounds[0] + suffix)
                    }
                }
            } else {
                names.append(item)
            }
            item = ""
        }
        for character in hostlist {
            if character == "[" { depth += 1 }
            if character == "]" { depth -= 1 }
            if character == ",", depth == 0 {
                flush()
            } else {
                item.append(character)
            }
        }
        flush()
        return names
    }

    /// How many jobs run on the node now.
    public func runningJobs(on node: String) -> Int {
        jobs.count { $0.state == "RUNNING" && $0.nodes.contains(node) }
    }

    /// The policy's view: each SLURM node in the pool `pool(name)` names (nodes of no pool are left out), the jobs
    /// that wait. Down or drained nodes are left out too: they take no jobs, so they are neither room nor idle.
    public func view(now: Double, pools: [PoolSpec], pool: (String) -> String?, idleSince: (String) -> Double?)
        -> ClusterView
    {
        var viewNodes: [ClusterView.Node] = []
        for (index, node) in nodes.enumerated() {
            guard let name = pool(node.name), let poolIndex = pools.firstIndex(where: { $0.name == name }) else {
                continue
            }
            let state = node.state.lowercased()
            let flags = Set(node.flags.map { $0.uppercased() })
            guard !["down", "drained", "draining", "fail", "failing"].contains(state), !flags.contains("DRAIN")
            else { continue }
            let booting = state == "unknown" || flags.contains("POWERING_UP") || flags.contains("NOT_RESPONDING")
            let running = runningJobs(on: node.name)
            viewNodes.append(
                ClusterView.Node(
                    id: index, pool: poolIndex, state: booting ? .booting : .up, requested: 0,
                    free: booting ? pools[poolIndex].node : node.free, runningJobs: running,
                    idleSince: running == 0 && !booting ? idleSince(node.name) ?? now : nil))
        }
        // A CONFIGURING job holds its nodes already: it is demand only while one of them is still coming up (it
        // then takes that booting node's room); on nodes that are up, what it takes is in their allocation.
        let bootingNames = Set(
            viewNodes.filter { $0.state == .booting }.map { nodes[$0.id].name })
        let pending = jobs.filter {
            $0.state == "PENDING"
                || ($0.state == "CONFIGURING" && ($0.nodes.isEmpty || $0.nodes.contains { bootingNames.contains($0) }))
        }.flatMap { job in
            (0..<job.nodeCount).map { _ in
                ClusterView.PendingJob(id: job.id, submit: job.submit, resources: job.perNode)
            }
        }
        return ClusterView(now: now, pools: pools, nodes: viewNodes, pending: pending)
    }
}
