import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A piece of a layer's stream (its tar or its compressed bytes) in memory of its own, taken from a `ChunkPool` and
/// given back once each of its users is done with it. A chunk in use keeps its pool alive.
final class Chunk: @unchecked Sendable {
    let storage: UnsafeMutableRawBufferPointer
    /// The bytes of `storage` in use; written only by the thread that took the chunk, before it hands it on.
    var count = 0
    /// Users still to release it, and its pool while in use; guarded by the pool's condition.
    fileprivate var users = 0
    fileprivate var pool: ChunkPool?

    /// Page-aligned: a chunk can be written with O_DIRECT.
    fileprivate init(size: Int) { storage = .allocate(byteCount: size, alignment: 4096) }

    deinit { storage.deallocate() }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: storage[0..<count]) }
    var isFull: Bool { count == storage.count }

    /// One user is done with it; the last gives it back to its pool.
    func release() { pool?.release(self) }
}

/// A fixed number of chunks of one size: taking one waits while all are in use, so a pipeline's memory is bounded
/// by its pools whatever the layer's size.
final class ChunkPool: @unchecked Sendable {
    private let condition = NSCondition()
    private var free: [Chunk]

    init(count: Int, size: Int) {
        precondition(count > 0 && size > 0)
        free = (0..<count).map { _ in Chunk(size: size) }
    }

    /// An empty chunk that `users` will release.
    func take(users: Int) -> Chunk {
        condition.lock()
        defer { condition.unlock() }
        while free.isEmpty { condition.wait() }
        return handOut(users: users)
    }

    /// An empty chunk that `users` will release, or nil at once if none is free.
    func tryTake(users: Int) -> Chunk? {
        condition.lock()
        defer { condition.unlock() }
        return free.isEmpty ? nil : handOut(users: users)
    }

    private func handOut(users: Int) -> Chunk {
        let chunk = free.removeLast()
        chunk.count = 0
        chunk.users = users
        chunk.pool = self
        return chunk
    }

    fileprivate func release(_ chunk: Chunk) {
        condition.lock()
        defer { condition.unlock() }
        chunk.users -= 1
        if chunk.users == 0 {
            chunk.pool = nil
            free.append(chunk)
            condition.signal()
        }
    }
}

/// A serial queue (a thread of its own while it has work) that runs `body` on each chunk sent to it, in the order
/// sent, then releases the chunk. After the first error it only releases what it is sent; `finish` throws it.
/// `body` and what it captures are used on that queue only until `finish` returns.
final class Stage: @unchecked Sendable {
    private let queue: DispatchQueue
    private let body: (UnsafeRawBufferPointer) throws -> Void
    private let lock = NSLock()
    private var failure: (any Error)?

    init(_ label: String, body: @escaping (UnsafeRawBufferPointer) throws -> Void) {
        queue = DispatchQueue(label: "deployctl.\(label)")
        self.body = body
    }

    /// Queues `chunk` (counted with a user for this stage); throws the stage's error once it has one.
    func send(_ chunk: Chunk) throws {
        if let failure = lock.withLock({ failure }) {
            chunk.release()
            throw failure
        }
        queue.async { [self] in
            defer { chunk.release() }
            guard lock.withLock({ failure == nil }) else { return }
            do { try body(chunk.bytes) } catch { lock.withLock { failure = error } }
        }
    }

    /// Queues `chunk` here, then hands it to `next` (its other user); if this stage refuses it, `next`'s share is
    /// released too and the error thrown.
    func send(_ chunk: Chunk, then next: (Chunk) throws -> Void) throws {
        do { try send(chunk) } catch {
            chunk.release()
            throw error
        }
        try next(chunk)
    }

    /// Waits until every chunk sent is done; throws the stage's error, if any.
    func finish() throws {
        queue.sync {}
        if let failure = lock.withLock({ failure }) { throw failure }
    }
}

/// Cuts a stream into chunks of a pool and hands each full one to `deliver` (the last, partial one at `flush`);
/// `deliver` (or what it hands the chunk to) releases it `users` times.
final class ChunkWriter: TarOutput {
    private let pool: ChunkPool
    private let users: Int
    private let deliver: (Chunk) throws -> Void
    private var current: Chunk?
    /// The bytes written so far.
    private(set) var written: Int64 = 0
    /// Called while every chunk is in use, before waiting for one: a user that holds chunks until this thread
    /// calls it (a compressor writing frames out in order) gives some back; it says whether it did anything.
    var relief: (() throws -> Bool)?

    init(pool: ChunkPool, users: Int = 1, deliver: @escaping (Chunk) throws -> Void) {
        self.pool = pool
        self.users = users
        self.deliver = deliver
    }

    deinit { if let current { for _ in 0..<users { current.release() } } }

    private func chunk() throws -> Chunk {
        if let current { return current }
        var taken = pool.tryTake(users: users)
        while taken == nil, let relief, try relief() { taken = pool.tryTake(users: users) }
        let chunk = taken ?? pool.take(users: users)
        current = chunk
        return chunk
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            offset += try fill { space in
                let take = min(space.count, bytes.count - offset)
                space.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + take]))
                return take
            }
        }
    }

    /// Reads from `file` straight into the current chunk; the bytes read, 0 at its end.
    func read(from file: Int32) throws -> Int {
        try fill { space in
            while true {
                let count = Glibc.read(file, space.baseAddress, space.count)
                if count < 0 && errno == EINTR { continue }
                guard count >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
                return count
            }
        }
    }

    /// Lets `body` write straight into the current chunk's free space (never empty); `body` returns the bytes it
    /// wrote there.
    func fill(_ body: (UnsafeMutableRawBufferPointer) throws -> Int) throws -> Int {
        let chunk = try chunk()
        let count = try body(UnsafeMutableRawBufferPointer(rebasing: chunk.storage[chunk.count...]))
        chunk.count += count
        written += Int64(count)
        if chunk.isFull {
            current = nil
            try deliver(chunk)
        }
        return count
    }

    /// Hands on the last, partial chunk.
    func flush() throws {
        guard let chunk = current, chunk.count > 0 else { return }
        current = nil
        try deliver(chunk)
    }
}
