import Foundation
import TestBeds

@testable import Staging

/// Synthetic CT studies from scripts/testbed/synth-ct.py (pydicom), with what it planted in truth.json.
struct Synthetic {
    struct Truth: Decodable {
        var patients: [Patient]
    }

    struct Patient: Decodable {
        var PatientID: String
        var PatientAge: String
        var PatientSex: String
        var PatientWeight: Double
        var PatientSize: Double
        var PatientBirthDate: String
        var StudyDate: String
        var StudyInstanceUID: String
        var planted: [String]
        /// The planted values by attribute keyword.
        var planted_fields: [String: String]
        var series: [Series]
        var screenshot: Screenshot?
    }

    struct Series: Decodable {
        var SeriesInstanceUID: String
        var instances: Int
        var tilt: Double
        var files: [String]
        var SOPInstanceUIDs: [String]
    }

    struct Screenshot: Decodable {
        var file: String
        var SeriesInstanceUID: String
    }

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// Whether the generator can run (python3 with pydicom and numpy: `make deps`).
    static let available: Bool = {
        (try? runProgram("/usr/bin/env", ["python3", "-c", "import pydicom, numpy"]).status) == 0
    }()

    static let converterAvailable = NIfTIConverter.find() != nil

    let directory: String
    let truth: Truth

    /// Generates a study set into `directory` (which must not exist), by default a fresh scratch directory.
    init(
        patients: Int = 2, seed: Int = 1, syntax: String = "explicit-le", extras: Bool = true, slices: Int = 24,
        directory: String? = nil
    ) throws {
        self.directory = directory ?? NSTemporaryDirectory() + "synth-\(UUID().uuidString)"
        var arguments = [
            "python3", Self.repository + "/scripts/testbed/synth-ct.py", self.directory, "--patients", String(patients),
            "--seed", String(seed), "--transfer-syntax", syntax, "--slices", String(slices),
        ]
        if !extras { arguments.append("--no-extras") }
        let run = try runProgram("/usr/bin/env", arguments)
        guard run.status == 0 else { throw StagingError(.tool, "synth-ct.py failed: \(run.output)") }
        let data = try Data(contentsOf: URL(fileURLWithPath: self.directory + "/truth.json"))
        truth = try JSONDecoder().decode(Truth.self, from: data)
    }

    func path(_ file: String) -> String { directory + "/" + file }

    /// Two patients, seed 1, inside a test's scratch directory (removed with it).
    init(in scratch: ScratchDirectory) throws {
        try self.init(directory: scratch.appending("synth").path)
    }

    /// Every DICOM file written.
    var files: [URL] {
        truth.patients.flatMap { patient in
            patient.series.flatMap(\.files) + (patient.screenshot.map { [$0.file] } ?? [])
        }.map { URL(fileURLWithPath: path($0)) }
    }

    func upload(to orthanc: OrthancTestBed) async throws {
        for file in files { try await orthanc.upload(file: file) }
    }

    func read(_ file: String) throws -> DICOMFile {
        try Part10.read(Array(try Data(contentsOf: URL(fileURLWithPath: path(file)))), path: file)
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }
}

/// A fresh scratch directory path (not created).
func scratch(_ name: String) -> String { NSTemporaryDirectory() + "\(name)-\(UUID().uuidString)" }

let testSecret = Array("a project secret of enough bytes for the tests".utf8)
