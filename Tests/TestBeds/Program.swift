import Foundation

/// How a program run by a test ended: its exit status (or the signal that killed it) and its output.
public struct ProgramRun: Sendable {
    public var status: Int32
    public var killed: Bool
    /// stdout and stderr together.
    public var output: String
}

/// Runs a program to the end with extra environment variables (nil removes one); stdout and stderr together.
public func runProgram(
    _ path: String, _ arguments: [String], environment extra: [String: String?] = [:], directory: String? = nil
) throws -> ProgramRun {
    let process = program(path, arguments, environment: extra)
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return ProgramRun(
        status: process.terminationStatus, killed: process.terminationReason == .uncaughtSignal,
        output: String(decoding: data, as: UTF8.self))
}

/// A Process for `path` with this process's environment plus `extra` (nil removes a variable), not yet started.
func program(_ path: String, _ arguments: [String], environment extra: [String: String?]) -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    var environment = ProcessInfo.processInfo.environment
    for (name, value) in extra { environment[name] = value }
    process.environment = environment
    return process
}

/// How a program run by a test ended, its stdout and stderr apart.
public struct SplitProgramRun: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs a program to the end with stdout and stderr kept apart (each written to a file, so neither can block).
public func runProgramSplit(
    _ path: String, _ arguments: [String], environment extra: [String: String?] = [:]
) throws -> SplitProgramRun {
    let process = program(path, arguments, environment: extra)
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("run-\(UUID().uuidString)")
    let files = [base.appendingPathExtension("out"), base.appendingPathExtension("err")]
    defer { for file in files { try? FileManager.default.removeItem(at: file) } }
    for file in files { _ = FileManager.default.createFile(atPath: file.path, contents: nil) }
    let handles = try files.map { try FileHandle(forWritingTo: $0) }
    defer { for handle in handles { try? handle.close() } }
    process.standardOutput = handles[0]
    process.standardError = handles[1]
    try process.run()
    process.waitUntilExit()
    let texts = files.map { String(decoding: FileManager.default.contents(atPath: $0.path) ?? Data(), as: UTF8.self) }
    return SplitProgramRun(status: process.terminationStatus, stdout: texts[0], stderr: texts[1])
}

/// The debug build of the command-line tool (`swift build` makes it; `swift test` builds it too).
public enum DeployctlBinary {
    public static let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(".build/debug/deployctl").path
    public static var built: Bool { FileManager.default.isExecutableFile(atPath: path) }

    public typealias Run = ProgramRun

    /// Runs the binary to the end with extra environment variables (nil removes one); stdout and stderr together.
    public static func run(_ arguments: [String], environment extra: [String: String?] = [:]) throws -> Run {
        try runProgram(path, arguments, environment: extra)
    }

    /// Runs the binary to the end; stdout and stderr apart.
    public static func runSplit(_ arguments: [String]) throws -> SplitProgramRun {
        try runProgramSplit(path, arguments)
    }
}

/// Turns for tests that deploy the study template, whichever the provider: its nodes mount `/data` and `/results`,
/// mount points made on this machine's root file system (local nodes and the simulator's share it), and one
/// deployment's teardown removing a mount point would detach another's mounts there in every namespace.
public actor MachineWide {
    public static let studyPaths = MachineWide()

    private var held = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    /// Waits for the turn (without holding a thread).
    public func acquire() async {
        if !held {
            held = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    public func release() {
        if waiting.isEmpty { held = false } else { waiting.removeFirst().resume() }
    }

    /// For a `defer`: gives the turn back from a task of its own.
    public nonisolated func releaseLater() { Task { await self.release() } }
}
