import Foundation
import Providers
import TOSCA

/// How the deployer runs a plan.
public struct DeployOptions: Sendable {
    /// Steps of one level in flight at once.
    public var concurrency = 8
    /// Tries per step for transient failures (an unreachable host, a dropped SSH connection).
    public var attempts = 3
    /// The first retry's delay; it doubles per attempt, with ±50% jitter.
    public var backoff: Duration = .milliseconds(500)
    /// For operations whose implementation gives no `timeout`.
    public var operationTimeout: Duration = .seconds(1800)

    public init() {}
}

/// A step that failed, and why.
public struct StepFailure: Sendable, Equatable {
    public var step: String
    public var error: String
}

/// What `up` did.
public struct UpResult: Sendable {
    public var status: DeploymentRecord.Status
    public var failed: [StepFailure]
    /// Steps not run because something they wait for failed.
    public var blocked: [String]
    /// Steps run now (not counting those done by an earlier run).
    public var ran: Int
    public var total: Int
    /// Instances removed because the plan no longer has them (scale-in).
    public var removed: [String]
}

/// What `down` (or removing instances) did; `remaining` lists ledger entries that could not be removed yet.
public struct TeardownResult: Sendable {
    public var removed: [LedgerEntry]
    public var remaining: [LedgerEntry]
    public var warnings: [String]
}

/// A failure inside a step; transient ones are retried.
struct StepError: Error, CustomStringConvertible {
    var description: String
    var transient = false
}

/// Turns a plan into resources and configured software, and back. Everything it creates is recorded in the ledger
/// before the provider call that creates it, so any run — `up` again or `down` — picks up after a crash.
public struct Deployer: Sendable {
    public let store: StateStore
    public let provider: any Provider
    public var options: DeployOptions
    public var progress: any ProgressSink

    public init(
        store: StateStore, provider: any Provider, options: DeployOptions = DeployOptions(),
        progress: any ProgressSink = SilentProgress()
    ) {
        self.store = store
        self.provider = provider
        self.options = options
        self.progress = progress
    }

    /// relationship `remove_*` operations run when an instance leaves, never on the way up.
    static func isDeferred(_ step: Plan.Step) -> Bool {
        step.interface == "Configure" && (step.operation?.hasPrefix("remove_") ?? false)
    }

    func runtime(_ deployment: String, _ plan: Plan) throws -> RuntimeValues {
        try store.runtime(deployment, plan)
    }

    // MARK: up

    /// Brings the deployment to the plan: removes instances the plan no longer has (their stop/delete and
    /// remove_* operations from `previous`, the plan they were made with), then runs every step not yet done,
    /// level by level, in parallel within a level. A failed step blocks only what waits for it.
    public func up(deployment: String, plan: Plan, previous: Plan? = nil) async throws -> UpResult {
        try store.setStatus(of: deployment, .deploying)
        let wanted = Set(plan.instances.map(\.id))
        let ledgerInstances = Set(try store.liveResources(of: deployment).map(\.instance))
        let stepInstances = Set(try store.steps(of: deployment).values.map(\.instance))
        let stale = ledgerInstances.union(stepInstances).subtracting(wanted)
        var removed: [String] = []
        if !stale.isEmpty {
            let teardown = try await self.teardown(deployment: deployment, plan: previous ?? plan, only: stale)
            guard teardown.remaining.isEmpty else {
                let names = teardown.remaining.map { "\($0.kind) \($0.name)" }.joined(separator: ", ")
                try store.setStatus(of: deployment, .degraded, error: "could not remove \(names)")
                throw OrchestratorError(
                    "teardown-incomplete", "could not remove \(names) of instances the plan no longer has")
            }
            removed = stale.sorted()
        }

        let active = plan.steps.filter { !Self.isDeferred($0) }
        var done = Set(try store.steps(of: deployment).values.filter { $0.status == .done }.map(\.step))
        done.formIntersection(active.map(\.id))
        let total = active.count
        var failed: [StepFailure] = []
        var blocked: [String] = []
        var ran = 0
        var interrupted = false
        let byID = Dictionary(active.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })

        for level in plan.levels {
            if Task.isCancelled {
                interrupted = true
                break
            }
            var runnable: [Plan.Step] = []
            for id in level {
                guard let step = byID[id], !done.contains(id) else { continue }
                if let waiting = step.after.first(where: { byID[$0] != nil && !done.contains($0) }) {
                    blocked.append(id)
                    try store.save(
                        StepRecord(
                            deployment: deployment, step: id, instance: step.instance, status: .blocked,
                            error: "waits for \(waiting), which did not complete"))
                    progress.report(.blocked(step: id, waitingFor: waiting))
                    continue
                }
                runnable.append(step)
            }
            let doneBefore = done.count
            let results = await runLevel(runnable, deployment: deployment, plan: plan, done: doneBefore, total: total)
            for (step, outcome) in results {
                ran += 1
                switch outcome {
                case .success: done.insert(step)
                case .failure(let error): failed.append(StepFailure(step: step, error: error.description))
                }
            }
            if results.count < runnable.count { interrupted = true }
        }
        let status: DeploymentRecord.Status
        var summary: String?
        if interrupted || Task.isCancelled {
            status = .interrupted
            summary = "interrupted; run `deployctl up` again to resume"
        } else if failed.isEmpty && blocked.isEmpty {
            status = .deployed
        } else {
            status = .degraded
            summary = failed.map { "\($0.step): \($0.error)" }.joined(separator: "; ")
        }
        try store.setStatus(of: deployment, status, error: summary)
        return UpResult(
            status: status, failed: failed, blocked: blocked, ran: ran, total: total, removed: removed)
    }

    /// Runs one level's steps, at most `concurrency` at a time; stops starting new ones when cancelled.
    private func runLevel(_ steps: [Plan.Step], deployment: String, plan: Plan, done: Int, total: Int) async
        -> [(String, Result<Void, StepError>)]
    {
        await withTaskGroup(of: (String, Result<Void, StepError>, Duration).self) { group in
            var pending = steps[...]
            var running: [String] = []
            var finished = done
            var results: [(String, Result<Void, StepError>)] = []
            func launch() {
                guard !Task.isCancelled, let step = pending.popFirst() else { return }
                running.append(step.id)
                progress.report(.started(step: step.id, running: running, done: finished, total: total))
                group.addTask {
                    let started = ContinuousClock.now
                    let outcome = await self.run(step, deployment: deployment, plan: plan)
                    return (step.id, outcome, ContinuousClock.now - started)
                }
            }
            for _ in 0..<max(1, options.concurrency) { launch() }
            while let (id, outcome, elapsed) = await group.next() {
                running.removeAll { $0 == id }
                if case .success = outcome {
                    finished += 1
                    progress.report(.finished(step: id, seconds: Self.seconds(elapsed), done: finished, total: total))
                }
                results.append((id, outcome))
                launch()
            }
            return results
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// One step with retries for transient failures; its record says where it stands at every moment.
    private func run(_ step: Plan.Step, deployment: String, plan: Plan) async -> Result<Void, StepError> {
        var attempt = 0
        while true {
            attempt += 1
            do {
                try store.save(
                    StepRecord(
                        deployment: deployment, step: step.id, instance: step.instance, status: .running,
                        attempts: attempt))
                let outputs = try await execute(step, deployment: deployment, plan: plan)
                try store.save(
                    StepRecord(
                        deployment: deployment, step: step.id, instance: step.instance, status: .done,
                        attempts: attempt, outputs: outputs))
                Failpoint.hit("step.done")
                return .success(())
            } catch {
                let failure = (error as? StepError) ?? StepError(description: String(describing: error))
                let retry = failure.transient && attempt < options.attempts && !Task.isCancelled
                let delay = retry ? backoff(attempt) : nil
                progress.report(
                    .failed(
                        step: step.id, error: failure.description, attempt: attempt,
                        retryIn: delay.map(Self.seconds)))
                if let delay {
                    try? await Task.sleep(for: delay)
                    continue
                }
                try? store.save(
                    StepRecord(
                        deployment: deployment, step: step.id, instance: step.instance, status: .failed,
                        attempts: attempt, error: failure.description))
                return .failure(failure)
            }
        }
    }

    func backoff(_ attempt: Int) -> Duration {
        let base = options.backoff * (1 << min(attempt - 1, 10))
        return base * Double.random(in: 0.5...1.5)
    }

    // MARK: Steps

    private func execute(_ step: Plan.Step, deployment: String, plan: Plan) async throws -> [String: String] {
        switch step.action {
        case "create_compute":
            try await createCompute(step.instance, node: step.node, deployment: deployment, plan: plan)
        case "create_volume":
            try await createVolume(step.instance, node: step.node, deployment: deployment, plan: plan)
        case "attach_volume":
            try await attach(step, deployment: deployment, plan: plan)
        case "operation":
            return try await OperationRunner(deployer: self, deployment: deployment, plan: plan).run(
                OperationCall(step: step))
        default:
            // `ready`, and networks and ports on providers whose hosts already have their network.
            break
        }
        return [:]
    }

    private func providerCall<T>(_ body: () async throws(ProviderError) -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw StepError(description: "\(error.description) [\(error.code)]", transient: error.isTransient)
        }
    }

    /// The ledger's rule around one provider call: `entry` is already recorded `intended`; the call creates the
    /// resource and returns its provider id and the facts to keep; the entry is then `created`, or `failed` with
    /// the error. An entry already created is left alone (a resumed run).
    private func provision(
        _ entry: LedgerEntry, _ create: () async throws -> (providerID: String, detail: [String: String])
    ) async throws {
        guard entry.status != .created, let id = entry.id else { return }
        Failpoint.hit("\(entry.kind).intended")
        do {
            let created = try await create()
            Failpoint.hit("\(entry.kind).created")
            try store.markCreated(id, providerID: created.providerID, detail: Self.json(created.detail))
        } catch let error as StepError {
            try store.markFailed(id, error: error.description)
            throw error
        }
    }

    private func createCompute(_ instance: String, node: String, deployment: String, plan: Plan) async throws {
        let userData = try Self.userData(of: node, in: plan)
        let entry = try store.intend(
            deployment: deployment, instance: instance, kind: "compute", provider: provider.name)
        let capabilities = plan.nodes.first { $0.0 == node }?.1["capabilities"]
        let host = capabilities?["host"]
        let os = capabilities?["os"]
        let (ports, isPublic) = Self.endpoints(of: node, in: plan)
        var request = ComputeRequest(
            deployment: deployment, instance: instance, name: entry.name,
            cpus: host?["num_cpus"].flatMap(Self.int) ?? 1,
            memoryBytes: host?["mem_size"].flatMap(Self.bytes) ?? 0,
            gpus: host?["num_gpus"].flatMap(Self.int) ?? 0,
            diskBytes: host?["disk_size"].flatMap(Self.bytes) ?? 0,
            image: Self.text(os?["image"]), osDistribution: Self.text(os?["distribution"]),
            osVersion: Self.text(os?["version"]), flavor: Self.text(host?["instance_type"]),
            ports: ports, isPublic: isPublic, userData: userData)
        request.networks = Self.networks(of: node, in: plan)
        for policy in plan.policies {
            guard case .string("deployctl.policies.AntiAffinity")? = policy["type"],
                case .array(let targets)? = policy["targets"], targets.contains(.string(node)),
                case .string(let group)? = policy["name"]
            else { continue }
            request.antiAffinityGroup = group
            if case .bool(false)? = policy["properties"]?["strict"] { request.strictAntiAffinity = false }
        }
        try await provision(entry) {
            let compute = try await providerCall { () async throws(ProviderError) in
                try await provider.createCompute(request)
            }
            var detail = ["private_address": compute.privateAddress]
            if let address = compute.publicAddress { detail["public_address"] = address }
            return (compute.providerID, detail)
        }
    }

    /// The networks of a Compute node's ports: each `tosca.nodes.network.Port` bound to it (`binding`), in its
    /// `order`, names the network of the `tosca.nodes.network.Network` it links to (`network_name`, else
    /// `network_id`, else that node's name).
    static func networks(of node: String, in plan: Plan) -> [String] {
        let byName = Dictionary(plan.nodes.map { ($0.0, $0.1) }, uniquingKeysWith: { first, _ in first })
        func isA(_ value: JSONValue?, _ type: String) -> Bool {
            if case .array(let types)? = value?["types"] { return types.contains(.string(type)) }
            return false
        }
        func target(_ value: JSONValue, _ requirement: String) -> String? {
            guard case .array(let requirements)? = value["requirements"] else { return nil }
            for entry in requirements where entry["name"] == .string(requirement) {
                if case .string(let name)? = entry["node"] { return name }
            }
            return nil
        }
        var found: [(order: Int, port: String, network: String)] = []
        for (name, port) in plan.nodes where isA(port, "tosca.nodes.network.Port") && target(port, "binding") == node {
            guard let linked = target(port, "link") else { continue }
            let properties = byName[linked]?["properties"]
            let network = text(properties?["network_name"]) ?? text(properties?["network_id"]) ?? linked
            found.append((port["properties"]?["order"].flatMap(Self.int) ?? 0, name, network))
        }
        return found.sorted { ($0.order, $0.port) < ($1.order, $1.port) }.map(\.network)
    }

    /// A file a template names (an implementation, an artifact): relative paths are read beside the template.
    static func besideTemplate(_ path: String, plan: Plan) -> String {
        guard !path.hasPrefix("/") else { return path }
        return URL(fileURLWithPath: plan.template).deletingLastPathComponent().appendingPathComponent(path)
            .standardizedFileURL.path
    }

    /// The node's cloud-init user data: the artifact named `user_data`, or of type `deployctl.artifacts.CloudInit`
    /// (a `#cloud-config` document or a script), read from beside the template. Clouds hand it to the server at its
    /// first boot; providers without cloud-init (local, ssh) leave it aside.
    static func userData(of node: String, in plan: Plan) throws -> String? {
        guard case .object(let artifacts)? = plan.nodes.first(where: { $0.0 == node })?.1["artifacts"] else {
            return nil
        }
        let chosen =
            artifacts.first { $0.0 == "user_data" }
            ?? artifacts.first { $0.1["type"] == .string("deployctl.artifacts.CloudInit") }
        guard let (name, artifact) = chosen else { return nil }
        guard case .string(let file)? = artifact["file"], !file.isEmpty else {
            throw StepError(description: "its artifact \(name) names no file")
        }
        let path = besideTemplate(file, plan: plan)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StepError(description: "cannot read its cloud-init user data \(path) (artifact \(name))")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw StepError(description: "its cloud-init user data \(path) is not UTF-8 text")
        }
        return text
    }

    private func createVolume(_ instance: String, node: String, deployment: String, plan: Plan) async throws {
        let entry = try store.intend(
            deployment: deployment, instance: instance, kind: "volume", provider: provider.name)
        let properties = plan.nodes.first { $0.0 == node }?.1["properties"]
        var existing: String?
        if case .string(let volumeID)? = properties?["volume_id"], !volumeID.isEmpty { existing = volumeID }
        let request = VolumeRequest(
            deployment: deployment, instance: instance, name: entry.name,
            sizeBytes: properties?["size"].flatMap(Self.bytes) ?? 0, existingID: existing,
            snapshotID: Self.text(properties?["snapshot_id"]), volumeType: Self.text(properties?["volume_type"]))
        try await provision(entry) {
            let volume = try await providerCall { () async throws(ProviderError) in
                try await provider.createVolume(request)
            }
            return (
                volume.providerID, ["volume_id": volume.providerID, "external": existing == nil ? "false" : "true"]
            )
        }
    }

    private func attach(_ step: Plan.Step, deployment: String, plan: Plan) async throws {
        guard let volumeInstance = step.target else { return }
        let runtime = try runtime(deployment, plan)
        guard let compute = runtime.entry(step.instance, kind: "compute"), let computeID = compute.providerID,
            let volume = runtime.entry(volumeInstance, kind: "volume"), let volumeID = volume.providerID
        else {
            throw StepError(description: "\(step.instance) or \(volumeInstance) has not been created")
        }
        let entry = try store.intend(
            deployment: deployment, instance: step.instance, kind: "attachment", key: "attach-\(volumeInstance)",
            provider: provider.name)
        var readOnly = false
        if case .bool(let flag)? = step.inputs["read_only"] { readOnly = flag }
        // An attachment that waits for another of the same volume is served from that one's host (the planner
        // orders every host of a shared volume after the one where it stays).
        var home: AttachmentRequest.Home?
        if let first = plan.steps.first(where: {
            $0.action == "attach_volume" && $0.target == volumeInstance && step.after.contains($0.id)
        }) {
            guard let homeCompute = runtime.entry(first.instance, kind: "compute")?.providerID,
                let homeLocation = Self.mountPoint(first)
            else {
                throw StepError(description: "\(volumeInstance) is not mounted on \(first.instance) to share it")
            }
            home = AttachmentRequest.Home(instance: first.instance, computeID: homeCompute, location: homeLocation)
        }
        let request = AttachmentRequest(
            deployment: deployment, instance: step.instance, name: entry.name, volumeID: volumeID,
            volumeInstance: volumeInstance, computeID: computeID, location: Self.mountPoint(step), readOnly: readOnly,
            sharedFrom: home)
        try await provision(entry) {
            let attachment = try await providerCall { () async throws(ProviderError) in
                try await provider.attachVolume(request)
            }
            var detail = ["volume": volumeInstance, "read_only": readOnly ? "true" : "false"]
            if let location = attachment.location { detail["location"] = location }
            if let home { detail["shared_from"] = home.instance }
            return (attachment.providerID, detail)
        }
    }

    /// The ports a Compute node opens and whether it needs a public address, from its endpoints.
    static func endpoints(of node: String, in plan: Plan) -> (ports: [Int], isPublic: Bool) {
        let capabilities = plan.nodes.first { $0.0 == node }?.1["capabilities"]
        // The Compute's own (endpoint, public_endpoint…) say which ports to open and whether the node
        // needs a public address.
        var ports: [Int] = []
        var isPublic = false
        func isPublicEndpoint(_ capability: JSONValue) -> Bool {
            if case .string(let network)? = capability["network_name"] { return network.uppercased() == "PUBLIC" }
            return false
        }
        if case .object(let all)? = capabilities {
            for (_, capability) in all {
                if let port = capability["port"].flatMap(Self.int) { ports.append(port) }
                if case .object(let named)? = capability["ports"] {
                    ports += named.compactMap { $0.1["source"].flatMap(Self.int) }
                }
                if isPublicEndpoint(capability) { isPublic = true }
            }
        }
        // And the public endpoints of what it hosts (a portal's https): the node is reached on those ports from
        // outside. (Private endpoints are for the deployment's other nodes, which the provider lets in.)
        for hosted in Self.hostedNodes(on: node, in: plan) {
            guard case .object(let all)? = plan.nodes.first(where: { $0.0 == hosted })?.1["capabilities"] else {
                continue
            }
            for (_, capability) in all where isPublicEndpoint(capability) {
                isPublic = true
                if let port = capability["port"].flatMap(Self.int) { ports.append(port) }
            }
        }
        return (Array(Set(ports)).sorted(), isPublic)
    }

    /// The nodes whose instances are hosted, directly or down a chain, on instances of `node`.
    static func hostedNodes(on node: String, in plan: Plan) -> [String] {
        var result: [String] = []
        for instance in plan.instances where !result.contains(instance.node) {
            if let root = plan.rootHost(of: instance.id),
                plan.instances.contains(where: { $0.id == root && $0.node == node })
            {
                result.append(instance.node)
            }
        }
        return result
    }

    /// Where an attachment step mounts its volume: the relationship's `location` or `mount_path`.
    static func mountPoint(_ step: Plan.Step) -> String? {
        var location: String?
        for key in ["location", "mount_path"] {
            if case .string(let path)? = step.inputs[key], !path.isEmpty { location = path }
        }
        return location
    }

    // MARK: Teardown

    /// Removes instances: their stop and delete operations (and relationship remove_* operations) first, best
    /// effort, then their attachments, computes and volumes from the ledger — everything recorded, whatever its
    /// state, including resources whose creation was in flight. `only` nil means the whole deployment, which also
    /// asks the provider for anything still tagged with it.
    public func teardown(deployment: String, plan: Plan?, only: Set<String>? = nil) async throws -> TeardownResult {
        var warnings: [String] = []
        let live = try store.liveResources(of: deployment).filter { only?.contains($0.instance) ?? true }
        if let plan {
            warnings += await runTeardownOperations(deployment: deployment, plan: plan, only: only)
        }
        var removed: [LedgerEntry] = []
        var remaining: [LedgerEntry] = []
        // Hosts a volume is shared with let go of it before the host it is attached to.
        let shared = { (entry: LedgerEntry) in entry.detail?.contains("\"shared_from\":") == true }
        let batches = [
            live.filter { $0.kind == "attachment" && shared($0) },
            live.filter { $0.kind == "attachment" && !shared($0) },
            live.filter { $0.kind == "compute" }, live.filter { $0.kind == "volume" },
        ]
        for batch in batches {
            let results = await withTaskGroup(of: (LedgerEntry, String?).self) { group in
                for entry in batch {
                    group.addTask { (entry, await self.delete(entry)) }
                }
                var collected: [(LedgerEntry, String?)] = []
                for await result in group { collected.append(result) }
                return collected
            }
            for (entry, error) in results {
                if let error {
                    remaining.append(entry)
                    warnings.append(error)
                } else {
                    removed.append(entry)
                    progress.report(.removed(kind: entry.kind, instance: entry.instance, name: entry.name))
                }
            }
        }
        // Belt and braces: anything the provider still has under this deployment's tag.
        if only == nil && remaining.isEmpty {
            do {
                let tagged = try await provider.resources(deployment: deployment)
                for resource in tagged {
                    warnings.append("removing \(resource.kind) \(resource.name) found by its tag but not in the ledger")
                    try await remove(resource.kind, name: resource.name, providerID: resource.providerID)
                }
            } catch {
                warnings.append("could not list what the provider holds for \(deployment): \(error)")
            }
        }
        let gone = Set(removed.map(\.instance)).union(only ?? [])
        if remaining.isEmpty { try store.forgetSteps(of: deployment, instances: gone) }
        return TeardownResult(removed: removed, remaining: remaining, warnings: warnings)
    }

    /// Asks the provider to remove one resource of a kind: detach an attachment, delete a volume or a compute.
    private func remove(_ kind: String, name: String, providerID: String?) async throws {
        try await providerCall { () async throws(ProviderError) in
            switch kind {
            case "attachment": try await provider.detachVolume(name: name, providerID: providerID)
            case "volume": try await provider.deleteVolume(name: name, providerID: providerID)
            default: try await provider.deleteCompute(name: name, providerID: providerID)
            }
        }
    }

    /// Deletes one ledger entry; returns the error, if any (the entry then stays for the next run).
    private func delete(_ entry: LedgerEntry) async -> String? {
        guard let id = entry.id else { return nil }
        do {
            try store.markDeleting(id)
            Failpoint.hit("delete.marked")
            let external = entry.kind == "volume" && entry.detail?.contains("\"external\":\"true\"") == true
            if !external {
                try await remove(entry.kind, name: entry.name, providerID: entry.providerID)
            }
            Failpoint.hit("delete.done")
            try store.markDeleted(id)
            return nil
        } catch {
            return "could not remove \(entry.kind) \(entry.name) of \(entry.instance): \(error)"
        }
    }

    /// Stop and delete operations, hosted instances before their hosts; relationship remove_* operations first.
    /// Failures are warnings: a broken node must still be removable.
    private func runTeardownOperations(deployment: String, plan: Plan, only: Set<String>?) async -> [String] {
        let runner = OperationRunner(deployer: self, deployment: deployment, plan: plan)
        guard let runtime = try? runtime(deployment, plan) else { return ["could not read the deployment's state"] }
        let leaving = only ?? Set(plan.instances.map(\.id))
        var calls: [[OperationCall]] = []
        if only != nil {
            calls.append(
                plan.steps.filter { step in
                    Self.isDeferred(step)
                        && (leaving.contains(step.instance) != leaving.contains(step.target ?? step.instance))
                }.map(OperationCall.init(step:)))
        }
        // Deepest in the hosting chain first.
        func depth(_ instance: String) -> Int {
            var count = 0
            var current = instance
            while let host = plan.instances.first(where: { $0.id == current })?.host, count < 64 {
                count += 1
                current = host
            }
            return count
        }
        let instances = plan.instances.filter { leaving.contains($0.id) && runtime.state(of: $0.id) != "initial" }
        for level in Set(instances.map { depth($0.id) }).sorted(by: >) {
            for operation in ["stop", "delete"] {
                calls.append(
                    instances.filter { depth($0.id) == level }.compactMap { instance in
                        OperationCall(standard: operation, instance: instance.id, node: instance.node, plan: plan)
                    })
            }
        }
        var warnings: [String] = []
        for batch in calls where !batch.isEmpty {
            let failures = await withTaskGroup(of: String?.self) { group in
                for call in batch {
                    group.addTask {
                        do {
                            _ = try await runner.run(call)
                            progress.report(.finished(step: call.id, seconds: 0, done: 0, total: 0))
                            return nil
                        } catch {
                            return "\(call.id) failed (going on with the removal): \(error)"
                        }
                    }
                }
                var collected: [String] = []
                for await failure in group { if let failure { collected.append(failure) } }
                return collected
            }
            for failure in failures { progress.report(.warning(failure)) }
            warnings += failures
        }
        return warnings
    }

    // MARK: Values

    static func int(_ value: JSONValue) -> Int? {
        switch value {
        case .int(let number): return number
        case .double(let number): return Int(number)
        case .string(let text): return Int(text)
        default: return nil
        }
    }

    static func text(_ value: JSONValue?) -> String? {
        switch value {
        case .string(let text)?: return text.isEmpty ? nil : text
        case .int(let number)?: return String(number)
        case .double(let number)?: return String(number)
        default: return nil
        }
    }

    static func bytes(_ value: JSONValue) -> Int64? {
        switch value {
        case .int(let number): return Int64(number)
        case .string(let text): return SizeLabel.bytes(text)
        default: return nil
        }
    }

    static func json(_ values: [String: String]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(values)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}
