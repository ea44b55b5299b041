import CArchiveSupport
import Foundation

/// Streaming gzip (zlib's deflate with a gzip wrapper). The header zlib writes has no name, a zero mtime and a fixed
/// OS byte, so the same input at the same level gives the same bytes.
final class GzipStream {
    private var stream = z_stream()
    private var output = [UInt8](repeating: 0, count: 1 << 16)
    private let sink: (UnsafeRawBufferPointer) throws -> Void

    struct GzipError: Error, CustomStringConvertible {
        var description: String
    }

    init(level: Int32 = 6, sink: @escaping (UnsafeRawBufferPointer) throws -> Void) throws {
        self.sink = sink
        guard dctl_deflate_init_gzip(&stream, level) == Z_OK else {
            throw GzipError(description: "zlib: deflateInit2 failed")
        }
    }

    deinit { deflateEnd(&stream) }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        stream.next_in = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(bytes.count)
        try pump(Z_NO_FLUSH)
    }

    func finish() throws {
        stream.next_in = nil
        stream.avail_in = 0
        try pump(Z_FINISH)
    }

    private func pump(_ flush: Int32) throws {
        while true {
            let status: Int32 = output.withUnsafeMutableBufferPointer { buffer in
                stream.next_out = buffer.baseAddress
                stream.avail_out = uInt(buffer.count)
                return deflate(&stream, flush)
            }
            guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else {
                throw GzipError(description: "zlib: deflate failed (\(status))")
            }
            let produced = output.count - Int(stream.avail_out)
            if produced > 0 {
                try output.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) }
            }
            if flush == Z_FINISH {
                if status == Z_STREAM_END { return }
            } else if stream.avail_in == 0 && stream.avail_out != 0 {
                return
            }
        }
    }
}

/// gzip on every core: the stream cut into 1 MiB blocks, each compressed as a gzip member of its own (RFC 1952
/// allows a file of several members, and gzip readers — Go's, containerd's, GNU gzip — read them all), the
/// members written in order. The block size is fixed, so the bytes do not depend on how many cores ran.
final class ParallelGzip: LayerCompressor {
    static let blockSize = 1 << 20
    private let level: Int32
    private let sink: (UnsafeRawBufferPointer) throws -> Void
    private let width = max(1, ProcessInfo.processInfo.activeProcessorCount)
    private var pending: [[UInt8]] = []
    private var current: [UInt8] = []

    init(level: Int32 = 6, sink: @escaping (UnsafeRawBufferPointer) throws -> Void) {
        self.level = level
        self.sink = sink
        current.reserveCapacity(Self.blockSize)
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let take = min(Self.blockSize - current.count, bytes.count - offset)
            current.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + take]))
            offset += take
            if current.count == Self.blockSize {
                pending.append(current)
                current = []
                current.reserveCapacity(Self.blockSize)
                if pending.count == width * 2 { try flush() }
            }
        }
    }

    func finish() throws {
        // An empty stream still gets one (empty) member: a layer is never zero bytes of gzip.
        if !current.isEmpty || (pending.isEmpty && inFlight == nil && !flushedAny) {
            pending.append(current)
            current = []
        }
        try flush(final: true)
    }

    /// A batch of blocks being compressed in the background; `members` is written by the workers only and read
    /// only after `group.wait()`.
    private final class Batch: @unchecked Sendable {
        var members: [[UInt8]]
        let group = DispatchGroup()

        init(count: Int) { members = [[UInt8]](repeating: [], count: count) }
    }

    /// The batch compressing while the next one is read: reading, tar and hashing overlap compression.
    private var inFlight: Batch?
    private var flushedAny = false

    /// Starts compressing the pending blocks (one per core) and hands the previous batch's members to the sink,
    /// in order; with `final`, this batch's too.
    private func flush(final: Bool = false) throws {
        flushedAny = true
        let blocks = pending
        pending = []
        let batch = Batch(count: blocks.count)
        let level = level
        batch.group.enter()
        DispatchQueue.global().async {
            batch.members.withUnsafeMutableBufferPointer { results in
                // Each iteration writes only its own slot.
                nonisolated(unsafe) let slots = results
                DispatchQueue.concurrentPerform(iterations: blocks.count) { index in
                    slots[index] = Self.member(blocks[index], level: level)
                }
            }
            batch.group.leave()
        }
        try emit(inFlight)
        inFlight = batch
        if final {
            try emit(batch)
            inFlight = nil
        }
    }

    private func emit(_ batch: Batch?) throws {
        guard let batch else { return }
        batch.group.wait()
        for member in batch.members {
            guard !member.isEmpty else { throw GzipStream.GzipError(description: "zlib: compressing a block failed") }
            try member.withUnsafeBytes { try sink($0) }
        }
    }

    /// Whether a block looks incompressible (packed or random data: wheels, model weights, compressed images):
    /// three 16 KiB samples that deflate at level 1 to more than 95 % of their size. Such a block is stored
    /// (deflate level 0) instead: zlib spends as long failing to compress random bytes at any level (~28 MB/s) as
    /// it takes to compress text, while storing them runs at memory speed. The decision depends only on the block.
    static func incompressible(_ block: [UInt8]) -> Bool {
        let sample = 16 << 10
        guard block.count >= 4 * sample else { return false }
        var scratch = [UInt8](repeating: 0, count: Int(compressBound(uLong(sample))))
        for start in [0, block.count / 2, block.count - sample] {
            var length = uLongf(scratch.count)
            let status = block.withUnsafeBytes { input in
                compress2(
                    &scratch, &length, input.baseAddress!.assumingMemoryBound(to: Bytef.self) + start, uLong(sample), 1)
            }
            guard status == Z_OK, Int(length) * 100 > sample * 95 else { return false }
        }
        return true
    }

    /// One complete gzip member (header with no name and a zero mtime, deflate, trailer).
    static func member(_ block: [UInt8], level: Int32) -> [UInt8] {
        var stream = z_stream()
        guard dctl_deflate_init_gzip(&stream, incompressible(block) ? 0 : level) == Z_OK else { return [] }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(block.count))) + 64)
        let status: Int32 = block.withUnsafeBytes { input in
            output.withUnsafeMutableBytes { out in
                stream.next_in = UnsafeMutablePointer(
                    mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self) ?? UnsafePointer(bitPattern: 1)!)
                stream.avail_in = uInt(input.count)
                stream.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.avail_out = uInt(out.count)
                return deflate(&stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END else { return [] }
        output.removeLast(Int(stream.avail_out))
        return output
    }
}
