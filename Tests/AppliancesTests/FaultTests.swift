import Foundation
import TestBeds
import Testing

@testable import Appliances

/// Starts a Python test server (`python3 ARGUMENTS…`) and waits until it prints "listening". Returns its stdout,
/// which the caller keeps: a closed pipe would break the server's later prints.
func startListening(_ process: Process, _ arguments: [String], what: String) throws -> Pipe {
    let output = Pipe()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3"] + arguments
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    try process.run()
    var line = Data()
    while !String(decoding: line, as: UTF8.self).contains("listening") {
        let more = output.fileHandleForReading.availableData
        guard !more.isEmpty else { throw ApplianceBuilder.BuildError(description: "\(what) did not start") }
        line.append(more)
    }
    return output
}

/// scripts/testbed/registry-fault-proxy.py in front of a registry: forwards everything but the first PUT with a
/// body, which it answers 503 or cuts off mid-body.
final class FaultProxy {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/testbed/registry-fault-proxy.py").path
    let process = Process()
    let port = Int.random(in: 40_000..<50_000)
    let log = NSTemporaryDirectory() + "deployctl-faults-\(UUID().uuidString)"
    var output: Pipe?

    init(registry: TestRegistry, fault: String) throws {
        output = try startListening(
            process, [Self.script, String(port), String(registry.port), fault, log], what: "the fault proxy")
    }

    deinit {
        // SIGKILL: started from a concurrency thread, the proxy inherits a signal mask that blocks SIGTERM.
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: log)
    }

    /// The faults injected so far, one line each.
    var faults: [String] {
        ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    var host: String { "127.0.0.1:\(port)" }
}

@Suite(
    "Pushing through a registry that fails mid-upload", .serialized,
    .enabled(if: TestRegistry.available, "needs docker-registry (`make deps`)"))
struct FaultTests {
    func push(fault: String) async throws {
        let registry = try TestRegistry()
        let proxy = try FaultProxy(registry: registry, fault: fault)
        let scratch = try Scratch()
        let spec = try makeTree(scratch, order: [0, 1, 2, 3], mtime: Date(), plainMode: 0o644)
        let result = try ApplianceBuilder.build(
            try ApplianceSpec.load(path: spec), output: scratch.path + "/out", tag: "v1")
        // A dropped connection shows only as silence: a short request timeout keeps the test short.
        let client = RegistryClient(insecure: true, requestTimeout: 5)
        let report = try await client.push(
            layout: scratch.path + "/out", tag: "v1",
            to: try RegistryClient.Reference("\(proxy.host)/study/faulty:v1"))
        #expect(proxy.faults.count == 1, "the fault was injected once: \(proxy.faults)")
        #expect(proxy.faults.first?.contains("/blobs/uploads/") == true)
        #expect(report.uploaded.count == 3)
        #expect(report.manifest == result.manifest.digest)
        // Straight from the registry, not through the proxy: the image is whole.
        let inspect = try runProgram(
            "/usr/bin/skopeo", ["inspect", "--tls-verify=false", "docker://\(registry.host)/study/faulty:v1"])
        #expect(inspect.status == 0, "\(inspect.output)")
        #expect(inspect.output.contains("\"Digest\": \"\(result.manifest.digest)\""), "\(inspect.output)")
        let copy = try runProgram(
            "/usr/bin/skopeo",
            ["copy", "--src-tls-verify=false", "docker://\(registry.host)/study/faulty:v1", "oci:\(scratch.path)/p:v1"])
        #expect(copy.status == 0, "every blob reads back with its digest: \(copy.output)")
    }

    @Test("a 503 on the first whole-blob upload: the push starts a new upload session and completes")
    func serviceUnavailable() async throws { try await push(fault: "503-first-put") }

    @Test("a connection cut mid-upload: the upload fails after the request timeout, is tried anew and completes")
    func droppedConnection() async throws { try await push(fault: "drop-first-put") }
}
