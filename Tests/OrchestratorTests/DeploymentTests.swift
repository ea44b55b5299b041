import Foundation
import Providers
import TOSCA
import TestBeds
import Testing

@testable import Orchestrator

/// The two-tier fixture (Fixtures/two-tier) deployed on real OpenSSH hosts with real ansible-playbook: a front-end
/// with a volume and a portal (script + playbook), and a scalable worker pool whose agent reads the front-end's
/// address and the portal's operation output.
final class TwoTierDeployment {
    static let template = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/two-tier/template.yaml").path

    let bed: SSHTestBed
    let home: URL
    let store: StateStore
    var provider: SSHProvider
    let name = "twotier"
    var root: String { bed.path("mnt") }
    var remote: String { bed.path("remote") }

    init(hosts: Int = 3) throws {
        bed = try SSHTestBed(hosts: hosts)
        home = bed.directory.appendingPathComponent("home")
        store = try StateStore.open(home: home)
        guard case .ssh(let config)? = try ProvidersFile.load(bed.path("providers.yaml")).providers["testbed"] else {
            throw OrchestratorError("test", "the test bed wrote no ssh provider")
        }
        provider = SSHProvider(config: config, timeout: .seconds(5))
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try store.create(DeploymentRecord(name: name, template: Self.template, provider: provider.name))
    }

    func plan(_ inputs: [String: String] = [:], counts: [String: Int] = [:]) throws -> Plan {
        var options = ValidationOptions()
        options.inputs = ["mount_root": root].merging(inputs) { _, new in new }
        options.instanceCounts = counts
        let (result, plan) = ToscaProcessor.plan(path: Self.template, options: options)
        guard let plan else {
            throw OrchestratorError("test", "the fixture does not plan: \(result.errors.map(\.message))")
        }
        return plan
    }

    func deployer(attempts: Int = 3) -> Deployer {
        var options = DeployOptions()
        options.attempts = attempts
        options.backoff = .milliseconds(20)
        return Deployer(store: store, provider: provider, options: options)
    }

    /// Files deployctl keeps on the hosts, by kind: claims, volumes, attachments.
    func remoteEntries(_ kind: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "\(remote)/\(kind)")) ?? []).sorted()
    }

    func text(_ relative: String) -> String? {
        try? String(contentsOfFile: "\(root)/\(relative)", encoding: .utf8)
    }
}

@Suite(
    "Deployments on real SSH hosts", .serialized,
    .enabled(if: SSHTestBed.available, "needs root for network namespaces and sshd (scripts/testbed/ssh-hosts.sh)"))
struct DeploymentTests {
    @Test("two hosts: a script and a playbook configure the software, outputs resolve, down leaves nothing behind")
    func deployAndRemove() async throws {
        let deployment = try TwoTierDeployment()
        let secret = "pw-\(UUID().uuidString)"
        let plan = try deployment.plan(["api_password": secret])
        let result = try await deployment.deployer().up(deployment: deployment.name, plan: plan)
        #expect(result.status == .deployed)
        #expect(result.failed.isEmpty)
        #expect(result.ran == 8 && result.total == 8)

        let instances = try deployment.deployer().instances(deployment: deployment.name, plan: plan)
        let front = try #require(instances.first { $0.instance == "front[0]" })
        let worker = try #require(instances.first { $0.instance == "worker[0]" })
        #expect(front.providerID != worker.providerID)
        #expect(instances.allSatisfy { $0.state == "started" })
        let frontAddress = try #require(front.privateAddress)
        let workerAddress = try #require(worker.privateAddress)
        // The playbook wrote onto the attached volume; the agent's script got the front's address and the
        // portal's operation output.
        #expect(deployment.text("results/portal.conf") == "listen \(frontAddress):8080\n")
        #expect(deployment.text("agents.txt") == "agent[0] front=\(frontAddress) portal=http://\(frontAddress):8080/\n")
        // The relationship's add_source ran on the portal's host, told which agent joined and from where.
        #expect(deployment.text("members.txt") == "joined agent[0] from \(workerAddress) on portal[0]\n")

        let outputs = try deployment.deployer().outputs(deployment: deployment.name, plan: plan)
        #expect(outputs.map(\.name) == ["portal_url", "front_address", "worker_addresses"])
        #expect(
            outputs.map(\.value) == [
                .string("http://\(frontAddress):8080/"), .string(frontAddress), .string(workerAddress),
            ])
        #expect(deployment.remoteEntries("claims").count == 2)
        #expect(deployment.remoteEntries("attachments").count == 1)

        // Up again: nothing to do, nothing duplicated.
        let again = try await deployment.deployer().up(deployment: deployment.name, plan: plan)
        #expect(again.status == .deployed && again.ran == 0)
        #expect(deployment.remoteEntries("claims").count == 2)
        #expect(try deployment.store.liveResources(of: deployment.name).count == 4)

        // The provider holds exactly what the ledger says; a claim removed behind deployctl's back shows up.
        #expect(try await deployment.deployer().verify(deployment: deployment.name).isEmpty)
        let workerClaim = "\(deployment.remote)/claims/\(worker.providerID ?? "").claim"
        let claim = try String(contentsOfFile: workerClaim, encoding: .utf8)
        try FileManager.default.removeItem(atPath: workerClaim)
        let drift = try await deployment.deployer().verify(deployment: deployment.name)
        #expect(drift.missing.map(\.instance) == ["worker[0]"] && drift.untracked.isEmpty)
        try claim.write(toFile: workerClaim, atomically: true, encoding: .utf8)

        // The secret input reached the script (it checks) but never deployctl's state.
        for file in try FileManager.default.contentsOfDirectory(atPath: deployment.home.path) {
            let data = try Data(contentsOf: deployment.home.appendingPathComponent(file))
            #expect(data.range(of: Data(secret.utf8)) == nil, "\(file) holds the secret input")
        }

        let teardown = try await deployment.deployer().teardown(deployment: deployment.name, plan: plan)
        #expect(teardown.remaining.isEmpty)
        #expect(teardown.removed.map(\.kind).sorted() == ["attachment", "compute", "compute", "volume"])
        #expect(deployment.text("portal-stopped") == "stopped portal[0]\n")
        #expect(deployment.remoteEntries("claims").isEmpty)
        #expect(deployment.remoteEntries("attachments").isEmpty)
        #expect(deployment.remoteEntries("volumes").isEmpty)
        #expect(deployment.remoteEntries("work").isEmpty)
        #expect(try await deployment.provider.resources(deployment: deployment.name).isEmpty)
        try deployment.store.remove(deployment: deployment.name)
    }

    @Test("scale out configures new workers only; scale in removes them and their resources")
    func scale() async throws {
        let deployment = try TwoTierDeployment()
        let one = try deployment.plan()
        #expect(try await deployment.deployer().up(deployment: deployment.name, plan: one).status == .deployed)

        let two = try deployment.plan(counts: ["worker": 2])
        let out = try await deployment.deployer().up(deployment: deployment.name, plan: two, previous: one)
        #expect(out.status == .deployed)
        #expect(out.ran == 3)  // worker[1].create_compute, agent[1].Standard.configure and its add_source
        #expect(deployment.remoteEntries("claims").count == 3)
        let agents = deployment.text("agents.txt")?.split(separator: "\n").map { String($0.prefix(8)) }
        #expect(agents == ["agent[0]", "agent[1]"])
        let addresses = try deployment.deployer().outputs(deployment: deployment.name, plan: two)
            .first { $0.name == "worker_addresses" }?.value
        guard case .array(let list)? = addresses else {
            Issue.record("worker_addresses should be a list for two workers, got \(String(describing: addresses))")
            return
        }
        #expect(list.count == 2)

        let none = try deployment.plan(counts: ["worker": 0])
        let scaledIn = try await deployment.deployer().up(deployment: deployment.name, plan: none, previous: two)
        #expect(scaledIn.status == .deployed)
        #expect(scaledIn.removed == ["agent[0]", "agent[1]", "worker[0]", "worker[1]"])
        // remove_source told the portal about each leaving agent.
        let members = deployment.text("members.txt")?.split(separator: "\n").map { $0.split(separator: " ").prefix(2) }
        #expect(
            members?.map { $0.joined(separator: " ") }.sorted() == [
                "joined agent[0]", "joined agent[1]", "left agent[0]", "left agent[1]",
            ])
        #expect(deployment.remoteEntries("claims").count == 1)
        #expect(
            try deployment.store.liveResources(of: deployment.name).map(\.instance).sorted() == [
                "front[0]", "front[0]", "results[0]",
            ])
        // Scaling out again runs the new instance's steps afresh.
        let back = try await deployment.deployer().up(deployment: deployment.name, plan: one, previous: none)
        #expect(back.status == .deployed && back.ran == 3)
        _ = try await deployment.deployer().teardown(deployment: deployment.name, plan: one)
        #expect(deployment.remoteEntries("claims").isEmpty)
    }

    @Test("a failing configure script: its error is reported, healthy nodes are kept, up again retries only it")
    func failingScript() async throws {
        let deployment = try TwoTierDeployment()
        let broken = try deployment.plan(["fail_agent": "true"])
        let result = try await deployment.deployer().up(deployment: deployment.name, plan: broken)
        #expect(result.status == .degraded)
        #expect(result.failed.map(\.step) == ["agent[0].Standard.configure"])
        let message = try #require(result.failed.first?.error)
        #expect(message.contains("exited with status 7"))
        #expect(message.contains("cannot reach the portal"))
        #expect(try deployment.store.deployment(named: deployment.name)?.status == .degraded)
        // Healthy nodes stay: both hosts claimed, the portal configured.
        #expect(deployment.remoteEntries("claims").count == 2)
        #expect(deployment.text("results/portal.conf") != nil)
        let steps = try deployment.store.steps(of: deployment.name)
        #expect(steps["agent[0].Standard.configure"]?.status == .failed)
        #expect(steps["agent[0].Standard.configure"]?.attempts == 1)  // a script failure is not retried

        let fixed = try deployment.plan()
        let again = try await deployment.deployer().up(deployment: deployment.name, plan: fixed)
        #expect(again.status == .deployed)
        #expect(again.ran == 2)  // the failed step, and add_source that waited for it
        _ = try await deployment.deployer().teardown(deployment: deployment.name, plan: fixed)
    }

    @Test("a host that refuses SSH is skipped for a free one; with none left the node fails and the rest deploys")
    func refusingHost() async throws {
        let deployment = try TwoTierDeployment(hosts: 2)
        // h1's sshd port now points at a port nobody listens on: connections are refused.
        var config = deployment.provider.config
        config.hosts[0].port = 2
        // A refused connection fails at once; the timeout only bounds the healthy host's handshake, which a loaded
        // machine (the whole suite in parallel) can take seconds to finish.
        deployment.provider = SSHProvider(config: config, timeout: .seconds(15))
        let plan = try deployment.plan()
        let result = try await deployment.deployer(attempts: 2).up(deployment: deployment.name, plan: plan)
        #expect(result.status == .degraded)
        let failure = try #require(result.failed.first)
        #expect(result.failed.count == 1, "\(result.failed.map { "\($0.step): \($0.error)" })")
        #expect(failure.step.hasSuffix(".create_compute"))
        #expect(failure.error.contains("unreachable"))
        #expect(failure.error.contains("\(config.hosts[0].address):2"))
        #expect(try deployment.store.steps(of: deployment.name)[failure.step]?.attempts == 2)  // retried once
        // The other compute got the healthy host and everything that does not depend on the failed one ran.
        #expect(deployment.remoteEntries("claims") == ["h2.claim"])
        #expect(!result.blocked.isEmpty)
        _ = try await deployment.deployer().teardown(deployment: deployment.name, plan: plan)
        #expect(deployment.remoteEntries("claims").isEmpty)
    }

    @Test("a host whose key does not match known_hosts is refused, not retried, and nothing is claimed")
    func hostKeyMismatch() async throws {
        let deployment = try TwoTierDeployment(hosts: 2)
        // Swap the two hosts' keys in a copy of known_hosts.
        let original = try String(contentsOfFile: deployment.bed.path("known_hosts"), encoding: .utf8)
        let lines = original.split(separator: "\n").map(String.init)
        try #require(lines.count == 2)
        func key(_ line: String) -> String {
            line.split(separator: " ", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
        }
        func host(_ line: String) -> String { String(line.split(separator: " ").first ?? "") }
        let swapped = "\(host(lines[0])) \(key(lines[1]))\n\(host(lines[1])) \(key(lines[0]))\n"
        let knownHosts = deployment.bed.path("known_hosts.swapped")
        try swapped.write(toFile: knownHosts, atomically: true, encoding: .utf8)
        var config = deployment.provider.config
        config.knownHosts = knownHosts
        deployment.provider = SSHProvider(config: config, timeout: .seconds(3))

        let plan = try deployment.plan()
        let result = try await deployment.deployer().up(deployment: deployment.name, plan: plan)
        #expect(result.status == .degraded)
        #expect(result.failed.map(\.step).sorted() == ["front[0].create_compute", "worker[0].create_compute"])
        for failure in result.failed {
            #expect(failure.error.contains("ssh-host-key-mismatch"), "\(failure.error)")
            #expect(try deployment.store.steps(of: deployment.name)[failure.step]?.attempts == 1)
        }
        #expect(deployment.remoteEntries("claims").isEmpty)
        // The ledger still records the attempts, so `down` settles them.
        let teardown = try await TwoTierDeployment.withProvider(
            deployment, knownHosts: deployment.bed.path("known_hosts")
        )
        .deployer().teardown(deployment: deployment.name, plan: plan)
        #expect(teardown.remaining.isEmpty)
    }
}

extension TwoTierDeployment {
    /// The same deployment seen through a provider with another known_hosts file.
    static func withProvider(_ deployment: TwoTierDeployment, knownHosts: String) -> TwoTierDeployment {
        var config = deployment.provider.config
        config.knownHosts = knownHosts
        deployment.provider = SSHProvider(config: config, timeout: .seconds(3))
        return deployment
    }
}
