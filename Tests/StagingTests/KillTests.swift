import Foundation
import TestBeds
import Testing

@testable import Staging

@Suite(
    "Staging killed with SIGKILL and run again", .serialized,
    .enabled(
        if: Synthetic.available && Synthetic.converterAvailable && Deployctl.built,
        "needs pydicom, dcm2niix (`make deps`) and `swift build`"))
struct KillTests {
    @Test("after each SIGKILL the manifest lists only whole series; the rerun ends with the uninterrupted manifest")
    func killAndResume() throws {
        let synthetic = try Synthetic(patients: 3, slices: 24)
        defer { synthetic.remove() }
        let work = scratch("kill-stage")
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        try Data(testSecret).write(to: URL(fileURLWithPath: work + "/secret"))
        chmod(work + "/secret", 0o600)
        func arguments(_ name: String) -> [String] {
            ["volume", "stage", "--name", name, "--output", work + "/" + name, "--from-dir", synthetic.directory]
                + synthetic.truth.patients.flatMap { ["--patient-id", $0.PatientID] }
                + ["--secret-file", work + "/secret", "--home", work + "/home"]
        }
        let reference = try runProgram(Deployctl.path, arguments("reference"))
        #expect(reference.status == 0, "\(reference.output)")
        // Killed at growing delays: wherever it stops, what the manifest lists is whole and checks out.
        var kills = 0
        for delay in [150_000, 400_000, 800_000, 1_500_000] as [useconds_t] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Deployctl.path)
            process.arguments = arguments("killed")
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            usleep(delay)
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                kills += 1
            }
            process.waitUntilExit()
            let volume = Volume(path: work + "/killed")
            if let manifest = try? volume.manifest() {
                try volume.verify(manifest, strays: false)
            }
        }
        #expect(kills >= 1, "every run finished before it could be killed; make the study larger")
        let resumed = try runProgram(Deployctl.path, arguments("killed"))
        #expect(resumed.status == 0, "\(resumed.output)")
        let expected = try Data(contentsOf: URL(fileURLWithPath: work + "/reference/manifest.json"))
        #expect(expected == (try Data(contentsOf: URL(fileURLWithPath: work + "/killed/manifest.json"))))
        try Volume(path: work + "/killed").verify(try Volume(path: work + "/killed").manifest())
        #expect(!FileManager.default.fileExists(atPath: work + "/killed/.staging"))
    }
}
