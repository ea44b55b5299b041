import ArgumentParser
import Foundation
import Orchestrator
import Providers
import Synchronization
import TOSCA

/// Options of the commands that touch deployments.
struct StateOptions: ParsableArguments {
    @Option(name: .customLong("home"), help: "deployctl's state directory (default: $DEPLOYCTL_HOME or ~/.deployctl).")
    var home: String?

    @OptionGroup var access: ProviderAccessOptions

    var context: DeploymentContext { DeploymentContext(home: home, access: access) }
}

/// Where providers are declared and how strictly their hosts are trusted.
struct ProviderAccessOptions: ParsableArguments {
    @Option(name: .customLong("providers"), help: "The providers file (default: DEPLOYCTL_HOME/providers.yaml).")
    var providers: String?

    @Flag(help: "Trust hosts whose key is not in known_hosts yet, and record their keys (trust on first use).")
    var acceptNewHostKeys = false
}

/// The state directory and provider options of one command.
struct DeploymentContext {
    var home: String?
    var access: ProviderAccessOptions

    var homeURL: URL { resolvedHome(home) }
    var providers: String? { access.providers }
    var acceptNewHostKeys: Bool { access.acceptNewHostKeys }

    func store() throws -> StateStore {
        do {
            return try StateStore.open(home: homeURL)
        } catch {
            writeError("error: \(error)")
            throw ExitCode(2)
        }
    }

    /// The provider called `name`; without a name, the only one the providers file declares, or `local` when it
    /// declares none.
    func provider(_ name: String?) throws -> any Provider {
        let path = providers ?? ProvidersFile.defaultPath(home: homeURL).path
        if providers != nil && !FileManager.default.fileExists(atPath: path) {
            writeError("error: \(path): cannot read the providers file")
            throw ExitCode(2)
        }
        let file: ProvidersFile
        let declared: [String]
        do {
            (file, declared) = try ProvidersFile.loadWithDefaults(path, home: homeURL)
        } catch {
            writeError("error: \(error.description)")
            throw ExitCode(2)
        }
        let chosen: String
        if let name {
            chosen = name
        } else if declared.count <= 1 {
            chosen = declared.first ?? "local"
        } else {
            writeError(
                "error: \(path) declares \(declared.count) providers (\(declared.joined(separator: ", "))); "
                    + "choose one with --provider")
            throw ExitCode(2)
        }
        guard let config = file.providers[chosen] else {
            let known = file.providers.keys.sorted().joined(separator: ", ")
            writeError("error: no provider named '\(chosen)'; known: \(known) (declare providers in \(path))")
            throw ExitCode(2)
        }
        switch config {
        case .ssh(let ssh): return SSHProvider(config: ssh, acceptNewHostKeys: acceptNewHostKeys)
        case .local(let local):
            if let reason = LocalProvider.unavailableReason() {
                writeError("error: \(reason)")
                throw ExitCode(2)
            }
            return LocalProvider(config: local)
        case .openstack(let openstack):
            do {
                return try OpenStackProvider(config: openstack)
            } catch {
                writeError("error: provider '\(chosen)': \(error.message)")
                throw ExitCode(2)
            }
        }
    }

    func record(_ store: StateStore, _ name: String) throws -> DeploymentRecord {
        guard let record = try store.deployment(named: name) else {
            let known = (try? store.deployments().map(\.name)) ?? []
            writeError(
                "error: no deployment named '\(name)'"
                    + (known.isEmpty ? "" : "; deployments: \(known.joined(separator: ", "))"))
            throw ExitCode(2)
        }
        return record
    }
}

/// Options of the commands that run steps.
struct RunOptions: ParsableArguments {
    @Option(help: "Steps run in parallel at most.") var concurrency: Int = 8
    @Option(help: "Tries per step for transient failures (unreachable host, dropped connection).") var attempts: Int = 3

    var deployOptions: DeployOptions {
        var options = DeployOptions()
        options.concurrency = max(1, concurrency)
        options.attempts = max(1, attempts)
        return options
    }
}

/// Inputs whose names say they are secret are never written to deployctl's state; give them again with -i on
/// `up`, `scale` and `outputs`.
enum SecretInputs {
    static let markers = ["password", "passwd", "secret", "token", "credential", "private_key", "api_key", "apikey"]

    static func isSecret(_ name: String) -> Bool {
        let lower = name.lowercased()
        return markers.contains { lower.contains($0) }
    }

    static func storable(_ inputs: [String: String]) -> String {
        let kept = inputs.filter { !isSecret($0.key) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(kept)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    static func decode(_ json: String) -> [String: String] {
        (try? JSONDecoder().decode([String: String].self, from: Data(json.utf8))) ?? [:]
    }

}

/// Which instances each scaled node has: a count (instances 0..<n) or, once particular instances were taken away
/// (`scale --remove`, the elastic controller), their numbers. Kept in the deployment record's `counts` as
/// `{"cpu_worker": 3}` or `{"cpu_worker": [0, 2]}`.
struct InstanceSelection: Equatable {
    var counts: [String: Int] = [:]
    var indices: [String: [Int]] = [:]

    init() {}

    init(json: String) {
        let object = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any] ?? [:]
        for (node, value) in object {
            if let count = value as? Int {
                counts[node] = count
            } else if let numbers = value as? [Int] {
                indices[node] = numbers
            }
        }
    }

    var json: String {
        let entries = Set(counts.keys).union(indices.keys).sorted().map { node in
            (node, indices[node].map { JSONValue.array($0.map(JSONValue.int)) } ?? .int(counts[node] ?? 0))
        }
        return JSONValue.object(entries).serialized(pretty: false)
    }

    /// Sets a node's instance numbers; a plain count when they are 0..<n.
    mutating func set(_ node: String, to numbers: [Int]) {
        let sorted = Array(Set(numbers)).sorted()
        if sorted == Array(0..<sorted.count) {
            counts[node] = sorted.count
            indices[node] = nil
        } else {
            indices[node] = sorted
            counts[node] = nil
        }
    }

    func apply(to options: inout ValidationOptions) {
        options.instanceCounts = counts
        options.instanceIndices = indices
    }
}

/// Plans a recorded deployment again from its template, stored inputs, extra inputs and counts.
func replan(
    _ record: DeploymentRecord, extra: [String: String] = [:], selection: InstanceSelection? = nil, home: URL,
    quiet: Bool = false
) -> Plan? {
    var options = ValidationOptions(importCache: ImportCache(home: home))
    options.inputs = SecretInputs.decode(record.inputs).merging(extra) { _, new in new }
    (selection ?? InstanceSelection(json: record.counts)).apply(to: &options)
    let (result, plan) = ToscaProcessor.plan(path: record.template, options: options)
    if plan == nil, !quiet {
        let renderer = DiagnosticRenderer(sources: result.sources, color: useColor())
        for diagnostic in result.errors { writeError(renderer.render(diagnostic)) }
    }
    return plan
}

/// Plans `record` again with `numbers` as these nodes' instance numbers and, when it plans, keeps them in the
/// record and the store (`scale` and the elastic controller change a deployment this way).
func reselect(
    _ record: inout DeploymentRecord, _ numbers: [String: [Int]], extra: [String: String] = [:], store: StateStore,
    home: URL, quiet: Bool = false
) throws -> Plan? {
    var selection = InstanceSelection(json: record.counts)
    for (node, wanted) in numbers { selection.set(node, to: wanted) }
    guard let plan = replan(record, extra: extra, selection: selection, home: home, quiet: quiet) else { return nil }
    record.counts = selection.json
    try store.update(record)
    return plan
}

/// Prints progress on stderr: on a terminal a status line (steps done / total and what runs now) under the
/// finished steps; otherwise one plain line per event.
final class TerminalProgress: ProgressSink, Sendable {
    let terminal = isatty(STDERR_FILENO) == 1
    private let state = Mutex<(running: [String], done: Int, total: Int)>(([], 0, 0))

    func report(_ event: ProgressEvent) {
        var lines: [String] = []
        var status = ""
        state.withLock { state in
            switch event {
            case .started(let step, let running, let done, let total):
                state = (running, done, total)
                if !terminal { lines.append("[\(done)/\(total)] start \(step)") }
            case .finished(let step, let seconds, let done, let total):
                state.running.removeAll { $0 == step }
                if total > 0 {
                    state.done = done
                    lines.append("[\(done)/\(total)] done  \(step) (\(String(format: "%.1f", seconds))s)")
                } else {
                    lines.append("done  \(step)")
                }
            case .failed(let step, let error, let attempt, let retryIn):
                if let retryIn {
                    lines.append(
                        "retry \(step) (attempt \(attempt) failed; again in \(String(format: "%.1f", retryIn))s): \(error)"
                    )
                } else {
                    state.running.removeAll { $0 == step }
                    lines.append("FAIL  \(step): \(error)")
                }
            case .blocked(let step, let waitingFor):
                lines.append("skip  \(step) (waits for \(waitingFor))")
            case .removed(let kind, let instance, let name):
                lines.append("removed \(kind) \(name) (\(instance))")
            case .warning(let message):
                lines.append("warning: \(message)")
            }
            if terminal && !state.running.isEmpty {
                status = "[\(state.done)/\(state.total)] running: \(state.running.joined(separator: ", "))"
            }
        }
        var text = terminal ? "\r\u{1B}[K" : ""
        for line in lines { text += line + "\n" }
        if terminal {
            let width = 160
            text += status.count > width ? String(status.prefix(width - 1)) + "…" : status
        }
        FileHandle.standardError.write(Data(text.utf8))
    }

    /// Clears the status line.
    func finish() {
        if terminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}

/// Runs `body` as a task that Ctrl-C cancels: steps in flight finish and are recorded, nothing new starts. A
/// second Ctrl-C exits at once (the ledger is still consistent: every resource was recorded before it was made).
func cancellableOnInterrupt<T: Sendable>(
    signals: [Int32] = [SIGINT], _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let task = Task { try await body() }
    let count = Mutex(0)
    let handler: @Sendable () -> Void = {
        let seen = count.withLock { value in
            value += 1
            return value
        }
        if seen == 1 {
            writeError("\ninterrupted: letting running steps finish (Ctrl-C again to stop at once)")
            task.cancel()
        } else {
            Foundation.exit(130)
        }
    }
    let sources = signals.map { number in
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler(handler: handler)
        source.resume()
        return source
    }
    defer {
        for source in sources { source.cancel() }
        for number in signals { signal(number, SIG_DFL) }
    }
    return try await task.value
}

/// A deployment name from a template file name: lower-case letters, digits and dashes.
func defaultDeploymentName(_ template: String) -> String {
    let name = dashed(URL(fileURLWithPath: template).deletingPathExtension().lastPathComponent.lowercased())
    return name.isEmpty ? "deployment" : name
}

/// ASCII letters and digits kept, every run of anything else one dash, none at either end (`cpu_worker[2]` →
/// `cpu-worker-2`): deployment names from file names, SLURM node names from instances as the recipes make them.
func dashed(_ text: String) -> String {
    var name = ""
    for character in text {
        if character.isASCII && (character.isLetter || character.isNumber) {
            name.append(character)
        } else if !name.hasSuffix("-") {
            name.append("-")
        }
    }
    return name.trimmingCharacters(in: CharacterSet(charactersIn: "-"))
}

/// Deployment names: 1–40 of `a-z 0-9 -`, starting with a letter (they end up in resource names and tags).
func checkDeploymentName(_ name: String) throws {
    let valid =
        (1...40).contains(name.count) && name.first?.isLetter == true
        && name.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }
    guard valid else {
        throw ValidationError(
            "deployment name '\(name)': use 1 to 40 lower-case letters, digits and dashes, starting with a letter")
    }
}
