import Foundation
import ZIPFoundation

/// Cloud Service Archives: a zip (or an unpacked directory) whose entry definitions are named by
/// `TOSCA-Metadata/TOSCA.meta` (`Entry-Definitions:`), or, without metadata, the single YAML file at its root.
enum CSAR {
    /// Limits so that a hostile archive cannot fill the disk or take forever.
    static let maxEntries = 10_000
    static let maxUncompressedBytes: UInt64 = 512 * 1024 * 1024

    static func isArchive(_ path: String) -> Bool {
        let lowered = path.lowercased()
        if lowered.hasSuffix(".csar") || lowered.hasSuffix(".zip") { return true }
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        let magic = (try? handle.read(upToCount: 4)) ?? Data()
        return magic == Data([0x50, 0x4B, 0x03, 0x04])
    }

    /// Unpacks an archive into a new temporary directory and returns it.
    static func extract(_ path: String) throws(DiagnosticError) -> URL {
        let location = SourceLocation(file: path, line: 1, column: 1)
        func fail(_ message: String) -> DiagnosticError {
            DiagnosticError(Diagnostic(.error, code: "bad-csar", message, at: location))
        }
        let archive: Archive
        do {
            archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read)
        } catch {
            throw fail("'\(path)' is not a readable CSAR (zip) archive")
        }
        let destination = FileManager.default.temporaryDirectory.appendingPathComponent(
            "deployctl-csar-\(UUID().uuidString)", isDirectory: true)
        var count = 0
        var total: UInt64 = 0
        do {
            for entry in archive {
                count += 1
                total += entry.uncompressedSize
                guard count <= maxEntries, total <= maxUncompressedBytes else {
                    try? FileManager.default.removeItem(at: destination)
                    throw fail("the archive is larger than deployctl accepts (\(maxEntries) entries, 512 MiB)")
                }
                let target = destination.appendingPathComponent(entry.path).standardizedFileURL
                guard target.path.hasPrefix(destination.standardizedFileURL.path + "/") else {
                    try? FileManager.default.removeItem(at: destination)
                    throw fail("archive entry '\(entry.path)' points outside the archive")
                }
                _ = try archive.extract(entry, to: target)
            }
        } catch let error as DiagnosticError {
            throw error
        } catch {
            try? FileManager.default.removeItem(at: destination)
            throw fail("could not unpack '\(path)': \(error)")
        }
        return destination
    }

    /// The entry definitions file inside an unpacked CSAR directory.
    static func entryDefinitions(in directory: URL, display: String) throws(DiagnosticError) -> URL {
        let meta = directory.appendingPathComponent("TOSCA-Metadata/TOSCA.meta")
        let location = SourceLocation(file: display, line: 1, column: 1)
        if let text = try? String(contentsOf: meta, encoding: .utf8) {
            for line in text.split(whereSeparator: \.isNewline) {
                let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                if parts.count == 2, parts[0] == "Entry-Definitions" {
                    return directory.appendingPathComponent(parts[1])
                }
            }
            throw DiagnosticError(
                Diagnostic(
                    .error, code: "bad-csar", "TOSCA-Metadata/TOSCA.meta has no 'Entry-Definitions:' line",
                    at: location))
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        let yamls = names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted()
        guard yamls.count == 1 else {
            throw DiagnosticError(
                Diagnostic(
                    .error, code: "bad-csar",
                    yamls.isEmpty
                        ? "the CSAR has no TOSCA-Metadata/TOSCA.meta and no YAML file at its root"
                        : "the CSAR has no TOSCA-Metadata/TOSCA.meta and several YAML files at its root "
                            + "(\(yamls.joined(separator: ", "))); add a TOSCA.meta naming Entry-Definitions",
                    at: location))
        }
        return directory.appendingPathComponent(yamls[0])
    }
}
