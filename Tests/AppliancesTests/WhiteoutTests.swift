import Foundation
import TestBeds
import Testing

@testable import Appliances

@Suite("Whiteouts: an image that drops files of its base")
struct WhiteoutTests {
    @Test("remove: writes .wh. entries; umoci's unpack of the derived image lacks those files and keeps the rest")
    func removeFromBase() throws {
        let scratch = try Scratch()
        try buildDemo(scratch, into: "base", tag: "v1")
        try scratch.write(
            "derived.yaml",
            """
            name: derived
            base: oci:base:v1
            layers:
              - remove: [/opt/demo/a.txt, /opt/demo/sub]
            created: 2026-01-01T00:00:00Z
            """)
        let derived = try ApplianceBuilder.build(
            try ApplianceSpec.load(path: scratch.path + "/derived.yaml"), output: scratch.path + "/derived", tag: "v2")
        let blob = scratch.path + "/derived/blobs/sha256/" + derived.layers.last!.digest.dropFirst(7)
        let listing = try runProgram("/bin/tar", ["-tzf", blob])
        #expect(
            listing.output.split(separator: "\n").map(String.init) == [
                "opt/", "opt/demo/", "opt/demo/.wh.a.txt", "opt/demo/.wh.sub",
            ])
        let unpack = try runProgram(
            "/usr/bin/umoci",
            ["unpack", "--rootless", "--image", "\(scratch.path)/derived:v2", "\(scratch.path)/bundle"])
        #expect(unpack.status == 0, "\(unpack.output)")
        let root = scratch.path + "/bundle/rootfs/opt/demo"
        #expect(!FileManager.default.fileExists(atPath: root + "/a.txt"))
        #expect(!FileManager.default.fileExists(atPath: root + "/sub"))
        #expect(FileManager.default.fileExists(atPath: root + "/run.sh"), "the rest of the base stays")
        #expect(throws: ApplianceSpec.SpecError.self) {
            try ApplianceSpec.parse("name: x\nlayers:\n  - remove: [relative]\n", file: "s.yaml", directory: ".")
        }
    }
}
