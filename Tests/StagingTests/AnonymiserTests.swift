import Foundation
import Testing

@testable import Staging

/// Every attribute in a data set, sequences walked (tag paths for messages).
func allElements(_ set: DataSet, path: String = "") -> [(String, Element)] {
    set.sorted.flatMap { element -> [(String, Element)] in
        let here = path + element.tag.description
        if case .sequence(let items) = element.value {
            return [(here, element)] + items.flatMap { allElements($0, path: here + ">") }
        }
        return [(here, element)]
    }
}

/// Whether `needle` occurs in `haystack` as bytes.
func contains(_ haystack: [UInt8], _ needle: String) -> Bool {
    let pattern = Array(needle.utf8)
    guard !pattern.isEmpty, haystack.count >= pattern.count else { return false }
    let first = pattern[0]
    var index = 0
    while index <= haystack.count - pattern.count {
        if haystack[index] == first && haystack[index..<index + pattern.count].elementsEqual(pattern) { return true }
        index += 1
    }
    return false
}

@Suite(
    "PS3.15 basic profile anonymisation",
    .enabled(if: Synthetic.available, "needs python3 with pydicom (`make deps`)"))
struct AnonymiserTests {
    let anonymiser = Anonymiser(pseudonyms: try! Pseudonyms(secret: testSecret))

    func anonymiseAll(_ synthetic: Synthetic, patient: Int) throws -> [(
        source: DICOMFile, out: DICOMFile, Anonymiser.Placement
    )] {
        try synthetic.truth.patients[patient].series.flatMap(\.files).map { name in
            let source = try synthetic.read(name)
            guard case .anonymised(let out, let placement) = try anonymiser.anonymise(source) else {
                throw StagingError(.malformed, "\(name) was quarantined")
            }
            // Through bytes and back, as the volume will hold it.
            return (source, try Part10.read(Part10.write(out), path: name), placement)
        }
    }

    @Test("the checklist: identifiers gone, private tags gone, UIDs consistent, characteristics and pixels kept")
    func checklist() throws {
        let synthetic = try Synthetic(patients: 2)
        defer { synthetic.remove() }
        let truth = synthetic.truth.patients[0]
        let results = try anonymiseAll(synthetic, patient: 0)
        #expect(results.count == truth.series.reduce(0) { $0 + $1.instances })
        let pseudonym = try Pseudonyms(secret: testSecret).patient(truth.PatientID)
        var instanceUIDs = Set<String>()
        for (source, out, placement) in results {
            let bytes = Part10.write(out)
            for planted in truth.planted {
                #expect(!contains(bytes, planted), "planted '\(planted)' survived")
            }
            let set = out.dataset
            #expect(!allElements(set).contains { $0.1.tag.isPrivate }, "a private attribute survived")
            #expect(set.string(.patientID) == pseudonym && set.string(.patientName) == pseudonym)
            #expect(placement.patient == pseudonym)
            #expect(set.string(.studyInstanceUID) == placement.study && placement.study.hasPrefix("2.25."))
            #expect(set.string(.seriesInstanceUID) == placement.series)
            #expect(set.string(.sopInstanceUID) == placement.instance)
            #expect(out.meta.string(.mediaStorageSOPInstanceUID) == placement.instance)
            #expect(instanceUIDs.insert(placement.instance).inserted, "SOPInstanceUID repeated")
            // The de-identification attributes.
            #expect(set.string(.patientIdentityRemoved) == "YES")
            #expect(set.string(.deidentificationMethod)?.isEmpty == false)
            let codes = set.items(.deidentificationMethodCodeSequence).compactMap { $0.string(.codeValue) }
            #expect(codes == ["113100", "113108", "113107"])
            #expect(set.string(.longitudinalTemporalInformationModified) == "MODIFIED")
            // Characteristics kept (Retain Patient Characteristics), birth date gone, dates shifted per patient.
            #expect(set.string(.patientAge) == truth.PatientAge)
            #expect(set.string(.patientSex) == truth.PatientSex)
            #expect(Double(set.string(.patientWeight) ?? "") == truth.PatientWeight)
            #expect(Double(set.string(.patientSize) ?? "") == truth.PatientSize)
            #expect((set.string(.patientBirthDate) ?? "").isEmpty)
            let shift = try Pseudonyms(secret: testSecret).dayShift(truth.PatientID)
            #expect(set.string(.studyDate) == CivilDate(truth.StudyDate)!.adding(days: shift).text)
            // Institution, physicians, operators: removed or emptied.
            for tag in [
                Tag(0x0008, 0x0080), Tag(0x0008, 0x0081), Tag(0x0008, 0x0090), Tag(0x0008, 0x1050),
                Tag(0x0008, 0x1070), Tag(0x0008, 0x1010), Tag(0x0018, 0x1000), Tag(0x0008, 0x1040),
            ] {
                #expect((set.string(tag) ?? "").isEmpty || set.string(tag) == "ANONYMIZED", "\(tag)")
            }
            // Geometry, rescale and pixels bit-identical.
            for tag in [
                Tag(0x0020, 0x0032), Tag(0x0020, 0x0037), Tag(0x0028, 0x0030), Tag(0x0018, 0x0050),
                Tag(0x0028, 0x1052), Tag(0x0028, 0x1053), Tag(0x0028, 0x0010), Tag(0x0028, 0x0011), .pixelData,
            ] {
                #expect(set[tag]?.value == source.dataset[tag]?.value, "\(tag) changed")
            }
        }
        // One study, one UID per series, one frame of reference for both.
        #expect(Set(results.map(\.2.study)).count == 1)
        #expect(Set(results.map(\.2.series)).count == truth.series.count)
        let frames = Set(results.compactMap { $0.out.dataset.string(Tag(0x0020, 0x0052)) })
        #expect(frames.count == 1)
        for series in truth.series {
            let members = results.filter { $0.source.dataset.string(.seriesInstanceUID) == series.SeriesInstanceUID }
            #expect(members.count == series.instances)
            #expect(Set(members.map(\.2.series)).count == 1)
        }
    }

    @Test("the screenshot (secondary capture, burned-in annotation) is quarantined, not anonymised")
    func quarantine() throws {
        let synthetic = try Synthetic(patients: 1, slices: 3)
        defer { synthetic.remove() }
        let screenshot = try #require(synthetic.truth.patients[0].screenshot)
        guard case .quarantined(let reason) = try anonymiser.anonymise(try synthetic.read(screenshot.file)) else {
            Issue.record("the screenshot was anonymised")
            return
        }
        #expect(reason.contains("BurnedInAnnotation"))
        // Burned-in annotation alone is enough; and a secondary capture that claims NO is still quarantined.
        var file = try synthetic.read(screenshot.file)
        file.dataset.set(.burnedInAnnotation, "NO")
        guard case .quarantined = try anonymiser.anonymise(file) else {
            Issue.record("a secondary capture claiming no burned-in annotation was anonymised")
            return
        }
    }

    @Test("the same secret gives the same pseudonyms and UIDs in separate runs; another secret unrelated ones")
    func consistency() throws {
        let synthetic = try Synthetic(patients: 1, extras: false, slices: 3)
        defer { synthetic.remove() }
        let file = try synthetic.read(synthetic.truth.patients[0].series[0].files[0])
        func placement(_ secret: String) throws -> Anonymiser.Placement {
            let anonymiser = Anonymiser(pseudonyms: try Pseudonyms(secret: Array(secret.utf8)))
            guard case .anonymised(_, let placement) = try anonymiser.anonymise(file) else {
                throw StagingError(.tool, "")
            }
            return placement
        }
        let first = try placement("project one secret, 32 bytes....")
        let again = try placement("project one secret, 32 bytes....")
        let other = try placement("project two secret, 32 bytes....")
        #expect(first == again)
        #expect(first.patient != other.patient && first.study != other.study && first.series != other.series)
        #expect(first.instance.count <= 64 && first.instance.allSatisfy { $0.isNumber || $0 == "." })
        #expect(throws: StagingError.self) { try Pseudonyms(secret: Array("short".utf8)) }
    }

    @Test("without the options, dates are emptied and the characteristics go, as the basic profile says")
    func basicOnly() throws {
        let synthetic = try Synthetic(patients: 1, extras: false, slices: 3)
        defer { synthetic.remove() }
        let basic = Anonymiser(
            pseudonyms: try Pseudonyms(secret: testSecret),
            options: ProfileOptions(retainPatientCharacteristics: false, modifiedDates: false))
        guard
            case .anonymised(let out, _) = try basic.anonymise(
                try synthetic.read(synthetic.truth.patients[0].series[0].files[0]))
        else {
            Issue.record("quarantined")
            return
        }
        #expect((out.dataset.string(.studyDate) ?? "").isEmpty)
        #expect(out.dataset[.patientAge] == nil)
        #expect((out.dataset.string(.patientSex) ?? "").isEmpty)
        #expect(out.dataset.string(.longitudinalTemporalInformationModified) == "REMOVED")
        #expect(
            out.dataset.items(.deidentificationMethodCodeSequence).compactMap { $0.string(.codeValue) } == ["113100"])
    }

    @Test("date shifts cross month, leap-day and year boundaries")
    func dates() {
        #expect(CivilDate("20240301")!.adding(days: -1).text == "20240229")
        #expect(CivilDate("20230301")!.adding(days: -1).text == "20230228")
        #expect(CivilDate("20000101")!.adding(days: -1).text == "19991231")
        #expect(CivilDate("19700101")!.adding(days: -3653).text == "19600101")
        #expect(CivilDate("20241340") == nil)
    }
}
