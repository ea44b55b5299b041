/// A value representation (PS3.5 §6.2).
public enum VR: String, Sendable, CaseIterable {
    case AE, AS, AT, CS, DA, DS, DT, FD, FL, IS, LO, LT, OB, OD, OF, OL, OV, OW, PN, SH, SL, SQ, SS, ST, SV, TM, UC
    case UI, UL, UN, UR, US, UT, UV

    /// Explicit VR encodings give these a 2-byte reserved field and a 4-byte length; the others a 2-byte length.
    var hasLongLength: Bool {
        switch self {
        case .OB, .OD, .OF, .OL, .OV, .OW, .SQ, .SV, .UC, .UN, .UR, .UT, .UV: true
        default: false
        }
    }

    /// The size of the numbers a value holds, which big endian files store byte-swapped (1: bytes or text).
    var wordSize: Int {
        switch self {
        case .US, .SS, .OW, .AT: 2
        case .UL, .SL, .FL, .OF, .OL: 4
        case .FD, .OD, .SV, .UV, .OV: 8
        default: 1
        }
    }

    /// Character strings (padded with a space; UI with a NUL).
    public var isString: Bool {
        switch self {
        case .AE, .AS, .CS, .DA, .DS, .DT, .IS, .LO, .LT, .PN, .SH, .ST, .TM, .UC, .UI, .UR, .UT: true
        default: false
        }
    }

    /// VRs by their two characters as a big-endian 16-bit code (explicit VR parsing without building strings).
    static let byCode: [UInt16: VR] = Dictionary(
        uniqueKeysWithValues: allCases.map { vr in
            let bytes = Array(vr.rawValue.utf8)
            return (UInt16(bytes[0]) << 8 | UInt16(bytes[1]), vr)
        })

    var padding: UInt8 { isString && self != .UI ? 0x20 : 0 }
}
