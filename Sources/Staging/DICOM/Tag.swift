/// A DICOM attribute tag: (group, element).
public struct Tag: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var group: UInt16
    public var element: UInt16

    public init(_ group: UInt16, _ element: UInt16) {
        self.group = group
        self.element = element
    }

    public init(_ value: UInt32) { self.init(UInt16(value >> 16), UInt16(value & 0xFFFF)) }

    public var value: UInt32 { UInt32(group) << 16 | UInt32(element) }
    /// Odd groups hold private attributes (groups 1, 3, 5 and 7 are not private, but are never valid either).
    public var isPrivate: Bool { group & 1 == 1 }
    /// (gggg,0000): group lengths, retired outside the file meta; they go stale once anything changes.
    public var isGroupLength: Bool { element == 0 }

    public static func < (a: Tag, b: Tag) -> Bool { a.value < b.value }

    public var description: String {
        let hex = String(value, radix: 16, uppercase: true)
        let padded = String(repeating: "0", count: 8 - hex.count) + hex
        return "(\(padded.prefix(4)),\(padded.suffix(4)))"
    }

    static let item = Tag(0xFFFE, 0xE000)
    static let itemDelimitation = Tag(0xFFFE, 0xE00D)
    static let sequenceDelimitation = Tag(0xFFFE, 0xE0DD)

    // File meta information (group 0002).
    public static let fileMetaInformationGroupLength = Tag(0x0002, 0x0000)
    public static let fileMetaInformationVersion = Tag(0x0002, 0x0001)
    public static let mediaStorageSOPClassUID = Tag(0x0002, 0x0002)
    public static let mediaStorageSOPInstanceUID = Tag(0x0002, 0x0003)
    public static let transferSyntaxUID = Tag(0x0002, 0x0010)
    public static let implementationClassUID = Tag(0x0002, 0x0012)
    public static let implementationVersionName = Tag(0x0002, 0x0013)

    // Attributes the staging code reads or sets by name.
    public static let specificCharacterSet = Tag(0x0008, 0x0005)
    public static let imageType = Tag(0x0008, 0x0008)
    public static let sopClassUID = Tag(0x0008, 0x0016)
    public static let sopInstanceUID = Tag(0x0008, 0x0018)
    public static let studyDate = Tag(0x0008, 0x0020)
    public static let accessionNumber = Tag(0x0008, 0x0050)
    public static let modality = Tag(0x0008, 0x0060)
    public static let conversionType = Tag(0x0008, 0x0064)
    public static let codeValue = Tag(0x0008, 0x0100)
    public static let codingSchemeDesignator = Tag(0x0008, 0x0102)
    public static let codeMeaning = Tag(0x0008, 0x0104)
    public static let patientName = Tag(0x0010, 0x0010)
    public static let patientID = Tag(0x0010, 0x0020)
    public static let patientBirthDate = Tag(0x0010, 0x0030)
    public static let patientSex = Tag(0x0010, 0x0040)
    public static let patientAge = Tag(0x0010, 0x1010)
    public static let patientSize = Tag(0x0010, 0x1020)
    public static let patientWeight = Tag(0x0010, 0x1030)
    public static let patientIdentityRemoved = Tag(0x0012, 0x0062)
    public static let deidentificationMethod = Tag(0x0012, 0x0063)
    public static let deidentificationMethodCodeSequence = Tag(0x0012, 0x0064)
    public static let bodyPartExamined = Tag(0x0018, 0x0015)
    public static let studyInstanceUID = Tag(0x0020, 0x000D)
    public static let seriesInstanceUID = Tag(0x0020, 0x000E)
    public static let studyID = Tag(0x0020, 0x0010)
    public static let seriesNumber = Tag(0x0020, 0x0011)
    public static let instanceNumber = Tag(0x0020, 0x0013)
    public static let bitsAllocated = Tag(0x0028, 0x0100)
    public static let burnedInAnnotation = Tag(0x0028, 0x0301)
    public static let longitudinalTemporalInformationModified = Tag(0x0028, 0x0303)
    public static let pixelData = Tag(0x7FE0, 0x0010)
}
