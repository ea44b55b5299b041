import Appliances
import ArgumentParser
import Foundation

struct ApplianceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "appliance",
        abstract: "Appliances: build reproducible OCI images from a spec, and look into them.",
        subcommands: [ApplianceBuild.self, ApplianceInspect.self])
}

/// `deployctl appliance build SPEC --output DIR`.
struct ApplianceBuild: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build an appliance spec into an OCI image layout.",
        discussion: """
            The spec (YAML) names a base (`scratch` so far), layers from directories and files (`directory:` or \
            `file:` with an absolute `to:`, an optional octal `mode:` for a file), env, entrypoint, cmd, workdir, \
            labels, exposed_ports, resources (cpus, memory_mb, gpus: kept as org.deployctl.resources.* labels) and \
            created (the one timestamp in the image; default SOURCE_DATE_EPOCH, else 1970-01-01).

            Each layer is a deterministic tar (entries sorted, owner 0:0, the fixed mtime, files 0644 or 0755 by \
            their executable bit, PAX records for long names) compressed with gzip, streamed to disk while its \
            digests are computed. The same spec and the same file contents give the same digests on any machine \
            and day. Tools that read OCI layouts take the result: `skopeo copy oci:DIR:TAG …`, `umoci unpack`.
            """)

    @Argument(help: "The appliance spec (YAML).") var spec: String
    @Option(help: "The OCI image layout directory to write (created if missing).") var output: String
    @Option(help: "The tag the index names the image by.") var tag: String = "latest"
    @Option(help: "text or json.") var format: OutputFormat = .text

    func run() throws {
        let loaded: ApplianceSpec
        do {
            loaded = try ApplianceSpec.load(path: spec)
        } catch {
            writeError("error: \(error.description)")
            throw ExitCode(2)
        }
        let result: BuildResult
        do {
            result = try ApplianceBuilder.build(loaded, output: output, tag: tag)
        } catch {
            writeError("error: \(spec): \(error)")
            throw ExitCode(2)
        }
        switch format {
        case .json:
            let object: [String: Any] = [
                "name": loaded.name, "output": output, "tag": tag, "manifest": result.manifest.digest,
                "config": result.config.digest,
                "layers": result.layers.map { ["digest": $0.digest, "size": $0.size] }, "diff_ids": result.diffIDs,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
            print(String(decoding: data, as: UTF8.self))
        case .text:
            print("\(loaded.name): \(output):\(tag)")
            print("manifest \(result.manifest.digest)")
            for (layer, diffID) in zip(result.layers, result.diffIDs) {
                print("layer \(layer.digest) (\(layer.size) bytes; uncompressed \(diffID))")
            }
        }
    }
}

/// `deployctl appliance inspect DIR`.
struct ApplianceInspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "List the images of an OCI image layout with their layers and config.")

    @Argument(help: "An OCI image layout directory.") var layout: String

    func run() throws {
        let root = URL(fileURLWithPath: layout)
        func object(_ url: URL) throws -> [String: Any] {
            guard let data = FileManager.default.contents(atPath: url.path),
                let value = try JSONSerialization.jsonObject(with: data) as? [String: Any]
            else {
                writeError("error: \(url.path): not a JSON object (is \(layout) an OCI image layout?)")
                throw ExitCode(2)
            }
            return value
        }
        func blob(_ digest: String) -> URL {
            root.appendingPathComponent("blobs/sha256/\(digest.replacingOccurrences(of: "sha256:", with: ""))")
        }
        let index = try object(root.appendingPathComponent("index.json"))
        for entry in index["manifests"] as? [[String: Any]] ?? [] {
            let digest = entry["digest"] as? String ?? "?"
            let tag = (entry["annotations"] as? [String: Any])?["org.opencontainers.image.ref.name"] as? String ?? "-"
            let manifest = try object(blob(digest))
            let configDigest = (manifest["config"] as? [String: Any])?["digest"] as? String ?? "?"
            let config = try object(blob(configDigest))
            let platform = "\(config["os"] ?? "?")/\(config["architecture"] ?? "?")"
            print("\(tag) \(digest) \(platform) created \(config["created"] ?? "?")")
            for layer in manifest["layers"] as? [[String: Any]] ?? [] {
                print("  layer \(layer["digest"] ?? "?") \(layer["size"] ?? "?") bytes")
            }
            let runtime = config["config"] as? [String: Any] ?? [:]
            for key in ["Entrypoint", "Cmd", "Env", "WorkingDir", "ExposedPorts"] where runtime[key] != nil {
                print("  \(key): \(runtime[key]!)")
            }
        }
    }
}
