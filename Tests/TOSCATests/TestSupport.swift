import Foundation
import Testing

@testable import TOSCA

/// Where the test inputs live, found from this file's path so that the tests do not depend on the working directory.
enum Paths {
    static let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let fixtures = tests.appendingPathComponent("Fixtures", isDirectory: true)
    static let packageRoot = tests.deletingLastPathComponent().deletingLastPathComponent()
    static let templates = packageRoot.appendingPathComponent("templates", isDirectory: true)
    static let deployctl = packageRoot.appendingPathComponent(".build/debug/deployctl")

    static func fixture(_ relative: String) -> URL { fixtures.appendingPathComponent(relative) }

    static var deployctlBuilt: Bool { FileManager.default.isExecutableFile(atPath: deployctl.path) }
}

/// A fresh directory under the system temporary directory, removed when the value goes away.
final class TemporaryDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent(
            "deployctl-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    /// Writes `text` to `relative` (creating folders) and returns the file's URL.
    @discardableResult
    func write(_ relative: String, _ text: String) throws -> URL {
        let file = url.appendingPathComponent(relative)
        try FileManager.default.createDirectory(
            at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    func path(_ relative: String) -> String { url.appendingPathComponent(relative).path }
}

/// A diagnostic as one comparable line: `LINE:COLUMN: SEVERITY: CODE: MESSAGE`.
func summary(_ diagnostic: Diagnostic) -> String {
    let location = diagnostic.location.map { "\($0.line):\($0.column)" } ?? "-:-"
    return "\(location): \(diagnostic.severity.rawValue): \(diagnostic.code): \(diagnostic.message)"
}

/// Validates a template given as text, written to a temporary file named `name`.
func validate(
    _ text: String, name: String = "template.yaml", options: ValidationOptions = ValidationOptions()
) throws -> ValidationResult {
    let directory = try TemporaryDirectory()
    let file = try directory.write(name, text)
    return ToscaProcessor.validate(path: file.path, options: options)
}

/// The diagnostic codes of a result, in report order.
func codes(_ result: ValidationResult) -> [String] { result.diagnostics.map(\.code) }

/// The result of running a program: exit status and its two output streams.
struct ProcessOutput {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs `executable` with `arguments`, capturing its output through files so that large outputs cannot deadlock.
func runProcess(
    _ executable: URL, _ arguments: [String], environment: [String: String]? = nil, currentDirectory: URL? = nil
) throws -> ProcessOutput {
    let scratch = try TemporaryDirectory()
    let outURL = scratch.url.appendingPathComponent("stdout")
    let errURL = scratch.url.appendingPathComponent("stderr")
    try Data().write(to: outURL)
    try Data().write(to: errURL)
    let outHandle = try FileHandle(forWritingTo: outURL)
    let errHandle = try FileHandle(forWritingTo: errURL)
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    if let environment {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
    }
    if let currentDirectory { process.currentDirectoryURL = currentDirectory }
    process.standardOutput = outHandle
    process.standardError = errHandle
    try process.run()
    process.waitUntilExit()
    try outHandle.close()
    try errHandle.close()
    return ProcessOutput(
        status: process.terminationStatus,
        stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
        stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
}

/// python3 on PATH, used to build zip archives with the standard library's zipfile module.
enum Python {
    static let executable: URL? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(directory)).appendingPathComponent("python3")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return nil
    }()

    static var available: Bool { executable != nil }

    /// Writes a zip archive whose entries are `entries` (archive path → text), with Python's zipfile module.
    static func zip(_ entries: [String: String], into archive: URL) throws {
        let script = """
            import json, sys, zipfile
            entries = json.loads(sys.argv[1])
            with zipfile.ZipFile(sys.argv[2], "w", zipfile.ZIP_DEFLATED) as archive:
                for name in sorted(entries):
                    archive.writestr(name, entries[name])
            """
        let json = String(decoding: try JSONEncoder().encode(entries), as: UTF8.self)
        let output = try runProcess(executable!, ["-c", script, json, archive.path])
        #expect(output.status == 0, "python3 zipfile failed: \(output.stderr)")
    }
}

/// A JSON document parsed with Foundation, for checking the CLI's and the plan's JSON output.
func parseJSON(_ text: String) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
}
