import Foundation

/// The programs appliance builds run (pip, apt, dpkg-deb, mkfs, grub, qemu-img …): stdout returned, stderr kept in
/// a file (read after the end, it cannot fill a pipe and block the child) and quoted when the program fails.
enum Tool {
    @discardableResult
    static func run(
        _ executable: String, _ arguments: [String], what: String, environment: [String: String] = [:],
        input: String? = nil, directory: String? = nil
    ) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let output = Pipe()
        let errorPath = NSTemporaryDirectory() + "deployctl-tool-\(UUID().uuidString).err"
        guard FileManager.default.createFile(atPath: errorPath, contents: nil) else {
            throw ApplianceBuilder.BuildError(description: "\(what): cannot create \(errorPath)")
        }
        defer { try? FileManager.default.removeItem(atPath: errorPath) }
        let errors = FileHandle(forWritingAtPath: errorPath)
        defer { try? errors?.close() }
        process.standardOutput = output
        process.standardError = errors
        let stdin = Pipe()
        if input != nil { process.standardInput = stdin }
        do { try process.run() } catch {
            throw ApplianceBuilder.BuildError(description: "\(what): cannot start \(executable) (`make deps`)")
        }
        if let input {
            stdin.fileHandleForWriting.write(Data(input.utf8))
            try? stdin.fileHandleForWriting.close()
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let tail = String(decoding: FileManager.default.contents(atPath: errorPath) ?? Data(), as: UTF8.self)
                .split(separator: "\n").suffix(6).joined(separator: "\n")
            throw ApplianceBuilder.BuildError(
                description: "\(what) failed (exit \(process.terminationStatus)):\n\(tail)")
        }
        return String(decoding: data, as: UTF8.self)
    }
}
