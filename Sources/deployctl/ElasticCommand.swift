import ArgumentParser
import Elastic
import Foundation
import TOSCA

struct ElasticCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "elastic",
        abstract: "Elastic worker pools: run the controller on a deployment, see its status, simulate policies.",
        subcommands: [ElasticRun.self, ElasticStatus.self, Simulate.self])
}

/// `deployctl elastic simulate`: one policy, or all of them side by side, on one trace.
struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run scaling policies against a job trace in a deterministic simulation.",
        discussion: """
            The simulated cluster has the bone-density study's worker pools: cpu_worker (8 CPUs, 32 GB; 0 to 8 \
            nodes, --cpu-nodes) and gpu_worker (16 CPUs, 64 GB, 1 GPU; 0 to 4 nodes, --gpu-nodes). Jobs wait in a queue and start on the \
            first node with room; a node asked for boots for --boot-time, or fails with --boot-failure \
            probability.

            Workloads: gpu-burst (three bursts of 30-60 single-GPU segmentation jobs, each within 2 minutes, \
            median 8 min), cpu-stream (bone-density jobs, about one a minute for 6 hours, 2 cores, 3-5 min), mixed \
            (a day of both, the stream thinned at night), or an SWF file (a 19th field gives GPUs per job).

            Policies: deployctl (event-driven, GPU-aware bin packing), clues (CLUES defaults: 5 s loop, FIFO with \
            head-of-line blocking, 60 s reconsider time, 1800 s idle time, GPU-blind), cluster-autoscaler (10 s \
            scan, 10 min unneeded and delay after add), static-max (every pool at its maximum). --compare runs \
            them all and adds the offline bound (no waiting, no boot time, perfect packing at every instant).

            Metrics: mean and p95 wait per job kind, node-hours (boot request to power-off, in --billing \
            units), idle node-hours, boots, thrash (a boot within 5 min of a power-off in the same pool), SLA \
            violations (waits over --sla).
            """)

    @Option(help: "gpu-burst, cpu-stream, mixed, or an SWF file; several, comma-separated, run one after another.")
    var workload: String = "mixed"

    @Option(help: "Also draw p95 wait against node-hours, one panel per workload, as SVG into this file.")
    var plot: String?

    @Option(help: "Seed of the generated trace and of boot failures.")
    var seed: UInt64 = 1

    @Option(name: .customLong("boot-time"), help: "How long a node takes to come up (e.g. 120s, 2m).")
    var bootTime: String = "120s"

    @Option(name: .customLong("boot-failure"), help: "Probability that a boot fails (0 to 1).")
    var bootFailure: Double = 0

    @Option(help: "Billing granularity (e.g. 1s, 1m, 1h).")
    var billing: String = "1s"

    @Option(help: "A wait longer than this is an SLA violation.")
    var sla: String = "15m"

    @Option(
        name: .customLong("idle-time"),
        help: "deployctl policy: idle time before a node is powered off, for every pool (10m) or one (POOL=2m).")
    var idleTimes: [String] = []

    @Option(
        name: .customLong("exposed-idle-time"),
        help: """
            deployctl policy: idle time of a node no node of another pool could stand in for, for every pool \
            without GPUs (25m; an --idle-time for every pool sets it too) or one (POOL=15m).
            """)
    var exposedIdleTimes: [String] = []

    @Option(name: .customLong("max-boots"), help: "deployctl policy: nodes booting at once per pool.")
    var maxBoots: Int = 2

    @Option(name: .customLong("spare-slots"), help: "deployctl policy: free CPU slots kept warm per pool.")
    var spareSlots: Int = 0

    @Option(help: "The policy to run: deployctl, clues, cluster-autoscaler or static-max.")
    var policy: String = "deployctl"

    @Flag(help: "Run every policy on the same trace, with the offline bound.")
    var compare = false

    @Option(name: .customLong("write-trace"), help: "Also write the trace, as SWF, to this file.")
    var writeTrace: String?

    @Option(help: "text or json.")
    var format: OutputFormat = .text

    @Option(name: .customLong("cpu-nodes"), help: "Most CPU workers (the template's cpu_worker maximum is 8).")
    var cpuNodes: Int = 8

    @Option(name: .customLong("gpu-nodes"), help: "Most GPU workers (the template's gpu_worker maximum is 4).")
    var gpuNodes: Int = 4

    @Option(help: "Take the worker pools from this template's scalable Compute nodes instead.")
    var template: String?

    @Option(name: [.customShort("i"), .customLong("input")], help: "An input of --template, NAME=VALUE.")
    var input: [String] = []

    var builtInPools: [PoolSpec] {
        [
            PoolSpec(name: "cpu_worker", node: Resources(cpus: 8, memoryMB: 32_768), maxNodes: cpuNodes),
            PoolSpec(name: "gpu_worker", node: Resources(cpus: 16, memoryMB: 65_536, gpus: 1), maxNodes: gpuNodes),
        ]
    }

    /// The template's pools: every scalable node derived from tosca.nodes.Compute, sized by its host capability
    /// (num_cpus, mem_size, num_gpus) and bounded by its min/max instances.
    static func pools(fromTemplate path: String, inputs: [String]) throws -> [PoolSpec] {
        var values: [String: String] = [:]
        for entry in inputs {
            guard let equals = entry.firstIndex(of: "=") else {
                throw ValidationError("-i \(entry): give NAME=VALUE")
            }
            values[String(entry[..<equals])] = String(entry[entry.index(after: equals)...])
        }
        let (result, plan) = ToscaProcessor.plan(path: path, options: ValidationOptions(inputs: values))
        guard let plan else {
            let first = result.errors.first.map { ($0.location.map { "\($0): " } ?? "") + $0.message }
            throw ValidationError("--template \(path) is not valid: \(first ?? "see `deployctl validate`")")
        }
        return try pools(from: plan, describing: "--template \(path)")
    }

    /// A plan's pools: every scalable node derived from tosca.nodes.Compute.
    static func pools(from plan: Plan, describing source: String = "the template") throws -> [PoolSpec] {
        var pools: [PoolSpec] = []
        for (name, node) in plan.nodes {
            guard case .array(let types)? = node["types"], types.contains(.string("tosca.nodes.Compute")),
                node["capabilities"]?["scalable"] != nil, case .int(let maximum)? = node["max_instances"]
            else { continue }
            let host = node["capabilities"]?["host"]
            let cpus = host?["num_cpus"].flatMap { if case .int(let n) = $0 { n } else { nil } } ?? 1
            let gpus = host?["num_gpus"].flatMap { if case .int(let n) = $0 { n } else { nil } } ?? 0
            let memory = host?["mem_size"].flatMap { if case .string(let text) = $0 { megabytes(text) } else { nil } }
            let minimum = node["min_instances"].flatMap { if case .int(let n) = $0 { n } else { nil } } ?? 0
            pools.append(
                PoolSpec(
                    name: name, node: Resources(cpus: cpus, memoryMB: memory ?? 0, gpus: gpus), minNodes: minimum,
                    maxNodes: maximum))
        }
        guard !pools.isEmpty else {
            throw ValidationError("\(source): no scalable Compute node to make a worker pool of")
        }
        return pools
    }

    /// "64 GB", "512 MiB", "2 TB" in MB (TOSCA scalar-unit.size; decimal and binary units both taken as binary MB).
    static func megabytes(_ text: String) -> Int? {
        let parts = text.split(separator: " ")
        guard parts.count == 2, let value = Double(parts[0]) else { return nil }
        let factors: [String: Double] = [
            "b": 1.0 / 1_048_576, "kb": 1.0 / 1024, "kib": 1.0 / 1024, "mb": 1, "mib": 1, "gb": 1024, "gib": 1024,
            "tb": 1_048_576, "tib": 1_048_576,
        ]
        return factors[parts[1].lowercased()].map { Int(value * $0) }
    }

    func run() throws {
        let pools = try template.map { try Self.pools(fromTemplate: $0, inputs: input) } ?? builtInPools
        let parameters = Simulator.Parameters(
            bootTime: try Self.seconds(bootTime, "--boot-time"), bootFailure: bootFailure,
            billing: try Self.seconds(billing, "--billing"), slaWait: try Self.seconds(sla, "--sla"), seed: seed)
        guard (0...1).contains(bootFailure) else {
            throw ValidationError("--boot-failure is a probability from 0 to 1, not \(bootFailure)")
        }
        var settings = ElasticSettings(
            maxConcurrentBoots: maxBoots, spareSlots: spareSlots,
            exposedIdleTime: ElasticSettings.defaultExposedIdleTime)
        try Self.apply(idleTimes: idleTimes, exposedIdleTimes: exposedIdleTimes, to: &settings, pools: pools)
        let workloads = workload.split(separator: ",").map(String.init)
        guard !workloads.isEmpty else { throw ValidationError("--workload names no trace") }
        if writeTrace != nil && workloads.count > 1 {
            throw ValidationError("--write-trace takes one --workload, not \(workloads.count)")
        }
        var texts: [String] = []
        var documents: [[String: Any]] = []
        var panels: [WaitCostPlot.Panel] = []
        for name in workloads {
            let jobs = try trace(name)
            if let writeTrace {
                try SWF.write(jobs).write(toFile: writeTrace, atomically: true, encoding: .utf8)
            }
            let (results, bound) = try simulate(jobs, pools: pools, parameters: parameters, settings: settings)
            texts.append(text(workload: name, jobs: jobs, results: results, bound: bound))
            documents.append(try json(workload: name, jobs: jobs, results: results, bound: bound))
            panels.append(
                WaitCostPlot.Panel(
                    title: "\(URL(fileURLWithPath: name).lastPathComponent) (\(gpuNodes) GPU workers)",
                    results: results, bound: bound))
        }
        if let plot {
            do {
                try WaitCostPlot.svg(panels).write(toFile: plot, atomically: true, encoding: .utf8)
            } catch {
                throw ValidationError("cannot write --plot \(plot): \(error.localizedDescription)")
            }
        }
        switch format {
        case .json:
            let document: Any = documents.count == 1 ? documents[0] : documents
            print(
                String(
                    decoding: try JSONSerialization.data(
                        withJSONObject: document, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self))
        case .text: print(texts.joined(separator: "\n\n"))
        }
    }

    /// Every policy asked for on one trace, and (with --compare) the offline bound.
    func simulate(
        _ jobs: [Job], pools: [PoolSpec], parameters: Simulator.Parameters, settings: ElasticSettings
    ) throws -> ([Metrics], Double?) {
        let simulator = Simulator(pools: pools, jobs: jobs, parameters: parameters)
        let unrunnable = simulator.unrunnable()
        if !unrunnable.isEmpty {
            FileHandle.standardError.write(
                Data(
                    "warning: \(unrunnable.count) job(s) need more than any node offers and are left out (first: job \(unrunnable[0].id), \(unrunnable[0].resources))\n"
                        .utf8))
        }
        let names = compare ? ["deployctl", "clues", "cluster-autoscaler", "static-max"] : [policy]
        var results: [Metrics] = []
        for name in names {
            switch name {
            case "deployctl": results.append(simulator.run(DeployctlPolicy(settings: settings)))
            case "clues": results.append(simulator.run(CluesPolicy()))
            case "cluster-autoscaler": results.append(simulator.run(AutoscalerPolicy()))
            case "static-max": results.append(simulator.run(StaticMaxPolicy()))
            default:
                throw ValidationError(
                    "unknown policy '\(name)'; choose deployctl, clues, cluster-autoscaler or static-max")
            }
        }
        let bound = compare ? OfflineBound.nodeHours(jobs: jobs, pools: pools, bootTime: parameters.bootTime) : nil
        return (results, bound)
    }

    /// `--idle-time 10m` (every pool) and `--idle-time POOL=2m` (one pool), and the same for
    /// `--exposed-idle-time`, into `settings`. An idle time for every pool without an exposed idle time for every
    /// pool sets both: `--idle-time 20s` means nodes go after 20 s.
    static func apply(
        idleTimes: [String], exposedIdleTimes: [String] = [], to settings: inout ElasticSettings, pools: [PoolSpec]
    ) throws {
        func parse(_ entry: String, _ option: String) throws -> (pool: String?, seconds: Double) {
            guard let equals = entry.firstIndex(of: "=") else { return (nil, try seconds(entry, option)) }
            let pool = String(entry[..<equals])
            guard pools.contains(where: { $0.name == pool }) else {
                throw ValidationError(
                    "\(option) \(entry): there is no pool '\(pool)'; the pools are "
                        + pools.map(\.name).joined(separator: ", "))
            }
            return (pool, try seconds(String(entry[entry.index(after: equals)...]), option))
        }
        var everyPool: Double?
        for entry in idleTimes {
            let (pool, value) = try parse(entry, "--idle-time")
            if let pool { settings.poolIdleTimes[pool] = value } else { everyPool = value }
        }
        if let everyPool {
            settings.idleTime = everyPool
            settings.exposedIdleTime = everyPool
        }
        for entry in exposedIdleTimes {
            let (pool, value) = try parse(entry, "--exposed-idle-time")
            if let pool { settings.poolExposedIdleTimes[pool] = value } else { settings.exposedIdleTime = value }
        }
    }

    func trace(_ workload: String) throws -> [Job] {
        if let generated = Workload(rawValue: workload) { return generated.generate(seed: seed) }
        guard FileManager.default.fileExists(atPath: workload) else {
            throw ValidationError(
                "--workload '\(workload)' is neither gpu-burst, cpu-stream, mixed nor an existing SWF file")
        }
        let text: String
        do {
            text = try String(contentsOfFile: workload, encoding: .utf8)
        } catch {
            throw ValidationError("cannot read \(workload): \(error.localizedDescription)")
        }
        do {
            return try SWF.parse(text)
        } catch {
            throw ValidationError("\(workload):\(error.line): \(error.message)")
        }
    }

    /// "90", "90s", "2m", "1h", "1.5h" in seconds.
    static func seconds(_ text: String, _ option: String) throws -> Double {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        for (suffix, factor) in units where trimmed.hasSuffix(suffix) {
            if let value = Double(trimmed.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), value >= 0 {
                return value * factor
            }
        }
        if let value = Double(trimmed), value >= 0 { return value }
        throw ValidationError("\(option) '\(text)' is not a duration such as 90s, 2m or 1h")
    }

    func text(workload: String, jobs: [Job], results: [Metrics], bound: Double?) -> String {
        let gpu = jobs.count(where: \.isGPU)
        var lines = [
            "workload \(workload) (seed \(seed)): \(jobs.count) jobs (\(gpu) GPU, \(jobs.count - gpu) CPU); "
                + "boot \(bootTime), billing \(billing)",
            "",
            Self.row(
                ["policy", "GPU wait mean/p95", "CPU wait mean/p95", "node-h", "idle node-h", "boots", "thrash", "SLA"]
            ),
        ]
        func waits(_ metrics: Metrics, _ kind: String) -> String {
            guard let waits = metrics.waits[kind] else { return "-" }
            return "\(Self.duration(waits.mean)) / \(Self.duration(waits.p95))"
        }
        for metrics in results {
            lines.append(
                Self.row([
                    metrics.policy, waits(metrics, "gpu"), waits(metrics, "cpu"),
                    String(format: "%.2f", metrics.nodeHours),
                    String(format: "%.2f", metrics.idleNodeHours), "\(metrics.bootEvents)", "\(metrics.thrash)",
                    "\(metrics.slaViolations)",
                ]))
        }
        if let bound {
            lines.append(
                Self.row(["offline-bound", "0 / 0", "0 / 0", String(format: "%.2f", bound), "0", "-", "-", "0"]))
        }
        if let ours = results.first(where: { $0.policy == "deployctl" }),
            let clues = results.first(where: { $0.policy == "clues" })
        {
            lines.append("")
            let p95 = { (m: Metrics) in m.waits.values.map(\.p95).max() ?? 0 }
            lines.append(
                "deployctl / clues: node-hours \(Self.ratio(ours.nodeHours, clues.nodeHours)), "
                    + "worst p95 wait \(Self.ratio(p95(ours), p95(clues)))"
                    + (bound.map { ", node-hours \(Self.ratio(ours.nodeHours, $0)) the offline bound" } ?? ""))
        }
        return lines.joined(separator: "\n")
    }

    static func ratio(_ a: Double, _ b: Double) -> String {
        b > 0 ? String(format: "%.2f×", a / b) : "-"
    }

    static func row(_ cells: [String]) -> String {
        let widths = [20, 20, 20, 8, 12, 6, 7, 5]
        return zip(cells, widths).map { cell, width in
            cell.padding(toLength: max(width, cell.count), withPad: " ", startingAt: 0)
        }.joined(separator: " ").trimmingCharacters(in: .whitespaces)
    }

    static func duration(_ seconds: Double) -> String {
        if seconds < 90 { return String(format: "%.0fs", seconds) }
        if seconds < 5400 { return String(format: "%.1fm", seconds / 60) }
        return String(format: "%.1fh", seconds / 3600)
    }

    func json(workload: String, jobs: [Job], results: [Metrics], bound: Double?) throws -> [String: Any] {
        var records: [[String: Any]] = results.map { metrics in
            [
                "policy": metrics.policy,
                "waits": metrics.waits.mapValues {
                    ["jobs": $0.jobs, "mean_s": $0.mean, "p95_s": $0.p95, "waited": $0.waited]
                },
                "node_hours": metrics.nodeHours, "idle_node_hours": metrics.idleNodeHours,
                "boots": metrics.bootEvents, "thrash": metrics.thrash, "sla_violations": metrics.slaViolations,
                "refused_power_offs": metrics.refusedPowerOffs, "unfinished": metrics.unfinished,
            ]
        }
        if let bound { records.append(["policy": "offline-bound", "node_hours": bound]) }
        let document: [String: Any] = [
            "workload": workload, "seed": seed, "jobs": jobs.count, "gpu_jobs": jobs.count(where: \.isGPU),
            "boot_time_s": try Self.seconds(bootTime, "--boot-time"), "results": records,
        ]
        return document
    }
}
