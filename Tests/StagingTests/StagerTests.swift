import Foundation
import TestBeds
import Testing

@testable import Staging

/// A directory source that fails after `limit` fetches: a run cut off part-way.
struct InterruptedSource: SeriesSource {
    let inner: DirectorySource
    let limit: Int
    let counter = Counter()

    final class Counter: @unchecked Sendable {
        // Only touched from the one staging task of a test.
        var fetches = 0
    }

    func list(_ selection: Selection) async throws -> [SourceSeries] { try await inner.list(selection) }

    func fetch(_ series: SourceSeries, into directory: String) async throws -> [String] {
        counter.fetches += 1
        if counter.fetches > limit { throw StagingError(.server, "connection lost (test)") }
        return try await inner.fetch(series, into: directory)
    }
}

/// Every file under a directory, gzip members decompressed, as bytes.
func volumeContents(_ root: String) throws -> [(String, [UInt8])] {
    var out: [(String, [UInt8])] = []
    let walker = FileManager.default.enumerator(atPath: root)
    while let relative = walker?.nextObject() as? String {
        let path = root + "/" + relative
        guard !Volume.isDirectory(path) else { continue }
        if path.hasSuffix(".gz") {
            let run = try runProgram("/bin/gzip", ["-dc", path])
            out.append((relative, Array(run.output.utf8)))
        } else {
            out.append((relative, Array(try Data(contentsOf: URL(fileURLWithPath: path)))))
        }
    }
    return out
}

@Suite(
    "Staging a volume from a directory (real dcm2niix)", .serialized,
    .enabled(if: Synthetic.available && Synthetic.converterAvailable, "needs pydicom and dcm2niix (`make deps`)"))
struct StagerTests {
    func stager(_ path: String, name: String = "study", secret: [UInt8] = testSecret) throws -> Stager {
        let volume = try Volume.create(name: name, at: path)
        return Stager(
            volume: volume, anonymiser: Anonymiser(pseudonyms: try Pseudonyms(secret: secret)),
            converter: NIfTIConverter.find())
    }

    @Test("every CT instance is staged with a NIfTI per series, the screenshot quarantined, no identifier anywhere")
    func stageDirectory() async throws {
        let synthetic = try Synthetic(patients: 2)
        defer { synthetic.remove() }
        let path = scratch("volume")
        defer { try? Volume(path: path).delete() }
        let report = try await stager(path).stage(
            from: DirectorySource(root: synthetic.directory), selection: Selection())
        let ctInstances = synthetic.truth.patients.flatMap(\.series).reduce(0) { $0 + $1.instances }
        #expect(report.instances == ctInstances)
        #expect(report.quarantined.count == 2)
        #expect(report.seriesStaged == 6)  // 2 patients × (2 CT series + 1 screenshot series)
        let manifest = try Volume(path: path).manifest()
        #expect(manifest.instanceCount == ctInstances)
        #expect(manifest.series.filter { $0.instances == 0 }.count == 2)
        let pseudonyms = try Pseudonyms(secret: testSecret)
        for patient in synthetic.truth.patients {
            for series in patient.series {
                let entry = try #require(
                    manifest.series.first { $0.series == pseudonyms.uid(series.SeriesInstanceUID) })
                #expect(entry.patient == pseudonyms.patient(patient.PatientID))
                #expect(entry.files.filter { $0.path.hasSuffix(".dcm") }.count == series.instances)
                #expect(entry.files.contains { $0.path.hasSuffix(".nii.gz") })
                #expect(entry.files.contains { $0.path.hasSuffix(".json") })
            }
        }
        // No planted identifier in any file: DICOM, NIfTI (decompressed), sidecars, manifest, volume.json.
        let planted = synthetic.truth.patients.flatMap(\.planted)
        let contents = try volumeContents(path)
        #expect(contents.count > ctInstances)
        for (name, bytes) in contents {
            for value in planted where contains(bytes, value) { Issue.record("\(name) holds planted '\(value)'") }
            #expect(!contains(bytes, "PLANTED"), "\(name) holds a planted marker")
        }
        let reportJSON = String(decoding: try JSONEncoder().encode(report), as: UTF8.self)
        #expect(!planted.contains { reportJSON.contains($0) })
        #expect(!FileManager.default.fileExists(atPath: path + "/.staging"))
    }

    @Test("the NIfTI of the axial series matches the analytic phantom voxel by voxel (orientation, order, HU)")
    func niftiGeometry() async throws {
        let synthetic = try Synthetic(patients: 1, extras: false)
        defer { synthetic.remove() }
        let path = scratch("volume")
        defer { try? Volume(path: path).delete() }
        _ = try await stager(path).stage(from: DirectorySource(root: synthetic.directory), selection: Selection())
        let pseudonyms = try Pseudonyms(secret: testSecret)
        let axial = try #require(synthetic.truth.patients[0].series.first { $0.tilt == 0 })
        let tilted = try #require(synthetic.truth.patients[0].series.first { $0.tilt != 0 })
        let manifest = try Volume(path: path).manifest()
        let entry = try #require(manifest.series.first { $0.series == pseudonyms.uid(axial.SeriesInstanceUID) })
        let nifti = try #require(entry.files.first { $0.path.hasSuffix(".nii.gz") })
        let check = try runProgram(
            "/usr/bin/env",
            [
                "python3", Synthetic.repository + "/scripts/testbed/check-nifti.py", path + "/" + nifti.path,
                "--cols", "40", "--rows", "48", "--slices", String(axial.instances),
            ])
        #expect(check.status == 0, "\(check.output)")
        #expect(check.output.contains("\"ok\": true"))
        // The sidecar keeps the characteristics the profile retains, for the bone-density report.
        let sidecar = try #require(entry.files.first { $0.path.hasSuffix(".json") })
        let keys =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: path + "/" + sidecar.path))) as? [String: Any]
        #expect(keys?["PatientSex"] as? String == synthetic.truth.patients[0].PatientSex)
        #expect(keys?["PatientAge"] != nil && keys?["PatientWeight"] != nil)
        #expect(keys?["InstitutionName"] == nil && keys?["StationName"] == nil && keys?["SeriesDescription"] == nil)
        // The tilted series converts too (dcm2niix adds a tilt-corrected volume).
        let tiltEntry = try #require(manifest.series.first { $0.series == pseudonyms.uid(tilted.SeriesInstanceUID) })
        #expect(tiltEntry.files.contains { $0.path.hasSuffix("_Tilt_1.nii.gz") })
    }

    @Test("separate runs with one secret give the same manifest; a run cut off part-way and resumed gives it too")
    func reproducibleAndResumable() async throws {
        let synthetic = try Synthetic(patients: 2, slices: 6)
        defer { synthetic.remove() }
        let (a, b, c) = (scratch("volume-a"), scratch("volume-b"), scratch("volume-c"))
        defer { [a, b, c].forEach { try? Volume(path: $0).delete() } }
        let source = DirectorySource(root: synthetic.directory)
        _ = try await stager(a).stage(from: source, selection: Selection())
        _ = try await stager(b).stage(from: source, selection: Selection())
        let manifestA = try Data(contentsOf: URL(fileURLWithPath: a + "/manifest.json"))
        #expect(manifestA == (try Data(contentsOf: URL(fileURLWithPath: b + "/manifest.json"))))
        // Cut off after two series: what is there is listed, nothing half-done is.
        let cut = InterruptedSource(inner: source, limit: 2)
        await #expect(throws: StagingError.self) { _ = try await stager(c).stage(from: cut, selection: Selection()) }
        let partial = try Volume(path: c).manifest()
        #expect(partial.series.count == 2)
        try Volume(path: c).verify(partial)
        let resumed = try await stager(c).stage(from: source, selection: Selection())
        #expect(resumed.seriesSkipped == 2 && resumed.seriesStaged == 4)
        #expect(manifestA == (try Data(contentsOf: URL(fileURLWithPath: c + "/manifest.json"))))
        // Another secret is refused on this volume, and gives unrelated ids in a volume of its own.
        let other = Array("another project's secret, long enough".utf8)
        await #expect(throws: StagingError.self) {
            _ = try await stager(c, secret: other).stage(from: source, selection: Selection())
        }
    }

    @Test("seal checks the files, makes the volume read-only and gives its id; a sealed volume takes no more data")
    func seal() async throws {
        let synthetic = try Synthetic(patients: 1, extras: false, slices: 4)
        defer { synthetic.remove() }
        let path = scratch("volume")
        defer { try? Volume(path: path).delete() }
        let source = DirectorySource(root: synthetic.directory)
        _ = try await stager(path).stage(from: source, selection: Selection())
        let volume = Volume(path: path)
        // A file changed behind the manifest's back stops the seal.
        let manifest = try volume.manifest()
        let victim = path + "/" + manifest.series[0].files[0].path
        let original = try Data(contentsOf: URL(fileURLWithPath: victim))
        try (original + Data([0])).write(to: URL(fileURLWithPath: victim))
        #expect(throws: StagingError.self) { try volume.seal() }
        try original.write(to: URL(fileURLWithPath: victim))
        let stray = path + "/" + manifest.series[0].patient + "/notes.txt"
        try Data("stray".utf8).write(to: URL(fileURLWithPath: stray))
        #expect(throws: StagingError.self) { try volume.seal() }
        try FileManager.default.removeItem(atPath: stray)
        let info = try volume.seal()
        #expect(info.state == .sealed)
        #expect(info.id?.hasPrefix("vol-") == true && info.digest?.hasPrefix("sha256:") == true)
        let attributes = try FileManager.default.attributesOfItem(atPath: victim)
        #expect((attributes[.posixPermissions] as? Int) == 0o444)
        #expect((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) == 0o555)
        #expect(try volume.seal() == info)  // sealing again only checks
        await #expect(throws: StagingError.self) {
            _ = try await Stager(
                volume: volume, anonymiser: Anonymiser(pseudonyms: try Pseudonyms(secret: testSecret)), converter: nil
            ).stage(from: source, selection: Selection())
        }
    }

    @Test("a selection by patient stages only that patient; selection files in YAML and CSV read the same")
    func selection() async throws {
        let synthetic = try Synthetic(patients: 2, extras: false, slices: 3)
        defer { synthetic.remove() }
        let wanted = synthetic.truth.patients[1].PatientID
        let path = scratch("volume")
        defer { try? Volume(path: path).delete() }
        let report = try await stager(path).stage(
            from: DirectorySource(root: synthetic.directory), selection: Selection(patientIDs: [wanted]))
        #expect(report.instances == synthetic.truth.patients[1].series.reduce(0) { $0 + $1.instances })
        let patients = Set(try Volume(path: path).manifest().series.map(\.patient))
        #expect(patients == [try Pseudonyms(secret: testSecret).patient(wanted)])
        let yaml = scratch("selection") + ".yaml"
        let csv = scratch("selection") + ".csv"
        try Data("patients: [\(wanted)]\nstudy_dates: 20000101-\n".utf8).write(to: URL(fileURLWithPath: yaml))
        try Data("PatientID,Note\n\(wanted),cohort A\n".utf8).write(to: URL(fileURLWithPath: csv))
        defer { [yaml, csv].forEach { try? FileManager.default.removeItem(atPath: $0) } }
        #expect(try Selection.load(yaml).patientIDs == [wanted])
        #expect(try Selection.load(yaml).studyDates == "20000101-")
        #expect(try Selection.load(csv).patientIDs == [wanted])
        try Data("patient: [x]\n".utf8).write(to: URL(fileURLWithPath: yaml))
        let error = #expect(throws: StagingError.self) { try Selection.load(yaml) }
        #expect(error?.message.contains("unknown key 'patient'") == true)
    }
}
