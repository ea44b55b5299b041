import CArchiveSupport
import Foundation

/// Streaming zstd on every core (libzstd's worker threads). With one worker or more the output depends only on the
/// input, the level and the parameters (the job size fixed here, not left to the level), not on how many workers
/// run or how the input is cut into writes, so layers stay reproducible across machines.
final class ZstdStream: LayerCompressor {
    /// libzstd's default for level 3 is 8 MiB jobs (four times its 2 MiB window). Its buffers grow with the job
    /// size and with how fast it is fed: with 8 MiB jobs fed by the threaded layer pipeline deployctl peaked at
    /// 149 MiB of RSS on the appliance benchmark, with 2 MiB jobs at 75 MiB. Each job sees only the previous one's
    /// last 256 KiB, so the ratio is a little worse: 0.7 % larger on a tar of the Swift toolchain's libraries.
    static let jobSize: Int32 = 2 << 20
    private let context: OpaquePointer
    /// Where the compressed bytes go, written there by libzstd (no copy in between).
    private let output: ChunkWriter

    struct ZstdError: Error, CustomStringConvertible {
        var description: String
    }

    /// `workers`: libzstd's worker threads, one per core unless given (the bytes are the same for any number).
    init(level: Int32 = 3, workers: Int? = nil, output: ChunkWriter) throws {
        guard let context = ZSTD_createCCtx() else { throw ZstdError(description: "zstd: no compression context") }
        self.context = context
        self.output = output
        let workers = Int32(max(1, workers ?? ProcessInfo.processInfo.activeProcessorCount))
        // The worker count before the job size: libzstd takes a job size only in multi-threaded mode. A libzstd
        // built without threads refuses both and compresses on this thread; its frames differ from these (the
        // distributions' libzstd has threads).
        for (parameter, value) in [
            (ZSTD_c_compressionLevel, level), (ZSTD_c_checksumFlag, 1), (ZSTD_c_nbWorkers, workers),
            (ZSTD_c_jobSize, Self.jobSize),
        ] {
            let status = ZSTD_CCtx_setParameter(context, parameter, value)
            if ZSTD_isError(status) != 0 && parameter != ZSTD_c_nbWorkers && parameter != ZSTD_c_jobSize {
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

    /// One call of ZSTD_compressStream2, writing into the output's current chunk. Returns what is left to flush.
    private func pump(_ input: inout ZSTD_inBuffer, _ mode: ZSTD_EndDirective) throws -> Int {
        var remaining = 0
        _ = try output.fill { space in
            var out = ZSTD_outBuffer(dst: space.baseAddress, size: space.count, pos: 0)
            remaining = ZSTD_compressStream2(context, &out, &input, mode)
            return ZSTD_isError(remaining) != 0 ? 0 : out.pos
        }
        if ZSTD_isError(remaining) != 0 {
            throw ZstdError(description: "zstd: \(String(cString: ZSTD_getErrorName(remaining)))")
        }
        return remaining
    }
}

/// What a layer's tar stream is compressed with.
protocol LayerCompressor: AnyObject {
    func write(_ bytes: UnsafeRawBufferPointer) throws
    func finish() throws
}

extension GzipStream: LayerCompressor {}
