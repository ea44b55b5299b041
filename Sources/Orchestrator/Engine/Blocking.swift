import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Runs blocking work (libssh2 sessions, child processes) on a Dispatch thread, so that parallel steps do not
/// starve Swift's cooperative pool (as many threads as cores).
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            continuation.resume(with: Result { try body() })
        }
    }
}

/// Named crash points for fault-injection tests: with `DEPLOYCTL_FAILPOINT=NAME:N` in the environment the process
/// kills itself with SIGKILL the N-th time it passes NAME (no clean-up, like a power cut). Without the variable a
/// failpoint costs one dictionary lookup.
public enum Failpoint {
    private static let armed: (name: String, count: Int)? = {
        guard let value = ProcessInfo.processInfo.environment["DEPLOYCTL_FAILPOINT"],
            let colon = value.lastIndex(of: ":"), let count = Int(value[value.index(after: colon)...]), count > 0
        else { return nil }
        return (String(value[..<colon]), count)
    }()
    private static let hits = Mutex(0)

    /// The points `up`, `scale` and `down` pass, for tests to iterate over.
    public static let names = [
        "compute.intended", "compute.created", "volume.intended", "volume.created", "attachment.intended",
        "attachment.created", "step.done", "delete.marked", "delete.done",
    ]

    static func hit(_ name: String) {
        guard let armed, armed.name == name else { return }
        let count = hits.withLock { value in
            value += 1
            return value
        }
        if count == armed.count { kill(getpid(), SIGKILL) }
    }
}
