import Foundation

/// Reading an OCI image layout: its index's manifest entries, the ones of a tag, and where a blob lies; and
/// recording an image in its index.
enum OCILayout {
    static let refName = "org.opencontainers.image.ref.name"

    static func blob(_ root: URL, _ digest: String) -> URL {
        root.appendingPathComponent("blobs/sha256/" + digest.replacingOccurrences(of: "sha256:", with: ""))
    }

    /// index.json's manifest entries; nil when the layout has no readable index.
    static func entries(_ root: URL) -> [[String: Any]]? {
        guard let data = FileManager.default.contents(atPath: root.appendingPathComponent("index.json").path),
            let index = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        return index["manifests"] as? [[String: Any]] ?? []
    }

    static func tag(of entry: [String: Any]) -> String? {
        (entry["annotations"] as? [String: Any])?[refName] as? String
    }

    /// The entries tagged `tag` (one per platform). Without a tag, or (with `orOnly`) when no entry has it, the
    /// layout's only entry.
    static func tagged(_ entries: [[String: Any]], tag: String?, orOnly: Bool = true) -> [[String: Any]] {
        let only = entries.count == 1 ? entries : []
        guard let tag else { return only }
        let found = entries.filter { self.tag(of: $0) == tag }
        return found.isEmpty && orOnly ? only : found
    }

    /// The entry tagged `tag` (see `tagged`); of several (one per platform), the one of `platform`, else the first.
    static func entry(_ entries: [[String: Any]], tag: String?, orOnly: Bool = true, platform: Platform? = nil)
        -> [String: Any]?
    {
        let found = tagged(entries, tag: tag, orOnly: orOnly)
        guard let platform, found.count > 1 else { return found.first }
        return found.first { Platform(json: $0["platform"]).map(platform.matches) ?? false }
    }

    /// An entry's platform: its `platform` field, else the os and architecture of its manifest's config.
    static func platform(of entry: [String: Any], in root: URL) -> Platform? {
        if let platform = Platform(json: entry["platform"]) { return platform }
        guard let digest = entry["digest"] as? String,
            let manifest = json(blob(root, digest)), let config = manifest["config"] as? [String: Any],
            let configDigest = config["digest"] as? String
        else { return nil }
        return Platform(json: json(blob(root, configDigest)))
    }

    static func json(_ url: URL) -> [String: Any]? {
        FileManager.default.contents(atPath: url.path).flatMap {
            try? JSONSerialization.jsonObject(with: $0) as? [String: Any]
        }
    }

    /// Adds the image `descriptor` of `platform` to the layout's index under `tag`: an entry of the same tag and
    /// platform is replaced, every other entry kept (the same tag for other platforms included). Entries are
    /// sorted by tag, then platform, so the index does not depend on the order images were added in.
    static func record(_ descriptor: Descriptor, platform: Platform, tag: String, in root: URL) throws {
        var entries = (entries(root) ?? []).filter {
            self.tag(of: $0) != tag || self.platform(of: $0, in: root).map { $0 == platform } != true
        }
        var entry = descriptor.json
        entry["platform"] = platform.json
        entry["annotations"] = [refName: tag]
        entries.append(entry)
        let keys = entries.map { (self.tag(of: $0) ?? "", self.platform(of: $0, in: root)?.description ?? "") }
        let sorted = zip(keys, entries).sorted { $0.0 < $1.0 }.map(\.1)
        let index: [String: Any] = [
            "schemaVersion": 2, "mediaType": ApplianceBuilder.indexMediaType, "manifests": sorted,
        ]
        try ApplianceBuilder.canonical(["imageLayoutVersion": "1.0.0"]).write(
            to: root.appendingPathComponent("oci-layout"), options: .atomic)
        try ApplianceBuilder.canonical(index).write(to: root.appendingPathComponent("index.json"), options: .atomic)
    }
}
