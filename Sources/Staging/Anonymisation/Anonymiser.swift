/// Applies the confidentiality profile to one instance: keyed pseudonyms and UIDs, dates shifted by one offset per
/// patient, private attributes removed, the de-identification attributes set; or quarantines an instance whose
/// pixels may show identifying text (burned-in annotation not NO, secondary captures and screenshots).
public struct Anonymiser: Sendable {
    public var options: ProfileOptions
    let pseudonyms: Pseudonyms

    public init(pseudonyms: Pseudonyms, options: ProfileOptions = ProfileOptions()) {
        self.pseudonyms = pseudonyms
        self.options = options
    }

    /// Where an anonymised instance belongs: its patient pseudonym and new UIDs.
    public struct Placement: Sendable, Equatable, Hashable {
        public var patient: String
        public var study: String
        public var series: String
        public var instance: String
    }

    public enum Outcome: Sendable, Equatable {
        case anonymised(DICOMFile, Placement)
        /// Not staged; the reason names the rule, never a value from the instance.
        case quarantined(reason: String)
    }

    /// SOP classes whose pixels are captured screens or documents (secondary capture, encapsulated documents).
    static let capturePrefixes = ["1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.104"]

    public func anonymise(_ file: DICOMFile) throws(StagingError) -> Outcome {
        let source = file.dataset
        if let burned = source.string(.burnedInAnnotation), burned.uppercased() != "NO" {
            return .quarantined(reason: "BurnedInAnnotation is \(burned == "YES" ? "YES" : "not NO")")
        }
        let sopClass = source.string(.sopClassUID) ?? ""
        if Self.capturePrefixes.contains(where: { sopClass.hasPrefix($0) }) {
            return .quarantined(reason: "secondary capture or document (SOP class \(sopClass))")
        }
        if source.elements[.conversionType] != nil {
            return .quarantined(reason: "a converted image (ConversionType present)")
        }
        guard let patientID = source.string(.patientID), !patientID.isEmpty,
            let study = source.string(.studyInstanceUID), let series = source.string(.seriesInstanceUID),
            let instance = source.string(.sopInstanceUID)
        else {
            throw StagingError(
                .malformed, "the instance lacks PatientID, StudyInstanceUID, SeriesInstanceUID or SOPInstanceUID")
        }
        let context = Context(
            pseudonym: pseudonyms.patient(patientID),
            shift: options.modifiedDates ? pseudonyms.dayShift(patientID) : 0)
        var out = apply(source, context)
        out.set(.patientID, context.pseudonym)
        out.set(.patientName, context.pseudonym)
        out.set(.patientIdentityRemoved, "YES")
        out.set(.deidentificationMethod, options.method)
        out[.deidentificationMethodCodeSequence] = Element(
            .deidentificationMethodCodeSequence, .SQ,
            .sequence(
                options.codes.map { code in
                    var item = DataSet()
                    item.set(.codeValue, code.value)
                    item.set(.codingSchemeDesignator, "DCM")
                    item.set(.codeMeaning, code.meaning)
                    return item
                }))
        out.set(.longitudinalTemporalInformationModified, options.modifiedDates ? "MODIFIED" : "REMOVED")
        let placement = Placement(
            patient: context.pseudonym, study: pseudonyms.uid(study), series: pseudonyms.uid(series),
            instance: pseudonyms.uid(instance))
        return .anonymised(DICOMFile(meta: file.meta, dataset: out), placement)
    }

    struct Context {
        var pseudonym: String
        var shift: Int
    }

    func apply(_ set: DataSet, _ context: Context) -> DataSet {
        var out = DataSet()
        out.elements.reserveCapacity(set.elements.count + 6)
        for element in set.elements.values where !element.tag.isPrivate && !element.tag.isGroupLength {
            var element = element
            switch ConfidentialityProfile.action(element.tag, vr: element.vr, options: options) {
            case .remove: continue
            case .keep: break
            case .empty: element.value = element.vr == .SQ ? .sequence([]) : .bytes([])
            case .dummy: element.value = dummy(element.vr)
            case .uid: element.value = .bytes(Array(remapUIDs(element).utf8))
            case .shift: element.value = .bytes(Array(shift(element, by: context.shift).utf8))
            }
            if case .sequence(let items) = element.value {
                element.value = .sequence(items.map { apply($0, context) })
            }
            out[element.tag] = element
        }
        return out
    }

    func remapUIDs(_ element: Element) -> String {
        element.strings.map { $0.isEmpty ? "" : pseudonyms.uid($0) }.joined(separator: "\\")
    }

    func dummy(_ vr: VR) -> Element.Value {
        switch vr {
        case .SQ: .sequence([])
        case .DA: .bytes(Array("19000101".utf8))
        case .TM: .bytes(Array("000000".utf8))
        case .DT: .bytes(Array("19000101000000".utf8))
        case .AS: .bytes(Array("000Y".utf8))
        case .DS, .IS: .bytes(Array("0".utf8))
        case .UI: .bytes(Array(pseudonyms.uid("dummy").utf8))
        case .PN, .LO, .SH, .LT, .ST, .UT, .UC, .CS, .AE: .bytes(Array("ANONYMIZED".utf8))
        case .US, .SS, .UL, .SL, .FL, .FD, .AT, .SV, .UV: .bytes([UInt8](repeating: 0, count: max(vr.wordSize, 2)))
        default: .bytes([])
        }
    }

    /// Shifts every DA value (or the date part of every DT value) by `days`; a value that is not a date is
    /// emptied rather than kept.
    func shift(_ element: Element, by days: Int) -> String {
        element.strings.map { value -> String in
            guard value.count >= 8, let date = CivilDate(String(value.prefix(8))) else { return "" }
            return date.adding(days: days).text + value.dropFirst(8)
        }.joined(separator: "\\")
    }
}

/// A proleptic Gregorian date, for shifting without time zones.
struct CivilDate: Equatable {
    var year: Int
    var month: Int
    var day: Int

    init?(_ text: String) {
        guard text.count == 8, text.allSatisfy(\.isNumber), let value = Int(text) else { return nil }
        year = value / 10000
        month = value / 100 % 100
        day = value % 100
        guard (1...12).contains(month), (1...31).contains(day) else { return nil }
    }

    init(daysSinceEpoch: Int) {
        // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm, 400-year eras from March 1, year 0).
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let marchMonth = (5 * dayOfYear + 2) / 153
        day = dayOfYear - (153 * marchMonth + 2) / 5 + 1
        month = marchMonth < 10 ? marchMonth + 3 : marchMonth - 9
        year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
    }

    var daysSinceEpoch: Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    func adding(days: Int) -> CivilDate { CivilDate(daysSinceEpoch: daysSinceEpoch + days) }

    var text: String {
        func pad(_ value: Int, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return pad(year, 4) + pad(month, 2) + pad(day, 2)
    }
}
