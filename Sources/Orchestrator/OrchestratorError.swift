/// The Orchestrator's error: a stable code, a message a person can act on, and the underlying cause. Messages never
/// carry credentials (the ledger holds no secrets).
public struct OrchestratorError: Error, Sendable, CustomStringConvertible {
    public var code: String
    public var message: String
    public var cause: String?

    public init(_ code: String, _ message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause.map { String(describing: $0) }
    }

    public var description: String { cause.map { "\(message): \($0)" } ?? message }
}
