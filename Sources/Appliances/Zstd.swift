import CArchiveSupport
import Foundation

/// Streaming zstd on every core (libzstd's worker threads). With one worker or more the output depends only on the
/// input, the level and the parameters, not on how many workers run, so layers stay reproducible across machines.
final class ZstdStream: LayerCompressor {
    private let context: OpaquePointer
    private var output = [UInt8](repeating: 0, count: ZSTD_CStreamOutSize())
    private let sink: (UnsafeRawBufferPointer) throws -> Void

    struct ZstdError: Error, CustomStringConvertible {
        var description: String
    }

    init(level: Int32 = 3, sink: @escaping (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let context = ZSTD_createCCtx() else { throw ZstdError(description: "zstd: no compression context") }
        self.context = context
        self.sink = sink
        let workers = Int32(max(1, ProcessInfo.processInfo.activeProcessorCount))
        for (parameter, value) in [
            (ZSTD_c_compressionLevel, level), (ZSTD_c_checksumFlag, 1), (ZSTD_c_nbWorkers, workers),
        ] {
            // nbWorkers fails on a libzstd built without threads: then one thread, the same bytes.
            let status = ZSTD_CCtx_setParameter(context, parameter, value)
            if ZSTD_isError(status) != 0 && parameter != ZSTD_c_nbWorkers {
                throw ZstdError(description: "zstd: \(String(cString: ZSTD_getErrorName(status)))")
            }
        }
    }

    deinit { ZSTD_freeCCtx(context) }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        var input = ZSTD_inBuffer(src: base, size: bytes.count, pos: 0)
        while input.pos < input.size { _ = try pump(&input, ZSTD_e_continue) }
    }

    func finish() throws {
        var input = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
        while try pump(&input, ZSTD_e_end) != 0 {}
    }

    /// One call of ZSTD_compressStream2; what it produced goes to the sink. Returns what is left to flush.
    private func pump(_ input: inout ZSTD_inBuffer, _ mode: ZSTD_EndDirective) throws -> Int {
        let (remaining, produced): (Int, Int) = output.withUnsafeMutableBytes { buffer in
            var out = ZSTD_outBuffer(dst: buffer.baseAddress, size: buffer.count, pos: 0)
            let result = ZSTD_compressStream2(context, &out, &input, mode)
            return (result, out.pos)
        }
        if ZSTD_isError(remaining) != 0 {
            throw ZstdError(description: "zstd: \(String(cString: ZSTD_getErrorName(remaining)))")
        }
        if produced > 0 { try output.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) } }
        return remaining
    }
}

/// What a layer's tar stream is compressed with.
protocol LayerCompressor: AnyObject {
    func write(_ bytes: UnsafeRawBufferPointer) throws
    func finish() throws
}

extension GzipStream: LayerCompressor {}
