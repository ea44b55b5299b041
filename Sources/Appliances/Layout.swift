import Foundation

/// Reading an OCI image layout: its index's manifest entries, the one of a tag, and where a blob lies.
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

    /// The entry tagged `tag`. Without a tag, or (with `orOnly`) when no entry has it, the layout's only entry.
    static func entry(_ entries: [[String: Any]], tag: String?, orOnly: Bool = true) -> [String: Any]? {
        let only = entries.count == 1 ? entries.first : nil
        guard let tag else { return only }
        return entries.first { ($0["annotations"] as? [String: Any])?[refName] as? String == tag }
            ?? (orOnly ? only : nil)
    }
}
