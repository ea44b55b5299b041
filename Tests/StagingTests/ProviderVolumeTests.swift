import Foundation
import TestBeds
import Testing

@testable import Staging

@Suite(
    "Staging into an ssh provider's volume (real sshd hosts)", .serialized,
    .enabled(
        if: SSHTestBed.available && Synthetic.available && Synthetic.converterAvailable && Deployctl.built,
        "needs root (network namespaces, sshd), pydicom, dcm2niix and `swift build`"))
struct ProviderVolumeTests {
    @Test("volume stage --provider publishes series by series over SCP; seal checks the host's copy and locks it")
    func sshVolume() throws {
        let bed = try SSHTestBed(hosts: 1)
        let synthetic = try Synthetic(patients: 2, slices: 4)
        defer { synthetic.remove() }
        let work = scratch("provider-volume")
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer {
            _ = try? runProgram("/bin/chmod", ["-R", "u+w", work, bed.path("remote")])
            try? FileManager.default.removeItem(atPath: work)
        }
        try Data(testSecret).write(to: URL(fileURLWithPath: work + "/secret"))
        chmod(work + "/secret", 0o600)
        let common = ["--home", work + "/home", "--providers", bed.path("providers.yaml")]
        func stage(_ patients: [Int]) throws -> ProgramRun {
            try runProgram(
                Deployctl.path,
                ["volume", "stage", "--name", "cohort", "--provider", "testbed", "--from-dir", synthetic.directory]
                    + patients.flatMap { ["--patient-id", synthetic.truth.patients[$0].PatientID] }
                    + ["--secret-file", work + "/secret"] + common)
        }
        // First one patient (2 CT series + the quarantined screenshot), then both: only the new series go up.
        let first = try stage([0])
        #expect(first.status == 0, "\(first.output)")
        #expect(first.output.contains("2 series published"))
        let second = try stage([0, 1])
        #expect(second.status == 0, "\(second.output)")
        #expect(second.output.contains("2 series published"), "\(second.output)")
        let remote = bed.path("remote") + "/data-volumes/cohort"
        let local = work + "/home/volumes/cohort.d"
        let manifest = try Data(contentsOf: URL(fileURLWithPath: local + "/manifest.json"))
        #expect(manifest == (try Data(contentsOf: URL(fileURLWithPath: remote + "/manifest.json"))))
        let parsed = try JSONDecoder().decode(Manifest.self, from: manifest)
        #expect(parsed.series.count == 6)
        for file in parsed.series.flatMap(\.files) {
            #expect(FileManager.default.fileExists(atPath: remote + "/" + file.path), "\(file.path) not on the host")
        }
        // A file changed on the host stops the seal; put back, the seal goes through and locks the copy.
        let victim = remote + "/" + parsed.series.flatMap(\.files)[0].path
        let original = try Data(contentsOf: URL(fileURLWithPath: victim))
        try Data("tampered".utf8).write(to: URL(fileURLWithPath: victim))
        let refused = try runProgram(Deployctl.path, ["volume", "seal", "cohort"] + common)
        #expect(refused.status != 0)
        try original.write(to: URL(fileURLWithPath: victim))
        let seal = try runProgram(Deployctl.path, ["volume", "seal", "cohort", "--format", "json"] + common)
        #expect(seal.status == 0, "\(seal.output)")
        let sealed = try JSONSerialization.jsonObject(with: Data(seal.output.utf8)) as? [String: Any]
        #expect(sealed?["volume_id"] as? String == remote)
        #expect((try FileManager.default.attributesOfItem(atPath: victim)[.posixPermissions] as? Int) == 0o444)
        #expect((try FileManager.default.attributesOfItem(atPath: remote)[.posixPermissions] as? Int) == 0o555)
        #expect(!FileManager.default.fileExists(atPath: remote + "/.staging"))
        let show = try runProgram(Deployctl.path, ["volume", "show", "cohort", "--home", work + "/home"])
        #expect(show.output.contains("on provider testbed"))
        // Delete removes both copies.
        let delete = try runProgram(Deployctl.path, ["volume", "delete", "cohort", "--force"] + common)
        #expect(delete.status == 0, "\(delete.output)")
        #expect(!FileManager.default.fileExists(atPath: remote))
        #expect(!FileManager.default.fileExists(atPath: local))
    }
}
