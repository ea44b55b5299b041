import CArchiveSupport
import Foundation

/// gzip members at a level (6 unless given), for `FrameCompressor`: each frame a complete member (header with no
/// name, a zero mtime and zlib's fixed OS byte; deflate; trailer), so the same input gives the same bytes.
struct GzipMembers: FrameCodec {
    let level: Int32

    struct GzipError: Error, CustomStringConvertible {
        var description: String
    }

    init(level: Int32 = 6) { self.level = level }

    /// zlib's compressBound for deflate, the gzip header and trailer instead of zlib's, and room to spare.
    func bound(_ size: Int) -> Int { Int(compressBound(uLong(size))) + 64 }

    func compress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws -> Int? {
        var stream = z_stream()
        guard dctl_deflate_init_gzip(&stream, Self.incompressible(input) ? 0 : level) == Z_OK else {
            throw GzipError(description: "zlib: deflateInit2 failed")
        }
        defer { deflateEnd(&stream) }
        stream.next_in = UnsafeMutablePointer(
            mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self) ?? UnsafePointer(bitPattern: 1)!)
        stream.avail_in = uInt(input.count)
        stream.next_out = output.baseAddress!.assumingMemoryBound(to: Bytef.self)
        stream.avail_out = uInt(output.count)
        let status = deflate(&stream, Z_FINISH)
        guard status == Z_STREAM_END else { throw GzipError(description: "zlib: deflate failed (\(status))") }
        return output.count - Int(stream.avail_out)
    }

    /// Whether a frame looks incompressible (packed or random data: wheels, model weights, compressed images): three
    /// 16 KiB samples that deflate at level 1 to more than 95 % of their size. Such a frame is stored (deflate level
    /// 0) instead: zlib spends as long failing to compress random bytes at any level (~28 MB/s) as it takes to
    /// compress text, while storing them runs at memory speed. The decision depends only on the frame.
    static func incompressible(_ frame: UnsafeRawBufferPointer) -> Bool {
        let sample = 16 << 10
        guard frame.count >= 4 * sample, let base = frame.baseAddress else { return false }
        var scratch = [UInt8](repeating: 0, count: Int(compressBound(uLong(sample))))
        for start in [0, frame.count / 2, frame.count - sample] {
            var length = uLongf(scratch.count)
            let status = compress2(
                &scratch, &length, (base + start).assumingMemoryBound(to: Bytef.self), uLong(sample), 1)
            guard status == Z_OK, Int(length) * 100 > sample * 95 else { return false }
        }
        return true
    }
}
