import Foundation

/// DICOM → NIfTI-1 (gzip) with dcm2niix, and the scrubbing of its JSON sidecar.
public struct NIfTIConverter: Sendable {
    public var executable: String

    public init(executable: String) { self.executable = executable }

    /// `$DEPLOYCTL_DCM2NIIX`, else `dcm2niix` on PATH (`pip install dcm2niix` puts its static build there).
    public static func find() -> NIfTIConverter? {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["DEPLOYCTL_DCM2NIIX"], !path.isEmpty { return NIfTIConverter(executable: path) }
        for directory in (environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(directory)/dcm2niix"
            if FileManager.default.isExecutableFile(atPath: candidate) { return NIfTIConverter(executable: candidate) }
        }
        return nil
    }

    /// dcm2niix's version, such as `v1.0.20260724`.
    public func version() throws(StagingError) -> String {
        let output = try run(["--version"], allowFailure: true)
        guard let word = output.split(whereSeparator: \.isWhitespace).last(where: { $0.hasPrefix("v1.") }) else {
            throw StagingError(.tool, "\(executable) --version did not print a version")
        }
        return String(word)
    }

    /// Converts one series' DICOM directory into `output` as `NAME.nii.gz` (+ `.json`; dcm2niix adds suffixes
    /// such as `_Tilt_1` when it writes more than one file); returns the file names written.
    public func convert(dicom: String, output: String, name: String) throws(StagingError) -> [String] {
        do { try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true) } catch {
            throw StagingError(.volume, "\(output): cannot create (\(error.localizedDescription))")
        }
        // -ba n: the input is anonymised already, and dcm2niix's own anonymisation would drop the patient
        // characteristics the profile retains (age, sex, size, weight: the bone-density report shows them); the
        // sidecar is scrubbed below instead. -w 1: overwrite a rerun's files.
        _ = try run(["-z", "y", "-b", "y", "-ba", "n", "-w", "1", "-v", "0", "-f", name, "-o", output, dicom])
        let written = ((try? FileManager.default.contentsOfDirectory(atPath: output)) ?? []).sorted()
        for file in written where file.hasSuffix(".json") { try Self.scrubSidecar(output + "/" + file) }
        return written
    }

    /// Sidecar keys that name a place, a device or a person, or hold free text, removed from every sidecar.
    static let identifyingKeys: Set<String> = [
        "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "StationName", "DeviceSerialNumber",
        "StudyDescription", "SeriesDescription", "ProtocolName", "ImageComments", "PatientName", "PatientID",
        "PatientBirthDate", "AccessionNumber", "StudyID", "ReferringPhysicianName", "PerformingPhysicianName",
        "OperatorsName", "ProcedureStepDescription", "RequestedProcedureDescription", "PatientComments",
    ]

    /// Removes the identifying keys and rewrites the sidecar with sorted keys (the same bytes on every run).
    static func scrubSidecar(_ path: String) throws(StagingError) {
        guard let data = FileManager.default.contents(atPath: path),
            var object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { throw StagingError(.tool, "\(path): dcm2niix wrote a sidecar that is not a JSON object") }
        for key in identifyingKeys { object[key] = nil }
        guard
            let clean = try? JSONSerialization.data(
                withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        else { throw StagingError(.tool, "\(path): cannot rewrite the sidecar") }
        try Volume.atomicWrite(clean + Data("\n".utf8), to: path)
    }

    func run(_ arguments: [String], allowFailure: Bool = false) throws(StagingError) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch {
            throw StagingError(.tool, "\(executable) cannot be started (\(error.localizedDescription))")
        }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let output = String(decoding: data, as: UTF8.self)
        if process.terminationStatus != 0 && !allowFailure {
            let tail = output.split(separator: "\n").suffix(5).joined(separator: "\n")
            throw StagingError(.tool, "dcm2niix failed (exit \(process.terminationStatus)):\n\(tail)")
        }
        return output
    }
}
