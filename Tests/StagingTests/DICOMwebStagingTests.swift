import Foundation
import TestBeds
import Testing

@testable import Staging

/// The debug build of the command-line tool.
enum Deployctl {
    static let path = Synthetic.repository + "/.build/debug/deployctl"
    static var built: Bool { FileManager.default.isExecutableFile(atPath: path) }
}

@Suite(
    "Staging from a real Orthanc PACS over DICOMweb, through the command line", .serialized,
    .enabled(
        if: OrthancTestBed.available && Synthetic.available && Synthetic.converterAvailable && Deployctl.built,
        "needs orthanc, orthanc-dicomweb, pydicom, dcm2niix (`make deps`) and `swift build`"))
struct DICOMwebStagingTests {
    @Test("volume stage --from-dicomweb: the same volume as staging the files directly, nothing planted anywhere")
    func stageFromPACS() async throws {
        let synthetic = try Synthetic(patients: 2, slices: 6)
        defer { synthetic.remove() }
        let orthanc = try await OrthancTestBed(credentials: ("stager", "pacs-password-for-tests"))
        for name in try FileManager.default.contentsOfDirectory(atPath: synthetic.directory).sorted()
        where name.hasSuffix(".dcm") {
            try await orthanc.upload(file: URL(fileURLWithPath: synthetic.path(name)))
        }
        let work = scratch("dicomweb-stage")
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer {
            _ = try? runProgram("/bin/chmod", ["-R", "u+w", work])
            try? FileManager.default.removeItem(atPath: work)
        }
        try Data(testSecret).write(to: URL(fileURLWithPath: work + "/secret"))
        try Data("pacs-password-for-tests\n".utf8).write(to: URL(fileURLWithPath: work + "/password"))
        chmod(work + "/secret", 0o600)
        let environment: [String: String?] = ["DEPLOYCTL_HOME": work + "/home"]
        // Patient 0 by ID, patient 1 through a selection file.
        try Data("patients:\n  - \(synthetic.truth.patients[1].PatientID)\n".utf8).write(
            to: URL(fileURLWithPath: work + "/selection.yaml"))
        let stage = try runProgram(
            Deployctl.path,
            [
                "volume", "stage", "--name", "pacs", "--output", work + "/pacs", "--from-dicomweb",
                orthanc.baseURL.absoluteString, "--user", "stager", "--password-file", work + "/password",
                "--patient-id", synthetic.truth.patients[0].PatientID, "--selection", work + "/selection.yaml",
                "--secret-file", work + "/secret",
            ], environment: environment)
        #expect(stage.status == 0, "\(stage.output)")
        #expect(stage.output.contains("6 series staged"))
        #expect(stage.output.contains("quarantined 2 instances"))
        // The same files staged from the directory give the same manifest: ids depend on the secret only.
        let direct = try runProgram(
            Deployctl.path,
            [
                "volume", "stage", "--name", "direct", "--output", work + "/direct", "--from-dir", synthetic.directory,
                "--patient-id", synthetic.truth.patients[0].PatientID, "--patient-id",
                synthetic.truth.patients[1].PatientID, "--secret-file", work + "/secret",
            ], environment: environment)
        #expect(direct.status == 0, "\(direct.output)")
        let pacsManifest = try Data(contentsOf: URL(fileURLWithPath: work + "/pacs/manifest.json"))
        #expect(pacsManifest == (try Data(contentsOf: URL(fileURLWithPath: work + "/direct/manifest.json"))))
        // Seal, show, list.
        let seal = try runProgram(
            Deployctl.path, ["volume", "seal", "pacs", "--format", "json"], environment: environment)
        #expect(seal.status == 0, "\(seal.output)")
        let sealed = try JSONSerialization.jsonObject(with: Data(seal.output.utf8)) as? [String: Any]
        #expect((sealed?["id"] as? String)?.hasPrefix("vol-") == true)
        let show = try runProgram(
            Deployctl.path, ["volume", "show", "pacs", "--format", "json"], environment: environment)
        let shown = try JSONSerialization.jsonObject(with: Data(show.output.utf8)) as? [String: Any]
        #expect(shown?["state"] as? String == "sealed")
        #expect(
            shown?["instances"] as? Int == synthetic.truth.patients.flatMap(\.series).reduce(0) { $0 + $1.instances })
        #expect(shown?["patients"] as? Int == 2)
        let list = try runProgram(Deployctl.path, ["volume", "list"], environment: environment)
        #expect(list.output.contains("pacs\tsealed\tvol-"))
        // Nothing planted in the volume, in what the commands printed, or in deployctl's own files.
        let planted = synthetic.truth.patients.flatMap(\.planted) + ["pacs-password-for-tests"]
        var everything = try volumeContents(work + "/pacs") + (try volumeContents(work + "/home"))
        for (name, run) in [("stage", stage), ("seal", seal), ("show", show), ("list", list)] {
            everything.append((name, Array(run.output.utf8)))
        }
        for (name, bytes) in everything {
            for value in planted where contains(bytes, value) { Issue.record("\(name) holds '\(value)'") }
        }
        // A wrong password: a clear error, quickly, without the password.
        try Data("wrong-password".utf8).write(to: URL(fileURLWithPath: work + "/password"))
        let refused = try runProgram(
            Deployctl.path,
            [
                "volume", "stage", "--name", "refused", "--output", work + "/refused", "--from-dicomweb",
                orthanc.baseURL.absoluteString, "--user", "stager", "--password-file", work + "/password",
                "--patient-id", synthetic.truth.patients[0].PatientID, "--secret-file", work + "/secret",
            ], environment: environment)
        #expect(refused.status != 0)
        #expect(refused.output.contains("401"))
        #expect(
            !refused.output.contains("wrong-password")
                && !refused.output.contains(synthetic.truth.patients[0].PatientID))
    }
}
