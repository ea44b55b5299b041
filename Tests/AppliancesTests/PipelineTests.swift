import Foundation
import TestBeds
import Testing

@testable import Appliances

/// A tar stream kept in memory: what `writeLayer` hashes, made on one thread for comparison.
private final class MemoryTar: TarOutput {
    var data = Data()

    func write(_ bytes: UnsafeRawBufferPointer) throws { data.append(contentsOf: bytes) }

    func read(from file: Int32) throws -> Int {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { Foundation.read(file, $0.baseAddress, $0.count) }
        data.append(contentsOf: buffer[0..<max(0, count)])
        return count
    }
}

@Suite("Layer pipeline")
struct PipelineTests {
    /// A tree of 11 MiB or so (more than two of zstd's 4 MiB jobs): empty and odd-sized files, pseudo-random bytes
    /// and text, and a path long enough for a PAX record.
    func tree(_ scratch: Scratch) throws -> [TarEntry] {
        var random = [UInt8](repeating: 0, count: (5 << 20) + 17)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for index in random.indices {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            random[index] = UInt8(truncatingIfNeeded: state >> 33)
        }
        try FileManager.default.createDirectory(atPath: scratch.path + "/tree/sub", withIntermediateDirectories: true)
        try Data(random).write(to: URL(fileURLWithPath: scratch.path + "/tree/random.bin"))
        try scratch.write("tree/text.txt", String(repeating: "trabecular bone, mean HU\n", count: 240_000))
        try scratch.write("tree/empty", "")
        try scratch.write("tree/sub/odd", String(repeating: "x", count: 513))
        try scratch.write("tree/sub/" + String(repeating: "n", count: 120), "long\n")
        let layer = ApplianceSpec.Layer(source: .directory(scratch.path + "/tree"), to: "/opt/data")
        return try ApplianceBuilder.entries(for: layer, in: scratch.path)
    }

    @Test(
        "a layer's bytes do not depend on the chunk size, the number of chunks or zstd's workers; the diff ID is the tar's"
    )
    func sameBytes() throws {
        let scratch = try Scratch()
        let entries = try tree(scratch)
        let reference = MemoryTar()
        let tar = TarWriter(mtime: 0, output: reference)
        for entry in entries { try tar.write(entry) }
        try tar.finish()
        let tarDigest = SHA256Stream.digest(reference.data)
        let blobs = scratch.url.appendingPathComponent("blobs")
        try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
        for compression in [ApplianceSpec.Compression.zstd, .gzip] {
            var layers: [Descriptor] = []
            for (chunkSize, chunks, workers) in [
                (LayerFrames.size, 8, 2), (LayerFrames.size, 1, 1), (1 << 20, 4, 2), (4099, 1, 1),
                (65_536, 2, 4), (3 << 20, 3, 3),
            ] {
                let (descriptor, diffID) = try ApplianceBuilder.writeLayer(
                    entries, mtime: 0, blobs: blobs, compression: compression, chunkSize: chunkSize, chunks: chunks,
                    workers: workers)
                #expect(diffID == tarDigest, "\(compression) \(chunkSize) × \(chunks), \(workers) workers")
                let written = try Data(contentsOf: blobs.appendingPathComponent(String(descriptor.digest.dropFirst(7))))
                #expect(SHA256Stream.digest(written) == descriptor.digest)
                #expect(Int64(written.count) == descriptor.size)
                layers.append(descriptor)
            }
            #expect(layers.allSatisfy { $0 == layers[0] }, "\(compression): \(layers.map(\.digest))")
        }
        // Nothing left behind but the two blobs.
        #expect(try FileManager.default.contentsOfDirectory(atPath: blobs.path).count == 2)
    }

    @Test("a file that cannot be read fails the layer, and its temporary blob is removed")
    func unreadable() throws {
        let scratch = try Scratch()
        var entries = try tree(scratch)
        entries.append(
            TarEntry(path: "opt/data/zz-gone", kind: .file(source: scratch.path + "/gone", size: 4), mode: 0o644))
        let blobs = scratch.url.appendingPathComponent("blobs")
        try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
        for compression in [ApplianceSpec.Compression.zstd, .gzip] {
            #expect(throws: (any Error).self) {
                try ApplianceBuilder.writeLayer(
                    entries, mtime: 0, blobs: blobs, compression: compression, chunkSize: 65_536, chunks: 2)
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: blobs.path).isEmpty)
    }
}
