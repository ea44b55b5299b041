import Foundation
import Testing

@testable import Staging

@Suite("Creating a volume where a killed run left part of one")
struct VolumeCreateTests {
    @Test("only volume.json.tmp (killed during the first write): created; a foreign file: refused")
    func temporaryFileOnly() throws {
        let path = scratch("create")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data("{\"na".utf8).write(to: URL(fileURLWithPath: path + "/volume.json.tmp"))
        let volume = try Volume.create(name: "study", at: path)
        #expect(try volume.info() == Volume.Info(name: "study", state: .open))
        #expect(try volume.manifest().series.isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: path).sorted() == ["manifest.json", "volume.json"])

        let other = scratch("create")
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: other) }
        try Data("x".utf8).write(to: URL(fileURLWithPath: other + "/volume.json.tmp"))
        try Data("notes".utf8).write(to: URL(fileURLWithPath: other + "/notes.txt"))
        #expect(throws: StagingError.self) { try Volume.create(name: "study", at: other) }
        #expect(FileManager.default.fileExists(atPath: other + "/notes.txt"))
    }

    @Test("volume.json written but not the manifest (killed between them): the empty manifest is written")
    func infoWithoutManifest() throws {
        let path = scratch("create")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let first = try Volume.create(name: "study", at: path)
        try FileManager.default.removeItem(atPath: first.manifestPath)
        let again = try Volume.create(name: "study", at: path)
        #expect(try again.manifest().series.isEmpty)
        #expect(throws: StagingError.self) { try Volume.create(name: "other", at: path) }
    }
}
