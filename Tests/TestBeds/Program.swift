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
