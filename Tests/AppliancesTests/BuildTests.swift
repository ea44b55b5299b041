import Foundation
import TestBeds
import Testing

@testable import Appliances

/// A scratch directory for one test, removed after it.
final class Scratch {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("deployctl-appliance-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    var path: String { url.path }

    @discardableResult
    func write(_ relative: String, _ text: String, mode: Int = 0o644) throws -> String {
        let file = url.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: file, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: file.path)
        return file.path
    }
}

/// Runs a program to the end; its exit status and output.
func run(_ program: String, _ arguments: [String]) throws -> (Int32, String) {
    let result = try runProgram(program, arguments)
    return (result.status, result.output)
}

let longDirectory = String(repeating: "d", count: 60)
let longFile = String(repeating: "f", count: 70) + ".txt"

/// The workload tree the tests build from, made in `order` (the order a directory lists its entries may follow
/// creation) with the given mtime and non-executable mode, neither of which may reach the image.
func makeTree(_ scratch: Scratch, order: [Int], mtime: Date, plainMode: Int) throws -> String {
    let files: [(String, String, Bool)] = [
        ("app/a.txt", "hello\n", false), ("app/run.sh", "#!/bin/sh\necho run\n", true),
        ("app/sub/b.txt", "x\n", false), ("app/\(longDirectory)/\(longFile)", "deep\n", false),
    ]
    for index in order {
        let (path, text, executable) = files[index]
        let full = try scratch.write(path, text, mode: executable ? 0o755 : plainMode)
        try FileManager.default.setAttributes([.modificationDate: mtime], ofItemAtPath: full)
    }
    try? FileManager.default.removeItem(atPath: scratch.path + "/app/link")
    try FileManager.default.createSymbolicLink(atPath: scratch.path + "/app/link", withDestinationPath: "a.txt")
    try scratch.write(
        "spec.yaml",
        """
        name: demo
        layers:
          - directory: app
            to: /opt/demo
          - file: app/run.sh
            to: /usr/local/bin/demo
            mode: "0750"
        env: { PYTHONUNBUFFERED: "1", LANG: C.UTF-8 }
        entrypoint: [ /usr/local/bin/demo ]
        cmd: [ /data, /results ]
        workdir: /opt/demo
        labels: { org.opencontainers.image.source: https://example.org/study }
        exposed_ports: [ "8080" ]
        resources: { cpus: 2, memory_mb: 4096, gpus: 1 }
        created: 2026-01-01T00:00:00Z
        """)
    return scratch.path + "/spec.yaml"
}

/// The demo tree's spec, built into `scratch/DIRECTORY` tagged `tag`.
@discardableResult
func buildDemo(_ scratch: Scratch, into directory: String, tag: String) throws -> ApplianceSpec {
    let spec = try ApplianceSpec.load(
        path: try makeTree(scratch, order: [0, 1, 2, 3], mtime: Date(), plainMode: 0o644))
    _ = try ApplianceBuilder.build(spec, output: scratch.path + "/" + directory, tag: tag)
    return spec
}

@Suite("Building appliances into OCI image layouts")
struct BuildTests {
    @Test("the same inputs give the same digests, whatever the mtimes, the plain modes and the creation order")
    func reproducible() throws {
        let first = try Scratch()
        let second = try Scratch()
        let specA = try makeTree(
            first, order: [0, 1, 2, 3], mtime: Date(timeIntervalSince1970: 1_000), plainMode: 0o644)
        let specB = try makeTree(second, order: [3, 2, 1, 0], mtime: Date(), plainMode: 0o600)
        let a = try ApplianceBuilder.build(try ApplianceSpec.load(path: specA), output: first.path + "/out")
        let b = try ApplianceBuilder.build(try ApplianceSpec.load(path: specB), output: second.path + "/out")
        #expect(a == b)
        #expect(a.layers.count == 2)
        // A build "on another day" (SOURCE_DATE_EPOCH instead of the spec's time) differs only by that time.
        try first.write("app/a.txt", "hello!\n")
        let changed = try ApplianceBuilder.build(try ApplianceSpec.load(path: specA), output: first.path + "/changed")
        #expect(changed.layers[0].digest != a.layers[0].digest, "a changed byte changes the layer")
        #expect(changed.layers[1] == a.layers[1], "the other layer is untouched")
    }

    @Test("created comes from the spec, else SOURCE_DATE_EPOCH, else 1970")
    func createdTime() throws {
        let spec = { (text: String, environment: [String: String]) in
            try ApplianceSpec.parse(text, file: "s.yaml", directory: "/", environment: environment).created
        }
        #expect(try spec("name: x\ncreated: 2026-01-01T00:00:00Z", ["SOURCE_DATE_EPOCH": "5"]) == 1_767_225_600)
        #expect(try spec("name: x", ["SOURCE_DATE_EPOCH": "1700000000"]) == 1_700_000_000)
        #expect(try spec("name: x", [:]) == 0)
    }

    @Test(
        "layers are tar that GNU tar and bsdtar read: sorted, 0:0, one mtime, modes by the executable bit, long names")
    func tarReadBack() throws {
        let scratch = try Scratch()
        let spec = try makeTree(scratch, order: [0, 1, 2, 3], mtime: Date(), plainMode: 0o600)
        let result = try ApplianceBuilder.build(try ApplianceSpec.load(path: spec), output: scratch.path + "/out")
        let layer = scratch.path + "/out/blobs/sha256/" + result.layers[0].digest.dropFirst(7)
        let expected = [
            "drwxr-xr-x 0/0 0 2026-01-01 00:00 opt/",
            "drwxr-xr-x 0/0 0 2026-01-01 00:00 opt/demo/",
            "-rw-r--r-- 0/0 6 2026-01-01 00:00 opt/demo/a.txt",
            "drwxr-xr-x 0/0 0 2026-01-01 00:00 opt/demo/\(longDirectory)/",
            "-rw-r--r-- 0/0 5 2026-01-01 00:00 opt/demo/\(longDirectory)/\(longFile)",
            "lrwxrwxrwx 0/0 0 2026-01-01 00:00 opt/demo/link -> a.txt",
            "-rwxr-xr-x 0/0 19 2026-01-01 00:00 opt/demo/run.sh",
            "drwxr-xr-x 0/0 0 2026-01-01 00:00 opt/demo/sub/",
            "-rw-r--r-- 0/0 2 2026-01-01 00:00 opt/demo/sub/b.txt",
        ]
        let (status, listing) = try run("/usr/bin/tar", ["--utc", "-tvzf", layer])
        #expect(status == 0, "\(listing)")
        let normalised = listing.split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
        #expect(normalised == expected)
        // bsdtar (libarchive) reads the same entries, the long path from its PAX record included.
        let (bsdStatus, bsdListing) = try run("/usr/bin/bsdtar", ["-tzf", layer])
        #expect(bsdStatus == 0, "\(bsdListing)")
        #expect(
            bsdListing.split(separator: "\n").map(String.init) == expected.map { String($0.split(separator: " ")[5]) })
        let target = scratch.path + "/x"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        #expect(try run("/usr/bin/tar", ["-xzf", layer, "-C", target]).0 == 0)
        #expect(
            try String(contentsOfFile: "\(target)/opt/demo/\(longDirectory)/\(longFile)", encoding: .utf8) == "deep\n")
    }

    @Test("skopeo reads the layout and umoci unpacks it into the tree the spec describes")
    func ociTools() throws {
        let scratch = try Scratch()
        let spec = try makeTree(scratch, order: [0, 1, 2, 3], mtime: Date(), plainMode: 0o644)
        let result = try ApplianceBuilder.build(
            try ApplianceSpec.load(path: spec), output: scratch.path + "/out", tag: "v1")
        let (status, inspect) = try run("/usr/bin/skopeo", ["inspect", "oci:\(scratch.path)/out:v1"])
        #expect(status == 0, "\(inspect)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(inspect.utf8)) as? [String: Any])
        #expect(document["Digest"] as? String == result.manifest.digest)
        #expect(document["Layers"] as? [String] == result.layers.map(\.digest))
        #expect(document["Created"] as? String == "2026-01-01T00:00:00Z")
        let labels = document["Labels"] as? [String: String] ?? [:]
        #expect(labels["org.deployctl.resources.gpus"] == "1")
        #expect(labels["org.opencontainers.image.source"] == "https://example.org/study")

        let (unpackStatus, unpack) = try run(
            "/usr/bin/umoci", ["unpack", "--rootless", "--image", "\(scratch.path)/out:v1", "\(scratch.path)/bundle"])
        #expect(unpackStatus == 0, "\(unpack)")
        let rootfs = scratch.path + "/bundle/rootfs"
        #expect(try String(contentsOfFile: "\(rootfs)/opt/demo/a.txt", encoding: .utf8) == "hello\n")
        #expect(try String(contentsOfFile: "\(rootfs)/usr/local/bin/demo", encoding: .utf8) == "#!/bin/sh\necho run\n")
        let mode = try FileManager.default.attributesOfItem(atPath: "\(rootfs)/usr/local/bin/demo")[.posixPermissions]
        #expect((mode as? NSNumber)?.intValue == 0o750)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "\(rootfs)/opt/demo/link") == "a.txt")
        let config = try String(contentsOfFile: scratch.path + "/bundle/config.json", encoding: .utf8)
        #expect(config.contains("\"/usr/local/bin/demo\"") && config.contains("PYTHONUNBUFFERED=1"))
        #expect(config.contains("\"cwd\": \"/opt/demo\"") || config.contains("\"cwd\":\"/opt/demo\""), "\(config)")
    }

    @Test("a bad spec is refused with what is wrong and where")
    func specErrors() {
        func error(_ text: String) -> String {
            do {
                _ = try ApplianceSpec.parse(text, file: "s.yaml", directory: "/")
                return "no error"
            } catch {
                return error.description
            }
        }
        #expect(error("layers: []") == "s.yaml: name: required, a string")
        let baseError =
            "s.yaml: base: `scratch`, `oci:DIR[:TAG]` (an OCI image layout) or `docker://REGISTRY/REPOSITORY[:TAG]` "
            + "(an image in a registry)"
        #expect(error("name: x\nbase: debian:12") == baseError)
        #expect(error("name: x\nbase: docker://Not A Reference") == baseError)
        #expect(error("name: x\nlayer: []").hasPrefix("s.yaml: layer: unknown key; the keys are base, cmd,"))
        #expect(
            error("name: x\nlayers:\n  - directory: a\n    to: relative")
                == "s.yaml: layers[0]: a mapping with `directory`, `file`, `pip` or `debian` and an absolute `to`")
        #expect(
            error("name: x\nlayers:\n  - file: a\n    to: /a\n    mode: \"0999\"")
                == "s.yaml: layers[0].mode: an octal mode such as \"0755\"")
        #expect(
            error("name: x\nexposed_ports: [ 80/http ]")
                == "s.yaml: exposed_ports: 80/http is not PORT or PORT/tcp|udp|sctp")
        #expect(
            error("name: x\ncreated: yesterday") == "s.yaml: created: an RFC 3339 time such as 2026-01-01T00:00:00Z")
        #expect(error("- a\n- b") == "s.yaml: the spec is a mapping (name, base, layers, …)")
        #expect(
            error("name: x\nio: { inputs: { data: NIfTI } }")
                == "s.yaml: io.inputs: data is not an absolute path of a directory")
        #expect(
            error("name: x\nio: { inputs: { /d: a }, outputs: { /d: b } }")
                == "s.yaml: io: /d is both an input and an output")
        #expect(error("name: x\nio: { input: { /d: a } }") == "s.yaml: io: a mapping with `inputs` and `outputs`")
    }

    @Test("the I/O contract, the spec file's digest and its git commit label the image; io paths are its volumes")
    func contractAndProvenance() throws {
        let scratch = try Scratch()
        let path = try makeTree(scratch, order: [0, 1, 2, 3], mtime: Date(), plainMode: 0o644)
        let text =
            try String(contentsOfFile: path, encoding: .utf8)
            + "\nio:\n  inputs: { /data: NIfTI volumes }\n  outputs: { /results: summary.json }\n"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        func labels(_ output: String) throws -> ([String: String], [String: Any]) {
            let result = try ApplianceBuilder.build(try ApplianceSpec.load(path: path), output: output, tag: "v1")
            let config = try JSONSerialization.jsonObject(
                with: Data(
                    contentsOf: URL(fileURLWithPath: "\(output)/blobs/sha256/\(result.config.digest.dropFirst(7))")))
            let runtime = (config as? [String: Any])?["config"] as? [String: Any] ?? [:]
            return (runtime["Labels"] as? [String: String] ?? [:], runtime["Volumes"] as? [String: Any] ?? [:])
        }
        let (plain, volumes) = try labels(scratch.path + "/plain")
        #expect(plain["org.deployctl.io.inputs"] == #"{"/data":"NIfTI volumes"}"#)
        #expect(plain["org.deployctl.io.outputs"] == #"{"/results":"summary.json"}"#)
        #expect(Set(volumes.keys) == ["/data", "/results"])
        let sum = try runProgram("/usr/bin/sha256sum", [path]).output.split(separator: " ").first.map(String.init)
        #expect(plain["org.deployctl.spec.digest"] == "sha256:" + (sum ?? "?"))
        #expect(plain["org.opencontainers.image.revision"] == nil, "not in a git work tree")

        let git = ["-C", scratch.path, "-c", "user.name=t", "-c", "user.email=t@example.org"]
        #expect(try runProgram("/usr/bin/git", ["-C", scratch.path, "init", "-q"]).status == 0)
        #expect(try runProgram("/usr/bin/git", git + ["add", "app", "spec.yaml"]).status == 0)
        #expect(try runProgram("/usr/bin/git", git + ["commit", "-q", "-m", "spec"]).status == 0)
        let head = try runProgram("/usr/bin/git", ["-C", scratch.path, "rev-parse", "HEAD"]).output
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(head.count == 40)
        #expect(try labels(scratch.path + "/committed").0["org.opencontainers.image.revision"] == head)
        try scratch.write("app/a.txt", "changed\n")
        #expect(try labels(scratch.path + "/dirty").0["org.opencontainers.image.revision"] == head + "-dirty")
    }

    @Test("a missing source is an error and leaves no partial blob")
    func missingSource() throws {
        let scratch = try Scratch()
        try scratch.write("spec.yaml", "name: x\nlayers:\n  - directory: nowhere\n    to: /opt/x\n")
        #expect(throws: ApplianceBuilder.BuildError.self) {
            try ApplianceBuilder.build(
                try ApplianceSpec.load(path: scratch.path + "/spec.yaml"), output: scratch.path + "/out")
        }
        let blobs = (try? FileManager.default.contentsOfDirectory(atPath: scratch.path + "/out/blobs/sha256")) ?? []
        #expect(blobs.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: scratch.path + "/out/index.json"))
    }

    @Test("PAX records count their own length")
    func paxRecords() {
        for value in ["a", String(repeating: "x", count: 90), String(repeating: "y", count: 995)] {
            let record = String(decoding: TarWriter.paxRecord("path", value), as: UTF8.self)
            let length = Int(record.prefix { $0 != " " })
            #expect(length == record.utf8.count, "\(record)")
        }
    }
}
