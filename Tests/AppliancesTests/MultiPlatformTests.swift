import Foundation
import TestBeds
import Testing

@testable import Appliances

/// A platform other than this machine's.
let foreignPlatform = Platform.host.architecture == "arm64" ? Platform("linux/amd64")! : Platform("linux/arm64")!

/// index.json's entries as (tag, platform, digest).
func layoutEntries(_ layout: String) throws -> [(tag: String, platform: String, digest: String)] {
    let entries = try #require(OCILayout.entries(URL(fileURLWithPath: layout)))
    return entries.map {
        (
            OCILayout.tag(of: $0) ?? "", Platform(json: $0["platform"])?.description ?? "",
            $0["digest"] as? String ?? ""
        )
    }
}

/// The demo tree's spec (see makeTree) and the layout its builds go to.
func demoSpec(_ scratch: Scratch) throws -> (ApplianceSpec, String) {
    let spec = try ApplianceSpec.load(
        path: try makeTree(scratch, order: [0, 1, 2, 3], mtime: Date(), plainMode: 0o644))
    return (spec, scratch.path + "/out")
}

/// The layer digests `appliance build --format json` printed.
func layerDigests(_ json: String) throws -> [String] {
    let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
    return (object?["layers"] as? [[String: Any]])?.compactMap { $0["digest"] as? String } ?? []
}

/// `spec` built for `platform` into `layout` under `tag`.
func build(_ spec: ApplianceSpec, for platform: String, into layout: String, tag: String) throws -> BuildResult {
    var spec = spec
    spec.platform = try #require(Platform(platform))
    return try ApplianceBuilder.build(spec, output: layout, tag: tag)
}

@Suite("Multi-platform layouts: one tag, an image per platform")
struct MultiPlatformBuildTests {
    @Test("rebuilding one platform of a tag replaces only its entry; the tag's other platforms and other tags stay")
    func rebuildOnePlatform() throws {
        let scratch = try Scratch()
        var (spec, out) = try demoSpec(scratch)
        let amd = try build(spec, for: "linux/amd64", into: out, tag: "v1")
        let old = try build(spec, for: "linux/amd64", into: out, tag: "v0")
        let arm = try build(spec, for: "linux/arm64", into: out, tag: "v1")
        #expect(arm.layers == amd.layers, "directory and file layers do not depend on the platform")
        #expect(arm.manifest.digest != amd.manifest.digest)
        let index = try Data(contentsOf: URL(fileURLWithPath: out + "/index.json"))
        // The same image again: the same index, byte for byte.
        _ = try build(spec, for: "linux/arm64", into: out, tag: "v1")
        #expect(try Data(contentsOf: URL(fileURLWithPath: out + "/index.json")) == index)

        spec.env["REBUILT"] = "1"
        let rebuilt = try build(spec, for: "linux/amd64", into: out, tag: "v1")
        #expect(rebuilt.manifest.digest != amd.manifest.digest)
        let entries = try layoutEntries(out)
        #expect(entries.map(\.tag) == ["v0", "v1", "v1"])
        #expect(entries.map(\.platform) == ["linux/amd64", "linux/amd64", "linux/arm64"])
        #expect(entries.map(\.digest) == [old.manifest.digest, rebuilt.manifest.digest, arm.manifest.digest])
        // Each config says its platform; a variant goes into the config and the index.
        let v7 = try build(spec, for: "linux/arm/v7", into: out, tag: "v1")
        let config = try #require(OCILayout.json(OCILayout.blob(URL(fileURLWithPath: out), v7.config.digest)))
        #expect(config["architecture"] as? String == "arm" && config["variant"] as? String == "v7")
        #expect(
            try layoutEntries(out).map(\.platform) == ["linux/amd64", "linux/amd64", "linux/arm/v7", "linux/arm64"])
    }

    @Test("pip and debian layers are refused for another platform than this machine's, before anything is built")
    func packageLayersStayOnTheirPlatform() throws {
        let scratch = try Scratch()
        try scratch.write("requirements.txt", "six==1.16.0\n")
        for layer in ["  - debian: [python3-minimal]", "  - pip: requirements.txt\n    to: /usr/lib/python3"] {
            try scratch.write(
                "spec.yaml", "name: x\nplatform: \(foreignPlatform)\nlayers:\n\(layer)\n")
            let spec = try ApplianceSpec.load(path: scratch.path + "/spec.yaml")
            #expect(spec.platform == foreignPlatform)
            let error = #expect(throws: ApplianceBuilder.BuildError.self) {
                try ApplianceBuilder.build(spec, output: scratch.path + "/out")
            }
            #expect(error?.description.contains("cannot make an image for \(foreignPlatform)") == true)
            #expect(!FileManager.default.fileExists(atPath: scratch.path + "/out"), "nothing written")
        }
        try scratch.write("spec.yaml", "name: x\nplatform: linux/ARM64\n")
        #expect(throws: ApplianceSpec.SpecError.self) { try ApplianceSpec.load(path: scratch.path + "/spec.yaml") }
        #expect(Platform("linux/arm64")!.matches(Platform("linux/arm64/v8")!))
        #expect(!Platform("linux/arm/v6")!.matches(Platform("linux/arm/v7")!))
    }
}

@Suite(
    "Multi-platform images in a real registry", .serialized,
    .enabled(if: TestRegistry.available, "needs docker-registry (`make deps`)"))
struct MultiPlatformRegistryTests {
    @Test(
        "two platforms of a tag go up as an OCI index: skopeo reads it and takes arm64, a second push skips every blob, pull --platform takes arm64"
    )
    func pushIndex() async throws {
        let registry = try TestRegistry()
        let scratch = try Scratch()
        let (spec, out) = try demoSpec(scratch)
        // arm64 first: the index does not depend on the order the images were built in.
        let arm = try build(spec, for: "linux/arm64", into: out, tag: "v1")
        let amd = try build(spec, for: "linux/amd64", into: out, tag: "v1")
        let blobs = Set([amd.config.digest, arm.config.digest] + amd.layers.map(\.digest) + arm.layers.map(\.digest))
        #expect(blobs.count == 2 + amd.layers.count, "the layers are shared")

        let client = RegistryClient(insecure: true)
        let reference = try RegistryClient.Reference("\(registry.host)/study/multi:v1")
        let first = try await client.push(layout: out, tag: "v1", to: reference)
        #expect(first.uploaded.count == blobs.count && Set(first.uploaded) == blobs, "each shared blob sent once")
        #expect(first.images.map(\.digest) == [amd.manifest.digest, arm.manifest.digest])
        let expected = try ApplianceBuilder.imageIndex([(arm.manifest, arm.platform), (amd.manifest, amd.platform)])
        #expect(first.manifest == expected.descriptor.digest)

        let raw = try runProgramSplit(
            "/usr/bin/skopeo", ["inspect", "--raw", "--tls-verify=false", "docker://\(registry.host)/study/multi:v1"])
        #expect(raw.status == 0, "\(raw.stderr)")
        #expect(raw.stdout.trimmingCharacters(in: .newlines) == String(decoding: expected.data, as: UTF8.self))
        let index = try #require(try JSONSerialization.jsonObject(with: Data(raw.stdout.utf8)) as? [String: Any])
        #expect(index["mediaType"] as? String == "application/vnd.oci.image.index.v1+json")
        let manifests = index["manifests"] as? [[String: Any]] ?? []
        #expect(manifests.compactMap { Platform(json: $0["platform"])?.description } == ["linux/amd64", "linux/arm64"])
        #expect(manifests.compactMap { $0["digest"] as? String } == [amd.manifest.digest, arm.manifest.digest])

        let copy = try runProgram(
            "/usr/bin/skopeo",
            [
                "copy", "--src-tls-verify=false", "--override-os", "linux", "--override-arch", "arm64",
                "docker://\(registry.host)/study/multi:v1", "oci:\(scratch.path)/arm:v1",
            ])
        #expect(copy.status == 0, "\(copy.output)")
        let copied = try #require(try layoutEntries(scratch.path + "/arm").first)
        #expect(copied.digest == arm.manifest.digest)
        let manifest = try #require(
            OCILayout.json(OCILayout.blob(scratch.url.appendingPathComponent("arm"), copied.digest)))
        let configDigest = try #require((manifest["config"] as? [String: Any])?["digest"] as? String)
        let config = try #require(
            OCILayout.json(OCILayout.blob(scratch.url.appendingPathComponent("arm"), configDigest)))
        #expect(config["architecture"] as? String == "arm64")

        let second = try await client.push(layout: out, tag: "v1", to: reference)
        #expect(second.uploaded.isEmpty && second.mounted.isEmpty)
        #expect(second.skipped.count == blobs.count && Set(second.skipped) == blobs)
        #expect(second.manifest == first.manifest)

        // The pull library call, and deployctl's pull --platform, both take the arm64 image from the index.
        let pulled = try await client.pull(
            reference, into: scratch.path + "/pulled", tag: "v1", platform: Platform("linux/arm64")!)
        #expect(pulled == arm.manifest.digest)
        _ = try await client.pull(reference, into: scratch.path + "/pulled", tag: "v1")
        #expect(
            try layoutEntries(scratch.path + "/pulled").map(\.digest) == [amd.manifest.digest, arm.manifest.digest])
        if DeployctlBinary.built {
            let run = try DeployctlBinary.runSplit([
                "appliance", "pull", "\(registry.host)/study/multi:v1", "--output", scratch.path + "/cli",
                "--insecure", "--platform", "linux/arm64",
            ])
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.contains(arm.manifest.digest), "\(run.stdout)")
            #expect(try layoutEntries(scratch.path + "/cli").map(\.platform) == ["linux/arm64"])
            #expect(try layoutEntries(scratch.path + "/cli").map(\.digest) == [arm.manifest.digest])
        }
        // A platform the index lacks is an error that says which it has.
        await #expect(throws: RegistryClient.RegistryError.self) {
            _ = try await client.pull(
                reference, into: scratch.path + "/none", tag: "v1", platform: Platform("linux/s390x")!)
        }
    }

    @Test(
        "a base named docker://REGISTRY/REPO:TAG is pulled into the base cache and built on; a missing one is an error",
        .enabled(if: DeployctlBinary.built, "needs .build/debug/deployctl; run `swift build` first"))
    func registryBase() throws {
        let registry = try TestRegistry()
        let scratch = try Scratch()
        let specPath = try makeTree(scratch, order: [0, 1, 2, 3], mtime: Date(), plainMode: 0o644)
        let base = try DeployctlBinary.runSplit([
            "appliance", "build", specPath, "--output", scratch.path + "/base", "--tag", "v1", "--format", "json",
        ])
        #expect(base.status == 0, "\(base.stderr)")
        let baseLayers = try layerDigests(base.stdout)
        #expect(baseLayers.count == 2)
        let push = try DeployctlBinary.runSplit([
            "appliance", "push", scratch.path + "/base", "\(registry.host)/study/base:v1", "--tag", "v1", "--insecure",
        ])
        #expect(push.status == 0, "\(push.stderr)")
        try scratch.write("child/extra.txt", "extra\n")
        try scratch.write(
            "child/spec.yaml",
            "name: child\nbase: docker://\(registry.host)/study/base:v1\nlayers:\n  - file: extra.txt\n    to: /extra\n"
        )
        let child = try DeployctlBinary.runSplit([
            "appliance", "build", scratch.path + "/child/spec.yaml", "--output", scratch.path + "/child/out",
            "--insecure", "--base-cache", scratch.path + "/cache", "--format", "json", "--progress", "none",
        ])
        #expect(child.status == 0, "\(child.stderr)")
        let childLayers = try layerDigests(child.stdout)
        #expect(childLayers.count == 3 && Array(childLayers.prefix(2)) == baseLayers, "\(child.stdout)")
        // The cache is an OCI layout holding the base; skopeo reads it.
        let entries = try layoutEntries(scratch.path + "/cache")
        #expect(entries.count == 1 && entries[0].tag.hasPrefix("127.0.0.1_"), "\(entries)")
        #expect(
            try runProgram("/usr/bin/skopeo", ["inspect", "oci:\(scratch.path)/cache:\(entries[0].tag)"]).status == 0)

        try scratch.write("child/missing.yaml", "name: m\nbase: docker://\(registry.host)/study/none:v1\n")
        let missing = try DeployctlBinary.runSplit([
            "appliance", "build", scratch.path + "/child/missing.yaml", "--output", scratch.path + "/child/m",
            "--insecure", "--base-cache", scratch.path + "/cache",
        ])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("base docker://\(registry.host)/study/none:v1: "), "\(missing.stderr)")
        #expect(missing.stderr.contains("HTTP 404"), "\(missing.stderr)")
    }

    @Test(
        "build and push show progress on stderr (bytes, a rate, blob N of M) while stdout stays JSON; --progress none is silent",
        .enabled(if: DeployctlBinary.built, "needs .build/debug/deployctl; run `swift build` first"))
    func progress() throws {
        let registry = try TestRegistry()
        let scratch = try Scratch()
        let random = try #require(FileHandle(forReadingAtPath: "/dev/urandom")).readData(ofLength: 6 << 20)
        try FileManager.default.createDirectory(atPath: scratch.path + "/data", withIntermediateDirectories: true)
        try random.write(to: scratch.url.appendingPathComponent("data/random.bin"))
        try scratch.write("data/small.txt", "small\n")
        try scratch.write(
            "spec.yaml",
            "name: big\nlayers:\n  - directory: data\n    to: /data\n  - file: data/small.txt\n    to: /s\n")
        let build = try DeployctlBinary.runSplit([
            "appliance", "build", scratch.path + "/spec.yaml", "--output", scratch.path + "/out", "--tag", "v1",
            "--format", "json",
        ])
        #expect(build.status == 0, "\(build.stderr)")
        let built = try JSONSerialization.jsonObject(with: Data(build.stdout.utf8)) as? [String: Any]
        #expect(built?["platform"] as? String == "linux/amd64")
        let layerLines = build.stderr.split(separator: "\n").filter { $0.hasPrefix("layer ") }
        // The big layer's last line: all 6 MiB read, a rate, the digest.
        #expect(
            layerLines.contains {
                $0.hasPrefix("layer 1/2 (directory data → /data): 6.0 MiB / 6.0 MiB read, ")
                    && $0.contains("/s → sha256:")
            }, "\(build.stderr)")
        #expect(layerLines.contains { $0.hasPrefix("layer 2/2 (file data/small.txt → /s): 6 B / 6 B read, ") })
        #expect(!build.stderr.contains("\u{1B}"), "no terminal codes when stderr is not a terminal")

        let push = try DeployctlBinary.runSplit([
            "appliance", "push", scratch.path + "/out", "\(registry.host)/study/big:v1", "--tag", "v1", "--insecure",
            "--format", "json",
        ])
        #expect(push.status == 0, "\(push.stderr)")
        let pushed = try JSONSerialization.jsonObject(with: Data(push.stdout.utf8)) as? [String: Any]
        #expect((pushed?["uploaded"] as? [String])?.count == 3)
        let blobLines = push.stderr.split(separator: "\n").filter { $0.hasPrefix("blob ") }
        // One line at the end of each blob (a slow machine may add one at a blob's start, 2 s after the last).
        let ended = blobLines.filter { $0.contains(" uploaded, ") }
        #expect(ended.count == 3, "\(push.stderr)")
        #expect(blobLines.allSatisfy { $0.hasSuffix("/s") }, "\(push.stderr)")
        #expect(ended.contains { $0.contains("6.0 MiB / 6.0 MiB uploaded") }, "\(push.stderr)")
        #expect(Set(ended.map { $0.prefix(9) }) == ["blob 1/3 ", "blob 2/3 ", "blob 3/3 "])

        let quiet = try DeployctlBinary.runSplit([
            "appliance", "push", scratch.path + "/out", "\(registry.host)/study/big:v1", "--tag", "v1", "--insecure",
            "--format", "json", "--progress", "none",
        ])
        #expect(quiet.status == 0 && quiet.stderr.isEmpty, "\(quiet.stderr)")
        let again = try JSONSerialization.jsonObject(with: Data(quiet.stdout.utf8)) as? [String: Any]
        #expect((again?["skipped"] as? [String])?.count == 3)
    }
}
