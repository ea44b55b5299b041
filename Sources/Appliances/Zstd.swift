import CArchiveSupport
import Foundation

/// zstd frames at a level (3 unless given), each with its content size and checksum, for `FrameCompressor`. Against
/// one multi-threaded frame (libzstd's workers), frames of their own copy nothing on the way in or out of libzstd,
/// and a frame that does not compress is stored: three 16 KiB samples that zstd level 1 cannot shrink by 5 % make
/// it a frame of raw blocks (no checksum: the bytes are the input's, and the layer's digest covers them), written at
/// memory speed where level 3 spends 1.1 ms/MiB failing to compress random bytes (wheels, model weights, images).
/// Frames of 2 MiB lose about 1 % of the ratio against one frame: 0.9 % on a tar of the Swift toolchain's libraries.
struct ZstdFrames: FrameCodec {
    let level: Int32
    private let contexts = ContextPool()

    struct ZstdError: Error, CustomStringConvertible {
        var description: String
    }

    init(level: Int32 = 3) { self.level = level }

    func bound(_ size: Int) -> Int { ZSTD_compressBound(size) }

    func compress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws -> Int? {
        let context = contexts.take()
        defer { contexts.give(context) }
        if Self.incompressible(input, context: context) { return nil }  // stored by `store`
        ZSTD_CCtx_reset(context, ZSTD_reset_session_and_parameters)
        for (parameter, value) in [(ZSTD_c_compressionLevel, level), (ZSTD_c_checksumFlag, 1)] {
            try Self.check(ZSTD_CCtx_setParameter(context, parameter, value))
        }
        let size = ZSTD_compress2(context, output.baseAddress, output.count, input.baseAddress, input.count)
        try Self.check(size)
        return size
    }

    private static func check(_ status: Int) throws {
        if ZSTD_isError(status) != 0 {
            throw ZstdError(description: "zstd: \(String(cString: ZSTD_getErrorName(status)))")
        }
    }

    /// Compression contexts for the workers, made as needed and kept: a context's tables are reused by the next
    /// frame instead of allocated again.
    private final class ContextPool: @unchecked Sendable {
        private let lock = NSLock()
        private var free: [OpaquePointer] = []

        deinit { for context in free { ZSTD_freeCCtx(context) } }

        func take() -> OpaquePointer {
            if let context = lock.withLock({ free.popLast() }) { return context }
            guard let context = ZSTD_createCCtx() else { fatalError("zstd: out of memory for a context") }
            return context
        }

        func give(_ context: OpaquePointer) { lock.withLock { free.append(context) } }
    }

    /// `LayerFrames.incompressible` with zstd level 1 on the samples.
    static func incompressible(_ frame: UnsafeRawBufferPointer, context: OpaquePointer) -> Bool {
        let capacity = ZSTD_compressBound(16 << 10)
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        defer { scratch.deallocate() }
        return LayerFrames.incompressible(frame) { sample, limit in
            let size = ZSTD_compressCCtx(context, scratch, capacity, sample.baseAddress, sample.count, 1)
            return ZSTD_isError(size) != 0 || size <= limit
        }
    }

    func store(_ input: UnsafeRawBufferPointer, to write: (UnsafeRawBufferPointer) throws -> Void) throws {
        try Self.storedFrame(input, to: write)
    }

    /// Writes `bytes` as a stored frame (RFC 8878 §3.1.1: a single-segment frame header with the content size, no
    /// dictionary and no checksum, then raw blocks of at most 128 KiB) to `write`.
    static func storedFrame(
        _ bytes: UnsafeRawBufferPointer, to write: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        func put(_ value: Int, bytes count: Int) throws {
            let little = (0..<count).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
            try little.withUnsafeBytes { try write($0) }
        }
        try put(0xFD2F_B528, bytes: 4)
        // Frame_Header_Descriptor: Single_Segment_flag (bit 5) and the size of Frame_Content_Size (bits 7-6).
        switch bytes.count {
        case ..<256:
            try put(0x20, bytes: 1)
            try put(bytes.count, bytes: 1)
        case ..<(65_536 + 256):
            try put(0x60, bytes: 1)
            try put(bytes.count - 256, bytes: 2)
        default:
            try put(0xA0, bytes: 1)
            try put(bytes.count, bytes: 4)
        }
        var offset = 0
        repeat {
            let size = min(128 << 10, bytes.count - offset)
            let last = offset + size == bytes.count
            // Block_Header: Last_Block (bit 0), Block_Type 0 = Raw (bits 1-2), Block_Size (bits 3-23).
            try put(size << 3 | (last ? 1 : 0), bytes: 3)
            try write(UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + size]))
            offset += size
        } while offset < bytes.count
    }
}
