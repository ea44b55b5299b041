import Foundation
import TestBeds
import Testing

@testable import Appliances

@Suite("zstd layers")
struct ZstdTests {
    /// The demo spec with `compression: zstd`.
    func zstdSpec(_ scratch: Scratch) throws -> ApplianceSpec {
        let path = try makeTree(scratch, order: [3, 2, 1, 0], mtime: Date(), plainMode: 0o600)
        let text = try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(
            of: "name: demo\n", with: "name: demo\ncompression: zstd\n")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return try ApplianceSpec.load(path: path)
    }

    @Test(
        "zstd layers: reproducible, their media type says zstd, zstd -d gives the tar of the diff ID, skopeo reads it")
    func zstdLayers() throws {
        let scratch = try Scratch()
        let spec = try zstdSpec(scratch)
        #expect(spec.compression == .zstd)
        let first = try ApplianceBuilder.build(spec, output: scratch.path + "/a", tag: "v1")
        let second = try ApplianceBuilder.build(spec, output: scratch.path + "/b", tag: "v1")
        #expect(first.manifest.digest == second.manifest.digest)
        #expect(first.layers.allSatisfy { $0.mediaType == ApplianceBuilder.zstdLayerMediaType })
        let gzipped = try ApplianceBuilder.build(
            try ApplianceSpec.load(path: try makeTree(scratch, order: [0, 1, 2, 3], mtime: Date(), plainMode: 0o644)),
            output: scratch.path + "/g", tag: "v1")
        // The same tar inside: diff IDs equal to the gzip build's; the compressed blobs differ.
        #expect(first.diffIDs == gzipped.diffIDs)
        #expect(first.layers.map(\.digest) != gzipped.layers.map(\.digest))
        for (layer, diffID) in zip(first.layers, first.diffIDs) {
            let blob = scratch.path + "/a/blobs/sha256/" + layer.digest.dropFirst(7)
            let decompressed = try runProgram(
                "/bin/sh", ["-c", "zstd -dc '\(blob)' | sha256sum | cut -d' ' -f1"])
            #expect("sha256:" + decompressed.output.trimmingCharacters(in: .whitespacesAndNewlines) == diffID)
            let listing = try runProgram("/bin/sh", ["-c", "zstd -dc '\(blob)' | tar -tvf -"])
            #expect(listing.status == 0, "\(listing.output)")
        }
        let inspect = try runProgram("/usr/bin/skopeo", ["inspect", "oci:\(scratch.path)/a:v1"])
        #expect(inspect.status == 0, "\(inspect.output)")
        #expect(inspect.output.contains(first.manifest.digest))
    }

    @Test("an unknown compression is refused with the key")
    func badCompression() throws {
        let scratch = try Scratch()
        try scratch.write("s.yaml", "name: x\ncompression: lz4\n")
        let error = #expect(throws: ApplianceSpec.SpecError.self) {
            try ApplianceSpec.load(path: scratch.path + "/s.yaml")
        }
        #expect(error?.description == "\(scratch.path)/s.yaml: compression: gzip or zstd")
    }
}

/// A compressor's output gathered in memory.
private final class Collected {
    var data = Data()
}

@Suite("zstd frames")
struct ZstdFrameTests {
    /// `bytes` through a `FrameCompressor` of `codec` fed in pieces of `piece` bytes, with `workers`.
    func compress(
        _ bytes: [UInt8], _ codec: some FrameCodec = ZstdFrames(), piece: Int, workers: Int
    ) throws -> Data {
        let collected = Collected()
        let writer = ChunkWriter(pool: ChunkPool(count: 2, size: 65_536)) { chunk in
            collected.data.append(contentsOf: chunk.bytes)
            chunk.release()
        }
        let compressor = FrameCompressor(codec, workers: workers, output: writer)
        try bytes.withUnsafeBytes { all in
            var offset = 0
            while offset < all.count {
                let end = min(all.count, offset + piece)
                try compressor.write(UnsafeRawBufferPointer(rebasing: all[offset..<end]))
                offset = end
            }
        }
        try compressor.finish()
        try writer.flush()
        return collected.data
    }

    /// `zstd -dc` of `data`, and its exit status.
    func decompress(_ data: Data, _ scratch: Scratch) throws -> (Data?, Int32) {
        let input = scratch.path + "/frames.zst"
        try data.write(to: URL(fileURLWithPath: input))
        let run = try runProgram("/bin/sh", ["-c", "zstd -qdc '\(input)' > '\(scratch.path)/frames.out'"])
        return (FileManager.default.contents(atPath: scratch.path + "/frames.out"), run.status)
    }

    /// 5 MiB of pseudo-random bytes, then 3 MiB of text and an odd tail: frames 0-1 random, 2 half and half, 3-4
    /// text (the last one short).
    func mixed() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 5 << 20)
        var state: UInt64 = 0x2545_F491_4F6C_DD1D
        for index in bytes.indices {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            bytes[index] = UInt8(truncatingIfNeeded: state >> 33)
        }
        return bytes + Array(String(repeating: "cortical thickness 2.1 mm\n", count: (3 << 20) / 26 + 1_001).utf8)
    }

    @Test("gzip members of 2 MiB: the same bytes whatever the workers or the pieces; gzip reads them all")
    func gzipMembers() throws {
        let scratch = try Scratch()
        let bytes = mixed()
        let reference = try compress(bytes, GzipMembers(), piece: LayerFrames.size, workers: 2)
        for (piece, workers) in [(4099, 1), (65_536, 3), (3 << 20, 4)] {
            #expect(try compress(bytes, GzipMembers(), piece: piece, workers: workers) == reference, "\(piece)")
        }
        try reference.write(to: URL(fileURLWithPath: scratch.path + "/members.gz"))
        let run = try runProgram("/bin/sh", ["-c", "gzip -dc '\(scratch.path)/members.gz' > '\(scratch.path)/out'"])
        #expect(run.status == 0, "\(run.output)")
        #expect(FileManager.default.contents(atPath: scratch.path + "/out") == Data(bytes))
        // Five members, each starting with the same header (gzip magic, deflate, no flags, zero mtime).
        let header = Data([0x1F, 0x8B, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00])
        var members = 0
        var position = reference.startIndex
        while let found = reference[position...].firstRange(of: header) {
            members += 1
            position = found.upperBound
        }
        #expect(members >= 5)
        // The two random frames are stored (deflate level 0), the rest compressed: a little over 5 MiB in all.
        #expect(reference.count > (4 << 20) && reference.count < (5 << 20) + (1 << 19))
    }

    @Test(
        "stored frames of every header size (1-, 2- and 4-byte content sizes, several raw blocks) read back with zstd")
    func storedFrames() throws {
        let scratch = try Scratch()
        for size in [0, 1, 255, 256, 65_791, 65_792, 300_000] {
            let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 7) }
            let collected = Collected()
            try bytes.withUnsafeBytes { input in
                try ZstdFrames.storedFrame(input) { collected.data.append(contentsOf: $0) }
            }
            let (output, status) = try decompress(collected.data, scratch)
            #expect(status == 0, "\(size) bytes")
            #expect(output == Data(bytes), "\(size) bytes")
            // Header and one 3-byte header per raw block of at most 128 KiB; nothing else.
            let header = 5 + (size < 256 ? 1 : size < 65_792 ? 2 : 4)
            #expect(collected.data.count == header + 3 * max(1, (size + (128 << 10) - 1) / (128 << 10)) + size)
        }
    }

    @Test(
        "2 MiB frames: random ones stored, text compressed, zstd reads them all; the bytes do not depend on the workers or the pieces"
    )
    func frames() throws {
        let scratch = try Scratch()
        let bytes = mixed()
        let reference = try compress(bytes, piece: LayerFrames.size, workers: 2)
        for (piece, workers) in [(4099, 1), (65_536, 3), (3 << 20, 4)] {
            #expect(try compress(bytes, piece: piece, workers: workers) == reference, "\(piece) \(workers)")
        }
        let (output, status) = try decompress(reference, scratch)
        #expect(status == 0)
        #expect(output == Data(bytes))
        // The two random frames are stored: their header (single segment, 4-byte content size of 2 MiB) and 16 raw
        // blocks; the mixed frame and the text are compressed, so the whole is well under the input.
        let stored = Data([0x28, 0xB5, 0x2F, 0xFD, 0xA0, 0x00, 0x00, 0x20, 0x00])
        #expect(reference.starts(with: stored))
        #expect(reference[(LayerFrames.size + 9 + 16 * 3)...].starts(with: stored))
        #expect(!reference[(2 * (LayerFrames.size + 9 + 16 * 3))...].starts(with: stored))
        #expect(reference.count < (5 << 20) + (1 << 19))
        let frames = try runProgram(
            "/bin/sh", ["-c", "zstd -lv '\(scratch.path)/frames.zst' | grep '^# Zstandard Frames'"])
        #expect(frames.output.contains(": 5"), "\(frames.output)")
    }
}

@Suite("Parallel gzip layers")
struct ParallelGzipTests {
    @Test("a layer of several gzip members (3 MiB of data) reads back with gzip, GNU tar and bsdtar, and matches")
    func members() throws {
        let scratch = try Scratch()
        var bytes = [UInt8](repeating: 0, count: 3 << 20)
        for index in bytes.indices { bytes[index] = UInt8(truncatingIfNeeded: index &* 2_654_435_761 >> 13) }
        try FileManager.default.createDirectory(atPath: scratch.path + "/tree", withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: scratch.path + "/tree/big.bin"))
        try scratch.write("s.yaml", "name: big\nlayers:\n  - directory: tree\n    to: /opt/big\n")
        let spec = try ApplianceSpec.load(path: scratch.path + "/s.yaml")
        let result = try ApplianceBuilder.build(spec, output: scratch.path + "/out")
        let blob = scratch.path + "/out/blobs/sha256/" + result.layers[0].digest.dropFirst(7)
        #expect(try runProgram("/bin/gzip", ["-t", blob]).status == 0)
        let sum = try runProgram("/bin/sh", ["-c", "gzip -dc '\(blob)' | sha256sum | cut -d' ' -f1"])
        #expect("sha256:" + sum.output.trimmingCharacters(in: .whitespacesAndNewlines) == result.diffIDs[0])
        for tar in ["/bin/tar", "/usr/bin/bsdtar"] where FileManager.default.isExecutableFile(atPath: tar) {
            try? FileManager.default.removeItem(atPath: scratch.path + "/x")
            try FileManager.default.createDirectory(atPath: scratch.path + "/x", withIntermediateDirectories: true)
            let extract = try runProgram(tar, ["-xzf", blob, "-C", scratch.path + "/x"])
            #expect(extract.status == 0, "\(tar): \(extract.output)")
            #expect(FileManager.default.contents(atPath: scratch.path + "/x/opt/big/big.bin") == Data(bytes), "\(tar)")
        }
    }
}
