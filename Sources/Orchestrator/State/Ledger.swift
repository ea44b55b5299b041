import Foundation
import GRDB

/// Where a provider resource is in its life. A resource is recorded `intended` *before* the provider call that
/// creates it, so a crash at any point leaves a row that names it; only `deleted` rows are gone from the cloud.
public enum ResourceStatus: String, Codable, Sendable, CaseIterable, DatabaseValueConvertible {
    /// About to be created, or created by a call whose answer was lost (a crash): look it up by name.
    case intended
    case created
    /// The create call failed; something may still exist under its name.
    case failed
    case deleting
    case deleted
}

/// One provider resource (a server, volume, attachment, keypair, floating IP…) of a deployment.
public struct LedgerEntry: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "resources"

    public var id: Int64?
    public var deployment: String
    /// The plan instance it belongs to, such as `front[0]`.
    public var instance: String
    /// `compute`, `volume`, `attachment`, `network`, `address`, `keypair`…
    public var kind: String
    /// The deterministic name and tag deployctl gives the resource (see ``ResourceName``), unique in a deployment.
    public var name: String
    public var provider: String
    /// The provider's id, once the create call has answered.
    public var providerID: String?
    public var status: ResourceStatus
    /// Provider facts the orchestrator reads back (addresses, device paths), as JSON.
    public var detail: String?
    public var error: String?
    public var updatedAt: Date

    enum CodingKeys: String, CodingKey {
        case id, deployment, instance, kind, name, provider
        case providerID = "provider_id"
        case status, detail, error
        case updatedAt = "updated_at"
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) {
        id = inserted.rowID
    }

    /// Whether the resource may exist in the cloud: everything not yet confirmed deleted.
    public var isLive: Bool { status != .deleted }
}

/// Deterministic resource names: `dctl-<deployment>-<instance>-<kind>`, lower-case, `[a-z0-9-]` only, at most 63
/// characters (the tightest limit among the back-ends: Kubernetes names), with a hash suffix when shortened so that
/// two long names never collide. Crash recovery finds in-flight resources by this name.
public enum ResourceName {
    public static let maxLength = 63

    public static func make(deployment: String, instance: String, kind: String) -> String {
        let raw = "dctl-\(deployment)-\(instance)-\(kind)"
        var name = ""
        var lastWasDash = false
        for character in raw.lowercased() {
            let keep = character.isASCII && (character.isLetter || character.isNumber)
            if keep {
                name.append(character)
                lastWasDash = false
            } else if !lastWasDash {
                name.append("-")
                lastWasDash = true
            }
        }
        while name.hasSuffix("-") { name.removeLast() }
        guard name.count > maxLength else { return name }
        let suffix = "-" + String(fnv1a(raw), radix: 16).prefix(8)
        var head = String(name.prefix(maxLength - suffix.count))
        while head.hasSuffix("-") { head.removeLast() }
        return head + suffix
    }

    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }
}
