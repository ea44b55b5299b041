import Foundation
import Providers
import Staging

/// A staged volume's copy on a host of an ssh provider: `STATE_DIR/data-volumes/NAME`, the directory a template's
/// `volume_id` names there. Series go up as the stager made them — into `.staging/` first, then moved into place
/// in one rename — and the manifest last, so the copy never lists a series it does not fully hold. Sealing checks
/// every file on the host against the manifest (`sha256sum -c`) before making the tree read-only.
struct RemoteVolume {
    let session: SSHSession
    let root: String
    /// The host's name in the providers file, and `provider/host` for messages.
    let host: String
    let hostName: String

    /// Connects to `host` of `config` (the first host when nil).
    init(config: SSHProviderConfig, host: String?, volume name: String, acceptNewHostKeys: Bool) throws {
        guard let chosen = host.map({ wanted in config.hosts.first { $0.name == wanted } }) ?? config.hosts.first
        else {
            let known = config.hosts.map(\.name).joined(separator: ", ")
            throw CLIError("provider '\(config.name)' has no host \(host.map { "'\($0)'" } ?? "") (hosts: \(known))")
        }
        do {
            session = try SSHSession(config.endpoint(chosen, acceptNewHostKey: acceptNewHostKeys))
        } catch {
            throw CLIError("\(config.name)/\(chosen.name): \(error)")
        }
        root = "\(config.stateDirectory)/data-volumes/\(name)"
        self.host = chosen.name
        hostName = "\(config.name)/\(chosen.name)"
    }

    func run(_ command: String) throws -> String {
        let result: CommandResult
        do { result = try session.run(command) } catch { throw CLIError("\(hostName): \(error)") }
        guard result.exitStatus == 0 else {
            throw CLIError(
                "\(hostName): `\(command.prefix(80))` failed (exit \(result.exitStatus)): "
                    + result.stderr.split(separator: "\n").suffix(3).joined(separator: " "))
        }
        return result.stdout
    }

    func upload(_ local: String, _ remote: String) throws {
        do { try session.upload(file: local, to: remote) } catch { throw CLIError("\(hostName): \(error)") }
    }

    /// Uploads the series the host lacks, then volume.json and manifest.json (each by rename). Returns the number
    /// of series uploaded and of files sent.
    func publish(_ volume: Volume, progress: (String) -> Void) throws -> (series: Int, files: Int) {
        let manifest = try volume.manifest()
        let present = Set(
            try run(
                "mkdir -p \(shellQuote(root))/.staging && cd \(shellQuote(root)) && "
                    + "find . -mindepth 3 -maxdepth 3 -type d ! -path './.staging*' | cut -c3-"
            ).split(separator: "\n").map(String.init))
        var series = 0
        var files = 0
        for entry in manifest.series where !entry.files.isEmpty {
            let relative = "\(entry.patient)/\(entry.study)/\(entry.series)"
            if present.contains(relative) { continue }
            let staging = "\(root)/.staging/\(entry.series)"
            let directories = Set(entry.files.map { ($0.path as NSString).deletingLastPathComponent })
                .map { shellQuote(staging + "/" + $0.dropFirst(relative.count + 1)) }
            _ = try run("rm -rf \(shellQuote(staging)) && mkdir -p \(directories.sorted().joined(separator: " "))")
            for file in entry.files {
                try upload(volume.path + "/" + file.path, staging + "/" + file.path.dropFirst(relative.count + 1))
                files += 1
            }
            let parent = "\(root)/\(entry.patient)/\(entry.study)"
            _ = try run(
                "mkdir -p \(shellQuote(parent)) && mv \(shellQuote(staging)) \(shellQuote(root + "/" + relative))")
            series += 1
            progress("uploaded series …\(entry.series.suffix(8)) (\(entry.files.count) files) to \(hostName)")
        }
        for name in ["volume.json", "manifest.json"] {
            try upload(volume.path + "/" + name, "\(root)/.\(name).tmp")
            _ = try run("mv \(shellQuote("\(root)/.\(name).tmp")) \(shellQuote("\(root)/\(name)"))")
        }
        return (series, files)
    }

    /// Publishes what is missing, checks every file on the host against the manifest, makes the copy read-only.
    func seal(_ volume: Volume) throws {
        _ = try publish(volume) { _ in }
        let manifest = try volume.manifest()
        let list = manifest.series.flatMap(\.files).map { "\($0.sha256)  \($0.path)\n" }.joined()
        let listFile = NSTemporaryDirectory() + "deployctl-sums-\(UUID().uuidString)"
        try Data(list.utf8).write(to: URL(fileURLWithPath: listFile))
        defer { try? FileManager.default.removeItem(atPath: listFile) }
        try upload(listFile, "\(root)/.staging/sha256sums")
        _ = try run(
            "cd \(shellQuote(root)) && sha256sum --quiet --strict -c .staging/sha256sums && rm -rf .staging && "
                + "find . -type f -exec chmod 0444 {} + && find . -type d -exec chmod 0555 {} +")
    }

    /// Removes the copy from the host.
    func delete() throws {
        _ = try run(
            "if [ -d \(shellQuote(root)) ]; then chmod -R u+w \(shellQuote(root)) && rm -rf \(shellQuote(root)); fi")
    }
}
