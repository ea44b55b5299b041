import CArchiveSupport
import Foundation

/// gzip members at a level (6 unless given), for `FrameCompressor`: each frame a complete member made by libdeflate
/// in one call (its header has no name, a zero mtime and fixed flags, so the same input gives the same bytes).
/// libdeflate compresses a whole buffer 1.5 times as fast as zlib's streaming deflate at the same level, and a
/// little smaller; a frame is all it ever needs to see.
struct GzipMembers: FrameCodec {
    let level: Int32
    private let compressors: CompressorPool

    struct GzipError: Error, CustomStringConvertible {
        var description: String
    }

    init(level: Int32 = 6) {
        self.level = level
        compressors = CompressorPool(level: level)
    }

    /// libdeflate's bound for a gzip member of `size` bytes at any level (it does not depend on the compressor).
    func bound(_ size: Int) -> Int { libdeflate_gzip_compress_bound(nil, size) }

    func compress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws -> Int? {
        let set = compressors.take()
        defer { compressors.give(set) }
        let compressor = Self.incompressible(input, sampler: set.sampler) ? set.storer : set.compressor
        let size = libdeflate_gzip_compress(
            compressor, input.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, input.count, output.baseAddress,
            output.count)
        guard size > 0 else { throw GzipError(description: "libdeflate: a gzip member did not fit its bound") }
        return size
    }

    /// `LayerFrames.incompressible` with libdeflate level 1 on the samples. Such a frame is stored (level 0:
    /// uncompressed blocks): searching random bytes for matches at level 6 costs about as long as compressing text,
    /// while storing them runs at memory speed.
    static func incompressible(_ frame: UnsafeRawBufferPointer, sampler: OpaquePointer) -> Bool {
        let capacity = (16 << 10) * 95 / 100
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        defer { scratch.deallocate() }
        return LayerFrames.incompressible(frame) { sample, limit in
            // libdeflate answers 0 when the result does not fit in `limit` bytes.
            libdeflate_gzip_compress(sampler, sample.baseAddress, sample.count, scratch, limit) != 0
        }
    }

    /// libdeflate compressors for the workers (one at the level, one at level 1 for samples, one at level 0 to
    /// store), made as needed and kept.
    private final class CompressorPool: @unchecked Sendable {
        struct Set {
            let compressor: OpaquePointer
            let sampler: OpaquePointer
            let storer: OpaquePointer
        }

        private let level: Int32
        private let lock = NSLock()
        private var free: [Set] = []

        init(level: Int32) { self.level = level }

        deinit {
            for set in free {
                for compressor in [set.compressor, set.sampler, set.storer] { libdeflate_free_compressor(compressor) }
            }
        }

        func take() -> Set {
            if let set = lock.withLock({ free.popLast() }) { return set }
            guard let compressor = libdeflate_alloc_compressor(level), let sampler = libdeflate_alloc_compressor(1),
                let storer = libdeflate_alloc_compressor(0)
            else { fatalError("libdeflate: no compressor at level \(level)") }
            return Set(compressor: compressor, sampler: sampler, storer: storer)
        }

        func give(_ set: Set) { lock.withLock { free.append(set) } }
    }
}
