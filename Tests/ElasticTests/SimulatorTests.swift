import Foundation
import Testing

@testable import Elastic

@Suite("the simulator and its traces")
struct SimulatorTests {
    let pools = [cpuPool, gpuPool]

    @Test("the same seed gives the same trace and the same outcome; another seed another trace")
    func deterministic() {
        let trace = Workload.mixed.generate(seed: 7)
        #expect(trace == Workload.mixed.generate(seed: 7))
        #expect(trace != Workload.mixed.generate(seed: 8))
        let simulator = Simulator(pools: pools, jobs: trace, parameters: .init(bootFailure: 0.1, seed: 3))
        #expect(simulator.run(DeployctlPolicy()) == simulator.run(DeployctlPolicy()))
    }

    @Test("the generated workloads are what the issue describes")
    func workloads() {
        let burst = Workload.gpuBurst.generate(seed: 1)
        #expect(burst.allSatisfy { $0.resources == Workload.segmentation })
        #expect((90...180).contains(burst.count), "three bursts of 30–60: \(burst.count)")
        let runtimes = burst.map(\.runtime).sorted()
        #expect(abs(runtimes[runtimes.count / 2] - 480) < 60, "median runtime near 8 min")
        let stream = Workload.cpuStream.generate(seed: 1)
        #expect(stream.allSatisfy { (180...300).contains($0.runtime) && $0.resources == Workload.boneDensity })
        #expect((300...420).contains(stream.count), "about one a minute for six hours: \(stream.count)")
        let day = Workload.mixed.generate(seed: 1).filter { !$0.isGPU }
        let night = day.count { $0.submit < 8 * 3600 }
        let daytime = day.count { $0.submit >= 8 * 3600 && $0.submit < 16 * 3600 }
        #expect(Double(night) < 0.4 * Double(daytime), "night \(night) vs day \(daytime)")
    }

    @Test("every job finishes, GPU jobs only on GPU nodes, nothing busy is powered off; node-hours above the bound")
    func everyPolicyCompletes() {
        for workload in Workload.allCases {
            let jobs = workload.generate(seed: 11)
            let simulator = Simulator(pools: pools, jobs: jobs)
            let bound = OfflineBound.nodeHours(jobs: jobs, pools: pools, bootTime: 120)
            let results = [
                simulator.run(DeployctlPolicy()), simulator.run(CluesPolicy()), simulator.run(AutoscalerPolicy()),
                simulator.run(StaticMaxPolicy()),
            ]
            for metrics in results {
                #expect(metrics.unfinished == 0, "\(workload) \(metrics.policy)")
                #expect(metrics.refusedPowerOffs == 0, "\(workload) \(metrics.policy)")
                #expect(metrics.nodeHours >= bound, "\(workload) \(metrics.policy): \(metrics.nodeHours) < \(bound)")
                #expect(metrics.idleNodeHours <= metrics.nodeHours)
            }
        }
    }

    /// The benchmark's deployctl settings (scripts/bench/elastic-bench.sh) with a given exposed idle time.
    static func benchSettings(exposed: Double?) -> ElasticSettings {
        var settings = ElasticSettings(maxConcurrentBoots: 16, exposedIdleTime: exposed)
        settings.poolIdleTimes["gpu_worker"] = 120
        return settings
    }

    @Test(
        "held exposed CPU nodes take cpu-stream seed 3 to a p95 wait of 0 like CLUES (48 s without), still below CLUES's node-hours"
    )
    func exposedHoldMeetsCluesOnTheStream() {
        let jobs = Workload.cpuStream.generate(seed: 3)
        let simulator = Simulator(pools: [cpuPool, gpuPool], jobs: jobs)
        let held = simulator.run(DeployctlPolicy(settings: Self.benchSettings(exposed: 1500)))
        let before = simulator.run(DeployctlPolicy(settings: Self.benchSettings(exposed: nil)))
        let clues = simulator.run(CluesPolicy())
        #expect(before.waits["cpu"]?.p95 == 48)
        #expect(before.waits["cpu"]?.waited == 33)
        #expect(held.waits["cpu"]?.p95 == 0)
        #expect(held.waits["cpu"]?.waited == 16, "at most 5 % of 369 jobs may wait for a p95 of 0")
        #expect(clues.waits["cpu"]?.p95 == 0)
        #expect(held.nodeHours < clues.nodeHours, "\(held.nodeHours) h against CLUES's \(clues.nodeHours) h")
        #expect(abs(held.nodeHours - 14.713) < 0.001, "\(held.nodeHours)")
    }

    @Test(
        "a CPU node sheltered by busy GPU nodes is not held: the mixed day with 4 GPU workers stays within 1.2× the bound"
    )
    func shelteredNodesAreNotHeld() {
        let jobs = Workload.mixed.generate(seed: 1)
        let pools = [cpuPool, gpuPool]
        let simulator = Simulator(pools: pools, jobs: jobs)
        let bound = OfflineBound.nodeHours(jobs: jobs, pools: pools, bootTime: 120)
        let policy = simulator.run(DeployctlPolicy(settings: Self.benchSettings(exposed: 1500)))
        // Every CPU node held for 25 min, sheltered or not.
        var always = Self.benchSettings(exposed: nil)
        always.poolIdleTimes["cpu_worker"] = 1500
        let held = simulator.run(DeployctlPolicy(settings: always))
        #expect(policy.waits["cpu"]?.p95 == 0)
        #expect(policy.nodeHours < held.nodeHours - 2, "\(policy.nodeHours) h against \(held.nodeHours) h")
        #expect(policy.nodeHours / bound <= 1.2, "\(policy.nodeHours / bound)× the bound")
    }

    @Test("the offline bound pays each boot, and keeps a node through a lull shorter than a boot")
    func offlineBound() {
        func jobs(gap: Double) -> [Job] {
            [
                Job(id: 1, submit: 0, runtime: 100, resources: Workload.boneDensity),
                Job(id: 2, submit: 100 + gap, runtime: 100, resources: Workload.boneDensity),
                // Two at once on an 8-CPU node: still one node; the fifth 2-CPU job would need a second.
                Job(id: 3, submit: 100 + gap, runtime: 50, resources: Workload.boneDensity),
            ]
        }
        #expect(OfflineBound.nodeHours(jobs: jobs(gap: 50), pools: [cpuPool], bootTime: 120) * 3600 == 370)
        #expect(OfflineBound.nodeHours(jobs: jobs(gap: 200), pools: [cpuPool], bootTime: 120) * 3600 == 440)
        #expect(OfflineBound.nodeHours(jobs: jobs(gap: 200), pools: [cpuPool]) * 3600 == 200)
        let five = (1...5).map { Job(id: $0, submit: 0, runtime: 60, resources: Workload.boneDensity) }
        #expect(OfflineBound.nodeHours(jobs: five, pools: [cpuPool], bootTime: 120) * 3600 == 2 * (60 + 120))
    }

    @Test("a single job: boot time, then its runtime; the node goes after the idle time")
    func singleJob() {
        let job = Job(id: 1, submit: 100, runtime: 600, resources: Workload.boneDensity)
        let simulator = Simulator(pools: [cpuPool], jobs: [job], parameters: .init(bootTime: 120))
        let metrics = simulator.run(DeployctlPolicy(settings: ElasticSettings(idleTime: 300)))
        #expect(metrics.waits["cpu"]?.mean == 120)
        #expect(metrics.bootEvents == 1)
        // Asked for at 100, up at 220, busy until 820, idle until 1120 (checked every second).
        #expect(abs(metrics.nodeHours * 3600 - 1020) <= 1, "\(metrics.nodeHours * 3600)")
        #expect(abs(metrics.idleNodeHours * 3600 - 300) <= 1)
    }

    @Test("failed boots are charged and retried until the job runs")
    func bootFailures() {
        let jobs = (1...20).map { Job(id: $0, submit: Double($0), runtime: 300, resources: Workload.segmentation) }
        var boots = 0
        for seed in UInt64(1)...5 {
            let simulator = Simulator(pools: pools, jobs: jobs, parameters: .init(bootFailure: 0.5, seed: seed))
            let metrics = simulator.run(DeployctlPolicy())
            #expect(metrics.unfinished == 0)
            boots += metrics.bootEvents
        }
        // Without failures each run boots the GPU pool's 4 nodes once; half of the boots failing needs more.
        #expect(boots > 5 * 4, "\(boots) boots")
    }

    @Test("SWF with a GPU column reads back what was written; a short line is an error with its line number")
    func swf() throws {
        let jobs = Workload.mixed.generate(seed: 2)
        #expect(try SWF.parse(SWF.write(jobs)) == jobs)
        #expect(throws: SWF.ParseError.self) { try SWF.parse("; header\n1 0 -1 60\n") }
        do {
            _ = try SWF.parse("; header\n1 0 -1 60\n")
        } catch {
            #expect(error.line == 2)
        }
    }
}

@Suite("the wait-versus-cost plot")
struct PlotTests {
    @Test("one panel per trace, a marker and a legend line per policy, the bound dashed; a far static pool on the edge")
    func panels() {
        let jobs = Workload.gpuBurst.generate(seed: 3)
        let simulator = Simulator(pools: [cpuPool, gpuPool], jobs: jobs)
        let results = [
            simulator.run(DeployctlPolicy()), simulator.run(CluesPolicy()), simulator.run(StaticMaxPolicy()),
        ]
        let bound = OfflineBound.nodeHours(jobs: jobs, pools: [cpuPool, gpuPool], bootTime: 120)
        let svg = WaitCostPlot.svg([
            WaitCostPlot.Panel(title: "gpu-burst <4>", results: results, bound: bound),
            WaitCostPlot.Panel(title: "second", results: Array(results.prefix(2)), bound: nil),
            WaitCostPlot.Panel(title: "third", results: [results[0], results[2]], bound: nil),
        ])
        #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        #expect(svg.hasSuffix("</svg>\n"))
        #expect(svg.contains(">gpu-burst &lt;4&gt;</text>") && svg.contains(">second</text>"))
        #expect(svg.components(separatedBy: "stroke-dasharray").count - 1 == 1, "one bound, in the first panel")
        #expect(
            svg.components(separatedBy: ">●</text>").count - 1 + svg.components(separatedBy: ">▶</text>").count - 1 == 7
        )
        // In the third panel static-max uses far more node-hours than the one elastic policy: it sits on the edge.
        #expect(svg.components(separatedBy: ">▶</text>").count - 1 == 1)
        let deployctl = String(format: "deployctl  %.1f h", results[0].nodeHours)
        #expect(svg.contains(deployctl))
        #expect(svg.contains(String(format: "offline bound  %.1f h", bound)))
        #expect(
            WaitCostPlot.niceCeiling(17) == 20 && WaitCostPlot.niceCeiling(2.1) == 2.5
                && WaitCostPlot.niceCeiling(0) == 1)
    }
}
