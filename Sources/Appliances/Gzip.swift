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
