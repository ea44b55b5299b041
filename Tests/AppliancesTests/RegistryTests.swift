import Foundation
import TestBeds
import Testing

@testable import Appliances

/// A real CNCF registry (Debian's docker-registry) on loopback for one test, with its storage in a scratch
/// directory; stopped when released.
final class TestRegistry {
    let scratch: Scratch
    let port: Int
    let process = Process()

    static var available: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/docker-registry") }

    /// The user the registry takes with `basicAuth`, and its password (a test credential, bcrypt-hashed below).
    static let user = "tester"
    static let password = "test-password"

    /// `token`: the registry sends clients to this token realm and trusts tokens signed by this certificate.
    init(basicAuth: Bool = false, token: (realm: String, certificate: String)? = nil) throws {
        scratch = try Scratch()
        port = Int.random(in: 20_000..<40_000)
        try scratch.write("htpasswd", "\(Self.user):$2b$05$ABCrLSzY7JXDX.P.p/PKueAaTjt/2WNkrz3trYwvuoYqfXNUuZkKm\n")
        let auth =
            basicAuth
            ? "auth:\n  htpasswd:\n    realm: test-realm\n    path: \(scratch.path)/htpasswd\n"
            : token.map {
                "auth:\n  token:\n    realm: \($0.realm)\n    service: test-registry\n    issuer: deployctl-test\n"
                    + "    rootcertbundle: \($0.certificate)\n"
            } ?? ""
        let config = try scratch.write(
            "config.yml",
            """
            version: 0.1
            log: { level: error }
            storage:
              filesystem: { rootdirectory: \(scratch.path)/data }
            http:
              addr: 127.0.0.1:\(port)
            \(auth)
            """)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/docker-registry")
        process.arguments = ["serve", config]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        for _ in 0..<100 {
            if (try? runProgram("/usr/bin/bash", ["-c", "exec 3<>/dev/tcp/127.0.0.1/\(port)"]).status) == 0 { return }
            usleep(50_000)
        }
        throw ApplianceBuilder.BuildError(description: "the registry did not listen on \(port)")
    }

    deinit {
        process.terminate()
        process.waitUntilExit()
    }

    var host: String { "127.0.0.1:\(port)" }
}

@Suite(
    "Pushing appliances to a real registry", .serialized,
    .enabled(if: TestRegistry.available, "needs docker-registry (`make deps`)"))
struct RegistryTests {
    /// The demo tree built into an OCI layout tagged v1.
    func built() throws -> (Scratch, BuildResult) {
        let scratch = try Scratch()
        let spec = try makeTree(scratch, order: [0, 1, 2, 3], mtime: Date(), plainMode: 0o644)
        let result = try ApplianceBuilder.build(
            try ApplianceSpec.load(path: spec), output: scratch.path + "/out", tag: "v1")
        return (scratch, result)
    }

    @Test(
        "push uploads every blob, a second push skips them all; skopeo pulls back the same image and umoci unpacks it")
    func pushTwiceAndPullBack() async throws {
        let registry = try TestRegistry()
        let (scratch, result) = try built()
        let client = RegistryClient(insecure: true)
        let reference = try RegistryClient.Reference("\(registry.host)/study/demo:v1")
        let first = try await client.push(layout: scratch.path + "/out", tag: "v1", to: reference)
        #expect(Set(first.uploaded) == Set([result.config.digest] + result.layers.map(\.digest)))
        #expect(first.skipped.isEmpty)
        #expect(first.manifest == result.manifest.digest)
        let second = try await client.push(layout: scratch.path + "/out", tag: "v1", to: reference)
        #expect(second.uploaded.isEmpty)
        #expect(second.skipped.count == 3)

        let manifest = try await client.manifest(reference)
        #expect(SHA256Stream.digest(manifest) == result.manifest.digest)
        let copy = try runProgram(
            "/usr/bin/skopeo",
            [
                "copy", "--src-tls-verify=false", "docker://\(registry.host)/study/demo:v1",
                "oci:\(scratch.path)/pulled:v1",
            ])
        #expect(copy.status == 0, "\(copy.output)")
        let inspect = try runProgram("/usr/bin/skopeo", ["inspect", "oci:\(scratch.path)/pulled:v1"])
        #expect(inspect.output.contains("\"Digest\": \"\(result.manifest.digest)\""), "\(inspect.output)")
        let unpack = try runProgram(
            "/usr/bin/umoci",
            ["unpack", "--rootless", "--image", "\(scratch.path)/pulled:v1", "\(scratch.path)/bundle"])
        #expect(unpack.status == 0, "\(unpack.output)")
        #expect(
            try String(contentsOfFile: "\(scratch.path)/bundle/rootfs/opt/demo/sub/b.txt", encoding: .utf8) == "x\n")
    }

    @Test("cross-repository mount: a second repository gets every blob linked from the first, none uploaded")
    func mount() async throws {
        let registry = try TestRegistry()
        let (scratch, result) = try built()
        let client = RegistryClient(insecure: true)
        _ = try await client.push(
            layout: scratch.path + "/out", tag: "v1", to: try RegistryClient.Reference("\(registry.host)/study/a:v1"))
        let report = try await client.push(
            layout: scratch.path + "/out", tag: "v1", to: try RegistryClient.Reference("\(registry.host)/study/b:v1"),
            mountFrom: ["study/nowhere", "study/a"])
        #expect(report.uploaded.isEmpty)
        #expect(Set(report.mounted) == Set([result.config.digest] + result.layers.map(\.digest)))
        let copy = try runProgram(
            "/usr/bin/skopeo",
            ["copy", "--src-tls-verify=false", "docker://\(registry.host)/study/b:v1", "oci:\(scratch.path)/b:v1"])
        #expect(copy.status == 0, "\(copy.output)")
    }

    @Test("pull brings an image into a layout, and a spec builds on it as its base: its layers, then the spec's")
    func pullAndBuildOnBase() async throws {
        let registry = try TestRegistry()
        let (scratch, result) = try built()
        let client = RegistryClient(insecure: true)
        let reference = try RegistryClient.Reference("\(registry.host)/study/base:v1")
        _ = try await client.push(layout: scratch.path + "/out", tag: "v1", to: reference)
        let digest = try await client.pull(reference, into: scratch.path + "/pulled", tag: "base")
        #expect(digest == result.manifest.digest)
        #expect(try await client.tags(reference) == ["v1"])
        try scratch.write("extra/tool.sh", "#!/bin/sh\necho tool\n", mode: 0o755)
        try scratch.write(
            "derived.yaml",
            """
            name: derived
            base: oci:pulled:base
            layers:
              - directory: extra
                to: /opt/extra
            env: { EXTRA: "1" }
            created: 2026-01-01T00:00:00Z
            """)
        let derived = try ApplianceBuilder.build(
            try ApplianceSpec.load(path: scratch.path + "/derived.yaml"), output: scratch.path + "/derived", tag: "v2")
        #expect(derived.layers.count == result.layers.count + 1)
        #expect(Array(derived.layers.prefix(result.layers.count)) == result.layers)
        #expect(Array(derived.diffIDs.prefix(result.diffIDs.count)) == result.diffIDs)
        let unpack = try runProgram(
            "/usr/bin/umoci",
            ["unpack", "--rootless", "--image", "\(scratch.path)/derived:v2", "\(scratch.path)/bundle"])
        #expect(unpack.status == 0, "\(unpack.output)")
        let rootfs = scratch.path + "/bundle/rootfs"
        #expect(FileManager.default.fileExists(atPath: rootfs + "/opt/demo/sub/b.txt"), "the base's files")
        #expect(FileManager.default.fileExists(atPath: rootfs + "/opt/extra/tool.sh"), "the spec's files")
        let config = try String(contentsOfFile: scratch.path + "/bundle/config.json", encoding: .utf8)
        #expect(config.contains("EXTRA=1"))
        // A base whose blob was tampered with is refused.
        let blob = scratch.path + "/pulled/blobs/sha256/" + result.layers[0].digest.dropFirst(7)
        try Data("tampered".utf8).write(to: URL(fileURLWithPath: blob))
        #expect(throws: ApplianceBuilder.BuildError.self) {
            try ApplianceBuilder.build(
                try ApplianceSpec.load(path: scratch.path + "/derived.yaml"), output: scratch.path + "/again")
        }
    }

    @Test("chunked uploads (PATCH ranges, then PUT with the digest) give the same image")
    func chunked() async throws {
        let registry = try TestRegistry()
        let (scratch, result) = try built()
        let client = RegistryClient(insecure: true)
        client.monolithic = false
        client.chunkSize = 100  // several chunks per layer
        let reference = try RegistryClient.Reference("\(registry.host)/study/chunked:v1")
        let report = try await client.push(layout: scratch.path + "/out", tag: "v1", to: reference)
        #expect(report.uploaded.count == 3)
        let inspect = try runProgram(
            "/usr/bin/skopeo", ["inspect", "--tls-verify=false", "docker://\(registry.host)/study/chunked:v1"])
        #expect(inspect.status == 0, "\(inspect.output)")
        #expect(inspect.output.contains("\"Digest\": \"\(result.manifest.digest)\""), "\(inspect.output)")
    }

    @Test("basic authentication: without credentials a clear refusal, with wrong ones too, with the right ones a push")
    func basicAuthentication() async throws {
        let registry = try TestRegistry(basicAuth: true)
        let (scratch, result) = try built()
        let reference = try RegistryClient.Reference("\(registry.host)/study/demo:v1")
        for (credentials, message) in [
            (nil, "asks for credentials (give --user and --password-file)"),
            ((TestRegistry.user, "wrong"), "asks for credentials and refused the ones given"),
        ] as [((user: String, password: String)?, String)] {
            do {
                _ = try await RegistryClient(insecure: true, credentials: credentials).push(
                    layout: scratch.path + "/out", tag: "v1", to: reference)
                Issue.record("pushed without the right credentials")
            } catch let error as RegistryClient.RegistryError {
                #expect(error.description.hasSuffix(message), "\(error)")
                #expect(!error.description.contains("wrong"), "a password in an error")
            }
        }
        let client = RegistryClient(insecure: true, credentials: (TestRegistry.user, TestRegistry.password))
        let report = try await client.push(layout: scratch.path + "/out", tag: "v1", to: reference)
        #expect(report.manifest == result.manifest.digest && report.uploaded.count == 3)
        let inspect = try runProgram(
            "/usr/bin/skopeo",
            [
                "inspect", "--tls-verify=false", "--creds", "\(TestRegistry.user):\(TestRegistry.password)",
                "docker://\(registry.host)/study/demo:v1",
            ])
        #expect(inspect.output.contains("\"Digest\": \"\(result.manifest.digest)\""), "\(inspect.output)")
    }

    @Test("a registry that is not there is an error that says where, after the retries")
    func unreachable() async throws {
        let (scratch, _) = try built()
        let client = RegistryClient(insecure: true)
        client.attempts = 2
        let reference = try RegistryClient.Reference("127.0.0.1:9/study/demo:v1")
        await #expect(throws: RegistryClient.RegistryError.self) {
            _ = try await client.push(layout: scratch.path + "/out", tag: "v1", to: reference)
        }
        await #expect(throws: RegistryClient.RegistryError.self) {
            _ = try await client.push(layout: scratch.path + "/out", tag: "nope", to: reference)
        }
    }

    @Test("references and bearer challenges are read as the distribution spec writes them")
    func parsing() throws {
        let reference = try RegistryClient.Reference("localhost:5000/study/bone-density:1.0")
        #expect(reference.registry == "localhost:5000" && reference.repository == "study/bone-density")
        #expect(reference.tag == "1.0")
        #expect(try RegistryClient.Reference("r.example.org/a/b").tag == "latest")
        #expect(throws: RegistryClient.RegistryError.self) { try RegistryClient.Reference("no-repository") }
        #expect(throws: RegistryClient.RegistryError.self) { try RegistryClient.Reference("r.example.org/Upper:1") }
        let parameters = RegistryClient.challengeParameters(
            #"realm="https://auth.example.org/token",service="registry.example.org",scope="repository:a/b:pull,push""#)
        #expect(parameters["realm"] == "https://auth.example.org/token")
        #expect(parameters["service"] == "registry.example.org")
        #expect(parameters["scope"] == "repository:a/b:pull,push")
        let location = try #require(URL(string: "http://r/v2/a/blobs/uploads/u?_state=abc%2Bdef"))
        #expect(
            RegistryClient.appending(location, "digest", "sha256:00").absoluteString
                == "http://r/v2/a/blobs/uploads/u?_state=abc%2Bdef&digest=sha256:00")
    }
}
