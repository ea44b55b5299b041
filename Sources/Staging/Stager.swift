import CArchiveSupport
import Foundation

/// Stages series into a volume, one series at a time: fetch, anonymise every instance (or quarantine it), convert
/// to NIfTI, checksum, move the series directory into place in one rename, and record it in the manifest. A run
/// that stops anywhere and is started again skips the series the manifest lists and redoes the others, so it ends
/// with the same manifest as a run that never stopped.
public struct Stager: Sendable {
    public let volume: Volume
    public let anonymiser: Anonymiser
    public let converter: NIfTIConverter?
    /// Where quarantined originals are copied for review (nil: they are only counted).
    public var quarantineDirectory: String?

    public init(volume: Volume, anonymiser: Anonymiser, converter: NIfTIConverter?, quarantineDirectory: String? = nil)
    {
        self.volume = volume
        self.anonymiser = anonymiser
        self.converter = converter
        self.quarantineDirectory = quarantineDirectory
    }

    /// Progress after each series: how far, and what has been staged so far in this run.
    public struct Progress: Sendable {
        public var seriesDone: Int
        public var seriesTotal: Int
        /// Studies of which at least one series is done, out of the studies selected.
        public var studiesStarted: Int
        public var studiesTotal: Int
        public var instances: Int
        public var bytes: Int64
        public var seconds: Double
        /// The staged series' pseudonymous UID (never an original identifier).
        public var series: String
        public var skipped: Bool
    }

    public struct Report: Sendable, Codable, Equatable {
        public var seriesStaged = 0
        public var seriesSkipped = 0
        public var instances = 0
        public var quarantined: [Quarantined] = []
        public var bytes: Int64 = 0
        public var seconds = 0.0

        public struct Quarantined: Sendable, Codable, Equatable {
            /// The pseudonymous series UID it belonged to.
            public var series: String
            public var reason: String
        }
    }

    public func stage(
        from source: some SeriesSource, selection: Selection, progress: (@Sendable (Progress) -> Void)? = nil
    ) async throws -> Report {
        let start = Date()
        let info = try volume.info()
        guard info.state == .open else {
            throw StagingError(.volume, "volume '\(info.name)' is sealed; stage into a new volume")
        }
        var manifest = try volume.manifest()
        volume.removeLeftovers()
        let fingerprint = Crypto.hex(Array(anonymiser.pseudonyms.mac("fingerprint", "").prefix(8)))
        if !manifest.secretFingerprint.isEmpty && manifest.secretFingerprint != fingerprint {
            throw StagingError(
                .usage, "volume '\(info.name)' was staged with another project secret; use that secret or a new volume")
        }
        if manifest.series.isEmpty {
            manifest.profile.options = anonymiser.options
        } else if manifest.profile.options != anonymiser.options {
            throw StagingError(.usage, "volume '\(info.name)' was staged with other profile options")
        }
        manifest.secretFingerprint = fingerprint
        manifest.tools["deployctl-staging"] = "1"
        if let converter { manifest.tools["dcm2niix"] = try converter.version() }
        let list = try await source.list(selection)
        let manifestEncoder = ManifestEncoder()
        var report = Report()
        let studiesTotal = Set(list.map(\.study)).count
        var studiesStarted = Set<String>()
        for (index, series) in list.enumerated() {
            try Task.checkCancellation()
            let newSeries = anonymiser.pseudonyms.uid(series.series)
            var skipped = true
            if !manifest.series.contains(where: { $0.series == newSeries }) {
                let entry = try await stageOne(series, from: source, newSeries: newSeries, report: &report)
                manifest.record(entry)
                try volume.write(manifest, encoder: manifestEncoder)
                report.seriesStaged += 1
                report.instances += entry.instances
                report.bytes += entry.files.reduce(0) { $0 + $1.size }
                skipped = false
            } else {
                report.seriesSkipped += 1
            }
            studiesStarted.insert(series.study)
            progress?(
                Progress(
                    seriesDone: index + 1, seriesTotal: list.count,
                    studiesStarted: studiesStarted.count, studiesTotal: studiesTotal, instances: report.instances,
                    bytes: report.bytes,
                    seconds: Date().timeIntervalSince(start), series: newSeries, skipped: skipped))
        }
        if list.isEmpty { try volume.write(manifest, encoder: manifestEncoder) }
        try? FileManager.default.removeItem(atPath: volume.workPath)
        report.seconds = Date().timeIntervalSince(start)
        return report
    }

    func stageOne(
        _ series: SourceSeries, from source: some SeriesSource, newSeries: String, report: inout Report
    ) async throws -> Manifest.Series {
        let work = volume.workPath + "/" + newSeries
        try? FileManager.default.removeItem(atPath: work)
        let out = work + "/series"
        try FileManager.default.createDirectory(atPath: out + "/dicom", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: work + "/download", withIntermediateDirectories: true)
        let files = try await source.fetch(series, into: work + "/download")
        var placement: Anonymiser.Placement?
        var modality = ""
        var instances = 0
        var quarantined = 0
        var written: [String: (hex: String, size: Int64)] = [:]
        // Instances are independent: anonymised on every core, at most `width` in flight, results in file order.
        let width = max(1, ProcessInfo.processInfo.activeProcessorCount)
        var results = [InstanceResult?](repeating: nil, count: files.count)
        try await withThrowingTaskGroup(of: (Int, InstanceResult).self) { group in
            var next = 0
            for _ in 0..<min(width, files.count) {
                let index = next
                group.addTask { (index, try self.processInstance(files[index], into: out + "/dicom")) }
                next += 1
            }
            while let (index, result) = try await group.next() {
                results[index] = result
                if next < files.count {
                    let index = next
                    group.addTask { (index, try self.processInstance(files[index], into: out + "/dicom")) }
                    next += 1
                }
            }
        }
        for (index, result) in results.enumerated() {
            switch result {
            case .quarantined(let reason)?:
                quarantined += 1
                report.quarantined.append(.init(series: newSeries, reason: reason))
                if let quarantineDirectory {
                    try FileManager.default.createDirectory(
                        atPath: quarantineDirectory, withIntermediateDirectories: true)
                    let target = "\(quarantineDirectory)/\(newSeries)-\(index + 1).dcm"
                    try? FileManager.default.removeItem(atPath: target)
                    try FileManager.default.copyItem(atPath: files[index], toPath: target)
                }
            case .anonymised(let placed, let instanceModality, let digest)?:
                guard placement == nil || placement?.series == placed.series else {
                    throw StagingError(
                        .malformed, "\(files[index]): an instance of another series was fetched with it")
                }
                guard written["\(placed.instance).dcm"] == nil else {
                    throw StagingError(.malformed, "\(files[index]): the same instance twice in one series")
                }
                placement = placed
                modality = instanceModality
                written["\(placed.instance).dcm"] = digest
                instances += 1
            case nil:
                break
            }
        }
        guard let placement else {
            // Every instance quarantined: recorded so a rerun does not fetch it again; nothing to move in.
            try? FileManager.default.removeItem(atPath: work)
            return Manifest.Series(
                patient: anonymiser.pseudonyms.patient(series.patientID),
                study: anonymiser.pseudonyms.uid(series.study),
                series: newSeries, modality: modality, instances: 0, quarantined: quarantined, files: [])
        }
        if let converter {
            _ = try converter.convert(dicom: out + "/dicom", output: out + "/nifti", name: placement.patient + "_%s")
        }
        let relative = "\(placement.patient)/\(placement.study)/\(newSeries)"
        var entries: [Manifest.File] = []
        for sub in ["dicom", "nifti"] {
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: "\(out)/\(sub)")) ?? []).sorted()
            for name in names {
                let sum = try written[name] ?? Crypto.sha256(file: "\(out)/\(sub)/\(name)")
                entries.append(Manifest.File(path: "\(relative)/\(sub)/\(name)", size: sum.size, sha256: sum.hex))
            }
        }
        // The series' files reach the disk before the rename makes them visible (one syncfs, not one fsync each).
        Self.flush(out)
        let parent = "\(volume.path)/\(placement.patient)/\(placement.study)"
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        let target = "\(volume.path)/\(relative)"
        // A directory left by a run that stopped between this rename and the manifest write is redone.
        try? FileManager.default.removeItem(atPath: target)
        guard rename(out, target) == 0 else {
            throw StagingError(.volume, "\(target): cannot move the staged series into place (errno \(errno))")
        }
        try? FileManager.default.removeItem(atPath: work)
        return Manifest.Series(
            patient: placement.patient, study: placement.study, series: newSeries, modality: modality,
            instances: instances, quarantined: quarantined, files: entries)
    }

    enum InstanceResult: Sendable {
        case anonymised(Anonymiser.Placement, modality: String, digest: (hex: String, size: Int64))
        case quarantined(String)
    }

    /// Reads, anonymises and writes one instance (named by its new SOP instance UID), checksummed from memory.
    func processInstance(_ path: String, into directory: String) throws -> InstanceResult {
        let file = try Part10.read(try Self.readFile(path), path: path)
        switch try anonymiser.anonymise(file) {
        case .quarantined(let reason):
            return .quarantined(reason)
        case .anonymised(let anonymised, let placed):
            let segments = Part10.segments(anonymised)
            try Self.writeFile("\(directory)/\(placed.instance).dcm", segments)
            return .anonymised(
                placed, modality: anonymised.dataset.string(.modality) ?? "",
                digest: (Crypto.hex(Crypto.sha256(segments: segments)), Int64(segments.reduce(0) { $0 + $1.count })))
        }
    }

    /// A whole file into one buffer, with read(2): no intermediate Data.
    static func readFile(_ path: String) throws(StagingError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw StagingError(.malformed, "\(path): cannot be read (errno \(errno))") }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw StagingError(.malformed, "\(path): cannot be read") }
        let size = Int(status.st_size)
        var failed = false
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            count = 0
            while count < size {
                let got = read(descriptor, buffer.baseAddress! + count, size - count)
                if got <= 0 {
                    failed = got < 0
                    break
                }
                count += got
            }
        }
        if failed { throw StagingError(.malformed, "\(path): cannot be read (errno \(errno))") }
        return bytes
    }

    /// Writes a new file with plain write(2) calls, segment by segment (no per-file fsync: `flush` syncs a whole
    /// series at once).
    static func writeFile(_ path: String, _ segments: [[UInt8]]) throws(StagingError) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw StagingError(.volume, "\(path): cannot be created (errno \(errno))") }
        defer { close(descriptor) }
        for bytes in segments {
            var offset = 0
            while offset < bytes.count {
                let count = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + offset, bytes.count - offset) }
                guard count > 0 else { throw StagingError(.volume, "\(path): cannot be written (errno \(errno))") }
                offset += count
            }
        }
    }

    /// Flushes the file system holding `path` to disk.
    static func flush(_ path: String) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        #if os(Linux)
            _ = dctl_syncfs(descriptor)
        #else
            _ = fsync(descriptor)
        #endif
    }
}
