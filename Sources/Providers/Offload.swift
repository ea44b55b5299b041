import Dispatch

/// Runs blocking work (libssh2 calls, child processes) on a Dispatch thread, so that a provider called from many
/// tasks at once does not hold Swift's cooperative threads (one per core) while it waits.
func offload<T: Sendable>(_ body: @escaping @Sendable () throws(ProviderError) -> T) async throws(ProviderError) -> T {
    let result: Result<T, ProviderError> = await withCheckedContinuation { continuation in
        DispatchQueue.global().async {
            continuation.resume(returning: Result { () throws(ProviderError) in try body() })
        }
    }
    return try result.get()
}
