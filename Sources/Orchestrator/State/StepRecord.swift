import Foundation
import GRDB

/// Where one plan step of a deployment stands. Steps are keyed by their plan id (deterministic for a template and
/// its counts), so a resumed `up` skips what is done and retries only what failed.
public struct StepRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "steps"

    public enum Status: String, Codable, Sendable, DatabaseValueConvertible {
        case running, done, failed
        /// Not run because a step it waits for failed.
        case blocked
    }

    public var deployment: String
    public var step: String
    public var instance: String
    public var status: Status
    public var attempts: Int
    public var error: String?
    /// The operation's outputs (`NAME=VALUE` lines it wrote) as a JSON object, for get_operation_output.
    public var outputs: String
    public var updatedAt: Date

    enum CodingKeys: String, CodingKey {
        case deployment, step, instance, status, attempts, error, outputs
        case updatedAt = "updated_at"
    }

    public init(
        deployment: String, step: String, instance: String, status: Status, attempts: Int = 0, error: String? = nil,
        outputs: [String: String] = [:], now: Date = Date()
    ) {
        self.deployment = deployment
        self.step = step
        self.instance = instance
        self.status = status
        self.attempts = attempts
        self.error = error
        self.outputs = Self.encode(outputs)
        self.updatedAt = now
    }

    public var outputValues: [String: String] {
        (try? JSONDecoder().decode([String: String].self, from: Data(outputs.utf8))) ?? [:]
    }

    static func encode(_ outputs: [String: String]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(outputs)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}
