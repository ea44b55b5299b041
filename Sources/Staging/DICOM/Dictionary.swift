/// The PS3.6 data dictionary (generated into DictionaryTable.swift): the VR implicit VR files leave out.
public enum DICOMDictionary {
    struct Entry {
        var vr: VR
        var keyword: String
    }

    /// Exact tags, and tags with repeating-group wildcards as (mask, value) pairs.
    static let table: (exact: [UInt32: Entry], patterns: [(mask: UInt32, value: UInt32, entry: Entry)]) = {
        var exact: [UInt32: Entry] = [:]
        exact.reserveCapacity(5200)
        var patterns: [(UInt32, UInt32, Entry)] = []
        for line in Array(dictionaryTable.utf8).split(separator: UInt8(ascii: "\n")) {
            // "ggggeeee VR Keyword": fixed columns.
            guard line.count > 12 else { continue }
            let start = line.startIndex
            let code = UInt16(line[start + 9]) << 8 | UInt16(line[start + 10])
            guard let vr = VR.byCode[code], let (mask, value) = pattern(line[start..<start + 8]) else { continue }
            let entry = Entry(vr: vr, keyword: String(decoding: line[(start + 12)...], as: UTF8.self))
            if mask == 0xFFFF_FFFF { exact[value] = entry } else { patterns.append((mask, value, entry)) }
        }
        return (exact, patterns)
    }()

    /// "0010xx20" → (mask, value) where 'x' digits are masked out.
    static func pattern(_ text: Substring) -> (UInt32, UInt32)? { pattern(text.utf8) }

    static func pattern(_ text: some Collection<UInt8>) -> (UInt32, UInt32)? {
        guard text.count == 8 else { return nil }
        var mask: UInt32 = 0
        var value: UInt32 = 0
        for character in text {
            mask <<= 4
            value <<= 4
            if character == UInt8(ascii: "x") { continue }
            let digit: UInt8
            switch character {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = character - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = character - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = character - UInt8(ascii: "A") + 10
            default: return nil
            }
            mask |= 0xF
            value |= UInt32(digit)
        }
        return (mask, value)
    }

    static func entry(_ tag: Tag) -> Entry? {
        if let entry = table.exact[tag.value] { return entry }
        return table.patterns.first { tag.value & $0.mask == $0.value }?.entry
    }

    /// The dictionary's VR for a tag: group lengths UL, private creators LO, anything unknown UN.
    public static func vr(of tag: Tag) -> VR {
        if tag.isGroupLength { return .UL }
        if tag.isPrivate { return (0x10...0xFF).contains(tag.element) ? .LO : .UN }
        return entry(tag)?.vr ?? .UN
    }

    /// The attribute's keyword (PatientName), or nil for private and unknown tags.
    public static func keyword(of tag: Tag) -> String? { entry(tag).map(\.keyword) }
}
