import Foundation
import Providers
import TestBeds
import Testing

@testable import Orchestrator

/// What `make deps` installs for the cluster test: ansible-playbook and the SLURM and munge daemons.
enum ClusterTools {
    static var missing: String {
        (["/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/sbin/munged"].filter {
            !FileManager.default.isExecutableFile(atPath: $0)
        } + (PlaybookOperation.find("ansible-playbook") == nil ? ["ansible-playbook"] : [])).joined(separator: ", ")
    }
}

/// The main job end to end, through the deployctl binary: the shipped bone-density template on the `local`
/// provider with the SLURM recipes, a batch job that reads the data volume and writes the results volume, scaling
/// the worker pool, the recipes' idempotence, and `down` leaving this machine as it was.
@Suite(
    "The bone-density cluster on the local provider", .serialized,
    .enabled(if: LocalProvider.unavailableReason() == nil, "\(LocalProvider.unavailableReason() ?? "")"),
    .enabled(if: DeployctlBinary.built, "needs .build/debug/deployctl; run `swift build` first"),
    .enabled(if: ClusterTools.missing.isEmpty, "needs \(ClusterTools.missing) (`make deps`)"))
struct BoneDensityClusterTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let template = repository.appendingPathComponent("templates/bone-density-study.yaml").path

    /// A researcher's batch job, written and submitted as the study account on the front-end: it reads the data
    /// volume, writes (then appends to) its result on the results volume, and tries to write the data volume.
    static let densityJob = """
        cat > /home/cloudadm/density.sh <<'EOF'
        #!/bin/sh
        set -e
        read -r line < /data/density-input.txt
        echo "$line measured on $(hostname)" > /results/density-$SLURM_JOB_ID.txt
        echo "second pass" >> /results/density-$SLURM_JOB_ID.txt
        if touch /data/written-by-job 2>/dev/null; then echo DATA-WRITABLE; else echo data-read-only; fi
        EOF
        chmod 755 /home/cloudadm/density.sh
        cd /home/cloudadm && su cloudadm -c 'sbatch --wait --parsable -o /results/job-%j.log ./density.sh'
        """

    /// Submits `densityJob` on the front-end through `ssh` (node, command), waits for it, and returns its id.
    static func submitDensityJob(_ ssh: (String, String) throws -> DeployctlBinary.Run) throws -> String {
        let submitted = try ssh("front", densityJob)
        #expect(submitted.status == 0, "\(submitted.output)")
        let jobID = submitted.output.split(separator: "\n").last.map(String.init) ?? ""
        #expect(Int(jobID) != nil, "sbatch --parsable printed \(submitted.output)")
        return jobID
    }

    let directory: URL
    let home: String

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "deployctl-bonedensity-\(UUID().uuidString.prefix(8))")
        home = directory.appendingPathComponent("home").path
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        // The `local` provider with its own bridge and subnet, so that the test never meets a demo running on this
        // machine; every verb reads it from the home's providers.yaml.
        try "providers:\n  local:\n    type: local\n    bridge: dctlt70\n    subnet: 10.232.70\n".write(
            toFile: "\(home)/providers.yaml", atomically: true, encoding: .utf8)
    }

    func deployctl(_ arguments: [String]) throws -> DeployctlBinary.Run {
        // --home before the arguments: after `ssh … --` everything is the remote command.
        try DeployctlBinary.run(Array(arguments.prefix(1)) + ["--home", home] + arguments.dropFirst())
    }

    func ssh(_ node: String, _ command: String) throws -> DeployctlBinary.Run {
        try deployctl(["ssh", "bd", node, "--", command])
    }

    /// Node addresses from `status --format json`.
    func addresses() throws -> [String: String] {
        let run = try deployctl(["status", "bd", "--format", "json"])
        let document = try #require(
            try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any], "\(run.output)")
        var result: [String: String] = [:]
        for instance in document["instances"] as? [[String: Any]] ?? [] {
            if let id = instance["id"] as? String, let address = instance["private_address"] as? String {
                result[id] = address
            }
        }
        return result
    }

    /// The SLURM node names the controller lists, sorted.
    func slurmNodes() throws -> [String] {
        try ssh("front", "sinfo -h -N -o %N").output.split(separator: "\n").map(String.init).sorted()
    }

    /// Runs a recipe again against deployed nodes, as deployctl does, and returns ansible's recap line.
    func rerun(_ playbook: String, on host: String, with other: String? = nil, variables: [String: String]) throws
        -> String
    {
        let local = "\(home)/local"
        let addresses = try addresses()
        var hosts = [
            PlaybookOperation.Host(
                name: "runs_here", address: try #require(addresses[host]), user: "root",
                privateKey: "\(local)/id_ed25519")
        ]
        if let other {
            hosts.append(
                PlaybookOperation.Host(
                    name: "other_end", address: try #require(addresses[other]), user: "root",
                    privateKey: "\(local)/id_ed25519", groups: ["target"]))
        }
        var operation = PlaybookOperation(
            name: playbook, playbook: Self.repository.appendingPathComponent("recipes/\(playbook)").path,
            hosts: hosts, knownHosts: "\(local)/known_hosts", variables: variables)
        operation.limit = "runs_here"
        let result = try operation.run()
        #expect(result.succeeded, "\(playbook): \(result.output)")
        return result.output.split(separator: "\n").first { $0.hasPrefix("runs_here ") }.map(String.init) ?? ""
    }

    @Test("up (front-end + 2 workers), a batch job reads /data and writes /results, scale 3 and 1, down leaves nothing")
    func mainJob() async throws {
        await MachineWide.studyPaths.acquire()
        defer { MachineWide.studyPaths.releaseLater() }  // the last defer to run: after `down`
        defer { try? FileManager.default.removeItem(at: directory) }
        let mountPointsBefore = ["/data", "/results"].filter { FileManager.default.fileExists(atPath: $0) }
        // The staged study: an existing directory handed over as the data volume's id.
        let study = directory.appendingPathComponent("study")
        try FileManager.default.createDirectory(at: study, withIntermediateDirectories: true)
        try "patient-0001 L1 218.4\n".write(
            to: study.appendingPathComponent("density-input.txt"), atomically: true, encoding: .utf8)

        // A GPU worker too. Without NVIDIA devices here, two stand-ins (character devices nothing drives): SLURM only
        // checks that the files its gres.conf names exist, which is what the worker recipe declares.
        var gpus = Self.gpuDevices()
        var standIns: [String] = []
        if gpus == 0 {
            for index in 0..<2 {
                let path = "/dev/nvidia\(index)"
                #expect(mknod(path, S_IFCHR | 0o600, dev_t(195 << 8 | index)) == 0, "mknod \(path)")
                standIns.append(path)
            }
            gpus = Self.gpuDevices()
        }
        defer { for path in standIns { unlink(path) } }

        let up = try deployctl([
            "up", Self.template, "--name", "bd", "-i", "cpu_workers=2", "-i", "gpu_workers=1",
            "-i", "gpus_per_worker=\(gpus)", "-i", "data_volume_id=\(study.path)",
        ])
        defer { _ = try? deployctl(["down", "bd"]) }
        #expect(up.status == 0, "\(up.output)")
        #expect(up.output.contains("bd: deployed"))
        let addresses = try addresses()
        #expect(up.output.contains("ssh_command: ssh cloudadm@\(addresses["front[0]"] ?? "?")"))
        #expect(try slurmNodes() == ["cpu-slurm-worker-0", "cpu-slurm-worker-1", "gpu-slurm-worker-0"])
        // GPUs are GRES on the GPU worker only, and a job asking for them gets them.
        let gres = try ssh("front", "sinfo -h -N -o '%N %G'").output
        #expect(gres.contains("gpu-slurm-worker-0 gpu:\(gpus)"), "\(gres)")
        #expect(gres.contains("cpu-slurm-worker-0 (null)"), "\(gres)")
        let gpuJob = try ssh("front", "srun --gres=gpu:\(gpus) sh -c 'hostname; echo $CUDA_VISIBLE_DEVICES'")
        #expect(gpuJob.output.contains("dctl-bd-gpu-worker-0-compute"), "\(gpuJob.output)")
        #expect(
            gpuJob.output.hasSuffix((0..<gpus).map(String.init).joined(separator: ",") + "\n"), "\(gpuJob.output)")

        // A researcher's job, submitted as the study account on the front-end, runs on a worker.
        let jobID = try Self.submitDensityJob(ssh)
        let results = try ssh("front", "cat /results/density-\(jobID).txt /results/job-\(jobID).log")
        #expect(results.output.contains("patient-0001 L1 218.4 measured on dctl-bd-cpu-worker-"), "\(results.output)")
        #expect(results.output.contains("data-read-only"))
        #expect(!results.output.contains("DATA-WRITABLE"))
        #expect(!FileManager.default.fileExists(atPath: study.appendingPathComponent("written-by-job").path))
        let owner = try ssh("cpu_worker[1]", "stat -c %U:%G /results/density-\(jobID).txt; touch /data/x")
        #expect(owner.output.hasPrefix("cloudadm:study\n"), "\(owner.output)")
        #expect(owner.output.contains("Read-only file system"))
        #expect(owner.status != 0)

        // The study pipeline (segmentation → bone density → cohort summary) as SLURM jobs, submitted by the
        // researcher on the front-end. Its segmentation asks 4 CPUs, more than these workers have: SLURM refuses it
        // before anything is submitted. Fitted with --set, every step completes, the segmentation on the GPU worker
        // (on its CPU: the stand-in devices drive nothing).
        let workloads = Self.repository.appendingPathComponent("workloads").path
        let phantom = try runProgram(
            "/usr/bin/python3",
            [
                "-c",
                "import sys; sys.path.insert(0, sys.argv[1]); from common.phantom import make_phantom; "
                    + "make_phantom(seed=7011, spacing=(0.9, 0.9, 2.5), l1_trabecular_hu=140)"
                    + ".save(sys.argv[2], 'scan', labels=False, truth=False)",
                workloads, study.appendingPathComponent("ct").path,
            ])
        #expect(phantom.status == 0, "\(phantom.output)")
        let pipeline = "\(workloads)/pipeline/run --slurm --wait"
        let arguments = "\(workloads)/pipeline/study.yaml /data/ct /results/pipeline"
        let refused = try ssh("front", "su cloudadm -c '\(pipeline) \(arguments)'; echo exit=$?; squeue -h | wc -l")
        #expect(
            refused.output.contains("SLURM cannot run step 'segment' (cpus 4, memory_mb 16000, gpus 1"),
            "\(refused.output)")
        #expect(refused.output.hasSuffix("exit=1\n0\n"), "nothing may be submitted: \(refused.output)")
        let fitted = try ssh(
            "front", "su cloudadm -c '\(pipeline) --set segment.cpus=2 --set segment.memory_mb=8000 \(arguments)'")
        #expect(fitted.status == 0, "\(fitted.output)")
        #expect(fitted.output.contains(#/segment: job \d+ COMPLETED on gpu-slurm-worker-0/#), "\(fitted.output)")
        #expect(fitted.output.contains(#/cohort: job \d+ COMPLETED on /#), "\(fitted.output)")
        let cohort = try ssh("front", "cat /results/pipeline/cohort/summary.json")
        let summary = try JSONSerialization.jsonObject(with: Data(cohort.output.utf8)) as? [String: Any]
        #expect(summary?["measured"] as? Int == 1 && summary?["failed"] as? Int == 0, "\(cohort.output)")
        #expect(summary?["pickhardt_bands"] as? [String: Int] == ["indeterminate": 1], "\(cohort.output)")

        // The recipes are idempotent: run again on deployed nodes, they change nothing.
        let controllerRecap = try rerun(
            "slurm-controller.yml", on: "front[0]", variables: ["cluster_name": "bone-density"])
        #expect(controllerRecap.contains("changed=0"), "\(controllerRecap)")
        let hostRecap = try rerun(
            "study-host.yml", on: "cpu_worker[0]",
            variables: ["study_user": "cloudadm", "results_path": "/results", "data_path": "/data"])
        #expect(hostRecap.contains("changed=0"), "\(hostRecap)")
        let joinRecap = try rerun(
            "slurm-worker-join.yml", on: "cpu_worker[0]", with: "front[0]",
            variables: ["DEPLOYCTL_TARGET_HOST": "other_end", "DEPLOYCTL_SOURCE": "cpu_slurm_worker[0]"])
        #expect(joinRecap.contains("changed=0"), "\(joinRecap)")

        let scaleOut = try deployctl(["scale", "bd", "cpu_worker", "--count", "3"])
        #expect(scaleOut.status == 0, "\(scaleOut.output)")
        #expect(
            try slurmNodes() == [
                "cpu-slurm-worker-0", "cpu-slurm-worker-1", "cpu-slurm-worker-2", "gpu-slurm-worker-0",
            ])
        // A particular worker goes (the first), then the highest-numbered ones down to one: cpu_worker[1] stays.
        let removeOne = try deployctl(["scale", "bd", "cpu_worker", "--remove", "cpu_worker[0]"])
        #expect(removeOne.status == 0, "\(removeOne.output)")
        #expect(removeOne.output.contains("removed: cpu_runtime[0], cpu_slurm_worker[0], cpu_worker[0]"))
        let scaleIn = try deployctl(["scale", "bd", "cpu_worker", "--count", "1"])
        #expect(scaleIn.status == 0, "\(scaleIn.output)")
        #expect(
            try slurmNodes() == ["cpu-slurm-worker-1", "gpu-slurm-worker-0"],
            "the controller forgot the workers that left")
        let afterScale = try ssh("front", "srun -w cpu-slurm-worker-1 cat /data/density-input.txt")
        #expect(afterScale.output == "patient-0001 L1 218.4\n", "\(afterScale.output)")
        let missing = try deployctl(["scale", "bd", "cpu_worker", "--remove", "cpu_worker[0]"])
        #expect(missing.status == 2)
        #expect(
            missing.output.contains("cpu_worker[0] does not exist; cpu_worker has cpu_worker[1]"), "\(missing.output)")

        try await downLeavesNothing(
            mountPointsBefore: mountPointsBefore,
            nodes: ["front-0", "cpu-worker-0", "cpu-worker-1", "cpu-worker-2", "gpu-worker-0", "portal-host-0"])
        // The staged data was never the deployment's to delete.
        #expect(FileManager.default.fileExists(atPath: study.appendingPathComponent("density-input.txt").path))
    }

    @Test(
        "elastic: a burst of CPU and GPU jobs on empty pools; the controller powers on the right nodes, every job completes, idle nodes go, the pools return to their minimum"
    )
    func elasticBurst() async throws {
        await MachineWide.studyPaths.acquire()
        defer { MachineWide.studyPaths.releaseLater() }  // the last defer to run: after `down`
        defer { try? FileManager.default.removeItem(at: directory) }
        let mountPointsBefore = ["/data", "/results"].filter { FileManager.default.fileExists(atPath: $0) }
        let study = directory.appendingPathComponent("study")
        try FileManager.default.createDirectory(at: study, withIntermediateDirectories: true)
        try "patient-0002 L1 131.0\n".write(
            to: study.appendingPathComponent("density-input.txt"), atomically: true, encoding: .utf8)
        var standIns: [String] = []
        if Self.gpuDevices() == 0 {
            #expect(mknod("/dev/nvidia0", S_IFCHR | 0o600, dev_t(195 << 8)) == 0, "mknod /dev/nvidia0")
            standIns.append("/dev/nvidia0")
        }
        defer { for path in standIns { unlink(path) } }

        // Both pools empty: the template's minimum.
        let up = try deployctl([
            "up", Self.template, "--name", "bd", "-i", "cpu_workers=0", "-i", "gpu_workers=0",
            "-i", "gpus_per_worker=1", "-i", "data_volume_id=\(study.path)",
        ])
        defer { _ = try? deployctl(["down", "bd"]) }
        #expect(up.status == 0, "\(up.output)")
        #expect(try slurmNodes().isEmpty)

        let log = directory.appendingPathComponent("elastic.log")
        #expect(FileManager.default.createFile(atPath: log.path, contents: nil))
        let controller = Process()
        controller.executableURL = URL(fileURLWithPath: DeployctlBinary.path)
        controller.arguments = ["elastic", "run", "bd", "--home", home, "--idle-time", "20s", "--format", "json"]
        controller.standardOutput = try FileHandle(forWritingTo: log)
        controller.standardError = FileHandle.standardError
        try controller.run()
        defer { if controller.isRunning { controller.terminate() } }
        func events() -> [[String: Any]] {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        }

        // The burst: three bone-density jobs (one core each) and two segmentation jobs (one GPU each).
        let burst = """
            cd /tmp
            for i in 1 2 3; do sbatch -c1 -J cpu$i -o /dev/null --wrap "hostname > /results/cpu-$i.txt; sleep 5"; done
            for i in 1 2; do
                sbatch -c1 --gres=gpu:1 -J gpu$i -o /dev/null --wrap "hostname > /results/gpu-$i.txt; sleep 5"
            done
            """
        #expect(try ssh("front", burst).status == 0)
        let finished = try await waitFor(seconds: 600) {
            try ssh("front", "squeue -h | wc -l; ls /results").output
                .hasPrefix("0\ncpu-1.txt\ncpu-2.txt\ncpu-3.txt\ngpu-1.txt\ngpu-2.txt\n")
        }
        #expect(finished, "the jobs did not all complete; controller log: \(events())")
        let ran = try ssh("front", "cd /results && grep -H . cpu-*.txt gpu-*.txt").output
        for gpu in ["gpu-1.txt", "gpu-2.txt"] {
            #expect(ran.contains("\(gpu):dctl-bd-gpu-worker-"), "a GPU job ran elsewhere: \(ran)")
        }
        // Back to the minimum: every worker powered off after its 20 s idle time, none left in SLURM.
        let drained = try await waitFor(seconds: 300) {
            let instances = try addresses().keys.filter { $0.hasPrefix("cpu_worker") || $0.hasPrefix("gpu_worker") }
            return try instances.isEmpty && slurmNodes().isEmpty
        }
        #expect(drained, "the pools did not return to their minimum; controller log: \(events())")

        controller.interrupt()
        controller.waitUntilExit()
        #expect(controller.terminationStatus == 0)
        let decisions = events()
        let powerOns = decisions.filter { $0["kind"] as? String == "power-on" }
        #expect(Set(powerOns.compactMap { $0["pool"] as? String }) == ["cpu_worker", "gpu_worker"])
        #expect(decisions.contains { $0["kind"] as? String == "power-off" && $0["pool"] as? String == "gpu_worker" })
        #expect(!decisions.contains { ($0["kind"] as? String)?.hasSuffix("failed") ?? false }, "\(decisions)")
        let status = try DeployctlBinary.run(["elastic", "status", "bd", "--home", home, "--format", "json"])
        let document = try #require(
            try JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [String: Any], "\(status.output)")
        let latencies = document["latencies"] as? [Double] ?? []
        #expect(latencies.count == 5, "every job's submission-to-decision latency is measured: \(latencies)")
        #expect(document["running"] as? Bool == false)
        let text = try DeployctlBinary.run(["elastic", "status", "bd", "--home", home]).output
        #expect(text.contains("cpu_worker: 0 node(s) (0-8)") && text.contains("submission to power-on decision"))
        print(text)
        print("elastic burst: submission to power-on decision (s): \(latencies.map { String(format: "%.2f", $0) })")

        try await downLeavesNothing(
            mountPointsBefore: mountPointsBefore,
            nodes: ["front-0", "portal-host-0"] + (0..<4).flatMap { ["cpu-worker-\($0)", "gpu-worker-\($0)"] })
    }

    /// Polls `condition` every 2 s until it holds (true) or `seconds` pass (false).
    func waitFor(seconds: Double, _ condition: () throws -> Bool) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if (try? condition()) == true { return true }
            try await Task.sleep(nanoseconds: 2_000_000_000)
        }
        return false
    }

    /// `down`, then nothing of the deployment is left on this machine: no node directory, bridge, namespace,
    /// mount point or process.
    func downLeavesNothing(mountPointsBefore: [String], nodes: [String]) async throws {
        let local = "\(home)/local"
        let down = try deployctl(["down", "bd"])
        #expect(down.status == 0, "\(down.output)")
        for kind in ["nodes", "volumes", "attachments", "work"] {
            #expect(
                ((try? FileManager.default.contentsOfDirectory(atPath: "\(local)/\(kind)")) ?? []).isEmpty, "\(kind)")
        }
        #expect(!FileManager.default.fileExists(atPath: "/sys/class/net/dctlt70"), "the bridge outlived its nodes")
        let namespaces = Self.shell("ip netns list")
        let provider = LocalProvider(
            config: LocalProviderConfig(directory: local, bridge: "dctlt70", subnet: "10.232.70"))
        for instance in nodes {
            let name = "dctl-bd-\(instance)-compute"
            let namespace = try await provider.namespace(of: name)
            #expect(!namespaces.contains(namespace), "\(name)'s namespace (\(namespace)) is left")
        }
        #expect(
            ["/data", "/results"].filter { FileManager.default.fileExists(atPath: $0) } == mountPointsBefore,
            "mount points made for the nodes are left")
        let daemons = Self.processes {
            $0.contains(local) || $0.hasPrefix("/usr/sbin/slurm") || $0.hasPrefix("/usr/sbin/munged --foreground")
        }
        #expect(daemons.isEmpty, "processes left: \(daemons)")
    }

    /// NVIDIA devices on this machine (/dev/nvidia0, /dev/nvidia1, …), as the local provider counts them.
    static func gpuDevices() -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/dev")) ?? []).filter {
            $0.hasPrefix("nvidia") && $0.count > 6 && $0.dropFirst(6).allSatisfy(\.isNumber)
        }.count
    }

    static func shell(_ command: String) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        let pipe = Pipe()
        process.standardOutput = pipe
        guard (try? process.run()) != nil else { return "" }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    /// Command lines of running processes that match.
    static func processes(_ matching: (String) -> Bool) -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.filter { $0.allSatisfy(\.isNumber) }.compactMap { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"), !data.isEmpty else {
                return nil
            }
            let line = String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
            return matching(line) ? "\(pid): \(line)" : nil
        }
    }
}
