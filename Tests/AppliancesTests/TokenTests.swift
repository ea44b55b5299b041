import Foundation
import TestBeds
import Testing

@testable import Appliances

/// scripts/testbed/registry-token-server.py: a token realm issuing RS256 JWTs for basic credentials.
final class TokenServer {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/testbed/registry-token-server.py").path
    let scratch: Scratch
    let process = Process()
    let port = Int.random(in: 50_000..<60_000)
    var output: Pipe?

    init() throws {
        scratch = try Scratch()
        output = try startListening(
            process, [Self.script, String(port), scratch.path, TestRegistry.user, TestRegistry.password],
            what: "the token server")
    }

    deinit {
        kill(process.processIdentifier, SIGKILL)  // SIGTERM may be blocked in a process started from a test
        process.waitUntilExit()
    }

    var realm: String { "http://127.0.0.1:\(port)/token" }
    var certificate: String { scratch.path + "/cert.pem" }

    struct Request: Decodable {
        var path: String
        var scope: String
        var authorised: Bool
    }

    var requests: [Request] {
        ((try? String(contentsOfFile: scratch.path + "/requests.log", encoding: .utf8)) ?? "").split(separator: "\n")
            .compactMap { try? JSONDecoder().decode(Request.self, from: Data($0.utf8)) }
    }
}

@Suite(
    "Pushing to a registry that wants bearer tokens", .serialized,
    .enabled(
        if: TestRegistry.available && FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl"),
        "needs docker-registry and openssl (`make deps`)"))
struct TokenTests {
    @Test("the client gets a token from the realm the 401 names, with its credentials, and pushes; none: a refusal")
    func bearerToken() async throws {
        let tokens = try TokenServer()
        let registry = try TestRegistry(token: (tokens.realm, tokens.certificate))
        let scratch = try Scratch()
        let spec = try makeTree(scratch, order: [0, 1, 2, 3], mtime: Date(), plainMode: 0o644)
        let result = try ApplianceBuilder.build(
            try ApplianceSpec.load(path: spec), output: scratch.path + "/out", tag: "v1")
        let reference = try RegistryClient.Reference("\(registry.host)/study/tokened:v1")

        let anonymous = RegistryClient(insecure: true, requestTimeout: 20)
        await #expect(throws: RegistryClient.RegistryError.self) {
            try await anonymous.push(layout: scratch.path + "/out", tag: "v1", to: reference)
        }

        let client = RegistryClient(
            insecure: true, credentials: (TestRegistry.user, TestRegistry.password), requestTimeout: 20)
        let report = try await client.push(layout: scratch.path + "/out", tag: "v1", to: reference)
        #expect(report.manifest == result.manifest.digest)
        #expect(report.uploaded.count == 3)
        let granted = tokens.requests.filter(\.authorised)
        #expect(granted.contains { $0.scope == "repository:study/tokened:pull,push" }, "\(tokens.requests)")
        // One token per scope, kept: not one per request.
        #expect(granted.count <= 2, "\(granted)")
        let manifest = try await client.manifest(reference)
        #expect(SHA256Stream.digest(manifest) == result.manifest.digest)
    }
}
