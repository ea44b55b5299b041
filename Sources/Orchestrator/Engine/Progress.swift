import Foundation

/// What `up`, `scale` and `down` report while they work, for a terminal or a log.
public enum ProgressEvent: Sendable, Equatable {
    /// A step began; `running` is every step in flight.
    case started(step: String, running: [String], done: Int, total: Int)
    case finished(step: String, seconds: Double, done: Int, total: Int)
    /// An attempt failed; `retryIn` is set when it will be tried again.
    case failed(step: String, error: String, attempt: Int, retryIn: Double?)
    case blocked(step: String, waitingFor: String)
    case removed(kind: String, instance: String, name: String)
    case warning(String)
}

public protocol ProgressSink: Sendable {
    func report(_ event: ProgressEvent)
}

/// Reports nothing.
public struct SilentProgress: ProgressSink {
    public init() {}
    public func report(_ event: ProgressEvent) {}
}
