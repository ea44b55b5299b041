import Foundation

/// How one frame of a layer's stream is compressed: a zstd frame or a gzip member, each complete on its own.
protocol FrameCodec: Sendable {
    /// What a compressed frame of `size` bytes can take at most.
    func bound(_ size: Int) -> Int
    /// Compresses `input` into `output` (of `bound(input.count)` bytes); the bytes written, or nil when the frame
    /// is to be stored: then `store` writes it out, from the input, when its turn comes.
    func compress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws -> Int?
    /// Writes `input` as a frame stored as it is.
    func store(_ input: UnsafeRawBufferPointer, to write: (UnsafeRawBufferPointer) throws -> Void) throws
}

extension FrameCodec {
    func store(_ input: UnsafeRawBufferPointer, to write: (UnsafeRawBufferPointer) throws -> Void) throws {
        preconditionFailure("\(Self.self) never stores a frame")
    }
}

/// A layer's stream compressed on every core, the way pigz, pzstd and containers' zstd:chunked do it: cut into
/// frames of 2 MiB, each compressed on its own by a pool of workers and written out in order (a gzip file of several
/// members, RFC 1952; zstd data of several frames, RFC 8878; GNU gzip and tar, `zstd -d`, Go's readers, containerd
/// and containers/image read them all). The bytes depend only on the input, the codec and its level: the frame size
/// is fixed, not the number of workers nor how the input arrives.
///
/// A tar chunk of exactly one frame (the layer pipeline's default) is compressed where it lies, not copied; a frame
/// the codec stores (zstd) keeps its input until it is written out, from there. Memory is bounded: at most twice
/// as many frames in flight as workers and never more than 8, each with an output buffer of its own, from fixed
/// pools.
final class FrameCompressor<Codec: FrameCodec>: LayerCompressor {
    private let codec: Codec
    private let output: ChunkWriter
    /// Frames compressing, in stream order; at most `limit` at once.
    private var jobs: [Job] = []
    private let limit: Int
    /// Frame-sized buffers for input that does not arrive as whole frames, and for compressed frames.
    private let staging: ChunkPool
    private let results: ChunkPool
    /// The frame being gathered from partial input, if any.
    private var partial: Chunk?
    private var frames = 0

    /// `workers`: frames compressed at once, one per core unless given (the bytes are the same for any number).
    init(_ codec: Codec, workers: Int? = nil, output: ChunkWriter) {
        self.codec = codec
        self.output = output
        let workers = max(1, workers ?? ProcessInfo.processInfo.activeProcessorCount)
        // Twice the workers in flight, so they stay busy while this thread writes the frames out; at most 8 (the
        // layer pipeline's tar chunks bound them anyway), so memory stays bounded on a machine of many cores.
        limit = min(2 * workers, 8)
        staging = ChunkPool(count: limit + 1, size: LayerFrames.size)
        results = ChunkPool(count: limit, size: codec.bound(LayerFrames.size))
    }

    deinit {
        // Nothing of a job's may outlive the compressor, whatever failed.
        for job in jobs {
            job.done.wait()
            job.output.release()
            if job.stored { job.input.release() }
        }
        partial?.release()
    }

    /// Takes one user's share of `chunk`: compressed in place when it is exactly the next frame, copied otherwise.
    func take(_ chunk: Chunk) throws {
        if partial == nil && chunk.count == LayerFrames.size {
            try submit(chunk)
        } else {
            defer { chunk.release() }
            try write(chunk.bytes)
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let frame = partial ?? staging.take(users: 1)
            partial = frame
            let take = min(LayerFrames.size - frame.count, bytes.count - offset)
            UnsafeMutableRawBufferPointer(rebasing: frame.storage[frame.count..<frame.count + take]).copyMemory(
                from: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + take]))
            frame.count += take
            offset += take
            if frame.isFull {
                partial = nil
                try submit(frame)
            }
        }
    }

    func finish() throws {
        if let frame = partial {
            partial = nil
            try submit(frame)
        } else if frames == 0 {
            // An empty stream still gets one (empty) frame: a layer is never zero bytes of gzip or zstd.
            try submit(staging.take(users: 1))
        }
        while !jobs.isEmpty { try emit() }
    }

    /// Writes out the oldest frame in flight, if any (waiting for it): a stored frame gives its input back then.
    func relieve() throws -> Bool {
        guard !jobs.isEmpty else { return false }
        try emit()
        return true
    }

    /// Starts compressing `input` (released once compressed, or once written out if stored), after writing out the
    /// oldest frame if `limit` are in flight.
    private func submit(_ input: Chunk) throws {
        if jobs.count == limit {
            do { try emit() } catch {
                input.release()
                throw error
            }
        }
        let job = Job(input: input, output: results.take(users: 1))
        jobs.append(job)
        frames += 1
        let codec = codec
        DispatchQueue.global().async {
            defer {
                if !job.stored { job.input.release() }
                job.done.signal()
            }
            do {
                if let size = try codec.compress(job.input.bytes, into: job.output.storage) {
                    job.output.count = size
                } else {
                    job.stored = true
                }
            } catch {
                job.failure = error
            }
        }
    }

    /// Waits for the oldest frame and writes it out.
    private func emit() throws {
        let job = jobs.removeFirst()
        job.done.wait()
        defer {
            job.output.release()
            if job.stored { job.input.release() }
        }
        if let failure = job.failure { throw failure }
        if job.stored {
            try codec.store(job.input.bytes, to: output.write)
        } else {
            try output.write(job.output.bytes)
        }
    }

    /// One frame: its input, where it is compressed to, whether it is to be stored instead, and whether that
    /// failed; `output.count`, `stored` and `failure` are written by the worker and read only after `done`.
    private final class Job: @unchecked Sendable {
        let input: Chunk
        let output: Chunk
        var stored = false
        var failure: (any Error)?
        let done = DispatchSemaphore(value: 0)

        init(input: Chunk, output: Chunk) {
            self.input = input
            self.output = output
        }
    }
}

/// The size of a layer's frames: 2 MiB of its tar stream each, the last one shorter.
enum LayerFrames {
    static let size = 2 << 20

    /// Whether a frame looks incompressible (packed or random data: wheels, model weights, compressed images):
    /// three 16 KiB samples (start, middle, end) none of which `shrinks` to 95 % of its size or less (`shrinks`
    /// gets a sample and that limit in bytes). The codecs store such a frame instead of searching it for matches;
    /// the decision depends only on the frame's bytes.
    static func incompressible(
        _ frame: UnsafeRawBufferPointer, shrinks: (UnsafeRawBufferPointer, _ limit: Int) -> Bool
    ) -> Bool {
        let sample = 16 << 10
        guard frame.count >= 4 * sample else { return false }
        for start in [0, frame.count / 2, frame.count - sample] {
            if shrinks(UnsafeRawBufferPointer(rebasing: frame[start..<start + sample]), sample * 95 / 100) {
                return false
            }
        }
        return true
    }
}

/// What a layer's tar stream is compressed with.
protocol LayerCompressor: AnyObject {
    /// Takes one user's share of `chunk` and releases it, once compressed or copied.
    func take(_ chunk: Chunk) throws
    func finish() throws
    /// Gives back chunks it holds, if it can; whether it did anything. See `ChunkWriter.relief`.
    func relieve() throws -> Bool
}
