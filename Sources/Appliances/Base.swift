import Foundation

/// A base image read from an OCI image layout (`base: oci:DIR[:TAG]`; `deployctl appliance pull` makes one from a
/// registry): its layers, their diff IDs and history, and its runtime config, which the spec's settings extend.
struct BaseImage {
    var layers: [Descriptor]
    var diffIDs: [String]
    var history: [[String: Any]]
    var runtime: [String: Any]

    /// Layer media types of Docker's schema 2, and the OCI ones with the same bytes.
    static let ociLayerType = [
        "application/vnd.docker.image.rootfs.diff.tar.gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.docker.image.rootfs.diff.tar": "application/vnd.oci.image.layer.v1.tar",
    ]

    /// `oci:DIR[:TAG]`, DIR relative to `directory`; the layer blobs are copied into `blobs` (checked against their
    /// digests on the way).
    static func load(_ base: String, directory: String, platform: Platform, blobs: URL) throws -> BaseImage {
        var rest = String(base.dropFirst(4))
        var tag: String?
        if let colon = rest.lastIndex(of: ":"), !rest[colon...].contains("/") {
            tag = String(rest[rest.index(after: colon)...])
            rest = String(rest[..<colon])
        }
        let root = URL(fileURLWithPath: rest.hasPrefix("/") ? rest : directory + "/" + rest)
        func json(_ url: URL) throws -> [String: Any] {
            guard let data = FileManager.default.contents(atPath: url.path),
                let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
            else { throw ApplianceBuilder.BuildError(description: "\(base): \(url.lastPathComponent) is unreadable") }
            return object
        }
        func blob(_ digest: String) -> URL { OCILayout.blob(root, digest) }
        guard let entries = OCILayout.entries(root) else {
            throw ApplianceBuilder.BuildError(description: "\(base): index.json is unreadable")
        }
        guard let entry = OCILayout.entry(entries, tag: tag, orOnly: false, platform: platform),
            let manifestDigest = entry["digest"] as? String
        else {
            throw ApplianceBuilder.BuildError(
                description:
                    "\(base): no image \(tag.map { "tagged \($0) for \(platform)" } ?? "(the layout holds several; name a tag)")"
            )
        }
        let manifest = try json(blob(manifestDigest))
        guard let configEntry = manifest["config"] as? [String: Any],
            let configDigest = configEntry["digest"] as? String,
            let layerEntries = manifest["layers"] as? [[String: Any]]
        else { throw ApplianceBuilder.BuildError(description: "\(base): the manifest has no config or layers") }
        let config = try json(blob(configDigest))
        guard let found = Platform(json: config), found.matches(platform) else {
            throw ApplianceBuilder.BuildError(
                description: "\(base): the base is \(Platform(json: config)?.description ?? "?/?"), "
                    + "the spec's platform \(platform)")
        }
        var layers: [Descriptor] = []
        for layer in layerEntries {
            guard let digest = layer["digest"] as? String, let size = (layer["size"] as? NSNumber)?.int64Value,
                let type = layer["mediaType"] as? String
            else { throw ApplianceBuilder.BuildError(description: "\(base): a layer without digest or size") }
            let target = blobs.appendingPathComponent(String(digest.dropFirst(7)))
            if !FileManager.default.fileExists(atPath: target.path) {
                try copyChecked(blob(digest), to: target, digest: digest, what: base)
            }
            layers.append(Descriptor(mediaType: ociLayerType[type] ?? type, digest: digest, size: size))
        }
        let rootfs = config["rootfs"] as? [String: Any]
        let diffIDs = rootfs?["diff_ids"] as? [String] ?? []
        guard diffIDs.count == layers.count else {
            throw ApplianceBuilder.BuildError(description: "\(base): the config's diff_ids do not match its layers")
        }
        return BaseImage(
            layers: layers, diffIDs: diffIDs, history: config["history"] as? [[String: Any]] ?? [],
            runtime: config["config"] as? [String: Any] ?? [:])
    }

    /// Copies a blob, hashing it on the way; a blob whose bytes do not match its digest is refused.
    static func copyChecked(_ source: URL, to target: URL, digest: String, what: String) throws {
        guard let input = FileHandle(forReadingAtPath: source.path) else {
            throw ApplianceBuilder.BuildError(description: "\(what): blob \(digest) is missing")
        }
        defer { try? input.close() }
        let temporary = target.appendingPathExtension("partial")
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil),
            let output = FileHandle(forWritingAtPath: temporary.path)
        else { throw ApplianceBuilder.BuildError(description: "cannot write \(temporary.path)") }
        let hash = SHA256Stream()
        while let chunk = try input.read(upToCount: 1 << 20), !chunk.isEmpty {
            hash.update(chunk)
            try output.write(contentsOf: chunk)
        }
        try output.close()
        guard hash.finish() == digest else {
            try? FileManager.default.removeItem(at: temporary)
            throw ApplianceBuilder.BuildError(description: "\(what): blob \(digest) does not match its digest")
        }
        try FileManager.default.moveItem(at: temporary, to: target)
    }
}

extension ApplianceBuilder {
    /// Where a spec whose base is `docker://REGISTRY/REPOSITORY[:TAG]` takes it from: the image of the spec's
    /// platform is pulled into the OCI layout `cache` (blobs it holds are not fetched again; the manifest is, so a
    /// moved tag is followed) and the spec's base becomes that layout's image. Other bases are left as they are.
    /// Returns the pulled manifest's digest, nil when there was nothing to pull.
    public static func resolveBase(
        _ spec: inout ApplianceSpec, client: RegistryClient, cache: String,
        progress: (@Sendable (RegistryClient.TransferProgress) -> Void)? = nil
    ) async throws -> String? {
        guard spec.base.hasPrefix("docker://") else { return nil }
        let reference = try RegistryClient.Reference(String(spec.base.dropFirst(9)))
        // A tag of its own per reference: readable, and its digest's start keeps look-alikes (a/b, a_b) apart.
        let readable = String(
            reference.description.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" ? $0 : "_" }.prefix(100))
        let tag = readable + "-" + SHA256Stream.digest(Data(reference.description.utf8)).dropFirst(7).prefix(12)
        let digest = try await client.pull(
            reference, into: cache, tag: tag, platform: spec.platform, progress: progress)
        spec.base = "oci:\(cache):\(tag)"
        return digest
    }
}
