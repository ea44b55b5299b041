import Foundation

extension QueueSnapshot {
    /// Reads Kubernetes' pods and nodes: `kubectl get pods --all-namespaces -o json` and `kubectl get nodes -o json`
    /// (v1 lists of Pod and Node objects).
    ///
    /// Pods: one not yet bound to a node (no `spec.nodeName`) is PENDING; one bound to a node, pending or running, is
    /// RUNNING there; succeeded and failed pods, and pods held back by scheduling gates, are left out. The name is
    /// `namespace/name`, the id a 53-bit FNV-1a hash of it, the submit time `metadata.creationTimestamp`. What a pod
    /// needs is Kubernetes' effective request (per resource, the larger of its containers' sum and its largest init
    /// container, plus `spec.overhead`) of cpu, memory and `nvidia.com/gpu`.
    ///
    /// Nodes: capacity is `status.allocatable`, allocated the requests of the pods running there; cordoned
    /// (`spec.unschedulable`) has the flag DRAIN, not Ready the state unknown with NOT_RESPONDING.
    ///
    /// Resources counts whole CPUs and MB (MiB): a pod's request rounds up (250m is 1 CPU), a node's allocatable
    /// rounds down, and the sum of the requests on a node rounds up, to at most its capacity.
    public static func kubernetes(pods: Data, nodes: Data) throws(ParseError) -> QueueSnapshot {
        var jobs: [Job] = []
        var used: [String: PodRequest] = [:]
        for pod in try items(pods, "kubectl get pods -o json", kind: "Pod") {
            let metadata = pod["metadata"] as? [String: Any] ?? [:]
            guard let name = metadata["name"] as? String, !name.isEmpty else {
                throw ParseError(message: "kubectl get pods -o json: a pod without metadata.name")
            }
            let key = "\(metadata["namespace"] as? String ?? "default")/\(name)"
            let spec = pod["spec"] as? [String: Any] ?? [:]
            let status = pod["status"] as? [String: Any] ?? [:]
            let phase = status["phase"] as? String ?? "Pending"
            guard phase != "Succeeded", phase != "Failed", (spec["schedulingGates"] as? [Any] ?? []).isEmpty else {
                continue
            }
            let request = try podRequest(spec, pod: key)
            let node = spec["nodeName"] as? String ?? ""
            if !node.isEmpty { used[node, default: PodRequest()] += request }
            let conditions = status["conditions"] as? [[String: Any]] ?? []
            let scheduling = conditions.first {
                $0["type"] as? String == "PodScheduled" && $0["status"] as? String == "False"
            }
            jobs.append(
                Job(
                    id: podID(key), name: key, state: node.isEmpty ? "PENDING" : "RUNNING",
                    reason: scheduling?["reason"] as? String ?? "",
                    submit: timestamp(metadata["creationTimestamp"] as? String), nodeCount: 1,
                    perNode: Resources(
                        cpus: ceilDiv(request.millicores, 1000), memoryMB: ceilDiv(request.bytes, 1 << 20),
                        gpus: request.gpus),
                    nodes: node.isEmpty ? [] : [node]))
        }

        var result: [Node] = []
        for node in try items(nodes, "kubectl get nodes -o json", kind: "Node") {
            let metadata = node["metadata"] as? [String: Any] ?? [:]
            guard let name = metadata["name"] as? String, !name.isEmpty else {
                throw ParseError(message: "kubectl get nodes -o json: a node without metadata.name")
            }
            let spec = node["spec"] as? [String: Any] ?? [:]
            let status = node["status"] as? [String: Any] ?? [:]
            let allocatable = try requests(status["allocatable"], "kubectl get nodes -o json: node \(name)")
            let capacity = Resources(
                cpus: allocatable.millicores / 1000, memoryMB: allocatable.bytes >> 20, gpus: allocatable.gpus)
            let sum = used[name] ?? PodRequest()
            let allocated = Resources(
                cpus: min(ceilDiv(sum.millicores, 1000), capacity.cpus),
                memoryMB: min(ceilDiv(sum.bytes, 1 << 20), capacity.memoryMB), gpus: min(sum.gpus, capacity.gpus))
            let addresses = status["addresses"] as? [[String: Any]] ?? []
            let conditions = status["conditions"] as? [[String: Any]] ?? []
            let ready = conditions.first { $0["type"] as? String == "Ready" }?["status"] as? String == "True"
            var flags: [String] = []
            if spec["unschedulable"] as? Bool == true { flags.append("DRAIN") }
            if !ready { flags.append("NOT_RESPONDING") }
            result.append(
                Node(
                    name: name,
                    address: addresses.first { $0["type"] as? String == "InternalIP" }?["address"] as? String ?? "",
                    state: ready ? usage(capacity: capacity, allocated: allocated) : "unknown", flags: flags,
                    capacity: capacity, allocated: allocated))
        }
        return QueueSnapshot(jobs: jobs, nodes: result)
    }

    /// What a pod asks of its node, in millicores, bytes and GPUs.
    struct PodRequest: Equatable {
        var millicores = 0
        var bytes = 0
        var gpus = 0

        /// Adds, saturating at `Int.max`.
        static func += (a: inout PodRequest, b: PodRequest) {
            func add(_ x: Int, _ y: Int) -> Int {
                let (sum, overflow) = x.addingReportingOverflow(y)
                return overflow ? .max : sum
            }
            a = PodRequest(
                millicores: add(a.millicores, b.millicores), bytes: add(a.bytes, b.bytes), gpus: add(a.gpus, b.gpus))
        }

        func maximum(_ other: PodRequest) -> PodRequest {
            PodRequest(
                millicores: max(millicores, other.millicores), bytes: max(bytes, other.bytes),
                gpus: max(gpus, other.gpus))
        }
    }

    /// Kubernetes' effective request of a pod spec: per resource, the larger of the sum over its containers and the
    /// largest of its init containers, plus the pod's overhead. A container's request defaults to its limit.
    static func podRequest(_ spec: [String: Any], pod: String) throws(ParseError) -> PodRequest {
        func container(_ entry: [String: Any]) throws(ParseError) -> PodRequest {
            let resources = entry["resources"] as? [String: Any] ?? [:]
            let what = "kubectl get pods -o json: pod \(pod), container \(entry["name"] as? String ?? "?")"
            var limits = resources["limits"] as? [String: Any] ?? [:]
            limits.merge(resources["requests"] as? [String: Any] ?? [:]) { $1 }
            return try requests(limits, what)
        }
        var sum = PodRequest()
        for entry in spec["containers"] as? [[String: Any]] ?? [] { sum += try container(entry) }
        var request = sum
        for entry in spec["initContainers"] as? [[String: Any]] ?? [] {
            request = try request.maximum(container(entry))
        }
        request += try requests(spec["overhead"], "kubectl get pods -o json: pod \(pod), overhead")
        return request
    }

    /// cpu, memory and nvidia.com/gpu of a resource list (`{"cpu": "250m", "memory": "1Gi"}`).
    static func requests(_ list: Any?, _ what: String) throws(ParseError) -> PodRequest {
        let list = list as? [String: Any] ?? [:]
        func amount(_ resource: String, scale: Int) throws(ParseError) -> Int {
            guard let value = list[resource] else { return 0 }
            guard let text = value as? String, let amount = quantity(text, scale: scale) else {
                throw ParseError(message: "\(what): \(resource) \(value) is not a quantity")
            }
            return amount
        }
        return PodRequest(
            millicores: try amount("cpu", scale: 3), bytes: try amount("memory", scale: 0),
            gpus: try amount("nvidia.com/gpu", scale: 0))
    }

    /// A Kubernetes quantity (`250m`, `1.5`, `512Mi`, `1G`, `2e3`) times 10^scale, rounded up as Kubernetes'
    /// `Value()` (scale 0) and `MilliValue()` (scale 3) do; nil when malformed, negative or too large.
    static func quantity(_ text: String, scale: Int) -> Int? {
        var rest = Substring(text)
        if rest.first == "+" { rest.removeFirst() }
        let number = rest.prefix { ("0"..."9").contains($0) || $0 == "." }
        rest = rest.dropFirst(number.count)
        let parts = number.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, number.contains(where: { $0 != "." }) else { return nil }
        var fraction = parts.count == 2 ? String(parts[1]) : ""
        while fraction.last == "0" { fraction.removeLast() }
        var exponent = scale - fraction.count
        var binary = 0
        switch rest {
        case "": break
        case "n": exponent -= 9
        case "u": exponent -= 6
        case "m": exponent -= 3
        case "k": exponent += 3
        case "M": exponent += 6
        case "G": exponent += 9
        case "T": exponent += 12
        case "P": exponent += 15
        case "E": exponent += 18
        case "Ki": binary = 10
        case "Mi": binary = 20
        case "Gi": binary = 30
        case "Ti": binary = 40
        case "Pi": binary = 50
        case "Ei": binary = 60
        default:
            guard rest.first == "e" || rest.first == "E", let power = Int(rest.dropFirst()), abs(power) <= 100 else {
                return nil
            }
            exponent += power
        }
        let digits = (parts[0] + fraction).drop { $0 == "0" }
        guard digits.count <= 18, var numerator = Int(digits.isEmpty ? "0" : digits) else { return nil }
        var denominator = 1
        for _ in 0..<binary where numerator > 0 {
            let (product, overflow) = numerator.multipliedReportingOverflow(by: 2)
            guard !overflow else { return nil }
            numerator = product
        }
        for _ in 0..<abs(exponent) where numerator > 0 {
            if exponent > 0 {
                let (product, overflow) = numerator.multipliedReportingOverflow(by: 10)
                guard !overflow else { return nil }
                numerator = product
            } else {
                let (product, overflow) = denominator.multipliedReportingOverflow(by: 10)
                guard !overflow else { return 1 }  // a positive amount far below one unit
                denominator = product
            }
        }
        return ceilDiv(numerator, denominator)
    }

    /// `a / b` rounded up, for `a >= 0`, `b > 0`.
    static func ceilDiv(_ a: Int, _ b: Int) -> Int { a / b + (a % b == 0 ? 0 : 1) }

    /// A stable id for a pod: FNV-1a (64 bits) of `namespace/name`, masked to 53 bits.
    static func podID(_ key: String) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return Int(hash & (1 << 53 - 1))
    }

    /// An RFC 3339 time (`2024-05-02T09:14:07Z`) in seconds since 1970; 0 when absent or malformed.
    static func timestamp(_ text: String?) -> Double {
        guard let text, let date = try? Date(text, strategy: .iso8601) else { return 0 }
        return date.timeIntervalSince1970
    }

    /// The objects of a `kubectl get -o json` list (or the one object `kubectl get KIND NAME` prints).
    static func items(_ data: Data, _ what: String, kind: String) throws(ParseError) -> [[String: Any]] {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ParseError(message: "\(what): not a JSON object")
        }
        if object["kind"] as? String == kind { return [object] }
        guard let items = object["items"] as? [[String: Any]] else {
            throw ParseError(message: "\(what): not a list of \(kind) objects (no 'items')")
        }
        if let other = items.lazy.compactMap({ $0["kind"] as? String }).first(where: { $0 != kind }) {
            throw ParseError(message: "\(what): an item of kind \(other), not \(kind)")
        }
        return items
    }
}
