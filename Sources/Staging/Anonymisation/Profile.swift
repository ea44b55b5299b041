/// The PS3.15 Annex E basic application level confidentiality profile (table E.1-1, carried as data in
/// ConfidentialityProfileTable.swift) and the options deployctl supports.
public struct ProfileOptions: Sendable, Equatable, Codable {
    /// Retain Patient Characteristics Option: age, sex, size, weight (bone density needs them). On by default.
    public var retainPatientCharacteristics = true
    /// Retain Longitudinal Temporal Information With Modified Dates Option: every date shifted by one offset per
    /// patient (times kept). On by default; off applies the basic profile (dates emptied or removed).
    public var modifiedDates = true

    public init(retainPatientCharacteristics: Bool = true, modifiedDates: Bool = true) {
        self.retainPatientCharacteristics = retainPatientCharacteristics
        self.modifiedDates = modifiedDates
    }

    /// The DeidentificationMethodCodeSequence codes (CID 7050) for the profile and these options.
    var codes: [(value: String, meaning: String)] {
        var codes = [("113100", "Basic Application Confidentiality Profile")]
        if retainPatientCharacteristics { codes.append(("113108", "Retain Patient Characteristics Option")) }
        if modifiedDates { codes.append(("113107", "Retain Longitudinal Temporal Information Modified Dates Option")) }
        return codes
    }

    var method: String {
        (["PS3.15 E.1 basic profile (deployctl)"]
            + (retainPatientCharacteristics ? ["retain patient characteristics"] : [])
            + (modifiedDates ? ["modified dates"] : [])).joined(separator: "; ")
    }
}

/// What to do with one attribute.
enum ProfileAction: Equatable {
    /// K: keep (and, for sequences, apply the profile to the items).
    case keep
    /// X: remove.
    case remove
    /// Z: a zero-length value.
    case empty
    /// D: a dummy value of the VR.
    case dummy
    /// U: a keyed replacement UID (U*: and apply the profile inside the sequence).
    case uid
    /// C under the modified-dates option: shift the date.
    case shift
}

enum ConfidentialityProfile {
    struct Row {
        var basic: String
        var options: [String: String]
    }

    static let table: (exact: [UInt32: Row], patterns: [(mask: UInt32, value: UInt32, row: Row)]) = {
        var exact: [UInt32: Row] = [:]
        var patterns: [(UInt32, UInt32, Row)] = []
        for line in confidentialityProfileTable.split(separator: "\n") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count >= 3, let (mask, value) = DICOMDictionary.pattern(fields[0]) else { continue }
            var options: [String: String] = [:]
            for pair in fields[2].split(separator: ",") where pair.contains("=") {
                let parts = pair.split(separator: "=")
                options[String(parts[0])] = String(parts[1])
            }
            let row = Row(basic: String(fields[1]), options: options)
            if mask == 0xFFFF_FFFF { exact[value] = row } else { patterns.append((mask, value, row)) }
        }
        return (exact, patterns)
    }()

    static func row(_ tag: Tag) -> Row? {
        if let row = table.exact[tag.value] { return row }
        return table.patterns.first { tag.value & $0.mask == $0.value }?.row
    }

    /// The action for a (non-private) attribute. Where the table leaves a choice (X/Z, X/D, Z/D, X/Z/D) the
    /// attribute is kept present but emptied (Z) or given a dummy (D), which keeps type 1 and 2 attributes valid
    /// without knowing the IOD; X/Z/U* sequences keep their items with every UID inside replaced.
    static func action(_ tag: Tag, vr: VR, options: ProfileOptions) -> ProfileAction {
        guard let row = row(tag) else { return .keep }
        if options.retainPatientCharacteristics, row.options["patientCharacteristics"] == "K" { return .keep }
        if options.modifiedDates, row.options["modifiedDates"] == "C" {
            switch vr {
            case .DA, .DT: return .shift
            case .TM: return .keep
            case .SQ: return .keep
            default: break
            }
        }
        switch row.basic {
        case "K": return .keep
        case "X": return .remove
        case "Z": return .empty
        case "D": return .dummy
        case "U", "X/Z/U*": return vr == .SQ ? .keep : .uid
        case "X/D": return .dummy
        default: return .empty  // X/Z, Z/D, X/Z/D
        }
    }
}
