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
