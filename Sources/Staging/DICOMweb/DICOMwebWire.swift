import Foundation

/// A QIDO-RS study search: each key given narrows it; none given finds every study.
public struct StudyQuery: Equatable, Sendable {
    /// PatientID (0010,0020).
    public var patientID: String?
    /// AccessionNumber (0008,0050).
    public var accessionNumber: String?
    /// First day of the StudyDate (0008,0020) range, `YYYYMMDD`, inclusive; nil: no lower bound.
    public var studyDateFrom: String?
    /// Last day of the range, `YYYYMMDD`, inclusive; nil: no upper bound.
    public var studyDateTo: String?
    /// A modality the study must have a series of: ModalitiesInStudy (0008,0061).
    public var modality: String?
    /// A body part a series of the study must have examined: BodyPartExamined (0018,0015). It is a series-level
    /// attribute (General Series module), not a study-level QIDO-RS key — servers ignore it at study level or find
    /// nothing — so the client searches the series of each study the other keys find and keeps the studies with a
    /// series of this body part (and of `modality`, when given, in the same series).
    public var bodyPart: String?
    /// StudyInstanceUID (0020,000D).
    public var studyInstanceUID: String?

    public init(
        patientID: String? = nil, accessionNumber: String? = nil, studyDateFrom: String? = nil,
        studyDateTo: String? = nil, modality: String? = nil, bodyPart: String? = nil, studyInstanceUID: String? = nil
    ) {
        self.patientID = patientID
        self.accessionNumber = accessionNumber
        self.studyDateFrom = studyDateFrom
        self.studyDateTo = studyDateTo
        self.modality = modality
        self.bodyPart = bodyPart
        self.studyInstanceUID = studyInstanceUID
    }

    /// The study-level query parameters (keyword, value), in a fixed order; the dates as a `YYYYMMDD-YYYYMMDD` range.
    func parameters() throws -> [(String, String)] {
        for date in [studyDateFrom, studyDateTo].compactMap({ $0 }) {
            guard date.count == 8, date.allSatisfy({ $0.isASCII && $0.isNumber }) else {
                throw StagingError(.usage, "a study date is YYYYMMDD, such as 20240131")
            }
        }
        if let from = studyDateFrom, let to = studyDateTo, from > to {
            throw StagingError(.usage, "the study date range ends before it starts")
        }
        if let uid = studyInstanceUID { try DICOMwebClient.checkUID(uid) }
        var result: [(String, String)] = []
        if let patientID { result.append(("PatientID", patientID)) }
        if let accessionNumber { result.append(("AccessionNumber", accessionNumber)) }
        if studyDateFrom != nil || studyDateTo != nil {
            result.append(("StudyDate", "\(studyDateFrom ?? "")-\(studyDateTo ?? "")"))
        }
        if let modality { result.append(("ModalitiesInStudy", modality)) }
        if let studyInstanceUID { result.append(("StudyInstanceUID", studyInstanceUID)) }
        return result
    }
}

/// A study a QIDO-RS search found.
public struct StudyMatch: Equatable, Sendable {
    public var studyInstanceUID: String
    public var patientID: String?
    public var accessionNumber: String?
    /// `YYYYMMDD`.
    public var studyDate: String?
    /// NumberOfStudyRelatedInstances (0020,1208), when the server gives it.
    public var numberOfInstances: Int?

    public init(
        studyInstanceUID: String, patientID: String? = nil, accessionNumber: String? = nil, studyDate: String? = nil,
        numberOfInstances: Int? = nil
    ) {
        self.studyInstanceUID = studyInstanceUID
        self.patientID = patientID
        self.accessionNumber = accessionNumber
        self.studyDate = studyDate
        self.numberOfInstances = numberOfInstances
    }
}

/// A series of a study a QIDO-RS search found.
public struct SeriesMatch: Equatable, Sendable {
    public var seriesInstanceUID: String
    public var modality: String?
    public var bodyPartExamined: String?
    /// NumberOfSeriesRelatedInstances (0020,1209), when the server gives it.
    public var numberOfInstances: Int?

    public init(
        seriesInstanceUID: String, modality: String? = nil, bodyPartExamined: String? = nil,
        numberOfInstances: Int? = nil
    ) {
        self.seriesInstanceUID = seriesInstanceUID
        self.modality = modality
        self.bodyPartExamined = bodyPartExamined
        self.numberOfInstances = numberOfInstances
    }
}

/// The DICOM JSON model (PS3.18 §F.2) of `application/dicom+json` answers: an array of objects, each keyed by tags
/// (`"0020000D"`) whose values are `{"vr": "UI", "Value": [...]}`.
struct DICOMJSON {
    static let studyInstanceUID = "0020000D"
    static let seriesInstanceUID = "0020000E"
    static let patientID = "00100020"
    static let accessionNumber = "00080050"
    static let studyDate = "00080020"
    static let modality = "00080060"
    static let bodyPartExamined = "00180015"
    static let numberOfStudyRelatedInstances = "00201208"
    static let numberOfSeriesRelatedInstances = "00201209"

    let attributes: [String: Any]

    /// The datasets of an answer; an empty body (as some servers send with 204) is none.
    static func datasets(_ data: Data) throws -> [DICOMJSON] {
        if data.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 10 || $0 == 13 }) { return [] }
        guard let array = try? JSONSerialization.jsonObject(with: data) as? [Any] else {
            throw StagingError(.server, "the answer is not a DICOM JSON array")
        }
        return array.compactMap { ($0 as? [String: Any]).map(DICOMJSON.init) }
    }

    /// The first value of `tag` as text: strings as they are, numbers written out, person names by their
    /// alphabetic form; nil when absent or empty.
    func string(_ tag: String) -> String? {
        guard let element = attributes[tag] as? [String: Any], let values = element["Value"] as? [Any],
            let first = values.first
        else { return nil }
        switch first {
        case let text as String: return text.isEmpty ? nil : text
        case let number as Int: return String(number)
        case let number as Double: return String(number)
        case let name as [String: Any]: return name["Alphabetic"] as? String
        default: return nil
        }
    }

    /// The first value of `tag` as an integer (IS comes as a JSON number, or from some servers as a string).
    func int(_ tag: String) -> Int? {
        guard let element = attributes[tag] as? [String: Any], let values = element["Value"] as? [Any],
            let first = values.first
        else { return nil }
        if let number = first as? Int { return number }
        if let number = first as? Double, number == number.rounded() { return Int(number) }
        if let text = first as? String { return Int(text.trimmingCharacters(in: .whitespaces)) }
        return nil
    }

    var study: StudyMatch? {
        guard let uid = string(Self.studyInstanceUID) else { return nil }
        return StudyMatch(
            studyInstanceUID: uid, patientID: string(Self.patientID), accessionNumber: string(Self.accessionNumber),
            studyDate: string(Self.studyDate), numberOfInstances: int(Self.numberOfStudyRelatedInstances))
    }

    var series: SeriesMatch? {
        guard let uid = string(Self.seriesInstanceUID) else { return nil }
        return SeriesMatch(
            seriesInstanceUID: uid, modality: string(Self.modality), bodyPartExamined: string(Self.bodyPartExamined),
            numberOfInstances: int(Self.numberOfSeriesRelatedInstances))
    }
}
