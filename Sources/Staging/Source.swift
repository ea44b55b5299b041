import Foundation
import Yams

/// One series as the source holds it (original identifiers: they never leave the staging process).
public struct SourceSeries: Sendable, Equatable {
    public var patientID: String
    public var study: String
    public var series: String
    /// Local files of the series (a directory source); nil when it has to be fetched.
    public var files: [String]?

    public init(patientID: String, study: String, series: String, files: [String]? = nil) {
        self.patientID = patientID
        self.study = study
        self.series = series
        self.files = files
    }
}

/// Where staging reads series from: a local directory or a PACS over DICOMweb.
public protocol SeriesSource: Sendable {
    /// The series the selection covers.
    func list(_ selection: Selection) async throws -> [SourceSeries]
    /// The series' files, fetched into `directory` when they are not local.
    func fetch(_ series: SourceSeries, into directory: String) async throws -> [String]
}

/// What a data manager asks for: patients, accession numbers, a study date range, a modality, a body part. Given on the
/// command line or as a selection file (YAML, or CSV with a PatientID or AccessionNumber column) so a request can
/// be repeated exactly.
public struct Selection: Sendable, Equatable {
    public var patientIDs: [String] = []
    public var accessionNumbers: [String] = []
    /// `YYYYMMDD-YYYYMMDD` (either side may be empty).
    public var studyDates: String?
    public var modality: String?
    /// BodyPartExamined of the series to stage, such as ABDOMEN (a series-level attribute).
    public var bodyPart: String?

    public init(
        patientIDs: [String] = [], accessionNumbers: [String] = [], studyDates: String? = nil, modality: String? = nil
    ) {
        self.patientIDs = patientIDs
        self.accessionNumbers = accessionNumbers
        self.studyDates = studyDates
        self.modality = modality
    }

    public var isEmpty: Bool { patientIDs.isEmpty && accessionNumbers.isEmpty }

    /// Reads a selection file. YAML keys: `patients`, `accession_numbers`, `study_dates`, `modality`, `body_part`;
    /// CSV: a header
    /// row naming a `PatientID` and/or `AccessionNumber` column.
    public static func load(_ path: String) throws(StagingError) -> Selection {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StagingError(.usage, "\(path): the selection file cannot be read")
        }
        let text = String(decoding: data, as: UTF8.self)
        if path.lowercased().hasSuffix(".csv") { return try csv(text, path: path) }
        let node: Any?
        do { node = try Yams.load(yaml: text) } catch {
            throw StagingError(.usage, "\(path): not YAML (\(error))")
        }
        guard let map = node as? [String: Any] else {
            throw StagingError(.usage, "\(path): a selection is a mapping with patients, accession_numbers, …")
        }
        let known: Set<String> = ["patients", "accession_numbers", "study_dates", "modality", "body_part"]
        if let unknown = map.keys.sorted().first(where: { !known.contains($0) }) {
            throw StagingError(
                .usage, "\(path): unknown key '\(unknown)' (known: \(known.sorted().joined(separator: ", ")))")
        }
        func strings(_ key: String) throws(StagingError) -> [String] {
            guard let value = map[key] else { return [] }
            if let list = value as? [Any] { return list.map { "\($0)" } }
            throw StagingError(.usage, "\(path): '\(key)' is a list")
        }
        var selection = Selection(
            patientIDs: try strings("patients"), accessionNumbers: try strings("accession_numbers"))
        selection.studyDates = map["study_dates"].map { "\($0)" }
        selection.modality = map["modality"].map { "\($0)" }
        selection.bodyPart = map["body_part"].map { "\($0)" }
        guard !selection.isEmpty else {
            throw StagingError(.usage, "\(path): the selection names no patients and no accession numbers")
        }
        return selection
    }

    static func csv(_ text: String, path: String) throws(StagingError) -> Selection {
        let rows = text.split(whereSeparator: \.isNewline).map {
            $0.split(separator: ",", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: CharacterSet(charactersIn: " \"\r"))
            }
        }
        guard let header = rows.first?.map({ $0.lowercased() }) else {
            throw StagingError(.usage, "\(path): the CSV file is empty")
        }
        let patient = header.firstIndex(of: "patientid")
        let accession = header.firstIndex(of: "accessionnumber")
        guard patient != nil || accession != nil else {
            throw StagingError(.usage, "\(path):1: the header names neither a PatientID nor an AccessionNumber column")
        }
        var selection = Selection()
        for row in rows.dropFirst() {
            if let patient, patient < row.count, !row[patient].isEmpty { selection.patientIDs.append(row[patient]) }
            if let accession, accession < row.count, !row[accession].isEmpty {
                selection.accessionNumbers.append(row[accession])
            }
        }
        return selection
    }

    /// Whether an instance's header matches (the directory source filters locally).
    func matches(_ set: DataSet) -> Bool {
        let patientOK = patientIDs.isEmpty || patientIDs.contains(set.string(.patientID) ?? "")
        let accessionOK = accessionNumbers.isEmpty || accessionNumbers.contains(set.string(.accessionNumber) ?? "")
        guard patientOK && accessionOK else { return false }
        if let modality, let own = set.string(.modality), own != modality { return false }
        if let bodyPart, (set.string(.bodyPartExamined) ?? "").uppercased() != bodyPart.uppercased() { return false }
        if let studyDates {
            let bounds = studyDates.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
            let date = set.string(.studyDate) ?? ""
            if bounds.count == 2 {
                if !bounds[0].isEmpty && date < bounds[0] { return false }
                if !bounds[1].isEmpty && date > bounds[1] { return false }
            } else if date != studyDates {
                return false
            }
        }
        return true
    }
}

/// DICOM files under a directory (any names, any depth; files that are not DICOM are skipped and counted).
public struct DirectorySource: SeriesSource {
    public let root: String

    public init(root: String) { self.root = root }

    public func list(_ selection: Selection) async throws -> [SourceSeries] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw StagingError(.usage, "\(root) is not a directory")
        }
        var bySeries: [String: SourceSeries] = [:]
        let walker = FileManager.default.enumerator(atPath: root)
        var paths: [String] = []
        while let relative = walker?.nextObject() as? String { paths.append(root + "/" + relative) }
        for path in paths.sorted() {
            // Everything the listing and the selection look at comes before (0020,000F).
            guard !Volume.isDirectory(path), let file = try? Part10.readHeader(path: path, stop: Tag(0x0020, 0x000F))
            else { continue }
            let set = file.dataset
            guard selection.isEmpty || selection.matches(set),
                let patient = set.string(.patientID), let study = set.string(.studyInstanceUID),
                let series = set.string(.seriesInstanceUID)
            else { continue }
            bySeries[series, default: SourceSeries(patientID: patient, study: study, series: series, files: [])]
                .files?.append(path)
        }
        return bySeries.keys.sorted().compactMap { bySeries[$0] }
    }

    public func fetch(_ series: SourceSeries, into directory: String) async throws -> [String] {
        series.files ?? []
    }
}
