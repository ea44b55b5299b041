import Foundation
import Testing

@testable import Elastic

/// `kubectl get pods --all-namespaces -o json` and `kubectl get nodes -o json` written by hand in the form kubectl
/// 1.29 prints them (a v1 List, keys sorted, quantities in their canonical form): a GPU node (2 × nvidia.com/gpu,
/// tainted for GPU pods), a cordoned CPU node, a CPU node that stopped reporting; a pending CPU pod with an init
/// container, a pending GPU pod, a pod bound but still pulling its image, running pods (kube-system's too), a
/// succeeded pod (Tests/ElasticTests/Fixtures/kubernetes).
///
/// Each pod was checked with the real client, which decodes it into a typed v1 Pod without a server and prints it
/// again: `kubectl set image --local -f POD.json -o json '*=checked'` gives back the same object (but the images), so
/// no field is unknown or mistyped and every quantity is canonical. Each node decodes as a typed v1 Node the same way
/// (kubectl then stops: a node has no pod template). `kubectl create --dry-run=client` asks a server for its API
/// groups first, so it cannot be used here.
@Suite("reading Kubernetes' pods and nodes")
struct KubernetesSnapshotTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/kubernetes")

    static func snapshot() throws -> QueueSnapshot {
        try QueueSnapshot.kubernetes(
            pods: Data(contentsOf: fixtures.appendingPathComponent("pods.json")),
            nodes: Data(contentsOf: fixtures.appendingPathComponent("nodes.json")))
    }

    @Test("pods: unbound is PENDING, bound is RUNNING, succeeded left out; effective requests rounded up; ids, times")
    func jobs() throws {
        let jobs = try Self.snapshot().jobs
        #expect(
            jobs.map(\.name) == [
                "batch/prep-data-x7k2m", "default/web-6d4b8c7f9-q7k2x", "kube-system/calico-node-4wz8d",
                "kube-system/calico-node-m2x9p", "kube-system/calico-node-q8v3n", "ml/notebook-0", "ml/train-bert-0",
                "ml/train-resnet-0",
            ])
        #expect(jobs.filter(\.waits).map(\.name) == ["batch/prep-data-x7k2m", "ml/train-bert-0"])
        let byName = Dictionary(uniqueKeysWithValues: jobs.map { ($0.name, $0) })
        // Containers 1 + 500m CPU and 1G + 1 MiB; the init container 250m and 2Gi: 1500m (2 CPUs) and 2048 MB.
        let prep = try #require(byName["batch/prep-data-x7k2m"])
        #expect(prep.perNode == Resources(cpus: 2, memoryMB: 2048))
        #expect(prep.state == "PENDING" && prep.nodes.isEmpty && prep.reason == "Unschedulable")
        #expect(prep.submit == 1_714_641_600)
        #expect(prep.id == 7_243_638_194_901_760, "FNV-1a of batch/prep-data-x7k2m, the same in every run")
        #expect(byName["ml/train-bert-0"]?.perNode == Resources(cpus: 4, memoryMB: 16384, gpus: 2))
        #expect(byName["ml/train-bert-0"]?.id == 4_051_538_627_393_642)
        #expect(byName["default/web-6d4b8c7f9-q7k2x"]?.perNode == Resources(cpus: 1, memoryMB: 256))
        #expect(byName["default/web-6d4b8c7f9-q7k2x"]?.nodes == ["cpu-worker-0"])
        #expect(byName["default/web-6d4b8c7f9-q7k2x"]?.submit == 1_714_581_912)
        let notebook = try #require(byName["ml/notebook-0"])
        #expect(notebook.state == "RUNNING" && notebook.nodes == ["gpu-worker-0"], "bound, pulling its image")
        #expect(byName["ml/train-resnet-0"]?.perNode == Resources(cpus: 2, memoryMB: 8192, gpus: 1))
        #expect(Set(jobs.map(\.id)).count == jobs.count)
    }

    @Test("nodes: allocatable rounded down, the requests of pods bound there summed and rounded up, cordon, not Ready")
    func nodes() throws {
        let nodes = try Self.snapshot().nodes
        #expect(nodes.map(\.name) == ["cpu-worker-0", "cpu-worker-1", "gpu-worker-0"])
        #expect(nodes.map(\.address) == ["10.0.1.21", "10.0.1.22", "10.0.1.11"])
        // 16069868Ki is 15693.2 MiB. Two pods of 250m: one CPU, not two.
        #expect(nodes[0].capacity == Resources(cpus: 4, memoryMB: 15693))
        #expect(nodes[0].allocated == Resources(cpus: 1, memoryMB: 256))
        #expect(nodes[0].state == "mixed" && nodes[0].flags == ["DRAIN"])
        #expect(nodes[1].allocated == Resources(cpus: 1, memoryMB: 0))
        #expect(nodes[1].state == "unknown" && nodes[1].flags == ["NOT_RESPONDING"])
        // 7910m is 7 CPUs; calico 250m, resnet 2, the notebook 500m (the succeeded pod not at all): 2750m, 3 CPUs.
        #expect(nodes[2].capacity == Resources(cpus: 7, memoryMB: 31110, gpus: 2))
        #expect(nodes[2].allocated == Resources(cpus: 3, memoryMB: 9216, gpus: 1))
        #expect(nodes[2].state == "mixed" && nodes[2].flags.isEmpty)
    }

    @Test("the policy's view: cordoned node left out, the one not Ready booting; the 2-GPU pod needs a new GPU node")
    func view() throws {
        let pools = [
            PoolSpec(name: "cpu_worker", node: Resources(cpus: 4, memoryMB: 15693), maxNodes: 4),
            PoolSpec(name: "gpu_worker", node: Resources(cpus: 7, memoryMB: 31110, gpus: 2), maxNodes: 2),
        ]
        let snapshot = try Self.snapshot()
        let view = snapshot.view(
            now: 100, pools: pools, pool: { $0.hasPrefix("gpu") ? "gpu_worker" : "cpu_worker" }, idleSince: { _ in nil }
        )
        #expect(view.nodes.map(\.id) == [1, 2])
        #expect(view.nodes.map(\.state) == [.booting, .up])
        #expect(view.nodes[0].free == pools[0].node)
        #expect(view.nodes[1].free == Resources(cpus: 4, memoryMB: 21894, gpus: 1) && view.nodes[1].runningJobs == 3)
        let waiting = snapshot.jobs.filter(\.waits)
        #expect(view.pending.map(\.id) == waiting.map(\.id))
        #expect(view.pending.map(\.resources) == waiting.map(\.perNode))
        // The CPU pod goes to the node coming back; the GPU pod finds one GPU free where it needs two.
        var policy = DeployctlPolicy()
        #expect(policy.decide(view).powerOn == [1: 1])
    }

    @Test("what is not kubectl's list of pods or nodes is an error, with the command and what is wrong")
    func errors() throws {
        let noNodes = #"{"apiVersion": "v1", "items": [], "kind": "List", "metadata": {"resourceVersion": ""}}"#
        let empty = try QueueSnapshot.kubernetes(pods: Data(noNodes.utf8), nodes: Data(noNodes.utf8))
        #expect(empty.jobs.isEmpty && empty.nodes.isEmpty)
        func read(pods: String, nodes: String = noNodes) throws(QueueSnapshot.ParseError) {
            _ = try QueueSnapshot.kubernetes(pods: Data(pods.utf8), nodes: Data(nodes.utf8))
        }
        func pod(_ container: String) -> String {
            #"{"kind": "List", "items": [{"kind": "Pod", "metadata": {"name": "p", "namespace": "ml"}, "spec": {"containers": [\#(container)]}}]}"#
        }
        #expect(throws: QueueSnapshot.ParseError(message: "kubectl get pods -o json: not a JSON object")) {
            try read(pods: "")
        }
        #expect(throws: QueueSnapshot.ParseError(message: "kubectl get pods -o json: not a JSON object")) {
            try read(pods: "The connection to the server localhost:8080 was refused")
        }
        #expect(
            throws: QueueSnapshot.ParseError(
                message: "kubectl get nodes -o json: not a list of Node objects (no 'items')")
        ) {
            try read(pods: noNodes, nodes: #"{"kind": "Status", "status": "Failure"}"#)
        }
        #expect(throws: QueueSnapshot.ParseError(message: "kubectl get pods -o json: an item of kind Node, not Pod")) {
            try read(pods: #"{"kind": "List", "items": [{"kind": "Node", "metadata": {"name": "n"}}]}"#)
        }
        #expect(throws: QueueSnapshot.ParseError(message: "kubectl get pods -o json: a pod without metadata.name")) {
            try read(pods: #"{"kind": "List", "items": [{"kind": "Pod", "metadata": {"namespace": "ml"}}]}"#)
        }
        #expect(throws: QueueSnapshot.ParseError(message: "kubectl get nodes -o json: a node without metadata.name")) {
            try read(pods: noNodes, nodes: #"{"kind": "List", "items": [{"kind": "Node", "status": {}}]}"#)
        }
        #expect(
            throws: QueueSnapshot.ParseError(
                message: "kubectl get pods -o json: pod ml/p, container c: memory 2 GB is not a quantity")
        ) {
            try read(pods: pod(#"{"name": "c", "resources": {"requests": {"memory": "2 GB"}}}"#))
        }
        // One pod, as `kubectl get pod NAME -o json` prints it, reads too; a request defaults to its limit.
        let one = try QueueSnapshot.kubernetes(
            pods: Data(
                #"{"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "2", "nvidia.com/gpu": "1"}}}]}, "status": {"phase": "Pending"}}"#
                    .utf8),
            nodes: Data(noNodes.utf8))
        #expect(one.jobs.map(\.name) == ["default/p"])
        #expect(one.jobs.map(\.perNode) == [Resources(cpus: 2, gpus: 1)])
    }

    @Test("quantities: CPU in millicores, memory in bytes and MB, rounded up as Kubernetes rounds them")
    func quantities() {
        let cpu: [(String, Int?)] = [
            ("250m", 250), ("2", 2000), ("1.5", 1500), ("0.1", 100), ("+1", 1000), (".5", 500), ("5.", 5000),
            ("100u", 1), ("1n", 1), ("0", 0), ("2e3", 2_000_000), ("1k", 1_000_000), ("1.25000", 1250),
            ("", nil), ("m", nil), (".", nil), ("-1", nil), ("1.2.3", nil), (" 1", nil), ("1 ", nil), ("2cores", nil),
            ("1e", nil), ("0x10", nil), ("1e1000", nil), ("１", nil),
        ]
        for (text, millicores) in cpu {
            #expect(QueueSnapshot.quantity(text, scale: 3) == millicores, "cpu \(text)")
        }
        let memory: [(String, Int?)] = [
            ("512Mi", 512), ("1Gi", 1024), ("1.5Gi", 1536), ("1G", 954), ("1000M", 954), ("1048576", 1),
            ("129e6", 124), ("1Ki", 1), ("1Ti", 1_048_576), ("1E", 953_674_316_407), ("0", 0), ("1.5", 1),
            ("1GB", nil), ("Gi", nil), ("1 Gi", nil), ("-512Mi", nil), ("1gi", nil), ("9Ei", nil),
        ]
        for (text, megabytes) in memory {
            let bytes = QueueSnapshot.quantity(text, scale: 0)
            #expect(bytes.map { QueueSnapshot.ceilDiv($0, 1 << 20) } == megabytes, "memory \(text)")
        }
        #expect(QueueSnapshot.quantity("1.5", scale: 0) == 2, "whole bytes, rounded up")
        #expect(QueueSnapshot.quantity("1G", scale: 0) == 1_000_000_000)
    }
}
