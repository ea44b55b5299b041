import Foundation

/// A small, fast, seedable generator (SplitMix64): the same seed gives the same trace on every machine.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    public mutating func nextDouble() -> Double { Double(next() >> 11) / Double(1 << 53) }

    public mutating func exponential(mean: Double) -> Double { -mean * log(1 - nextDouble()) }

    /// Log-normal with the given median and shape (sigma of the underlying normal).
    public mutating func logNormal(median: Double, sigma: Double) -> Double {
        let u1 = max(nextDouble(), 1e-12)
        let u2 = nextDouble()
        let normal = (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
        return median * exp(sigma * normal)
    }

    public mutating func uniform(_ range: ClosedRange<Double>) -> Double {
        range.lowerBound + (range.upperBound - range.lowerBound) * nextDouble()
    }
}

/// The workloads the benchmark generates (issue 6): bursts of GPU segmentation jobs, a stream of CPU bone-density
/// jobs, and both together under a day/night cycle.
public enum Workload: String, Sendable, CaseIterable {
    case gpuBurst = "gpu-burst"
    case cpuStream = "cpu-stream"
    case mixed

    /// A GPU segmentation job: one GPU, 4 CPUs, 16 GB.
    public static let segmentation = Resources(cpus: 4, memoryMB: 16_384, gpus: 1)
    /// A bone-density job: 2 CPUs, 4 GB.
    public static let boneDensity = Resources(cpus: 2, memoryMB: 4096)

    public func generate(seed: UInt64) -> [Job] {
        var random = SplitMix64(seed: seed)
        var jobs: [Job] = []
        func add(_ submit: Double, _ runtime: Double, _ resources: Resources) {
            jobs.append(
                Job(id: jobs.count + 1, submit: submit.rounded(), runtime: runtime.rounded(), resources: resources))
        }
        /// 30–60 single-GPU jobs within 2 minutes of `start`, median runtime 8 min.
        func burst(at start: Double) {
            let count = 30 + Int(random.nextDouble() * 31)
            for _ in 0..<count {
                add(start + random.uniform(0...120), random.logNormal(median: 480, sigma: 0.35), Self.segmentation)
            }
        }
        /// Poisson arrivals at `rate` per second (scaled by `cycle` when thinning), 3–5 min, 2 cores.
        func stream(until end: Double, rate: Double, cycle: Bool) {
            var time = 0.0
            while true {
                time += random.exponential(mean: 1 / rate)
                guard time < end else { break }
                if cycle, random.nextDouble() > Self.dayFactor(time) { continue }
                add(time, random.uniform(180...300), Self.boneDensity)
            }
        }
        switch self {
        case .gpuBurst:
            // Three bursts in six hours.
            for start in [600.0, 2.5 * 3600, 4.5 * 3600] { burst(at: start + random.uniform(0...600)) }
        case .cpuStream:
            stream(until: 6 * 3600, rate: 1.0 / 60, cycle: false)
        case .mixed:
            // A day: the stream thinned at night, a burst every four hours of the working day.
            stream(until: 24 * 3600, rate: 1.0 / 60, cycle: true)
            for hour in [9.0, 13.0, 17.0] { burst(at: hour * 3600 + random.uniform(0...1800)) }
        }
        return jobs.sorted { ($0.submit, $0.id) < ($1.submit, $1.id) }
    }

    /// Fraction of the daytime rate at `time` seconds after midnight: 1 from 8:00 to 20:00, 0.2 at night.
    static func dayFactor(_ time: Double) -> Double {
        let hour = time.truncatingRemainder(dividingBy: 86_400) / 3600
        return hour >= 8 && hour < 20 ? 1 : 0.2
    }
}

/// The Standard Workload Format (Feitelson's 18 fields) with a 19th: GPUs per job.
public enum SWF {
    public struct ParseError: Error, CustomStringConvertible {
        public var line: Int
        public var message: String
        public var description: String { "line \(line): \(message)" }
    }

    /// Jobs from SWF text: field 1 id, 2 submit time, 4 run time, 8 requested processors (5, allocated, when -1),
    /// 10 requested memory in KB per processor, 19 GPUs. Comment lines start with `;`; jobs with no run time are
    /// skipped.
    public static func parse(_ text: String) throws(ParseError) -> [Job] {
        var jobs: [Job] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix(";") { continue }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard fields.count >= 18 else {
                throw ParseError(
                    line: index + 1, message: "an SWF job line has 18 fields (19 with GPUs); this has \(fields.count)")
            }
            var numbers: [Double] = []
            for (position, field) in fields.enumerated() {
                guard let value = Double(field) else {
                    throw ParseError(line: index + 1, message: "field \(position + 1) is not a number: '\(field)'")
                }
                numbers.append(value)
            }
            let runtime = numbers[3]
            guard runtime > 0 else { continue }
            let processors = Int(numbers[7] > 0 ? numbers[7] : numbers[4])
            guard processors > 0 else {
                throw ParseError(line: index + 1, message: "the job asks for no processors (fields 5 and 8)")
            }
            let memory = numbers[9] > 0 ? Int(numbers[9]) * processors / 1024 : 0
            let gpus = numbers.count > 18 ? max(0, Int(numbers[18])) : 0
            jobs.append(
                Job(
                    id: Int(numbers[0]), submit: numbers[1], runtime: runtime,
                    resources: Resources(cpus: processors, memoryMB: memory, gpus: gpus)))
        }
        return jobs
    }

    public static func write(_ jobs: [Job]) -> String {
        var lines = ["; deployctl elastic trace: SWF with a 19th field, GPUs per job"]
        for job in jobs {
            let memoryKB = job.resources.cpus > 0 ? job.resources.memoryMB * 1024 / job.resources.cpus : -1
            let fields: [String] = [
                "\(job.id)", "\(Int(job.submit))", "-1", "\(Int(job.runtime))", "\(job.resources.cpus)", "-1", "-1",
                "\(job.resources.cpus)", "\(Int(job.runtime))", "\(memoryKB)", "1", "-1", "-1", "-1", "-1", "-1", "-1",
                "-1", "\(job.resources.gpus)",
            ]
            lines.append(fields.joined(separator: " "))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// The offline bound: a scheduler that knows the future starts every job the moment it is submitted and packs the
/// load perfectly at every instant (jobs may move between nodes), so each pool needs only ⌈load / node⌉ nodes in
/// the tightest dimension at each moment. It asks for each node exactly `bootTime` before it is needed (a boot is
/// charged like any node time, as the simulator charges it), and keeps a node through a lull when the lull is
/// shorter than a boot, powering it off otherwise; where that would take more nodes than the pool's maximum, the
/// pool's maximum (jobs then wait in any schedule). The bound is the larger of that and the plain integral of
/// ⌈load / node⌉ (no boots, no maximum), which is what it was before boots were counted (`bootTime` 0).
public enum OfflineBound {
    public static func nodeHours(jobs: [Job], pools: [PoolSpec], bootTime: Double = 0) -> Double {
        var events: [Int: [(time: Double, delta: Resources, sign: Int)]] = [:]
        for job in jobs {
            guard let pool = DeployctlPolicy.eligiblePools(for: job.resources, in: pools).first else { continue }
            events[pool, default: []].append((job.submit, job.resources, 1))
            events[pool, default: []].append((job.submit + job.runtime, job.resources, -1))
        }
        var total = 0.0
        for (pool, list) in events {
            let node = pools[pool].node
            let maximum = pools[pool].maxNodes
            // The nodes needed over time, as steps (from this time on, this many).
            var steps: [(time: Double, count: Int)] = []
            var load = Resources.zero
            for event in list.sorted(by: { ($0.time, $0.sign) < ($1.time, $1.sign) }) {
                load = event.sign > 0 ? load + event.delta : load - event.delta
                let count = Int(needed(load, node))
                if let last = steps.last, last.time == event.time {
                    steps[steps.count - 1].count = count
                } else {
                    steps.append((event.time, count))
                }
            }
            // The plain integral of ⌈load / node⌉: no boots, no maximum.
            let plain = zip(steps, steps.dropFirst()).reduce(0.0) { $0 + ($1.1.time - $1.0.time) * Double($1.0.count) }
            // Layer k is the k-th node: up while at least k are needed; each of its runs costs a boot unless the
            // gap before it is shorter than one (then the node stays up through the gap).
            var layered = 0.0
            let layers = min(steps.map(\.count).max() ?? 0, maximum)
            for layer in stride(from: 1, through: layers, by: 1) {
                var lastEnd: Double?
                var start: Double?
                for (index, step) in steps.enumerated() {
                    if step.count >= layer, start == nil { start = step.time }
                    let ends = step.count < layer || index == steps.count - 1
                    guard ends, let began = start else { continue }
                    let end = step.time
                    layered += end - began
                    if let lastEnd {
                        layered += min(began - lastEnd, bootTime)
                    } else {
                        layered += bootTime
                    }
                    lastEnd = end
                    start = nil
                }
            }
            total += max(layered, plain)
        }
        return total / 3600
    }

    static func needed(_ load: Resources, _ node: Resources) -> Double {
        var count = 0.0
        if node.cpus > 0 { count = max(count, (Double(load.cpus) / Double(node.cpus)).rounded(.up)) }
        if node.memoryMB > 0 { count = max(count, (Double(load.memoryMB) / Double(node.memoryMB)).rounded(.up)) }
        if node.gpus > 0 { count = max(count, (Double(load.gpus) / Double(node.gpus)).rounded(.up)) }
        return count
    }
}
