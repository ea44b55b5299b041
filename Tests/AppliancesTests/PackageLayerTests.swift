import Foundation
import TestBeds
import Testing

@testable import Appliances

@Suite(
    "Package layers: Debian packages and pip requirement sets", .serialized,
    .enabled(
        if: geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/apt-get")
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/umoci"),
        "needs root (chroot), apt and umoci (`make deps`)"))
struct PackageLayerTests {
    @Test("an image from scratch with Debian's python3 and a pinned pip package builds twice the same, and runs")
    func pythonImage() throws {
        let scratch = try Scratch()
        try scratch.write("requirements.txt", "six==1.16.0\n")
        try scratch.write(
            "spec.yaml",
            """
            name: python
            base: scratch
            layers:
              - debian: [python3-minimal]
              - pip: requirements.txt
                to: /usr/lib/python3/dist-packages
            entrypoint: [/usr/bin/python3]
            created: 2026-01-01T00:00:00Z
            """)
        let spec = try ApplianceSpec.load(path: scratch.path + "/spec.yaml")
        let first = try ApplianceBuilder.build(spec, output: scratch.path + "/a", tag: "v1")
        let second = try ApplianceBuilder.build(spec, output: scratch.path + "/b", tag: "v1")
        #expect(first.manifest.digest == second.manifest.digest)
        #expect(first.layers.count == 2)
        #expect(!FileManager.default.fileExists(atPath: scratch.path + "/a/.work"))
        // Unpacked by umoci, the root runs: Debian's python3 imports the pip layer's package.
        let unpack = try runProgram(
            "/usr/bin/umoci", ["unpack", "--image", scratch.path + "/a:v1", scratch.path + "/bundle"])
        #expect(unpack.status == 0, "\(unpack.output)")
        let rootfs = scratch.path + "/bundle/rootfs"
        let python = try runProgram(
            "/usr/sbin/chroot", [rootfs, "/usr/bin/python3", "-c", "import six, sys; print(six.__version__)"])
        #expect(python.status == 0, "\(python.output)")
        #expect(python.output.trimmingCharacters(in: .whitespacesAndNewlines) == "1.16.0")
        // No byte-code with build times, and console scripts (if any) name the image's interpreter.
        let walker = FileManager.default.enumerator(atPath: rootfs + "/usr/lib/python3/dist-packages")
        while let relative = walker?.nextObject() as? String {
            #expect(!relative.hasSuffix(".pyc"), "\(relative)")
        }
    }

    @Test("a bad package layer is refused with the spec key, and an unknown package names apt's complaint")
    func badLayers() throws {
        let scratch = try Scratch()
        try scratch.write("spec.yaml", "name: x\nlayers:\n  - debian: []\n")
        #expect(throws: ApplianceSpec.SpecError.self) { try ApplianceSpec.load(path: scratch.path + "/spec.yaml") }
        try scratch.write("spec.yaml", "name: x\nlayers:\n  - debian: [no-such-package-deployctl]\n")
        let spec = try ApplianceSpec.load(path: scratch.path + "/spec.yaml")
        let error = #expect(throws: ApplianceBuilder.BuildError.self) {
            try ApplianceBuilder.build(spec, output: scratch.path + "/out")
        }
        #expect(error?.description.contains("no-such-package-deployctl") == true, "\(String(describing: error))")
    }
}
